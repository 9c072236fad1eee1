"""Elementwise add and mul with broadcasting, gradient accumulation, and reshape/flatten views."""

from __future__ import annotations

import math

import numpy as np
import pyopencl.cltypes as cltypes

from ..autograd import Context, Function
from ..tensor import Tensor, empty, full

_ADD, _MUL = 0, 1
_RANK = 8


def _int8(values: list[int]) -> np.ndarray:
    return cltypes.make_int8(*values)


def _pad(shape: tuple[int, ...]) -> list[int]:
    return [1] * (_RANK - len(shape)) + list(shape)


def _strides(shape: list[int]) -> list[int]:
    out, acc = [0] * len(shape), 1
    for d in range(len(shape) - 1, -1, -1):
        out[d] = acc
        acc *= shape[d]
    return out


def broadcast_shape(op: str, a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    """The NumPy broadcast of two shapes, or a ValueError naming the op and both shapes."""
    if max(len(a), len(b)) > _RANK:
        raise ValueError(f"{op}: tensors of rank > {_RANK} are not supported (shapes {a} and {b})")
    try:
        return tuple(np.broadcast_shapes(a, b))
    except ValueError:
        raise ValueError(f"{op}: shapes {a} and {b} cannot be broadcast together") from None


def _check(op: str, a: Tensor, b: Tensor) -> None:
    for t in (a, b):
        if t.dtype != np.float32:
            raise ValueError(f"{op}: expected float32 tensors, got {a.dtype} {a.shape} and {b.dtype} {b.shape}")
    if a.device is not b.device:
        raise ValueError(f"{op}: tensors are on different devices ({a.device.id} and {b.device.id})")


def binary_forward(code: int, a: Tensor, b: Tensor) -> Tensor:
    """out = a (+|*) b with broadcasting, one kernel launch."""
    shape = broadcast_shape("add" if code == _ADD else "mul", a.shape, b.shape)
    out = empty(shape, np.float32, a.device)
    n = out.size
    if a.shape == b.shape == shape:
        k = a.device.kernel("elementwise.cl", "binary", {"OP": code, "BROADCAST": 0})
        zero = _int8([0] * _RANK)
        a.device.launch(k, (n,), None, a, b, out, zero, zero, zero, np.int32(n))
        return out
    full_shape = _pad(shape)
    k = a.device.kernel("elementwise.cl", "binary", {"OP": code, "BROADCAST": 1})
    a.device.launch(k, (n,), None, a, b, out, _int8(full_shape), _int8(_bstrides(a.shape, full_shape)),
                    _int8(_bstrides(b.shape, full_shape)), np.int32(n))
    return out


def _bstrides(shape: tuple[int, ...], full_shape: list[int]) -> list[int]:
    """Strides of `shape` inside the broadcast shape: 0 where it is broadcast."""
    padded = _pad(shape)
    st = _strides(padded)
    return [0 if (p == 1 and f != 1) else s for p, f, s in zip(padded, full_shape, st)]


def sum_to(g: Tensor, shape: tuple[int, ...]) -> Tensor:
    """Sum g over the dimensions that broadcasting expanded, giving a tensor of `shape`."""
    if g.shape == shape:
        return g
    gshape = _pad(g.shape)
    target = _pad(shape)
    keep = [gs if t != 1 else 1 for gs, t in zip(gshape, target)]
    red = [gs if t == 1 else 1 for gs, t in zip(gshape, target)]
    out = empty(shape, np.float32, g.device)
    n_out, n_red = math.prod(keep), math.prod(red)
    k = g.device.kernel("elementwise.cl", "sum_to", {"OP": _ADD, "BROADCAST": 1})
    g.device.launch(k, (n_out,), None, g, out, _int8(keep), _int8(red), _int8(_strides(gshape)),
                    np.int32(n_out), np.int32(n_red))
    return out


class AddFn(Function):
    @staticmethod
    def forward(ctx: Context, a: Tensor, b: Tensor) -> Tensor:
        ctx.shapes = (a.shape, b.shape)
        return binary_forward(_ADD, a, b)

    @staticmethod
    def backward(ctx: Context, g: Tensor):
        sa, sb = ctx.shapes
        ga = sum_to(g, sa) if ctx.needs_input_grad[0] else None
        gb = sum_to(g, sb) if ctx.needs_input_grad[1] else None
        return ga, gb


class MulFn(Function):
    @staticmethod
    def forward(ctx: Context, a: Tensor, b: Tensor) -> Tensor:
        ctx.save_for_backward(a, b)
        return binary_forward(_MUL, a, b)

    @staticmethod
    def backward(ctx: Context, g: Tensor):
        a, b = ctx.saved_tensors
        ga = sum_to(binary_forward(_MUL, g, b), a.shape) if ctx.needs_input_grad[0] else None
        gb = sum_to(binary_forward(_MUL, g, a), b.shape) if ctx.needs_input_grad[1] else None
        return ga, gb


def _operand(op: str, x, like: Tensor) -> Tensor:
    if isinstance(x, Tensor):
        return x
    if isinstance(x, (int, float, np.floating, np.integer)):
        return full((), float(x), np.float32, like.device)
    raise ValueError(f"{op}: cannot combine a Tensor with {type(x).__name__}")


def add(input: Tensor, other: Tensor | float) -> Tensor:
    """input + other with broadcasting (other may be a Python number)."""
    other = _operand("add", other, input)
    _check("add", input, other)
    broadcast_shape("add", input.shape, other.shape)
    return AddFn.apply(input, other)


def mul(input: Tensor, other: Tensor | float) -> Tensor:
    """input * other with broadcasting (other may be a Python number)."""
    other = _operand("mul", other, input)
    _check("mul", input, other)
    broadcast_shape("mul", input.shape, other.shape)
    return MulFn.apply(input, other)


def accumulate(a: Tensor, b: Tensor) -> Tensor:
    """a + b for two gradients of one shape, outside autograd (used by backward)."""
    return binary_forward(_ADD, a, b)


class ReshapeFn(Function):
    @staticmethod
    def forward(ctx: Context, x: Tensor, shape: tuple[int, ...]) -> Tensor:
        ctx.shape = x.shape
        return Tensor(x.storage, shape, x.dtype, x.device)

    @staticmethod
    def backward(ctx: Context, g: Tensor):
        return Tensor(g.storage, ctx.shape, g.dtype, g.device), None


def _resolve_shape(op: str, size: int, old: tuple[int, ...], shape) -> tuple[int, ...]:
    shape = tuple(int(s) for s in shape)
    if shape.count(-1) > 1:
        raise ValueError(f"{op}: only one dimension can be -1, got {shape}")
    if -1 in shape:
        rest = math.prod(s for s in shape if s != -1)
        if rest == 0 or size % rest:
            raise ValueError(f"{op}: cannot reshape {old} ({size} elements) into {shape}")
        shape = tuple(size // rest if s == -1 else s for s in shape)
    if any(s < 0 for s in shape) or math.prod(shape) != size:
        raise ValueError(f"{op}: cannot reshape {old} ({size} elements) into {shape}")
    return shape


def reshape(input: Tensor, shape) -> Tensor:
    """The same data with a new shape (one dim may be -1); shares storage, no copy."""
    return ReshapeFn.apply(input, _resolve_shape("reshape", input.size, input.shape, shape))


def flatten(input: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Merge dims start_dim..end_dim into one, as torch.flatten."""
    nd = max(input.ndim, 1)
    s, e = start_dim % nd, end_dim % nd
    if not (-nd <= start_dim < nd and -nd <= end_dim < nd) or s > e:
        raise ValueError(f"flatten: start_dim {start_dim} / end_dim {end_dim} invalid for shape {input.shape}")
    shape = input.shape or (1,)
    new = shape[:s] + (math.prod(shape[s:e + 1]),) + shape[e + 1:]
    return ReshapeFn.apply(input, new)
