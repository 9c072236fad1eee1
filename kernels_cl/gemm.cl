// GEMM family: C[m,n] = act(alpha * op(A) @ op(B) + beta * C + bias), row-major, batched.
//
// Required defines (every kernel):
//   TRANS_A, TRANS_B  0/1: A stored k x m (lda >= m) / B stored n x k (ldb >= k) when 1.
//   BIAS              0: none, 1: bias[i] per row (m axis), 2: bias[j] per column (n axis).
//   ACT               activation id from common.h (ACT_ALPHA for LEAKY_RELU / ELU).
// Offsets, leading dimensions and batch strides are in float elements. beta == 0 never reads C
// (it may hold NaN). Kernels:
//   gemm_naive        one work-item per element; any shape (tiny problems, k == 0).
//   gemm_pack_a/_b    copy op(A) / op(B) into zero-padded MR- / NR-wide panels for gemm_cpu.
//                     (MR, NR, A_PACKED, B_PACKED, C_TRANS, IMPLICIT_B, C_IMAGES; tuning: UNROLL.)
//                     IMPLICIT_B = 1: op(B) is a convolution's column matrix that exists nowhere; B
//                     packing (gemm_pack_b, gemm_cpu_strip) reads the NCHW image instead, the window
//                     geometry given as COL_KH .. COL_DW (as im2col in conv2d.cl); see pack_b_block.
//                     C_IMAGES = 1: C's columns run over images (a convolution's output pixels of
//                     consecutive images): column j is pixel j % c_p of image j / c_p, images c_img
//                     floats apart, so one wide GEMM writes NCHW directly (trailing args c_p, c_img).
//   gemm_cpu          CPU register tiling: each work-item owns an MR x NR tile of C held in
//                     NR-wide vector accumulators; no local memory and no barriers, so PoCL's
//                     work-group loop stays a plain loop and LLVM keeps the tile in registers.
//   gemm_cpu_strip    the same tiles, a work-item per NR-column strip that packs its own B panel.
//   gemm_tiled        GPU local-memory tiling: TSM x TSN tiles per work-group, TSK-deep slices
//                     staged in local memory, WPTM x WPTN outputs per work-item.
//   gemm_sum_rows     out[j] = sum_i g[i, j] (the bias gradient of linear); built alone with -DSUM_ROWS=1.
#include "common.h"

#ifdef SUM_ROWS
// Sum over rows: out[j] = sum_{i < rows} g[i * ld + j] for j < cols; global (cols). Neighbouring
// work-items read neighbouring columns, so each row is read contiguously.
__kernel void gemm_sum_rows(const int rows, const int cols, __global const float *g, const int g_offset,
                            const int ld, __global float *out, const int out_offset)
{
    const int j = get_global_id(0);
    if (j >= cols) return;
    g += g_offset + j;
    float acc = 0.0f;
    for (int i = 0; i < rows; ++i) acc += g[(size_t)i * ld];
    out[out_offset + j] = acc;
}
#else  // the GEMM kernels

#ifndef TRANS_A
#error "TRANS_A must be defined"
#endif
#ifndef TRANS_B
#error "TRANS_B must be defined"
#endif
#ifndef BIAS
#error "BIAS must be defined"
#endif
#ifndef ACT
#error "ACT must be defined"
#endif

// Element (i, p) of op(A) and (p, j) of op(B), given the matrix base pointers `a` / `b`.
#if TRANS_A
#define A_AT(i, p) a[(size_t)(p) * lda + (i)]
#else
#define A_AT(i, p) a[(size_t)(i) * lda + (p)]
#endif
#if TRANS_B
#define B_AT(p, j) b[(size_t)(j) * ldb + (p)]
#else
#define B_AT(p, j) b[(size_t)(p) * ldb + (j)]
#endif

// The scalar epilogue every variant shares: scale, beta * C, bias, activation, store.
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
    c[idx] = act_forward(v);
}

