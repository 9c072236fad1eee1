// Pointwise ops without a place in the activation table: clamp (torch.clamp with scalar bounds) and
// reciprocal, forward and backward. One work-item per element, n in all.
//
// Required: OP (0 clamp, 1 reciprocal).

#ifndef OP
#error "OP must be defined (0 clamp, 1 reciprocal)"
#endif

#if OP == 0
// Missing bounds are -INFINITY / INFINITY. Selects rather than fmin / fmax, which would turn a NaN input
// into a bound (torch keeps NaN); lo > hi gives hi everywhere, as torch.clamp and numpy.clip do.
__kernel void clamp_forward(__global const float *x, __global float *y, const float lo, const float hi,
                            const int n)
{
    const int i = get_global_id(0);
    if (i >= n) return;
    const float v = x[i];
    const float t = v < lo ? lo : v;
    y[i] = t > hi ? hi : t;
}

// torch's clamp gradient: g where lo <= x <= hi, else 0.
__kernel void clamp_backward(__global const float *x, __global const float *g, __global float *dx,
                             const float lo, const float hi, const int n)
{
    const int i = get_global_id(0);
    if (i >= n) return;
    const float v = x[i];
    dx[i] = (v >= lo && v <= hi) ? g[i] : 0.0f;
}

#elif OP == 1
__kernel void reciprocal_forward(__global const float *x, __global float *y, const int n)
{
    const int i = get_global_id(0);
    if (i >= n) return;
    y[i] = 1.0f / x[i];
}

// d(1/x)/dx = -1/x^2 = -y^2, from the saved output.
__kernel void reciprocal_backward(__global const float *y, __global const float *g, __global float *dx,
                                  const int n)
{
    const int i = get_global_id(0);
    if (i >= n) return;
    const float v = y[i];
    dx[i] = -g[i] * v * v;
}

#else
#error "Unknown OP"
#endif
