"""softmax / log_softmax along any dim, nll_loss, and cross_entropy fused into one kernel each way."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from .. import validate
from ..autograd import Context, Function
from ..device import Device
from ..limits import STRICT
from ..tensor import DeferredCheck, Tensor, empty
from .gemm.config import flavour_of

_FILE = "softmax.cl"
_OPS = {"softmax": 0, "log_softmax": 1, "nll_loss": 2, "cross_entropy": 3}
_REDUCTIONS = {"none": 0, "mean": 1, "sum": 2}
# Rows at least this long (and contiguous) get a work-group each; shorter ones one work-item each.
_ROW_KERNEL_MIN_D = 128
# softmax.cl takes sizes (D, rows, N, C) as int arguments (at most validate.INT_INDEX_MAX); offsets are size_t,
# so a tensor may pass 2^31 elements.
INT_INDEX_MAX = validate.INT_INDEX_MAX
# The loss table (loss_layout). GPUs: the batch's rows spread over work-groups (one row per work-item
# first), up to LOSS_GROUPS_PER_CU groups per compute unit (several resident groups hide memory latency) and
# LOSS_MAX_GROUPS in all (loss_finish, one work-group, adds their partial sums). Starting points chosen
# without a GPU to measure on, not tuned values.
LOSS_GROUPS_PER_CU = 4
LOSS_MAX_GROUPS = 1024
# The GPU layout keeps within hetero.limits.STRICT on every device: at most 256 work-items per group, and
# 65535 work-groups along the backward's dimension 1 (its rows loop past the grid).
STRICT_GROUPS_Y = STRICT.max_groups[1]


def check_size(op: str, what: str, shape: tuple[int, ...], value: int) -> None:
    """Refuse a size that softmax.cl's int32 arguments cannot hold, naming the op, the shape and the limit."""
    if value > INT_INDEX_MAX:
        raise ValueError(f"{op}: input {shape} has {value} {what}, more than the {INT_INDEX_MAX} (2^31 - 1 - 2^24) "
                         f"that softmax.cl's int32 indices reach; split the input")


# ---- softmax / log_softmax -------------------------------------------------------------------------

def _normalize_dim(op: str, shape: tuple[int, ...], dim) -> int:
    if not validate.is_int(dim):
        raise ValueError(f"{op}: dim must be an int, got {dim!r} for input of shape {shape}")
    nd = max(len(shape), 1)  # a 0-d tensor takes dim 0 or -1, as in PyTorch
    if not -nd <= dim < nd:
        raise ValueError(f"{op}: dim {dim} is out of range for input of shape {shape}")
    return int(dim) % nd


def _layout(shape: tuple[int, ...], dim: int) -> tuple[int, int, int]:
    """(outer, D, inner) of shape viewed around dim."""
    if not shape:
        return 1, 1, 1
    return math.prod(shape[:dim]), shape[dim], math.prod(shape[dim + 1:])


def check_softmax_size(op: str, shape: tuple[int, ...], dim: int) -> None:
    """Refuse a softmax whose dim or whose number of rows softmax.cl's int32 arguments cannot hold."""
    outer, D, inner = _layout(shape, dim)
    check_size(op, f"elements along dim {dim}", shape, D)
    check_size(op, f"rows (elements over the other dims than {dim})", shape, outer * inner)


def row_launches(rows: int, wg: int) -> list[tuple[int, int]]:
    """(first row, rows) of each launch of the work-group-per-row kernels: as few as keep every launch's
    global size (rows * wg) an int id, so one launch up to 2^31 / wg rows."""
    most = validate.INT_MAX // wg
    return [(row0, min(most, rows - row0)) for row0 in range(0, rows, most)]


def softmax_forward(x: Tensor, dim: int, log: bool) -> Tensor:
    """softmax (or log_softmax) of x along a normalised dim, one launch."""
    dev = x.device
    y = empty(x.shape, np.float32, dev)
    outer, D, inner = _layout(x.shape, dim)
    defines = {"OP": _OPS["log_softmax" if log else "softmax"]}
    if inner == 1 and D >= _ROW_KERNEL_MIN_D:
        wg = dev.work_group_size(_FILE, "softmax_fw_rows", defines)
        for row0, rows in row_launches(outer, wg):
            dev.run(_FILE, "softmax_fw_rows", {**defines, "WG": wg}, (rows * wg,), (wg,), x, y, np.int32(D),
                    np.int32(row0))
    else:
        dev.run(_FILE, "softmax_fw_strided", defines, (outer * inner,), None, x, y, np.int32(outer), np.int32(D),
                np.int32(inner))
    return y


