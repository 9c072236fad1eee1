// conv2d family (PyTorch semantics, NCHW, weight [OC, C/groups, KH, KW]): the data movement around the
// GEMMs (im2col, col2im, layout swaps), the bias-gradient reduction, and direct depthwise kernels.
//
// Column matrices ("cols") hold one row per (channel, kh, kw) and one column per (image, output pixel).
// Their layout is given by two strides so one kernel serves both layouts hetero.ops.conv2d uses:
//   per-image   cols[n][r][p]:  row_stride = OH*OW,      img_stride = R*OH*OW
//   batch-major cols[r][n][p]:  row_stride = NB*OH*OW,   img_stride = OH*OW
// pad_h / pad_w are the top / left padding; the bottom / right padding is implied by OH / OW
// (so PyTorch's asymmetric padding="same" needs nothing extra).
//
// Defines:
//   REDUCE_WG  work-group size of the reduction kernels (a power of two; tuning knob, default 64): the
//              depthwise weight gradient runs with exactly this many work-items, bias_grad with at most.
//   CHUNK_TAPS taps per work-group of the depthwise weight gradient (whole kernel rows), from the device's
//              local memory; that kernel is compiled only when it is given.
//   COL_KH, COL_KW, COL_SH, COL_SW, COL_PH, COL_PW, COL_DH, COL_DW: window geometry, required by (and
//              only by) im2col, col2im and the depthwise kernels, which are compiled only
//              when it is given (and then alone, so each geometry's build stays small).

#ifndef REDUCE_WG
#define REDUCE_WG 64
#endif

// Work-item grids flatten (row, pixel) into dimension 0 so that small images (P = 1 at the end of a
// network) do not leave most of a fixed-width work-group idle; dimension 0 is rounded up to the
// work-group width, hence the guards.

#ifdef COL_KH
#if !defined(COL_KW) || !defined(COL_SH) || !defined(COL_SW) || !defined(COL_PH) || !defined(COL_PW) || \
    !defined(COL_DH) || !defined(COL_DW)
#error "the window kernels need the whole geometry: COL_KH, COL_KW, COL_SH, COL_SW, COL_PH, COL_PW, COL_DH, COL_DW"
#endif
// im2col, col2im and the depthwise kernels exist only when the window geometry
// is given as defines (COL_KH .. COL_DW: kernel, stride, top/left padding, dilation): constant-trip tap
// loops unroll, and PoCL vectorises them across work-items, where runtime-bounded loops ran several
// times slower.

// Column iw of one image row (row: the row's start, clamped into the image; row_in: whether the row is
// inside it), 0 outside the image: an unconditional, clamped load and a select, branch-free, so it
// vectorises across work-items. Callers clamp the row once per kh, outside the kw loop: clamping both
// coordinates per tap measured several times slower on PoCL.
inline float row_tap(__global const float *row, const bool row_in, const int iw, const int W)
{
    const float v = row[clamp(iw, 0, W - 1)];
    return (row_in && iw >= 0 && iw < W) ? v : 0.0f;
}

// Unfold images n0 .. n0+nb-1 of x [N, C, H, W] into cols: global (C * OH*OW, nb). Each work-item
// writes the KH*KW column entries of one (channel, output pixel): the index arithmetic (integer
// divisions, slow on CPUs) is paid once per pixel, and neighbouring work-items still write neighbouring
// addresses for every tap.
__kernel void im2col(__global const float *x, const int n0, const int C, const int H, const int W,
                     const int OH, const int OW, __global float *cols, const int row_stride, const int img_stride)
{
    const int P = OH * OW;
    const int idx = get_global_id(0);
    const int nl = get_global_id(1);
    if (idx >= C * P) return;
    const int c = idx / P;
    const int p = idx - c * P;
    const int oh = p / OW;
    const int ow = p - oh * OW;
    const int h0 = oh * COL_SH - COL_PH;
    const int w0 = ow * COL_SW - COL_PW;
    __global const float *img = x + ((size_t)(n0 + nl) * C + c) * H * W;
    __global float *dst = cols + (size_t)c * COL_KH * COL_KW * row_stride + (size_t)nl * img_stride + p;
#pragma unroll
    for (int kh = 0; kh < COL_KH; ++kh) {
        const int ih = h0 + kh * COL_DH;
        const bool row_in = ih >= 0 && ih < H;
        __global const float *row = img + clamp(ih, 0, H - 1) * W;
#pragma unroll
        for (int kw = 0; kw < COL_KW; ++kw) {
            dst[(kh * COL_KW + kw) * row_stride] = row_tap(row, row_in, w0 + kw * COL_DW, W);
        }
    }
}

