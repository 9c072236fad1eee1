// 2-D pooling with PyTorch semantics, forward and backward: max, average, adaptive average and the
// global average (adaptive to 1x1) as a work-group reduction.
//
// Required: POOL (0 max, 1 avg, 2 adaptive avg, 3 global avg).
//   POOL 0 also requires INDICES (1: the forward writes the int32 argmax, h * W + w within its plane)
//   and the window geometry KH, KW, SH, SW, PH, PW, DH, DW.
//   POOL 1 also requires COUNT_INCLUDE_PAD (0 or 1).
// Tuning: GLOBAL_WG, the work-group size of the global average (a power of two, default 64).
//
// Tensors are contiguous NCHW; every plane (n, c) is independent. Forward: one work-item per output.
// Backward: one work-item per input pixel, gathering from the windows that hold it, so overlapping
// windows need no atomics (OpenCL 1.2 has no float atomics) and the sum order is fixed; max pooling
// with non-overlapping windows scatters instead.

#ifndef POOL
#error "POOL must be defined (0 max, 1 avg, 2 adaptive avg, 3 global avg)"
#endif

// First output position whose window (start o * stride - pad) reaches input coordinate i, where
// a = i + pad - reach and reach is the window's extent minus one; C division truncates, hence the branch.
inline int first_window(const int a, const int stride)
{
    return a <= 0 ? 0 : (a + stride - 1) / stride;
}

#if POOL == 0
#ifndef INDICES
#error "INDICES must be defined (0 or 1) for max pooling"
#endif
#if !defined(KH) || !defined(KW) || !defined(SH) || !defined(SW) || !defined(PH) || !defined(PW) || \
    !defined(DH) || !defined(DW)
#error "max pooling requires KH, KW (window), SH, SW (stride), PH, PW (padding) and DH, DW (dilation)"
#endif
// The window geometry is compile-time: PoCL turns constant-trip loops into straight code that it
// vectorises across work-items, which it does not do for runtime-bounded loops.

// Grid (OW, OH, planes). As torch's CPU kernel: padded positions are skipped (-inf), `>` keeps the first
// maximum in scan order, a NaN always wins (so the output is NaN), and an all -inf window keeps its
// first valid position (padding <= kernel/2 guarantees every window has one).
__kernel void max_pool2d_forward(__global const float *x, __global float *y, __global int *indices,
                                 const int H, const int W, const int OH, const int OW)
{
    const int ow = get_global_id(0);
    const int oh = get_global_id(1);
    const size_t plane = get_global_id(2);
    x += plane * H * W;
    const int h0 = oh * SH - PH;
    const int w0 = ow * SW - PW;
    float best = -INFINITY;
    int at = -1;
#pragma unroll
    for (int i = 0; i < KH; ++i) {
        const int h = h0 + i * DH;
        if (h < 0 || h >= H) continue;
#pragma unroll
        for (int j = 0; j < KW; ++j) {
            const int w = w0 + j * DW;
            if (w < 0 || w >= W) continue;
            const float v = x[h * W + w];
            if (at < 0 || v > best || isnan(v)) {
                best = v;
                at = h * W + w;
            }
        }
    }
    const size_t o = (plane * OH + oh) * OW + ow;
    y[o] = best;
#if INDICES
    indices[o] = at;
#endif
}

#define EXTENT_H ((KH - 1) * DH + 1)
#define EXTENT_W ((KW - 1) * DW + 1)

