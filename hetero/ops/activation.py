"""Activations: relu, leaky_relu, elu, selu, sigmoid, tanh (common.h's act_forward/act_backward) and prelu."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .. import validate
from ..autograd import Context, Function
from ..tensor import Tensor, empty

_PRELU_MAX_GROUPS = 64  # work-groups per channel in the weight-gradient reduction
_PRELU_PER_ITEM = 8  # elements a work-item sums before more work-groups are worth it


class Activation(NamedTuple):
    """One entry of the activation table: its -DACT id and whether it takes an alpha (-DACT_ALPHA)."""

    id: int
    alpha: bool


# The one activation table: kernels_cl/common.h's ACT_* ids (tests/ops/test_activation.py checks they agree).
ACTIVATIONS: dict[str, Activation] = {
    "none": Activation(0, False),
    "relu": Activation(1, False),
    "leaky_relu": Activation(2, True),
    "elu": Activation(3, True),
    "selu": Activation(4, False),
    "sigmoid": Activation(5, False),
    "tanh": Activation(6, False),
}


def act_defines(name: str, alpha: float | None = None) -> dict[str, int | float]:
    """The defines that select activation `name` in common.h's act_forward / act_backward."""
    act = ACTIVATIONS[name]
    if act.alpha:
        return {"ACT": act.id, "ACT_ALPHA": float(alpha)}
    return {"ACT": act.id}


def _from_input(name: str, alpha: float | None) -> bool:
    """act_backward reads the branch off y > 0, valid only when the negative branch stays <= 0."""
    return ACTIVATIONS[name].alpha and alpha < 0


def activation_forward(name: str, x: Tensor, alpha: float | None = None) -> Tensor:
    """y = act(x) elementwise, one launch."""
    y = empty(x.shape, np.float32, x.device)
    x.device.run("activation.cl", "act_fw", act_defines(name, alpha), (x.size,), None, x, y, np.int32(x.size))
    return y


def activation_backward(name: str, g: Tensor, saved: Tensor, alpha: float | None = None) -> Tensor:
    """dL/dx from dL/dy; `saved` is the input x when _from_input(name, alpha), else the output y."""
    dx = empty(g.shape, np.float32, g.device)
    kname = "act_bw_from_input" if _from_input(name, alpha) else "act_bw"
    g.device.run("activation.cl", kname, act_defines(name, alpha), (g.size,), None, saved, g, dx, np.int32(g.size))
    return dx


class ActivationFn(Function):
    @staticmethod
    def forward(ctx: Context, x: Tensor, name: str, alpha: float | None) -> Tensor:
        y = activation_forward(name, x, alpha)
        ctx.name, ctx.alpha = name, alpha
        # y.detach(): saving y itself would make a cycle y -> grad_fn -> ctx -> y that only the cyclic GC frees
        ctx.save_for_backward(x if _from_input(name, alpha) else y.detach())
        return y

    @staticmethod
    def backward(ctx: Context, g: Tensor):
        (saved,) = ctx.saved_tensors
        return activation_backward(ctx.name, g, saved, ctx.alpha), None, None


def relu(input: Tensor) -> Tensor:
    """max(x, 0); the gradient at 0 is 0, as in PyTorch."""
    validate.float_input("relu", input)
    return ActivationFn.apply(input, "relu", None)


def leaky_relu(input: Tensor, negative_slope: float = 0.01) -> Tensor:
    """x for x > 0, negative_slope * x otherwise (any sign of slope)."""
    validate.float_input("leaky_relu", input)
    return ActivationFn.apply(input, "leaky_relu", validate.finite("leaky_relu", "negative_slope", negative_slope))


def elu(input: Tensor, alpha: float = 1.0) -> Tensor:
    """x for x > 0, alpha * (exp(x) - 1) otherwise (any sign of alpha)."""
    validate.float_input("elu", input)
    return ActivationFn.apply(input, "elu", validate.finite("elu", "alpha", alpha))


def selu(input: Tensor) -> Tensor:
    """scale * elu(x, alpha) with the self-normalising constants of Klambauer et al."""
    validate.float_input("selu", input)
    return ActivationFn.apply(input, "selu", None)


