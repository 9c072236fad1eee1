"""softmax / log_softmax / nll_loss / cross_entropy: reference vs finite differences, then device vs reference."""

import gc

import numpy as np
import pyopencl as cl
import pytest

import hetero
from hetero.ops import softmax as sm
from hetero.reference import softmax as ref
from tests.helpers import assert_close, numeric_grad, recorded_launches, shapes

# (shape, dim): 2-D and 4-D over every dim incl. negative ones, rows long enough for the work-group kernel
# (contiguous and >= 128), odd sizes, a single element and a 0-d tensor
SOFTMAX_CASES = shapes(
    [((3, 5), 0), ((3, 5), 1), ((3, 5), -1), ((2, 3, 4, 5), 0), ((2, 3, 4, 5), 1), ((2, 3, 4, 5), 2),
     ((2, 3, 4, 5), -1), ((1, 1, 1, 1), 1), ((7,), 0), ((1, 1000), 1), ((5, 1000), -1), ((1000, 3), 0),
     ((3, 131), 1), ((2, 300, 3), 1), ((4, 1), 1), ((), 0), ((), -1), ((0, 4), 1)],
    [((3, 5), -1), ((2, 3, 2), 1), ((2, 130), 1)],  # the last uses the work-group-per-row kernels
)


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_reference_softmax_gradients_match_finite_differences(dim, rng):
    x = rng.standard_normal((3, 4))
    w = rng.standard_normal(x.shape)
    y = ref.softmax(x, dim)
    assert np.allclose(ref.softmax_backward(w, y, dim), numeric_grad(lambda v: (ref.softmax(v, dim) * w).sum(), x),
                       atol=1e-6)
    y = ref.log_softmax(x, dim)
    assert np.allclose(ref.log_softmax_backward(w, y, dim),
                       numeric_grad(lambda v: (ref.log_softmax(v, dim) * w).sum(), x), atol=1e-6)


LOSS_OPTIONS = [
    {}, {"reduction": "sum"}, {"reduction": "none"}, {"ignore_index": 2}, {"weight": True},
    {"weight": True, "ignore_index": 0, "reduction": "mean"}, {"weight": True, "reduction": "none"},
]


def _loss_args(opts, C, rng):
    kw = dict(opts)
    if kw.get("weight"):
        kw["weight"] = rng.uniform(0.2, 2.0, C)
    return kw


@pytest.mark.parametrize("opts", LOSS_OPTIONS)
def test_reference_loss_gradients_match_finite_differences(opts, rng):
    N, C = 5, 4
    x = rng.standard_normal((N, C))
    t = np.array([2, 0, 3, 2, 1], np.int32)
    kw = _loss_args(opts, C, rng)
    g = rng.standard_normal(N) if kw.get("reduction") == "none" else np.array(1.7)
    for f, fb in ((ref.nll_loss, ref.nll_loss_backward), (ref.cross_entropy, ref.cross_entropy_backward)):
        num = numeric_grad(lambda v, f=f: float((f(v, t, **kw) * g).sum()), x)
        assert np.allclose(fb(g, x, t, **kw), num, atol=1e-6), f.__name__


@pytest.mark.parametrize("log", [False, True])
@pytest.mark.parametrize("shape,dim", SOFTMAX_CASES)
def test_softmax_forward_and_backward_match_reference(dev, shape, dim, log, rng):
    x = (rng.standard_normal(shape) * 3).astype(np.float32)
    X = hetero.tensor(x, device=dev, requires_grad=True)
    y = (sm.log_softmax if log else sm.softmax)(X, dim)
    x64 = x.astype(np.float64)
    d = dim % max(x.ndim, 1)
    if x.ndim == 0:  # numpy reduces a 0-d array over axis None only
        x64, d = x64.reshape(1), 0
    expected = (ref.log_softmax if log else ref.softmax)(x64, d).reshape(shape)
    assert_close(y, expected, rtol=1e-5, atol=1e-6, what=f"{'log_' * log}softmax {shape} dim {dim}")
    g = rng.standard_normal(shape).astype(np.float32)
    y.backward(hetero.tensor(g, device=dev))
    bw = ref.log_softmax_backward if log else ref.softmax_backward
    gx = bw(g.astype(np.float64).reshape(x64.shape), expected.reshape(x64.shape), d).reshape(shape)
    assert_close(X.grad, gx, rtol=1e-5, atol=1e-5, what=f"{'log_' * log}softmax grad {shape} dim {dim}")


