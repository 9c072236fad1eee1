// GEMM family: C[m,n] = act(alpha * op(A) @ op(B) + beta * C + bias), row-major, batched.
//
// Required defines:
//   TRANS_A, TRANS_B  0/1: A stored k x m (lda >= m) / B stored n x k (ldb >= k) when 1.
//   BIAS              0: none, 1: bias[i] per row (m axis), 2: bias[j] per column (n axis).
//   ACT               activation id from common.h (ACT_ALPHA for LEAKY_RELU / ELU).
// Offsets, leading dimensions and batch strides are in float elements. beta == 0 never reads C.
#include "common.h"

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

// The epilogue every variant shares: scale, beta * C, bias, activation, store.
inline void store_c(__global float *c, size_t idx, float acc, float alpha, float beta,
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
    store_c(c, (size_t)i * ldc + j, acc, alpha, beta, bias, i, j);
}
