"""pad (torch.nn.functional.pad): constant, reflect and replicate modes, kernels_cl/pad.cl, with its Function."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pyopencl.cltypes as cltypes

from .. import validate
from ..autograd import Context, Function
from ..tensor import Tensor, empty, fill_

_FILE = "pad.cl"
MODES = {"constant": 0, "reflect": 1, "replicate": 2}  # pad.cl's MODE ids
RANK = 8  # pad.cl's largest rank (shapes are int8 vectors)


def _int8(values: Sequence[int], fill: int) -> np.ndarray:
    return cltypes.make_int8(*([fill] * (RANK - len(values)) + [int(v) for v in values]))


def pad_widths(op: str, shape: tuple[int, ...], pad: Sequence[int], mode: str) -> list[tuple[int, int]]:
    """(before, after) for every dim of shape from torch's pad tuple (last dim first), validated for mode."""
    if not isinstance(pad, (tuple, list)) or len(pad) % 2 or not all(validate.is_int(p) for p in pad):
        raise ValueError(f"{op}: pad must be a sequence of an even number of ints, got {pad!r} (input {shape})")
    if len(pad) // 2 > len(shape):
        raise ValueError(f"{op}: pad {tuple(pad)} pads {len(pad) // 2} dims but input {shape} has {len(shape)}")
    if mode not in MODES:
        raise ValueError(f"{op}: mode must be one of {', '.join(MODES)}, got {mode!r}")
    widths = [(0, 0)] * len(shape)
    for i in range(len(pad) // 2):
        widths[len(shape) - 1 - i] = (int(pad[2 * i]), int(pad[2 * i + 1]))
    for d, ((b, a), n) in enumerate(zip(widths, shape)):
        if n + b + a < 0:
            raise ValueError(f"{op}: pad {(b, a)} of dim {d} leaves a negative size for input {shape}")
        if mode != "constant" and (b or a):
            if b < 0 or a < 0:
                raise ValueError(f"{op}: {mode} padding takes no negative pads, got {(b, a)} for dim {d} "
                                 f"(input {shape}); crop with constant mode")
            if n == 0:
                raise ValueError(f"{op}: {mode} padding of dim {d}, which is empty (input {shape})")
            if mode == "reflect" and max(b, a) >= n:
                raise ValueError(f"{op}: reflect pads {(b, a)} of dim {d} must be smaller than its size {n} "
                                 f"(input {shape})")
    out = tuple(n + b + a for n, (b, a) in zip(shape, widths))
    if math.prod(out) > validate.INT_MAX or math.prod(shape) > validate.INT_MAX:
        raise ValueError(f"{op}: input {shape} or its padded shape {out} has more than 2^31 - 1 elements")
    return widths


def pad_forward(x: Tensor, widths: list[tuple[int, int]], mode: str, value: float) -> Tensor:
    out_shape = tuple(n + b + a for n, (b, a) in zip(x.shape, widths))
    y = empty(out_shape, np.float32, x.device)
    if y.size == 0:
        return y
    if x.size == 0:  # only constant mode gets here: every element is the value
        return fill_(y, value)
    if len(out_shape) > RANK:
        raise ValueError(f"pad: tensors of rank > {RANK} are not supported (input {x.shape})")
    x.device.run(_FILE, "pad_forward", {"MODE": MODES[mode]}, (y.size,), None, x, y, _int8(out_shape, 1),
                 _int8(x.shape, 1), _int8([b for b, _ in widths], 0), np.float32(value), np.int32(y.size))
    return y


def pad_backward(g: Tensor, in_shape: tuple[int, ...], widths: list[tuple[int, int]], mode: str) -> Tensor:
    """dL/dx: the constant pad's gradient is g cropped (a constant pad with the pads negated); reflect and
    replicate fold g back one padded dim at a time."""
    if mode == "constant":
        return pad_forward(g, [(-b, -a) for b, a in widths], "constant", 0.0)
    cur = g
    for d in range(len(in_shape)):
        b, a = widths[d]
        if not (b or a):
            continue
        shape = cur.shape[:d] + (in_shape[d],) + cur.shape[d + 1:]
        dx = empty(shape, np.float32, g.device)
        if dx.size:
            g.device.run(_FILE, "pad_fold", {"MODE": MODES[mode]}, (dx.size,), None, cur, dx, np.int32(in_shape[d]),
                         np.int32(cur.shape[d]), np.int32(max(math.prod(shape[d + 1:]), 1)), np.int32(b),
                         np.int32(dx.size))
        cur = dx
    return cur


class PadFn(Function):
    @staticmethod
    def forward(ctx: Context, x: Tensor, widths: list[tuple[int, int]], mode: str, value: float) -> Tensor:
        ctx.geometry = (x.shape, widths, mode)
        return pad_forward(x, widths, mode, value)

    @staticmethod
    def backward(ctx: Context, g: Tensor):
        return pad_backward(g, *ctx.geometry), None, None, None


def pad(input: Tensor, pad: Sequence[int], mode: str = "constant", value: float = 0.0) -> Tensor:
    """torch.nn.functional.pad: pad is (last dim's before, after, the dim before it's before, after, ...);
    negative pads crop (constant mode); reflect and replicate need pads within the input."""
    validate.float_input("pad", input)
    widths = pad_widths("pad", input.shape, pad, mode)
    value = float(value) if validate.is_number(value) else validate.finite("pad", "value", value)
    return PadFn.apply(input, widths, mode, value)
