"""The graph executor: a compiled step gives the eager loop's numbers, reuses memory, retraces on new shapes."""

import numpy as np
import pytest

import hetero
import hetero.nn.functional as F
from hetero import models, optim
from hetero.nn import init


def _lenet(dev):
    init.manual_seed(0)
    return models.lenet5().to(dev)


def _batches(n, batch=8, seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((batch, 1, 28, 28)).astype(np.float32),
             rng.integers(0, 10, batch).astype(np.int32)) for _ in range(n)]


def _train(dev, compiled, batches, lr_change_at=2):
    model = _lenet(dev)
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    step = hetero.compile_step(model, F.cross_entropy, opt) if compiled else None
    losses = []
    for i, (x, y) in enumerate(batches):
        if i == lr_change_at:
            opt.param_groups[0]["lr"] = 0.01  # as a scheduler would
        if compiled:
            losses.append(step(x, y).item())
        else:
            opt.zero_grad()
            loss = F.cross_entropy(model(hetero.tensor(x, device=dev)), hetero.tensor(y, device=dev))
            loss.backward()
            opt.step()
            losses.append(loss.item())
    return losses, {k: v.numpy() for k, v in model.state_dict().items()}, step


def test_compiled_step_equals_eager_loop(dev):
    batches = _batches(4)
    eager_losses, eager_state, _ = _train(dev, False, batches)
    comp_losses, comp_state, step = _train(dev, True, batches)
    assert step.num_plans == 1
    np.testing.assert_array_equal(comp_losses, eager_losses)
    for k in eager_state:
        np.testing.assert_array_equal(comp_state[k], eager_state[k], err_msg=k)


def test_new_input_shape_retraces(dev):
    batches = _batches(2) + _batches(2, batch=5, seed=1)
    eager_losses, eager_state, _ = _train(dev, False, batches, lr_change_at=-1)
    comp_losses, comp_state, step = _train(dev, True, batches, lr_change_at=-1)
    assert step.num_plans == 2
    np.testing.assert_allclose(comp_losses, eager_losses, rtol=0, atol=0)
    for k in eager_state:
        np.testing.assert_array_equal(comp_state[k], eager_state[k], err_msg=k)


def test_intermediates_share_memory(dev):
    model = _lenet(dev)
    step = hetero.compile_step(model, F.cross_entropy, optim.SGD(model.parameters(), lr=0.1))
    x, y = _batches(1, batch=16)[0]
    loss = step(x, y)
    assert isinstance(loss, hetero.Tensor) and loss.device is dev  # a device tensor; reading it is our choice
    (plan,) = step.plans()
    # intermediates whose lifetimes do not overlap share buffers: well under half the unshared total
    assert 0 < plan.temp_bytes < 0.5 * plan.unshared_bytes


def test_compiled_inference_equals_eager(dev):
    model = _lenet(dev).eval()
    run = hetero.compile(model)
    for x, _ in _batches(3):
        with hetero.no_grad():
            expected = model(hetero.tensor(x, device=dev)).numpy()
        np.testing.assert_array_equal(run(x).numpy(), expected)


def test_host_read_inside_a_traced_step_is_an_error(dev):
    model = _lenet(dev)
    opt = optim.SGD(model.parameters(), lr=0.1)

    def bad_loss(out, y):
        loss = F.cross_entropy(out, y)
        loss.item()
        return loss

    step = hetero.compile_step(model, bad_loss, opt)
    x, y = _batches(1)[0]
    with pytest.raises(hetero.HeteroError, match="host read"):
        step(x, y)
