// Padding (torch.nn.functional.pad, numpy.pad): every output element reads the input element its
// coordinates map to, dim by dim, x = c - before:
//   MODE 0 constant:  x outside [0, n) gives `value` (negative pads crop);
//   MODE 1 reflect:   mirrored about the first / last element, which is not repeated (pads < n);
//   MODE 2 replicate: clamped to [0, n - 1] (numpy's "edge").
// The constant pad's gradient is the same gather with the pads negated. The reflect and replicate gradients
// sum every output position that read an input element; pad_fold does that along one dim at a time.
//
// Required: MODE. Shapes travel as int8 (rank <= 8, padded at the front with size-1 dims).

#ifndef MODE
#error "MODE must be defined (0 constant, 1 reflect, 2 replicate)"
#endif
#if MODE < 0 || MODE > 2
#error "Unknown MODE"
#endif

// One work-item per output element, n in all.
__kernel void pad_forward(__global const float *x, __global float *y, const int8 out_shape,
                          const int8 in_shape, const int8 before, const float value, const int n)
{
    const int i = get_global_id(0);
    if (i >= n) return;
    int os[8], is[8], b[8], c[8];
    vstore8(out_shape, 0, os);
    vstore8(in_shape, 0, is);
    vstore8(before, 0, b);
    int rem = i;
    for (int d = 7; d >= 0; --d) {
        c[d] = rem % os[d];
        rem /= os[d];
    }
    int src = 0, inside = 1;
    for (int d = 0; d < 8; ++d) {
        int v = c[d] - b[d];
#if MODE == 0
        inside = inside && v >= 0 && v < is[d];
        v = clamp(v, 0, is[d] - 1);  // an always-valid address, masked below
#elif MODE == 1
        v = v < 0 ? -v : v;
        v = v >= is[d] ? 2 * (is[d] - 1) - v : v;
#else
        v = clamp(v, 0, is[d] - 1);
#endif
        src = src * is[d] + v;
    }
    const float got = x[src];
    y[i] = inside ? got : value;
}

#if MODE != 0
// The gradient along one dim: g is viewed as (outer, L_out, inner) and dx as (outer, L_in, inner), with
// L_out = before + L_in + after. dx[o, x, k] sums g[o, j, k] over every j the forward mapped to x.
// One work-item per element of dx, n in all.
__kernel void pad_fold(__global const float *g, __global float *dx, const int L_in, const int L_out,
                       const int inner, const int before, const int n)
{
    const int i = get_global_id(0);
    if (i >= n) return;
    const int k = i % inner;
    const int x = (i / inner) % L_in;
    const int o = i / (inner * L_in);
    __global const float *row = g + (size_t)o * L_out * inner + k;
    float acc = row[(x + before) * inner];
    const int after = L_out - before - L_in;
#if MODE == 1
    if (x >= 1 && x <= before) acc += row[(before - x) * inner];  // mirrored into the front pad
    const int back = before + 2 * (L_in - 1) - x;  // mirrored into the back pad
    if (x <= L_in - 2 && back < L_out) acc += row[back * inner];
#else
    if (x == 0)
        for (int j = 0; j < before; ++j) acc += row[j * inner];
    if (x == L_in - 1)
        for (int j = 0; j < after; ++j) acc += row[(before + L_in + j) * inner];
#endif
    dx[i] = acc;
}
#endif
