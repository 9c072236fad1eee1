"""Elementwise add and mul with broadcasting (same-shape launches in accumulate.py), and reshape/flatten views."""

from __future__ import annotations

import math

import numpy as np

from .. import validate
from ..autograd import Context, Function
from ..tensor import Tensor, as_shape, empty, full, methods
from .accumulate import ADD, MUL, RANK, index_args, long_index, same_shape


def _pad(shape: tuple[int, ...]) -> list[int]:
    return [1] * (RANK - len(shape)) + list(shape)


def _strides(shape: list[int]) -> list[int]:
    out, acc = [0] * len(shape), 1
    for d in range(len(shape) - 1, -1, -1):
        out[d] = acc
        acc *= shape[d]
    return out


def broadcast_shape(op: str, a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    """The NumPy broadcast of two shapes, or a ValueError naming the op and both shapes."""
    if max(len(a), len(b)) > RANK:
        raise ValueError(f"{op}: tensors of rank > {RANK} are not supported (shapes {a} and {b})")
    try:
        return tuple(np.broadcast_shapes(a, b))
    except ValueError:
        raise ValueError(f"{op}: shapes {a} and {b} cannot be broadcast together") from None


def _check(op: str, a: Tensor, b: Tensor) -> None:
    if a.dtype != np.float32 or b.dtype != np.float32:
        raise ValueError(f"{op}: expected float32 tensors, got {a.dtype} {a.shape} and {b.dtype} {b.shape}")
    validate.same_device(op, "input", a, other=b)


def binary_forward(code: int, a: Tensor, b: Tensor) -> Tensor:
    """out = a (+|*) b with broadcasting, one kernel launch."""
    shape = broadcast_shape("add" if code == ADD else "mul", a.shape, b.shape)
    if a.shape == b.shape == shape:
        return same_shape(code, a, b)
    out = empty(shape, np.float32, a.device)
    n = out.size
    full_shape = _pad(shape)
    long = long_index(n)  # out is the largest of the three tensors
    scalar, vector = index_args(long)
    a.device.run("elementwise.cl", "binary", {"OP": code, "BROADCAST": 1, "LONG_INDEX": int(long)}, (n,), None,
                 a, b, out, vector(*full_shape), vector(*_bstrides(a.shape, full_shape)),
                 vector(*_bstrides(b.shape, full_shape)), scalar(n))
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
    long = long_index(g.size)  # g's offsets reach its size
    scalar, vector = index_args(long)
    g.device.run("elementwise.cl", "sum_to", {"OP": ADD, "BROADCAST": 1, "LONG_INDEX": int(long)}, (n_out,), None,
                 g, out, vector(*keep), vector(*red), vector(*_strides(gshape)), scalar(n_out), scalar(n_red))
    return out


class AddFn(Function):
    @staticmethod
    def forward(ctx: Context, a: Tensor, b: Tensor) -> Tensor:
        ctx.shapes = (a.shape, b.shape)
        return binary_forward(ADD, a, b)

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
        return binary_forward(MUL, a, b)

    @staticmethod
    def backward(ctx: Context, g: Tensor):
        a, b = ctx.saved_tensors
        ga = sum_to(binary_forward(MUL, g, b), a.shape) if ctx.needs_input_grad[0] else None
        gb = sum_to(binary_forward(MUL, g, a), b.shape) if ctx.needs_input_grad[1] else None
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


class ReshapeFn(Function):
    @staticmethod
    def forward(ctx: Context, x: Tensor, shape: tuple[int, ...]) -> Tensor:
        ctx.shape = x.shape
        return Tensor(x.storage, shape, x.dtype, x.device)

    @staticmethod
    def backward(ctx: Context, g: Tensor):
        return Tensor(g.storage, ctx.shape, g.dtype, g.device), None


def _resolve_shape(op: str, size: int, old: tuple[int, ...], shape) -> tuple[int, ...]:
    shape = as_shape(op, shape)
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
    if not validate.is_int(start_dim) or not validate.is_int(end_dim):
        raise ValueError(f"flatten: start_dim and end_dim must be ints, got {start_dim!r} and {end_dim!r}")
    nd = max(input.ndim, 1)
    s, e = start_dim % nd, end_dim % nd
    if not (-nd <= start_dim < nd and -nd <= end_dim < nd) or s > e:
        raise ValueError(f"flatten: start_dim {start_dim} / end_dim {end_dim} invalid for shape {input.shape}")
    shape = input.shape or (1,)
    new = shape[:s] + (math.prod(shape[s:e + 1]),) + shape[e + 1:]
    return ReshapeFn.apply(input, new)


# Tensor.reshape / .flatten / + / * (tensor.py cannot import this module: it imports tensor.py)
methods.reshape, methods.flatten, methods.add, methods.mul = reshape, flatten, add, mul
