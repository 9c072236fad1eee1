"""2-D max, average and adaptive average pooling (PyTorch semantics) with their autograd Functions.

Inputs are (N, C, H, W) or unbatched (C, H, W) float32 tensors; every (n, c) plane is pooled alone.
Max pooling's argmax is int32 h * W + w within the plane (torch returns int64 with the same values).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .. import validate
from ..autograd import Context, Function, is_grad_enabled
from ..device import Device
from ..limits import STRICT
from ..tensor import Tensor, empty, zeros

_FILE = "pool2d.cl"
_INT_MAX = validate.INT_MAX
_POOL_MAX, _POOL_AVG, _POOL_ADAPTIVE, _POOL_GLOBAL = 0, 1, 2, 3
_GLOBAL_WG = 64  # work-group size of the global average reduction (tuning knob, a power of two)
# Planes up to this many pixels are averaged by one work-item each (global_avg_pool2d_small), larger ones
# by a work-group each.
_GLOBAL_SMALL_HW = 256
# Work-group size of global_avg_pool2d_small, at most (a power of two; less where the kernel allows less). Any
# size is correct; a NULL one lets PoCL split odd plane counts into groups its vectoriser handles badly.
_SMALL_WG = 64


class Geometry(NamedTuple):
    """One pooling call's shapes: input plane H x W, output OH x OW, kernel, stride, padding, dilation."""

    H: int
    W: int
    OH: int
    OW: int
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]

    def args(self) -> list[np.int32]:
        """Kernel arguments H, W, OH, OW, kh, kw, sh, sw, ph, pw (and dh, dw for max pooling)."""
        vals = (self.H, self.W, self.OH, self.OW, *self.kernel, *self.stride, *self.padding)
        return [np.int32(v) for v in vals]


def _pair(op: str, name: str, value, shape: tuple[int, ...]) -> tuple[int, int]:
    return validate.pair(op, name, value, f" (input {shape})")


def _check_input(op: str, x) -> None:
    validate.tensor_arg(op, "input", x)
    if x.ndim not in (3, 4):
        raise ValueError(f"{op}: input {x.shape} must be 3-D (C, H, W) or 4-D (N, C, H, W)")
    if x.size > _INT_MAX:
        raise ValueError(f"{op}: input {x.shape} has more than 2^31 - 1 elements")


def output_size(size: int, kernel: int, stride: int, pad: int, dilation: int, ceil_mode: bool) -> int:
    """torch's pooling_output_shape (floor or ceil division; a ceil window may not start in the right pad)."""
    out = (size + 2 * pad - dilation * (kernel - 1) - 1 + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def _geometry(op: str, x: Tensor, kernel_size, stride, padding, dilation, ceil_mode: bool) -> Geometry:
    _check_input(op, x)
    k = _pair(op, "kernel_size", kernel_size, x.shape)
    no_stride = stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0)
    s = k if no_stride else _pair(op, "stride", stride, x.shape)
    p = _pair(op, "padding", padding, x.shape)
    d = _pair(op, "dilation", dilation, x.shape)
    if min(k) <= 0 or min(s) <= 0 or min(d) <= 0:
        raise ValueError(f"{op}: kernel_size {k}, stride {s} and dilation {d} must be positive (input {x.shape})")
    if min(p) < 0 or p[0] > k[0] // 2 or p[1] > k[1] // 2:
        raise ValueError(f"{op}: padding {p} must be non-negative and at most half of kernel_size {k} "
                         f"(input {x.shape})")
    h, w = x.shape[-2:]
    oh = output_size(h, k[0], s[0], p[0], d[0], ceil_mode)
    ow = output_size(w, k[1], s[1], p[1], d[1], ceil_mode)
    if oh < 1 or ow < 1:
        raise ValueError(f"{op}: kernel_size {k} with dilation {d} is larger than the padded input {x.shape} "
                         f"(padding {p}); the output would be {oh}x{ow}")
    if math.prod(x.shape[:-2]) * oh * ow > _INT_MAX:
        raise ValueError(f"{op}: output of input {x.shape} would have more than 2^31 - 1 elements")
    return Geometry(h, w, oh, ow, k, s, p, d)