// ---------------------------------------------------------------------------------------------
// One work-item per output element: global (n, m, batch). Simple and correct for every shape.
__kernel void gemm_naive(const int m, const int n, const int k,
                         __global const float *a, const int a_offset, const int lda, const int stride_a,
                         __global const float *b, const int b_offset, const int ldb, const int stride_b,
                         __global float *c, const int c_offset, const int ldc, const int stride_c,
                         const float alpha, const float beta,
                         __global const float *bias, const int bias_offset)
{
    const int j = get_global_id(0);
    const int i = get_global_id(1);
    const int batch = get_global_id(2);
    if (i >= m || j >= n) return;
    a += a_offset + (size_t)batch * stride_a;
    b += b_offset + (size_t)batch * stride_b;
    c += c_offset + (size_t)batch * stride_c;
    bias += bias_offset;
    float acc = 0.0f;
    for (int p = 0; p < k; ++p) acc = fma(A_AT(i, p), B_AT(p, j), acc);
    store_one(c, (size_t)i * ldc + j, acc, alpha, beta, bias, i, j);
}

// ---------------------------------------------------------------------------------------------
// CPU variant. MR rows x NR columns per work-item (NR = 8 or 16: one OpenCL vector).
#ifdef MR
#if !defined(NR) || !defined(A_PACKED) || !defined(B_PACKED) || !defined(C_TRANS) || !defined(IMPLICIT_B) || \
    !defined(C_IMAGES)
#error "NR, A_PACKED, B_PACKED, C_TRANS, IMPLICIT_B and C_IMAGES must be defined with MR"
#endif
#if C_IMAGES
#if C_TRANS
#error "C_IMAGES needs C_TRANS == 0: image-split columns are stored row by row"
#endif
// The output geometry travels as extra trailing arguments of gemm_cpu and gemm_cpu_strip.
#define C_GEO_PARAMS , const int c_p, const int c_img
#define C_GEO_ARGS , c_p, c_img
#define C_COL(j) ((size_t)((j) / c_p) * c_img + (j) % c_p)
#else
#define C_GEO_PARAMS
#define C_GEO_ARGS
#define C_COL(j) ((size_t)(j))
#endif
#if IMPLICIT_B
#if !B_PACKED || TRANS_B
#error "IMPLICIT_B needs B_PACKED == 1 and TRANS_B == 0: the column matrix is only ever packed"
#endif
#if !defined(COL_KH) || !defined(COL_KW) || !defined(COL_SH) || !defined(COL_SW) || !defined(COL_PH) || \
    !defined(COL_PW) || !defined(COL_DH) || !defined(COL_DW)
#error "IMPLICIT_B needs the whole window geometry: COL_KH, COL_KW, COL_SH, COL_SW, COL_PH, COL_PW, COL_DH, COL_DW"
#endif
// The image geometry that varies per call travels as extra trailing arguments of the B packers.
#define B_GEO_PARAMS , const int geo_h, const int geo_w, const int geo_ow, const int geo_p, const int geo_img
#define B_GEO_ARGS , geo_h, geo_w, geo_ow, geo_p, geo_img
#else
#define B_GEO_PARAMS
#define B_GEO_ARGS
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
// the NR-wide vector types, and the implicit B columns
#include "col_block.h"

