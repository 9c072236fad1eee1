"""Linear layer (torch.nn.functional.linear): y = x @ W^T + b, one GEMM with the bias fused.

Backward: grad x = g @ W, grad W = g^T @ x (both GEMMs), grad b = column sums of g (gemm_sum_rows).
Inputs of any rank >= 1 are contiguous, so [..., in] is a [rows, in] matrix without a copy.
"""

from __future__ import annotations

import math

import numpy as np

from ..autograd import Context, Function
from ..tensor import Tensor, empty
from ..validate import tensor_arg
from .gemm import Epilogue, Operand, Output, launch_gemm, launch_sum_rows


def _check(input: Tensor, weight: Tensor, bias: Tensor | None) -> None:
    for name, t in (("input", input), ("weight", weight), ("bias", bias)):
        if tensor_arg("linear", name, t, optional=name == "bias") is None:
            continue
        if t.device is not input.device:
            raise ValueError(f"linear: {name} is on {t.device.id} but input is on {input.device.id}")
    if input.ndim < 1:
        raise ValueError(f"linear: input must have at least 1 dimension, got shape {input.shape}")
    if weight.ndim != 2:
        raise ValueError(f"linear: weight must be 2-D [out_features, in_features], got shape {weight.shape}")
    if input.shape[-1] != weight.shape[1]:
        raise ValueError(f"linear: input {input.shape} has {input.shape[-1]} features but weight "
                         f"{weight.shape} expects {weight.shape[1]}")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(f"linear: bias {bias.shape} must have shape ({weight.shape[0]},) for weight {weight.shape}")


class LinearFn(Function):
    @staticmethod
    def forward(ctx: Context, input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
        out_f, in_f = weight.shape
        rows = math.prod(input.shape[:-1])
        out = empty(input.shape[:-1] + (out_f,), np.float32, input.device)
        launch_gemm(input.device, rows, out_f, in_f, Operand(input, 0, in_f), Operand(weight, 0, in_f, True),
                    Output(out, 0, out_f), Epilogue(bias=bias, bias_axis=None if bias is None else "n"))
        ctx.save_for_backward(input, weight)
        return out

    @staticmethod
    def backward(ctx: Context, g: Tensor):
        input, weight = ctx.saved_tensors
        need_x, need_w, need_b = (tuple(ctx.needs_input_grad) + (False,) * 3)[:3]
        dev = g.device
        out_f, in_f = weight.shape
        rows = math.prod(input.shape[:-1])
        gx = gw = gb = None
        if need_x:  # [rows, out] @ [out, in]
            gx = empty(input.shape, np.float32, dev)
            launch_gemm(dev, rows, in_f, out_f, Operand(g, 0, out_f), Operand(weight, 0, in_f), Output(gx, 0, in_f))
        if need_w:  # g^T [out, rows] @ x [rows, in]
            gw = empty(weight.shape, np.float32, dev)
            launch_gemm(dev, out_f, in_f, rows, Operand(g, 0, out_f, True), Operand(input, 0, in_f),
                        Output(gw, 0, in_f))
        if need_b:
            gb = empty((out_f,), np.float32, dev)
            launch_sum_rows(dev, rows, out_f, g, 0, out_f, gb)
        return gx, gw, gb


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y = input @ weight^T + bias; input [..., in_features], weight [out_features, in_features]."""
    _check(input, weight, bias)
    return LinearFn.apply(input, weight, bias)
