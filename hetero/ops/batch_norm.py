"""Batch normalisation (torch.nn.functional.batch_norm) over [N, C, *].

Training: per-channel mean and biased variance of the batch (kernels_cl/batch_norm.cl: corrected two-pass
variance; a work-group per channel on CPUs, several per channel merged by a second kernel on GPUs, see
reduce_split), running stats updated in place on the device with the unbiased variance. Eval: the running
stats. The forward saves mean and 1/sqrt(var + eps) (float32 [C]) for backward.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from ..autograd import Context, Function
from ..device import Device
from ..limits import STRICT
from ..tensor import Tensor, empty, zeros
from ..validate import INT_INDEX_MAX, INT_MAX, tensor_arg
from .gemm.config import flavour_of

_FILE = "batch_norm.cl"
# CPU layout (ROW_LOOP=1): PoCL runs a work-group on one core and vectorises the loops inside a
# work-item, so a channel's reduction is one work-item and elementwise work-items take long runs.
_CPU_WG = 1
_CPU_ROWS_PER_GROUP = 8  # local size of the elementwise kernels (one fixed size: PoCL compiles per size)
_CPU_MIN_SPAN = 2048  # values per elementwise work-item before a row is split for more parallelism

# GPU layout (ROW_LOOP=0): launches stay inside hetero.limits.STRICT, the strictest limits common GPUs impose
# (256 work-items per group, 64 in z, 65535 groups in dims 1 and 2; what HETERO_STRICT_LIMITS=1 checks), on
# every device, and inside what the device reports for each kernel.
STRICT_GROUPS = STRICT.max_groups  # work-groups along each dimension (None: no limit); the kernels loop past
# The GPU reduction table (reduce_split): a channel's values are cut into chunks, one work-group each, until
# there are GPU_GROUPS_PER_CU groups per compute unit (several resident groups hide memory latency), but
# chunks keep at least GPU_MIN_CHUNK values (16 per work-item of 256: a group's fixed cost and the merge
# stay small against its reads) and a channel at most GPU_MAX_SPLITS chunks (its merge is one work-item).
# Starting points chosen without a GPU to measure on, not tuned values.
GPU_GROUPS_PER_CU = 4
GPU_MIN_CHUNK = 4096
GPU_MAX_SPLITS = 256
_GPU_REDUCTIONS = ("bn_stats_partial", "bn_backward_partial")  # built with reqd_work_group_size(WG_SIZE)
_GPU_ELEMENTWISE = ("bn_apply", "bn_backward_dx", "bn_backward_dx_eval")
# batch_norm.cl takes N, C, S and the products N*S, C*S, N*C as int arguments (at most INT_INDEX_MAX).


class ReduceSplit(NamedTuple):
    """How one channel's values are reduced: `splits` work-groups of `chunk` consecutive values each."""
    splits: int
    chunk: int


