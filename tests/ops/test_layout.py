"""permute / cat / strided_slice: reference vs finite differences, then device vs reference, bad arguments."""

import numpy as np
import pytest

import hetero
from hetero.ops import layout
from hetero.reference import layout as ref
from tests.helpers import assert_close, numeric_grad, shapes

PERMUTES = shapes([((2, 3, 4), (2, 0, 1)), ((2, 3, 4, 5), (0, 2, 3, 1)), ((1, 4, 1, 3), (3, 1, 2, 0)), ((5,), (0,)),
                   ((2, 1, 3, 1, 2, 1, 2, 1, 2), (8, 7, 6, 5, 4, 3, 2, 1, 0)), ((3, 0, 2), (2, 0, 1))],
                  [((2, 3, 4), (2, 0, 1))])


def test_reference_gradients_match_finite_differences(rng):
    x = rng.standard_normal((2, 3, 4))
    w = rng.standard_normal((4, 2, 3))
    assert np.allclose(ref.permute_backward(w, (2, 0, 1)),
                       numeric_grad(lambda v: (ref.permute(v, (2, 0, 1)) * w).sum(), x), atol=1e-6)
    s = (slice(1, None), slice(None, None, -2))
    ws = rng.standard_normal(ref.strided_slice(x, s).shape)
    assert np.allclose(ref.strided_slice_backward(ws, x.shape, s),
                       numeric_grad(lambda v: (ref.strided_slice(v, s) * ws).sum(), x), atol=1e-6)
    y = rng.standard_normal((2, 5, 4))
    wc = rng.standard_normal((2, 8, 4))
    ga, gb = ref.cat_backward(wc, [3, 5], 1)
    assert np.allclose(ga, numeric_grad(lambda v: (ref.cat([v, y], 1) * wc).sum(), x), atol=1e-6)
    assert np.allclose(gb, numeric_grad(lambda v: (ref.cat([x, v], 1) * wc).sum(), y), atol=1e-6)


@pytest.mark.parametrize("shape,dims", PERMUTES)
def test_permute_forward_and_backward_match_reference(dev, shape, dims, rng):
    x = rng.standard_normal(shape).astype(np.float32)
    X = hetero.tensor(x, device=dev, requires_grad=True)
    y = layout.permute(X, dims)
    assert_close(y, ref.permute(x, dims), rtol=0, atol=0, what=f"permute {shape} {dims}")
    g = rng.standard_normal(y.shape).astype(np.float32)
    y.backward(hetero.tensor(g, device=dev))
    assert_close(X.grad, ref.permute_backward(g, dims), rtol=0, atol=0, what=f"permute grad {shape} {dims}")


@pytest.mark.parametrize("shapes_,dim", [([(2, 3, 4), (2, 5, 4)], 1), ([(2, 3), (2, 3), (2, 1)], -1), ([(3,), (4,)], 0),
                                         ([(1, 2, 2, 2), (3, 2, 2, 2)], 0), ([(2, 0, 3), (2, 2, 3)], 1)])
def test_cat_forward_and_backward_match_reference(dev, shapes_, dim, rng):
    xs = [rng.standard_normal(s).astype(np.float32) for s in shapes_]
    Xs = [hetero.tensor(x, device=dev, requires_grad=True) for x in xs]
    y = layout.cat(Xs, dim)
    assert_close(y, ref.cat(xs, dim), rtol=0, atol=0, what=f"cat {shapes_}")
    g = rng.standard_normal(y.shape).astype(np.float32)
    y.backward(hetero.tensor(g, device=dev))
    for X, e in zip(Xs, ref.cat_backward(g, [s[dim] for s in shapes_], dim)):
        assert_close(X.grad, e, rtol=0, atol=0, what=f"cat grad {shapes_}")