// CPU im2col into batch-major cols (row r at r * row_stride, its ncols = nb*P columns contiguous):
// global (ceil(ncols / NR), ceil(C*KH*KW / IM2COL_ROWS)); a work-item unfolds IM2COL_ROWS rows of NR
// columns with col_block's vector loads (the per-element kernel above gathers every tap, which on PoCL
// ran at a third of the speed). x_offset: channel 0 of the first image.
#define NR 16
#include "col_block.h"
#ifndef IM2COL_ROWS
#define IM2COL_ROWS 32  // tuning: rows per work-item; fewer or more both ran slower
#endif
__kernel void im2col_block(__global const float *x, const int x_offset, const int C, const int H, const int W,
                           const int OW, const int P, const int ncols, __global float *cols, const int row_stride)
{
    const int j0 = get_global_id(0) * NR;
    const int r0 = get_global_id(1) * IM2COL_ROWS;
    const int rows = C * COL_KH * COL_KW;
    if (j0 >= ncols || r0 >= rows) return;
    col_block(x + x_offset, ncols, rows, r0, min(IM2COL_ROWS, rows - r0), j0, cols + (size_t)r0 * row_stride + j0,
              row_stride, min(NR, ncols - j0), H, W, OW, P, C * H * W);
}

// CPU col2im from batch-major column gradients (row r at r * row_stride, image nl's columns from
// nl * OH*OW): global (ceil(H * ceil(W/NR) / 16) * 16, C, nb). A work-item sums the KH*KW taps of NR
// neighbouring pixels of one dx row, without branching per pixel or decoding an index per pixel (the
// per-pixel col2im below does both). At stride 1 a tap's entries for the NR pixels are NR neighbouring
// columns: one vector load, lanes outside the output masked; at other strides each lane loads its own
// (element 0 where the tap does not reach it). `total`: the floats in cols, which vector loads stay within.
__kernel void col2im_block(__global const float *cols, const int row_stride, const int total, const int n0,
                           const int C, const int H, const int W, const int OH, const int OW, __global float *dx)
{
    const int wblocks = (W + NR - 1) / NR;
    const int idx = get_global_id(0);
    const int c = get_global_id(1);
    const int nl = get_global_id(2);
    if (idx >= H * wblocks) return;
    const int h = idx / wblocks;
    const int w0 = (idx - h * wblocks) * NR;
    const intNR w = w0 + LANES_NR;
    const size_t base = (size_t)c * COL_KH * COL_KW * row_stride + (size_t)nl * OH * OW;
    floatNR acc = (floatNR)(0.0f);
#pragma unroll
    for (int kh = 0; kh < COL_KH; ++kh) {
        const int th = h + COL_PH - kh * COL_DH;  // the output row times the stride, when it divides
        if (th < 0 || th % COL_SH != 0 || th / COL_SH >= OH) continue;  // the same for the whole block
        const int oh = th / COL_SH;
#pragma unroll
        for (int kw = 0; kw < COL_KW; ++kw) {
            const intNR tw = w + COL_PW - kw * COL_DW;
            const long row = (long)base + (long)(kh * COL_KW + kw) * row_stride + oh * OW;
            floatNR v;
#if COL_SW == 1
            const intNR ok = (tw >= 0) & (tw < OW) & (w < W);
            const long at = row + w0 + COL_PW - kw * COL_DW;  // lane q at at + q
            if (at >= 0 && at + NR <= total) {
                v = VLOADNR(0, cols + at);
            } else {
                float t[NR];
#pragma unroll
                for (int q = 0; q < NR; ++q) t[q] = cols[clamp(at + q, (long)0, (long)total - 1)];
                v = VLOADNR(0, t);
            }
#else
            const intNR ow = tw / COL_SW;
            const intNR ok = (tw >= 0) & (tw - ow * COL_SW == 0) & (ow < OW) & (w < W);
            int o[NR];
            float t[NR];
            VSTORENR(select((intNR)(0), ow, ok), 0, o);
#pragma unroll
            for (int q = 0; q < NR; ++q) t[q] = cols[row + o[q]];  // ow 0 of a valid row where masked
            v = VLOADNR(0, t);
#endif
            acc += select((floatNR)(0.0f), v, ok);
        }
    }
    __global float *out = dx + (((size_t)(n0 + nl) * C + c) * H + h) * W + w0;
    if (w0 + NR <= W) {
        VSTORENR(acc, 0, out);
    } else {
        float t[NR];
        VSTORENR(acc, 0, t);
        for (int q = 0; q < W - w0; ++q) out[q] = t[q];
    }
}