@pytest.mark.parametrize("shape,dim", [((4, 300), 1), ((3, 5), 1), ((6, 2, 3), 0)])
def test_large_logits_stay_finite(dev, shape, dim, rng):
    x = (rng.standard_normal(shape) * 1e4).astype(np.float32)
    x.reshape(-1)[:3] = [1e4, -1e4, 1e4]
    X = hetero.tensor(x, device=dev)
    y, ly = sm.softmax(X, dim).numpy(), sm.log_softmax(X, dim).numpy()
    assert np.isfinite(y).all() and np.isfinite(ly).all()
    assert_close(y, ref.softmax(x.astype(np.float64), dim), atol=1e-6, what="softmax of 1e4 logits")
    # log-softmax values reach -1e4: float32 resolves them to ~1e-3
    assert_close(ly, ref.log_softmax(x.astype(np.float64), dim), rtol=2e-7, atol=1e-5, what="log_softmax 1e4")


LOSS_SHAPES = shapes([(1, 1), (1, 7), (5, 1), (1, 1000), (8, 1000), (13, 10), (300, 17), (0, 4)],
                     [(3, 5), (1, 1)])


@pytest.mark.parametrize("opts", LOSS_OPTIONS)
@pytest.mark.parametrize("N,C", LOSS_SHAPES)
@pytest.mark.parametrize("op", ["cross_entropy", "nll_loss"])
def test_losses_forward_and_backward_match_reference(dev, op, N, C, opts, rng):
    x = (rng.standard_normal((N, C)) * 3).astype(np.float32)
    t = rng.integers(0, C, N).astype(np.int32)
    kw = _loss_args(opts, C, rng)
    if "ignore_index" in kw and N > 2:
        t[1] = kw["ignore_index"]
    if kw.get("weight") is not None:
        kw["weight"] = kw["weight"].astype(np.float32)
    dkw = {**kw, "weight": hetero.tensor(kw["weight"], device=dev)} if "weight" in kw else kw
    X = hetero.tensor(x, device=dev, requires_grad=True)
    loss = getattr(sm, op)(X, hetero.tensor(t, device=dev), **dkw)
    x64 = x.astype(np.float64)
    expected = getattr(ref, op)(x64, t, **kw)
    assert loss.shape == expected.shape
    if np.isnan(expected).any():  # a mean over no rows (N == 0, or every target ignored): 0 / 0, as PyTorch
        assert np.isnan(loss.item())
    else:
        assert_close(loss, expected, rtol=1e-5, atol=1e-5, what=f"{op} {N}x{C} {opts}")
    g = rng.standard_normal(loss.shape).astype(np.float32) + 2.0
    loss.backward(hetero.tensor(g, device=dev))
    gx = getattr(ref, f"{op}_backward")(g.astype(np.float64), x64, t, **kw)
    assert_close(X.grad, gx, rtol=1e-5, atol=1e-6, what=f"{op} grad {N}x{C} {opts}")


def test_cross_entropy_backward_reads_the_gradient_on_the_device(dev, rng):
    """Record the backward launch, change the upstream gradient in place, replay: the result follows it."""
    x = rng.standard_normal((6, 9)).astype(np.float32)
    t = rng.integers(0, 9, 6).astype(np.int32)
    X = hetero.tensor(x, device=dev, requires_grad=True)
    loss = sm.cross_entropy(X, hetero.tensor(t, device=dev))
    G = hetero.full((), 1.0, device=dev)
    with recorded_launches(dev) as launches:
        loss.backward(G)
    base = ref.cross_entropy_backward(np.array(1.0), x.astype(np.float64), t)
    assert_close(X.grad, base, what="cross_entropy grad, g = 1")
    assert len(launches) == 1  # the fused backward kernel
    dev.write(G, np.array([3.0], np.float32), blocking=True)
    kernel, glob, local, args = launches[0]
    kernel.set_args(*args)
    cl.enqueue_nd_range_kernel(dev.queue, kernel, glob, local)
    assert_close(X.grad, 3 * base, what="replayed cross_entropy grad, g = 3")