def softmax_backward(g: Tensor, y: Tensor, dim: int, log: bool) -> Tensor:
    """dL/dx from dL/dy and the saved output y."""
    dev = y.device
    dx = empty(y.shape, np.float32, dev)
    outer, D, inner = _layout(y.shape, dim)
    defines = {"OP": _OPS["log_softmax" if log else "softmax"]}
    if inner == 1 and D >= _ROW_KERNEL_MIN_D:
        wg = dev.work_group_size(_FILE, "softmax_bw_rows", defines)
        for row0, rows in row_launches(outer, wg):
            dev.run(_FILE, "softmax_bw_rows", {**defines, "WG": wg}, (rows * wg,), (wg,), y, g, dx, np.int32(D),
                    np.int32(row0))
    else:
        dev.run(_FILE, "softmax_bw_strided", defines, (outer * inner,), None, y, g, dx, np.int32(outer),
                np.int32(D), np.int32(inner))
    return dx


class SoftmaxFn(Function):
    @staticmethod
    def forward(ctx: Context, x: Tensor, dim: int, log: bool) -> Tensor:
        y = softmax_forward(x, dim, log)
        ctx.dim, ctx.log = dim, log
        ctx.save_for_backward(y.detach())  # not y: y -> grad_fn -> ctx -> y would be a reference cycle
        return y

    @staticmethod
    def backward(ctx: Context, g: Tensor):
        (y,) = ctx.saved_tensors
        return softmax_backward(g, y, ctx.dim, ctx.log), None, None


def softmax(input: Tensor, dim: int) -> Tensor:
    """exp(x) / sum(exp(x)) along dim (max-subtracted, so large inputs stay finite)."""
    validate.float_input("softmax", input)
    dim = _normalize_dim("softmax", input.shape, dim)
    check_softmax_size("softmax", input.shape, dim)
    return SoftmaxFn.apply(input, dim, False)


def log_softmax(input: Tensor, dim: int) -> Tensor:
    """(x - max) - log(sum(exp(x - max))) along dim."""
    validate.float_input("log_softmax", input)
    dim = _normalize_dim("log_softmax", input.shape, dim)
    check_softmax_size("log_softmax", input.shape, dim)
    return SoftmaxFn.apply(input, dim, True)


# ---- nll_loss / cross_entropy ------------------------------------------------------------------------

class LossLayout(NamedTuple):
    """How a loss runs: multi_group (the GPU layout, MULTI_GROUP=1) and the forward's work-groups."""
    multi_group: bool
    groups: int