// Panels of op(A): [ceil(m/MR)][k][MR], zero-padded past m. Each work-item packs PACK_K columns p of
// one panel. With TRANS_A a panel row is MR contiguous floats of a stored row, and the global size is
// (ceil(m/MR), ceil(k/PACK_K), batch) so neighbouring work-items read neighbouring parts of a row;
// without it, (ceil(k/PACK_K), ceil(m/MR), batch): MR stored rows are read PACK_K floats at a time
// and transposed through private memory.
#define PACK_K 16
__kernel void gemm_pack_a(const int m, const int k,
                          __global const float *a, const int a_offset, const int lda, const int stride_a,
                          __global float *ap, const int stride_ap)
{
#if TRANS_A
    const int it = get_global_id(0);
    const int p0 = get_global_id(1) * PACK_K;
    if (it * MR >= m) return;
#else
    const int p0 = get_global_id(0) * PACK_K;
    const int it = get_global_id(1);
#endif
    const int batch = get_global_id(2);
    if (p0 >= k) return;
    a += a_offset + (size_t)batch * stride_a;
    ap += (size_t)batch * stride_ap + ((size_t)it * k + p0) * MR;
    const int i0 = it * MR;
    const int np = min(PACK_K, k - p0);
#if TRANS_A
    if (i0 + MR <= m) {
        for (int pp = 0; pp < np; ++pp) {
            __global const float *src = a + (size_t)(p0 + pp) * lda + i0;
#if MR == 6
            vstore4(vload4(0, src), 0, ap + pp * MR);
            vstore2(vload2(0, src + 4), 0, ap + pp * MR + 4);
#elif MR == 8
            vstore8(vload8(0, src), 0, ap + pp * MR);
#else
#pragma unroll
            for (int r = 0; r < MR; ++r) ap[pp * MR + r] = src[r];
#endif
        }
        return;
    }
#else
    if (i0 + MR <= m && np == PACK_K) {
        float t[MR][PACK_K];  // t[r][pp] = A(i0 + r, p0 + pp)
#pragma unroll
        for (int r = 0; r < MR; ++r) vstore16(vload16(0, a + (size_t)(i0 + r) * lda + p0), 0, t[r]);
        for (int pp = 0; pp < PACK_K; ++pp)
#pragma unroll
            for (int r = 0; r < MR; ++r) ap[pp * MR + r] = t[r][pp];
        return;
    }
#endif
    for (int pp = 0; pp < np; ++pp)
        for (int r = 0; r < MR; ++r) ap[pp * MR + r] = i0 + r < m ? A_AT(i0 + r, p0 + pp) : 0.0f;
}

#if IMPLICIT_B
// Rows p0 .. p0+np-1 of the NR columns from j0 of a convolution's column matrix, read from the image
// (col_block.h), into a panel (row stride NR).
inline void pack_b_block(__global const float *b, const int ldb, const int n, const int k, const int p0,
                         const int np, const int j0, __global float *dst B_GEO_PARAMS)
{
    col_block(b, n, k, p0, np, j0, dst, NR, NR, geo_h, geo_w, geo_ow, geo_p, geo_img);
}
#else
// Rows p0 .. p0+np-1 (np <= NR) of op(B)'s columns j0 .. j0+NR-1, zero past n, into dst with row
// stride NR. Without TRANS_B that is row segments copied as vectors; with it, NR contiguous runs of
// stored rows (one per column j) transposed through private memory, so reads and writes are contiguous.
inline void pack_b_block(__global const float *b, const int ldb, const int n, const int k, const int p0,
                         const int np, const int j0, __global float *dst)
{
#if TRANS_B
    float t[NR][NR];  // t[q][pp] = B(p0 + pp, j0 + q)
    if (np == NR) {
        for (int q = 0; q < NR; ++q) {
            const floatNR v = j0 + q < n ? VLOADNR(0, b + (size_t)(j0 + q) * ldb + p0) : (floatNR)(0.0f);
            VSTORENR(v, 0, t[q]);
        }
    } else {
        for (int q = 0; q < NR; ++q)
            for (int pp = 0; pp < NR; ++pp) t[q][pp] = j0 + q < n && pp < np ? B_AT(p0 + pp, j0 + q) : 0.0f;
    }
    for (int pp = 0; pp < np; ++pp) {
        float col[NR];
#pragma unroll
        for (int q = 0; q < NR; ++q) col[q] = t[q][pp];
        VSTORENR(VLOADNR(0, col), pp, dst);
    }
#else
    if (j0 + NR <= n) {
        for (int pp = 0; pp < np; ++pp) VSTORENR(VLOADNR(0, b + (size_t)(p0 + pp) * ldb + j0), pp, dst);
    } else {
        for (int pp = 0; pp < np; ++pp)
            for (int q = 0; q < NR; ++q) dst[pp * NR + q] = j0 + q < n ? B_AT(p0 + pp, j0 + q) : 0.0f;
    }
#endif
}
#endif  // IMPLICIT_B

