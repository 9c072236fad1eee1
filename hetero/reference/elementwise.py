"""float64 references of add, mul and the broadcast-undoing sum."""

from __future__ import annotations

import numpy as np


def sum_to(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum g over the dimensions that broadcasting added or expanded, giving `shape`."""
    lead = g.ndim - len(shape)
    g = g.sum(axis=tuple(range(lead))) if lead else g
    axes = tuple(d for d, s in enumerate(shape) if s == 1 and g.shape[d] != 1)
    return g.sum(axis=axes, keepdims=True) if axes else g


def add(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a + b


def add_backward(g: np.ndarray, a_shape: tuple, b_shape: tuple) -> tuple[np.ndarray, np.ndarray]:
    return sum_to(g, a_shape), sum_to(g, b_shape)


def mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a * b


def mul_backward(g: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return sum_to(g * b, a.shape), sum_to(g * a, b.shape)
