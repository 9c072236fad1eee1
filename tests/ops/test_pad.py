"""pad: reference vs finite differences, device vs reference in every mode (negative pads too), bad arguments."""

import numpy as np
import pytest

import hetero
from hetero.ops import pad as padding
from hetero.reference import pad as ref
from tests.helpers import assert_close, numeric_grad

CASES = [((2, 3, 4, 5), (1, 2, 0, 3)), ((2, 3, 4, 5), (2, 2, 3, 3)), ((2, 4, 5), (1, 1, 0, 0, 1, 1)),
         ((3, 4, 5), (4, 2, 1, 3, 1, 0)), ((1, 1, 2, 2), (1, 1, 1, 1))]


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate"])
def test_reference_gradient_matches_finite_differences(mode, rng):
    x = rng.standard_normal((3, 4))
    pads = (2, 1, 1, 2)
    w = rng.standard_normal(ref.pad(x, pads, mode).shape)
    num = numeric_grad(lambda v: (ref.pad(v, pads, mode, 0.5) * w).sum(), x)
    assert np.allclose(ref.pad_backward(w, x.shape, pads, mode), num, atol=1e-6)


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate"])
@pytest.mark.parametrize("shape,pads", CASES)
def test_forward_and_backward_match_reference(dev, shape, pads, mode, rng):
    if mode == "reflect" and any(p >= n for p, n in zip(pads, [d for d in reversed(shape) for _ in (0, 1)])):
        pytest.skip("reflect pads must be smaller than the dim")
    x = rng.standard_normal(shape).astype(np.float32)
    X = hetero.tensor(x, device=dev, requires_grad=True)
    y = padding.pad(X, pads, mode, value=-1.5)
    assert_close(y, ref.pad(x, pads, mode, -1.5), rtol=0, atol=0, what=f"{mode} pad {shape} {pads}")
    g = rng.standard_normal(y.shape).astype(np.float32)
    y.backward(hetero.tensor(g, device=dev))
    assert_close(X.grad, ref.pad_backward(g.astype(np.float64), shape, pads, mode), rtol=1e-6, atol=1e-6,
                 what=f"{mode} pad grad {shape} {pads}")


@pytest.mark.parametrize("pads", [(-1, 2, 0, -2), (-3, -1), (1, -2, -1, 0, 2, 1)])
def test_negative_constant_pads_crop(dev, pads, rng):
    x = rng.standard_normal((2, 4, 5)).astype(np.float32)
    X = hetero.tensor(x, device=dev, requires_grad=True)
    y = padding.pad(X, pads, value=float("-inf"))
    np.testing.assert_array_equal(y.numpy(), ref.pad(x, pads, "constant", -np.inf))  # -inf: assert_close has NaN
    g = rng.standard_normal(y.shape).astype(np.float32)
    y.backward(hetero.tensor(g, device=dev))
    assert_close(X.grad, ref.pad_backward(g, x.shape, pads), rtol=0, atol=0, what=f"pad grad {pads}")


def test_a_compiled_plan_replays_the_pad(dev, rng):
    class Pad(hetero.nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = hetero.nn.Parameter(hetero.full((1,), 2.0, device=dev))  # compile finds the device by it

        def forward(self, x):
            return padding.pad(x * self.scale, (1, 2), "reflect")

    run = hetero.compile(Pad())
    for _ in range(2):
        x = rng.standard_normal((2, 5)).astype(np.float32)
        assert_close(run(x), np.pad(2 * x, ((0, 0), (1, 2)), mode="reflect"), rtol=0, atol=0, what="compiled pad")


def test_bad_arguments_raise_value_error(dev):
    x = hetero.zeros((2, 3), device=dev)
    with pytest.raises(ValueError, match=r"pad: reflect pads \(3, 0\) of dim 1 must be smaller than its size 3"):
        padding.pad(x, (3, 0), "reflect")
    with pytest.raises(ValueError, match=r"pad: replicate padding takes no negative pads"):
        padding.pad(x, (-1, 0), "replicate")
    with pytest.raises(ValueError, match=r"pad: pad must be a sequence of an even number of ints"):
        padding.pad(x, (1,))
    with pytest.raises(ValueError, match=r"pad: mode must be one of constant, reflect, replicate, got 'wrap'"):
        padding.pad(x, (1, 1), "wrap")
    with pytest.raises(ValueError, match=r"pad: pad \(-2, -2\) of dim 1 leaves a negative size"):
        padding.pad(x, (-2, -2))