def sigmoid(input: Tensor) -> Tensor:
    """1 / (1 + exp(-x))."""
    validate.float_input("sigmoid", input)
    return ActivationFn.apply(input, "sigmoid", None)


def tanh(input: Tensor) -> Tensor:
    """The hyperbolic tangent."""
    validate.float_input("tanh", input)
    return ActivationFn.apply(input, "tanh", None)


def _prelu_layout(x: Tensor, w: Tensor) -> tuple[int, int, int]:
    """(C, inner, outer) of x viewed as [outer, C, inner]; a one-element weight is one channel of everything."""
    if w.size == 1:
        return 1, x.size, 1
    return w.size, math.prod(x.shape[2:]), x.shape[0]


def prelu_forward(x: Tensor, w: Tensor) -> Tensor:
    y = empty(x.shape, np.float32, x.device)
    C, inner, _ = _prelu_layout(x, w)
    x.device.run("activation.cl", "prelu_fw", {"PRELU": 1}, (x.size,), None, x, w, y, np.int32(C),
                 np.int32(max(inner, 1)), np.int32(x.size))
    return y


def prelu_backward_input(g: Tensor, x: Tensor, w: Tensor) -> Tensor:
    dx = empty(x.shape, np.float32, x.device)
    C, inner, _ = _prelu_layout(x, w)
    x.device.run("activation.cl", "prelu_bw_input", {"PRELU": 1}, (x.size,), None, x, w, g, dx, np.int32(C),
                 np.int32(max(inner, 1)), np.int32(x.size))
    return dx


def prelu_backward_weight(g: Tensor, x: Tensor, w: Tensor) -> Tensor:
    """dL/dw, shaped like w: a per-channel sum reduced in two deterministic passes (no float atomics)."""
    dev = x.device
    C, inner, outer = _prelu_layout(x, w)
    wg = dev.work_group_size("activation.cl", "prelu_bw_weight_partial", {"PRELU": 1})
    count = inner * outer
    groups = max(1, min(_PRELU_MAX_GROUPS, -(-count // (wg * _PRELU_PER_ITEM))))
    partial = empty((C, groups), np.float32, dev)
    dw = empty(w.shape, np.float32, dev)
    defines = {"PRELU": 1, "WG": wg}
    dev.run("activation.cl", "prelu_bw_weight_partial", defines, (groups * wg, C), (wg, 1), x, g, partial,
            np.int32(C), np.int32(max(inner, 1)), np.int32(outer))
    dev.run("activation.cl", "prelu_bw_weight_final", defines, (C,), None, partial, dw, np.int32(C), np.int32(groups))
    return dw


class PReLUFn(Function):
    @staticmethod
    def forward(ctx: Context, x: Tensor, w: Tensor) -> Tensor:
        ctx.save_for_backward(x, w)
        return prelu_forward(x, w)

    @staticmethod
    def backward(ctx: Context, g: Tensor):
        x, w = ctx.saved_tensors
        dx = prelu_backward_input(g, x, w) if ctx.needs_input_grad[0] else None
        dw = prelu_backward_weight(g, x, w) if ctx.needs_input_grad[1] else None
        return dx, dw


def prelu(input: Tensor, weight: Tensor) -> Tensor:
    """x for x > 0, weight * x otherwise; weight has one element or one per channel (dim 1 of input)."""
    validate.float_input("prelu", input)
    if not isinstance(weight, Tensor) or weight.dtype != np.float32:
        raise ValueError(f"prelu: weight must be a float32 tensor, got {getattr(weight, 'dtype', type(weight))}")
    validate.same_device("prelu", "input", input, weight=weight)
    if weight.ndim > 1:
        raise ValueError(f"prelu: weight must be a scalar or 1-D, got shape {weight.shape}")
    if weight.size != 1:
        channels = input.shape[1] if input.ndim >= 2 else 1
        if input.ndim == 0 or channels != weight.size:
            raise ValueError(f"prelu: input {input.shape} has {channels} channels (dim 1) but weight "
                             f"{weight.shape} has {weight.size} parameters")
    return PReLUFn.apply(input, weight)
