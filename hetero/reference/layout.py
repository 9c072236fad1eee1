"""float64 references of permute, cat and strided_slice, forward and backward."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def permute(x: np.ndarray, dims: Sequence[int]) -> np.ndarray:
    return np.ascontiguousarray(np.transpose(x, dims))


def permute_backward(g: np.ndarray, dims: Sequence[int]) -> np.ndarray:
    return np.ascontiguousarray(np.transpose(g, np.argsort(dims)))


def cat(xs: Sequence[np.ndarray], dim: int) -> np.ndarray:
    return np.concatenate(xs, axis=dim)


def cat_backward(g: np.ndarray, sizes: Sequence[int], dim: int) -> list[np.ndarray]:
    """The gradient of each input: g split along dim into pieces of the inputs' sizes."""
    return np.split(g, np.cumsum(sizes)[:-1], axis=dim)


def strided_slice(x: np.ndarray, slices: Sequence[slice]) -> np.ndarray:
    return np.ascontiguousarray(x[tuple(slices)])


def strided_slice_backward(g: np.ndarray, shape: tuple[int, ...], slices: Sequence[slice]) -> np.ndarray:
    dx = np.zeros(shape)
    dx[tuple(slices)] = g
    return dx