// Panels of op(B): [ceil(n/NR)][k][NR], zero-padded past n. Each work-item packs one NR x PACK_B_ROWS
// block. Neighbouring work-items continue the same stored rows, so reads are a few sequential streams:
// global (ceil(n/NR), ceil(k/PACK_B_ROWS), batch) without TRANS_B, (ceil(k/NR), ceil(n/NR), batch) with it.
// IMPLICIT_B: PACK_B_ROWS = 8 * NR, so that the per-column divisions are paid once per 8 blocks.
#if IMPLICIT_B
#define PACK_B_ROWS (8 * NR)
#else
#define PACK_B_ROWS NR
#endif
__kernel void gemm_pack_b(const int n, const int k,
                          __global const float *b, const int b_offset, const int ldb, const int stride_b,
                          __global float *bp, const int stride_bp B_GEO_PARAMS)
{
#if TRANS_B
    const int p0 = get_global_id(0) * NR;
    const int jt = get_global_id(1);
#else
    const int jt = get_global_id(0);
    const int p0 = get_global_id(1) * PACK_B_ROWS;
    if (jt * NR >= n) return;
#endif
    const int batch = get_global_id(2);
    if (p0 >= k) return;
    b += b_offset + (size_t)batch * stride_b;
    bp += (size_t)batch * stride_bp + ((size_t)jt * k + p0) * NR;
    pack_b_block(b, ldb, n, k, p0, min(PACK_B_ROWS, k - p0), jt * NR, bp B_GEO_ARGS);
}

inline floatNR act_vec(floatNR v)
{
#if ACT != ACT_NONE
    float t[NR];
    VSTORENR(v, 0, t);
#pragma unroll
    for (int q = 0; q < NR; ++q) t[q] = act_forward(t[q]);
    v = VLOADNR(0, t);
#endif
    return v;
}

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
            VSTORENR(act_vec(v), 0, crow);
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

// One C tile: MR rows from it*MR and PANELS blocks of NR columns, the first from panel jt (columns from
// jb <= jt*NR, see store_block). `a` is this batch entry's A (rows read in place) or its A panels
// (A_PACKED); row p of the first block's B is at bt + p * NR (packed) or bt + p * ldb (in place), the
// second block's (PANELS == 2, packed only) one panel further, k * NR floats on.
// A rows past m are clamped to m - 1: they compute discarded values and never read out of range; a
// second block past n reads the first block's panel again and is not stored.
inline void cpu_tile(const int m, const int n, const int k, const int it, const int jt, const int jb,
                     __global const float *a, const int lda, __global const float *bt, const int ldb,
                     __global float *c, const int ldc, const float alpha, const float beta,
                     __global const float *bias C_GEO_PARAMS)
{
    const int i0 = it * MR;
    const int j0 = jt * NR;
#if B_PACKED
#define B_ROW(p) (bt + (size_t)(p) * NR)
#else
#define B_ROW(p) (bt + (size_t)(p) * ldb)
#endif
    ZERO_ACCUMULATORS
#if PANELS == 2
    const bool second = j0 + NR < n;
    __global const float *bt2 = second ? bt + (size_t)k * NR : bt;
// two B vectors per A broadcast: 2 * MR FMAs for MR + 2 loads (one B vector per MR FMAs left the loads,
// not the FMAs, as the bound on AVX-512)
#define FMA_ROW(r, av, p) { const float a_ = (av); acc[r] = fma((floatNR)(a_), bv, acc[r]); \
                            acc2[r] = fma((floatNR)(a_), bv2, acc2[r]); }
#define LOAD_B(p) const floatNR bv = VLOADNR(0, B_ROW(p)); const floatNR bv2 = VLOADNR(0, bt2 + (size_t)(p) * NR);
#else
#define FMA_ROW(r, av, p) acc[r] = fma((floatNR)(av), bv, acc[r]);
#define LOAD_B(p) const floatNR bv = VLOADNR(0, B_ROW(p));
#endif
#if A_PACKED
    a += (size_t)it * k * MR;