def test_scaled_loss_backpropagates_the_scale(dev, rng):
    x = rng.standard_normal((4, 5)).astype(np.float32)
    t = np.array([0, 4, 2, 1], np.int32)
    X = hetero.tensor(x, device=dev, requires_grad=True)
    (sm.cross_entropy(X, hetero.tensor(t, device=dev)) * 2.5).backward()
    assert_close(X.grad, 2.5 * ref.cross_entropy_backward(np.array(1.0), x.astype(np.float64), t),
                 what="d(2.5 * loss)/dx")


def test_cross_entropy_with_large_logits_is_finite(dev, rng):
    x = (rng.standard_normal((5, 10)) * 1e4).astype(np.float32)
    t = rng.integers(0, 10, 5).astype(np.int32)
    X = hetero.tensor(x, device=dev, requires_grad=True)
    loss = sm.cross_entropy(X, hetero.tensor(t, device=dev))
    loss.backward()
    assert np.isfinite(loss.item()) and np.isfinite(X.grad.numpy()).all()
    assert_close(loss, ref.cross_entropy(x.astype(np.float64), t), rtol=1e-6, what="cross_entropy 1e4 logits")


def test_all_rows_ignored_gives_nan_loss_and_zero_gradient(dev, rng):
    X = hetero.tensor(rng.standard_normal((3, 4)).astype(np.float32), device=dev, requires_grad=True)
    loss = sm.cross_entropy(X, hetero.tensor(np.full(3, -100, np.int32), device=dev))
    loss.backward()
    assert np.isnan(loss.item())
    assert np.array_equal(X.grad.numpy(), np.zeros((3, 4), np.float32))


@pytest.mark.parametrize("op", ["cross_entropy", "nll_loss"])
def test_out_of_range_target_raises_when_the_loss_is_read(dev, op, rng):
    """Kernels cannot raise: an id outside [0, C) that is not ignore_index makes the loss NaN (never an
    out-of-bounds read) and is recorded, so reading the loss back raises, naming the id and the class count."""
    X = hetero.tensor(rng.standard_normal((3, 4)).astype(np.float32), device=dev)
    for bad in (4, -1, 1 << 30, -(2**31)):
        loss = getattr(sm, op)(X, hetero.tensor(np.array([0, bad, 2], np.int32), device=dev))
        with pytest.raises(ValueError, match=rf"{op}: 1 of 3 targets is not a class id: target\[1\] = {bad}, "
                                             r"but the scores have 4 classes"):
            loss.item()
    rows = getattr(sm, op)(X, hetero.tensor(np.array([0, 7, 2], np.int32), device=dev), reduction="none")
    with pytest.raises(ValueError, match=r"target\[1\] = 7.*4 classes"):
        rows.numpy()
    with pytest.raises(ValueError, match=r"target\[1\] = 7"):  # values computed from the loss raise too
        (rows * 2.0).reshape(3, 1).numpy()


@pytest.mark.parametrize("op", ["cross_entropy", "nll_loss"])
def test_a_bad_target_row_gets_no_gradient(dev, op, rng):
    """So a step with a bad label leaves the weights finite: the run can continue once the data is fixed."""
    x = rng.standard_normal((3, 4)).astype(np.float32)
    X = hetero.tensor(x, device=dev, requires_grad=True)
    getattr(sm, op)(X, hetero.tensor(np.array([0, 9, 2], np.int32), device=dev)).backward()
    good = hetero.tensor(x[[0, 2]], device=dev, requires_grad=True)
    getattr(sm, op)(good, hetero.tensor(np.array([0, 2], np.int32), device=dev)).backward()
    g = X.grad.numpy()
    assert np.array_equal(g[1], np.zeros(4)) and np.allclose(g[[0, 2]], good.grad.numpy(), rtol=1e-6)