def reduce_split(device: Any, channels: int, per_channel: int, compute_units: int) -> ReduceSplit:
    """The reduction table: chunks per channel for a device (or flavour string), from the channel count, the
    values per channel (N*S) and the device's compute units. CPU flavour: always one (its layout is fixed)."""
    if flavour_of(device) == "cpu" or per_channel <= GPU_MIN_CHUNK:
        return ReduceSplit(1, per_channel)
    want = -(-GPU_GROUPS_PER_CU * max(compute_units, 1) // max(channels, 1))
    splits = max(1, min(want, per_channel // GPU_MIN_CHUNK, GPU_MAX_SPLITS))
    chunk = -(-per_channel // splits)
    return ReduceSplit(-(-per_channel // chunk), chunk)  # no empty last chunk


def _row_loop(dev: Device) -> bool:
    """The ROW_LOOP layout of kernels_cl/batch_norm.cl: 1 for the cpu kernel flavour, 0 for gpu."""
    return dev.flavour == "cpu"


def _pow2_floor(v: int) -> int:
    return 1 << (max(int(v), 1).bit_length() - 1)


def _pow2_at_most(v: int, cap: int) -> int:
    """The smallest power of two >= v, but at most the largest power of two <= cap."""
    cap = _pow2_floor(cap)
    p = 1
    while p < v and p < cap:
        p *= 2
    return p


def gpu_grid(n: int, c: int, s: int, max_group: int, max_local: tuple[int, int, int]) -> tuple[tuple, tuple]:
    """(global, local) of the GPU layout's elementwise kernels over (S, C, N): at most max_group work-items
    per group and max_local[d] along dimension d, and at most STRICT_GROUPS groups (the kernels loop past)."""
    # the local size is filled along the contiguous spatial axis first, then channels, then images (so 2-D
    # inputs, S = 1, still get full work-groups)
    lx = _pow2_at_most(s, min(max_group, max_local[0]))
    ly = _pow2_at_most(c, min(max_group // lx, max_local[1]))
    lz = _pow2_at_most(n, min(max_group // (lx * ly), max_local[2]))
    local = (lx, ly, lz)
    glob = tuple(min(-(-v // lv), most or INT_MAX) * lv for v, lv, most in zip((s, c, n), local, STRICT_GROUPS))
    return glob, local


class _GpuSizes(NamedTuple):
    wg: int  # WG_SIZE: the reduction kernels' work-group size
    group: int  # work-items per group the elementwise kernels allow
    local: tuple[int, int, int]  # work-items along each dimension the device allows, within STRICT's


_gpu_sizes_memo: dict[tuple, _GpuSizes] = {}


def _gpu_sizes(dev: Device, has_weight: bool, has_bias: bool) -> _GpuSizes:
    """The GPU layout's work-group sizes on dev: what the strict limits, the device and each kernel allow."""
    key = (dev.id, has_weight, has_bias)
    sizes = _gpu_sizes_memo.get(key)
    if sizes is None:
        items = dev.cl_device.max_work_item_sizes
        local = tuple(min(strict, int(v)) for strict, v in zip(STRICT.max_work_item_sizes, items))
        base = {"HAS_WEIGHT": int(has_weight), "HAS_BIAS": int(has_bias), "ROW_LOOP": 0}
        wg = min(STRICT.max_work_group_size, local[0])
        while True:  # the largest size every reduction kernel allows when built with it
            allowed = min(dev.work_group_size(_FILE, name, base, cap=wg, define="WG_SIZE") for name in _GPU_REDUCTIONS)
            if allowed == wg:
                break
            wg = allowed
        defines = {**base, "WG_SIZE": wg}
        group = min([STRICT.max_work_group_size] + [dev.local_size_limit(_FILE, name, defines)
                                                    for name in _GPU_ELEMENTWISE])
        sizes = _gpu_sizes_memo[key] = _GpuSizes(wg, _pow2_floor(group), local)
    return sizes


def _grid(dev: Device, row_loop: bool, n: int, c: int, s: int, sizes: _GpuSizes | None) -> tuple[tuple, tuple, int]:
    """(global size, local size, span) of the elementwise kernels."""
    # ROW_LOOP: global (rows, chunks), each work-item loops over `span` values of one row; rows are split only
    # as far as needed to give every core several work-items. Otherwise global (S, C, N), one value per
    # work-item (gpu_grid).
    if row_loop:
        rows = n * c
        want = 8 * max(dev.info.compute_units, 1)
        chunks = max(1, min(-(-s // _CPU_MIN_SPAN), -(-want // max(rows, 1))))
        span = -(-s // chunks)
        span = -(-span // 16) * 16  # whole 16-value vector steps per chunk
        chunks = -(-s // span)
        lx = _CPU_ROWS_PER_GROUP
        return (-(-rows // lx) * lx, chunks), (lx, 1), span
    glob, local = gpu_grid(n, c, s, sizes.group, sizes.local)
    return glob, local, 1


def _defines(has_weight: bool, has_bias: bool, row_loop: bool, wg: int) -> dict:
    return {"HAS_WEIGHT": int(has_weight), "HAS_BIAS": int(has_bias), "ROW_LOOP": int(row_loop), "WG_SIZE": wg}


def _layout(dev: Device, has_weight: bool, has_bias: bool) -> tuple[bool, dict, _GpuSizes | None]:
    """(ROW_LOOP, the program's defines, the GPU layout's sizes or None) for one configuration on dev."""
    row_loop = _row_loop(dev)
    if row_loop:
        return True, _defines(has_weight, has_bias, True, _CPU_WG), None
    sizes = _gpu_sizes(dev, has_weight, has_bias)
    return False, _defines(has_weight, has_bias, False, sizes.wg), sizes


def _run(dev: Device, name: str, defines: dict, global_size, local_size, *args) -> None:
    dev.run(_FILE, name, defines, global_size, local_size, *args)


def _dims(x: Tensor) -> tuple[int, int, int]:
    """(N, C, S) of an [N, C, *] tensor."""
    return x.shape[0], x.shape[1], math.prod(x.shape[2:])


def _check_float(op: str, name: str, t, dev: Device | None) -> None:
    tensor_arg(op, name, t)
    if dev is not None and t.device is not dev:
        raise ValueError(f"{op}: {name} is on device {t.device.id} but input is on {dev.id}")


def check_sizes(op: str, shape: tuple[int, ...]) -> None:
    """Refuse an [N, C, *] shape whose sizes batch_norm.cl's int32 arguments cannot hold (INT_INDEX_MAX)."""
    n, c, s = shape[0], shape[1], math.prod(shape[2:])
    for what, v, fix in (("values per channel (N*S)", n * s, "split the batch"),
                         ("values per image (C*S)", c * s, "use smaller images"),
                         ("rows (N*C)", n * c, "split the batch")):
        if v > INT_INDEX_MAX:
            raise ValueError(f"{op}: input {shape} has {v} {what}, more than the {INT_INDEX_MAX} (2^31 - 1 - 2^24) "
                             f"that batch_norm.cl's int32 indices reach; {fix}")


def _validate_forward(input, running_mean, running_var, weight, bias, training, momentum,
                      num_batches_tracked) -> None:
    op = "batch_norm"
    _check_float(op, "input", input, None)
    if input.ndim < 2:
        raise ValueError(f"{op}: input {input.shape} must have at least 2 dimensions [N, C, *]")
    check_sizes(op, input.shape)
    dev = input.device
    c = input.shape[1]
    if (running_mean is None) != (running_var is None):
        raise ValueError(f"{op}: running_mean and running_var must either both be None or neither be None")
    if not training and running_mean is None:
        raise ValueError(f"{op}: running_mean and running_var must be given in evaluation mode (training=False)")
    for name, t in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight),
                    ("bias", bias)):
        if t is None:
            continue
        _check_float(op, name, t, dev)
        if t.size != c:
            raise ValueError(f"{op}: input {input.shape} has {c} channels but {name} {t.shape} has {t.size} elements")
    n, _, s = _dims(input)
    if training and n * s == 1:
        raise ValueError(f"{op}: Expected more than 1 value per channel when training, got input size {input.shape}")
    if num_batches_tracked is not None:
        if not isinstance(num_batches_tracked, Tensor) or num_batches_tracked.dtype != np.int32 \
                or num_batches_tracked.size != 1:
            raise ValueError(f"{op}: num_batches_tracked must be an int32 tensor of one element, got "
                             f"{getattr(num_batches_tracked, 'shape', type(num_batches_tracked))}")
        if num_batches_tracked.device is not dev:
            raise ValueError(f"{op}: num_batches_tracked is on device {num_batches_tracked.device.id} "
                             f"but input is on {dev.id}")
    if momentum is None and training and running_mean is not None and num_batches_tracked is None:
        raise ValueError(f"{op}: momentum=None (cumulative moving average) needs num_batches_tracked, the int32 "
                         "device counter of the batches seen so far")
    if momentum is not None and not isinstance(momentum, (int, float, np.floating, np.integer)):
        raise ValueError(f"{op}: momentum must be a number or None, got {type(momentum).__name__}")


def _split(dev: Device, c: int, m: int) -> ReduceSplit:
    """The GPU layout's chunks per channel on dev (the table, asked with the gpu flavour the layout implies)."""
    return reduce_split("gpu", c, m, dev.info.compute_units)


def _launch_stats(dev: Device, row_loop: bool, defines: dict, x: Tensor, eps: float, mean: Tensor,
                  invstd: Tensor, unbiased_var: Tensor) -> None:
    """The training statistics of x into mean, invstd and unbiased_var ([C] each)."""
    n, c, s = _dims(x)
    wg = defines["WG_SIZE"]
    sizes = np.int32(n), np.int32(c), np.int32(s)
    if row_loop:
        _run(dev, "bn_stats", defines, (c * wg,), (wg,), x, *sizes, np.float32(eps), mean, invstd, unbiased_var)
        return
    split = _split(dev, c, n * s)
    part = empty((c * split.splits * 2,), np.float32, dev)
    chunks = np.int32(split.splits), np.int32(split.chunk)
    _run(dev, "bn_stats_partial", defines, (c * split.splits * wg,), (wg,), x, *sizes, *chunks, part)
    _run(dev, "bn_stats_finish", defines, (c,), None, part, *sizes, *chunks, np.float32(eps), mean, invstd,
         unbiased_var)


def _launch_grad_sums(dev: Device, row_loop: bool, defines: dict, dy: Tensor, x: Tensor, mean: Tensor,
                      invstd: Tensor, w: Tensor, dweight: Tensor, dbias: Tensor, coeff: Tensor) -> None:
    """dweight, dbias and the training dx coefficients (coeff, [3C]) of the backward."""
    n, c, s = _dims(x)
    wg = defines["WG_SIZE"]
    sizes = np.int32(n), np.int32(c), np.int32(s)
    if row_loop:
        _run(dev, "bn_backward_reduce", defines, (c * wg,), (wg,), dy, x, mean, invstd, w, *sizes, dweight, dbias,
             coeff)
        return
    split = _split(dev, c, n * s)
    part = empty((c * split.splits * 2,), np.float32, dev)
    _run(dev, "bn_backward_partial", defines, (c * split.splits * wg,), (wg,), dy, x, mean, *sizes,
         np.int32(split.splits), np.int32(split.chunk), part)
    _run(dev, "bn_backward_finish", defines, (c,), None, part, invstd, w, *sizes, np.int32(split.splits), dweight,
         dbias, coeff)


def batch_norm_forward(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
                       weight: Tensor | None = None, bias: Tensor | None = None, training: bool = False,
                       momentum: float | None = 0.1, eps: float = 1e-5, *,
                       num_batches_tracked: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """(batch_norm(input), save_mean, save_invstd), updating running stats in place when training."""
    # num_batches_tracked (int32, one element) is incremented on the device in training, as nn.BatchNorm does;
    # momentum=None then uses the cumulative average factor 1 / num_batches_tracked.
    _validate_forward(input, running_mean, running_var, weight, bias, training, momentum,
                      num_batches_tracked)
    dev = input.device
    n, c, s = _dims(input)
    m = n * s
    row_loop, prog_defines, sizes = _layout(dev, weight is not None, bias is not None)
    out = empty(input.shape, np.float32, dev)
    save_mean = empty((c,), np.float32, dev)
    save_invstd = empty((c,), np.float32, dev)
    update = training and running_mean is not None
    if training and num_batches_tracked is not None and running_mean is not None:
        _run(dev, "bn_count_batch", prog_defines, (1,), None, num_batches_tracked)
    if training:
        if m == 0:
            # torch returns an empty output and leaves the running stats alone
            return out, zeros((c,), np.float32, dev), zeros((c,), np.float32, dev)
        unbiased_var = empty((c,), np.float32, dev)
        _launch_stats(dev, row_loop, prog_defines, input, eps, save_mean, save_invstd, unbiased_var)
        if update:
            if momentum is None:
                _run(dev, "bn_update_running_cumulative", prog_defines, (c,), None,
                     running_mean, running_var, save_mean, unbiased_var, np.int32(c), num_batches_tracked)
            else:
                _run(dev, "bn_update_running", prog_defines, (c,), None,
                     running_mean, running_var, save_mean, unbiased_var, np.int32(c), np.float32(momentum))
    else:
        _run(dev, "bn_eval_stats", prog_defines, (c,), None,
             running_mean, running_var, np.int32(c), np.float32(eps), save_mean, save_invstd)
    glob, local, span = _grid(dev, row_loop, n, c, s, sizes)
    dummy = save_mean  # never read when HAS_WEIGHT / HAS_BIAS is 0
    _run(dev, "bn_apply", prog_defines, glob, local,
         input, save_mean, save_invstd, dummy if weight is None else weight,
         dummy if bias is None else bias, np.int32(n), np.int32(c), np.int32(s), np.int32(span), out)
    return out, save_mean, save_invstd


def batch_norm_backward(grad_output: Tensor, input: Tensor, weight: Tensor | None, save_mean: Tensor,
                        save_invstd: Tensor, training: bool, *,
                        output_mask: tuple[bool, bool, bool] = (True, True, True),
                        has_bias: bool = False) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
    """(grad_input, grad_weight, grad_bias) of batch_norm_forward, None where output_mask is False."""
    # has_bias (whether the forward had a bias) changes no result: it lets backward reuse the forward's program.
    op = "batch_norm_backward"
    _check_float(op, "input", input, None)
    dev = input.device
    _check_float(op, "grad_output", grad_output, dev)
    if grad_output.shape != input.shape:
        raise ValueError(f"{op}: grad_output {grad_output.shape} does not match input {input.shape}")
    if input.ndim < 2:
        raise ValueError(f"{op}: input {input.shape} must have at least 2 dimensions [N, C, *]")
    check_sizes(op, input.shape)
    n, c, s = _dims(input)
    for name, t in (("weight", weight), ("save_mean", save_mean), ("save_invstd", save_invstd)):
        if t is None and name == "weight":
            continue
        _check_float(op, name, t, dev)
        if t.size != c:
            raise ValueError(f"{op}: input {input.shape} has {c} channels but {name} {t.shape} has {t.size} elements")
    want_dx, want_dw, want_db = output_mask
    want_dw = want_dw and weight is not None
    m = n * s
    row_loop, prog_defines, sizes = _layout(dev, weight is not None, has_bias)
    w = save_invstd if weight is None else weight  # never read when HAS_WEIGHT is 0
    dx = dweight = dbias = None
    if m == 0:
        dx = empty(input.shape, np.float32, dev) if want_dx else None
        dweight = zeros(weight.shape, np.float32, dev) if want_dw else None
        dbias = zeros((c,), np.float32, dev) if want_db else None
        return dx, dweight, dbias
    coeff = None
    if want_dw or want_db or (want_dx and training):
        dweight_buf = empty((c,), np.float32, dev)
        dbias_buf = empty((c,), np.float32, dev)
        coeff = empty((3 * c,), np.float32, dev)
        _launch_grad_sums(dev, row_loop, prog_defines, grad_output, input, save_mean, save_invstd, w, dweight_buf,
                          dbias_buf, coeff)
        if want_dw:
            dweight = Tensor(dweight_buf.storage, weight.shape, np.float32, dev)
        if want_db:
            dbias = dbias_buf
    if want_dx:
        dx = empty(input.shape, np.float32, dev)
        glob, local, span = _grid(dev, row_loop, n, c, s, sizes)
        if training:
            _run(dev, "bn_backward_dx", prog_defines, glob, local,
                 grad_output, input, save_mean, coeff, np.int32(n), np.int32(c), np.int32(s), np.int32(span), dx)
        else:
            _run(dev, "bn_backward_dx_eval", prog_defines, glob, local,
                 grad_output, save_invstd, w, np.int32(n), np.int32(c), np.int32(s), np.int32(span), dx)
    return dx, dweight, dbias


class BatchNormFn(Function):
    """Autograd node of batch_norm_forward; gradients flow to input, weight and bias."""

    @staticmethod
    def forward(ctx: Context, input: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
                weight: Tensor | None = None, bias: Tensor | None = None, training: bool = False,
                momentum: float | None = 0.1, eps: float = 1e-5,
                num_batches_tracked: Tensor | None = None) -> Tensor:
        out, save_mean, save_invstd = batch_norm_forward(
            input, running_mean, running_var, weight, bias, training, momentum, eps,
            num_batches_tracked=num_batches_tracked)
        ctx.save_for_backward(input, weight, save_mean, save_invstd)
        ctx.training = bool(training)
        ctx.has_bias = bias is not None
        return out

    @staticmethod
    def backward(ctx: Context, grad: Tensor):
        input, weight, save_mean, save_invstd = ctx.saved_tensors
        needs = ctx.needs_input_grad
        mask = (needs[0], len(needs) > 3 and needs[3], len(needs) > 4 and needs[4])
        dx, dweight, dbias = batch_norm_backward(grad, input, weight, save_mean, save_invstd, ctx.training,
                                                 output_mask=mask, has_bias=ctx.has_bias)
        if dbias is not None:
            bias = ctx.inputs[4]
            dbias = Tensor(dbias.storage, bias.shape, np.float32, dbias.device)
        return (dx, None, None, dweight, dbias) + (None,) * (len(needs) - 5)


def batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
               weight: Tensor | None = None, bias: Tensor | None = None, training: bool = False,
               momentum: float | None = 0.1, eps: float = 1e-5, *,
               num_batches_tracked: Tensor | None = None) -> Tensor:
    """torch.nn.functional.batch_norm (running stats updated in place when training); momentum=None (the
    cumulative average, as nn.BatchNorm) needs num_batches_tracked, see batch_norm_forward."""
    return BatchNormFn.apply(input, running_mean, running_var, weight, bias, training, momentum, eps,
                             num_batches_tracked)
