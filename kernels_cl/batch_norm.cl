// Batch normalisation over [N, C, S] (S = product of the spatial sizes), forward and backward.
//
// Required defines (every build of this file gets all of them, so one program serves a whole
// forward + backward configuration):
//   HAS_WEIGHT   0/1: multiply by weight[c] (0: weight is 1).
//   HAS_BIAS     0/1: add bias[c] (0: bias is 0).
//   WG_SIZE      power of two: work-items per group in the reduction kernels (their launch local size,
//                required by reqd_work_group_size): the host takes the largest one, at most 256, that the
//                device's CL_KERNEL_WORK_GROUP_SIZE allows for them (1 on the CPU layout).
//   ROW_LOOP     how work is laid out (a tuning choice, both give the same results up to rounding):
//                0 (GPU): one work-item per value, so neighbouring work-items read neighbouring addresses;
//                1 (CPU): each work-item loops over contiguous runs of a row (n, c), in 8-wide vectors;
//                PoCL runs a whole work-group on one core, so the loop inside a work-item is what
//                gets vectorised, and channels spread over the cores.
//
// Reductions: work-items sum their share of a channel's M = N*S values (share_* below), then a group adds
// the shares with a tree in local memory. No atomics, and a fixed order, so results are deterministic.
// CPU: one work-group per channel. GPU: a channel's values are split over several groups (chunks), and a
// second kernel merges the chunks (bn_stats_finish, bn_backward_finish), so few channels still fill a GPU.
// The variance is the corrected two-pass one: mean first, then sum(d) and sum(d^2) with d = x - mean,
// which also removes the rounding of the first mean; E[x^2] - E[x]^2 would cancel in float32.
// Sizes are int arguments (N, C, S and the products N*S, C*S, N*C; the host refuses larger), offsets size_t.
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
#define RUNS_BEGIN                                                         \
    const int row_ = get_global_id(0);                                     \
    const int s0_ = get_global_id(1) * span;                               \
    if (row_ >= N * C || s0_ >= S) return;                                 \
    {                                                                      \
        const int c = row_ % C;                                            \
        const size_t i0 = (size_t)row_ * S + s0_;                          \
        const size_t i1 = (size_t)row_ * S + min(S, s0_ + span);
#define RUNS_END }

#else
// ---------------------------------------------------------------------------------------------
// GPU layout. A channel's M = N*S values are cut into `splits` chunks of `chunk` values (the host's
// table decides, so that channels x splits work-groups fill the GPU); work-item lid of a chunk's group
// visits its values j = j0 + lid, j0 + lid + WG_SIZE, ... (value j is at (j / S) * C*S + j % S from the
// channel's first value), so a group reads contiguous runs; four independent partial sums per work-item
// (two for the paired sums) before the tree. The chunks' results are merged in a fixed order by a
// second kernel, one work-item per channel, so the statistics do not depend on scheduling.

// Keeps s = j % S and the offset of value j while j advances by WG_SIZE, without a division.
#define WALK_SETUP                                                         \
    const int walk_dn = WG_SIZE / S;                                       \
    const int walk_ds = WG_SIZE - walk_dn * S;                             \
    const size_t walk_doff = (size_t)walk_dn * CS + walk_ds;               \
    const int walk_wrap = CS - S;                                          \
    int j = j0 + lid;                                                      \
    const int walk_n0 = j / S;                                             \
    int s = j - walk_n0 * S;                                               \
    size_t off = (size_t)walk_n0 * CS + s
#define WALK_STEP                                                          \
    s += walk_ds;                                                          \
    off += walk_doff;                                                      \
    if (s >= S) {                                                          \
        s -= S;                                                            \
        off += walk_wrap;                                                  \
    }

// Sum of this work-item's share of the values [j0, j1) of the channel whose first value x points at.
inline float share_sum(__global const float *x, const int j0, const int j1, const int CS, const int S,
                       const int lid)
{
    float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
    WALK_SETUP;
    for (; j < j1 - 3 * WG_SIZE; j += 4 * WG_SIZE) {
        a0 += x[off];
        WALK_STEP
        a1 += x[off];
        WALK_STEP
        a2 += x[off];
        WALK_STEP
        a3 += x[off];
        WALK_STEP
    }
    for (; j < j1; j += WG_SIZE) {
        a0 += x[off];
        WALK_STEP
    }
    return (a0 + a1) + (a2 + a3);
}

// (sum(d), sum(d * d)) over the share, d = x - mean0.
inline float2 share_dev(__global const float *x, const float mean0, const int j0, const int j1, const int CS,
                        const int S, const int lid)
{
    float2 a0 = 0.0f, a1 = 0.0f;  // (sum d, sum d^2), two independent chains
    WALK_SETUP;
    float d;
    for (; j < j1 - WG_SIZE; j += 2 * WG_SIZE) {
        d = x[off] - mean0;
        a0 += (float2)(d, d * d);
        WALK_STEP
        d = x[off] - mean0;
        a1 += (float2)(d, d * d);
        WALK_STEP
    }
    for (; j < j1; j += WG_SIZE) {
        d = x[off] - mean0;
        a0 += (float2)(d, d * d);
        WALK_STEP
    }
    return a0 + a1;
}

// (sum(g), sum(g * (x - mu))) over the share, g = dy.
inline float2 share_grad(__global const float *dy, __global const float *x, const float mu, const int j0,
                         const int j1, const int CS, const int S, const int lid)
{
    float2 a0 = 0.0f, a1 = 0.0f;  // (sum g, sum g (x - mu))
    WALK_SETUP;
    float g;
    for (; j < j1 - WG_SIZE; j += 2 * WG_SIZE) {
        g = dy[off];
        a0 += (float2)(g, g * (x[off] - mu));
        WALK_STEP
        g = dy[off];
        a1 += (float2)(g, g * (x[off] - mu));
        WALK_STEP
    }
    for (; j < j1; j += WG_SIZE) {
        g = dy[off];
        a0 += (float2)(g, g * (x[off] - mu));
        WALK_STEP
    }
    return a0 + a1;
}

// Elementwise kernels: global (S, C, N) rounded up, but at most 65535 work-groups along C and N (what
// every GPU allows in dims 1 and 2), so a work-item takes the channels c, c + global C, ... of the images
// n, n + global N, ...; one value of each (span is unused). Declares c, i0, i1 inside the loops.
#define RUNS_BEGIN                                                         \
    const int s_ = get_global_id(0);                                       \
    if (s_ >= S) return;                                                   \
    for (int n_ = get_global_id(2); n_ < N; n_ += (int)get_global_size(2)) \
        for (int c = get_global_id(1); c < C; c += (int)get_global_size(1)) { \
            const size_t i0 = ((size_t)n_ * C + c) * S + s_;               \
            const size_t i1 = i0 + 1;
#define RUNS_END }

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

// The statistics as the other kernels read them, from the channel's mean and m2 = sum((x - mean)^2).
inline void store_stats(const int c, const float m, const float mean, const float m2, const float eps,
                        __global float *mean_out, __global float *invstd_out, __global float *unbiased_var_out)
{
    mean_out[c] = mean;
    invstd_out[c] = 1.0f / sqrt(m2 / m + eps);
    unbiased_var_out[c] = m > 1.0f ? m2 / (m - 1.0f) : 0.0f;
}

// dbias = sum(g), dweight = invstd * sum(g * (x - mean)), and the coefficients of the training
// dx = k1 * g + k2 * (x - mean) + k3: k1 = w * invstd, k2 = -k1 * invstd^2 * sum(g (x - mean)) / M,
// k3 = -k1 * sum(g) / M, stored at coeff[c], coeff[C + c], coeff[2C + c].
inline void store_grad_coeffs(const int c, const int C, const float m, const float sum_g, const float sum_gx,
                              __global const float *invstd, __global const float *weight,
                              __global float *dweight, __global float *dbias, __global float *coeff)
{
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

#if ROW_LOOP
// CPU reductions: one work-group (of WG_SIZE work-items, 1 on PoCL) per channel.

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
        store_stats(c, m, mean0 + sd / m, m2, eps, mean_out, invstd_out, unbiased_var_out);
    }
}

// The gradient sums and dx coefficients of channel get_group_id(0) (store_grad_coeffs). Global (C * WG_SIZE).
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
    if (lid == 0)
        store_grad_coeffs(c, C, (float)N * (float)S, red[0], red[WG_SIZE], invstd, weight, dweight, dbias, coeff);
}

