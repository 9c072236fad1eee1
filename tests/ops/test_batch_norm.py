"""batch_norm: float64 reference checked by finite differences (and against torch when installed), then the
device forward, backward and running statistics against the reference."""

from __future__ import annotations

import numpy as np
import pyopencl as cl
import pytest

import hetero
from hetero.ops import batch_norm as bn_ops
from hetero.ops.batch_norm import batch_norm, batch_norm_backward, batch_norm_forward
from hetero.reference import batch_norm as ref
from tests.helpers import assert_close, numeric_grad, recorded_launches, shapes

# float32 tolerances against the float64 reference (|err| <= ATOL + RTOL * max(max|expected|, 1)).
RTOL, ATOL = 1e-4, 1e-5
STAT_TOL = 2e-6  # saved mean / inv-std and running statistics: a few float32 ulps


def _data(rng, shape, offset=0.5, scale=2.0):
    """Input, per-channel weight/bias/running stats (float32) for an [N, C, *] shape."""
    c = shape[1]
    x = (offset + scale * rng.standard_normal(shape)).astype(np.float32)
    w = rng.uniform(0.5, 1.5, c).astype(np.float32) * rng.choice([-1, 1], c).astype(np.float32)
    b = rng.standard_normal(c).astype(np.float32)
    rm = rng.standard_normal(c).astype(np.float32)
    rv = rng.uniform(0.5, 2.0, c).astype(np.float32)
    return x, w, b, rm, rv


def _on(dev, *arrays):
    return [None if a is None else hetero.tensor(a, device=dev) for a in arrays]


# --- the reference ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape,act", [((3, 2), 0), ((2, 3, 2, 2), 0), ((2, 2, 3), 2), ((3, 2, 2), 3),
                                       ((2, 2, 2, 2), 4), ((4, 2), 5), ((2, 3, 2), 6)])
