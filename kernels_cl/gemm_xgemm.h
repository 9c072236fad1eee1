// gemm_xgemm: the GPU GEMM, parameterised in the manner of CLBlast's xgemm (C. Nugteren, "CLBlast: a tuned
// OpenCL BLAS library", IWOCL 2018, after Matsumoto et al.), written for gemm.cl's row-major operands and
// epilogue. Included by gemm.cl when MWG is defined (with TRANS_A, TRANS_B and BIAS, see there).
//
// Required defines:
//   MWG, NWG, KWG  the work-group's tile: MWG rows x NWG columns of C, k walked KWG at a time.
//   MDIMC, NDIMC   work-items per group along m and n: local size (NDIMC, MDIMC, 1). Each work-item computes
//                  MWI = MWG / MDIMC rows by NWI = NWG / NDIMC columns, in VWM-row and VWN-column vectors
//                  spaced a work-group apart (CLBlast's STRM = STRN = 1), so neighbouring work-items read
//                  neighbouring local addresses and store neighbouring C vectors.
//   VWM, VWN       vector widths (1, 2, 4 or 8): A's global loads along its stored rows and its local reads
//                  along m (VWM); B's global loads along its stored rows, its local reads and C's stores
//                  along n (VWN).
//   SA, SB         1: each KWG-deep slice of A / B is staged in local memory, shared by the group; 0: every
//                  work-item reads its own A / B values from global memory (cached) in the inner loop.
// Tuning: KWI, the unroll factor of the inner k loop (default 2, as CLBlast's tuned entries mostly have).
//
// Sizes need not be multiples of the tile, and nothing is padded: rows of A past m and columns of B past n are
// read clamped to the last one (they only reach elements of C that are never stored), k's last partial slice
// runs its inner loop to k only (indices past k are clamped, their values unused), a vector crossing an edge
// is gathered element by element, and stores stop at m and n. Padding instead (CLBlast copies A and B into
// tile-multiple buffers first) adds two copies and the padded work: on PoCL a 1000^3 GEMM ran here at the
// GFLOP/s of an exact 1024^3 one, so the padded run would only have been slower.
#ifndef HETERO_GEMM_XGEMM_H
#define HETERO_GEMM_XGEMM_H

#if !defined(NWG) || !defined(KWG) || !defined(MDIMC) || !defined(NDIMC)
#error "NWG, KWG, MDIMC and NDIMC must be defined with MWG"
#endif
#if !defined(VWM) || !defined(VWN) || !defined(SA) || !defined(SB)
#error "VWM, VWN, SA and SB must be defined with MWG"
#endif
#ifndef KWI
#define KWI 2
#endif
#if MWG % (MDIMC * VWM) != 0 || NWG % (NDIMC * VWN) != 0
#error "MWG must be a multiple of MDIMC * VWM and NWG of NDIMC * VWN"
#endif
#if KWG % KWI != 0
#error "KWG must be a multiple of KWI"
#endif
#if (!TRANS_A && KWG % VWM != 0) || (TRANS_B && KWG % VWN != 0)
#error "KWG must be a multiple of the vector width of an operand stored with k contiguous"
#endif

#define MWI (MWG / MDIMC)
#define NWI (NWG / NDIMC)
#define XG_THREADS (MDIMC * NDIMC)
// Local rows of a slice: k-major, m (n) contiguous. An operand stored with k contiguous (A without TRANS_A,
// B with TRANS_B) is transposed on its way in; one float of padding per row spreads those writes over banks.
#define ALD (MWG + (TRANS_A ? 0 : 1))
#define BLD (NWG + (TRANS_B ? 1 : 0))

