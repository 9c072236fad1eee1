// Elementwise activations (relu, leaky_relu, elu, selu, sigmoid, tanh) and PReLU, forward and backward.
//
// Required, one of:
//   ACT   an ACT_* id from common.h (ACT_ALPHA too for LEAKY_RELU and ELU): the act_* kernels;
//   PRELU (1): the prelu_* kernels, whose slope is a tensor rather than a define.
// Tuning knob (PReLU's weight gradient): WG, the work-group size, a power of two (default 256).
// One work-item per element; n is the element count.

#include "common.h"

#if defined(PRELU)

#ifndef WG
#define WG 256
#endif
#if WG <= 0 || (WG & (WG - 1)) != 0
#error "WG must be a power of two"
#endif

// The input is viewed as [outer, C, inner]; element idx belongs to channel (idx / inner) % C.
// A one-element weight is launched with C = 1, inner = n, so every element uses weight[0].
__kernel void prelu_fw(__global const float *x, __global const float *w, __global float *y,
                       const int C, const int inner, const int n)
{
    const int idx = get_global_id(0);
    if (idx >= n) return;
    const float v = x[idx];
    y[idx] = v > 0.0f ? v : w[(idx / inner) % C] * v;
}

__kernel void prelu_bw_input(__global const float *x, __global const float *w, __global const float *g,
                             __global float *dx, const int C, const int inner, const int n)
{
    const int idx = get_global_id(0);
    if (idx >= n) return;
    dx[idx] = x[idx] > 0.0f ? g[idx] : w[(idx / inner) % C] * g[idx];
}

// dL/dw[c] = sum over the channel's elements with x <= 0 of x * g. No float atomics in OpenCL 1.2, so
// this is a deterministic two-pass reduction: work-group (gx, c) of an NDRange (G * WG, C) sums a strided
// share of channel c's outer * inner elements into partial[c * G + gx]; prelu_bw_weight_final adds the G.
__kernel void prelu_bw_weight_partial(__global const float *x, __global const float *g,
                                      __global float *partial, const int C, const int inner, const int outer)
{
    __local float s[WG];
    const int lid = get_local_id(0);
    const int gx = get_group_id(0);
    const int G = get_num_groups(0);
    const int c = get_global_id(1);
    const int count = outer * inner;
    float acc = 0.0f;
    for (int k = gx * WG + lid; k < count; k += G * WG) {
        const int idx = ((k / inner) * C + c) * inner + k % inner;
        const float v = x[idx];
        acc += v > 0.0f ? 0.0f : v * g[idx];
    }
    s[lid] = acc;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int h = WG / 2; h > 0; h >>= 1) {
        if (lid < h) s[lid] += s[lid + h];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lid == 0) partial[c * G + gx] = s[0];
}

__kernel void prelu_bw_weight_final(__global const float *partial, __global float *dw, const int C, const int G)
{
    const int c = get_global_id(0);
    if (c >= C) return;
    float acc = 0.0f;
    for (int k = 0; k < G; ++k) acc += partial[c * G + k];
    dw[c] = acc;
}

#elif defined(ACT)

__kernel void act_fw(__global const float *x, __global float *y, const int n)
{
    const int i = get_global_id(0);
    if (i < n) y[i] = act_forward(x[i]);
}

// From the saved output y (common.h's act_backward): the default, it keeps only y alive.
__kernel void act_bw(__global const float *y, __global const float *g, __global float *dx, const int n)
{
    const int i = get_global_id(0);
    if (i < n) dx[i] = act_backward(g[i], y[i]);
}

// From the input x. act_backward tells the branches apart by y > 0, which is wrong for a negative
// leaky_relu slope or ELU alpha (then x < 0 gives y > 0); the host picks this kernel for those.
__kernel void act_bw_from_input(__global const float *x, __global const float *g, __global float *dx,
                                const int n)
{
    const int i = get_global_id(0);
    if (i >= n) return;
    const float v = x[i];
#if ACT == ACT_LEAKY_RELU
    dx[i] = v > 0.0f ? g[i] : g[i] * ACT_ALPHA;
#elif ACT == ACT_ELU
    dx[i] = v <= 0.0f ? g[i] * ACT_ALPHA * exp(v) : g[i];  // torch's test: a NaN input passes g through
#else
    dx[i] = act_backward(g[i], act_forward(v));
#endif
}

#else
#error "ACT (an ACT_* id from common.h) or PRELU must be defined"
#endif
