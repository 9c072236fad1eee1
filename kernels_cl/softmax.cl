// Softmax and log-softmax along one dim, and the losses on [N, C] scores: NLL and fused cross-entropy.
//
// Required: OP (0 softmax, 1 log_softmax, 2 nll_loss, 3 cross_entropy).
// The losses also require REDUCTION (0 none, 1 mean, 2 sum), HAS_WEIGHT (0, or 1: per-class weights) and
// MULTI_GROUP (0: one work-group computes a whole loss, the CPU layout; 1: the batch's rows spread over many
// work-groups whose partial sums loss_finish adds in a fixed order, and the backward loops over the rows
// past its grid, which stays within 65535 groups along dimension 1: the GPU layout).
// Tuning knob: WG, the work-group size of the kernels that reduce in local memory (a power of two,
// default 256; the host launches them with exactly WG work-items per group, as it does the GPU layout's loss
// backward).
//
// Softmax views its input as [outer, D, inner]: row (o, i) is the D elements o*D*inner + j*inner + i.
// Every row subtracts its max before exp, so large logits stay finite; log-softmax is computed as
// (x - max) - log(sum), never x - (max + log(sum)), which would round away the small part when |max| is big.
// Sizes (D, rows, N, C) are int arguments (the host refuses larger ones); offsets into a tensor are size_t,
// so tensors may hold more than 2^31 elements.

#ifndef OP
#error "OP must be defined (0 softmax, 1 log_softmax, 2 nll_loss, 3 cross_entropy)"
#endif
#ifndef WG
#define WG 256
#endif
#if WG <= 0 || (WG & (WG - 1)) != 0
#error "WG must be a power of two"
#endif

// Work-group reductions through scratch s[WG]; every work-item of the group must call them.
inline float wg_max(__local float *s, float v)
{
    const int lid = get_local_id(0);
    s[lid] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int h = WG / 2; h > 0; h >>= 1) {
        if (lid < h) s[lid] = fmax(s[lid], s[lid + h]);
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    const float r = s[0];
    barrier(CLK_LOCAL_MEM_FENCE);  // s is reused by the next reduction
    return r;
}