#define XG_CAT_(a, b) a##b
#define XG_CAT(a, b) XG_CAT_(a, b)
#if VWM == 1
#define floatVM float
#define LOAD_VM(p) (*(p))
#define STORE_VM(v, p) (*(p) = (v))
#elif VWM == 2 || VWM == 4 || VWM == 8
#define floatVM XG_CAT(float, VWM)
#define LOAD_VM(p) XG_CAT(vload, VWM)(0, p)
#define STORE_VM(v, p) XG_CAT(vstore, VWM)(v, 0, p)
#else
#error "VWM must be 1, 2, 4 or 8"
#endif
#if VWN == 1
#define floatVN float
#define LOAD_VN(p) (*(p))
#define STORE_VN(v, p) (*(p) = (v))
#elif VWN == 2 || VWN == 4 || VWN == 8
#define floatVN XG_CAT(float, VWN)
#define LOAD_VN(p) XG_CAT(vload, VWN)(0, p)
#define STORE_VN(v, p) XG_CAT(vstore, VWN)(v, 0, p)
#else
#error "VWN must be 1, 2, 4 or 8"
#endif

// VWM elements of op(A) from (i, p) along A's stored rows: (i .. i+VWM-1, p) with TRANS_A (A stored k x m),
// (i, p .. p+VWM-1) without. Indices past m or k are clamped (see the top); only a vector that crosses the
// edge is gathered element by element, so whole vectors stay single loads.
inline floatVM xg_load_a(__global const float *a, const int lda, const int m, const int k, const int i,
                         const int p)
{
#if TRANS_A
    __global const float *row = a + (size_t)min(p, k - 1) * lda;
    if (i + VWM <= m) return LOAD_VM(row + i);
    float t[VWM];
    for (int e = 0; e < VWM; ++e) t[e] = row[min(i + e, m - 1)];
#else
    __global const float *row = a + (size_t)min(i, m - 1) * lda;
    if (p + VWM <= k) return LOAD_VM(row + p);
    float t[VWM];
    for (int e = 0; e < VWM; ++e) t[e] = row[min(p + e, k - 1)];
#endif
    return LOAD_VM(t);
}

// VWN elements of op(B) from (p, j) along B's stored rows: (p, j .. j+VWN-1) without TRANS_B (B stored k x n),
// (p .. p+VWN-1, j) with it; clamped as xg_load_a.
inline floatVN xg_load_b(__global const float *b, const int ldb, const int n, const int k, const int p,
                         const int j)
{
#if TRANS_B
    __global const float *row = b + (size_t)min(j, n - 1) * ldb;
    if (p + VWN <= k) return LOAD_VN(row + p);
    float t[VWN];
    for (int f = 0; f < VWN; ++f) t[f] = row[min(p + f, k - 1)];
#else
    __global const float *row = b + (size_t)min(p, k - 1) * ldb;
    if (j + VWN <= n) return LOAD_VN(row + j);
    float t[VWN];
    for (int f = 0; f < VWN; ++f) t[f] = row[min(j + f, n - 1)];
#endif
    return LOAD_VN(t);
}

#if SA
// The group copies op(A)'s rows i0 .. i0+MWG-1, columns p0 .. p0+KWG-1 into alm[pp * ALD + ii], neighbouring
// work-items on neighbouring vectors of a stored row, so global reads coalesce.
inline void xg_stage_a(__local float *alm, __global const float *a, const int lda, const int m, const int k,
                       const int i0, const int p0, const int tid)
{
#if TRANS_A
    for (int v = tid; v < KWG * (MWG / VWM); v += XG_THREADS) {
        const int pp = v / (MWG / VWM), ii = v % (MWG / VWM) * VWM;
        STORE_VM(xg_load_a(a, lda, m, k, i0 + ii, p0 + pp), alm + pp * ALD + ii);
    }
#else
    for (int v = tid; v < MWG * (KWG / VWM); v += XG_THREADS) {
        const int ii = v / (KWG / VWM), pp = v % (KWG / VWM) * VWM;
        float t[VWM];
        STORE_VM(xg_load_a(a, lda, m, k, i0 + ii, p0 + pp), t);
        for (int e = 0; e < VWM; ++e) alm[(pp + e) * ALD + ii] = t[e];
    }
#endif
}
#endif

