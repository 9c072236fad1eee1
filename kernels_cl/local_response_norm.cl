// Local response normalisation across channels, PyTorch's formula (torch.nn.functional.local_response_norm):
//   D_c = k + alpha * (sum of x_c'^2 over c' in [c - size/2, c + (size-1)/2] clipped to [0, C)) / size
//   y_c = x_c * D_c^-beta
// (torch zero-pads the channels and average-pools with the padding counted, so the divisor is always size.)
//
// Required: SAVE_SCALE (1: the forward also writes D for the backward; 0 for inference).
// The input is contiguous (N, C, S), S the product of the dims after the channels; one work-item per element.

#ifndef SAVE_SCALE
#error "SAVE_SCALE must be defined (0 or 1)"
#endif

__kernel void lrn_forward(__global const float *x, __global float *y, __global float *scale,
                          const int C, const int S, const int size, const float alpha, const float beta,
                          const float k, const int total)
{
    const int i = get_global_id(0);
    if (i >= total) return;
    const int c = (i / S) % C;
    const int c0 = i - c * S;  // channel 0 of this (n, s)
    const int lo = max(c - size / 2, 0);
    const int hi = min(c + (size - 1) / 2, C - 1);
    float sum = 0.0f;
    for (int j = lo; j <= hi; ++j) {
        const float v = x[c0 + j * S];
        sum += v * v;
    }
    const float d = k + alpha * (sum / (float)size);  // torch's order: average, then * alpha, then + k
    y[i] = x[i] / pow(d, beta);
#if SAVE_SCALE
    scale[i] = d;
#endif
}

// dL/dx_j = g_j D_j^-beta - (2 alpha beta / size) x_j * sum over the c whose window holds j of g_c y_c / D_c,
// using y_c / D_c = x_c D_c^(-beta-1). Channel j is in c's window for c in [j - (size-1)/2, j + size/2]
// (the mirror of the forward window, which differs from it for even size).
__kernel void lrn_backward(__global const float *gy, __global const float *x, __global const float *y,
                           __global const float *scale, __global float *gx,
                           const int C, const int S, const int size, const float alpha, const float beta,
                           const int total)
{
    const int i = get_global_id(0);
    if (i >= total) return;
    const int j = (i / S) % C;
    const int c0 = i - j * S;
    const int lo = max(j - (size - 1) / 2, 0);
    const int hi = min(j + size / 2, C - 1);
    float acc = 0.0f;
    for (int c = lo; c <= hi; ++c) {
        const int o = c0 + c * S;
        acc += gy[o] * y[o] / scale[o];
    }
    gx[i] = gy[i] * pow(scale[i], -beta) - (2.0f * alpha * beta / (float)size) * x[i] * acc;
}
