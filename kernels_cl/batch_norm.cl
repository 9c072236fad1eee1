// Batch normalisation over [N, C, S] (S = product of the spatial sizes), forward and backward.
//
// Required defines (every build of this file gets all of them, so one program serves a whole
// forward + backward configuration):
//   HAS_WEIGHT   0/1: multiply by weight[c] (0: weight is 1).
//   HAS_BIAS     0/1: add bias[c] (0: bias is 0).
//   WG_SIZE      power of two: work-items per channel in the reduction kernels (their launch local size).
//   ROW_LOOP     how work is laid out (a tuning choice, both give the same results up to rounding):
//                0 (GPU): one work-item per value, so neighbouring work-items read neighbouring addresses;
//                1 (CPU): each work-item loops over contiguous runs of a row (n, c), in 8-wide vectors;
//                PoCL runs a whole work-group on one core, so the loop inside a work-item is what
//                gets vectorised, and channels spread over the cores.
//
// Reductions: one work-group per channel, each work-item sums its share of the channel's M = N*S
// values (share_* below), then the group adds the shares with a tree in local memory. No atomics.
// The variance is the corrected two-pass one: mean first, then sum(d) and sum(d^2) with d = x - mean,
// which also removes the rounding of the first mean; E[x^2] - E[x]^2 would cancel in float32.
#ifndef HAS_WEIGHT
#error "HAS_WEIGHT must be defined"
#endif
#ifndef HAS_BIAS
#error "HAS_BIAS must be defined"
#endif
#ifndef WG_SIZE
#error "WG_SIZE must be defined"
#endif
#if WG_SIZE < 1 || (WG_SIZE & (WG_SIZE - 1)) != 0
#error "WG_SIZE must be a power of two"
#endif
#ifndef ROW_LOOP
#error "ROW_LOOP must be defined"
#endif

#if ROW_LOOP
// ---------------------------------------------------------------------------------------------
// CPU layout. Work-item lid of a channel's group takes the rows n = lid, lid + WG_SIZE, ...; a row
// is summed in 16 vector lanes, and row totals are added with Kahan compensation, so no float
// accumulator ever adds more than about S / 16 + N terms uncompensated.

inline void kahan_add(float *sum, float *comp, const float v)
{
    const float y = v - *comp;
    const float t = *sum + y;
    *comp = (t - *sum) - y;
    *sum = t;
}

inline float hsum8(const float8 v)
{
    const float4 h = v.lo + v.hi;
    return (h.x + h.y) + (h.z + h.w);
}

// Sum of this work-item's share of the channel whose first value x points at (rows CS apart).
inline float share_sum(__global const float *x, const int N, const int CS, const int S, const int lid)
{
    float total = 0.0f, comp = 0.0f;
    for (int n = lid; n < N; n += WG_SIZE) {
        __global const float *r = x + (size_t)n * CS;
        float8 a = 0.0f, b = 0.0f;
        int s = 0;
        for (; s + 16 <= S; s += 16) {
            a += vload8(0, r + s);
            b += vload8(0, r + s + 8);
        }
        float t = 0.0f;
        for (; s < S; ++s) t += r[s];
        kahan_add(&total, &comp, hsum8(a + b) + t);
    }
    return total;
}

// (sum(d), sum(d * d)) over the share, d = x - mean0.
inline float2 share_dev(__global const float *x, const float mean0, const int N, const int CS, const int S,
                        const int lid)
{
    float sd = 0.0f, cd = 0.0f, sq = 0.0f, cq = 0.0f;
    for (int n = lid; n < N; n += WG_SIZE) {
        __global const float *r = x + (size_t)n * CS;
        float8 a = 0.0f, b = 0.0f, qa = 0.0f, qb = 0.0f;
        int s = 0;
        for (; s + 16 <= S; s += 16) {
            const float8 d0 = vload8(0, r + s) - mean0;
            const float8 d1 = vload8(0, r + s + 8) - mean0;
            a += d0;
            b += d1;
            qa = fma(d0, d0, qa);
            qb = fma(d1, d1, qb);
        }
        float t = 0.0f, tq = 0.0f;
        for (; s < S; ++s) {
            const float d = r[s] - mean0;
            t += d;
            tq = fma(d, d, tq);
        }
        kahan_add(&sd, &cd, hsum8(a + b) + t);
        kahan_add(&sq, &cq, hsum8(qa + qb) + tq);
    }
    return (float2)(sd, sq);
}