#if SH >= EXTENT_H && SW >= EXTENT_W
// Windows do not overlap, so each input pixel is the argmax of at most one window: scatter each output's
// gradient to its argmax (gx was zero-filled). Grid (OW, OH, planes).
__kernel void max_pool2d_backward(__global const float *gy, __global const int *indices, __global float *gx,
                                  const int H, const int W, const int OH, const int OW)
{
    const size_t plane = get_global_id(2);
    const size_t o = (plane * OH + get_global_id(1)) * OW + get_global_id(0);
    gx[plane * H * W + indices[o]] = gy[o];
}
#else
// Overlapping windows: each input pixel gathers, in output scan order, the gradients of the windows
// whose argmax it is (no float atomics in OpenCL 1.2, and a fixed sum order). Grid (W, H, planes).
#define WIN_H ((EXTENT_H + SH - 1) / SH)  // most windows covering one pixel, per dimension
#define WIN_W ((EXTENT_W + SW - 1) / SW)
__kernel void max_pool2d_backward(__global const float *gy, __global const int *indices, __global float *gx,
                                  const int H, const int W, const int OH, const int OW)
{
    const int w = get_global_id(0);
    const int h = get_global_id(1);
    const size_t plane = get_global_id(2);
    const int me = h * W + w;
    const int oh_last = (h + PH) / SH;  // the last window starting at or before h
    const int ow_last = (w + PW) / SW;
    gy += plane * OH * OW;
    indices += plane * OH * OW;
    float acc = 0.0f;
#pragma unroll
    for (int i = WIN_H - 1; i >= 0; --i) {
        const int oh = oh_last - i;
        if (oh < 0 || oh >= OH || oh * SH - PH + EXTENT_H <= h) continue;
#pragma unroll
        for (int j = WIN_W - 1; j >= 0; --j) {
            const int ow = ow_last - j;
            if (ow < 0 || ow >= OW || ow * SW - PW + EXTENT_W <= w) continue;
            const int o = oh * OW + ow;
            if (indices[o] == me) acc += gy[o];
        }
    }
    gx[plane * H * W + me] = acc;
}
#endif

#elif POOL == 1
#ifndef COUNT_INCLUDE_PAD
#error "COUNT_INCLUDE_PAD must be defined (0 or 1) for average pooling"
#endif

// torch's window: [o*s - p, min(o*s - p + k, size + p)) counts for count_include_pad, then it is
// clipped to the input for the sum (and for the divisor without count_include_pad).
// divisor > 0 is torch's divisor_override.
inline int avg_divisor(const int h0, const int h1, const int w0, const int w1, const int H, const int W,
                       const int divisor)
{
    if (divisor > 0) return divisor;
#if COUNT_INCLUDE_PAD
    return (h1 - h0) * (w1 - w0);
#else
    return (min(h1, H) - max(h0, 0)) * (min(w1, W) - max(w0, 0));
#endif
}

__kernel void avg_pool2d_forward(__global const float *x, __global float *y,
                                 const int H, const int W, const int OH, const int OW,
                                 const int kh, const int kw, const int sh, const int sw,
                                 const int ph, const int pw, const int divisor, const int total)
{
    const int o = get_global_id(0);
    if (o >= total) return;
    const int ow = o % OW;
    const int oh = (o / OW) % OH;
    const int plane = o / (OW * OH);
    x += plane * H * W;
    const int h0 = oh * sh - ph;
    const int w0 = ow * sw - pw;
    const int h1 = min(h0 + kh, H + ph);
    const int w1 = min(w0 + kw, W + pw);
    const int hs = max(h0, 0), he = min(h1, H);
    const int ws = max(w0, 0), we = min(w1, W);
    float acc = 0.0f;
    for (int h = hs; h < he; ++h) {
        for (int w = ws; w < we; ++w) acc += x[h * W + w];
    }
    // a window wholly in the padding gives 0, as torch does (it cannot occur with torch's pad <= k/2)
    y[o] = (hs < he && ws < we) ? acc / (float)avg_divisor(h0, h1, w0, w1, H, W, divisor) : 0.0f;
}

__kernel void avg_pool2d_backward(__global const float *gy, __global float *gx,
                                  const int H, const int W, const int OH, const int OW,
                                  const int kh, const int kw, const int sh, const int sw,
                                  const int ph, const int pw, const int divisor, const int total)
{
    const int i = get_global_id(0);
    if (i >= total) return;
    const int w = i % W;
    const int h = (i / W) % H;
    const int plane = i / (W * H);
    const int oh0 = first_window(h + ph - (kh - 1), sh);
    const int ow0 = first_window(w + pw - (kw - 1), sw);
    const int oh1 = min((h + ph) / sh, OH - 1);
    const int ow1 = min((w + pw) / sw, OW - 1);
    gy += plane * OH * OW;
    float acc = 0.0f;
    for (int oh = oh0; oh <= oh1; ++oh) {
        const int h0 = oh * sh - ph;
        const int h1 = min(h0 + kh, H + ph);
        for (int ow = ow0; ow <= ow1; ++ow) {
            const int w0 = ow * sw - pw;
            const int w1 = min(w0 + kw, W + pw);
            acc += gy[oh * OW + ow] / (float)avg_divisor(h0, h1, w0, w1, H, W, divisor);
        }
    }
    gx[i] = acc;
}