#if SB
// The group copies op(B)'s rows p0 .. p0+KWG-1, columns j0 .. j0+NWG-1 into blm[pp * BLD + jj].
inline void xg_stage_b(__local float *blm, __global const float *b, const int ldb, const int n, const int k,
                       const int j0, const int p0, const int tid)
{
#if TRANS_B
    for (int v = tid; v < NWG * (KWG / VWN); v += XG_THREADS) {
        const int jj = v / (KWG / VWN), pp = v % (KWG / VWN) * VWN;
        float t[VWN];
        STORE_VN(xg_load_b(b, ldb, n, k, p0 + pp, j0 + jj), t);
        for (int f = 0; f < VWN; ++f) blm[(pp + f) * BLD + jj] = t[f];
    }
#else
    for (int v = tid; v < KWG * (NWG / VWN); v += XG_THREADS) {
        const int pp = v / (NWG / VWN), jj = v % (NWG / VWN) * VWN;
        STORE_VN(xg_load_b(b, ldb, n, k, p0 + pp, j0 + jj), blm + pp * BLD + jj);
    }
#endif
}
#endif

// One step of k, pp within the slice from p0: acc[r][q] += op(A)(row r, p0 + pp) * op(B)(p0 + pp, vector q)
// for the work-item's rows i0 + (x * MDIMC + ty) * VWM + e (r = x * VWM + e) and column vectors
// j0 + (q * NDIMC + tx) * VWN. With SA / SB the operand is read from its staged slice, else from global memory.
inline void xg_step(floatVN acc[MWI][NWI / VWN], __local const float *alm, __local const float *blm,
                    __global const float *a, const int lda, __global const float *b, const int ldb,
                    const int m, const int n, const int k, const int i0, const int j0, const int p0,
                    const int pp, const int tx, const int ty)
{
    float apm[MWI];
#pragma unroll
    for (int x = 0; x < MWI / VWM; ++x) {
        const int ii = (x * MDIMC + ty) * VWM;
#if SA
        STORE_VM(LOAD_VM(alm + pp * ALD + ii), apm + x * VWM);
#elif TRANS_A
        STORE_VM(xg_load_a(a, lda, m, k, i0 + ii, p0 + pp), apm + x * VWM);
#else
#pragma unroll
        for (int e = 0; e < VWM; ++e) apm[x * VWM + e] = a[(size_t)min(i0 + ii + e, m - 1) * lda + p0 + pp];
#endif
    }
    floatVN bpm[NWI / VWN];
#pragma unroll
    for (int q = 0; q < NWI / VWN; ++q) {
        const int jj = (q * NDIMC + tx) * VWN;
#if SB
        bpm[q] = LOAD_VN(blm + pp * BLD + jj);
#elif !TRANS_B
        bpm[q] = xg_load_b(b, ldb, n, k, p0 + pp, j0 + jj);
#else
        float t[VWN];
#pragma unroll
        for (int f = 0; f < VWN; ++f) t[f] = b[(size_t)min(j0 + jj + f, n - 1) * ldb + p0 + pp];
        bpm[q] = LOAD_VN(t);
#endif
    }
#pragma unroll
    for (int r = 0; r < MWI; ++r)
#pragma unroll
        for (int q = 0; q < NWI / VWN; ++q) acc[r][q] = fma((floatVN)(apm[r]), bpm[q], acc[r][q]);
}

// The arguments every xg_step call passes.
#define XG_STEP_ARGS acc, alm, blm, a, lda, b, ldb, m, n, k, i0, j0, p0

