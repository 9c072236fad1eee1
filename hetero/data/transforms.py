"""Batch transforms in numpy on float32 (B, C, H, W) arrays: resize (nearest, bilinear) and zero padding."""

from __future__ import annotations

import numpy as np

INTERPOLATIONS = ("nearest", "bilinear")


def _bilinear_taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # PyTorch's align_corners=False: output pixel centres mapped onto the input, clamped at the border
    src = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
    src = np.clip(src, 0, n_in - 1)
    lo = np.floor(src).astype(np.intp)
    hi = np.minimum(lo + 1, n_in - 1)
    return lo, hi, (src - lo).astype(np.float32)


def resize(x: np.ndarray, size: tuple[int, int], mode: str = "bilinear") -> np.ndarray:
    """Resize (B, C, H, W) float32 to (B, C, *size) like torch's F.interpolate (align_corners=False)."""
    h, w = x.shape[-2:]
    if (h, w) == tuple(size):
        return x
    if mode == "nearest":
        rows = np.minimum(np.floor(np.arange(size[0]) * (h / size[0])).astype(np.intp), h - 1)
        cols = np.minimum(np.floor(np.arange(size[1]) * (w / size[1])).astype(np.intp), w - 1)
        return np.ascontiguousarray(x[:, :, rows][:, :, :, cols])
    if mode != "bilinear":
        raise ValueError(f"resize: interpolation must be one of {INTERPOLATIONS}, got {mode!r}")
    lo, hi, t = _bilinear_taps(h, size[0])
    t = t[:, None]
    x = x[:, :, lo] * (1 - t) + x[:, :, hi] * t
    lo, hi, t = _bilinear_taps(w, size[1])
    return np.ascontiguousarray(x[..., lo] * (1 - t) + x[..., hi] * t, dtype=np.float32)


def pad(x: np.ndarray, padding: tuple[int, int], value) -> np.ndarray:
    """Pad the last two axes of (B, C, H, W) by padding=(ph, pw) on each side with `value` (scalar or (C,))."""
    ph, pw = padding
    if ph == 0 and pw == 0:
        return x
    b, c, h, w = x.shape
    out = np.empty((b, c, h + 2 * ph, w + 2 * pw), np.float32)
    out[...] = np.asarray(value, np.float32).reshape(1, -1, 1, 1)
    out[:, :, ph:ph + h, pw:pw + w] = x
    return out