def test_cat_gradient_only_where_needed(dev, rng):
    a = hetero.tensor(rng.standard_normal((2, 3)), device=dev, requires_grad=True)
    b = hetero.tensor(rng.standard_normal((2, 2)), device=dev)
    y = layout.cat([a, b], 1)
    y.backward(hetero.ones(y.shape, device=dev))
    assert_close(a.grad, np.ones((2, 3)), rtol=0, atol=0, what="cat grad of the tensor that wants one")
    assert b.grad is None


SLICES = [((6, 5), (slice(1, 4), slice(None, None, 2))), ((6, 5), (slice(None, None, -1),)),
          ((2, 7, 3), (slice(None), slice(-2, -8, -2), slice(1, 2))), ((4, 4), (slice(10, 20),)),
          ((3, 4, 5), (slice(-100, 100), slice(3, 0, -1))), ((8,), (slice(5, 1),))]


@pytest.mark.parametrize("shape,slices", SLICES)
def test_strided_slice_forward_and_backward_match_reference(dev, shape, slices, rng):
    x = rng.standard_normal(shape).astype(np.float32)
    X = hetero.tensor(x, device=dev, requires_grad=True)
    y = layout.strided_slice(X, slices)
    assert_close(y, ref.strided_slice(x, slices), rtol=0, atol=0, what=f"slice {shape} {slices}")
    g = rng.standard_normal(y.shape).astype(np.float32)
    y.backward(hetero.tensor(g, device=dev))
    assert_close(X.grad, ref.strided_slice_backward(g, shape, slices), rtol=0, atol=0,
                 what=f"slice grad {shape} {slices}")


def test_merge_dims_turns_a_concatenation_into_a_short_copy():
    # a (2, 3, 4) part written into a (2, 8, 4) output: rows of 12 contiguous floats, 32 apart
    assert layout.merge_dims((2, 3, 4), (12, 4, 1), (32, 4, 1)) == ([2, 12], [12, 1], [32, 1])
    assert layout.merge_dims((1, 5, 1), (5, 1, 1), (5, 1, 1)) == ([5], [1], [1])


def test_a_compiled_plan_replays_the_copies(dev, rng):
    class Shuffle(hetero.nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = hetero.nn.Parameter(hetero.full((1,), 2.0, device=dev))  # compile finds the device by it

        def forward(self, x):
            a = layout.permute(x * self.scale, (0, 2, 1))
            return layout.cat([a, layout.strided_slice(a, (slice(None), slice(None, None, -1)))], 1)

    run = hetero.compile(Shuffle())
    for _ in range(2):
        x = rng.standard_normal((2, 3, 4)).astype(np.float32)
        a = 2 * x.transpose(0, 2, 1)
        assert_close(run(x), np.concatenate([a, a[:, ::-1]], 1), rtol=0, atol=0, what="compiled shuffle")


def test_bad_arguments_raise_value_error(dev):
    x = hetero.zeros((2, 3), device=dev)
    with pytest.raises(ValueError, match=r"permute: dims \(0, 0\) is not a permutation of the 2 dims"):
        layout.permute(x, (0, 0))
    with pytest.raises(ValueError, match=r"cat: tensors\[1\] \(2, 4, 1\) does not match tensors\[0\] \(2, 3\)"):
        layout.cat([x, hetero.zeros((2, 4, 1), device=dev)], 1)
    with pytest.raises(ValueError, match=r"cat: dim 2 is out of range for tensors of rank 2"):
        layout.cat([x, x], 2)
    with pytest.raises(ValueError, match=r"strided_slice: slice slice\(None, None, 0\) of dim 0 has step 0"):
        layout.strided_slice(x, (slice(None, None, 0),))
    with pytest.raises(ValueError, match=r"strided_slice: 3 slices for a tensor of rank 2"):
        layout.strided_slice(x, (slice(None),) * 3)
    with pytest.raises(ValueError, match=r"permute: expected a float32 tensor"):
        layout.permute(hetero.zeros((2,), dtype=np.int32, device=dev), (0,))
