// Direct convolution on the CPU GEMM's register tiles (gemm_tile.h), reading a zero-padded copy of the
// input (conv2d.cl's pad2d) so that nothing is packed or unfolded:
//   gemm_cpu_direct     (C_TRANS == 0) the forward, C = W @ cols + bias, C stored per image (C_IMAGES = 1).
//   gemm_cpu_dw_direct  (C_TRANS == 1) the weight gradient dW^T = cols . dY^T, dY^T from packed panels.
//
// Required defines: those of gemm_tile.h (BIAS, MR, NR, A_PACKED, B_PACKED, C_TRANS, C_IMAGES; PANELS) and
// the window geometry COL_KH, COL_KW, COL_SH, COL_SW, COL_DH, COL_DW with COL_PH = COL_PW = 0 (the copy is
// already padded).
#include "gemm_tile.h"

#ifndef MR
#error "MR must be defined"
#endif
#ifndef COL_KH
#error "COL_KH must be defined"
#endif
#ifndef COL_KW
#error "COL_KW must be defined"
#endif
#ifndef COL_SH
#error "COL_SH must be defined"
#endif
#ifndef COL_SW
#error "COL_SW must be defined"
#endif
#ifndef COL_PH
#error "COL_PH must be defined"
#endif
#ifndef COL_PW
#error "COL_PW must be defined"
#endif
#ifndef COL_DH
#error "COL_DH must be defined"
#endif
#ifndef COL_DW
#error "COL_DW must be defined"
#endif
#if COL_PH != 0 || COL_PW != 0
#error "the direct kernels read a zero-padded copy of the input: COL_PH and COL_PW must be 0"
#endif

#if !C_TRANS  // the forward
#if COL_SW != 1
#error "gemm_cpu_direct reads the padded input at stride 1 along rows: COL_SW must be 1"
#endif
// The B vector of one block for one tap: its columns' elements at origin + tap, from two row loads and a
// select (columns in at most two rows) or gathered. Every address is inside the zero-padded image.
typedef struct {
    int at_first, at_next;  // lane q < len reads at_first + q, the others at_next + q (+ tap)
    intNR first, origin;
    bool two;
} direct_block;

inline direct_block direct_geometry(const int j0, const int n, const int geo_w, const int geo_ow,
                                    const int geo_p, const int geo_img)
{
    direct_block d;
    const intNR j = min(j0 + LANES_NR, (intNR)(n - 1));
    const intNR img = j / geo_p;
    const intNR pix = j - img * geo_p;
    const intNR oh = pix / geo_ow;
    d.origin = img * geo_img + oh * COL_SH * geo_w + (pix - oh * geo_ow);
    const int len = min(NR, geo_ow - (pix.s0 - oh.s0 * geo_ow));
    d.first = LANES_NR < len;
    const int j_next = min(j0 + len, n - 1);
    const int img_next = j_next / geo_p;
    const int pix_next = j_next - img_next * geo_p;
    const int oh_next = pix_next / geo_ow;
    d.two = all(d.first | ((img == img_next) & (oh == oh_next)));
    d.at_first = d.origin.s0;
    d.at_next = len == NR ? d.origin.s0
                          : img_next * geo_img + oh_next * COL_SH * geo_w + (pix_next - oh_next * geo_ow) - len;
    return d;
}

inline floatNR direct_load(__global const float *b, const direct_block *d, const int tap)
{
    if (d->two) return select(VLOADNR(0, b + d->at_next + tap), VLOADNR(0, b + d->at_first + tap), d->first);
    int at[NR];
    float t[NR];
    VSTORENR(d->origin + tap, 0, at);
#pragma unroll
    for (int q = 0; q < NR; ++q) t[q] = b[at[q]];
    return VLOADNR(0, t);
}