#pragma unroll UNROLL
    for (int p = 0; p < k; ++p) {
        LOAD_B(p)
#pragma unroll
        for (int r = 0; r < MR; ++r) FMA_ROW(r, a[p * MR + r], p)
    }
#else
#if TRANS_A
#error "gemm_cpu reads A rows in place only when TRANS_A == 0; pack A otherwise"
#endif
    __global const float *arow[MR];
#pragma unroll
    for (int r = 0; r < MR; ++r) arow[r] = a + (size_t)min(i0 + r, m - 1) * lda;
#pragma unroll UNROLL
    for (int p = 0; p < k; ++p) {
        LOAD_B(p)
#pragma unroll
        for (int r = 0; r < MR; ++r) FMA_ROW(r, arow[r][p], p)
    }
#endif
#undef B_ROW
#undef FMA_ROW
#undef LOAD_B
    store_block(acc, m, n, i0, j0, jb, c, ldc, alpha, beta, bias C_GEO_ARGS);
#if PANELS == 2
    if (second) store_block(acc2, m, n, i0, j0 + NR, j0 + NR, c, ldc, alpha, beta, bias C_GEO_ARGS);
#endif
}

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

// One work-item per C tile. Global (ceil(m/MR) * ceil(n/(NR*PANELS)), batch). B: panels from gemm_pack_b
// (B_PACKED) or, with TRANS_B == 0 and n >= NR, its rows read in place (a small B that stays in
// cache); then the last tile is shifted left to end at column n and stores only its new columns,
// so each element has one writer.
// Tile order: bands of `band` tile rows (MR rows of C each), walked column by column, so the band's
// A rows and the current B panel stay in cache between neighbouring work-items.
__kernel void gemm_cpu(const int m, const int n, const int k,
                       __global const float *a, const int a_offset, const int lda, const int stride_a,
                       __global const float *b, const int b_offset, const int ldb, const int stride_b,
                       __global float *c, const int c_offset, const int ldc, const int stride_c,
                       const float alpha, const float beta,
                       __global const float *bias, const int bias_offset, const int band C_GEO_PARAMS)
{
    const int batch = get_global_id(1);
    int it, jt;  // the tile's row of tiles and its first panel
    if (!tile_at(get_global_id(0), m, n, band, &it, &jt)) return;
#if B_PACKED
    const int jb = jt * NR;
    b += (size_t)batch * stride_b + (size_t)jt * k * NR;
#else
#if TRANS_B
#error "gemm_cpu reads B rows in place only when TRANS_B == 0; pack B otherwise"
#endif
    const int jb = min(jt * NR, n - NR);
    b += b_offset + (size_t)batch * stride_b + jb;
#endif
    cpu_tile(m, n, k, it, jt, jb, a + a_offset + (size_t)batch * stride_a, lda, b, ldb,
             c + c_offset + (size_t)batch * stride_c, ldc, alpha, beta, bias + bias_offset C_GEO_ARGS);
}

#if IMPLICIT_B && COL_PH == 0 && COL_PW == 0 && COL_SW == 1
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
// (conv2d.py makes it; COL_PH = COL_PW = 0 then, stride 1 along rows), each tap's NR columns two row
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
                              B_GEO_PARAMS C_GEO_PARAMS)
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
#pragma unroll
                for (int r = 0; r < MR; ++r) {
                    const floatNR av = (floatNR)(arow[r][p]);
                    acc[r] = fma(av, bv, acc[r]);
                    acc2[r] = fma(av, bv2, acc2[r]);
                }
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
#endif
#pragma unroll
            for (int r = 0; r < MR; ++r) {
                const floatNR av = (floatNR)(arow[r][p]);
                acc[r] = fma(av, bv, acc[r]);
#if PANELS == 2
                acc2[r] = fma(av, bv2, acc2[r]);
#endif
            }
        }
    }
    store_block(acc, m, n, i0, j0, j0, c, ldc, alpha, beta, bias C_GEO_ARGS);
#if PANELS == 2
    if (second) store_block(acc2, m, n, i0, j0 + NR, j0 + NR, c, ldc, alpha, beta, bias C_GEO_ARGS);
