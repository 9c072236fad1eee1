"""float64 numpy matmul (torch.matmul for 2-D and 3-D operands), forward and backward."""

from __future__ import annotations

import numpy as np


def matmul_forward(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b with torch's batch broadcasting (a 2-D operand, or a batch of 1, is shared by every batch)."""
    return np.matmul(np.asarray(a, np.float64), np.asarray(b, np.float64))


def _sum_to(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum a broadcast gradient [batch, r, c] back to an operand's shape (2-D, or a batch of 1)."""
    if len(shape) == 2:
        return g.sum(axis=0) if g.ndim == 3 else g
    if shape[0] == 1 and g.shape[0] != 1:
        return g.sum(axis=0, keepdims=True)
    return g


def matmul_backward(g: np.ndarray, a: np.ndarray, b: np.ndarray):
    """(grad a, grad b) from g = dL/d(a @ b)."""
    g = np.asarray(g, np.float64)
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    ga = np.matmul(g, np.swapaxes(b, -1, -2))
    gb = np.matmul(np.swapaxes(a, -1, -2), g)
    return _sum_to(ga, a.shape), _sum_to(gb, b.shape)
