"""Layout copies: permute, cat and strided_slice, each one strided copy (kernels_cl/layout.cl) per input,
with their autograd Functions (each one's gradient is another of them)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pyopencl.cltypes as cltypes

from .. import validate
from ..autograd import Context, Function
from ..tensor import Tensor, empty, zeros

_FILE = "layout.cl"
RANK = 8  # layout.cl's largest rank after merging dims (shapes and strides are int8 vectors)


def contiguous_strides(shape: Sequence[int]) -> list[int]:
    """Element strides of a contiguous (row-major) tensor of `shape`."""
    out, acc = [0] * len(shape), 1
    for d in range(len(shape) - 1, -1, -1):
        out[d] = acc
        acc *= shape[d]
    return out


def merge_dims(shape: Sequence[int], src: Sequence[int], dst: Sequence[int]) -> tuple[list, list, list]:
    """The same copy over fewer dims: size-1 dims dropped, and a dim merged into the next one where both
    layouts step over it contiguously (a concatenation becomes a 1-D or 2-D copy, a permute keeps the rest)."""
    kept = [(n, s, d) for n, s, d in zip(shape, src, dst) if n != 1]
    merged: list[list[int]] = []
    for n, s, d in reversed(kept):  # innermost first
        if merged and merged[-1][1] * merged[-1][0] == s and merged[-1][2] * merged[-1][0] == d:
            merged[-1][0] *= n
        else:
            merged.append([n, s, d])
    merged.reverse()
    return [m[0] for m in merged], [m[1] for m in merged], [m[2] for m in merged]


def _int8(values: Sequence[int], fill: int) -> np.ndarray:
    return cltypes.make_int8(*([fill] * (RANK - len(values)) + [int(v) for v in values]))


def strided_copy(src: Tensor, dst: Tensor, shape: Sequence[int], src_strides: Sequence[int], src_offset: int,
                 dst_strides: Sequence[int], dst_offset: int) -> None:
    """dst[dst_offset + c . dst_strides] = src[src_offset + c . src_strides] for every index c of shape."""
    n = math.prod(shape)
    if n == 0:
        return
    dims, ss, ds = merge_dims(shape, src_strides, dst_strides)
    if len(dims) > RANK:
        raise ValueError(f"layout copy: {len(dims)} dims that cannot be merged (shape {tuple(shape)}), "
                         f"more than the {RANK} the kernel takes; reshape the tensor to fewer dims first")
    src.device.run(_FILE, "strided_copy", None, (n,), None, src, dst, _int8(dims, 1), _int8(ss, 0), _int8(ds, 0),
                   np.int32(src_offset), np.int32(dst_offset), np.int32(n))


def _check_size(op: str, shape: tuple[int, ...]) -> None:
    if math.prod(shape) > validate.INT_MAX:
        raise ValueError(f"{op}: tensor {shape} has more than 2^31 - 1 elements (the kernel's offsets are int32)")


# ---------------------------------------------------------------- permute

def permute_forward(x: Tensor, dims: tuple[int, ...]) -> Tensor:
    out = empty(tuple(x.shape[d] for d in dims), np.float32, x.device)
    st = contiguous_strides(x.shape)
    strided_copy(x, out, out.shape, [st[d] for d in dims], 0, contiguous_strides(out.shape), 0)
    return out


class PermuteFn(Function):
    @staticmethod
    def forward(ctx: Context, x: Tensor, dims: tuple[int, ...]) -> Tensor:
        ctx.inverse = tuple(int(i) for i in np.argsort(dims))
        return permute_forward(x, dims)

    @staticmethod
    def backward(ctx: Context, g: Tensor):
        return permute_forward(g, ctx.inverse), None


def permute(input: Tensor, dims: Sequence[int]) -> Tensor:
    """torch.permute: dim i of the result is dim dims[i] of input (a copy, as .contiguous() after it)."""
    validate.float_input("permute", input)
    if not isinstance(dims, (tuple, list)) or not all(validate.is_int(d) for d in dims):
        raise ValueError(f"permute: dims must be a sequence of ints, got {dims!r} (input {input.shape})")
    nd = input.ndim
    norm = tuple(int(d) % nd if -nd <= d < nd else None for d in dims) if nd else tuple(dims)
    if len(dims) != nd or None in norm or sorted(norm) != list(range(nd)):
        raise ValueError(f"permute: dims {tuple(dims)} is not a permutation of the {nd} dims of input {input.shape}")
    _check_size("permute", input.shape)
    return PermuteFn.apply(input, norm)


# ---------------------------------------------------------------- cat

def _copy_into(part: Tensor, out: Tensor, dim: int, start: int) -> None:
    """out[..., start:start + part.shape[dim], ...] = part."""
    ost = contiguous_strides(out.shape)
    strided_copy(part, out, part.shape, contiguous_strides(part.shape), 0, ost, start * ost[dim])


def _copy_out(g: Tensor, shape: tuple[int, ...], dim: int, start: int) -> Tensor:
    """g[..., start:start + shape[dim], ...] as a new tensor of shape."""
    part = empty(shape, np.float32, g.device)
    gst = contiguous_strides(g.shape)
    strided_copy(g, part, shape, gst, start * gst[dim], contiguous_strides(shape), 0)
    return part


class CatFn(Function):
    @staticmethod
    def forward(ctx: Context, dim: int, *parts: Tensor) -> Tensor:
        shape = list(parts[0].shape)
        shape[dim] = sum(p.shape[dim] for p in parts)
        out = empty(tuple(shape), np.float32, parts[0].device)
        start = 0
        for p in parts:
            _copy_into(p, out, dim, start)
            start += p.shape[dim]
        ctx.dim, ctx.shapes = dim, [p.shape for p in parts]
        return out

    @staticmethod
    def backward(ctx: Context, g: Tensor):
        grads, start = [None], 0
        for shape, need in zip(ctx.shapes, ctx.needs_input_grad[1:]):
            grads.append(_copy_out(g, shape, ctx.dim, start) if need else None)
            start += shape[ctx.dim]
        return tuple(grads)


def cat(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """torch.cat: the tensors joined along dim; all have one rank and agree in every other dim."""
    if not isinstance(tensors, (tuple, list)) or not tensors:
        raise ValueError(f"cat: expected a non-empty sequence of tensors, got {tensors!r}")
    for i, t in enumerate(tensors):
        validate.tensor_arg("cat", f"tensors[{i}]", t)
    first = tensors[0]
    validate.same_device("cat", "tensors[0]", first, **{f"tensors[{i}]": t for i, t in enumerate(tensors)})
    nd = first.ndim
    if nd == 0:
        raise ValueError("cat: zero-dimensional tensors cannot be concatenated; reshape them to (1,) first")
    if not validate.is_int(dim) or not -nd <= dim < nd:
        raise ValueError(f"cat: dim {dim!r} is out of range for tensors of rank {nd} (tensors[0] {first.shape})")
    dim = int(dim) % nd
    for i, t in enumerate(tensors):
        if t.ndim != nd or any(a != b for d, (a, b) in enumerate(zip(t.shape, first.shape)) if d != dim):
            raise ValueError(f"cat: tensors[{i}] {t.shape} does not match tensors[0] {first.shape} outside dim {dim}")
    shape = list(first.shape)
    shape[dim] = sum(t.shape[dim] for t in tensors)
    _check_size("cat", tuple(shape))
    return CatFn.apply(dim, *tensors)


# ---------------------------------------------------------------- strided_slice

def slice_geometry(op: str, shape: tuple[int, ...], slices: Sequence[slice]) -> tuple[tuple, tuple, tuple]:
    """(starts, steps, out_shape) of Python slices (one per leading dim; the rest are whole) applied to shape."""
    if not isinstance(slices, (tuple, list)) or not all(isinstance(s, slice) for s in slices):
        raise ValueError(f"{op}: slices must be a sequence of Python slice objects, got {slices!r}")
    if len(slices) > len(shape):
        raise ValueError(f"{op}: {len(slices)} slices for a tensor of rank {len(shape)} (shape {shape})")
    starts, steps, out = [], [], []
    for d, n in enumerate(shape):
        s = slices[d] if d < len(slices) else slice(None)
        for name, v in (("start", s.start), ("stop", s.stop), ("step", s.step)):
            if v is not None and not validate.is_int(v):
                raise ValueError(f"{op}: slice {s} of dim {d} has a {name} that is not an int (shape {shape})")
        if s.step == 0:
            raise ValueError(f"{op}: slice {s} of dim {d} has step 0 (shape {shape})")
        start, stop, step = s.indices(n)
        starts.append(start)
        steps.append(step)
        out.append(len(range(start, stop, step)))
    return tuple(starts), tuple(steps), tuple(out)


def _slice_args(shape: tuple[int, ...], starts: tuple, steps: tuple) -> tuple[list[int], int]:
    """Strides and offset of the slice's elements inside a contiguous tensor of shape."""
    st = contiguous_strides(shape)
    return [s * k for s, k in zip(st, steps)], sum(a * s for a, s in zip(starts, st))


