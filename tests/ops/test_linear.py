"""linear: the float64 reference checked by finite differences, then device forward / backward vs it.

float32 tolerance: |error| <= 1e-5 + 1e-4 * max(1, max|expected|).
"""

import numpy as np
import pytest

import hetero
from hetero.ops.linear import linear
from hetero.reference import linear as ref
from tests.helpers import assert_close, numeric_grad, shapes


@pytest.mark.parametrize("x_shape,out_f,has_bias", [((3, 4), 5, True), ((2, 3, 4), 2, False), ((4,), 3, True)])
def test_reference_gradients_match_finite_differences(rng, x_shape, out_f, has_bias):
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal((out_f, x_shape[-1]))
    b = rng.standard_normal(out_f) if has_bias else None
    g = rng.standard_normal(x_shape[:-1] + (out_f,))
    gx, gw, gb = ref.linear_backward(g, x, w, has_bias)
    assert np.allclose(gx, numeric_grad(lambda v: (ref.linear_forward(v, w, b) * g).sum(), x), atol=1e-6)
    assert np.allclose(gw, numeric_grad(lambda v: (ref.linear_forward(x, v, b) * g).sum(), w), atol=1e-6)
    if has_bias:
        assert np.allclose(gb, numeric_grad(lambda v: (ref.linear_forward(x, w, v) * g).sum(), b), atol=1e-6)


# (input shape, out_features): batch 1, single features, odd sizes across the GEMM tiles, 3-D and 1-D inputs
CASES = shapes(
    [((1, 1), 1), ((1, 7), 3), ((5, 1), 4), ((17, 65), 33), ((64, 100), 10), ((2, 3, 7), 5), ((4,), 6),
     ((31, 129), 47), ((200, 30), 17)],
    [((1, 7), 3), ((2, 3, 7), 5)],
)


@pytest.mark.parametrize("has_bias", [True, False])
@pytest.mark.parametrize("x_shape,out_f", CASES)
def test_forward_and_backward_match_reference(dev, rng, x_shape, out_f, has_bias):
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = rng.standard_normal((out_f, x_shape[-1])).astype(np.float32)
    b = rng.standard_normal(out_f).astype(np.float32) if has_bias else None
    X = hetero.tensor(x, device=dev, requires_grad=True)
    W = hetero.tensor(w, device=dev, requires_grad=True)
    B = hetero.tensor(b, device=dev, requires_grad=True) if has_bias else None
    y = linear(X, W, B)
    assert_close(y, ref.linear_forward(x, w, b), what=f"linear forward {x_shape} -> {out_f}")
    g = rng.standard_normal(y.shape).astype(np.float32)
    y.backward(hetero.tensor(g, device=dev))
    gx, gw, gb = ref.linear_backward(g, x, w, has_bias)
    assert_close(X.grad, gx, what="linear grad input")
    assert_close(W.grad, gw, what="linear grad weight")
    if has_bias:
        assert_close(B.grad, gb, what="linear grad bias")


def test_backward_skips_inputs_without_grad(dev, rng):
    x = rng.standard_normal((6, 5)).astype(np.float32)
    w = rng.standard_normal((3, 5)).astype(np.float32)
    X = hetero.tensor(x, device=dev)
    W = hetero.tensor(w, device=dev, requires_grad=True)
    y = linear(X, W)
    g = np.ones((6, 3), np.float32)
    y.backward(hetero.tensor(g, device=dev))
    assert X.grad is None
    assert_close(W.grad, ref.linear_backward(g, x, w)[1], what="grad weight only")


def test_bad_inputs(dev):
    x = hetero.zeros((2, 4), device=dev)
    with pytest.raises(ValueError, match=r"linear: input \(2, 4\) has 4 features but weight \(3, 5\)"):
        linear(x, hetero.zeros((3, 5), device=dev))
    with pytest.raises(ValueError, match="2-D"):
        linear(x, hetero.zeros((3, 4, 1), device=dev))
    with pytest.raises(ValueError, match="bias"):
        linear(x, hetero.zeros((3, 4), device=dev), hetero.zeros((4,), device=dev))
    with pytest.raises(ValueError, match="float32"):
        linear(hetero.zeros((2, 4), np.int32, device=dev), hetero.zeros((3, 4), device=dev))
    with pytest.raises(ValueError, match="at least 1"):
        linear(hetero.zeros((), device=dev), hetero.zeros((3, 1), device=dev))


def test_zero_rows(dev):
    x = hetero.tensor(np.zeros((0, 5), np.float32), device=dev, requires_grad=True)
    w = hetero.tensor(np.ones((3, 5), np.float32), device=dev, requires_grad=True)
    b = hetero.tensor(np.ones(3, np.float32), device=dev, requires_grad=True)
    y = linear(x, w, b)
    assert y.shape == (0, 3)
    y.backward(hetero.tensor(np.zeros((0, 3), np.float32), device=dev))
    assert x.grad.shape == (0, 5)
    assert_close(w.grad, np.zeros((3, 5)), what="grad weight over no rows")
    assert_close(b.grad, np.zeros(3), what="grad bias over no rows")
