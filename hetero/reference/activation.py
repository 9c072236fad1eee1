"""float64 references of the activations and PReLU, with PyTorch's gradient conventions at x == 0 and NaN."""

from __future__ import annotations

import numpy as np

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0)  # NaN stays NaN, as in torch


def relu_backward(g: np.ndarray, x: np.ndarray) -> np.ndarray:
    return np.where(x <= 0, 0.0, g)  # torch's threshold_backward: a NaN input passes g


def leaky_relu(x: np.ndarray, negative_slope: float = 0.01) -> np.ndarray:
    return np.where(x > 0, x, x * negative_slope)


def leaky_relu_backward(g: np.ndarray, x: np.ndarray, negative_slope: float = 0.01) -> np.ndarray:
    return np.where(x > 0, g, g * negative_slope)


def elu(x: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0.0)))


def elu_backward(g: np.ndarray, x: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    return np.where(x <= 0, g * alpha * np.exp(np.minimum(x, 0.0)), g)  # a NaN input passes g, as in torch


def selu(x: np.ndarray) -> np.ndarray:
    return SELU_SCALE * elu(x, SELU_ALPHA)


def selu_backward(g: np.ndarray, x: np.ndarray) -> np.ndarray:
    return SELU_SCALE * elu_backward(g, x, SELU_ALPHA)


def sigmoid(x: np.ndarray) -> np.ndarray:
    # the two branches avoid overflow in exp for large |x|
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def sigmoid_backward(g: np.ndarray, x: np.ndarray) -> np.ndarray:
    y = sigmoid(x)
    return g * y * (1.0 - y)


def tanh(x: np.ndarray) -> np.ndarray:
    return np.tanh(x)


def tanh_backward(g: np.ndarray, x: np.ndarray) -> np.ndarray:
    return g * (1.0 - np.tanh(x) ** 2)


def _channel_view(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """w broadcast along dim 1 of x (a one-element weight applies everywhere)."""
    if w.size == 1:
        return w.reshape(())
    return w.reshape((1, -1) + (1,) * (x.ndim - 2))


def prelu(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    return np.where(x > 0, x, _channel_view(x, w) * x)


def prelu_backward(g: np.ndarray, x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(dL/dx, dL/dw); dL/dw sums x * g over x <= 0 and every dim but the channel dim."""
    gx = np.where(x > 0, g, _channel_view(x, w) * g)
    contrib = np.where(x > 0, 0.0, x * g)
    if w.size == 1:
        return gx, np.full(w.shape, contrib.sum())
    axes = (0,) + tuple(range(2, x.ndim))
    return gx, contrib.sum(axis=axes).reshape(w.shape)