def test_reference_backward_matches_finite_differences(rng, shape, act, training):
    x, w, b, rm, rv = (a.astype(np.float64) for a in _data(rng, shape))
    g = rng.standard_normal(shape)
    alpha = 0.3

    def loss(x_, w_, b_):
        y = ref.batch_norm_forward(x_, rm, rv, w_, b_, training, 0.1, 1e-3, act, alpha)[0]
        return float((g * y).sum())

    y, mean, invstd, _, _ = ref.batch_norm_forward(x, rm, rv, w, b, training, 0.1, 1e-3, act, alpha)
    dx, dw, db = ref.batch_norm_backward(g, x, y, w, mean, invstd, training, act, alpha)
    np.testing.assert_allclose(dx, numeric_grad(lambda v: loss(v, w, b), x), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(dw, numeric_grad(lambda v: loss(x, v, b), w), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(db, numeric_grad(lambda v: loss(x, w, v), b), rtol=1e-5, atol=1e-7)


def test_reference_without_weight_matches_finite_differences(rng):
    x = rng.standard_normal((3, 2, 2))
    g = rng.standard_normal(x.shape)
    y, mean, invstd, _, _ = ref.batch_norm_forward(x, None, None, None, None, True)
    dx, _, _ = ref.batch_norm_backward(g, x, y, None, mean, invstd, True)
    num = numeric_grad(lambda v: float((g * ref.batch_norm_forward(v, None, None, training=True)[0]).sum()), x)
    np.testing.assert_allclose(dx, num, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("training", [True, False])
def test_reference_matches_torch(rng, training):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x, w, b, rm, rv = (a.astype(np.float64) for a in _data(rng, (4, 3, 5, 2)))
    g = rng.standard_normal(x.shape)
    y, mean, invstd, new_rm, new_rv = ref.batch_norm_forward(x, rm, rv, w, b, training, 0.3, 1e-3)
    dx, dw, db = ref.batch_norm_backward(g, x, y, w, mean, invstd, training)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    trm, trv = torch.tensor(rm), torch.tensor(rv)
    ty = F.batch_norm(tx, trm, trv, tw, tb, training, 0.3, 1e-3)
    ty.backward(torch.tensor(g))
    for name, ours, theirs in (("y", y, ty), ("running_mean", new_rm, trm), ("running_var", new_rv, trv),
                               ("dx", dx, tx.grad), ("dweight", dw, tw.grad), ("dbias", db, tb.grad)):
        np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-10, atol=1e-12, err_msg=name)


# --- device vs reference ------------------------------------------------------------------------------------

FULL_SHAPES = [
    (2, 1), (2, 3), (5, 17), (8, 64), (300, 5),                  # [N, C]
    (2, 3, 1, 1), (7, 64, 1, 1), (1, 5, 3, 3), (1, 1, 17, 19),   # 1x1 spatial with N > 1, batch 1
    (3, 7, 5, 5), (5, 16, 7, 9), (4, 33, 13, 11), (2, 8, 32, 33), (2, 3, 50, 61),  # last: rows split in chunks
    (2, 4, 6), (2, 3, 2, 2, 3),                                  # [N, C, L] and [N, C, D, H, W]
]
REDUCED_SHAPES = [(2, 3), (3, 2, 1, 1), (2, 3, 4, 5)]


def _check_step(dev, rng, shape, training, momentum=0.1, eps=1e-5, affine=(True, True), offset=0.5):
    x, w, b, rm, rv = _data(rng, shape, offset=offset)
    w = w if affine[0] else None
    b = b if affine[1] else None
    tx, tw, tb, trm, trv = _on(dev, x, w, b, rm, rv)
    for t in (tx, tw, tb):
        if t is not None:
            t.requires_grad = True
    y = batch_norm(tx, trm, trv, tw, tb, training, momentum, eps)
    ry, mean, invstd, new_rm, new_rv = ref.batch_norm_forward(x, rm, rv, w, b, training, momentum, eps)
    what = f"{shape} training={training}"
    assert_close(y, ry, RTOL, ATOL, f"y {what}")
    assert_close(trm, new_rm, STAT_TOL, STAT_TOL, f"running_mean {what}")
    assert_close(trv, new_rv, STAT_TOL, STAT_TOL, f"running_var {what}")

    g = rng.standard_normal(shape).astype(np.float32)
    node = y.grad_fn
    dx, _, _, dw, db = node.fn.backward(node.ctx, hetero.tensor(g, device=dev))[:5]
    rdx, rdw, rdb = ref.batch_norm_backward(g, x, None, w, mean, invstd, training)
    assert_close(dx, rdx, RTOL, ATOL, f"dx {what}")
    if w is not None:
        assert_close(dw, rdw, RTOL, ATOL, f"dweight {what}")
    else:
        assert dw is None
    if b is not None:
        assert_close(db, rdb, RTOL, ATOL, f"dbias {what}")
    else:
        assert db is None


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", shapes(FULL_SHAPES, REDUCED_SHAPES))
def test_forward_backward_vs_reference(dev, rng, shape, training):
    _check_step(dev, rng, shape, training)


@pytest.mark.parametrize("affine", [(False, False), (False, True), (True, False)])
@pytest.mark.parametrize("training", [True, False])
def test_without_weight_or_bias(dev, rng, affine, training):
    _check_step(dev, rng, (3, 5, 4, 3), training, affine=affine)


@pytest.mark.parametrize("eps,momentum", [(1e-5, 0.0), (1e-3, 0.1), (0.1, 0.5), (1e-5, 1.0), (2.0, 0.9)])
def test_eps_and_momentum(dev, rng, eps, momentum):
    _check_step(dev, rng, (4, 6, 3, 5), True, momentum=momentum, eps=eps)
    _check_step(dev, rng, (4, 6, 3, 5), False, momentum=momentum, eps=eps)


def test_large_mean_keeps_variance_precise(dev, rng):
    """Mean 1000 and std 1: E[x^2] - E[x]^2 in float32 would lose the variance; two-pass keeps it."""
    shape = (8, 4, 16, 16)
    x, _, _, rm, rv = _data(rng, shape, offset=1000.0, scale=1.0)
    tx, trm, trv = _on(dev, x, rm, rv)
    y, save_mean, save_invstd = batch_norm_forward(tx, trm, trv, None, None, True, 0.5)
    ry, mean, invstd, new_rm, new_rv = ref.batch_norm_forward(x, rm, rv, None, None, True, 0.5)
    assert_close(save_mean, mean, 1e-6, 0, "save_mean")
    assert_close(save_invstd, invstd, 1e-5, 0, "save_invstd")
    assert_close(trv, new_rv, 1e-5, 0, "running_var")
    assert_close(y, ry, 1e-3, 0, "y")  # x itself only has ~6e-5 resolution at 1000


def test_running_stats_after_several_steps(dev, rng):
    shape = (6, 5, 4, 3)
    _, _, _, rm, rv = _data(rng, shape)
    trm, trv = _on(dev, rm, rv)
    rm64, rv64 = rm.astype(np.float64), rv.astype(np.float64)
    for step in range(6):
        x = (rng.standard_normal(shape) * (1 + step) + step).astype(np.float32)
        batch_norm(hetero.tensor(x, device=dev), trm, trv, None, None, True, 0.2)
        _, _, _, rm64, rv64 = ref.batch_norm_forward(x, rm64, rv64, None, None, True, 0.2)
    assert_close(trm, rm64, STAT_TOL, STAT_TOL, "running_mean")
    assert_close(trv, rv64, STAT_TOL, STAT_TOL, "running_var")
    # eval mode then uses exactly these statistics
    x, w, b, _, _ = _data(rng, shape)
    y = batch_norm(*_on(dev, x), trm, trv, *_on(dev, w, b), training=False)
    assert_close(y, ref.batch_norm_forward(x, trm.numpy(), trv.numpy(), w, b, False)[0], RTOL, ATOL, "eval y")


def test_cumulative_average_with_device_counter(dev, rng):
    """momentum=None: factor 1 / num_batches_tracked, counted on the device (as nn.BatchNorm)."""
    shape = (4, 3, 5)
    _, _, _, rm, rv = _data(rng, shape)
    trm, trv = _on(dev, rm, rv)
    count = hetero.tensor(np.zeros(1, np.int32), device=dev)
    rm64, rv64 = rm.astype(np.float64), rv.astype(np.float64)
    for k in range(1, 5):
        x = rng.standard_normal(shape).astype(np.float32) + k
        batch_norm(hetero.tensor(x, device=dev), trm, trv, training=True, momentum=None, num_batches_tracked=count)
        _, _, _, rm64, rv64 = ref.batch_norm_forward(x, rm64, rv64, training=True, momentum=1.0 / k)
    assert count.numpy().tolist() == [4]
    assert_close(trm, rm64, STAT_TOL, STAT_TOL, "running_mean")
    assert_close(trv, rv64, STAT_TOL, STAT_TOL, "running_var")
    # eval mode leaves the counter alone
    batch_norm(hetero.tensor(x, device=dev), trm, trv, num_batches_tracked=count)
    assert count.numpy().tolist() == [4]


def _replay(dev, recorded):
    for kernel, global_size, local_size, args in recorded:
        kernel.set_args(*args)
        cl.enqueue_nd_range_kernel(dev.queue, kernel, global_size, local_size)


def test_replayed_launches_keep_updating_running_stats(dev, rng):
    """What the graph executor does: record one training step's launches, replay them; nothing may be
    decided on the host from device data (the cumulative factor comes from the device counter)."""
    shape = (3, 4, 2, 5)
    x, w, b, rm, rv = _data(rng, shape)
    tx, tw, tb, trm, trv = _on(dev, x, w, b, rm, rv)
    count = hetero.tensor(np.zeros(1, np.int32), device=dev)
    dev.synchronize()
    with recorded_launches(dev) as recorded:
        y, _, _ = batch_norm_forward(tx, trm, trv, tw, tb, True, None, num_batches_tracked=count)
    _replay(dev, recorded)
    _replay(dev, recorded)
    rm64, rv64 = rm.astype(np.float64), rv.astype(np.float64)
    for k in range(1, 4):
        ry, _, _, rm64, rv64 = ref.batch_norm_forward(x, rm64, rv64, w, b, True, 1.0 / k)
    assert count.numpy().tolist() == [3]
    assert_close(trm, rm64, STAT_TOL, STAT_TOL, "running_mean")
    assert_close(trv, rv64, STAT_TOL, STAT_TOL, "running_var")
    assert_close(y, ry, RTOL, ATOL, "y")


def test_autograd_accumulates_into_leaves(dev, rng):
    shape = (5, 4, 3, 3)
    x, w, b, rm, rv = _data(rng, shape)
    tx, tw, tb, trm, trv = _on(dev, x, w, b, rm, rv)
    for t in (tx, tw, tb):
        t.requires_grad = True
    y = batch_norm(tx, trm, trv, tw, tb, training=True)
    g = rng.standard_normal(shape).astype(np.float32)
    y.backward(hetero.tensor(g, device=dev))
    _, mean, invstd, _, _ = ref.batch_norm_forward(x, rm, rv, w, b, True)
    rdx, rdw, rdb = ref.batch_norm_backward(g, x, None, w, mean, invstd, True)
    assert_close(tx.grad, rdx, RTOL, ATOL, "dx")
    assert_close(tw.grad, rdw, RTOL, ATOL, "dweight")
    assert_close(tb.grad, rdb, RTOL, ATOL, "dbias")
    assert trm.grad is None and trv.grad is None


def test_empty_batch_leaves_running_stats(dev, rng):
    _, w, b, rm, rv = _data(rng, (1, 3, 2, 2))
    tx = hetero.tensor(np.zeros((0, 3, 2, 2), np.float32), device=dev)
    tw, tb, trm, trv = _on(dev, w, b, rm, rv)
    y, save_mean, save_invstd = batch_norm_forward(tx, trm, trv, tw, tb, True)
    assert y.shape == (0, 3, 2, 2)
    np.testing.assert_array_equal(trm.numpy(), rm)
    np.testing.assert_array_equal(trv.numpy(), rv)
    dx, dw, db = batch_norm_backward(y, tx, tw, save_mean, save_invstd, True)
    assert dx.shape == (0, 3, 2, 2)
    np.testing.assert_array_equal(dw.numpy(), np.zeros(3, np.float32))
    np.testing.assert_array_equal(db.numpy(), np.zeros(3, np.float32))


# The other layout of kernels_cl/batch_norm.cl (ROW_LOOP=0 on a CPU, 1 on a GPU), so both are tested on any device.
@pytest.mark.parametrize("shape", shapes([(2, 3), (7, 5, 1, 1), (3, 6, 5, 7), (2, 3, 64, 50)], [(2, 3), (2, 3, 4, 5)]))
def test_other_layout_vs_reference(dev, rng, monkeypatch, shape):
    native = bn_ops._row_loop(dev)
    monkeypatch.setattr(bn_ops, "_row_loop", lambda d: not native)
    _check_step(dev, rng, shape, True)
    _check_step(dev, rng, shape, False)


# --- bad input ----------------------------------------------------------------------------------------------

def _other_device(dev):
    """A device other than dev (another platform's, or half of this CPU); None when there is none."""
    for spec in ("all", "cpu/2"):
        try:
            for d in hetero.select_devices(spec):
                if d is not dev:
                    return d
        except hetero.HeteroError:
            pass
    return None


def test_bad_inputs_raise_before_any_launch(dev, rng):
    x, w, b, rm, rv = _data(rng, (2, 3, 4, 4))
    tx, tw, tb, trm, trv = _on(dev, x, w, b, rm, rv)
    t4 = hetero.tensor(np.ones(4, np.float32), device=dev)
    cases = [
        (dict(input=hetero.tensor(np.ones(3, np.float32), device=dev)), "at least 2 dimensions"),
        (dict(running_mean=t4), "3 channels but running_mean"),
        (dict(running_var=t4), "3 channels but running_var"),
        (dict(weight=t4), "3 channels but weight"),
        (dict(bias=t4), "3 channels but bias"),
        (dict(running_var=None), "both be None"),
        (dict(running_mean=None, running_var=None, training=False), "evaluation mode"),
        (dict(input=hetero.tensor(np.ones((1, 3), np.float32), device=dev), training=True),
         "Expected more than 1 value per channel when training"),
        (dict(input=hetero.tensor(np.ones((1, 3, 1, 1), np.float32), device=dev), training=True),
         "Expected more than 1 value per channel when training"),
        (dict(input=hetero.tensor(np.ones((2, 3), np.int32), device=dev)), "must be float32"),
        (dict(weight=hetero.tensor(np.ones(3, np.int32), device=dev)), "weight .* must be float32"),
        (dict(input=x), "must be a hetero Tensor"),
        (dict(training=True, momentum=None), "needs num_batches_tracked"),
        (dict(num_batches_tracked=hetero.tensor(np.zeros(1, np.float32), device=dev)), "int32 tensor"),
    ]
    base = dict(input=tx, running_mean=trm, running_var=trv, weight=tw, bias=tb, training=False)
    dev.synchronize()
    with recorded_launches(dev) as launches:
        for change, message in cases:
            with pytest.raises(ValueError, match=message):
                batch_norm(**{**base, **change})
        with pytest.raises(ValueError, match="does not match input"):
            batch_norm_backward(tw, tx, tw, trm, trv, True)
        assert launches == [], "a launch happened before validation failed"
    # one value per channel is fine in evaluation mode, as in torch
    batch_norm(hetero.tensor(np.ones((1, 3), np.float32), device=dev), trm, trv)


def test_tensors_on_different_devices(dev, rng):
    other = _other_device(dev)
    if other is None:
        pytest.skip("only one OpenCL device")
    x, w, _, rm, rv = _data(rng, (2, 3, 2, 2))
    tx, trm, trv = _on(dev, x, rm, rv)
    with pytest.raises(ValueError, match="weight is on device"):
        batch_norm(tx, trm, trv, hetero.tensor(w, device=other))
    with pytest.raises(ValueError, match="running_mean is on device"):
        batch_norm(tx, hetero.tensor(rm, device=other), trv)


# --- the GPU layout's multi-group reductions and launch limits ----------------------------------------------

H200_COMPUTE_UNITS = 132  # a GPU with many compute units: the table splits channels on it


def _force_gpu_split(monkeypatch, compute_units=H200_COMPUTE_UNITS):
    """Run the GPU layout with the table asked as for a GPU of compute_units (the flavour through its argument)."""
    table = bn_ops.reduce_split
    asked = []

    def split(device, channels, per_channel, cu):
        asked.append(device)
        return table("gpu", channels, per_channel, compute_units)

    monkeypatch.setattr(bn_ops, "_row_loop", lambda d: False)
    monkeypatch.setattr(bn_ops, "reduce_split", split)
    return asked


def _launches_of(dev, fn, *args, **kwargs):
    """(kernel name, global, local) of each launch fn(*args, **kwargs) makes."""
    dev.synchronize()
    with recorded_launches(dev) as launches:
        fn(*args, **kwargs)
    return [(k.function_name, glob, local) for k, glob, local, _ in launches]


# (shape, chunks per channel the table gives with 132 compute units): even and uneven chunks, S = 1 with a
# long batch, and spatial rows that chunk boundaries cut through
MULTI_GROUP_SHAPES = shapes([((16, 3, 32, 32), 4), ((5, 2, 45, 41), 2), ((9000, 2), 2), ((3, 1, 100, 77), 5)],
                            [((3, 1, 70, 70), 3)])


@pytest.mark.parametrize("shape,splits", MULTI_GROUP_SHAPES)
def test_multi_group_statistics_are_chosen_and_correct(dev, rng, monkeypatch, shape, splits):
    asked = _force_gpu_split(monkeypatch)
    n, c = shape[0], shape[1]
    assert bn_ops.reduce_split("gpu", c, n * np.prod(shape[2:], dtype=int), H200_COMPUTE_UNITS).splits == splits
    x, w, b, rm, rv = _data(rng, shape)
    tx, tw, tb, trm, trv = _on(dev, x, w, b, rm, rv)
    wg = bn_ops._gpu_sizes(dev, True, True).wg
    fw = _launches_of(dev, batch_norm_forward, tx, trm, trv, tw, tb, True)
    assert ("bn_stats_partial", (c * splits * wg,), (wg,)) in fw
    assert "bn_stats_finish" in [name for name, _, _ in fw] and set(asked) == {"gpu"}
    y, save_mean, save_invstd = batch_norm_forward(tx, trm, trv, tw, tb, True)
    bw = _launches_of(dev, batch_norm_backward, y, tx, tw, save_mean, save_invstd, True, has_bias=True)
    assert ("bn_backward_partial", (c * splits * wg,), (wg,)) in bw
    _check_step(dev, rng, shape, True)


def test_multi_group_statistics_keep_a_large_mean_precise_and_are_deterministic(dev, rng, monkeypatch):
    _force_gpu_split(monkeypatch)
    shape = shapes([(16, 2, 32, 32)], [(2, 1, 64, 65)])[0]
    assert bn_ops.reduce_split("gpu", shape[1], shape[0] * shape[2] * shape[3], H200_COMPUTE_UNITS).splits > 1
    x, _, _, rm, rv = _data(rng, shape, offset=1000.0, scale=1.0)
    tx, trm, trv = _on(dev, x, rm, rv)
    y, save_mean, save_invstd = batch_norm_forward(tx, trm, trv, None, None, True, 0.5)
    ry, mean, invstd, _, new_rv = ref.batch_norm_forward(x, rm, rv, None, None, True, 0.5)
    assert_close(save_mean, mean, 1e-6, 0, "save_mean")
    assert_close(save_invstd, invstd, 1e-5, 0, "save_invstd")
    assert_close(trv, new_rv, 1e-5, 0, "running_var")
    g = hetero.tensor(rng.standard_normal(shape).astype(np.float32), device=dev)
    runs = []
    for _ in range(2):  # the same input twice: bitwise the same statistics and gradients (a fixed order)
        _, m, i = batch_norm_forward(tx, None, None, None, None, True)
        dx, _, db = batch_norm_backward(g, tx, None, m, i, True)
        runs.append([t.numpy() for t in (m, i, dx, db)])
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("shape", shapes([(300, 5), (70, 3, 2, 2), (3, 600, 1, 1)], [(70, 3, 2, 2)]))
def test_gpu_elementwise_loops_past_a_capped_grid(dev, rng, monkeypatch, shape):
    """Every GPU caps work-groups at 65535 along dims 1 and 2: the kernels loop over the channels and images
    past the grid. A cap of 2 groups makes every work-item loop here."""
    monkeypatch.setattr(bn_ops, "_row_loop", lambda d: False)
    monkeypatch.setattr(bn_ops, "STRICT_GROUPS", (None, 2, 2))
    x, w, b, rm, rv = _data(rng, shape)
    tx, tw, tb, trm, trv = _on(dev, x, w, b, rm, rv)
    launches = _launches_of(dev, batch_norm_forward, tx, trm, trv, tw, tb, False)
    (glob, local), = [(g, lc) for name, g, lc in launches if name == "bn_apply"]
    assert glob[1] <= 2 * local[1] and glob[2] <= 2 * local[2]
    assert glob[1] * glob[2] < shape[0] * shape[1], "the capped grid covers fewer (image, channel) pairs"
    _check_step(dev, rng, shape, True)
    _check_step(dev, rng, shape, False)


def test_gpu_launches_fit_the_strict_limits_and_the_kernels(dev, rng, monkeypatch):
    """[256, 1], [256, 2] and [65, 1] once gave local sizes with 256 work-items in z (NVIDIA allows 64)."""
    monkeypatch.setattr(bn_ops, "_row_loop", lambda d: False)
    sizes = bn_ops._gpu_sizes(dev, True, True)
    for name in bn_ops._GPU_REDUCTIONS:
        kern = dev.kernel("batch_norm.cl", name, bn_ops._defines(True, True, False, sizes.wg))
        assert sizes.wg <= kern.get_work_group_info(cl.kernel_work_group_info.WORK_GROUP_SIZE, dev.cl_device)
    for shape in shapes([(256, 1), (256, 2), (65, 1), (2, 3, 64, 50)], [(256, 1), (65, 1)]):
        x, w, b, rm, rv = _data(rng, shape)
        tx, tw, tb, trm, trv = _on(dev, x, w, b, rm, rv)
        for name, glob, local in _launches_of(dev, batch_norm_forward, tx, trm, trv, tw, tb, True):
            if local is None:
                continue
            assert np.prod(local) <= min(256, sizes.group if name.startswith("bn_apply") else sizes.wg), name
            assert all(lc <= most for lc, most in zip(local, dev.cl_device.max_work_item_sizes)), (name, local)
            assert len(local) < 3 or local[2] <= 64, (name, local)
            assert all(g // lc <= 65535 for g, lc in zip(glob[1:], local[1:])), (name, glob, local)
        _check_step(dev, rng, shape, True)


def test_sizes_past_int32_are_refused_before_any_launch(dev):
    """A fake [N, C, *] shape over a small buffer: the int32 limits are checked before anything runs."""
    small = hetero.zeros((4,), device=dev)
    huge = hetero.Tensor(small.storage, (2**16, 2**16), np.float32, dev)
    dev.synchronize()
    with recorded_launches(dev) as launches:
        with pytest.raises(ValueError, match=r"batch_norm: input \(65536, 65536\) has 4294967296 rows \(N\*C\), "
                                             r"more than the 2130706431"):
            batch_norm(huge, None, None, training=True)
        with pytest.raises(ValueError, match=r"batch_norm_backward: input \(65536, 65536\) has 4294967296"):
            batch_norm_backward(huge, huge, None, small, small, True)
        assert launches == []
