"""float64 numpy conv2d (PyTorch semantics: NCHW input, weight [out, in/groups, kH, kW]), forward and backward."""

from __future__ import annotations

import numpy as np

from ..validate import pair


def _pair(v) -> tuple[int, int]:
    return pair("reference conv2d", "argument", v)


def _pads(padding, kernel: tuple[int, int], dilation: tuple[int, int]) -> tuple[int, int, int, int]:
    """(top, bottom, left, right); 'same' puts the odd extra row/column at the bottom/right, as PyTorch does."""
    if isinstance(padding, str):
        if padding == "valid":
            return 0, 0, 0, 0
        th, tw = dilation[0] * (kernel[0] - 1), dilation[1] * (kernel[1] - 1)
        return th // 2, th - th // 2, tw // 2, tw - tw // 2
    ph, pw = _pair(padding)
    return ph, ph, pw, pw


def _geometry(x: np.ndarray, w: np.ndarray, stride, padding, dilation):
    sh, sw = _pair(stride)
    dh, dw = _pair(dilation)
    kh, kw = w.shape[2], w.shape[3]
    pt, pb, pl, pr = _pads(padding, (kh, kw), (dh, dw))
    oh = (x.shape[2] + pt + pb - dh * (kh - 1) - 1) // sh + 1
    ow = (x.shape[3] + pl + pr - dw * (kw - 1) - 1) // sw + 1
    return (sh, sw), (dh, dw), (pt, pb, pl, pr), (oh, ow)


def _tap(i: int, j: int, stride, dilation, out_hw) -> tuple[slice, slice]:
    """Slices of the padded input that kernel tap (i, j) multiplies, one element per output pixel."""
    (sh, sw), (dh, dw), (oh, ow) = stride, dilation, out_hw
    return (slice(i * dh, i * dh + sh * (oh - 1) + 1, sh), slice(j * dw, j * dw + sw * (ow - 1) + 1, sw))


def conv2d_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, stride=1, padding=0,
                   dilation=1, groups: int = 1) -> np.ndarray:
    """y[n, o] = b[o] + sum over the group's channels and kernel taps of w * x (cross-correlation)."""
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    st, dil, (pt, pb, pl, pr), (oh, ow) = _geometry(x, w, stride, padding, dilation)
    n, c = x.shape[:2]
    oc, icg, kh, kw = w.shape
    ocg = oc // groups
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    y = np.zeros((n, oc, oh, ow))
    for g in range(groups):
        xg = xp[:, g * icg:(g + 1) * icg]
        wg = w[g * ocg:(g + 1) * ocg]
        for i in range(kh):
            for j in range(kw):
                rows, cols = _tap(i, j, st, dil, (oh, ow))
                y[:, g * ocg:(g + 1) * ocg] += np.einsum("nchw,oc->nohw", xg[:, :, rows, cols], wg[:, :, i, j])
    if b is not None:
        y += np.asarray(b, np.float64)[None, :, None, None]
    return y


def conv2d_backward(grad: np.ndarray, x: np.ndarray, w: np.ndarray, stride=1, padding=0, dilation=1,
                    groups: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dx, dw, db) of conv2d_forward given dL/dy."""
    grad = np.asarray(grad, np.float64)
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    st, dil, (pt, pb, pl, pr), (oh, ow) = _geometry(x, w, stride, padding, dilation)
    oc, icg, kh, kw = w.shape
    ocg = oc // groups
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    dxp = np.zeros_like(xp)
    dw = np.zeros_like(w)
    for g in range(groups):
        cs, os_ = slice(g * icg, (g + 1) * icg), slice(g * ocg, (g + 1) * ocg)
        gg = grad[:, os_]
        for i in range(kh):
            for j in range(kw):
                rows, cols = _tap(i, j, st, dil, (oh, ow))
                # taps of one kernel position never overlap themselves, so += on the slice is exact
                dxp[:, cs, rows, cols] += np.einsum("nohw,oc->nchw", gg, w[os_, :, i, j])
                dw[os_, :, i, j] = np.einsum("nohw,nchw->oc", gg, xp[:, cs, rows, cols])
    dx = dxp[:, :, pt:pt + x.shape[2], pl:pl + x.shape[3]]
    return dx, dw, grad.sum(axis=(0, 2, 3))