def loss_layout(device: Any, rows: int, wg: int, compute_units: int) -> LossLayout:
    """The loss table: for a device (or flavour string), a batch of `rows`, work-groups of wg work-items and
    the device's compute units. CPU flavour: one work-group for the whole loss (its layout is fixed)."""
    if flavour_of(device) == "cpu":
        return LossLayout(False, 1)
    groups = min(-(-rows // wg), LOSS_GROUPS_PER_CU * max(compute_units, 1), LOSS_MAX_GROUPS)
    return LossLayout(True, max(groups, 1))


def _loss_defines(op: str, weight: Tensor | None, reduction: str, multi_group: bool) -> dict[str, int]:
    return {"OP": _OPS[op], "REDUCTION": _REDUCTIONS[reduction], "HAS_WEIGHT": int(weight is not None),
            "MULTI_GROUP": int(multi_group)}


def _loss_wg(dev: Device, names: tuple[str, ...], defines: dict[str, int]) -> int:
    """The WG define of a loss program: the largest power of two <= STRICT's 256 that the device and
    every kernel in names (built with it) allow."""
    wg = min(STRICT.max_work_group_size, dev.cl_device.max_work_item_sizes[0])
    while True:
        allowed = min(dev.work_group_size(_FILE, name, defines, cap=wg) for name in names)
        if allowed == wg:
            return wg
        wg = allowed


def _multi_group(dev: Device) -> bool:
    """Whether dev runs the losses' GPU layout (the table asked with a batch of one row)."""
    return loss_layout(dev, 1, 1, dev.info.compute_units).multi_group


def loss_forward(op: str, x: Tensor, target: Tensor, weight: Tensor | None, ignore_index: int,
                 reduction: str) -> tuple[Tensor, Tensor, Tensor | None]:
    """(loss, denom, stats) of nll_loss or cross_entropy (one launch, or two on the GPU layout); stats is None
    for nll_loss. The loss carries a DeferredCheck: reading it back raises if a target was outside [0, C)
    (see bad_target_message)."""
    dev = x.device
    N, C = x.shape
    name = f"{op}_fw"
    multi = _multi_group(dev)
    defines = _loss_defines(op, weight, reduction, multi)
    wg = _loss_wg(dev, (name, "loss_finish") if multi else (name,), defines)
    groups = loss_layout(dev, N, wg, dev.info.compute_units).groups if multi else 1
    defines = {**defines, "WG": wg}
    loss = empty((N,) if reduction == "none" else (), np.float32, dev)
    denom = empty((1,), np.float32, dev)
    bad = empty((5,), np.int32, dev)
    w = target if weight is None else weight  # a placeholder buffer that HAS_WEIGHT=0 never reads
    stats = empty((N, 2), np.float32, dev) if op == "cross_entropy" else None
    extra = (stats,) if stats is not None else ()
    sizes = np.int32(N), np.int32(C), np.int32(ignore_index)
    if multi:
        part = empty((2 * groups,), np.float32, dev)
        bad_parts = empty((5 * groups,), np.int32, dev)
        dev.run(_FILE, name, defines, (groups * wg,), (wg,), x, target, w, loss, denom, bad_parts, part, *extra,
                *sizes)
        dev.run(_FILE, "loss_finish", defines, (wg,), (wg,), part, bad_parts, target, loss, denom, bad,
                np.int32(groups))
    else:
        dev.run(_FILE, name, defines, (wg,), (wg,), x, target, w, loss, denom, bad, denom, *extra, *sizes)
    loss.checks = (DeferredCheck(bad, lambda flag: bad_target_message(op, flag, N, C, ignore_index)),)
    return loss, denom, stats


def backward_grid(rows: int, classes: int, wg: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """(global, local) of the GPU layout's loss backward over (C, N): wg work-items per group, classes along
    dimension 0 first, at most STRICT_GROUPS_Y groups along the rows (the kernel loops past them)."""
    lx = 1
    while lx < classes and lx < wg:
        lx *= 2
    ly = wg // lx
    return (-(-classes // lx) * lx, min(-(-rows // ly), STRICT_GROUPS_Y) * ly), (lx, ly)


def bad_target_message(op: str, flag: np.ndarray, N: int, C: int, ignore_index: int) -> str | None:
    """The error for the forward kernel's record of out-of-range class ids (count, first row, least and
    greatest id, the first row's id), or None when every target was valid."""
    count, row, lo, hi, first = (int(v) for v in flag)
    if count <= 0:
        return None
    spread = f"; the bad ids range from {lo} to {hi}" if lo != hi else ""
    return (f"{op}: {count} of {N} targets {'is' if count == 1 else 'are'} not a class id: target[{row}] = {first}, "
            f"but the scores have {C} classes, so ids must lie in [0, {C - 1}] (or equal ignore_index="
            f"{ignore_index}){spread}")


def loss_backward(op: str, g: Tensor, x: Tensor, target: Tensor, weight: Tensor | None, ignore_index: int,
                  reduction: str, denom: Tensor, stats: Tensor | None) -> Tensor:
    """dL/dx of nll_loss or cross_entropy in one launch; g stays on the device."""
    dev = x.device
    N, C = x.shape
    name = f"{op}_bw"
    multi = _multi_group(dev)
    defines = _loss_defines(op, weight, reduction, multi)
    glob, local = (C, N), None
    if multi:
        wg = _loss_wg(dev, (name,), defines)
        defines = {**defines, "WG": wg}
        glob, local = backward_grid(N, C, wg)
    dx = empty((N, C), np.float32, dev)
    w = target if weight is None else weight
    sizes = np.int32(N), np.int32(C), np.int32(ignore_index)
    if op == "cross_entropy":
        dev.run(_FILE, name, defines, glob, local, x, target, w, denom, stats, g, dx, *sizes)
    else:
        dev.run(_FILE, name, defines, glob, local, target, w, denom, g, dx, *sizes)
    return dx


def _save(ctx: Context, op: str, x, target, weight, ignore_index, reduction) -> Tensor:
    loss, denom, stats = loss_forward(op, x, target, weight, ignore_index, reduction)
    ctx.ignore_index, ctx.reduction = ignore_index, reduction
    ctx.save_for_backward(x, target, weight, denom, stats)
    return loss


def _grads(ctx: Context, op: str, g: Tensor) -> tuple:
    x, target, weight, denom, stats = ctx.saved_tensors
    dx = None
    if ctx.needs_input_grad[0]:
        dx = loss_backward(op, g, x, target, weight, ctx.ignore_index, ctx.reduction, denom, stats)
    return dx, None, None, None, None  # no gradient for class weights, as in PyTorch


class NLLLossFn(Function):
    @staticmethod
    def forward(ctx: Context, x, target, weight, ignore_index, reduction):
        return _save(ctx, "nll_loss", x, target, weight, ignore_index, reduction)

    @staticmethod
    def backward(ctx: Context, g: Tensor):
        return _grads(ctx, "nll_loss", g)


class CrossEntropyFn(Function):
    @staticmethod
    def forward(ctx: Context, x, target, weight, ignore_index, reduction):
        return _save(ctx, "cross_entropy", x, target, weight, ignore_index, reduction)

    @staticmethod
    def backward(ctx: Context, g: Tensor):
        return _grads(ctx, "cross_entropy", g)


def _check_loss(op: str, input, target, weight, ignore_index, reduction) -> None:
    validate.float_input(op, input)
    if input.ndim != 2:
        raise ValueError(f"{op}: input must be [N, C] scores, got shape {input.shape}")
    N, C = input.shape
    if not isinstance(target, Tensor) or target.dtype != np.int32:
        what = f"{target.dtype} {target.shape}" if isinstance(target, Tensor) else type(target).__name__
        raise ValueError(f"{op}: target must be an int32 tensor of class ids, got {what}")
    if target.shape != (N,):
        raise ValueError(f"{op}: target shape {target.shape} does not match input {input.shape}: expected ({N},)")
    if weight is not None:
        if not isinstance(weight, Tensor) or weight.dtype != np.float32 or weight.shape != (C,):
            what = f"{weight.dtype} {weight.shape}" if isinstance(weight, Tensor) else type(weight).__name__
            raise ValueError(f"{op}: weight must be a float32 tensor of shape ({C},) for input {input.shape}, "
                             f"got {what}")
    validate.same_device(op, "input", input, target=target, weight=weight)
    check_size(op, "rows (N)", input.shape, N)
    check_size(op, "classes (C)", input.shape, C)
    if not validate.is_int(ignore_index) or not -(2**31) <= ignore_index < 2**31:
        raise ValueError(f"{op}: ignore_index must be an int32 value, got {ignore_index!r}")
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{op}: reduction must be 'none', 'mean' or 'sum', got {reduction!r}")


def nll_loss(input: Tensor, target: Tensor, weight: Tensor | None = None, ignore_index: int = -100,
             reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of log-probabilities input [N, C] at int32 class ids target [N].

    Ids must lie in [0, C) or equal ignore_index (those rows leave the sum and the mean's denominator); any
    other id makes the loss NaN, and reading it back raises ValueError. 'mean' divides by the summed weights.
    """
    _check_loss("nll_loss", input, target, weight, ignore_index, reduction)
    return NLLLossFn.apply(input, target, weight, int(ignore_index), reduction)


def cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None, ignore_index: int = -100,
                  reduction: str = "mean") -> Tensor:
    """log_softmax + nll_loss of logits input [N, C] at int32 class ids target [N], fused in one kernel.

    Ids must lie in [0, C) or equal ignore_index; any other id makes the loss NaN, and reading it back
    raises ValueError naming the id (kernels cannot raise; see loss_forward).
    """
    _check_loss("cross_entropy", input, target, weight, ignore_index, reduction)
    return CrossEntropyFn.apply(input, target, weight, int(ignore_index), reduction)
