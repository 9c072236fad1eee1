"""Local response normalisation across channels (torch.nn.functional.local_response_norm) and its Function."""

from __future__ import annotations

import math

import numpy as np

from .. import validate
from ..autograd import Context, Function, is_grad_enabled
from ..tensor import Tensor, empty

_FILE = "local_response_norm.cl"


def _dims(x: Tensor) -> tuple[int, int]:
    """(C, S): channels and the product of the dims after them (the input is viewed as (N, C, S))."""
    return x.shape[1], math.prod(x.shape[2:])


_MAX_WG = 256  # the largest work-group tried (tuning knob); less where the kernel allows less


def _local(s: int, most: int) -> tuple[int, int, int]:
    """Work-group (S', 1, 1), S' the largest divisor of S up to min(256, most): left to choose, PoCL splits odd
    map sizes such as 14x14 into work-groups its vectoriser handles badly."""
    return (next(d for d in range(min(s, _MAX_WG, most), 0, -1) if s % d == 0), 1, 1)


def _defines(size: int, beta: float, save_scale: bool) -> dict:
    d = {"SIZE": size, "SAVE_SCALE": int(save_scale)}
    quarter = 4.0 * beta
    if quarter == int(quarter) and 1 <= quarter <= 16:  # d^-beta from square roots (see the kernel)
        d["QUARTER_BETA"] = int(quarter)
    return d


def local_response_norm_forward(x: Tensor, size: int, alpha: float, beta: float, k: float,
                                save_scale: bool) -> tuple[Tensor, Tensor | None]:
    """Launch the forward; with save_scale also the denominator base D = k + alpha * mean(x^2) for backward."""
    dev = x.device
    c, s = _dims(x)
    out = empty(x.shape, np.float32, dev)
    scale = empty(x.shape, np.float32, dev) if save_scale else None
    defines = _defines(size, beta, save_scale)
    local = _local(s, dev.local_size_limit(_FILE, "lrn_forward", defines))
    dev.run(_FILE, "lrn_forward", defines, (s, c, x.shape[0]), local, x, out,
            out if scale is None else scale,  # out: a never-written placeholder
            np.int32(c), np.int32(s), np.float32(alpha), np.float32(beta), np.float32(k))
    return out, scale


def local_response_norm_backward(g: Tensor, x: Tensor, y: Tensor, scale: Tensor, size: int, alpha: float,
                                 beta: float) -> Tensor:
    """Gradient w.r.t. the input in closed form, one kernel (needs the forward's output and scale)."""
    dev = g.device
    c, s = _dims(x)
    gx = empty(x.shape, np.float32, dev)
    defines = _defines(size, beta, True)
    local = _local(s, dev.local_size_limit(_FILE, "lrn_backward", defines))
    dev.run(_FILE, "lrn_backward", defines, (s, c, x.shape[0]), local, g, x, y, scale, gx,
            np.int32(c), np.int32(s), np.float32(alpha), np.float32(beta))
    return gx


class LocalResponseNormFn(Function):
    @staticmethod
    def forward(ctx: Context, x: Tensor, size: int, alpha: float, beta: float, k: float,
                save_scale: bool) -> Tensor:
        out, scale = local_response_norm_forward(x, size, alpha, beta, k, save_scale)
        ctx.params = (size, alpha, beta)
        ctx.save_for_backward(x, out.detach(), scale)  # out itself: a cycle out -> grad_fn -> ctx -> out
        return out

    @staticmethod
    def backward(ctx: Context, g: Tensor):
        if not ctx.needs_input_grad[0]:
            return (None,) * 6
        x, out, scale = ctx.saved_tensors
        return (local_response_norm_backward(g, x, out, scale, *ctx.params),) + (None,) * 5


def local_response_norm(input: Tensor, size: int, alpha: float = 1e-4, beta: float = 0.75,
                        k: float = 1.0) -> Tensor:
    """torch.nn.functional.local_response_norm: normalise each element over `size` neighbouring channels."""
    op = "local_response_norm"
    validate.tensor_arg(op, "input", input, dtype=None)
    if input.ndim < 3:
        raise ValueError(f"{op}: input {input.shape} must have 3 or more dimensions (N, C, ...)")
    validate.tensor_arg(op, "input", input)
    context = f" (input {input.shape})"
    size = validate.positive_int(op, "size", size, context)
    if input.size > validate.INT_MAX:
        raise ValueError(f"{op}: input {input.shape} has more than 2^31 - 1 elements")
    alpha, beta, k = (validate.finite(op, name, v, context) for name, v in (("alpha", alpha), ("beta", beta), ("k", k)))
    save = is_grad_enabled() and input.requires_grad
    return LocalResponseNormFn.apply(input, size, alpha, beta, k, save)
