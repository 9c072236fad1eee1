// The columns of a convolution's column matrix ("cols": one row per (channel, kh, kw), one column per
// (image, output pixel)) read straight from the NCHW image, NR columns at a time as vectors: the CPU
// GEMM's implicit B packing (gemm.cl) and the CPU im2col (conv2d.cl) share it.
//
// Requires NR (8 or 16) and the window geometry COL_KH, COL_KW, COL_SH, COL_SW, COL_PH, COL_PW, COL_DH,
// COL_DW (as conv2d.cl's im2col). Also defines the NR-wide vector types and helpers both files use.
#ifndef HETERO_COL_BLOCK_H
#define HETERO_COL_BLOCK_H

#ifndef NR
#error "NR (the vector width of a column block, 8 or 16) must be defined"
#endif
#if NR == 16
#define floatNR float16
#define intNR int16
#define VLOADNR vload16
#define VSTORENR vstore16
#define LANES_NR (int16)(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
#elif NR == 8
#define floatNR float8
#define intNR int8
#define VLOADNR vload8
#define VSTORENR vstore8
#define LANES_NR (int8)(0, 1, 2, 3, 4, 5, 6, 7)
#else
#error "NR must be 8 or 16"
#endif

#ifdef COL_KH
// Rows p0 .. p0+np-1 (any np) of columns j0 .. j0+NR-1 of a convolution's column matrix, zero past n,
// into dst with row stride dst_stride, read from the image: `b` points at channel 0 (of this group) of image 0,
// images geo_img floats apart, geo_h x geo_w pixels per channel; k rows in all. Row p is the tap
// (channel c, kh, kw), p = (c * COL_KH + kh) * COL_KW + kw; column j is the output pixel j % geo_p
// (geo_ow per row) of image j / geo_p. The divisions are paid once per column; the taps are then walked
// incrementally, the NR columns side by side as vectors.
// At stride 1 the columns of one output row read neighbouring image elements, so when the NR columns
// lie in at most two output rows a tap is two vector loads (the first row's lanes from the first, the
// others from the second) and a select, lanes outside the image masked to 0; both loads stay between b
// and the end of the last image's channels, else (and at other strides) each column loads its element,
// or element 0 for an out-of-image tap, and a select gives 0 there (branch-free, so it vectorises).
// Gathering every tap instead cost a large share of a strip's time for 64-channel 3x3 convolutions.
// dst_cols: how many of the NR columns are stored (fewer at the end of an unpadded matrix).
inline void col_block(__global const float *b, const int n, const int k, const int p0, const int np, const int j0,
                      __global float *dst, const int dst_stride, const int dst_cols, const int geo_h,
                      const int geo_w, const int geo_ow, const int geo_p, const int geo_img)
{
    const intNR j = j0 + LANES_NR;
    const intNR col_in = j < n;
    const intNR jc = min(j, (intNR)(n - 1));  // a vector bound: Oclgrind 21.10 gets min(intN, int) wrong
    const intNR img = jc / geo_p;
    const intNR pix = jc - img * geo_p;
    const intNR oh = pix / geo_ow;
    const intNR h0 = oh * COL_SH - COL_PH;
    const intNR w0 = (pix - oh * geo_ow) * COL_SW - COL_PW;
    const intNR origin = img * geo_img + h0 * geo_w + w0;  // the tap (0, 0, 0), maybe outside the image
    int c = p0 / (COL_KH * COL_KW);
    int kh = (p0 - c * (COL_KH * COL_KW)) / COL_KW;
    int kw = p0 - c * (COL_KH * COL_KW) - kh * COL_KW;
#if COL_SW == 1
    // lanes [0, len) lie in lane 0's output row; lanes from len on in the next row, from origin_next
    const int len = min(NR, geo_ow - (pix.s0 - oh.s0 * geo_ow));
    const intNR first = LANES_NR < len;
    const int j_next = min(j0 + len, n - 1);
    const int img_next = j_next / geo_p;
    const int pix_next = j_next - img_next * geo_p;
    const int oh_next = pix_next / geo_ow;
    const int origin_next = img_next * geo_img + (oh_next * COL_SH - COL_PH) * geo_w
                            + (pix_next - oh_next * geo_ow) - COL_PW;
    const bool two = all(first | ((img == img_next) & (oh == oh_next)));
    // lane q >= len reads shift_next + q (+ tap); with one row the second load repeats the first
    const int shift_next = len == NR ? origin.s0 : origin_next - len;
    const int limit = ((n - 1) / geo_p) * geo_img + k / (COL_KH * COL_KW) * geo_h * geo_w;
#else
    const bool two = false;
    const int shift_next = 0, limit = 0;
    const intNR first = (intNR)(-1);
#endif
    for (int pp = 0; pp < np; ++pp) {
        const intNR ih = h0 + kh * COL_DH;
        const intNR iw = w0 + kw * COL_DW;
        const intNR in = col_in & (ih >= 0) & (ih < geo_h) & (iw >= 0) & (iw < geo_w);
        const int tap = (c * geo_h + kh * COL_DH) * geo_w + kw * COL_DW;  // offset from a column's origin
        const int at_first = origin.s0 + tap, at_next = shift_next + tap;
        floatNR v;
        if (two && min(at_first, at_next) >= 0 && max(at_first, at_next) + NR <= limit) {
            v = select(VLOADNR(0, b + at_next), VLOADNR(0, b + at_first), first);
        } else {
            int at[NR];
            float t[NR];
            VSTORENR(select((intNR)(0), origin + tap, in), 0, at);
#pragma unroll
            for (int q = 0; q < NR; ++q) t[q] = b[at[q]];
            v = VLOADNR(0, t);
        }
        v = select((floatNR)(0.0f), v, in);
        __global float *row = dst + (size_t)pp * dst_stride;
        if (dst_cols == NR) {
            VSTORENR(v, 0, row);
        } else {
            float t[NR];
            VSTORENR(v, 0, t);
            for (int q = 0; q < dst_cols; ++q) row[q] = t[q];
        }
        if (++kw == COL_KW) {
            kw = 0;
            if (++kh == COL_KH) {
                kh = 0;
                ++c;
            }
        }
    }
}
#endif  // COL_KH
#endif  // HETERO_COL_BLOCK_H
