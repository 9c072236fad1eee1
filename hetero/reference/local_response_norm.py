"""float64 numpy local response normalisation across channels (torch.nn.functional.local_response_norm).

torch computes div = x^2 zero-padded on the channel axis by size//2 before and (size-1)//2 after,
averaged over `size` channels (the padding counts, so the divisor is always `size`), then
div = (k + alpha * div)^beta and returns x / div. The input is (N, C, *), rank >= 3.
"""

from __future__ import annotations

import numpy as np


def _window_avg(sq: np.ndarray, size: int) -> np.ndarray:
    """For (N, C, S) input: mean over channels [c - size//2, c + (size-1)//2] with zero padding."""
    c = sq.shape[1]
    padded = np.pad(sq, ((0, 0), (size // 2, (size - 1) // 2), (0, 0)))
    return sum(padded[:, t:t + c] for t in range(size)) / size


def local_response_norm(x: np.ndarray, size: int, alpha: float = 1e-4, beta: float = 0.75,
                        k: float = 1.0) -> np.ndarray:
    x = np.asarray(x, np.float64)
    x3 = x.reshape(x.shape[0], x.shape[1], -1)
    div = (k + alpha * _window_avg(x3 * x3, size)) ** beta
    return (x3 / div).reshape(x.shape)


def local_response_norm_backward(g: np.ndarray, x: np.ndarray, size: int, alpha: float = 1e-4,
                                 beta: float = 0.75, k: float = 1.0) -> np.ndarray:
    """dL/dx_j = g_j D_j^-beta - (2 alpha beta / size) x_j sum_{c: j in window(c)} g_c x_c D_c^(-beta-1)."""
    x = np.asarray(x, np.float64)
    shape = x.shape
    x = x.reshape(shape[0], shape[1], -1)
    g = np.asarray(g, np.float64).reshape(x.shape)
    d = k + alpha * _window_avg(x * x, size)
    t = g * x * d ** (-beta - 1)
    # j is in window(c) when c is in [j - (size-1)//2, j + size//2]: the mirrored window, so pad the other way
    c = x.shape[1]
    tp = np.pad(t, ((0, 0), ((size - 1) // 2, size // 2), (0, 0)))
    back = sum(tp[:, s:s + c] for s in range(size))
    gx = g * d ** (-beta) - (2.0 * alpha * beta / size) * x * back
    return gx.reshape(shape)