// Fold column gradients back into dx [N, C, H, W] for images n0 .. n0+nb-1: global (C*H*W, nb).
// Each work-item gathers the column entries that read its pixel, so no two work-items write the same
// address (OpenCL 1.2 has no float atomics).
__kernel void col2im(__global const float *cols, const int row_stride, const int img_stride,
                     const int n0, const int C, const int H, const int W, const int OH, const int OW,
                     __global float *dx)
{
    const int idx = get_global_id(0);
    const int nl = get_global_id(1);
    if (idx >= C * H * W) return;
    const int c = idx / (H * W);
    const int hw = idx - c * H * W;
    const int h = hw / W;
    const int w = hw - h * W;
    __global const float *src = cols + (size_t)nl * img_stride + (size_t)c * COL_KH * COL_KW * row_stride;
    float acc = 0.0f;
#pragma unroll
    for (int kh = 0; kh < COL_KH; ++kh) {
        const int th = h + COL_PH - kh * COL_DH;
        const int oh = th / COL_SH;
        if (th < 0 || th - oh * COL_SH != 0 || oh >= OH) continue;
#pragma unroll
        for (int kw = 0; kw < COL_KW; ++kw) {
            const int tw = w + COL_PW - kw * COL_DW;
            const int ow = tw / COL_SW;
            if (tw < 0 || tw - ow * COL_SW != 0 || ow >= OW) continue;
            acc += src[(size_t)(kh * COL_KW + kw) * row_stride + oh * OW + ow];
        }
    }
    dx[(size_t)(n0 + nl) * C * H * W + idx] = acc;
}
// Depthwise (groups == C, OC = C * mult) forward: grid (OW, OH, planes) rounded up to the work-group, plane z
// of this launch being z0 + z (planes n * OC + o: launches of at most 65535 planes), the window compile-time.
__kernel void depthwise_fwd(__global const float *x, __global const float *wt, __global const float *bias,
                            const int has_bias, __global float *y, const int C, const int H, const int W,
                            const int mult, const int OH, const int OW, const int z0)
{
    const int ow = get_global_id(0);
    const int oh = get_global_id(1);
    const int z = z0 + get_global_id(2);  // n * OC + o
    if (ow >= OW || oh >= OH) return;
    const int OC = C * mult;
    const int n = z / OC;
    const int o = z - n * OC;
    __global const float *img = x + ((size_t)n * C + o / mult) * H * W;
    __global const float *k = wt + (size_t)o * COL_KH * COL_KW;
    const int h0 = oh * COL_SH - COL_PH;
    const int w0 = ow * COL_SW - COL_PW;
    float acc = has_bias ? bias[o] : 0.0f;
#pragma unroll
    for (int kh = 0; kh < COL_KH; ++kh) {
        const int ih = h0 + kh * COL_DH;
        const bool row_in = ih >= 0 && ih < H;
        __global const float *row = img + clamp(ih, 0, H - 1) * W;
#pragma unroll
        for (int kw = 0; kw < COL_KW; ++kw) {
            acc = fma(row_tap(row, row_in, w0 + kw * COL_DW, W), k[kh * COL_KW + kw], acc);
        }
    }
    y[((size_t)z * OH + oh) * OW + ow] = acc;
}

