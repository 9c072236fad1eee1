"""Batch normalisation (torch.nn.functional.batch_norm) over [N, C, *].

Training: per-channel mean and biased variance of the batch (kernels_cl/batch_norm.cl: one work-group per
channel, corrected two-pass variance), running stats updated in place on the device with the unbiased
variance. Eval: the running stats. The forward saves mean and 1/sqrt(var + eps) (float32 [C]) for backward.
"""

from __future__ import annotations

import math

import numpy as np

from ..autograd import Context, Function
from ..device import Device
from ..tensor import Tensor, empty, zeros
from ..validate import INT_MAX, tensor_arg

_GPU_WG = 256  # work-items per channel in the reductions (WG_SIZE), GPU layout
_GPU_ELEMENTWISE_WG = 256
# CPU layout (ROW_LOOP=1): PoCL runs a work-group on one core and vectorises the loops inside a
# work-item, so a channel's reduction is one work-item and elementwise work-items take long runs.
_CPU_WG = 1
_CPU_ROWS_PER_GROUP = 8  # local size of the elementwise kernels (one fixed size: PoCL compiles per size)
_CPU_MIN_SPAN = 2048  # values per elementwise work-item before a row is split for more parallelism


def _row_loop(dev: Device) -> bool:
    """The ROW_LOOP layout of kernels_cl/batch_norm.cl: 1 for the cpu kernel flavour, 0 for gpu."""
    return dev.flavour == "cpu"


def _wg_size(row_loop: bool) -> int:
    """Work-items per channel in the reduction kernels (the WG_SIZE define)."""
    return _CPU_WG if row_loop else _GPU_WG


def _pow2_at_most(v: int, cap: int) -> int:
    """The smallest power of two >= v, but at most cap."""
    p = 1
    while p < v and p < cap:
        p *= 2
    return p


def _grid(dev: Device, row_loop: bool, n: int, c: int, s: int) -> tuple[tuple, tuple, int]:
    """(global size, local size, span) of the elementwise kernels."""
    # ROW_LOOP: global (rows, chunks), each work-item loops over `span` values of one row; rows are split only
    # as far as needed to give every core several work-items. Otherwise global (S, C, N), one value per
    # work-item, the local size filled along the contiguous spatial axis first, then channels, then images
    # (so 2-D inputs, S = 1, still get full work-groups).
    if row_loop:
        rows = n * c
        want = 8 * max(dev.info.compute_units, 1)
        chunks = max(1, min(-(-s // _CPU_MIN_SPAN), -(-want // max(rows, 1))))
        span = -(-s // chunks)
        span = -(-span // 16) * 16  # whole 16-value vector steps per chunk
        chunks = -(-s // span)
        lx = _CPU_ROWS_PER_GROUP
        return (-(-rows // lx) * lx, chunks), (lx, 1), span
    lx = _pow2_at_most(s, _GPU_ELEMENTWISE_WG)
    ly = _pow2_at_most(c, _GPU_ELEMENTWISE_WG // lx)
    lz = _pow2_at_most(n, _GPU_ELEMENTWISE_WG // (lx * ly))
    local = (lx, ly, lz)
    glob = tuple(-(-v // lv) * lv for v, lv in zip((s, c, n), local))
    return glob, local, 1


def _defines(has_weight: bool, has_bias: bool, row_loop: bool, wg: int) -> dict:
    return {"HAS_WEIGHT": int(has_weight), "HAS_BIAS": int(has_bias), "ROW_LOOP": int(row_loop), "WG_SIZE": wg}


def _run(dev: Device, name: str, defines: dict, global_size, local_size, *args) -> None:
    dev.run("batch_norm.cl", name, defines, global_size, local_size, *args)


def _dims(x: Tensor) -> tuple[int, int, int]:
    """(N, C, S) of an [N, C, *] tensor."""
    return x.shape[0], x.shape[1], math.prod(x.shape[2:])


def _check_float(op: str, name: str, t, dev: Device | None) -> None:
    tensor_arg(op, name, t)
    if dev is not None and t.device is not dev:
        raise ValueError(f"{op}: {name} is on device {t.device.id} but input is on {dev.id}")


def _validate_forward(input, running_mean, running_var, weight, bias, training, momentum,
                      num_batches_tracked) -> None:
    op = "batch_norm"
    _check_float(op, "input", input, None)
    if input.ndim < 2:
        raise ValueError(f"{op}: input {input.shape} must have at least 2 dimensions [N, C, *]")
    if input.size > INT_MAX:
        raise ValueError(f"{op}: input {input.shape} has more than 2^31 - 1 elements")
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
    row_loop = _row_loop(dev)
    prog_defines = _defines(weight is not None, bias is not None, row_loop, _wg_size(row_loop))
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
        wg = prog_defines["WG_SIZE"]
        _run(dev, "bn_stats", prog_defines, (c * wg,), (wg,),
             input, np.int32(n), np.int32(c), np.int32(s), np.float32(eps),
             save_mean, save_invstd, unbiased_var)
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
    glob, local, span = _grid(dev, row_loop, n, c, s)
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
    row_loop = _row_loop(dev)
    prog_defines = _defines(weight is not None, has_bias, row_loop, _wg_size(row_loop))
    w = save_invstd if weight is None else weight  # never read when HAS_WEIGHT is 0
    dx = dweight = dbias = None
    if m == 0:
        dx = empty(input.shape, np.float32, dev) if want_dx else None
        dweight = zeros(weight.shape, np.float32, dev) if want_dw else None
        dbias = zeros((c,), np.float32, dev) if want_db else None
        return dx, dweight, dbias
    coeff = None
    if want_dw or want_db or (want_dx and training):
        wg = prog_defines["WG_SIZE"]
        dweight_buf = empty((c,), np.float32, dev)
        dbias_buf = empty((c,), np.float32, dev)
        coeff = empty((3 * c,), np.float32, dev)
        _run(dev, "bn_backward_reduce", prog_defines, (c * wg,), (wg,),
             grad_output, input, save_mean, save_invstd, w, np.int32(n), np.int32(c), np.int32(s),
             dweight_buf, dbias_buf, coeff)
        if want_dw:
            dweight = Tensor(dweight_buf.storage, weight.shape, np.float32, dev)
        if want_db:
            dbias = dbias_buf
    if want_dx:
        dx = empty(input.shape, np.float32, dev)
        glob, local, span = _grid(dev, row_loop, n, c, s)
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
