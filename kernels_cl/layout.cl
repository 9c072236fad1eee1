// Copies between layouts: transpose (permute), slice with steps, concatenation, and the interior of a
// constant pad all are one strided copy, for every index c of `shape`:
//   dst[dst_offset + sum_d c_d * dst_stride_d] = src[src_offset + sum_d c_d * src_stride_d]
// Shapes and strides travel as int8 (rank <= 8, padded at the front with size-1 dims; strides may be
// negative, a slice with a negative step), so one program serves every shape and no define is needed.
// The host merges dims that are contiguous in both layouts first, so a concatenation is a 1-D or 2-D copy.
// One work-item per element of `shape`, n in all.

__kernel void strided_copy(__global const float *src, __global float *dst, const int8 shape,
                           const int8 src_stride, const int8 dst_stride, const int src_offset,
                           const int dst_offset, const int n)
{
    const int i = get_global_id(0);
    if (i >= n) return;
    int s[8], ss[8], ds[8];
    vstore8(shape, 0, s);
    vstore8(src_stride, 0, ss);
    vstore8(dst_stride, 0, ds);
    int rem = i, is = src_offset, id = dst_offset;
    for (int d = 7; d >= 0; --d) {
        const int c = rem % s[d];
        rem /= s[d];
        is += c * ss[d];
        id += c * ds[d];
    }
    dst[id] = src[is];
}
