"""float64 numpy batch normalisation (torch.nn.functional.batch_norm), forward and backward, with the
optional fused activation of hetero.ops.batch_norm (ids as in kernels_cl/common.h)."""

from __future__ import annotations

import numpy as np

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def act_forward(z: np.ndarray, act: int, alpha: float = 0.0) -> np.ndarray:
    """The ACT_* activation of common.h."""
    if act == 0:
        return z
    if act == 1:
        return np.maximum(z, 0.0)
    if act == 2:
        return np.where(z > 0, z, z * alpha)
    if act == 3:
        return np.where(z > 0, z, alpha * np.expm1(np.minimum(z, 0.0)))
    if act == 4:
        return SELU_SCALE * np.where(z > 0, z, SELU_ALPHA * np.expm1(np.minimum(z, 0.0)))
    if act == 5:
        return 1.0 / (1.0 + np.exp(-z))
    if act == 6:
        return np.tanh(z)
    raise ValueError(f"unknown activation id {act}")


def act_backward(dy: np.ndarray, y: np.ndarray, act: int, alpha: float = 0.0) -> np.ndarray:
    """dL/dz from dL/dy and the activation's output y (as act_backward in common.h)."""
    if act == 0:
        return dy
    if act == 1:
        return np.where(y > 0, dy, 0.0)
    if act == 2:
        return np.where(y > 0, dy, dy * alpha)
    if act == 3:
        return np.where(y > 0, dy, dy * (y + alpha))
    if act == 4:
        return np.where(y > 0, dy * SELU_SCALE, dy * (y + SELU_SCALE * SELU_ALPHA))
    if act == 5:
        return dy * y * (1.0 - y)
    if act == 6:
        return dy * (1.0 - y * y)
    raise ValueError(f"unknown activation id {act}")


def _channel_view(v: np.ndarray | None, ndim: int) -> np.ndarray | None:
    """A per-channel vector shaped to broadcast over [N, C, *]."""
    if v is None:
        return None
    return np.asarray(v, np.float64).reshape((1, -1) + (1,) * (ndim - 2))


def batch_norm_forward(x: np.ndarray, running_mean: np.ndarray | None, running_var: np.ndarray | None,
                       weight: np.ndarray | None = None, bias: np.ndarray | None = None, training: bool = False,
                       momentum: float = 0.1, eps: float = 1e-5, act: int = 0, act_alpha: float = 0.0):
    """(y, mean, invstd, new_running_mean, new_running_var); the running stats are returned, not modified.

    mean/invstd are the batch statistics in training and those of the running estimates in eval.
    """
    x = np.asarray(x, np.float64)
    axes = (0,) + tuple(range(2, x.ndim))
    m = x.size // x.shape[1] if x.shape[1] else 0
    new_rm = None if running_mean is None else np.asarray(running_mean, np.float64).copy()
    new_rv = None if running_var is None else np.asarray(running_var, np.float64).copy()
    if training:
        mean = x.mean(axis=axes)
        var = ((x - _channel_view(mean, x.ndim)) ** 2).mean(axis=axes)
        if new_rm is not None:
            new_rm = (1 - momentum) * new_rm + momentum * mean
            new_rv = (1 - momentum) * new_rv + momentum * var * m / (m - 1)
    else:
        mean = np.asarray(running_mean, np.float64)
        var = np.asarray(running_var, np.float64)
    invstd = 1.0 / np.sqrt(var + eps)
    z = (x - _channel_view(mean, x.ndim)) * _channel_view(invstd, x.ndim)
    if weight is not None:
        z = z * _channel_view(weight, x.ndim)
    if bias is not None:
        z = z + _channel_view(bias, x.ndim)
    return act_forward(z, act, act_alpha), mean, invstd, new_rm, new_rv


def batch_norm_backward(dy: np.ndarray, x: np.ndarray, y: np.ndarray | None, weight: np.ndarray | None,
                        mean: np.ndarray, invstd: np.ndarray, training: bool, act: int = 0,
                        act_alpha: float = 0.0):
    """(dx, dweight, dbias) given the forward's saved mean/invstd (and output y when act != 0)."""
    dy = np.asarray(dy, np.float64)
    x = np.asarray(x, np.float64)
    g = act_backward(dy, None if y is None else np.asarray(y, np.float64), act, act_alpha)
    axes = (0,) + tuple(range(2, x.ndim))
    m = x.size // x.shape[1] if x.shape[1] else 0
    mean_b = _channel_view(mean, x.ndim)
    invstd_b = _channel_view(invstd, x.ndim)
    xhat = (x - mean_b) * invstd_b
    dbias = g.sum(axis=axes)
    dweight = (g * xhat).sum(axis=axes)
    w = np.ones_like(invstd_b) if weight is None else _channel_view(weight, x.ndim)
    if training:
        mean_g = _channel_view(dbias / m, x.ndim)
        mean_gx = _channel_view(dweight / m, x.ndim)
        dx = (g - mean_g - xhat * mean_gx) * invstd_b * w
    else:
        dx = g * invstd_b * w
    return dx, dweight, dbias
