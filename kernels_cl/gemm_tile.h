// The C-tile code gemm.cl's kernels and conv2d_direct.cl's direct-convolution kernels share: the multiply-add
// (MADD), the scalar epilogue (store_one) and, with MR, the CPU register tile's vector types, block epilogue
// (store_block), accumulators and tile order (tile_at).
//
// Required defines: BIAS (0: none, 1: bias[i] per row, 2: bias[j] per column). With MR (the tile's rows):
// NR (8 or 16), A_PACKED, B_PACKED, C_TRANS, C_IMAGES; tuning: PANELS (1 or 2), UNROLL. The host picks MR, NR
// and PANELS from the device's registers (hetero/ops/gemm/config.py, CPU_TILES); every MR from 1 to 16 is
// correct for any m (rows past m are clamped and not stored).
#ifndef HETERO_GEMM_TILE_H
#define HETERO_GEMM_TILE_H

#ifndef BIAS
#error "BIAS must be defined"
#endif

// a * b + c: one FMA where the target has one (the compiler contracts it), a multiply and an add where it has
// none. fma() would be exact there, a library call per lane (PoCL built for SSE2).
#pragma OPENCL FP_CONTRACT ON
#define MADD(a, b, c) ((a) * (b) + (c))

// The scalar epilogue every variant shares: scale, beta * C, bias, store.
inline void store_one(__global float *c, size_t idx, float acc, float alpha, float beta,
                      __global const float *bias, int i, int j)
{
    float v = alpha * acc;
    if (beta != 0.0f) v += beta * c[idx];
#if BIAS == 1
    v += bias[i];
#elif BIAS == 2
    v += bias[j];
#endif
    c[idx] = v;
}

#ifdef MR
#if !defined(NR) || !defined(A_PACKED) || !defined(B_PACKED) || !defined(C_TRANS) || !defined(C_IMAGES)
#error "NR, A_PACKED, B_PACKED, C_TRANS and C_IMAGES must be defined with MR"
#endif
#if C_IMAGES
#if C_TRANS
#error "C_IMAGES needs C_TRANS == 0: image-split columns are stored row by row"
#endif
// The output geometry travels as extra trailing arguments of the tile kernels.
#define C_GEO_PARAMS , const int c_p, const int c_img
#define C_GEO_ARGS , c_p, c_img
#define C_COL(j) ((size_t)((j) / c_p) * c_img + (j) % c_p)
#else
#define C_GEO_PARAMS
#define C_GEO_ARGS
#define C_COL(j) ((size_t)(j))
#endif
#ifndef UNROLL
#define UNROLL 4
#endif
// Tuning: NR-wide blocks per tile (1 or 2; 2 needs packed B panels).
#ifndef PANELS
#define PANELS 1
#endif
#if PANELS != 1 && PANELS != 2
#error "PANELS must be 1 or 2"
#endif
#if PANELS == 2 && !B_PACKED
#error "PANELS == 2 needs B_PACKED: the second block is read from the next packed panel"
#endif
// the NR-wide vector types (and, given the window geometry, the implicit B columns)
#include "col_block.h"