#endif
}
#endif  // direct

#if IMPLICIT_B && COL_PH == 0 && COL_PW == 0 && C_TRANS
// A convolution's weight gradient with no column matrix: dW^T = cols . dY^T, the tile's rows of cols (taps
// (channel, kh, kw)) read as scalars straight from a zero-padded copy of the input (conv2d.py's pad2d;
// COL_PH = COL_PW = 0 then, any stride and dilation), dY^T from packed panels ([ceil(n/NR)][k][NR]),
// the tile stored transposed into dW [n][ldc]. m = channels * KH * KW, n = output channels, k = images *
// OH * OW (walked image by image, row by row). One MR x (NR * PANELS) tile per work-item (gemm_cpu's order).
// The im2col it replaces wrote and re-read the whole column matrix (11% of a resnet18 training step).
__kernel void gemm_cpu_dw_direct(const int m, const int n, const int k,
                                 __global const float *xp, const int xp_offset, __global const float *bp,
                                 __global float *c, const int ldc, const int band B_GEO_PARAMS)
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
    int p = 0;
    for (int img = 0; img < k / geo_p; ++img) {
        for (int oh = 0; oh < oh_count; ++oh) {
            __global const float *xrow = xp + (size_t)img * geo_img + oh * COL_SH * geo_w;
            for (int ow = 0; ow < geo_ow; ++ow, ++p) {
                __global const float *xa = xrow + ow * COL_SW;
                const floatNR bv = VLOADNR(0, bt + (size_t)p * NR);
#if PANELS == 2
                const floatNR bv2 = VLOADNR(0, bt2 + (size_t)p * NR);
#endif
#pragma unroll
                for (int r = 0; r < MR; ++r) {
                    const floatNR av = (floatNR)(xa[off[r]]);
                    acc[r] = fma(av, bv, acc[r]);
#if PANELS == 2
                    acc2[r] = fma(av, bv2, acc2[r]);
#endif
                }
            }
        }
    }
    store_block(acc, m, n, i0, j0, j0, c, ldc, 1.0f, 0.0f, c);
#if PANELS == 2
    if (second) store_block(acc2, m, n, i0, j0 + NR, j0 + NR, c, ldc, 1.0f, 0.0f, c);
#endif
}
#endif  // direct weight gradient

// One work-item per column strip of C (NR * PANELS columns, all m rows). Global
// (ceil(n/(NR*PANELS)), batch). The work-item first copies its strip of op(B) into its own NR-wide
// panels of `bp` (laid out as gemm_pack_b's, stride_bp per batch entry), then runs every tile of the
// strip on them while they are in cache: packing costs no separate pass over memory. For an A small
// enough to stay in cache. Built only with B_PACKED == 1.
#if B_PACKED
__kernel void gemm_cpu_strip(const int m, const int n, const int k,
                             __global const float *a, const int a_offset, const int lda, const int stride_a,
                             __global const float *b, const int b_offset, const int ldb, const int stride_b,
                             __global float *bp, const int stride_bp,
                             __global float *c, const int c_offset, const int ldc, const int stride_c,
                             const float alpha, const float beta,
                             __global const float *bias, const int bias_offset B_GEO_PARAMS C_GEO_PARAMS)
{
    const int jt = get_global_id(0) * PANELS;  // the strip's first panel
    const int batch = get_global_id(1);
    const int mt = (m + MR - 1) / MR;
    if (jt * NR >= n) return;
    b += b_offset + (size_t)batch * stride_b;
    bp += (size_t)batch * stride_bp + (size_t)jt * k * NR;
    for (int q = 0; q < PANELS && (jt + q) * NR < n; ++q) {
        __global float *panel = bp + (size_t)q * k * NR;
#if IMPLICIT_B
        pack_b_block(b, ldb, n, k, 0, k, (jt + q) * NR, panel B_GEO_ARGS);  // the whole panel: divisions paid once
#else
        for (int p0 = 0; p0 < k; p0 += NR)
            pack_b_block(b, ldb, n, k, p0, min(NR, k - p0), (jt + q) * NR, panel + p0 * NR);
#endif
    }
    a += a_offset + (size_t)batch * stride_a;
    c += c_offset + (size_t)batch * stride_c;
    bias += bias_offset;
    for (int it = 0; it < mt; ++it)
        cpu_tile(m, n, k, it, jt, jt * NR, a, lda, bp, NR, c, ldc, alpha, beta, bias C_GEO_ARGS);
}
#endif  // B_PACKED
#endif  // MR