#else
// GPU reductions in two stages: work-group g = c * splits + k reduces chunk k of channel c (values
// [k * chunk, min(M, (k + 1) * chunk))) into part[2g], part[2g + 1]; then one work-item per channel
// merges its splits chunks in order k = 0, 1, ... Global (C * splits * WG_SIZE), then (C).

// Chunk k's mean and m2 = sum((x - mean_k)^2), two-pass within the chunk (as the CPU's whole channel).
__kernel __attribute__((reqd_work_group_size(WG_SIZE, 1, 1)))
void bn_stats_partial(__global const float *x, const int N, const int C, const int S, const int splits,
                      const int chunk, __global float *part)
{
    __local float red[2 * WG_SIZE];
    const int g = get_group_id(0);
    const int c = g / splits;
    const int j0 = (g - c * splits) * chunk;
    const int j1 = min(N * S, j0 + chunk);  // the host makes every chunk non-empty
    const int lid = get_local_id(0);
    const int CS = C * S;
    const float n = (float)(j1 - j0);
    x += (size_t)c * S;

    tree_sum2(red, lid, share_sum(x, j0, j1, CS, S, lid), 0.0f);
    const float mean0 = red[0] / n;
    barrier(CLK_LOCAL_MEM_FENCE);  // everyone has read red[0] before it is overwritten

    // sum(d) is ~0 up to the rounding of mean0 and corrects both the mean and sum(d^2).
    const float2 dev = share_dev(x, mean0, j0, j1, CS, S, lid);
    tree_sum2(red, lid, dev.x, dev.y);
    if (lid == 0) {
        const float sd = red[0];
        part[2 * g] = mean0 + sd / n;
        part[2 * g + 1] = fmax(red[WG_SIZE] - sd * sd / n, 0.0f);
    }
}