// Depthwise input gradient: grid (W, H, planes) rounded up to the work-group, plane z0 + z = n * C + c; each
// pixel gathers from the outputs whose window holds it.
__kernel void depthwise_bw_input(__global const float *dy, __global const float *wt, __global float *dx,
                                 const int C, const int H, const int W, const int mult, const int OH, const int OW,
                                 const int z0)
{
    const int w = get_global_id(0);
    const int h = get_global_id(1);
    const int z = z0 + get_global_id(2);  // n * C + c
    if (w >= W || h >= H) return;
    const int n = z / C;
    const int c = z - n * C;
    const int OC = C * mult;
    float acc = 0.0f;
    for (int m = 0; m < mult; ++m) {
        const int o = c * mult + m;
        __global const float *g = dy + ((size_t)n * OC + o) * OH * OW;
        __global const float *k = wt + (size_t)o * COL_KH * COL_KW;
#pragma unroll
        for (int kh = 0; kh < COL_KH; ++kh) {
            const int th = h + COL_PH - kh * COL_DH;
            const int oh = th / COL_SH;
            const bool h_in = th >= 0 && th - oh * COL_SH == 0 && oh < OH;
            const int row = clamp(oh, 0, OH - 1) * OW;
#pragma unroll
            for (int kw = 0; kw < COL_KW; ++kw) {
                const int tw = w + COL_PW - kw * COL_DW;
                const int ow = tw / COL_SW;
                const bool in = h_in && tw >= 0 && tw - ow * COL_SW == 0 && ow < OW;
                const float v = g[row + clamp(ow, 0, OW - 1)];
                acc = fma(in ? v : 0.0f, k[kh * COL_KW + kw], acc);
            }
        }
    }
    dx[((size_t)z * H + h) * W + w] = acc;
}