def test_many_out_of_range_targets_are_summarised(dev, rng):
    t = np.zeros(1000, np.int32)
    t[[10, 500, 999]] = [12, -3, 40]
    t[300] = -100  # ignored, so not an error
    loss = sm.cross_entropy(hetero.tensor(rng.standard_normal((1000, 10)), device=dev), hetero.tensor(t, device=dev))
    with pytest.raises(ValueError, match=r"3 of 1000 targets are not a class id: target\[10\] = 12, but the scores "
                                         r"have 10 classes, so ids must lie in \[0, 9\] \(or equal ignore_index=-100\)"
                                         r"; the bad ids range from -3 to 40"):
        loss.item()


def test_valid_targets_after_an_error_read_normally(dev, rng):
    """The record is rewritten by every launch: a good batch after a bad one reads back without error."""
    X = hetero.tensor(rng.standard_normal((3, 4)).astype(np.float32), device=dev)
    with pytest.raises(ValueError):
        sm.cross_entropy(X, hetero.tensor(np.array([0, 9, 2], np.int32), device=dev)).item()
    good = sm.cross_entropy(X, hetero.tensor(np.array([0, 3, 2], np.int32), device=dev))
    assert np.isfinite(good.item())


def test_bad_inputs_raise_value_error(dev):
    x = hetero.zeros((4, 5), device=dev)
    t = hetero.tensor(np.zeros(4, np.int32), device=dev)
    with pytest.raises(ValueError, match=r"softmax: dim 2 is out of range for input of shape \(4, 5\)"):
        sm.softmax(x, 2)
    with pytest.raises(ValueError, match=r"log_softmax: dim -3 is out of range"):
        sm.log_softmax(x, -3)
    with pytest.raises(ValueError, match="softmax: dim must be an int"):
        sm.softmax(x, None)
    with pytest.raises(ValueError, match="softmax: expected a float32 tensor"):
        sm.softmax(t, 0)
    with pytest.raises(ValueError, match=r"cross_entropy: input must be \[N, C\] scores, got shape \(4, 5, 1\)"):
        sm.cross_entropy(hetero.zeros((4, 5, 1), device=dev), t)
    with pytest.raises(ValueError, match="cross_entropy: target must be an int32 tensor of class ids, got float32"):
        sm.cross_entropy(x, hetero.zeros((4,), device=dev))
    with pytest.raises(ValueError, match=r"nll_loss: target shape \(3,\) does not match input \(4, 5\)"):
        sm.nll_loss(x, hetero.tensor(np.zeros(3, np.int32), device=dev))
    with pytest.raises(ValueError, match=r"cross_entropy: weight must be a float32 tensor of shape \(5,\)"):
        sm.cross_entropy(x, t, weight=hetero.zeros((4,), device=dev))
    with pytest.raises(ValueError, match="nll_loss: reduction must be 'none', 'mean' or 'sum'"):
        sm.nll_loss(x, t, reduction="avg")
    with pytest.raises(ValueError, match="cross_entropy: ignore_index must be an int32 value"):
        sm.cross_entropy(x, t, ignore_index=1.5)


@pytest.mark.parametrize("fn", [sm.softmax, sm.log_softmax])
def test_graph_frees_without_the_cyclic_gc(dev, fn):
    """The saved output must not form a reference cycle: GC-driven frees can land inside the pool's lock."""
    X = hetero.zeros((3, 200), device=dev)
    X.requires_grad = True
    gc.disable()
    try:
        before = dev.memory_stats()["bytes_in_use"]
        y = fn(X, 1)
        assert dev.memory_stats()["bytes_in_use"] > before
        del y
        assert dev.memory_stats()["bytes_in_use"] == before
    finally:
        gc.enable()


# --- the GPU layout of the losses: many work-groups, a second stage, grids within the limits ----------------

H200_COMPUTE_UNITS = 132


def _force_gpu_losses(monkeypatch, compute_units=H200_COMPUTE_UNITS):
    """The losses' GPU layout on any device: the table asked with the gpu flavour through its argument."""
    table = sm.loss_layout
    monkeypatch.setattr(sm, "loss_layout", lambda device, rows, wg, cu: table("gpu", rows, wg, compute_units))


