"""clamp / reciprocal: reference vs finite differences, device vs reference, NaN and bad arguments."""

import numpy as np
import pytest

import hetero
from hetero.ops import pointwise
from hetero.reference import pointwise as ref
from tests.helpers import assert_close, numeric_grad


def test_reference_gradients_match_finite_differences(rng):
    x = rng.uniform(0.5, 2.0, (3, 4)) * np.sign(rng.standard_normal((3, 4)))
    w = rng.standard_normal(x.shape)
    assert np.allclose(ref.reciprocal_backward(w, x), numeric_grad(lambda v: (ref.reciprocal(v) * w).sum(), x),
                       atol=1e-5)
    x = rng.standard_normal((3, 4))
    assert np.allclose(ref.clamp_backward(w, x, -0.5, 0.7),
                       numeric_grad(lambda v: (ref.clamp(v, -0.5, 0.7) * w).sum(), x), atol=1e-6)


@pytest.mark.parametrize("lo,hi", [(-0.5, 0.7), (None, 0.2), (-0.1, None), (1.0, -1.0)])
def test_clamp_forward_and_backward_match_reference(dev, lo, hi, rng):
    x = rng.standard_normal((4, 33)).astype(np.float32)
    X = hetero.tensor(x, device=dev, requires_grad=True)
    y = pointwise.clamp(X, lo, hi)
    bounds = (-np.inf if lo is None else lo, np.inf if hi is None else hi)
    assert_close(y, ref.clamp(x, *bounds), rtol=0, atol=0, what=f"clamp {lo} {hi}")
    g = rng.standard_normal(x.shape).astype(np.float32)
    y.backward(hetero.tensor(g, device=dev))
    assert_close(X.grad, ref.clamp_backward(g, x, *bounds), rtol=0, atol=0, what=f"clamp grad {lo} {hi}")


def test_clamp_keeps_nan(dev):
    y = pointwise.clamp(hetero.tensor(np.array([np.nan, 2.0, -2.0], np.float32), device=dev), -1.0, 1.0).numpy()
    assert np.isnan(y[0]) and y[1] == 1.0 and y[2] == -1.0


def test_reciprocal_forward_and_backward_match_reference(dev, rng):
    x = (rng.uniform(0.3, 3.0, (5, 7)) * np.sign(rng.standard_normal((5, 7)))).astype(np.float32)
    X = hetero.tensor(x, device=dev, requires_grad=True)
    y = pointwise.reciprocal(X)
    assert_close(y, ref.reciprocal(x.astype(np.float64)), rtol=1e-6, atol=1e-6, what="reciprocal")
    g = rng.standard_normal(x.shape).astype(np.float32)
    y.backward(hetero.tensor(g, device=dev))
    assert_close(X.grad, ref.reciprocal_backward(g.astype(np.float64), x.astype(np.float64)), rtol=1e-5, atol=1e-5,
                 what="reciprocal grad")


def test_reciprocal_of_zero_is_inf(dev):
    y = pointwise.reciprocal(hetero.tensor(np.array([0.0, -0.0], np.float32), device=dev)).numpy()
    assert y[0] == np.inf and y[1] == -np.inf


def test_bad_arguments_raise_value_error(dev):
    x = hetero.zeros((2,), device=dev)
    with pytest.raises(ValueError, match=r"clamp: at least one of min and max must be given"):
        pointwise.clamp(x)
    with pytest.raises(ValueError, match=r"clamp: min must be a number, got 'a'"):
        pointwise.clamp(x, "a")
    with pytest.raises(ValueError, match=r"reciprocal: expected a float32 tensor"):
        pointwise.reciprocal(hetero.zeros((2,), dtype=np.int32, device=dev))


def test_reciprocal_output_is_freed_by_reference_counting(dev, rng):
    """reciprocal saves its output for backward: detached, so no out -> grad_fn -> ctx -> out cycle."""
    import gc
    import weakref

    x = hetero.tensor(rng.uniform(1.0, 2.0, (3, 4)), device=dev, requires_grad=True)
    gc.collect()
    gc.disable()
    try:
        y = pointwise.reciprocal(x)
        y.backward(hetero.ones(y.shape, device=dev))
        ref = weakref.ref(y)
        del y
        assert ref() is None, "reciprocal's output is kept alive by a reference cycle"
    finally:
        gc.enable()