// Depthwise weight gradient, CHUNK_TAPS taps at a time (CHUNK_TAPS / COL_KW whole kernel rows): the
// work-items' partial sums of every tap of a chunk meet in __local part[CHUNK_TAPS][REDUCE_WG], which for a
// large window is more local memory than devices have (13x13 taps: 43 KiB; Intel and AMD have 32 KiB, NVIDIA
// 48), so the host picks CHUNK_TAPS from the device's local memory (hetero/ops/conv2d/algorithms.py). Built
// only when CHUNK_TAPS is given. Grid (REDUCE_WG, output channels, chunks): one work-group per (output
// channel o0 + group 1, chunk group 2); its work-items sum dy * x over their share of the (image, output
// pixel) range [q0, q1) (images times OH*OW flattened; the host splits long sums into several launches, see
// depthwise.py), then reduce across the work-group and store dw (accumulate: add to it).
#ifdef CHUNK_TAPS
#if CHUNK_TAPS < COL_KW || CHUNK_TAPS % COL_KW != 0 || CHUNK_TAPS > COL_KH * COL_KW
#error "CHUNK_TAPS must be whole kernel rows: a multiple of COL_KW, at most COL_KH * COL_KW"
#endif
#if REDUCE_WG < 1 || (REDUCE_WG & (REDUCE_WG - 1)) != 0
#error "REDUCE_WG must be a power of two"
#endif
#define CHUNK_ROWS (CHUNK_TAPS / COL_KW)
__kernel void depthwise_bw_weight(__global const float *dy, __global const float *x, __global float *dw,
                                  const int C, const int H, const int W, const int mult, const int OH, const int OW,
                                  const int o0, const int q0, const int q1, const int accumulate)
{
    __local float part[CHUNK_TAPS][REDUCE_WG];
    const int lid = get_local_id(0);
    const int o = o0 + get_group_id(1);
    const int kh0 = get_group_id(2) * CHUNK_ROWS;  // the chunk's first kernel row
    const int c = o / mult;
    const int OC = C * mult;
    const int P = OH * OW;
    float acc[CHUNK_TAPS];
#pragma unroll
    for (int t = 0; t < CHUNK_TAPS; ++t) acc[t] = 0.0f;
    for (int n = q0 / P; n * P < q1; ++n) {
        const int p_end = min(q1 - n * P, P);
        __global const float *g = dy + ((size_t)n * OC + o) * P;
        __global const float *img = x + ((size_t)n * C + c) * H * W;
        for (int p = max(q0 - n * P, 0) + lid; p < p_end; p += REDUCE_WG) {
            const int oh = p / OW;
            const int h0 = oh * COL_SH - COL_PH + kh0 * COL_DH;
            const int w0 = (p - oh * OW) * COL_SW - COL_PW;
            const float gv = g[p];
#pragma unroll
            for (int r = 0; r < CHUNK_ROWS; ++r) {
                const int ih = h0 + r * COL_DH;
                const bool row_in = kh0 + r < COL_KH && ih >= 0 && ih < H;  // rows past the window: 0
                __global const float *row = img + clamp(ih, 0, H - 1) * W;
#pragma unroll
                for (int kw = 0; kw < COL_KW; ++kw) {
                    acc[r * COL_KW + kw] = fma(gv, row_tap(row, row_in, w0 + kw * COL_DW, W), acc[r * COL_KW + kw]);
                }
            }
        }
    }
#pragma unroll
    for (int t = 0; t < CHUNK_TAPS; ++t) part[t][lid] = acc[t];
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = REDUCE_WG / 2; s > 0; s >>= 1) {
        if (lid < s) {
#pragma unroll
            for (int t = 0; t < CHUNK_TAPS; ++t) part[t][lid] += part[t][lid + s];
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    const int t0 = kh0 * COL_KW;
    for (int t = lid; t < CHUNK_TAPS && t0 + t < COL_KH * COL_KW; t += REDUCE_WG) {
        __global float *d = dw + (size_t)o * COL_KH * COL_KW + t0 + t;
        *d = (accumulate ? *d : 0.0f) + part[t][0];
    }
}
#endif  // CHUNK_TAPS

#else  // the other kernels: a program built for one window geometry holds only im2col and col2im

// wt[c][o][KH-1-kh][KW-1-kw] = w[o][c][kh][kw] for w [OC, C, KH, KW]: global (C, OC), a work-item
// moving the KH*KW taps of one (o, c) (one per element decoded its index with a division, slower).
// The input gradient of a stride-1 convolution is the convolution of dy with these weights.
__kernel void flip_transpose(__global const float *w, __global float *wt, const int OC, const int C,
                             const int KH, const int KW)
{
    const int c = get_global_id(0);
    const int o = get_global_id(1);
    if (c >= C) return;
    const int taps = KH * KW;
    __global const float *src = w + ((size_t)o * C + c) * taps;
    __global float *dst = wt + ((size_t)c * OC + o) * taps + taps - 1;
    for (int t = 0; t < taps; ++t) dst[-t] = src[t];
}

// dst[b][a][p] = src[a][b][p] for src [A, B, P] (offsets in floats): global (B * ceil(P/16), A), a
// work-item moving 16 consecutive p (fewer at the end of a row) as one vector: one element per work-item
// decoded its index with divisions and scattered its stores (slower, on LeNet-5's dy).
// Moves between NCHW and the batch-major CNHW layout of the GEMMs.
__kernel void swap01(__global const float *src, const int src_offset, __global float *dst, const int dst_offset,
                     const int A, const int B, const int P)
{
    const int blocks = (P + 15) / 16;
    const int idx = get_global_id(0);
    const int a = get_global_id(1);
    if (idx >= B * blocks) return;
    const int b = idx / blocks;
    const int p0 = (idx - b * blocks) * 16;
    __global const float *s = src + src_offset + ((size_t)a * B + b) * P + p0;
    __global float *d = dst + dst_offset + ((size_t)b * A + a) * P + p0;
    if (p0 + 16 <= P) {
        vstore16(vload16(0, s), 0, d);
    } else {
        for (int q = 0; q < P - p0; ++q) d[q] = s[q];
    }
}

// xp[plane][hp][wp] = x[plane][hp - PT][wp - PL], 0 outside x: planes of H x W into zero-padded planes of
// HP x WP (HP >= H + PT, WP >= W + PL) for the direct convolution (conv2d_direct.cl). Global
// (HP rounded up, C, N): a work-item writes one padded row of plane n * C + c, the image row copied 16 floats
// at a time (per-pixel clamped gathers ran at a third of the speed); channels and images in dimensions of
// their own, as a GPU allows 65535 work-groups in each. The xp_offset floats before the planes and as many
// after them (slack the direct convolution's vector loads may touch) are zeroed too.
__kernel void pad2d(__global const float *x, __global float *xp, const int xp_offset, const int H, const int W,
                    const int HP, const int WP, const int PT, const int PL)
{
    const int hp = get_global_id(0);
    const size_t plane = get_global_id(2) * get_global_size(1) + get_global_id(1);
    if (hp >= HP) return;
    if (hp == 0 && plane == 0) {
        const size_t end = xp_offset + get_global_size(1) * get_global_size(2) * HP * WP;
        for (int i = 0; i < xp_offset; ++i) xp[i] = xp[end + i] = 0.0f;
    }
    __global float *dst = xp + xp_offset + (plane * HP + hp) * WP;
    const int h = hp - PT;
    if (h < 0 || h >= H) {
        for (int i = 0; i < WP; ++i) dst[i] = 0.0f;
        return;
    }
    __global const float *src = x + (plane * H + h) * W;
    for (int i = 0; i < PL; ++i) dst[i] = 0.0f;
    int w = 0;
    for (; w + 16 <= W; w += 16) vstore16(vload16(0, src + w), 0, dst + PL + w);
    for (; w < W; ++w) dst[PL + w] = src[w];
    for (int i = PL + W; i < WP; ++i) dst[i] = 0.0f;
}

// db[o] = sum over (n, p) in [q0, q1) of dy[n][o][p] for dy [N, OC, P] (images times pixels flattened; the
// host splits long sums into several launches, accumulate adding to db): one work-group per channel, of any
// power of two up to REDUCE_WG work-items (what the device allows for this kernel).
__kernel void bias_grad(__global const float *dy, const int OC, const int P, __global float *db, const int q0,
                        const int q1, const int accumulate)
{
    __local float part[REDUCE_WG];
    const int o = get_group_id(0);
    const int lid = get_local_id(0);
    const int wg = get_local_size(0);
    float acc = 0.0f;
    for (int n = q0 / P; n * P < q1; ++n) {
        __global const float *row = dy + ((size_t)n * OC + o) * P;
        const int p_end = min(q1 - n * P, P);
        for (int p = max(q0 - n * P, 0) + lid; p < p_end; p += wg) acc += row[p];
    }
    part[lid] = acc;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = wg / 2; s > 0; s >>= 1) {
        if (lid < s) part[lid] += part[lid + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lid == 0) db[o] = (accumulate ? db[o] : 0.0f) + part[0];
}

#endif  // COL_KH
