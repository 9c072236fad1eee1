// Elementwise binary ops with NumPy/PyTorch broadcasting, and the reduction that undoes a broadcast
// (the gradient of a broadcast input is the sum over the broadcast dimensions).
//
// Required: OP (0 add, 1 mul), BROADCAST (0: a, b and out have one shape; 1: index through strides),
// LONG_INDEX (0: indices, shapes and strides are int; 1: long, for tensors past 2^31 - 1 elements).
// Shapes and strides travel as int8 / long8 (rank <= 8, padded at the front with size-1 dims; stride 0
// marks a broadcast dimension), so one program serves every shape. The host picks LONG_INDEX=1 only for
// tensors that need it: the broadcast index decode divides, and 64-bit division costs on CPUs.

#ifndef OP
#error "OP must be defined (0 add, 1 mul)"
#endif
#ifndef BROADCAST
#error "BROADCAST must be defined (0 or 1)"
#endif
#ifndef LONG_INDEX
#error "LONG_INDEX must be defined (0: int indices, 1: long)"
#endif

#if LONG_INDEX
typedef long index_t;
typedef long8 index8_t;
#else
typedef int index_t;
typedef int8 index8_t;
#endif

#if OP == 0
#define APPLY(x, y) ((x) + (y))
#elif OP == 1
#define APPLY(x, y) ((x) * (y))
#else
#error "Unknown OP"
#endif

__kernel void binary(__global const float *a, __global const float *b, __global float *out,
                     const index8_t shape, const index8_t stride_a, const index8_t stride_b, const index_t n)
{
    const index_t i = get_global_id(0);
    if (i >= n) return;
#if BROADCAST
    index_t s[8], sa[8], sb[8];
    vstore8(shape, 0, s);
    vstore8(stride_a, 0, sa);
    vstore8(stride_b, 0, sb);
    index_t rem = i, ia = 0, ib = 0;
    for (int d = 7; d >= 0; --d) {
        const index_t c = rem % s[d];
        rem /= s[d];
        ia += c * sa[d];
        ib += c * sb[d];
    }
    out[i] = APPLY(a[ia], b[ib]);
#else
    out[i] = APPLY(a[i], b[i]);
#endif
}

// out[j] = sum of g over the dims where keep_shape is 1 and red_shape is not. g's strides are
// g_stride; j enumerates keep_shape, r enumerates red_shape (both padded to rank 8).
__kernel void sum_to(__global const float *g, __global float *out,
                     const index8_t keep_shape, const index8_t red_shape, const index8_t g_stride,
                     const index_t n_out, const index_t n_red)
{
    const index_t j = get_global_id(0);
    if (j >= n_out) return;
    index_t ks[8], rs[8], gs[8];
    vstore8(keep_shape, 0, ks);
    vstore8(red_shape, 0, rs);
    vstore8(g_stride, 0, gs);
    index_t base = 0, rem = j;
    for (int d = 7; d >= 0; --d) {
        base += (rem % ks[d]) * gs[d];
        rem /= ks[d];
    }
    float acc = 0.0f;
    for (index_t r = 0; r < n_red; ++r) {
        index_t off = base, rr = r;
        for (int d = 7; d >= 0; --d) {
            off += (rr % rs[d]) * gs[d];
            rr /= rs[d];
        }
        acc += g[off];
    }
    out[j] = acc;
}
