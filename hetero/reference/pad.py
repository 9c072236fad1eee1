"""float64 reference of pad (torch.nn.functional.pad's pad tuple, numpy.pad's modes), forward and backward."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_NUMPY_MODES = {"constant": "constant", "reflect": "reflect", "replicate": "edge"}


def widths(shape: tuple[int, ...], pad: Sequence[int]) -> list[tuple[int, int]]:
    """(before, after) per dim from torch's pad tuple (last dim first)."""
    out = [(0, 0)] * len(shape)
    for i in range(len(pad) // 2):
        out[len(shape) - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    return out


def _crop(a: np.ndarray, w: list[tuple[int, int]]) -> np.ndarray:
    """Apply the negative parts of the pads (cropping) to a."""
    index = tuple(slice(max(-b, 0), n - max(-e, 0)) for n, (b, e) in zip(a.shape, w))
    return a[index]


def pad(x: np.ndarray, pad: Sequence[int], mode: str = "constant", value: float = 0.0) -> np.ndarray:
    w = widths(x.shape, pad)
    x = _crop(x, w)
    positive = [(max(b, 0), max(e, 0)) for b, e in w]
    if mode == "constant":
        return np.pad(x, positive, mode="constant", constant_values=value)
    return np.pad(x, positive, mode=_NUMPY_MODES[mode])


def pad_backward(g: np.ndarray, shape: tuple[int, ...], pads: Sequence[int], mode: str = "constant") -> np.ndarray:
    """Sum g into the input element each output element was read from (none for the constant's fill)."""
    n = int(np.prod(shape))
    index = np.arange(n, dtype=np.int64).reshape(shape)
    if mode == "constant":  # -1 marks the fill, which reads no input element
        source = pad(index.astype(np.float64), pads, "constant", -1.0).astype(np.int64)
    else:
        source = pad(index, pads, mode)
    keep = source.ravel() >= 0
    return np.bincount(source.ravel()[keep], weights=g.ravel()[keep], minlength=n).reshape(shape)
