"""add / mul with broadcasting, reshape and flatten: device vs the float64 reference."""

import numpy as np
import pytest

import hetero
from hetero.ops.elementwise import add, flatten, mul, reshape
from hetero.reference import elementwise as ref
from tests.helpers import assert_close, numeric_grad, shapes

PAIRS = shapes(
    [((5,), (5,)), ((2, 3, 4), (2, 3, 4)), ((2, 3, 4), (4,)), ((2, 3, 4), (3, 1)), ((1, 3, 1, 5), (2, 1, 7, 1)),
     ((7, 1), (1, 9)), ((), (3, 2)), ((4, 1, 1), ()), ((1, 1, 1, 1, 1, 2), (3, 1))],
    [((2, 3), (3,)), ((2, 1), (1, 3))],
)


@pytest.mark.parametrize("sa,sb", PAIRS)
def test_reference_gradients_match_finite_differences(sa, sb, rng):
    a, b = rng.standard_normal(sa), rng.standard_normal(sb)
    w = rng.standard_normal(np.broadcast_shapes(sa, sb))
    ga, gb = ref.mul_backward(w, a, b)
    assert np.allclose(ga, numeric_grad(lambda x: (ref.mul(x, b) * w).sum(), a), atol=1e-6)
    assert np.allclose(gb, numeric_grad(lambda x: (ref.mul(a, x) * w).sum(), b), atol=1e-6)
    ga, gb = ref.add_backward(w, sa, sb)
    assert np.allclose(gb, numeric_grad(lambda x: (ref.add(a, x) * w).sum(), b), atol=1e-6)


@pytest.mark.parametrize("op", ["add", "mul"])
@pytest.mark.parametrize("sa,sb", PAIRS)
def test_forward_and_backward_match_reference(dev, op, sa, sb, rng):
    a = rng.standard_normal(sa).astype(np.float32)
    b = rng.standard_normal(sb).astype(np.float32)
    A = hetero.tensor(a, device=dev, requires_grad=True)
    B = hetero.tensor(b, device=dev, requires_grad=True)
    out = (add if op == "add" else mul)(A, B)
    expected = getattr(ref, op)(a.astype(np.float64), b.astype(np.float64))
    assert_close(out, expected, what=f"{op} forward")
    g = rng.standard_normal(out.shape).astype(np.float32)
    out.backward(hetero.tensor(g, device=dev))
    if op == "add":
        ga, gb = ref.add_backward(g.astype(np.float64), sa, sb)
    else:
        ga, gb = ref.mul_backward(g.astype(np.float64), a.astype(np.float64), b.astype(np.float64))
    assert_close(A.grad, ga, what=f"{op} grad a")
    assert_close(B.grad, gb, what=f"{op} grad b")


def test_tensor_used_twice_accumulates_gradient(dev, rng):
    a = rng.standard_normal((3, 4)).astype(np.float32)
    A = hetero.tensor(a, device=dev, requires_grad=True)
    y = A * A + A  # dy/da = 2a + 1
    y.backward(hetero.ones(y.shape, device=dev))
    assert_close(A.grad, 2 * a.astype(np.float64) + 1, what="residual-style accumulation")


def test_scalar_operand(dev):
    A = hetero.tensor(np.arange(6, dtype=np.float32).reshape(2, 3), device=dev)
    assert_close(2.0 * A + 1, 2 * np.arange(6).reshape(2, 3) + 1.0, what="scalar ops")


def test_reshape_and_flatten_share_storage_and_route_gradients(dev, rng):
    a = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    A = hetero.tensor(a, device=dev, requires_grad=True)
    f = flatten(A, 1)
    assert f.shape == (2, 60) and f.storage is A.storage
    r = reshape(f, (-1, 4))
    assert r.shape == (30, 4)
    w = rng.standard_normal(r.shape).astype(np.float32)
    (r * hetero.tensor(w, device=dev)).backward(hetero.ones(r.shape, device=dev))
    assert_close(A.grad, w.reshape(a.shape), what="reshape grad")
    assert A.flatten().shape == (120,) and A.reshape(6, 20).shape == (6, 20)


def test_bad_inputs_raise_value_error(dev):
    a = hetero.zeros((2, 3), device=dev)
    with pytest.raises(ValueError, match=r"add: shapes \(2, 3\) and \(4,\) cannot be broadcast"):
        add(a, hetero.zeros((4,), device=dev))
    with pytest.raises(ValueError, match="mul: expected float32"):
        mul(a, hetero.tensor(np.zeros((2, 3), np.int32), device=dev))
    with pytest.raises(ValueError, match="cannot reshape"):
        reshape(a, (4, 2))
    with pytest.raises(ValueError, match="only one dimension can be -1"):
        reshape(a, (-1, -1))


@pytest.mark.parametrize("op", ["add", "mul"])
@pytest.mark.parametrize("sa,sb", shapes([((2, 3, 4), (2, 3, 4)), ((2, 3, 4), (3, 1)), ((1, 3, 1, 5), (2, 1, 7, 1))],
                                         [((2, 3), (3,))]))
def test_long_index_kernels_match_reference(dev, monkeypatch, op, sa, sb, rng):
    """The 64-bit variant (LONG_INDEX=1, chosen past 2^31 - 1 elements) forced on small tensors."""
    from hetero.ops import accumulate, elementwise

    for module in (accumulate, elementwise):
        monkeypatch.setattr(module, "long_index", lambda elements: True)
    a = rng.standard_normal(sa).astype(np.float32)
    b = rng.standard_normal(sb).astype(np.float32)
    A = hetero.tensor(a, device=dev, requires_grad=True)
    B = hetero.tensor(b, device=dev, requires_grad=True)
    out = (add if op == "add" else mul)(A, B)
    assert_close(out, getattr(ref, op)(a.astype(np.float64), b.astype(np.float64)), what=f"{op} forward, long")
    g = rng.standard_normal(out.shape).astype(np.float32)
    out.backward(hetero.tensor(g, device=dev))
    if op == "add":
        ga, gb = ref.add_backward(g.astype(np.float64), sa, sb)
    else:
        ga, gb = ref.mul_backward(g.astype(np.float64), a.astype(np.float64), b.astype(np.float64))
    assert_close(A.grad, ga, what=f"{op} grad a, long")
    assert_close(B.grad, gb, what=f"{op} grad b, long")
    C = hetero.tensor(a, device=dev)
    assert_close(accumulate.accumulate(C, C), 2 * a.astype(np.float64), what="accumulate, long")
