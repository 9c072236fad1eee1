"""matmul (2-D and 3-D, with batch broadcasting): the float64 reference checked by finite differences,
then device forward / backward vs it.

float32 tolerance: |error| <= 1e-5 + 1e-4 * max(1, max|expected|).
"""

import numpy as np
import pytest

import hetero
from hetero.ops.matmul import matmul
from hetero.reference import matmul as ref
from tests.helpers import assert_close, numeric_grad, shapes


@pytest.mark.parametrize("sa,sb", [((3, 4), (4, 2)), ((2, 3, 4), (2, 4, 5)), ((2, 3, 4), (4, 5)),
                                   ((3, 4), (2, 4, 5)), ((1, 3, 4), (3, 4, 2))])
def test_reference_gradients_match_finite_differences(rng, sa, sb):
    a, b = rng.standard_normal(sa), rng.standard_normal(sb)
    g = rng.standard_normal(ref.matmul_forward(a, b).shape)
    ga, gb = ref.matmul_backward(g, a, b)
    assert np.allclose(ga, numeric_grad(lambda v: (ref.matmul_forward(v, b) * g).sum(), a), atol=1e-6)
    assert np.allclose(gb, numeric_grad(lambda v: (ref.matmul_forward(a, v) * g).sum(), b), atol=1e-6)


PAIRS = shapes(
    [((1, 1), (1, 1)), ((17, 65), (65, 33)), ((1, 9), (9, 1)), ((40, 3), (3, 50)),      # 2-D x 2-D
     ((1, 1, 1), (1, 1, 1)), ((3, 7, 13), (3, 13, 5)), ((2, 33, 20), (2, 20, 17)),      # batched
     ((4, 9, 11), (11, 6)), ((2, 30, 40), (40, 19)),                                    # 3-D x 2-D
     ((9, 11), (4, 11, 6)), ((1, 5, 7), (3, 7, 2)), ((3, 5, 7), (1, 7, 2))],           # shared left / batch 1
    [((17, 5), (5, 3)), ((2, 3, 4), (4, 5)), ((3, 4), (2, 4, 5))],
)


@pytest.mark.parametrize("sa,sb", PAIRS)
def test_forward_and_backward_match_reference(dev, rng, sa, sb):
    a = rng.standard_normal(sa).astype(np.float32)
    b = rng.standard_normal(sb).astype(np.float32)
    A = hetero.tensor(a, device=dev, requires_grad=True)
    B = hetero.tensor(b, device=dev, requires_grad=True)
    out = matmul(A, B)
    assert_close(out, ref.matmul_forward(a, b), what=f"matmul forward {sa} @ {sb}")
    g = rng.standard_normal(out.shape).astype(np.float32)
    out.backward(hetero.tensor(g, device=dev))
    ga, gb = ref.matmul_backward(g, a, b)
    assert_close(A.grad, ga, what=f"matmul grad input {sa} @ {sb}")
    assert_close(B.grad, gb, what=f"matmul grad other {sa} @ {sb}")


def test_bad_inputs(dev):
    z = hetero.zeros
    with pytest.raises(ValueError, match=r"matmul: input \(2, 3\) has 3 columns but other \(4, 5\) has 4 rows"):
        matmul(z((2, 3), device=dev), z((4, 5), device=dev))
    with pytest.raises(ValueError, match="2-D or 3-D"):
        matmul(z((3,), device=dev), z((3, 2), device=dev))
    with pytest.raises(ValueError, match="2-D or 3-D"):
        matmul(z((1, 2, 3, 4), device=dev), z((4, 2), device=dev))
    with pytest.raises(ValueError, match="broadcast"):
        matmul(z((2, 3, 4), device=dev), z((3, 4, 5), device=dev))
    with pytest.raises(ValueError, match="float32"):
        matmul(z((2, 3), np.int32, device=dev), z((3, 2), device=dev))


def test_empty_inner_dimension(dev):
    A = hetero.tensor(np.zeros((2, 3, 0), np.float32), device=dev, requires_grad=True)
    B = hetero.tensor(np.zeros((0, 4), np.float32), device=dev, requires_grad=True)
    out = matmul(A, B)
    assert_close(out, np.zeros((2, 3, 4)), what="matmul with k = 0")
    out.backward(hetero.ones((2, 3, 4), device=dev))
    assert A.grad.shape == (2, 3, 0) and B.grad.shape == (0, 4)