// (sum(g), sum(g * (x - mu))) over the share, g = dy.
inline float2 share_grad(__global const float *dy, __global const float *x,
                         const float mu, const int N, const int CS, const int S, const int lid)
{
    float sg = 0.0f, cg = 0.0f, sp = 0.0f, cp = 0.0f;
    for (int n = lid; n < N; n += WG_SIZE) {
        const size_t row = (size_t)n * CS;
        __global const float *dr = dy + row;
        __global const float *xr = x + row;
        float8 a = 0.0f, p = 0.0f;
        int s = 0;
        for (; s + 8 <= S; s += 8) {
            const float8 g = vload8(0, dr + s);
            a += g;
            p = fma(g, vload8(0, xr + s) - mu, p);
        }
        float t = 0.0f, tp = 0.0f;
        for (; s < S; ++s) {
            const float g = dr[s];
            t += g;
            tp = fma(g, xr[s] - mu, tp);
        }
        kahan_add(&sg, &cg, hsum8(a) + t);
        kahan_add(&sp, &cp, hsum8(p) + tp);
    }
    return (float2)(sg, sp);
}

// Elementwise kernels: global (rows rounded up, chunks); work-item (row, k) takes the values
// [k * span, min(S, (k + 1) * span)) of row = n * C + c. Declares c, i0, i1 (or returns).
#define VALUE_RANGE                                                        \
    const int row_ = get_global_id(0);                                     \
    const int s0_ = get_global_id(1) * span;                               \
    if (row_ >= N * C || s0_ >= S) return;                                 \
    const int c = row_ % C;                                                \
    const size_t i0 = (size_t)row_ * S + s0_;                              \
    const size_t i1 = (size_t)row_ * S + min(S, s0_ + span)

#else
// ---------------------------------------------------------------------------------------------
// GPU layout. Work-item lid visits the channel's values j = lid, lid + WG_SIZE, ... (value j is at
// (j / S) * C*S + j % S from the channel's first value), so a group reads contiguous runs; four
// independent partial sums per work-item (two for the paired sums) before the tree.

// Keeps s = j % S and the offset of value j while j advances by WG_SIZE, without a division.
#define WALK_SETUP                                                         \
    const int walk_dn = WG_SIZE / S;                                       \
    const int walk_ds = WG_SIZE - walk_dn * S;                             \
    const size_t walk_doff = (size_t)walk_dn * CS + walk_ds;               \
    const int walk_wrap = CS - S;                                          \
    const int walk_n0 = lid / S;                                           \
    int s = lid - walk_n0 * S;                                             \
    size_t off = (size_t)walk_n0 * CS + s;                                 \
    const int M = N * S;                                                   \
    int j = lid
#define WALK_STEP                                                          \
    s += walk_ds;                                                          \
    off += walk_doff;                                                      \
    if (s >= S) {                                                          \
        s -= S;                                                            \
        off += walk_wrap;                                                  \
    }

inline float share_sum(__global const float *x, const int N, const int CS, const int S, const int lid)
{
    float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
    WALK_SETUP;
    for (; j < M - 3 * WG_SIZE; j += 4 * WG_SIZE) {
        a0 += x[off];
        WALK_STEP
        a1 += x[off];
        WALK_STEP
        a2 += x[off];
        WALK_STEP
        a3 += x[off];
        WALK_STEP
    }
    for (; j < M; j += WG_SIZE) {
        a0 += x[off];
        WALK_STEP
    }
    return (a0 + a1) + (a2 + a3);
}

inline float2 share_dev(__global const float *x, const float mean0, const int N, const int CS, const int S,
                        const int lid)
{
    float2 a0 = 0.0f, a1 = 0.0f;  // (sum d, sum d^2), two independent chains
    WALK_SETUP;
    float d;
    for (; j < M - WG_SIZE; j += 2 * WG_SIZE) {
        d = x[off] - mean0;
        a0 += (float2)(d, d * d);
        WALK_STEP
        d = x[off] - mean0;
        a1 += (float2)(d, d * d);
        WALK_STEP
    }
    for (; j < M; j += WG_SIZE) {
        d = x[off] - mean0;
        a0 += (float2)(d, d * d);
        WALK_STEP
    }
    return a0 + a1;
}

