// 2-D pooling with PyTorch semantics, forward and backward: max, average, adaptive average and the
// global average (adaptive to 1x1) as a work-group reduction.
//
// Required: POOL (0 max, 1 avg, 2 adaptive avg, 3 global avg).
//   POOL 0 also requires INDICES (1: the forward writes the int32 argmax, h * W + w within its plane).
//   POOL 1 also requires COUNT_INCLUDE_PAD (0 or 1).
// Tuning: GLOBAL_WG, the work-group size of the global average (a power of two, default 64).
//
// Tensors are contiguous NCHW; every plane (n, c) is independent. Forward: one work-item per output.
// Backward: one work-item per input pixel, gathering from the windows that hold it, so overlapping
// windows need no atomics (OpenCL 1.2 has no float atomics) and the sum order is fixed.

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

// As torch's CPU kernel: padded positions are skipped (-inf), `>` keeps the first maximum in scan order,
// a NaN always wins (so the output is NaN), and an all -inf window keeps its first valid position.
__kernel void max_pool2d_forward(__global const float *x, __global float *y, __global int *indices,
                                 const int H, const int W, const int OH, const int OW,
                                 const int kh, const int kw, const int sh, const int sw,
                                 const int ph, const int pw, const int dh, const int dw, const int total)
{
    const int o = get_global_id(0);
    if (o >= total) return;
    const int ow = o % OW;
    const int oh = (o / OW) % OH;
    const int plane = o / (OW * OH);
    x += plane * H * W;
    int h0 = oh * sh - ph;
    int w0 = ow * sw - pw;
    const int h1 = min(h0 + (kh - 1) * dh + 1, H);
    const int w1 = min(w0 + (kw - 1) * dw + 1, W);
    if (h0 < 0) h0 += (-h0 + dh - 1) / dh * dh;  // first tap inside the input
    if (w0 < 0) w0 += (-w0 + dw - 1) / dw * dw;
    float best = -INFINITY;
    int at = h0 * W + w0;
    for (int h = h0; h < h1; h += dh) {
        for (int w = w0; w < w1; w += dw) {
            const float v = x[h * W + w];
            if (v > best || isnan(v)) {
                best = v;
                at = h * W + w;
            }
        }
    }
    y[o] = best;
#if INDICES
    indices[o] = at;
#endif
}

// gx[pixel] = sum of gy over the windows whose argmax is this pixel, in output scan order.
__kernel void max_pool2d_backward(__global const float *gy, __global const int *indices, __global float *gx,
                                  const int H, const int W, const int OH, const int OW,
                                  const int kh, const int kw, const int sh, const int sw,
                                  const int ph, const int pw, const int dh, const int dw, const int total)
{
    const int i = get_global_id(0);
    if (i >= total) return;
    const int w = i % W;
    const int h = (i / W) % H;
    const int plane = i / (W * H);
    const int me = h * W + w;
    const int oh0 = first_window(h + ph - (kh - 1) * dh, sh);
    const int ow0 = first_window(w + pw - (kw - 1) * dw, sw);
    const int oh1 = min((h + ph) / sh, OH - 1);
    const int ow1 = min((w + pw) / sw, OW - 1);
    const int base = plane * OH * OW;
    float acc = 0.0f;
    for (int oh = oh0; oh <= oh1; ++oh) {
        for (int ow = ow0; ow <= ow1; ++ow) {
            const int o = base + oh * OW + ow;
            if (indices[o] == me) acc += gy[o];
        }
    }
    gx[i] = acc;
}

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