// ---------------------------------------------------------------------------------------------
// GPU variant: work-group (TSN / WPTN, TSM / WPTM) computes a TSM x TSN tile of C; each TSK-deep
// slice of op(A) and op(B) is staged in local memory (zero past the edges) and every work-item
// accumulates WPTM x WPTN outputs in registers, spaced one work-group row / column apart so
// neighbouring work-items read neighbouring local addresses.
#ifdef TSM
#if !defined(TSN) || !defined(TSK) || !defined(WPTM) || !defined(WPTN)
#error "TSN, TSK, WPTM and WPTN must be defined with TSM"
#endif
#define RTSM (TSM / WPTM)
#define RTSN (TSN / WPTN)

__kernel __attribute__((reqd_work_group_size(RTSN, RTSM, 1)))
void gemm_tiled(const int m, const int n, const int k,
                __global const float *a, const int a_offset, const int lda, const int stride_a,
                __global const float *b, const int b_offset, const int ldb, const int stride_b,
                __global float *c, const int c_offset, const int ldc, const int stride_c,
                const float alpha, const float beta,
                __global const float *bias, const int bias_offset)
{
    __local float as[TSK][TSM + 1];
    __local float bs[TSK][TSN + 1];
    const int tx = get_local_id(0);
    const int ty = get_local_id(1);
    const int tid = ty * RTSN + tx;
    const int i0 = get_group_id(1) * TSM;
    const int j0 = get_group_id(0) * TSN;
    const int batch = get_global_id(2);
    a += a_offset + (size_t)batch * stride_a;
    b += b_offset + (size_t)batch * stride_b;
    c += c_offset + (size_t)batch * stride_c;
    bias += bias_offset;

    float acc[WPTM][WPTN];
    for (int r = 0; r < WPTM; ++r)
        for (int q = 0; q < WPTN; ++q) acc[r][q] = 0.0f;

    for (int p0 = 0; p0 < k; p0 += TSK) {
        // Loads walk the stored row direction fastest, so global reads are coalesced.
        for (int l = tid; l < TSK * TSM; l += RTSM * RTSN) {
#if TRANS_A
            const int ii = l % TSM, pp = l / TSM;
#else
            const int pp = l % TSK, ii = l / TSK;
#endif
            const int i = i0 + ii, p = p0 + pp;
            as[pp][ii] = (i < m && p < k) ? A_AT(i, p) : 0.0f;
        }
        for (int l = tid; l < TSK * TSN; l += RTSM * RTSN) {
#if TRANS_B
            const int pp = l % TSK, jj = l / TSK;
#else
            const int jj = l % TSN, pp = l / TSN;
#endif
            const int j = j0 + jj, p = p0 + pp;
            bs[pp][jj] = (j < n && p < k) ? B_AT(p, j) : 0.0f;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int pp = 0; pp < TSK; ++pp) {
            float bv[WPTN];
            for (int q = 0; q < WPTN; ++q) bv[q] = bs[pp][tx + q * RTSN];
            for (int r = 0; r < WPTM; ++r) {
                const float av = as[pp][ty + r * RTSM];
                for (int q = 0; q < WPTN; ++q) acc[r][q] = fma(av, bv[q], acc[r][q]);
            }
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    for (int r = 0; r < WPTM; ++r) {
        const int i = i0 + ty + r * RTSM;
        for (int q = 0; q < WPTN; ++q) {
            const int j = j0 + tx + q * RTSN;
            if (i < m && j < n) store_one(c, (size_t)i * ldc + j, acc[r][q], alpha, beta, bias, i, j);
        }
    }
}
#endif  // TSM
#endif  // SUM_ROWS
