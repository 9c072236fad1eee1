"""float64 numpy max / average / adaptive average 2-D pooling with PyTorch semantics, forward and backward.

Inputs are NCHW. Written from PyTorch's CPU kernels (aten/src/ATen/native/cpu/MaxPoolKernel.cpp,
AvgPoolKernel.cpp, AdaptiveAvgPoolKernel.cpp) and pooling_output_shape, independently of hetero.ops.
"""

from __future__ import annotations

import numpy as np

from ..validate import pair


def _pair(v) -> tuple[int, int]:
    return pair("reference pool2d", "argument", v)


def output_size(size: int, kernel: int, stride: int, pad: int, dilation: int = 1, ceil_mode: bool = False) -> int:
    """torch's pooling_output_shape: floor (or ceil) division, and a ceil window may not start in the right pad."""
    out = (size + 2 * pad - dilation * (kernel - 1) - 1 + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def _geometry(x, kernel_size, stride, padding, dilation, ceil_mode):
    kh, kw = _pair(kernel_size)
    sh, sw = _pair(kernel_size if stride is None else stride)
    ph, pw = _pair(padding)
    dh, dw = _pair(dilation)
    oh = output_size(x.shape[2], kh, sh, ph, dh, ceil_mode)
    ow = output_size(x.shape[3], kw, sw, pw, dw, ceil_mode)
    return (kh, kw), (sh, sw), (ph, pw), (dh, dw), (oh, ow)


def max_pool2d(x: np.ndarray, kernel_size, stride=None, padding=0, dilation=1,
               ceil_mode: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(output, argmax) where argmax is h * W + w in the input plane; ties take the first in scan order."""
    x = np.asarray(x, np.float64)
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw), (oh, ow) = _geometry(x, kernel_size, stride, padding, dilation,
                                                                 ceil_mode)
    out = np.empty((n, c, oh, ow))
    idx = np.empty((n, c, oh, ow), np.int64)
    for i in range(oh):
        rows = [r for r in range(i * sh - ph, i * sh - ph + (kh - 1) * dh + 1, dh) if 0 <= r < h]
        for j in range(ow):
            cols = [q for q in range(j * sw - pw, j * sw - pw + (kw - 1) * dw + 1, dw) if 0 <= q < w]
            flat = np.array([r * w + q for r in rows for q in cols])
            vals = x.reshape(n, c, h * w)[:, :, flat]
            best = np.argmax(vals, axis=2)  # first maximum, as torch's strict `>` scan
            nan = np.isnan(vals)
            last_nan = vals.shape[2] - 1 - np.argmax(nan[:, :, ::-1], axis=2)  # torch keeps the last NaN
            best = np.where(nan.any(axis=2), last_nan, best)
            idx[:, :, i, j] = flat[best]
            out[:, :, i, j] = np.take_along_axis(vals, best[:, :, None], axis=2)[:, :, 0]
    return out, idx


def max_pool2d_backward(g: np.ndarray, indices: np.ndarray, input_shape: tuple[int, ...]) -> np.ndarray:
    """Each output's gradient added to the input pixel its argmax names."""
    n, c, h, w = input_shape
    gx = np.zeros((n * c, h * w))
    g2 = np.asarray(g, np.float64).reshape(n * c, -1)
    i2 = np.asarray(indices).reshape(n * c, -1)
    for p in range(n * c):
        np.add.at(gx[p], i2[p], g2[p])
    return gx.reshape(input_shape)


def _avg_windows(x_shape, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
    """(oh, ow) and, per output position, the clipped row/col ranges and the divisor torch uses."""
    n, c, h, w = x_shape
    kh, kw = _pair(kernel_size)
    sh, sw = _pair(kernel_size if stride is None else stride)
    ph, pw = _pair(padding)
    oh = output_size(h, kh, sh, ph, 1, ceil_mode)
    ow = output_size(w, kw, sw, pw, 1, ceil_mode)
    windows = {}
    for i in range(oh):
        for j in range(ow):
            h0, w0 = i * sh - ph, j * sw - pw
            h1, w1 = min(h0 + kh, h + ph), min(w0 + kw, w + pw)
            pool = (h1 - h0) * (w1 - w0)
            h0, w0, h1, w1 = max(h0, 0), max(w0, 0), min(h1, h), min(w1, w)
            if divisor_override:
                div = divisor_override
            else:
                div = pool if count_include_pad else (h1 - h0) * (w1 - w0)
            windows[i, j] = (slice(h0, h1), slice(w0, w1), div)
    return (oh, ow), windows


def avg_pool2d(x: np.ndarray, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override: int | None = None) -> np.ndarray:
    x = np.asarray(x, np.float64)
    (oh, ow), windows = _avg_windows(x.shape, kernel_size, stride, padding, ceil_mode, count_include_pad,
                                     divisor_override)
    out = np.zeros(x.shape[:2] + (oh, ow))
    for (i, j), (rs, cs, div) in windows.items():
        if rs.stop > rs.start and cs.stop > cs.start:
            out[:, :, i, j] = x[:, :, rs, cs].sum(axis=(2, 3)) / div
    return out


def avg_pool2d_backward(g: np.ndarray, input_shape: tuple[int, ...], kernel_size, stride=None, padding=0,
                        ceil_mode: bool = False, count_include_pad: bool = True,
                        divisor_override: int | None = None) -> np.ndarray:
    g = np.asarray(g, np.float64)
    _, windows = _avg_windows(input_shape, kernel_size, stride, padding, ceil_mode, count_include_pad,
                              divisor_override)
    gx = np.zeros(input_shape)
    for (i, j), (rs, cs, div) in windows.items():
        gx[:, :, rs, cs] += (g[:, :, i, j] / div)[:, :, None, None]
    return gx


def _bins(size: int, out: int) -> list[tuple[int, int]]:
    """torch's adaptive bins: [floor(i * size / out), ceil((i + 1) * size / out))."""
    return [(i * size // out, -(-(i + 1) * size // out)) for i in range(out)]


def adaptive_avg_pool2d(x: np.ndarray, output_size) -> np.ndarray:
    x = np.asarray(x, np.float64)
    oh, ow = _pair(output_size)
    out = np.empty(x.shape[:2] + (oh, ow))
    for i, (h0, h1) in enumerate(_bins(x.shape[2], oh)):
        for j, (w0, w1) in enumerate(_bins(x.shape[3], ow)):
            out[:, :, i, j] = x[:, :, h0:h1, w0:w1].mean(axis=(2, 3))
    return out


def adaptive_avg_pool2d_backward(g: np.ndarray, input_shape: tuple[int, ...]) -> np.ndarray:
    g = np.asarray(g, np.float64)
    gx = np.zeros(input_shape)
    for i, (h0, h1) in enumerate(_bins(input_shape[2], g.shape[2])):
        for j, (w0, w1) in enumerate(_bins(input_shape[3], g.shape[3])):
            gx[:, :, h0:h1, w0:w1] += (g[:, :, i, j] / ((h1 - h0) * (w1 - w0)))[:, :, None, None]
    return gx