// Convolution as a GEMM with no packing at all: B read straight from a zero-padded copy of the image
// (hetero/ops/conv2d/direct.py makes it; COL_PH = COL_PW = 0 then, stride 1 along rows), each tap's NR columns two row
// loads and a select. One MR x (NR * PANELS) tile per work-item, tiles ordered as gemm_cpu's (global
// ceil(m/MR) * ceil(n/(NR*PANELS)), rounded up to the work-group). k is
// channels * KH * KW; `b` points at the padded channel 0 of image 0, images geo_img floats apart,
// geo_h x geo_w padded pixels per channel; slack of NR floats either side of the buffer is readable.
__kernel void gemm_cpu_direct(const int m, const int n, const int k,
                              __global const float *a, const int a_offset, const int lda,
                              __global const float *b, const int b_offset,
                              __global float *c, const int c_offset, const int ldc,
                              const float alpha, const float beta,
                              __global const float *bias, const int bias_offset, const int band
                             , const int geo_h, const int geo_w, const int geo_ow, const int geo_p, const int geo_img C_GEO_PARAMS)
{
    int it, jt;
    if (!tile_at(get_global_id(0), m, n, band, &it, &jt)) return;
    const int i0 = it * MR, j0 = jt * NR;
    a += a_offset;
    b += b_offset;
    c += c_offset;
    bias += bias_offset;
    __global const float *arow[MR];
#pragma unroll
    for (int r = 0; r < MR; ++r) arow[r] = a + (size_t)min(i0 + r, m - 1) * lda;
    const direct_block d1 = direct_geometry(j0, n, geo_w, geo_ow, geo_p, geo_img);
    ZERO_ACCUMULATORS
#if PANELS == 2
    const bool second = j0 + NR < n;
    const direct_block d2 = direct_geometry(second ? j0 + NR : j0, n, geo_w, geo_ow, geo_p, geo_img);
#endif
    const int plane = geo_h * geo_w;
    int p = 0;
#if PANELS == 2
    const bool fast = d1.two && d2.two;
    const int f1 = d1.at_first, n1 = d1.at_next, f2 = d2.at_first, n2 = d2.at_next;
    const intNR m1 = d1.first, m2 = d2.first;
    if (fast) {
        for (int ch = 0; ch < k / (COL_KH * COL_KW); ++ch) {
            __global const float *bc = b + ch * plane;
#pragma unroll
            for (int t = 0; t < COL_KH * COL_KW; ++t, ++p) {
                const int tap = (t / COL_KW) * COL_DH * geo_w + (t % COL_KW) * COL_DW;
                const floatNR bv = select(VLOADNR(0, bc + n1 + tap), VLOADNR(0, bc + f1 + tap), m1);
                const floatNR bv2 = select(VLOADNR(0, bc + n2 + tap), VLOADNR(0, bc + f2 + tap), m2);
#define ROW_TWO(r) { const floatNR av = (floatNR)(arow[r][p]); acc[r] = MADD(av, bv, acc[r]); \
                     acc2[r] = MADD(av, bv2, acc2[r]); }
                FOR_EACH_ROW(ROW_TWO)  // no row loop (see gemm_tile.h)
#undef ROW_TWO
            }
        }
    } else
#endif
    for (int ch = 0; ch < k / (COL_KH * COL_KW); ++ch) {
#pragma unroll
        for (int t = 0; t < COL_KH * COL_KW; ++t, ++p) {
            const int tap = ch * plane + (t / COL_KW) * COL_DH * geo_w + (t % COL_KW) * COL_DW;
            const floatNR bv = direct_load(b, &d1, tap);
#if PANELS == 2
            const floatNR bv2 = direct_load(b, &d2, tap);
#define ROW_FMA(r) { const floatNR av = (floatNR)(arow[r][p]); acc[r] = MADD(av, bv, acc[r]); \
                     acc2[r] = MADD(av, bv2, acc2[r]); }
#else
#define ROW_FMA(r) acc[r] = MADD((floatNR)(arow[r][p]), bv, acc[r]);
#endif
            FOR_EACH_ROW(ROW_FMA)
#undef ROW_FMA
        }
    }
    store_block(acc, m, n, i0, j0, j0, c, ldc, alpha, beta, bias C_GEO_ARGS);