class StridedSliceFn(Function):
    @staticmethod
    def forward(ctx: Context, x: Tensor, starts: tuple, steps: tuple, out_shape: tuple) -> Tensor:
        out = empty(out_shape, np.float32, x.device)
        strides, offset = _slice_args(x.shape, starts, steps)
        strided_copy(x, out, out_shape, strides, offset, contiguous_strides(out_shape), 0)
        ctx.geometry = (x.shape, starts, steps)
        return out

    @staticmethod
    def backward(ctx: Context, g: Tensor):
        shape, starts, steps = ctx.geometry
        dx = zeros(shape, np.float32, g.device)  # the elements the slice skipped get no gradient
        strides, offset = _slice_args(shape, starts, steps)
        strided_copy(g, dx, g.shape, contiguous_strides(g.shape), 0, strides, offset)
        return dx, None, None, None


def strided_slice(input: Tensor, slices: Sequence[slice]) -> Tensor:
    """input[slices] as a new tensor: Python slice semantics (negative starts, out-of-range clamping,
    negative steps), one slice per leading dim."""
    validate.float_input("strided_slice", input)
    _check_size("strided_slice", input.shape)
    starts, steps, out_shape = slice_geometry("strided_slice", input.shape, slices)
    return StridedSliceFn.apply(input, starts, steps, out_shape)