def _names(launches):
    return [k.function_name for k, _, _, _ in launches]


MULTI_GROUP_LOSS = shapes([(3000, 17), (700, 3), (257, 1000)], [(600, 3)])


@pytest.mark.parametrize("opts", [{}, {"reduction": "sum"}, {"reduction": "none"},
                                  {"weight": True, "ignore_index": 0}])
@pytest.mark.parametrize("N,C", MULTI_GROUP_LOSS)
@pytest.mark.parametrize("op", ["cross_entropy", "nll_loss"])
def test_multi_group_losses_are_chosen_and_correct(dev, monkeypatch, op, N, C, opts, rng):
    _force_gpu_losses(monkeypatch)
    x = (rng.standard_normal((N, C)) * 3).astype(np.float32)
    t = rng.integers(0, C, N).astype(np.int32)
    kw = _loss_args(opts, C, rng)
    if "ignore_index" in kw:
        t[::7] = kw["ignore_index"]
    if kw.get("weight") is not None:
        kw["weight"] = kw["weight"].astype(np.float32)
    dkw = {**kw, "weight": hetero.tensor(kw["weight"], device=dev)} if "weight" in kw else kw
    X = hetero.tensor(x, device=dev, requires_grad=True)
    T = hetero.tensor(t, device=dev)
    dev.synchronize()
    with recorded_launches(dev) as launches:
        loss = getattr(sm, op)(X, T, **dkw)
    wg = launches[0][2][0]
    groups = -(-N // wg)
    assert groups > 1 and _names(launches) == [f"{op}_fw", "loss_finish"]
    assert launches[0][1] == (groups * wg,), "one work-group per wg rows"
    expected = getattr(ref, op)(x.astype(np.float64), t, **kw)
    assert_close(loss, expected, rtol=1e-5, atol=1e-5, what=f"multi-group {op} {N}x{C} {opts}")
    g = rng.standard_normal(loss.shape).astype(np.float32) + 2.0
    loss.backward(hetero.tensor(g, device=dev))
    gx = getattr(ref, f"{op}_backward")(g.astype(np.float64), x.astype(np.float64), t, **kw)
    assert_close(X.grad, gx, rtol=1e-5, atol=1e-6, what=f"multi-group {op} grad {N}x{C} {opts}")


def test_multi_group_loss_merges_the_bad_targets_of_every_group(dev, monkeypatch, rng):
    _force_gpu_losses(monkeypatch)
    t = np.zeros(1000, np.int32)
    t[[10, 500, 999]] = [12, -3, 40]  # three different work-groups
    t[300] = -100
    loss = sm.cross_entropy(hetero.tensor(rng.standard_normal((1000, 10)), device=dev), hetero.tensor(t, device=dev))
    with pytest.raises(ValueError, match=r"3 of 1000 targets are not a class id: target\[10\] = 12, but the scores "
                                         r"have 10 classes, so ids must lie in \[0, 9\] \(or equal ignore_index=-100\)"
                                         r"; the bad ids range from -3 to 40"):
        loss.item()
    t[[10, 500, 999]] = 1
    assert np.isfinite(sm.cross_entropy(hetero.tensor(rng.standard_normal((1000, 10)), device=dev),
                                        hetero.tensor(t, device=dev)).item())


def test_multi_group_loss_is_deterministic(dev, monkeypatch, rng):
    _force_gpu_losses(monkeypatch)
    N, C = shapes([(2000, 30)], [(600, 3)])[0]
    X = hetero.tensor(rng.standard_normal((N, C)).astype(np.float32), device=dev, requires_grad=True)
    T = hetero.tensor(rng.integers(0, C, N).astype(np.int32), device=dev)
    runs = []
    for _ in range(2):
        X.grad = None
        loss = sm.cross_entropy(X, T)
        loss.backward()
        runs.append((loss.numpy(), X.grad.numpy()))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    np.testing.assert_array_equal(runs[0][1], runs[1][1])


@pytest.mark.parametrize("op", ["cross_entropy", "nll_loss"])
def test_gpu_loss_backward_loops_past_a_capped_grid(dev, monkeypatch, op, rng):
    """GPUs allow 65535 work-groups along dim 1: the backward's rows loop past the grid (capped at 2 here)."""
    _force_gpu_losses(monkeypatch)
    monkeypatch.setattr(sm, "STRICT_GROUPS_Y", 2)
    N, C = 900, 5
    x = rng.standard_normal((N, C)).astype(np.float32)
    t = rng.integers(0, C, N).astype(np.int32)
    t[4] = -100
    X = hetero.tensor(x, device=dev, requires_grad=True)
    loss = getattr(sm, op)(X, hetero.tensor(t, device=dev), reduction="none")
    ones = hetero.ones((N,), device=dev)
    dev.synchronize()
    with recorded_launches(dev) as launches:
        loss.backward(ones)
    (_, glob, local, _), = launches
    assert glob[1] == 2 * local[1] < N and local[0] * local[1] <= 256
    gx = getattr(ref, f"{op}_backward")(np.ones(N), x.astype(np.float64), t, reduction="none")
    assert_close(X.grad, gx, rtol=1e-5, atol=1e-6, what=f"{op} grad, capped grid")


def test_loss_tables_without_a_device():
    assert sm.loss_layout("cpu", 10**6, 256, 132) == sm.LossLayout(False, 1)
    assert sm.loss_layout("gpu", 64, 256, 132) == sm.LossLayout(True, 1)


def test_sizes_past_int32_are_refused_before_any_launch(dev):
    """Fake shapes over a small buffer: softmax's dims and the losses' N and C are checked before a launch."""
    small = hetero.zeros((4,), device=dev)
    ids = hetero.tensor(np.zeros(4, np.int32), device=dev)
    dev.synchronize()
    with recorded_launches(dev) as launches:
        with pytest.raises(ValueError, match=r"softmax: input \(2147483648,\) has 2147483648 elements along dim 0, "
                                             r"more than the 2130706431 \(2\^31 - 1 - 2\^24\)"):
            sm.softmax(hetero.Tensor(small.storage, (2**31,), np.float32, dev), 0)
        with pytest.raises(ValueError, match=r"log_softmax: input \(4294967296, 2\) has 4294967296 rows"):
            sm.log_softmax(hetero.Tensor(small.storage, (2**32, 2), np.float32, dev), 1)
        with pytest.raises(ValueError, match=r"cross_entropy: input \(2147483648, 2\) has 2147483648 rows \(N\)"):
            sm.cross_entropy(hetero.Tensor(small.storage, (2**31, 2), np.float32, dev),
                             hetero.Tensor(ids.storage, (2**31,), np.int32, dev))
        assert launches == []


@pytest.mark.parametrize("log", [False, True])
def test_row_kernels_split_launches_past_an_int_grid(dev, monkeypatch, log, rng):
    """The work-group-per-row kernels keep each launch's global size an int id (2^31 / WG rows): past that,
    several launches, each from its first row. Launches of 3 rows here."""
    monkeypatch.setattr(sm, "row_launches", lambda rows, wg: [(r0, min(3, rows - r0)) for r0 in range(0, rows, 3)])
    shape = shapes([(7, 300)], [(4, 130)])[0]
    x = rng.standard_normal(shape).astype(np.float32)
    X = hetero.tensor(x, device=dev, requires_grad=True)
    dev.synchronize()
    with recorded_launches(dev) as launches:
        y = (sm.log_softmax if log else sm.softmax)(X, 1)
    wg = launches[0][2][0]
    assert [(k.function_name, glob) for k, glob, _, _ in launches] == \
        [("softmax_fw_rows", (min(3, shape[0] - r) * wg,)) for r in range(0, shape[0], 3)]
    expected = (ref.log_softmax if log else ref.softmax)(x.astype(np.float64), 1)
    assert_close(y, expected, rtol=1e-5, atol=1e-6, what="softmax rows, split launches")
    g = rng.standard_normal(shape).astype(np.float32)
    y.backward(hetero.tensor(g, device=dev))
    bw = ref.log_softmax_backward if log else ref.softmax_backward
    assert_close(X.grad, bw(g.astype(np.float64), expected, 1), rtol=1e-5, atol=1e-5, what="softmax grad, split")