// F(0) F(1) ... F(MR - 1), written out: the tile's rows in the k loops without a loop of their own. Mesa's
// llvmpipe (rusticl) ignores `#pragma unroll` on those loops, and it ends every loop of a work-item once the
// work-item has run 65535 loop iterations in all (gallivm's LP_MAX_TGSI_LOOP_ITERATIONS), silently: an
// 8-row loop per k step made that 10 iterations per k step, so a tile with k > 6553 lost the rest of its sum.
// Written out, a k step is one iteration (the budget the launchers keep to: hetero/ops/gemm/cpu.py).
#define ROWS_1(F) F(0)
#define ROWS_2(F) ROWS_1(F) F(1)
#define ROWS_3(F) ROWS_2(F) F(2)
#define ROWS_4(F) ROWS_3(F) F(3)
#define ROWS_5(F) ROWS_4(F) F(4)
#define ROWS_6(F) ROWS_5(F) F(5)
#define ROWS_7(F) ROWS_6(F) F(6)
#define ROWS_8(F) ROWS_7(F) F(7)
#define ROWS_9(F) ROWS_8(F) F(8)
#define ROWS_10(F) ROWS_9(F) F(9)
#define ROWS_11(F) ROWS_10(F) F(10)
#define ROWS_12(F) ROWS_11(F) F(11)
#define ROWS_13(F) ROWS_12(F) F(12)
#define ROWS_14(F) ROWS_13(F) F(13)
#define ROWS_15(F) ROWS_14(F) F(14)
#define ROWS_16(F) ROWS_15(F) F(15)
#if MR < 1 || MR > 16
#error "MR must be between 1 and 16"
#endif
#define ROWS_CAT(a, b) a##b
#define ROWS_N(n, F) ROWS_CAT(ROWS_, n)(F)
#define FOR_EACH_ROW(F) ROWS_N(MR, F)
// The epilogue of one MR x NR block of C: rows from i0, the NR columns from jb (<= j0) of which those
// from j0 are stored (see gemm_cpu for the shifted last block of an in-place B).
// C_TRANS: the host swapped the operands (C^T = op(B)^T op(A)^T); m, n and the block are those of C^T,
// and the epilogue stores transposed.
inline void store_block(const floatNR *acc, const int m, const int n, const int i0, const int j0, const int jb,
                        __global float *c, const int ldc, const float alpha, const float beta,
                        __global const float *bias C_GEO_PARAMS)
{
#if C_TRANS
    // element (i, j) here is C[j, i]; each C row j gets up to MR contiguous values
    float t[MR][NR];
#pragma unroll
    for (int r = 0; r < MR; ++r) VSTORENR(acc[r], 0, t[r]);
    const int rows = min(MR, m - i0);
    for (int q = j0 - jb; q < NR && jb + q < n; ++q)
        for (int r = 0; r < rows; ++r)
            store_one(c, (size_t)(jb + q) * ldc + i0 + r, t[r][q], alpha, beta, bias, jb + q, i0 + r);
#else
#if C_IMAGES
    const int img0 = j0 / c_p;
    const int pix0 = j0 - img0 * c_p;
    const bool one_image = pix0 + NR <= c_p;  // the block's columns are contiguous in C
    __global float *cblock = c + (size_t)img0 * c_img + pix0;
#else
    const bool one_image = true;
    __global float *cblock = c + j0;
#endif
    if (i0 + MR <= m && j0 + NR <= n && one_image) {  // full block (then jb == j0): vector epilogue
#if BIAS == 2
        const floatNR bias_v = VLOADNR(0, bias + j0);
#endif
#pragma unroll
        for (int r = 0; r < MR; ++r) {
            __global float *crow = cblock + (size_t)(i0 + r) * ldc;
            floatNR v = alpha * acc[r];
            if (beta != 0.0f) v += beta * VLOADNR(0, crow);
#if BIAS == 1
            v += bias[i0 + r];
#elif BIAS == 2
            v += bias_v;
#endif
            VSTORENR(v, 0, crow);
        }
    } else {
        for (int r = 0; r < MR && i0 + r < m; ++r) {
            float t[NR];
            VSTORENR(acc[r], 0, t);
            for (int q = j0 - jb; q < NR && jb + q < n; ++q)
                store_one(c, (size_t)(i0 + r) * ldc + C_COL(jb + q), t[q], alpha, beta, bias, i0 + r, jb + q);
        }
    }
#endif
}

// A tile's accumulators, zeroed: acc for its first NR-wide block, acc2 for its second (PANELS == 2).
#if PANELS == 2
#define ZERO_ACCUMULATORS floatNR acc[MR], acc2[MR]; \
    for (int r = 0; r < MR; ++r) acc[r] = acc2[r] = (floatNR)(0.0f);
#else
#define ZERO_ACCUMULATORS floatNR acc[MR]; \
    for (int r = 0; r < MR; ++r) acc[r] = (floatNR)(0.0f);
#endif

// Tile `tile` of the ceil(m/MR) x ceil(n/(NR*PANELS)) tiles, in bands of `band` tile rows walked column by
// column: its tile row *it and first panel *jt; false past the last tile.
inline bool tile_at(const int tile, const int m, const int n, const int band, int *it, int *jt)
{
    const int mt = (m + MR - 1) / MR, nt = (n + NR * PANELS - 1) / (NR * PANELS);  // nt: tile columns
    if (tile >= mt * nt) return false;
    const int band_start = tile / (band * nt) * band;
    const int rows_in_band = min(band, mt - band_start);
    const int in_band = tile - band_start * nt;
    *it = band_start + in_band % rows_in_band;
    *jt = in_band / rows_in_band * PANELS;
    return true;
}

#endif  // MR
#endif  // HETERO_GEMM_TILE_H