// Merges channel c's chunks (Chan et al.): mean = sum(n_k mean_k) / m, taken relative to chunk 0's mean
// so the large common part is not rounded n_k times; m2 = sum(m2_k + n_k (mean_k - mean)^2).
__kernel void bn_stats_finish(__global const float *part, const int N, const int C, const int S,
                              const int splits, const int chunk, const float eps,
                              __global float *mean_out, __global float *invstd_out, __global float *unbiased_var_out)
{
    const int c = get_global_id(0);
    if (c >= C) return;
    const int M = N * S;
    const float m = (float)N * (float)S;
    __global const float *p = part + 2 * (size_t)c * splits;
    const float ref = p[0];
    float shift = 0.0f;
    for (int k = 1; k < splits; ++k) shift += (float)(min(M - k * chunk, chunk)) * (p[2 * k] - ref);
    const float mean = ref + shift / m;
    float m2 = 0.0f;
    for (int k = 0; k < splits; ++k) {
        const float d = p[2 * k] - mean;
        m2 += p[2 * k + 1] + (float)(min(M - k * chunk, chunk)) * d * d;
    }
    store_stats(c, m, mean, m2, eps, mean_out, invstd_out, unbiased_var_out);
}

// Chunk k's (sum(g), sum(g * (x - mean))) into part[2g], part[2g + 1].
__kernel __attribute__((reqd_work_group_size(WG_SIZE, 1, 1)))
void bn_backward_partial(__global const float *dy, __global const float *x, __global const float *mean,
                         const int N, const int C, const int S, const int splits, const int chunk,
                         __global float *part)
{
    __local float red[2 * WG_SIZE];
    const int g = get_group_id(0);
    const int c = g / splits;
    const int j0 = (g - c * splits) * chunk;
    const int j1 = min(N * S, j0 + chunk);
    const int lid = get_local_id(0);
    const size_t base = (size_t)c * S;
    const float2 sums = share_grad(dy + base, x + base, mean[c], j0, j1, C * S, S, lid);
    tree_sum2(red, lid, sums.x, sums.y);
    if (lid == 0) {
        part[2 * g] = red[0];
        part[2 * g + 1] = red[WG_SIZE];
    }
}

// Adds channel c's chunk sums in order and stores the gradient sums and dx coefficients. Global (C).
__kernel void bn_backward_finish(__global const float *part, __global const float *invstd,
                                 __global const float *weight, const int N, const int C, const int S,
                                 const int splits, __global float *dweight, __global float *dbias,
                                 __global float *coeff)
{
    const int c = get_global_id(0);
    if (c >= C) return;
    __global const float *p = part + 2 * (size_t)c * splits;
    float sum_g = 0.0f, sum_gx = 0.0f;
    for (int k = 0; k < splits; ++k) {
        sum_g += p[2 * k];
        sum_gx += p[2 * k + 1];
    }
    store_grad_coeffs(c, C, (float)N * (float)S, sum_g, sum_gx, invstd, weight, dweight, dbias, coeff);
}

#endif  // ROW_LOOP

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
    RUNS_BEGIN
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
    RUNS_END
}

// Training dx = k1 * g + k2 * (x - mean) + k3 with the coefficients of store_grad_coeffs.
__kernel void bn_backward_dx(__global const float *restrict dy, __global const float *restrict x, __global const float *mean,
                             __global const float *coeff, const int N, const int C, const int S, const int span,
                             __global float *restrict dx)
{
    RUNS_BEGIN
    const float mu = mean[c];
    const float k1 = coeff[c];
    const float k2 = coeff[C + c];
    const float k3 = coeff[2 * C + c];
    for (size_t i = i0; i < i1; ++i) dx[i] = fma(k1, dy[i], fma(k2, x[i] - mu, k3));
    RUNS_END
}

// Evaluation dx = g * weight * invstd (the statistics are constants).
__kernel void bn_backward_dx_eval(__global const float *restrict dy, __global const float *invstd, __global const float *weight,
                                  const int N, const int C, const int S, const int span,
                                  __global float *restrict dx)
{
    RUNS_BEGIN
#if HAS_WEIGHT
    const float k1 = weight[c] * invstd[c];
#else
    const float k1 = invstd[c];
#endif
    for (size_t i = i0; i < i1; ++i) dx[i] = dy[i] * k1;
    RUNS_END
}
