"""backward(): the gradient it is given is checked, and a released graph cannot be walked twice."""

import numpy as np
import pytest

import hetero
from hetero.nn import functional as F


def _graph(dev, rng):
    x = hetero.tensor(rng.standard_normal((3, 4)), device=dev, requires_grad=True)
    return x, F.sigmoid(x * x)


@pytest.mark.parametrize("bad, match", [
    (lambda dev: hetero.ones((3, 4), np.int32, dev), "dtype int32"),
    (lambda dev: hetero.ones((4, 3), device=dev), r"shape \(4, 3\)"),
    (lambda dev: hetero.ones((12,), device=dev), r"shape \(12,\)"),
    (lambda dev: np.ones((3, 4), np.float32), "must be a hetero Tensor"),
])
def test_a_wrong_gradient_is_refused(dev, rng, bad, match):
    x, y = _graph(dev, rng)
    with pytest.raises(ValueError, match=match):
        y.backward(bad(dev))
    assert x.grad is None
    y.backward(hetero.ones((3, 4), device=dev))  # the failed call left the graph usable
    assert np.isfinite(x.grad.numpy()).all()


def test_a_gradient_on_another_device_is_refused(dev, rng):
    subs = hetero.select_devices([f"{dev.info.id}/2"]) if dev.info.max_sub_devices >= 2 else []
    if len(subs) < 1 or subs[0] is dev:
        pytest.skip("needs a second device (a sub-device of this one)")
    x, y = _graph(dev, rng)
    with pytest.raises(ValueError, match="gradient is on"):
        y.backward(hetero.ones((3, 4), device=subs[0]))


def test_backward_twice_raises_like_torch(dev, rng):
    x, y = _graph(dev, rng)
    loss = F.relu(y).reshape(-1)
    total = hetero.ones((12,), device=dev)
    loss.backward(total)
    first = x.grad.numpy().copy()
    with pytest.raises(RuntimeError, match="backward through the graph a second time.*retain_graph=True"):
        loss.backward(total)
    assert np.array_equal(x.grad.numpy(), first)  # refused before anything accumulated


def test_retain_graph_allows_a_second_backward(dev, rng):
    x, y = _graph(dev, rng)
    g = hetero.ones((3, 4), device=dev)
    y.backward(g, retain_graph=True)
    first = x.grad.numpy().copy()
    y.backward(g, retain_graph=True)
    np.testing.assert_allclose(x.grad.numpy(), 2 * first, rtol=1e-6)
    y.backward(g)  # the last one may release it
    np.testing.assert_allclose(x.grad.numpy(), 3 * first, rtol=1e-6)
    with pytest.raises(RuntimeError, match="second time"):
        y.backward(g)


def test_two_losses_sharing_a_released_subgraph(dev, rng):
    x, y = _graph(dev, rng)  # y's nodes saved tensors
    a, b = F.relu(y), F.tanh(y)
    a.backward(hetero.ones((3, 4), device=dev))
    with pytest.raises(RuntimeError, match="second time"):
        b.backward(hetero.ones((3, 4), device=dev))


def test_a_graph_that_saved_nothing_can_be_walked_again(dev, rng):
    """As in PyTorch: add keeps no tensors for its backward, so nothing was released."""
    a = hetero.tensor(rng.standard_normal(5), device=dev, requires_grad=True)
    b = hetero.tensor(rng.standard_normal(5), device=dev, requires_grad=True)
    s = a + b
    g = hetero.ones((5,), device=dev)
    s.backward(g)
    s.backward(g)
    np.testing.assert_allclose(a.grad.numpy(), 2 * np.ones(5))
