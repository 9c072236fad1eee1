"""float64 references of softmax, log_softmax, nll_loss and cross_entropy (PyTorch's definitions)."""

from __future__ import annotations

import numpy as np


def softmax(x: np.ndarray, dim: int) -> np.ndarray:
    e = np.exp(x - x.max(axis=dim, keepdims=True))
    return e / e.sum(axis=dim, keepdims=True)


def softmax_backward(g: np.ndarray, y: np.ndarray, dim: int) -> np.ndarray:
    return y * (g - (g * y).sum(axis=dim, keepdims=True))


def log_softmax(x: np.ndarray, dim: int) -> np.ndarray:
    z = x - x.max(axis=dim, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=dim, keepdims=True))


def log_softmax_backward(g: np.ndarray, y: np.ndarray, dim: int) -> np.ndarray:
    return g - np.exp(y) * g.sum(axis=dim, keepdims=True)


def _row_weights(target: np.ndarray, C: int, weight: np.ndarray | None, ignore_index: int) -> np.ndarray:
    keep = target != ignore_index
    safe = np.where(keep, target, 0)
    w = np.ones(target.shape) if weight is None else weight[safe]
    return np.where(keep, w, 0.0)


def _reduce(per_row: np.ndarray, w: np.ndarray, reduction: str) -> np.ndarray:
    if reduction == "none":
        return per_row
    if reduction == "sum":
        return np.asarray(per_row.sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(per_row.sum() / w.sum())  # all rows ignored: NaN, as in PyTorch


def _grad_scale(g: np.ndarray, w: np.ndarray, reduction: str) -> np.ndarray:
    """Per-row factor multiplying d(per-row loss)/dx."""
    if reduction == "none":
        return g * w
    if reduction == "sum":
        return float(g) * w
    total = w.sum()
    return float(g) * w / total if total != 0 else np.zeros_like(w)


def nll_loss(x: np.ndarray, target: np.ndarray, weight: np.ndarray | None = None, ignore_index: int = -100,
             reduction: str = "mean") -> np.ndarray:
    """x: [N, C] log-probabilities; target: [N] class ids in [0, C) or ignore_index."""
    N, C = x.shape
    w = _row_weights(target, C, weight, ignore_index)
    picked = x[np.arange(N), np.where(target != ignore_index, target, 0)]
    return _reduce(-w * picked, w, reduction)


def nll_loss_backward(g: np.ndarray, x: np.ndarray, target: np.ndarray, weight: np.ndarray | None = None,
                      ignore_index: int = -100, reduction: str = "mean") -> np.ndarray:
    N, C = x.shape
    w = _row_weights(target, C, weight, ignore_index)
    dx = np.zeros((N, C))
    keep = target != ignore_index
    dx[np.arange(N)[keep], target[keep]] = -_grad_scale(g, w, reduction)[keep]
    return dx


def cross_entropy(x: np.ndarray, target: np.ndarray, weight: np.ndarray | None = None, ignore_index: int = -100,
                  reduction: str = "mean") -> np.ndarray:
    """x: [N, C] logits; the NLL of their log-softmax."""
    return nll_loss(log_softmax(x, 1), target, weight, ignore_index, reduction)


def cross_entropy_backward(g: np.ndarray, x: np.ndarray, target: np.ndarray, weight: np.ndarray | None = None,
                           ignore_index: int = -100, reduction: str = "mean") -> np.ndarray:
    """(softmax(x) - onehot(target)) scaled per row by the reduction's factor; ignored rows get 0."""
    N, C = x.shape
    w = _row_weights(target, C, weight, ignore_index)
    keep = target != ignore_index
    onehot = np.zeros((N, C))
    onehot[np.arange(N)[keep], target[keep]] = 1.0
    return (softmax(x, 1) - onehot) * _grad_scale(g, w, reduction)[:, None] * keep[:, None]