inline float wg_sum(__local float *s, float v)
{
    const int lid = get_local_id(0);
    s[lid] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int h = WG / 2; h > 0; h >>= 1) {
        if (lid < h) s[lid] += s[lid + h];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    const float r = s[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    return r;
}

#if OP == 0 || OP == 1

// Contiguous rows (inner == 1) of length D: one work-group per row, row row0 + get_group_id(0), launched as
// (rows * WG) / WG (the host splits a launch whose global size would pass an int id, giving each its row0;
// a loop over rows inside the group instead ran 1.3-1.7x slower on PoCL).
__kernel void softmax_fw_rows(__global const float *x, __global float *y, const int D, const int row0)
{
    __local float s[WG];
    const int lid = get_local_id(0);
    const size_t base = (size_t)(row0 + (int)get_group_id(0)) * D;
    __global const float *xr = x + base;
    __global float *yr = y + base;
    float m = -INFINITY;
    for (int j = lid; j < D; j += WG) m = fmax(m, xr[j]);
    m = wg_max(s, m);
    float sum = 0.0f;
    for (int j = lid; j < D; j += WG) sum += exp(xr[j] - m);
    sum = wg_sum(s, sum);
#if OP == 0
    const float inv = 1.0f / sum;
    for (int j = lid; j < D; j += WG) yr[j] = exp(xr[j] - m) * inv;
#else
    const float ls = log(sum);
    for (int j = lid; j < D; j += WG) yr[j] = (xr[j] - m) - ls;
#endif
}

// softmax: dx = y * (g - sum(g * y)); log_softmax: dx = g - exp(y) * sum(g). Rows as softmax_fw_rows.
__kernel void softmax_bw_rows(__global const float *y, __global const float *g, __global float *dx, const int D,
                              const int row0)
{
    __local float s[WG];
    const int lid = get_local_id(0);
    const size_t base = (size_t)(row0 + (int)get_group_id(0)) * D;
    float acc = 0.0f;
    for (int j = lid; j < D; j += WG) {
#if OP == 0
        acc += g[base + j] * y[base + j];
#else
        acc += g[base + j];
#endif
    }
    acc = wg_sum(s, acc);
    for (int j = lid; j < D; j += WG) {
#if OP == 0
        dx[base + j] = y[base + j] * (g[base + j] - acc);
#else
        dx[base + j] = g[base + j] - exp(y[base + j]) * acc;
#endif
    }
}

// Any layout: one work-item per row (o, i); neighbouring work-items read neighbouring addresses when inner > 1.
__kernel void softmax_fw_strided(__global const float *x, __global float *y,
                                 const int outer, const int D, const int inner)
{
    const int r = get_global_id(0);
    if (r >= outer * inner) return;
    const int o = r / inner;
    x += (size_t)o * D * inner + (r - o * inner);  // row (o, i): its elements lie inner apart from here
    y += (size_t)o * D * inner + (r - o * inner);
    float m = -INFINITY;
    for (int j = 0; j < D; ++j) m = fmax(m, x[(size_t)j * inner]);
    float sum = 0.0f;
    for (int j = 0; j < D; ++j) sum += exp(x[(size_t)j * inner] - m);
#if OP == 0
    const float inv = 1.0f / sum;
    for (int j = 0; j < D; ++j) y[(size_t)j * inner] = exp(x[(size_t)j * inner] - m) * inv;
#else
    const float ls = log(sum);
    for (int j = 0; j < D; ++j) y[(size_t)j * inner] = (x[(size_t)j * inner] - m) - ls;
#endif
}

__kernel void softmax_bw_strided(__global const float *y, __global const float *g, __global float *dx,
                                 const int outer, const int D, const int inner)
{
    const int r = get_global_id(0);
    if (r >= outer * inner) return;
    const int o = r / inner;
    const size_t base = (size_t)o * D * inner + (r - o * inner);
    float acc = 0.0f;
    for (int j = 0; j < D; ++j) {
        const size_t k = base + (size_t)j * inner;
#if OP == 0
        acc += g[k] * y[k];
#else
        acc += g[k];
#endif
    }
    for (int j = 0; j < D; ++j) {
        const size_t k = base + (size_t)j * inner;
#if OP == 0
        dx[k] = y[k] * (g[k] - acc);
#else
        dx[k] = g[k] - exp(y[k]) * acc;
#endif
    }
}

#elif OP == 2 || OP == 3

#ifndef REDUCTION
#error "REDUCTION must be defined (0 none, 1 mean, 2 sum)"
#endif
#ifndef HAS_WEIGHT
#error "HAS_WEIGHT must be defined (0 or 1)"
#endif
#ifndef MULTI_GROUP
#error "MULTI_GROUP must be defined (0 or 1)"
#endif
#if REDUCTION < 0 || REDUCTION > 2
#error "Unknown REDUCTION"
#endif

// Weight of row i's loss: weight[t] (or 1), for t in [0, C). A class id outside [0, C) cannot raise here:
// its row's loss is NaN (never an out-of-bounds read) and the forward records it in `bad`, for the host to
// raise on when it reads the loss; the row leaves the mean's denominator and gets no gradient, so the
// weights of a step with a bad label stay finite and the run can go on once the data is fixed.
inline float class_weight(__global const float *weight, const int t)
{
#if HAS_WEIGHT
    return weight[t];
#else
    return 1.0f;
#endif
}

#if REDUCTION != 0
// One work-group's last step of a reduced loss: the group's sums of the rows' losses (acc) and weights (wacc)
// added up, then loss[0] (their mean or sum) and denom[0] (the mean's denominator, or 1) written once.
inline void finish_loss(__local float *s, float acc, float wacc, __global float *loss, __global float *denom)
{
    acc = wg_sum(s, acc);
    wacc = wg_sum(s, wacc);
    if (get_local_id(0) == 0) {
#if REDUCTION == 1
        loss[0] = acc / wacc;  // all rows ignored: 0/0 = NaN, as in PyTorch
        denom[0] = wacc;
#else
        loss[0] = acc;
        denom[0] = 1.0f;
#endif
    }
}
#endif

// The forward's rows: work-item lid of group g takes rows g * WG + lid, then a whole grid further on each
// step. MULTI_GROUP 0 runs ONE work-group of WG work-items (global = local = WG): OpenCL 1.2 has no float
// atomics nor a safe grid-wide barrier, so one group reduces the whole batch; MULTI_GROUP 1 runs as many
// groups as the host's table asks (loss_layout), each writing its sums to part[2g], part[2g + 1] and its
// record of bad targets to bad[5g..5g+3], which loss_finish adds and merges.
#if MULTI_GROUP
#define ROW_FIRST ((int)get_group_id(0) * WG + lid)
#define ROW_STEP ((int)get_num_groups(0) * WG)
#else
#define ROW_FIRST lid
#define ROW_STEP WG
#endif

// loss is [N] for REDUCTION 0, else [1]; denom[0] gets the mean's denominator (the sum of the rows'
// weights) or 1 for a sum, for the backward kernel to read on the device.
// bad[5] gets the targets outside [0, C) that are not ignore_index: their count, the first such row, the
// least and greatest such id, and the first row's id (a kernel cannot raise; the host reads this back).
#if OP == 2
// NLL on log-probabilities x: loss_i = -weight[t_i] * x[i, t_i].
__kernel void nll_loss_fw(__global const float *x, __global const int *target, __global const float *weight,
                          __global float *loss, __global float *denom, __global int *bad, __global float *part,
                          const int N, const int C, const int ignore_index)
#else
// Cross-entropy on logits x: loss_i = weight[t_i] * (logsumexp(x_i) - x[i, t_i]), computed as
// (max - x_t) + log(sum exp(x - max)). stats[2i], stats[2i+1] keep the row's max and log-sum for backward.
__kernel void cross_entropy_fw(__global const float *x, __global const int *target, __global const float *weight,
                               __global float *loss, __global float *denom, __global int *bad, __global float *part,
                               __global float *stats, const int N, const int C, const int ignore_index)
#endif
{
    __local float s[WG];
    const int lid = get_local_id(0);
#if MULTI_GROUP
    bad += 5 * get_group_id(0);  // this group's record
#endif
    if (lid == 0) {
        bad[0] = 0;
        bad[1] = INT_MAX;
        bad[2] = INT_MAX;
        bad[3] = INT_MIN;
        bad[4] = 0;
    }
    barrier(CLK_GLOBAL_MEM_FENCE);  // the group's barrier orders these stores before its atomics
    float acc = 0.0f, wacc = 0.0f;
    for (int i = ROW_FIRST; i < N; i += ROW_STEP) {
        __global const float *xr = x + (size_t)i * C;
        const int t = target[i];
        if (t != ignore_index && (t < 0 || t >= C)) {  // rare: only these work-items pay for atomics
            atomic_inc(bad);
            atomic_min(bad + 1, i);
            atomic_min(bad + 2, t);
            atomic_max(bad + 3, t);
        }
#if OP == 3
        float m = -INFINITY;
        for (int c = 0; c < C; ++c) m = fmax(m, xr[c]);
        float sum = 0.0f;
        for (int c = 0; c < C; ++c) sum += exp(xr[c] - m);
        const float ls = log(sum);
        stats[2 * (size_t)i] = m;
        stats[2 * (size_t)i + 1] = ls;
#endif
        float l = 0.0f, w = 0.0f;
        if (t != ignore_index && t >= 0 && t < C) {
            w = class_weight(weight, t);
            const float xt = xr[t];
#if OP == 2
            l = -w * xt;
#else
            l = w * ((m - xt) + ls);
#endif
        } else if (t != ignore_index) {
            l = NAN;
        }
#if REDUCTION == 0
        loss[i] = l;
#endif
        acc += l;
        wacc += w;
    }
    barrier(CLK_GLOBAL_MEM_FENCE);
#if MULTI_GROUP
#if REDUCTION != 0
    acc = wg_sum(s, acc);
    wacc = wg_sum(s, wacc);
    if (lid == 0) {
        part[2 * get_group_id(0)] = acc;
        part[2 * get_group_id(0) + 1] = wacc;
    }
#endif
#else
    if (lid == 0 && bad[0] > 0) bad[4] = target[bad[1]];
#if REDUCTION != 0
    finish_loss(s, acc, wacc, loss, denom);
#endif
#endif  // MULTI_GROUP
}

#if MULTI_GROUP
// The second stage, ONE work-group of WG: adds the G groups' partial sums (work-item lid takes groups lid,
// lid + WG, ..., then a tree: a fixed order) into loss[0] and denom[0], and merges the groups' records of
// bad targets into bad[5] (the count, the first row, the least and greatest id, the first row's id).
__kernel void loss_finish(__global const float *part, __global const int *bad_parts, __global const int *target,
                          __global float *loss, __global float *denom, __global int *bad, const int G)
{
    __local float s[WG];
    __local int r[4 * WG];
    const int lid = get_local_id(0);
    float acc = 0.0f, wacc = 0.0f;
    int count = 0, row = INT_MAX, lo = INT_MAX, hi = INT_MIN;
    for (int g = lid; g < G; g += WG) {
#if REDUCTION != 0
        acc += part[2 * g];
        wacc += part[2 * g + 1];
#endif
        __global const int *b = bad_parts + 5 * g;
        count += b[0];
        row = min(row, b[1]);
        lo = min(lo, b[2]);
        hi = max(hi, b[3]);
    }
    r[lid] = count;
    r[WG + lid] = row;
    r[2 * WG + lid] = lo;
    r[3 * WG + lid] = hi;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int h = WG / 2; h > 0; h >>= 1) {
        if (lid < h) {
            r[lid] += r[lid + h];
            r[WG + lid] = min(r[WG + lid], r[WG + lid + h]);
            r[2 * WG + lid] = min(r[2 * WG + lid], r[2 * WG + lid + h]);
            r[3 * WG + lid] = max(r[3 * WG + lid], r[3 * WG + lid + h]);
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lid == 0) {
        bad[0] = r[0];
        bad[1] = r[WG];
        bad[2] = r[2 * WG];
        bad[3] = r[3 * WG];
        bad[4] = r[0] > 0 ? target[r[WG]] : 0;
    }
#if REDUCTION != 0
    finish_loss(s, acc, wacc, loss, denom);
#endif
}
#endif  // MULTI_GROUP

// dL/dx[i, c] over an NDRange (C, N) (MULTI_GROUP: rows i, i + global N, ... past the grid). g is the
// incoming gradient, read from the device ([N] for REDUCTION 0, else [1]), so a replayed graph picks up
// whatever upstream wrote there.
// NLL: -(c == t) * w * g';  cross-entropy: (softmax(x_i)[c] - (c == t)) * w * g'  with g' = g / denom.
#if OP == 2
__kernel void nll_loss_bw(__global const int *target, __global const float *weight,
                          __global const float *denom, __global const float *g, __global float *dx,
                          const int N, const int C, const int ignore_index)
#else
__kernel void cross_entropy_bw(__global const float *x, __global const int *target, __global const float *weight,
                               __global const float *denom, __global const float *stats,
                               __global const float *g, __global float *dx,
                               const int N, const int C, const int ignore_index)
#endif
{
    const int c = get_global_id(0);
#if MULTI_GROUP
    if (c >= C) return;
    for (int i = get_global_id(1); i < N; i += (int)get_global_size(1)) {
#else
    const int i = get_global_id(1);
    if (c >= C || i >= N) return;
    {
#endif
        const size_t k = (size_t)i * C + c;
        const int t = target[i];
        float v = 0.0f;
        if (t != ignore_index && t >= 0 && t < C) {  // else: ignored, or an id out of range (see class_weight)
#if REDUCTION == 0
            const float gs = g[i] * class_weight(weight, t);
#else
            const float gs = g[0] * class_weight(weight, t) / denom[0];
#endif
            const float onehot = c == t ? 1.0f : 0.0f;
#if OP == 2
            v = -onehot * gs;
#else
            const float p = exp((x[k] - stats[2 * (size_t)i]) - stats[2 * (size_t)i + 1]);
            v = (p - onehot) * gs;
#endif
        }
        dx[k] = v;
    }
}

#else
#error "Unknown OP"
#endif