inline float2 share_grad(__global const float *dy, __global const float *x,
                         const float mu, const int N, const int CS, const int S, const int lid)
{
    float2 a0 = 0.0f, a1 = 0.0f;  // (sum g, sum g (x - mu))
    WALK_SETUP;
    float g;
    for (; j < M - WG_SIZE; j += 2 * WG_SIZE) {
        g = dy[off];
        a0 += (float2)(g, g * (x[off] - mu));
        WALK_STEP
        g = dy[off];
        a1 += (float2)(g, g * (x[off] - mu));
        WALK_STEP
    }
    for (; j < M; j += WG_SIZE) {
        g = dy[off];
        a0 += (float2)(g, g * (x[off] - mu));
        WALK_STEP
    }
    return a0 + a1;
}

// Elementwise kernels: global (S, C, N) rounded up, one value per work-item (span is unused).
#define VALUE_RANGE                                                        \
    const int s_ = get_global_id(0);                                       \
    const int c = get_global_id(1);                                        \
    const int n_ = get_global_id(2);                                       \
    if (s_ >= S || c >= C || n_ >= N) return;                              \
    const size_t i0 = ((size_t)n_ * C + c) * S + s_;                       \
    const size_t i1 = i0 + 1

#endif  // ROW_LOOP

// Adds each work-item's v into red[0] (and w into red[WG_SIZE]); returns after the sums are visible
// to the whole group. Every work-item must call it.
inline void tree_sum2(__local float *red, const int lid, const float v, const float w)
{
    red[lid] = v;
    red[WG_SIZE + lid] = w;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int step = WG_SIZE / 2; step > 0; step >>= 1) {
        if (lid < step) {
            red[lid] += red[lid + step];
            red[WG_SIZE + lid] += red[WG_SIZE + lid + step];
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
}

// Training statistics of channel get_group_id(0): mean, 1/sqrt(biased var + eps), and the unbiased
// variance (for the running estimate). Global (C * WG_SIZE). Needs N*S >= 1 (the host skips empty input).
__kernel __attribute__((reqd_work_group_size(WG_SIZE, 1, 1)))
void bn_stats(__global const float *x, const int N, const int C, const int S, const float eps,
              __global float *mean_out, __global float *invstd_out, __global float *unbiased_var_out)
{
    __local float red[2 * WG_SIZE];
    const int c = get_group_id(0);
    const int lid = get_local_id(0);
    const int CS = C * S;
    const float m = (float)N * (float)S;
    x += (size_t)c * S;

    tree_sum2(red, lid, share_sum(x, N, CS, S, lid), 0.0f);
    const float mean0 = red[0] / m;
    barrier(CLK_LOCAL_MEM_FENCE);  // everyone has read red[0] before it is overwritten

    // sum(d) is ~0 up to the rounding of mean0 and corrects both the mean and sum(d^2).
    const float2 dev = share_dev(x, mean0, N, CS, S, lid);
    tree_sum2(red, lid, dev.x, dev.y);
    if (lid == 0) {
        const float sd = red[0];
        const float m2 = fmax(red[WG_SIZE] - sd * sd / m, 0.0f);
        mean_out[c] = mean0 + sd / m;
        invstd_out[c] = 1.0f / sqrt(m2 / m + eps);
        unbiased_var_out[c] = m > 1.0f ? m2 / (m - 1.0f) : 0.0f;
    }
}

// running = (1 - momentum) * running + momentum * batch statistic, one work-item per channel.
__kernel void bn_update_running(__global float *running_mean, __global float *running_var,
                                __global const float *mean, __global const float *unbiased_var,
                                const int C, const float momentum)
{
    const int c = get_global_id(0);
    if (c >= C) return;
    running_mean[c] = (1.0f - momentum) * running_mean[c] + momentum * mean[c];
    running_var[c] = (1.0f - momentum) * running_var[c] + momentum * unbiased_var[c];
}

// Cumulative moving average (momentum=None): the factor 1 / num_batches_tracked is read on the
// device, so a replayed graph keeps counting. bn_count_batch has already incremented the counter.
__kernel void bn_update_running_cumulative(__global float *running_mean, __global float *running_var,
                                           __global const float *mean, __global const float *unbiased_var,
                                           const int C, __global const int *num_batches_tracked)
{
    const int c = get_global_id(0);
    if (c >= C) return;
    const float momentum = 1.0f / (float)num_batches_tracked[0];
    running_mean[c] = (1.0f - momentum) * running_mean[c] + momentum * mean[c];
    running_var[c] = (1.0f - momentum) * running_var[c] + momentum * unbiased_var[c];
}

// num_batches_tracked += 1, its own launch so that every channel's update sees the same count.
__kernel void bn_count_batch(__global int *num_batches_tracked)
{
    if (get_global_id(0) == 0) num_batches_tracked[0] += 1;
}

// Evaluation statistics from the running estimates, in the form the other kernels read.
__kernel void bn_eval_stats(__global const float *running_mean, __global const float *running_var,
                            const int C, const float eps, __global float *mean_out, __global float *invstd_out)
{
    const int c = get_global_id(0);
    if (c >= C) return;
    mean_out[c] = running_mean[c];
    invstd_out[c] = 1.0f / sqrt(running_var[c] + eps);
}

// y = (x - mean) * invstd * weight + bias.
__kernel void bn_apply(__global const float *restrict x, __global const float *mean,
                       __global const float *invstd, __global const float *weight, __global const float *bias,
                       const int N, const int C, const int S, const int span, __global float *restrict y)
{
    VALUE_RANGE;
    const float mu = mean[c];
#if HAS_WEIGHT
    const float scale = invstd[c] * weight[c];
#else
    const float scale = invstd[c];
#endif
#if HAS_BIAS
    const float shift = bias[c];
#else
    const float shift = 0.0f;
#endif
    for (size_t i = i0; i < i1; ++i) y[i] = fma(x[i] - mu, scale, shift);
}

// Per channel: dbias = sum(g), dweight = invstd * sum(g * (x - mean)), and the coefficients of the
// training dx = k1 * g + k2 * (x - mean) + k3: k1 = w * invstd, k2 = -k1 * invstd^2 * sum(g (x - mean)) / M,
// k3 = -k1 * sum(g) / M, stored at coeff[c], coeff[C + c], coeff[2C + c].
// Global (C * WG_SIZE).
__kernel __attribute__((reqd_work_group_size(WG_SIZE, 1, 1)))
void bn_backward_reduce(__global const float *dy, __global const float *x,
                        __global const float *mean, __global const float *invstd, __global const float *weight,
                        const int N, const int C, const int S,
                        __global float *dweight, __global float *dbias, __global float *coeff)
{
    __local float red[2 * WG_SIZE];
    const int c = get_group_id(0);
    const int lid = get_local_id(0);
    const size_t base = (size_t)c * S;
    const float2 part = share_grad(dy + base, x + base, mean[c], N, C * S, S, lid);
    tree_sum2(red, lid, part.x, part.y);
    if (lid == 0) {
        const float m = (float)N * (float)S;
        const float sum_g = red[0];
        const float sum_gx = red[WG_SIZE];
        const float is = invstd[c];
#if HAS_WEIGHT
        const float k1 = weight[c] * is;
#else
        const float k1 = is;
#endif
        dbias[c] = sum_g;
        dweight[c] = sum_gx * is;
        coeff[c] = k1;
        coeff[C + c] = -k1 * is * is * sum_gx / m;
        coeff[2 * C + c] = -k1 * sum_g / m;
    }
}

// Training dx = k1 * g + k2 * (x - mean) + k3 with the coefficients of bn_backward_reduce.
__kernel void bn_backward_dx(__global const float *restrict dy, __global const float *restrict x, __global const float *mean,
                             __global const float *coeff, const int N, const int C, const int S, const int span,
                             __global float *restrict dx)
{
    VALUE_RANGE;
    const float mu = mean[c];
    const float k1 = coeff[c];
    const float k2 = coeff[C + c];
    const float k3 = coeff[2 * C + c];
    for (size_t i = i0; i < i1; ++i) dx[i] = fma(k1, dy[i], fma(k2, x[i] - mu, k3));
}

// Evaluation dx = g * weight * invstd (the statistics are constants).
__kernel void bn_backward_dx_eval(__global const float *restrict dy, __global const float *invstd, __global const float *weight,
                                  const int N, const int C, const int S, const int span,
                                  __global float *restrict dx)
{
    VALUE_RANGE;
#if HAS_WEIGHT
    const float k1 = weight[c] * invstd[c];
#else
    const float k1 = invstd[c];
#endif
    for (size_t i = i0; i < i1; ++i) dx[i] = dy[i] * k1;
}
