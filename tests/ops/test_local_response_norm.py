"""local_response_norm: the reference against the written formula and finite differences, then device
forward and backward against the reference (float32 tolerance: assert_close's rtol 1e-4, atol 1e-5)."""

import numpy as np
import pytest

import hetero
from hetero.ops.local_response_norm import local_response_norm
from hetero.reference import local_response_norm as ref
from tests.helpers import assert_close, numeric_grad, shapes

PARAMS = [dict(alpha=1e-4, beta=0.75, k=1.0), dict(alpha=0.5, beta=0.75, k=2.0), dict(alpha=2.0, beta=1.3, k=0.5)]

# (input shape, size): channels 1..96, odd and even sizes, size > C, 3-D and 5-D inputs, 1x1 spatial
CASES = shapes(
    [((2, 1, 3, 4), 5), ((2, 2, 3, 4), 5), ((1, 3, 5, 5), 5), ((2, 7, 3, 5), 5), ((2, 7, 3, 5), 4),
     ((1, 16, 4, 4), 5), ((1, 16, 4, 4), 4), ((2, 32, 1, 1), 5), ((1, 96, 3, 3), 5), ((1, 96, 3, 3), 4),
     ((2, 5, 6, 7), 1), ((2, 5, 6, 7), 2), ((2, 5, 6, 7), 3), ((2, 4, 3, 3), 9), ((3, 6, 10), 5),
     ((2, 5, 2, 3, 2), 4)],
    # reduced: every window size (a define) of the full list, size > C, a 3-D input
    [((1, 7, 3, 5), 5), ((2, 6, 2, 2), 4), ((1, 3, 2, 3), 1), ((1, 5, 2, 2), 2), ((1, 4, 3), 3), ((2, 4, 2, 2), 9)],
)


def _by_formula(x: np.ndarray, size: int, alpha: float, beta: float, k: float) -> np.ndarray:
    """b_c = a_c / (k + alpha / size * sum_{c' in [c - size//2, c + (size-1)//2], 0 <= c' < C} a_c'^2)^beta."""
    out = np.empty_like(x)
    c_count = x.shape[1]
    for c in range(c_count):
        lo, hi = max(c - size // 2, 0), min(c + (size - 1) // 2, c_count - 1)
        s = (x[:, lo:hi + 1] ** 2).sum(axis=1)
        out[:, c] = x[:, c] / (k + alpha / size * s) ** beta
    return out


@pytest.mark.parametrize("shape,size", [((2, 7, 2, 3), 5), ((1, 6, 3), 4), ((2, 3, 2, 2), 1), ((1, 4, 2), 8)])
def test_reference_matches_the_formula(shape, size, rng):
    x = rng.standard_normal(shape) * 2
    for p in PARAMS:
        assert np.allclose(ref.local_response_norm(x, size, **p), _by_formula(x, size, **p), rtol=1e-12)


def test_reference_hand_value():
    # C = 3, size = 2: channel 1's window is channels [0, 1] (size//2 = 1 before, (size-1)//2 = 0 after)
    x = np.array([1.0, 2.0, 3.0]).reshape(1, 3, 1)
    y = ref.local_response_norm(x, 2, alpha=1.0, beta=1.0, k=1.0)
    assert np.allclose(y.ravel(), [1 / (1 + 1 / 2), 2 / (1 + 5 / 2), 3 / (1 + 13 / 2)])


@pytest.mark.parametrize("shape,size", [((2, 7, 2, 3), 5), ((1, 6, 3), 4), ((1, 5, 2, 2), 2), ((1, 3, 2), 6),
                                        ((1, 4, 1, 2, 2), 3)])
@pytest.mark.parametrize("p", PARAMS[1:])
def test_reference_gradient_matches_finite_differences(shape, size, p, rng):
    x = rng.standard_normal(shape)
    w = rng.standard_normal(shape)
    num = numeric_grad(lambda v: (ref.local_response_norm(v, size, **p) * w).sum(), x)
    assert np.allclose(ref.local_response_norm_backward(w, x, size, **p), num, atol=1e-7)


@pytest.mark.parametrize("shape,size", CASES)
@pytest.mark.parametrize("pi", range(len(PARAMS)))
def test_forward_and_backward_match_reference(dev, shape, size, pi, rng):
    p = PARAMS[pi]
    x = (rng.standard_normal(shape) * 2).astype(np.float32)
    X = hetero.tensor(x, device=dev, requires_grad=True)
    y = local_response_norm(X, size, **p)
    x64 = x.astype(np.float64)
    assert_close(y, ref.local_response_norm(x64, size, **p), what=f"lrn forward {shape} size={size} {p}")
    g = rng.standard_normal(shape).astype(np.float32)
    y.backward(hetero.tensor(g, device=dev))
    expected = ref.local_response_norm_backward(g.astype(np.float64), x64, size, **p)
    assert_close(X.grad, expected, what=f"lrn backward {shape} size={size} {p}")


def test_inference_without_grad(dev, rng):
    x = rng.standard_normal((2, 8, 3, 3)).astype(np.float32)
    y = local_response_norm(hetero.tensor(x, device=dev), 5, alpha=0.5, k=2.0)
    assert not y.requires_grad
    assert_close(y, ref.local_response_norm(x.astype(np.float64), 5, alpha=0.5, k=2.0), what="lrn inference")


def test_bad_inputs_raise_value_error(dev):
    x = hetero.zeros((2, 4, 3, 3), device=dev)
    with pytest.raises(ValueError, match=r"local_response_norm: input \(2, 4\) must have 3 or more dimensions"):
        local_response_norm(hetero.zeros((2, 4), device=dev), 3)
    with pytest.raises(ValueError, match=r"local_response_norm: input \(2, 4, 3, 3\) must be float32"):
        local_response_norm(hetero.tensor(np.zeros((2, 4, 3, 3), np.int32), device=dev), 3)
    with pytest.raises(ValueError, match="local_response_norm: size must be a positive int, got 0"):
        local_response_norm(x, 0)
    with pytest.raises(ValueError, match="local_response_norm: size must be a positive int"):
        local_response_norm(x, 2.5)
    with pytest.raises(ValueError, match="local_response_norm: beta must be a finite number"):
        local_response_norm(x, 3, beta=float("nan"))
    with pytest.raises(ValueError, match="local_response_norm: input must be a hetero Tensor"):
        local_response_norm(np.zeros((2, 4, 3, 3), np.float32), 3)
