"""Pointwise clamp (scalar bounds) and reciprocal (kernels_cl/pointwise.cl) with their autograd Functions."""

from __future__ import annotations

import numpy as np

from .. import validate
from ..autograd import Context, Function
from ..tensor import Tensor, empty

_FILE = "pointwise.cl"
_CLAMP, _RECIPROCAL = 0, 1  # pointwise.cl's OP ids


def clamp_forward(x: Tensor, lo: float, hi: float) -> Tensor:
    y = empty(x.shape, np.float32, x.device)
    if x.size:
        x.device.run(_FILE, "clamp_forward", {"OP": _CLAMP}, (x.size,), None, x, y, np.float32(lo), np.float32(hi),
                     np.int32(x.size))
    return y


def clamp_backward(g: Tensor, x: Tensor, lo: float, hi: float) -> Tensor:
    dx = empty(x.shape, np.float32, x.device)
    if x.size:
        x.device.run(_FILE, "clamp_backward", {"OP": _CLAMP}, (x.size,), None, x, g, dx, np.float32(lo),
                     np.float32(hi), np.int32(x.size))
    return dx


class ClampFn(Function):
    @staticmethod
    def forward(ctx: Context, x: Tensor, lo: float, hi: float) -> Tensor:
        ctx.save_for_backward(x)
        ctx.bounds = (lo, hi)
        return clamp_forward(x, lo, hi)

    @staticmethod
    def backward(ctx: Context, g: Tensor):
        (x,) = ctx.saved_tensors
        return clamp_backward(g, x, *ctx.bounds), None, None


def clamp(input: Tensor, min: float | None = None, max: float | None = None) -> Tensor:
    """torch.clamp with scalar bounds: min(max(x, min), max); NaN stays NaN, min > max gives max."""
    validate.float_input("clamp", input)
    if min is None and max is None:
        raise ValueError(f"clamp: at least one of min and max must be given (input {input.shape})")
    bounds = []
    for name, v, default in (("min", min, -np.inf), ("max", max, np.inf)):
        if v is None:
            bounds.append(default)
        elif not validate.is_number(v) or np.isnan(v):
            raise ValueError(f"clamp: {name} must be a number, got {v!r} (input {input.shape})")
        else:
            bounds.append(float(v))
    return ClampFn.apply(input, bounds[0], bounds[1])


def reciprocal_forward(x: Tensor) -> Tensor:
    y = empty(x.shape, np.float32, x.device)
    if x.size:
        x.device.run(_FILE, "reciprocal_forward", {"OP": _RECIPROCAL}, (x.size,), None, x, y, np.int32(x.size))
    return y


def reciprocal_backward(g: Tensor, y: Tensor) -> Tensor:
    dx = empty(y.shape, np.float32, y.device)
    if y.size:
        y.device.run(_FILE, "reciprocal_backward", {"OP": _RECIPROCAL}, (y.size,), None, y, g, dx, np.int32(y.size))
    return dx


class ReciprocalFn(Function):
    @staticmethod
    def forward(ctx: Context, x: Tensor) -> Tensor:
        y = reciprocal_forward(x)
        ctx.save_for_backward(y.detach())  # not y: y -> grad_fn -> ctx -> y would be a reference cycle
        return y

    @staticmethod
    def backward(ctx: Context, g: Tensor):
        (y,) = ctx.saved_tensors
        return reciprocal_backward(g, y)


def reciprocal(input: Tensor) -> Tensor:
    """torch.reciprocal: 1 / x (inf at 0, as in IEEE arithmetic)."""
    validate.float_input("reciprocal", input)
    return ReciprocalFn.apply(input)
