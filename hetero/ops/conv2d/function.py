"""conv2d_forward / conv2d_backward: each pass runs the algorithm algorithms.choose names; Conv2dFn; conv2d."""

from __future__ import annotations

from typing import Any

import numpy as np

from ...autograd import Context, Function
from ...tensor import Tensor, empty, zeros
from ...validate import same_device, tensor_arg
from . import algorithms, columns, depthwise, direct, implicit
from .geometry import ConvGeometry, conv2d_geometry
from .kernels import REDUCE_WG, group_width, pixel_slices, run, run_rows

# the column-matrix layout of each GEMM algorithm
_FORWARD_LAYOUT = {"pointwise": "image", "columns_per_image": "image", "columns_batch": "batch"}
_INPUT_GRAD_LAYOUT = {"pointwise": "image", "col2im_per_image": "image", "col2im_batch": "batch"}


def _check_tensors(op: str, geo_args: tuple, x: Any, w: Any, b: Any = None) -> ConvGeometry:
    tensor_arg(op, "input", x)
    tensor_arg(op, "weight", w)
    tensor_arg(op, "bias", b, optional=True)
    geo = conv2d_geometry(x.shape, w.shape, *geo_args, op=op)
    if b is not None and b.shape != (geo.oc,):
        raise ValueError(f"{op}: bias {b.shape} must have shape ({geo.oc},) for weight {w.shape}")
    same_device(op, "input", x, weight=w, bias=b)
    return geo


def conv2d_forward(x: Tensor, w: Tensor, b: Tensor | None = None, stride: Any = 1, padding: Any = 0,
                   dilation: Any = 1, groups: int = 1) -> Tensor:
    """conv2d(x, w) + b, by the forward algorithm algorithms.choose names for the device."""
    geo = _check_tensors("conv2d", (stride, padding, dilation, groups), x, w, b)
    out = empty(geo.out_shape, np.float32, x.device)
    if geo.n == 0:
        return out
    name = algorithms.choose(x.device, geo).forward
    if name == "depthwise":
        depthwise.forward(x, w, b, geo, out)
    elif name == "direct":
        direct.forward(x, w, b, geo, out)
    elif name in ("implicit_per_image", "implicit_images"):
        implicit.forward(x, w, b, geo, name == "implicit_per_image", out)
    else:
        columns.forward(x, w, b, geo, _FORWARD_LAYOUT[name], out)
    return out


def _bias_grad(g: Tensor, geo: ConvGeometry) -> Tensor:
    dev = g.device
    db = empty((geo.oc,), np.float32, dev)
    wg = group_width(dev, "bias_grad", {}, REDUCE_WG)
    for i, (q0, q1) in enumerate(pixel_slices(geo.n * geo.p, geo.p, wg, 1, 64)):
        run(dev, "bias_grad", {}, (geo.oc * wg,), (wg,), g, np.int32(geo.oc), np.int32(geo.p), db, np.int32(q0),
            np.int32(q1), np.int32(i > 0))
    return db


def _flipped_conv_input_grad(g: Tensor, w: Tensor, geo: ConvGeometry) -> Tensor:
    """dx as the convolution of dy with the flipped, transposed weights (padding kernel - 1 - padding)."""
    wt = empty((geo.c, geo.oc, geo.kh, geo.kw), np.float32, g.device)
    run_rows(g.device, "flip_transpose", {}, geo.c, geo.oc, w, wt, np.int32(geo.oc), np.int32(geo.c),
             np.int32(geo.kh), np.int32(geo.kw))
    return conv2d_forward(g, wt, None, 1, (geo.kh - 1 - geo.pad_t, geo.kw - 1 - geo.pad_l), 1, 1)


def _backward_gemm(g: Tensor, x: Tensor, w: Tensor, geo: ConvGeometry, need_dx: bool,
                   need_dw: bool) -> tuple[Tensor | None, Tensor | None]:
    dev = x.device
    algos = algorithms.choose(dev, geo, weight_grad=need_dw)
    dx = dw = None
    if need_dx and algos.input_grad == "flipped_conv":
        dx, need_dx = _flipped_conv_input_grad(g, w, geo), False
    dw = empty((geo.oc, geo.icg, geo.kh, geo.kw), np.float32, dev) if need_dw else None
    dy_all = None  # dY of every image, batch-major, when the direct weight gradient made it
    columns_dw = dw if need_dw and algos.weight_grad == "dw_columns" else None
    if need_dw and algos.weight_grad == "dw_direct":
        dy_all = direct.weight_grad(g, x, geo, dw)
    if need_dx:
        dx = empty((geo.n, geo.c, geo.h, geo.w), np.float32, dev)
    if need_dx or columns_dw is not None:
        layout = "batch" if columns_dw is not None else _INPUT_GRAD_LAYOUT[algos.input_grad]
        columns.backward(g, x, w, geo, layout, dx if need_dx else None, columns_dw, dy_all)
    return dx, dw


def conv2d_backward(grad: Tensor, x: Tensor, w: Tensor, stride: Any = 1, padding: Any = 0, dilation: Any = 1,
                    groups: int = 1, needs: tuple[bool, bool, bool] = (True, True, True)):
    """(dx, dw, db) of conv2d_forward, None where needs is False."""
    geo = _check_tensors("conv2d_backward", (stride, padding, dilation, groups), x, w)
    if not isinstance(grad, Tensor) or grad.shape != geo.out_shape or grad.dtype != np.float32:
        raise ValueError(f"conv2d_backward: grad {getattr(grad, 'shape', grad)} must be float32 of the output "
                         f"shape {geo.out_shape} (input {x.shape}, weight {w.shape})")
    if grad.device is not x.device:
        raise ValueError(f"conv2d_backward: grad {grad.shape} is on device {grad.device.id}, input on {x.device.id}")
    need_dx, need_dw, need_db = (bool(v) for v in needs)
    db = _bias_grad(grad, geo) if need_db else None
    if not (need_dx or need_dw):
        return None, None, db
    if geo.depthwise:
        dx, dw = depthwise.backward(grad, x, w, geo, need_dx, need_dw)
    else:
        dx, dw = _backward_gemm(grad, x, w, geo, need_dx, need_dw)
        if need_dw and geo.n == 0:
            dw = zeros(w.shape, np.float32, x.device)  # no image to accumulate over
    return dx, dw, db


class Conv2dFn(Function):
    """conv2d; backward gives input, weight and bias gradients."""

    @staticmethod
    def forward(ctx: Context, input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: Any = 1,
                padding: Any = 0, dilation: Any = 1, groups: int = 1) -> Tensor:
        out = conv2d_forward(input, weight, bias, stride, padding, dilation, groups)
        ctx.save_for_backward(input, weight)
        ctx.params = (stride, padding, dilation, groups)
        return out

    @staticmethod
    def backward(ctx: Context, grad: Tensor):
        x, w = ctx.saved_tensors
        needs = tuple(ctx.needs_input_grad[:3]) + (False,) * (3 - len(ctx.needs_input_grad[:3]))
        dx, dw, db = conv2d_backward(grad, x, w, *ctx.params, needs)
        return dx, dw, db, None, None, None, None


def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: Any = 1, padding: Any = 0,
           dilation: Any = 1, groups: int = 1) -> Tensor:
    """2-D cross-correlation over NCHW input, like torch.nn.functional.conv2d."""
    _check_tensors("conv2d", (stride, padding, dilation, groups), input, weight, bias)
    return Conv2dFn.apply(input, weight, bias, stride, padding, dilation, groups)
