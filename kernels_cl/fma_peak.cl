// The device's multiply-add peak (benchmarks/fma_peak.py, hetero/bench/fma_peak.py): each work-item runs
// CHAINS independent chains of W-wide multiply-adds, enough of them that the FMA units never wait on one
// chain's latency, in a loop of `iters` steps; the result is stored so that nothing is optimised away.
//
// Required defines: W (1, 2, 4, 8 or 16: floats per vector, the device's register width), CHAINS (1 to 32).
#if !defined(W) || !defined(CHAINS)
#error "W and CHAINS must be defined"
#endif
#if CHAINS < 1 || CHAINS > 32
#error "CHAINS must be between 1 and 32"
#endif
#if W == 1
#define floatW float
#define VLOADW(i, p) ((p)[i])
#define VSTOREW(v, i, p) ((p)[i] = (v))
#elif W == 2
#define floatW float2
#define VLOADW vload2
#define VSTOREW vstore2
#elif W == 4
#define floatW float4
#define VLOADW vload4
#define VSTOREW vstore4
#elif W == 8
#define floatW float8
#define VLOADW vload8
#define VSTOREW vstore8
#elif W == 16
#define floatW float16
#define VLOADW vload16
#define VSTOREW vstore16
#else
#error "W must be 1, 2, 4, 8 or 16"
#endif

// The multiply-add of the GEMM kernels (gemm_tile.h's MADD): one FMA where the target has one, a multiply and
// an add where it has none, so the peak is the one the GEMM can reach.
#pragma OPENCL FP_CONTRACT ON

// Global (items), any local size; `start` holds CHAINS * W floats (the chains' first values, so no two lanes are
// known to be equal), `out` W floats per work-item.
__kernel void fma_peak(__global const float *start, __global float *out, const float a, const float b,
                       const int iters)
{
    const floatW x = (floatW)(a), y = (floatW)(b);
    floatW acc[CHAINS];
#pragma unroll
    for (int c = 0; c < CHAINS; ++c) acc[c] = VLOADW(c, start);
    for (int i = 0; i < iters; ++i) {
#pragma unroll
        for (int c = 0; c < CHAINS; ++c) acc[c] = acc[c] * x + y;
    }
    floatW sum = acc[0];
#pragma unroll
    for (int c = 1; c < CHAINS; ++c) sum += acc[c];
    VSTOREW(sum, get_global_id(0), out);
}