#if PANELS == 2
    if (second) store_block(acc2, m, n, i0, j0 + NR, j0 + NR, c, ldc, alpha, beta, bias C_GEO_ARGS);
#endif
}
#endif  // forward

#if C_TRANS  // the weight gradient
// A convolution's weight gradient with no column matrix: dW^T = beta * dW^T + cols . dY^T, the tile's rows of
// cols (taps (channel, kh, kw)) read as scalars straight from a zero-padded copy of the input (conv2d.cl's
// pad2d; COL_PH = COL_PW = 0 then, any stride and dilation), dY^T from packed panels ([ceil(n/NR)][k][NR]),
// the tile stored transposed into dW [n][ldc]. m = channels * KH * KW, n = output channels, k = the columns
// of k / geo_ow whole output rows from output row row0 (rows counted over all images, geo_p / geo_ow per
// image), walked row by row: the host runs long sums as several launches (beta = 1 after the first) so that
// no work-item's loops run past the budget in hetero/ops/gemm/cpu.py. One MR x (NR * PANELS) tile per
// work-item (gemm_cpu's order). The im2col it replaces wrote and re-read the whole column matrix.
__kernel void gemm_cpu_dw_direct(const int m, const int n, const int k,
                                 __global const float *xp, const int xp_offset, __global const float *bp,
                                 __global float *c, const int ldc, const int band, const float beta, const int row0,
                                 const int geo_h, const int geo_w, const int geo_ow, const int geo_p, const int geo_img)
{
    int it, jt;
    if (!tile_at(get_global_id(0), m, n, band, &it, &jt)) return;
    const int i0 = it * MR, j0 = jt * NR;
    xp += xp_offset;
    int off[MR];  // each tap row's offset from its pixel's window origin
#pragma unroll
    for (int r = 0; r < MR; ++r) {
        const int row = min(i0 + r, m - 1);
        const int ch = row / (COL_KH * COL_KW);
        const int t = row - ch * (COL_KH * COL_KW);
        off[r] = ch * geo_h * geo_w + (t / COL_KW) * COL_DH * geo_w + (t % COL_KW) * COL_DW;
    }
    __global const float *bt = bp + (size_t)jt * k * NR;
    ZERO_ACCUMULATORS
#if PANELS == 2
    const bool second = j0 + NR < n;
    __global const float *bt2 = second ? bt + (size_t)k * NR : bt;
#endif
    const int oh_count = geo_p / geo_ow;
    const int row_end = row0 + k / geo_ow;
    int p = 0;
    for (int row = row0; row < row_end; ++row) {
        const int img = row / oh_count;  // one division per output row
        const int oh = row - img * oh_count;
        __global const float *xrow = xp + (size_t)img * geo_img + oh * COL_SH * geo_w;
        for (int ow = 0; ow < geo_ow; ++ow, ++p) {
            __global const float *xa = xrow + ow * COL_SW;
            const floatNR bv = VLOADNR(0, bt + (size_t)p * NR);
#if PANELS == 2
            const floatNR bv2 = VLOADNR(0, bt2 + (size_t)p * NR);
#define ROW_FMA(r) { const floatNR av = (floatNR)(xa[off[r]]); acc[r] = MADD(av, bv, acc[r]); \
                     acc2[r] = MADD(av, bv2, acc2[r]); }
#else
#define ROW_FMA(r) acc[r] = MADD((floatNR)(xa[off[r]]), bv, acc[r]);
#endif
            FOR_EACH_ROW(ROW_FMA)  // no row loop (see gemm_tile.h)
#undef ROW_FMA
        }
    }
    store_block(acc, m, n, i0, j0, j0, c, ldc, 1.0f, beta, c);
#if PANELS == 2
    if (second) store_block(acc2, m, n, i0, j0 + NR, j0 + NR, c, ldc, 1.0f, beta, c);
#endif
}
#endif  // weight gradient

