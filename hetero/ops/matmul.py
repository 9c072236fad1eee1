"""Matrix product (torch.matmul) of 2-D and 3-D operands, as one strided-batched GEMM.

A 2-D operand, or a 3-D one with batch 1, is shared by every batch entry (batch stride 0). Backward:
grad a = g @ b^T, grad b = a^T @ g; a shared operand's gradient is the sum over the batch, done in one
GEMM (batch folded into k) where the layout allows, else by accumulating GEMMs with beta = 1.
"""

from __future__ import annotations

import numpy as np

from ..autograd import Context, Function
from ..tensor import Tensor, empty
from ..validate import tensor_arg
from .gemm import Epilogue, Operand, Output, launch_gemm


def _dims(t: Tensor) -> tuple[int, int, int]:
    """(batch, rows, cols); batch is 0 for a 2-D operand (shared, like a batch of 1)."""
    return (0, *t.shape) if t.ndim == 2 else t.shape


def _check(input: Tensor, other: Tensor) -> tuple[int, ...]:
    """The output shape, after validating ranks, dtypes, devices and dimensions."""
    for name, t in (("input", input), ("other", other)):
        tensor_arg("matmul", name, t, dtype=None, ndim=(2, 3))
        tensor_arg("matmul", name, t)
    if input.device is not other.device:
        raise ValueError(f"matmul: input is on {input.device.id} but other is on {other.device.id}")
    ba, m, k = _dims(input)
    bb, kb, n = _dims(other)
    if k != kb:
        raise ValueError(f"matmul: input {input.shape} has {k} columns but other {other.shape} has {kb} rows")
    if ba > 1 and bb > 1 and ba != bb:
        raise ValueError(f"matmul: batch sizes of input {input.shape} and other {other.shape} do not broadcast")
    if input.ndim == 2 and other.ndim == 2:
        return (m, n)
    return (max(ba, bb), m, n)


def _shared(t: Tensor, batch: int) -> bool:
    """True when one matrix of t serves every batch entry."""
    return t.ndim == 2 or (t.shape[0] == 1 and batch != 1)


def _product(dev, a: Tensor, ta: bool, b: Tensor, tb: bool, out: Tensor, batch: int, m: int, n: int, k: int,
             a_shared: bool, b_shared: bool, a_rows_cols: tuple[int, int], b_rows_cols: tuple[int, int]) -> None:
    """out[batch, m, n] = op(a) @ op(b), folding the batch into m when only b is shared."""
    lda, ldb = a_rows_cols[1], b_rows_cols[1]
    if b_shared and not a_shared and not ta:  # rows of every batch entry are one tall matrix
        launch_gemm(dev, batch * m, n, k, Operand(a, 0, lda), Operand(b, 0, ldb, tb), Output(out, 0, n))
        return
    size_a, size_b = a_rows_cols[0] * lda, b_rows_cols[0] * ldb
    launch_gemm(dev, m, n, k, Operand(a, 0, lda, ta, 0 if a_shared else size_a),
                Operand(b, 0, ldb, tb, 0 if b_shared else size_b), Output(out, 0, n, m * n), batch=batch)


class MatmulFn(Function):
    @staticmethod
    def forward(ctx: Context, input: Tensor, other: Tensor) -> Tensor:
        shape = _check(input, other)
        batch = shape[0] if len(shape) == 3 else 1
        _, m, k = _dims(input)
        n = other.shape[-1]
        out = empty(shape, np.float32, input.device)
        _product(input.device, input, False, other, False, out, batch, m, n, k,
                 _shared(input, batch), _shared(other, batch), (m, k), (k, n))
        ctx.save_for_backward(input, other)
        ctx.batch = batch
        return out

    @staticmethod
    def backward(ctx: Context, g: Tensor):
        a, b = ctx.saved_tensors
        batch = ctx.batch
        dev = g.device
        _, m, k = _dims(a)
        n = b.shape[-1]
        a_shared, b_shared = _shared(a, batch), _shared(b, batch)
        ga = gb = None
        if ctx.needs_input_grad[0]:
            ga = empty(a.shape, np.float32, dev)
            if a_shared and batch > 1:  # sum_b g_b @ b_b^T (b is per-batch here, or both would be shared)
                for i in range(batch):
                    launch_gemm(dev, m, k, n, Operand(g, i * m * n, n),
                                Operand(b, 0 if b_shared else i * k * n, n, True), Output(ga, 0, k),
                                Epilogue(beta=0.0 if i == 0 else 1.0))
            else:  # g [batch, m, n] @ b^T
                _product(dev, g, False, b, True, ga, batch, m, k, n, False, b_shared, (m, n), (k, n))
        if ctx.needs_input_grad[1]:
            gb = empty(b.shape, np.float32, dev)
            if b_shared and batch > 1 and not a_shared:  # sum_b a_b^T g_b: the batch folds into k
                launch_gemm(dev, k, n, batch * m, Operand(a, 0, k, True), Operand(g, 0, n), Output(gb, 0, n))
            else:  # a^T @ g per batch entry (a shared or not)
                _product(dev, a, True, g, False, gb, batch if not b_shared else 1, k, n, m,
                         a_shared, False, (m, k), (m, n))
        return ga, gb


def matmul(input: Tensor, other: Tensor) -> Tensor:
    """input @ other for 2-D / 3-D float32 tensors, broadcasting a 2-D or batch-1 operand over the batch."""
    _check(input, other)
    return MatmulFn.apply(input, other)
