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


class _TwoHeads(hetero.nn.Module):
    """A model with two outputs, as an imported ONNX graph may have."""

    def __init__(self, dev):
        super().__init__()
        self.body = _lenet(dev)

    def forward(self, x):
        y = self.body(x)
        return y, F.relu(y)


def test_compiled_inference_with_several_outputs(dev):
    model = _TwoHeads(dev).eval()
    run = hetero.compile(model)
    for x, _ in _batches(2, batch=3):
        with hetero.no_grad():
            want = [t.numpy() for t in model(hetero.tensor(x, device=dev))]
        got = run(x)
        assert isinstance(got, tuple) and len(got) == 2
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g.numpy(), w)
    assert run.num_plans == 1


def test_one_inference_asks_pyopencl_for_the_least(dev):
    """A replayed batch-1 inference: one upload, its launches, one blocking read; no argument setting, no finish."""
    from hetero.bench.latency import count_calls

    model = _lenet(dev).eval()
    run = hetero.compile(model)
    x = _batches(1, batch=1)[0][0]
    run(x).numpy()  # traced
    run(x).numpy()  # the first replay sets every launch's arguments, once
    (plan,) = run.plans()
    with count_calls() as counts:
        for _ in range(3):
            run(x).numpy()
    assert counts["enqueue_nd_range_kernel"] == 3 * len(plan.launches)
    assert counts["write"] == 3 and counts["read"] == 3
    for name in ("set_args", "set_arg", "finish", "wait", "enqueue_copy"):
        assert counts[name] == 0, (name, counts)


def test_launches_with_typed_python_scalars_are_set_at_each_replay(dev):
    """A kernel whose scalar types were declared takes Python numbers; a plan's own untyped copy of it cannot, so
    such a launch keeps the shared kernel and sets its arguments at every replay (others may have changed them)."""
    from hetero.graph import Plan

    kern = dev.kernel("fill.cl", "fill_f32")
    typed = type(kern)(kern.program, kern.function_name)
    typed.set_scalar_arg_dtypes([None, np.float32, np.int32])
    out = hetero.empty((16,), device=dev)
    plan = Plan(dev, [])
    plan.launches = [(typed, (16,), None, (out.buffer, 5.0, 16))]
    plan.replay()
    np.testing.assert_array_equal(out.numpy(), np.full(16, 5, np.float32))
    dev.launch(typed, (16,), None, out, 7.0, 16)  # the shared kernel now holds other arguments
    np.testing.assert_array_equal(out.numpy(), np.full(16, 7, np.float32))
    plan.replay()
    np.testing.assert_array_equal(out.numpy(), np.full(16, 5, np.float32))
    assert plan.launch_sizes() == [(typed, (16,), None)]


def test_replay_on_another_queue_gives_each_launch_an_event(dev):
    import pyopencl as cl

    model = _lenet(dev).eval()
    run = hetero.compile(model)
    x = _batches(1, batch=2)[0][0]
    want = run(x).numpy()
    (plan,) = run.plans()
    queue = cl.CommandQueue(dev.context, dev.cl_device)
    events = plan.replay_on(queue)
    queue.finish()
    assert len(events) == len(plan.launches) == len(plan.launch_sizes())
    assert all(e.command_execution_status == cl.command_execution_status.COMPLETE for e in events)
    np.testing.assert_array_equal(plan.output.numpy(), want)
