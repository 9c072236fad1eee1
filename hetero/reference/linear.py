"""float64 numpy linear layer (torch.nn.functional.linear), forward and backward."""

from __future__ import annotations

import numpy as np


def linear_forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    """y = x @ weight^T + bias for x [..., in], weight [out, in], bias [out]."""
    y = np.asarray(x, np.float64) @ np.asarray(weight, np.float64).T
    return y if bias is None else y + np.asarray(bias, np.float64)


def linear_backward(g: np.ndarray, x: np.ndarray, weight: np.ndarray, has_bias: bool = True):
    """(grad x, grad weight, grad bias or None) from g = dL/dy [..., out]."""
    g = np.asarray(g, np.float64)
    x = np.asarray(x, np.float64)
    w = np.asarray(weight, np.float64)
    g2 = g.reshape(-1, w.shape[0])
    x2 = x.reshape(-1, w.shape[1])
    gx = (g2 @ w).reshape(x.shape)
    gw = g2.T @ x2
    gb = g2.sum(axis=0) if has_bias else None
    return gx, gw, gb
