// Local response normalisation across channels, PyTorch's formula (torch.nn.functional.local_response_norm):
//   D_c = k + alpha * (sum of x_c'^2 over c' in [c - size/2, c + (size-1)/2] clipped to [0, C)) / size
//   y_c = x_c * D_c^-beta
// (torch zero-pads the channels and average-pools with the padding counted, so the divisor is always size.)
//
// Required: SIZE (the window, channels) and SAVE_SCALE (1: the forward also writes D for the backward;
// 0 for inference). The input is contiguous (N, C, S), S the product of the dims after the channels.
// Grid (S, C, N): one work-item per element, no index divisions. The window is compile-time and every
// tap loads a clamped, always-valid address and masks it with a select: straight code that PoCL
// vectorises across work-items (a runtime-bounded loop it does not).

#ifndef SIZE
#error "SIZE (the LRN window in channels) must be defined"
#endif
#ifndef SAVE_SCALE
#error "SAVE_SCALE must be defined (0 or 1)"
#endif

// d^-beta. Tuning: QUARTER_BETA = 4 * beta when that is a small integer (AlexNet's 0.75 gives 3): then
// d^-beta is a product of rsqrt(sqrt(d)) factors, which vectorise; PoCL's pow / exp2 / log2 do not
// (they run one lane at a time).
inline float inv_pow(const float d, const float beta)
{
#ifdef QUARTER_BETA
    const float q = rsqrt(sqrt(d));  // d^-1/4
    float r = 1.0f;
#pragma unroll
    for (int t = 0; t < QUARTER_BETA; ++t) r *= q;
    return r;
#else
    return pow(d, -beta);
#endif
}

__kernel void lrn_forward(__global const float *x, __global float *y, __global float *scale,
                          const int C, const int S, const float alpha, const float beta, const float k)
{
    const int s = get_global_id(0);
    const int c = get_global_id(1);
    const size_t base = get_global_id(2) * (size_t)C * S + s;  // channel 0 of this (n, s)
    float sum = 0.0f;
#pragma unroll
    for (int t = 0; t < SIZE; ++t) {
        const int j = c - SIZE / 2 + t;
        const float v = x[base + (size_t)clamp(j, 0, C - 1) * S];
        sum += (j >= 0 && j < C) ? v * v : 0.0f;
    }
    const float d = k + alpha * (sum / (float)SIZE);  // torch's order: average, then * alpha, then + k
    const size_t i = base + (size_t)c * S;
    y[i] = x[i] * inv_pow(d, beta);
#if SAVE_SCALE
    scale[i] = d;
#endif
}

// dL/dx_j = g_j D_j^-beta - (2 alpha beta / size) x_j * sum over the c whose window holds j of g_c y_c / D_c,
// using y_c / D_c = x_c D_c^(-beta-1). Channel j is in c's window for c in [j - (size-1)/2, j + size/2]
// (the mirror of the forward window, which differs from it for even size).
__kernel void lrn_backward(__global const float *gy, __global const float *x, __global const float *y,
                           __global const float *scale, __global float *gx,
                           const int C, const int S, const float alpha, const float beta)
{
    const int s = get_global_id(0);
    const int j = get_global_id(1);
    const size_t base = get_global_id(2) * (size_t)C * S + s;
    float acc = 0.0f;
#pragma unroll
    for (int t = 0; t < SIZE; ++t) {
        const int c = j - (SIZE - 1) / 2 + t;
        const size_t o = base + (size_t)clamp(c, 0, C - 1) * S;
        const float term = gy[o] * y[o] / scale[o];
        acc += (c >= 0 && c < C) ? term : 0.0f;
    }
    const size_t i = base + (size_t)j * S;
    gx[i] = gy[i] * inv_pow(scale[i], beta) - (2.0f * alpha * beta / (float)SIZE) * x[i] * acc;
}
