"""gemm(): the tensor-level GEMM op."""

from __future__ import annotations

import numpy as np

from ...tensor import Tensor, empty
from ...validate import same_device, tensor_arg
from .launch import Epilogue, Operand, Output, launch_gemm


def gemm(a: Tensor, b: Tensor, trans_a: bool = False, trans_b: bool = False, bias: Tensor | None = None) -> Tensor:
    """op(a) @ op(b) + bias for 2-D float32 tensors; bias has one value per output column."""
    for name, t in (("a", a), ("b", b)):
        tensor_arg("gemm", name, t, ndim=2)
    tensor_arg("gemm", "bias", bias, optional=True)
    same_device("gemm", "a", a, b=b, bias=bias)
    m, ka = (a.shape[1], a.shape[0]) if trans_a else a.shape
    kb, n = (b.shape[1], b.shape[0]) if trans_b else b.shape
    if ka != kb:
        raise ValueError(f"gemm: inner dimensions differ: a {a.shape} (trans_a={trans_a}) and "
                         f"b {b.shape} (trans_b={trans_b})")
    if bias is not None and bias.shape != (n,):
        raise ValueError(f"gemm: bias {bias.shape} must have shape ({n},)")
    out = empty((m, n), np.float32, a.device)
    launch_gemm(a.device, m, n, ka, Operand(a, 0, a.shape[1], trans_a), Operand(b, 0, b.shape[1], trans_b),
                Output(out, 0, n), Epilogue(bias=bias, bias_axis=None if bias is None else "n"))
    return out