// Global (ceil(n / NWG) * NDIMC, ceil(m / MWG) * MDIMC, batch), local (NDIMC, MDIMC, 1): a work-group per
// MWG x NWG tile of C. Every work-item of a group takes part in the staging and the barriers, even one whose
// rows or columns lie past the edge; only the stores skip them.
__kernel __attribute__((reqd_work_group_size(NDIMC, MDIMC, 1)))
void gemm_xgemm(const int m, const int n, const int k,
                __global const float *a, const int a_offset, const int lda, const int stride_a,
                __global const float *b, const int b_offset, const int ldb, const int stride_b,
                __global float *c, const int c_offset, const int ldc, const int stride_c,
                const float alpha, const float beta,
                __global const float *bias, const int bias_offset)
{
#if SA
    __local float alm[KWG * ALD];
#else
    __local const float *alm = 0;
#endif
#if SB
    __local float blm[KWG * BLD];
#else
    __local const float *blm = 0;
#endif
    const int tx = get_local_id(0), ty = get_local_id(1);
    const int tid = ty * NDIMC + tx;
    const int i0 = get_group_id(1) * MWG, j0 = get_group_id(0) * NWG;
    const int batch = get_global_id(2);
    a += a_offset + (size_t)batch * stride_a;
    b += b_offset + (size_t)batch * stride_b;
    c += c_offset + (size_t)batch * stride_c;
    bias += bias_offset;

    floatVN acc[MWI][NWI / VWN];
#pragma unroll
    for (int r = 0; r < MWI; ++r)
#pragma unroll
        for (int q = 0; q < NWI / VWN; ++q) acc[r][q] = (floatVN)(0.0f);

    // whole slices with a constant trip count, then the last partial one (uniform across the group, so the
    // barriers inside are reached by every work-item or none)
    int p0 = 0;
    for (; p0 + KWG <= k; p0 += KWG) {
#if SA
        xg_stage_a(alm, a, lda, m, k, i0, p0, tid);
#endif
#if SB
        xg_stage_b(blm, b, ldb, n, k, j0, p0, tid);
#endif
#if SA || SB
        barrier(CLK_LOCAL_MEM_FENCE);
#endif
        // KWG / KWI steps of KWI unrolled ones: a constant trip count the compiler always unrolls
        for (int pp = 0; pp < KWG; pp += KWI)
#pragma unroll
            for (int w = 0; w < KWI; ++w) xg_step(XG_STEP_ARGS, pp + w, tx, ty);
#if SA || SB
        barrier(CLK_LOCAL_MEM_FENCE);
#endif
    }
    if (p0 < k) {
#if SA
        xg_stage_a(alm, a, lda, m, k, i0, p0, tid);
#endif
#if SB
        xg_stage_b(blm, b, ldb, n, k, j0, p0, tid);
#endif
#if SA || SB
        barrier(CLK_LOCAL_MEM_FENCE);
#endif
        for (int pp = 0; pp < k - p0; ++pp) xg_step(XG_STEP_ARGS, pp, tx, ty);
    }

    // epilogue: whole C vectors at once, an edge vector element by element
#pragma unroll
    for (int r = 0; r < MWI; ++r) {
        const int i = i0 + (r / VWM * MDIMC + ty) * VWM + r % VWM;
        if (i >= m) continue;
        __global float *crow = c + (size_t)i * ldc;
#pragma unroll
        for (int q = 0; q < NWI / VWN; ++q) {
            const int j = j0 + (q * NDIMC + tx) * VWN;
            if (j + VWN <= n) {
                floatVN v = alpha * acc[r][q];
                if (beta != 0.0f) v += beta * LOAD_VN(crow + j);
#if BIAS == 1
                v += bias[i];
#elif BIAS == 2
                v += LOAD_VN(bias + j);
#endif
                STORE_VN(v, crow + j);
            } else {
                float t[VWN];
                STORE_VN(acc[r][q], t);
                for (int f = 0; f < VWN && j + f < n; ++f)
                    store_one(c, (size_t)i * ldc + j + f, t[f], alpha, beta, bias, i, j + f);
            }
        }
    }
}

#endif  // HETERO_GEMM_XGEMM_H
