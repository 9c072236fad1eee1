// GEMM family: C[m,n] = alpha * op(A) @ op(B) + beta * C + bias, row-major, batched.
//
// Required defines (every kernel but gemm_sum_rows):
//   TRANS_A, TRANS_B  0/1: A stored k x m (lda >= m) / B stored n x k (ldb >= k) when 1.
//   BIAS              0: none, 1: bias[i] per row (m axis), 2: bias[j] per column (n axis).
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
//   gemm_xgemm        the GPU GEMM (gemm_xgemm.h, built with MWG): CLBlast-style tiles, vector widths
//                     and local-memory staging as defines, chosen per vendor class by config.py.
//   gemm_tiled        the previous GPU kernel, kept for comparison (benchmarks/gemm.py --kernel tiled):
//                     TSM x TSN tiles per work-group, TSK-deep slices staged in local memory, WPTM x WPTN
//                     outputs per work-item.
//   gemm_sum_rows     out[j] = sum_i g[i, j] (the bias gradient of linear); built alone with -DSUM_ROWS=1.
// The tile code these kernels share with the direct convolution (conv2d_direct.cl) is in gemm_tile.h.

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
#include "gemm_tile.h"

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
    for (int p = 0; p < k; ++p) acc = MADD(A_AT(i, p), B_AT(p, j), acc);
    store_one(c, (size_t)i * ldc + j, acc, alpha, beta, bias, i, j);
}

// ---------------------------------------------------------------------------------------------
// CPU variant. MR rows x NR columns per work-item (NR = 8 or 16: one OpenCL vector); the tile machinery
// (vector types, store_block, tile_at) is in gemm_tile.h.
#ifdef MR
#ifndef IMPLICIT_B
#error "IMPLICIT_B must be defined with MR"
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
#define FMA_ROW(r, av, p) { const floatNR a_ = (floatNR)(av); acc[r] = MADD(a_, bv, acc[r]); \
                            acc2[r] = MADD(a_, bv2, acc2[r]); }
#define LOAD_B(p) const floatNR bv = VLOADNR(0, B_ROW(p)); const floatNR bv2 = VLOADNR(0, bt2 + (size_t)(p) * NR);
#else
#define FMA_ROW(r, av, p) acc[r] = MADD((floatNR)(av), bv, acc[r]);
#define LOAD_B(p) const floatNR bv = VLOADNR(0, B_ROW(p));
#endif
#if A_PACKED
    a += (size_t)it * k * MR;
#pragma unroll UNROLL
    for (int p = 0; p < k; ++p) {
        LOAD_B(p)
#define ROW_PACKED(r) FMA_ROW(r, a[p * MR + r], p)
        FOR_EACH_ROW(ROW_PACKED)  // no row loop: one loop iteration per k step (see gemm_tile.h)
#undef ROW_PACKED
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
#define ROW_IN_PLACE(r) FMA_ROW(r, arow[r][p], p)
        FOR_EACH_ROW(ROW_IN_PLACE)
#undef ROW_IN_PLACE
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
                for (int q = 0; q < WPTN; ++q) acc[r][q] = MADD(av, bv[q], acc[r][q]);
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

#ifdef MWG
#include "gemm_xgemm.h"
#endif
#endif  // SUM_ROWS