def _out_shape(x: Tensor, geo: Geometry) -> tuple[int, ...]:
    return x.shape[:-2] + (geo.OH, geo.OW)


# ---------------------------------------------------------------- max pooling

def _max_defines(geo: Geometry, with_indices: bool) -> dict[str, int]:
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = geo.kernel, geo.stride, geo.padding, geo.dilation
    return {"POOL": _POOL_MAX, "INDICES": int(with_indices), "KH": kh, "KW": kw, "SH": sh, "SW": sw,
            "PH": ph, "PW": pw, "DH": dh, "DW": dw}


def _planes(shape: tuple[int, ...]) -> int:
    return math.prod(shape[:-2])


def _plane_local(dev: Device, name: str, defines: dict, width: int, planes: int) -> tuple[int, int, int] | None:
    """The local size of a (width, height, planes) grid. None (the driver's choice, which PoCL vectorises
    best) unless a GPU may have to run one group per plane in dim 2 and that is more groups than GPUs allow:
    then (lx, 1, lz), lz the smallest divisor of planes that brings the groups under the limit (the kernels
    have no guard for a rounded-up grid), or None if there is none (HETERO_STRICT_LIMITS then says so)."""
    most_groups = STRICT.max_groups[2]
    if planes <= most_groups or (dev.flavour == "cpu" and not dev.strict_limits):
        return None
    most = dev.local_size_limit(_FILE, name, defines)
    lz = next((d for d in range(-(-planes // most_groups), min(most, STRICT.max_work_item_sizes[2]) + 1)
               if planes % d == 0), None)
    if lz is None:
        return None
    lx = next(d for d in range(min(width, most // lz), 0, -1) if width % d == 0)
    return (lx, 1, lz)


def max_pool2d_forward(x: Tensor, geo: Geometry, with_indices: bool) -> tuple[Tensor, Tensor | None]:
    """Launch the max pooling forward; the int32 argmax is written only when asked for."""
    dev = x.device
    out = empty(_out_shape(x, geo), np.float32, dev)
    idx = empty(out.shape, np.int32, dev) if with_indices else None
    if out.size:
        defines, planes = _max_defines(geo, with_indices), _planes(x.shape)
        local = _plane_local(dev, "max_pool2d_forward", defines, geo.OW, planes)
        dev.run(_FILE, "max_pool2d_forward", defines, (geo.OW, geo.OH, planes), local, x, out,
                out if idx is None else idx,  # out is a never-written placeholder
                *geo.args()[:4])
    return out, idx


def max_pool2d_backward(g: Tensor, indices: Tensor, input_shape: tuple[int, ...], geo: Geometry) -> Tensor:
    """Gradient of max pooling: scattered to each window's argmax when windows do not overlap, else each
    input pixel gathers the gradients of the windows whose argmax it is."""
    dev = g.device
    (kh, kw), (sh, sw), (dh, dw) = geo.kernel, geo.stride, geo.dilation
    scatter = sh >= (kh - 1) * dh + 1 and sw >= (kw - 1) * dw + 1  # the kernel's own #if, mirrored
    gx = zeros(input_shape, np.float32, dev) if scatter else empty(input_shape, np.float32, dev)
    if gx.size and g.size:
        grid = (geo.OW, geo.OH) if scatter else (geo.W, geo.H)
        defines, planes = _max_defines(geo, True), _planes(input_shape)
        local = _plane_local(dev, "max_pool2d_backward", defines, grid[0], planes)
        dev.run(_FILE, "max_pool2d_backward", defines, (*grid, planes), local, g, indices, gx, *geo.args()[:4])
    return gx


class MaxPool2dFn(Function):
    @staticmethod
    def forward(ctx: Context, x: Tensor, geo: Geometry, with_indices: bool):
        out, idx = max_pool2d_forward(x, geo, with_indices)
        ctx.geo, ctx.input_shape = geo, x.shape
        ctx.save_for_backward(idx)
        return out, idx

    @staticmethod
    def backward(ctx: Context, g: Tensor):
        if not ctx.needs_input_grad[0]:
            return None, None, None
        (idx,) = ctx.saved_tensors
        return max_pool2d_backward(g, idx, ctx.input_shape, ctx.geo), None, None


def max_pool2d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
               return_indices: bool = False) -> Tensor | tuple[Tensor, Tensor]:
    """torch.nn.functional.max_pool2d; with return_indices also the int32 argmax (h * W + w per plane)."""
    geo = _geometry("max_pool2d", input, kernel_size, stride, padding, dilation, bool(ceil_mode))
    need_grad = is_grad_enabled() and input.requires_grad
    out, idx = MaxPool2dFn.apply(input, geo, bool(return_indices or need_grad))
    return (out, idx) if return_indices else out


# ---------------------------------------------------------------- average pooling

def _avg_defines(count_include_pad: bool) -> dict[str, int]:
    return {"POOL": _POOL_AVG, "COUNT_INCLUDE_PAD": int(count_include_pad)}


def avg_pool2d_forward(x: Tensor, geo: Geometry, count_include_pad: bool, divisor: int) -> Tensor:
    """Launch the average pooling forward; divisor > 0 overrides the window size (divisor_override)."""
    dev = x.device
    out = empty(_out_shape(x, geo), np.float32, dev)
    dev.run(_FILE, "avg_pool2d_forward", _avg_defines(count_include_pad), (out.size,), None, x, out, *geo.args(),
            np.int32(divisor), np.int32(out.size))
    return out


def avg_pool2d_backward(g: Tensor, input_shape: tuple[int, ...], geo: Geometry, count_include_pad: bool,
                        divisor: int) -> Tensor:
    """Gradient of average pooling: each input pixel gathers g / divisor from the windows that hold it."""
    dev = g.device
    gx = empty(input_shape, np.float32, dev)
    dev.run(_FILE, "avg_pool2d_backward", _avg_defines(count_include_pad), (gx.size,), None, g, gx, *geo.args(),
            np.int32(divisor), np.int32(gx.size))
    return gx


class AvgPool2dFn(Function):
    @staticmethod
    def forward(ctx: Context, x: Tensor, geo: Geometry, count_include_pad: bool, divisor: int) -> Tensor:
        ctx.geo, ctx.input_shape, ctx.mode = geo, x.shape, (count_include_pad, divisor)
        return avg_pool2d_forward(x, geo, count_include_pad, divisor)

    @staticmethod
    def backward(ctx: Context, g: Tensor):
        if not ctx.needs_input_grad[0]:
            return None, None, None, None
        return avg_pool2d_backward(g, ctx.input_shape, ctx.geo, *ctx.mode), None, None, None


def avg_pool2d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override: int | None = None) -> Tensor:
    """torch.nn.functional.avg_pool2d."""
    geo = _geometry("avg_pool2d", input, kernel_size, stride, padding, 1, bool(ceil_mode))
    divisor = 0
    if divisor_override is not None:
        divisor = validate.positive_int("avg_pool2d", "divisor_override", divisor_override, f" (input {input.shape})")
    return AvgPool2dFn.apply(input, geo, bool(count_include_pad), divisor)


# ---------------------------------------------------------------- adaptive average pooling

def _pow2_floor(n: int) -> int:
    return 1 << (max(int(n), 1).bit_length() - 1)


def _global_defines(dev: Device) -> dict[str, int]:
    """The global-average kernels' defines: GLOBAL_WG is _GLOBAL_WG, or less if the forward kernel allows less."""
    wg = dev.work_group_size(_FILE, "global_avg_pool2d_forward", {"POOL": _POOL_GLOBAL}, _GLOBAL_WG, "GLOBAL_WG")
    return {"POOL": _POOL_GLOBAL, "GLOBAL_WG": wg}


def adaptive_avg_pool2d_forward(x: Tensor, out_hw: tuple[int, int]) -> Tensor:
    """Launch adaptive average pooling; a 1x1 output is a per-plane sum (a work-item or a work-group each)."""
    dev = x.device
    h, w = x.shape[-2:]
    out = empty(x.shape[:-2] + out_hw, np.float32, dev)
    if out_hw == (1, 1) and h * w <= _GLOBAL_SMALL_HW:
        defines = {"POOL": _POOL_GLOBAL}
        wg = _pow2_floor(min(_SMALL_WG, dev.local_size_limit(_FILE, "global_avg_pool2d_small", defines)))
        dev.run(_FILE, "global_avg_pool2d_small", defines, (-(-out.size // wg) * wg,), (wg,), x, out,
                np.int32(h * w), np.int32(out.size))
    elif out_hw == (1, 1):
        defines = _global_defines(dev)
        wg = defines["GLOBAL_WG"]
        dev.run(_FILE, "global_avg_pool2d_forward", defines, (out.size * wg,), (wg,), x, out, np.int32(h * w))
    else:
        dev.run(_FILE, "adaptive_avg_pool2d_forward", {"POOL": _POOL_ADAPTIVE}, (out.size,), None, x, out,
                np.int32(h), np.int32(w), *(np.int32(v) for v in out_hw), np.int32(out.size))
    return out


def adaptive_avg_pool2d_backward(g: Tensor, input_shape: tuple[int, ...]) -> Tensor:
    """Gradient of adaptive average pooling: each input pixel gathers g / bin area from its bins."""
    dev = g.device
    h, w = input_shape[-2:]
    gx = empty(input_shape, np.float32, dev)
    if g.shape[-2:] == (1, 1):
        dev.run(_FILE, "global_avg_pool2d_backward", _global_defines(dev), (gx.size,), None, g, gx,
                np.int32(h * w), np.int32(gx.size))
    else:
        dev.run(_FILE, "adaptive_avg_pool2d_backward", {"POOL": _POOL_ADAPTIVE}, (gx.size,), None, g, gx,
                np.int32(h), np.int32(w), *(np.int32(v) for v in g.shape[-2:]), np.int32(gx.size))
    return gx


class AdaptiveAvgPool2dFn(Function):
    @staticmethod
    def forward(ctx: Context, x: Tensor, out_hw: tuple[int, int]) -> Tensor:
        ctx.input_shape = x.shape
        return adaptive_avg_pool2d_forward(x, out_hw)

    @staticmethod
    def backward(ctx: Context, g: Tensor):
        if not ctx.needs_input_grad[0]:
            return None, None
        return adaptive_avg_pool2d_backward(g, ctx.input_shape), None


def adaptive_avg_pool2d(input: Tensor, output_size) -> Tensor:
    """torch.nn.functional.adaptive_avg_pool2d; output_size is an int or a pair (None keeps that input size)."""
    op = "adaptive_avg_pool2d"
    _check_input(op, input)
    h, w = input.shape[-2:]
    sizes = tuple(output_size) if isinstance(output_size, (tuple, list)) else (output_size, output_size)
    if len(sizes) != 2:
        raise ValueError(f"{op}: output_size must be an int or a pair, got {output_size!r} (input {input.shape})")
    sizes = (h if sizes[0] is None else sizes[0], w if sizes[1] is None else sizes[1])
    out_hw = _pair(op, "output_size", sizes, input.shape)
    if min(out_hw) <= 0 or h <= 0 or w <= 0:
        raise ValueError(f"{op}: output_size {out_hw} and the input's spatial size {input.shape} must be positive")
    if math.prod(input.shape[:-2]) * out_hw[0] * out_hw[1] > _INT_MAX or max(out_hw) * max(h, w) > _INT_MAX:
        raise ValueError(f"{op}: output_size {out_hw} is too large for input {input.shape}")
    return AdaptiveAvgPool2dFn.apply(input, out_hw)