#elif POOL == 2

// torch's adaptive bins: [floor(o * size / out), ceil((o + 1) * size / out)); they may overlap.
__kernel void adaptive_avg_pool2d_forward(__global const float *x, __global float *y,
                                          const int H, const int W, const int OH, const int OW, const int total)
{
    const int o = get_global_id(0);
    if (o >= total) return;
    const int ow = o % OW;
    const int oh = (o / OW) % OH;
    const int plane = o / (OW * OH);
    x += plane * H * W;
    const int h0 = oh * H / OH, h1 = ((oh + 1) * H + OH - 1) / OH;
    const int w0 = ow * W / OW, w1 = ((ow + 1) * W + OW - 1) / OW;
    float acc = 0.0f;
    for (int h = h0; h < h1; ++h) {
        for (int w = w0; w < w1; ++w) acc += x[h * W + w];
    }
    y[o] = acc / (float)((h1 - h0) * (w1 - w0));
}

// Input row h lies in the bins oh in [floor(h * OH / H), ceil((h + 1) * OH / H) - 1] (same for columns).
__kernel void adaptive_avg_pool2d_backward(__global const float *gy, __global float *gx,
                                           const int H, const int W, const int OH, const int OW, const int total)
{
    const int i = get_global_id(0);
    if (i >= total) return;
    const int w = i % W;
    const int h = (i / W) % H;
    const int plane = i / (W * H);
    gy += plane * OH * OW;
    const int oh0 = h * OH / H, oh1 = ((h + 1) * OH + H - 1) / H;
    const int ow0 = w * OW / W, ow1 = ((w + 1) * OW + W - 1) / W;
    float acc = 0.0f;
    for (int oh = oh0; oh < oh1; ++oh) {
        const int bh = ((oh + 1) * H + OH - 1) / OH - oh * H / OH;
        for (int ow = ow0; ow < ow1; ++ow) {
            const int bw = ((ow + 1) * W + OW - 1) / OW - ow * W / OW;
            acc += gy[oh * OW + ow] / (float)(bh * bw);
        }
    }
    gx[i] = acc;
}

#elif POOL == 3
#ifndef GLOBAL_WG
#define GLOBAL_WG 64
#endif
#if (GLOBAL_WG & (GLOBAL_WG - 1)) != 0
#error "GLOBAL_WG must be a power of two"
#endif

// One work-group of GLOBAL_WG items per plane: strided partial sums, then a tree in local memory.
__kernel void global_avg_pool2d_forward(__global const float *x, __global float *y, const int HW)
{
    __local float part[GLOBAL_WG];
    const int plane = get_group_id(0);
    const int l = get_local_id(0);
    x += plane * HW;
    float acc = 0.0f;
    for (int i = l; i < HW; i += GLOBAL_WG) acc += x[i];
    part[l] = acc;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int step = GLOBAL_WG / 2; step > 0; step >>= 1) {
        if (l < step) part[l] += part[l + step];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (l == 0) y[plane] = part[0] / (float)HW;
}

// Small planes (HW up to a few hundred): one work-item per plane, a plain loop. On PoCL each work-group
// has a fixed cost that a work-group per small plane pays many times over.
__kernel void global_avg_pool2d_small(__global const float *x, __global float *y, const int HW, const int planes)
{
    const int plane = get_global_id(0);
    if (plane >= planes) return;
    x += (size_t)plane * HW;
    float acc = 0.0f;
    for (int i = 0; i < HW; ++i) acc += x[i];
    y[plane] = acc / (float)HW;
}

__kernel void global_avg_pool2d_backward(__global const float *gy, __global float *gx, const int HW,
                                         const int total)
{
    const int i = get_global_id(0);
    if (i >= total) return;
    gx[i] = gy[i / HW] / (float)HW;
}

#else
#error "Unknown POOL value"
#endif
