"""Optimizers and LR schedulers: device updates vs the float64 reference, state_dict, no host reads in step()."""

import importlib
import math

import numpy as np
import pyopencl as cl
import pytest

import hetero
from hetero import optim
from hetero.reference import optim as ref
from tests.helpers import assert_close, recorded_launches, shapes

# (optimizer class, reference function, options): every option of every optimizer
CASES = [
    (optim.SGD, ref.sgd, dict(lr=0.1)),
    (optim.SGD, ref.sgd, dict(lr=0.05, momentum=0.9)),
    (optim.SGD, ref.sgd, dict(lr=0.05, momentum=0.8, dampening=0.3, weight_decay=0.01)),
    (optim.SGD, ref.sgd, dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.02)),
    (optim.Adam, ref.adam, dict()),
    (optim.Adam, ref.adam, dict(lr=0.01, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1)),
    (optim.Adam, ref.adam, dict(lr=0.01, weight_decay=0.05, amsgrad=True)),
    (optim.Adam, ref.adam, dict(lr=0.01, betas=(0.0, 0.9))),
    (optim.AdamW, ref.adamw, dict(lr=0.01)),
    (optim.AdamW, ref.adamw, dict(lr=0.02, betas=(0.85, 0.99), weight_decay=0.3, amsgrad=True)),
    (optim.Adagrad, ref.adagrad, dict()),
    (optim.Adagrad, ref.adagrad, dict(lr=0.1, lr_decay=0.05, weight_decay=0.02, initial_accumulator_value=0.3,
                                      eps=1e-6)),
    (optim.RMSprop, ref.rmsprop, dict()),
    (optim.RMSprop, ref.rmsprop, dict(lr=0.01, alpha=0.9, momentum=0.7, weight_decay=0.05)),
    (optim.RMSprop, ref.rmsprop, dict(lr=0.01, centered=True)),
    (optim.RMSprop, ref.rmsprop, dict(lr=0.005, alpha=0.95, eps=1e-6, momentum=0.5, centered=True, weight_decay=0.1)),
]
CASE_IDS = [f"{c.__name__}-" + "-".join(f"{k}={v}" for k, v in kw.items()) for c, _, kw in CASES]

# parameter shapes of one model: odd sizes, a single element, a 4-d weight
PARAM_SHAPES = shapes([[(7,), (3, 5), (1,), (2, 3, 4, 5), (33, 17)]], [[(3,), (2, 3)]])
STEPS = 6


def _f64(a):
    return np.asarray(a, np.float32).astype(np.float64)


# ----- the reference itself -----

def test_reference_matches_hand_computed_values():
    one, g = np.array([1.0]), np.array([1.0])
    p, st = ref.sgd(one, g, {}, lr=0.1, momentum=0.9)  # buf = g, p = 1 - 0.1
    assert np.allclose(p, 0.9) and np.allclose(st["momentum_buffer"], 1.0)
    p, st = ref.sgd(p, g, st, lr=0.1, momentum=0.9, dampening=0.5)  # buf = 0.9 + 0.5, p = 0.9 - 0.14
    assert np.allclose(p, 0.76) and np.allclose(st["momentum_buffer"], 1.4)
    p, _ = ref.sgd(one, g, {}, lr=0.1, momentum=0.5, nesterov=True)  # g + 0.5 * buf = 1.5
    assert np.allclose(p, 0.85)
    # Adam's first step moves by lr * g / (|g| + eps): m_hat = g, v_hat = g^2
    p, st = ref.adam(np.array([2.0]), np.array([-4.0]), {}, lr=0.01, eps=1e-8)
    assert np.allclose(p, 2.01) and st["step"] == 1
    p, _ = ref.adamw(np.array([2.0]), np.array([-4.0]), {}, lr=0.01, weight_decay=0.5)  # 2 * (1 - 0.005) + 0.01
    assert np.allclose(p, 2.0)
    # Adagrad: sum = 0.3 + 4, clr = 0.1 at t = 1, then 0.1 / (1 + 0.5) at t = 2
    p, st = ref.adagrad(np.array([1.0]), np.array([2.0]), {}, lr=0.1, lr_decay=0.5, initial_accumulator_value=0.3)
    assert np.allclose(p, 1 - 0.1 * 2 / math.sqrt(4.3))
    p2, _ = ref.adagrad(p, np.array([1.0]), st, lr=0.1, lr_decay=0.5)
    assert np.allclose(p2, p - 0.1 / 1.5 / math.sqrt(5.3))
    # RMSprop: square_avg = (1 - alpha) g^2; centered subtracts ((1 - alpha) g)^2
    p, _ = ref.rmsprop(np.array([1.0]), np.array([2.0]), {}, lr=0.01, alpha=0.75, eps=0.0)
    assert np.allclose(p, 1 - 0.01 * 2 / math.sqrt(0.25 * 4))
    p, _ = ref.rmsprop(np.array([1.0]), np.array([2.0]), {}, lr=0.01, alpha=0.75, eps=0.0, centered=True)
    assert np.allclose(p, 1 - 0.01 * 2 / math.sqrt(0.25 * 4 - 0.25))


@pytest.mark.parametrize("cls,fn,kw", CASES, ids=CASE_IDS)
def test_reference_matches_torch(cls, fn, kw, rng):
    torch = pytest.importorskip("torch")
    p0 = rng.standard_normal((4, 3))
    P = torch.tensor(p0, requires_grad=True)
    opt = getattr(torch.optim, cls.__name__)([P], **kw)
    p, st = p0, {}
    for _ in range(STEPS):
        g = rng.standard_normal(p0.shape)
        P.grad = torch.tensor(g)
        opt.step()
        p, st = fn(p, g, st, **kw)
    assert np.allclose(P.detach().numpy(), p, rtol=1e-12, atol=1e-14)
    for name, value in opt.state_dict()["state"].get(0, {}).items():
        if value is not None:
            assert np.allclose(np.asarray(value), st[name], rtol=1e-12, atol=1e-14), name


# ----- device vs reference -----

def _setup(dev, rng, param_shapes):
    host = [rng.standard_normal(s) for s in param_shapes]
    params = [hetero.tensor(h, device=dev, requires_grad=True) for h in host]
    return [_f64(h) for h in host], params


@pytest.mark.parametrize("param_shapes", PARAM_SHAPES)
@pytest.mark.parametrize("cls,fn,kw", CASES, ids=CASE_IDS)
def test_steps_match_reference(dev, cls, fn, kw, param_shapes, rng):
    """Several steps with new gradients, a gradient missing on one step, and lr changed midway."""
    host, params = _setup(dev, rng, param_shapes)
    opt = cls(params, **kw)
    states = [{} for _ in host]
    lr = opt.param_groups[0]["lr"]
    for step in range(STEPS):
        if step == 3:  # as a scheduler would
            lr = lr * 0.3
            opt.param_groups[0]["lr"] = lr
        for i, p in enumerate(params):
            if step == 2 and i == 0:
                p.grad = None  # skipped this step: neither parameter nor state nor step count moves
                continue
            g = rng.standard_normal(p.shape).astype(np.float32)
            p.grad = hetero.tensor(g, device=dev)
            host[i], states[i] = fn(host[i], _f64(g), states[i], **{**kw, "lr": lr})
        opt.step()
    for i, p in enumerate(params):
        assert_close(p, host[i], rtol=2e-5, atol=1e-6, what=f"{cls.__name__} param {i} {p.shape}")
    saved = opt.state_dict()
    for i in range(len(params)):
        entry = saved["state"].get(i, {})
        expected = {k: v for k, v in states[i].items() if cls is not optim.SGD or k != "step"}
        assert set(entry) == set(expected), f"{cls.__name__} state names of param {i}"
        for name, value in expected.items():
            if name == "step":
                assert entry["step"].dtype == np.float32 and entry["step"].shape == ()
                assert float(entry["step"]) == value, f"step count of param {i}"
            else:
                assert_close(entry[name], value, rtol=2e-5, atol=1e-6, what=f"{cls.__name__} {name} of param {i}")


def test_sgd_momentum_switched_on_later_starts_from_the_gradient(dev, rng):
    host, params = _setup(dev, rng, [(4,), (3,)])
    opt = optim.SGD(params, lr=0.1)
    states = [{}, {}]
    kw = dict(lr=0.1)
    for step in range(5):
        if step == 2:
            kw = dict(lr=0.1, momentum=0.9, dampening=0.5)
            opt.param_groups[0].update(kw)
        for i, p in enumerate(params):
            if step == 2 and i == 1:
                p.grad = None  # its buffer is created one step later than the other's
                continue
            g = rng.standard_normal(p.shape).astype(np.float32)
            p.grad = hetero.tensor(g, device=dev)
            host[i], states[i] = ref.sgd(host[i], _f64(g), states[i], **kw)
        opt.step()
    for i, p in enumerate(params):
        assert_close(p, host[i], what=f"SGD param {i}")
        assert_close(opt.state_dict()["state"][i]["momentum_buffer"], states[i]["momentum_buffer"], what="buffer")


def test_param_groups_have_their_own_hyperparameters(dev, rng):
    host, params = _setup(dev, rng, [(5,), (2, 3)])
    opt = optim.SGD([{"params": [params[0]]}, {"params": [params[1]], "lr": 0.5, "momentum": 0.9}], lr=0.1)
    assert opt.param_groups[0]["momentum"] == 0 and opt.param_groups[1]["lr"] == 0.5
    states = [{}, {}]
    for _ in range(3):
        for i, (p, kw) in enumerate(zip(params, [dict(lr=0.1), dict(lr=0.5, momentum=0.9)])):
            g = rng.standard_normal(p.shape).astype(np.float32)
            p.grad = hetero.tensor(g, device=dev)
            host[i], states[i] = ref.sgd(host[i], _f64(g), states[i], **kw)
        opt.step()
    for p, h in zip(params, host):
        assert_close(p, h, what="SGD param groups")
    assert opt.state_dict()["param_groups"][1]["params"] == [1]


def test_add_param_group(dev, rng):
    host, params = _setup(dev, rng, [(4,), (3,)])
    opt = optim.Adam([params[0]], lr=0.01)
    opt.add_param_group({"params": params[1], "lr": 0.1})
    states = [{}, {}]
    for _ in range(3):
        for i, p in enumerate(params):
            g = rng.standard_normal(p.shape).astype(np.float32)
            p.grad = hetero.tensor(g, device=dev)
            host[i], states[i] = ref.adam(host[i], _f64(g), states[i], lr=[0.01, 0.1][i])
        opt.step()
    for p, h in zip(params, host):
        assert_close(p, h, rtol=2e-5, what="Adam added group")


def test_adagrad_state_exists_before_first_step(dev, rng):
    _, params = _setup(dev, rng, [(3,)])
    opt = optim.Adagrad(params, initial_accumulator_value=0.25)
    entry = opt.state_dict()["state"][0]
    assert float(entry["step"]) == 0.0
    assert np.array_equal(entry["sum"], np.full((3,), 0.25, np.float32))


def test_zero_grad(dev, rng):
    _, params = _setup(dev, rng, [(3,), (2, 2)])
    opt = optim.SGD(params, lr=0.1)
    for p in params:
        p.grad = hetero.ones(p.shape, device=dev)
    opt.zero_grad(set_to_none=False)
    assert all(np.array_equal(p.grad.numpy(), np.zeros(p.shape, np.float32)) for p in params)
    opt.zero_grad()
    assert all(p.grad is None for p in params)
    before = [p.numpy() for p in params]
    opt.step()  # nothing has a gradient: nothing moves
    assert all(np.array_equal(p.numpy(), b) for p, b in zip(params, before))


def test_closure_is_called_and_its_loss_returned(dev, rng):
    _, params = _setup(dev, rng, [(2,)])
    opt = optim.SGD(params, lr=0.1)
    assert opt.step(lambda: 42.0) == 42.0


# ----- state_dict / load_state_dict -----

def _run(opt, params, grads):
    for g in grads:
        for p, gp in zip(params, g):
            p.grad = hetero.tensor(gp, device=p.device)
        opt.step()


@pytest.mark.parametrize("cls,fn,kw", CASES, ids=CASE_IDS)
def test_state_dict_round_trip_resumes_exactly(dev, cls, fn, kw, rng):
    host = [rng.standard_normal(s).astype(np.float32) for s in [(5,), (2, 3)]]
    grads = [[rng.standard_normal(h.shape).astype(np.float32) for h in host] for _ in range(5)]
    a_params = [hetero.tensor(h, device=dev) for h in host]
    a = cls(a_params, **kw)
    _run(a, a_params, grads[:2])
    saved = a.state_dict()
    b_params = [hetero.tensor(p.numpy(), device=dev) for p in a_params]
    b = cls(b_params, lr=123.0)  # hyperparameters come from the state dict
    b.load_state_dict(saved)
    assert b.param_groups[0]["lr"] == kw.get("lr", a.defaults["lr"])
    _run(a, a_params, grads[2:])
    _run(b, b_params, grads[2:])
    for pa, pb in zip(a_params, b_params):
        assert np.array_equal(pa.numpy(), pb.numpy()), f"{cls.__name__} resumed from a state dict"


@pytest.mark.parametrize("cls,fn,kw", CASES, ids=CASE_IDS)
def test_torch_state_dict_interchange(dev, cls, fn, kw, rng):
    """torch's state_dict (as numpy) loads into ours and ours into torch; both go on identically."""
    torch = pytest.importorskip("torch")
    host = [rng.standard_normal(s).astype(np.float32) for s in [(5,), (2, 3)]]
    grads = [[rng.standard_normal(h.shape).astype(np.float32) for h in host] for _ in range(6)]
    tparams = [torch.tensor(h, requires_grad=True) for h in host]
    topt = getattr(torch.optim, cls.__name__)(tparams, **kw)
    for g in grads[:2]:
        for p, gp in zip(tparams, g):
            p.grad = torch.tensor(gp)
        topt.step()
    tsd = topt.state_dict()
    as_numpy = {"state": {i: {k: (v.numpy() if torch.is_tensor(v) else v) for k, v in s.items()}
                          for i, s in tsd["state"].items()},
                "param_groups": tsd["param_groups"]}
    params = [hetero.tensor(p.detach().numpy(), device=dev) for p in tparams]
    opt = cls(params, **kw)
    opt.load_state_dict(as_numpy)
    _run(opt, params, grads[2:4])
    for g in grads[2:4]:
        for p, gp in zip(tparams, g):
            p.grad = torch.tensor(gp)
        topt.step()
    for p, tp in zip(params, tparams):
        assert_close(p, tp.detach().numpy().astype(np.float64), rtol=2e-5, atol=1e-6, what="after torch state")
    # and back: ours into a fresh torch optimizer
    ours = opt.state_dict()
    tparams2 = [torch.tensor(p.numpy(), requires_grad=True) for p in params]
    topt2 = getattr(torch.optim, cls.__name__)(tparams2, **kw)
    topt2.load_state_dict({"state": {i: {k: torch.tensor(v) for k, v in s.items()} for i, s in ours["state"].items()},
                           "param_groups": ours["param_groups"]})
    for g in grads[4:]:
        for p, gp in zip(tparams2, g):
            p.grad = torch.tensor(gp)
        topt2.step()
    _run(opt, params, grads[4:])
    for p, tp in zip(params, tparams2):
        assert_close(p, tp.detach().numpy().astype(np.float64), rtol=2e-5, atol=1e-6, what="torch from our state")


def test_load_state_dict_rejects_mismatches(dev, rng):
    _, params = _setup(dev, rng, [(3,), (2,)])
    opt = optim.Adam(params)
    for p in params:
        p.grad = hetero.ones(p.shape, device=dev)
    opt.step()
    good = opt.state_dict()
    other = optim.Adam([hetero.zeros((3,), device=dev)])
    with pytest.raises(ValueError, match="param group 0 has 2 parameters saved"):
        other.load_state_dict(good)
    with pytest.raises(ValueError, match="2 param groups saved"):
        opt.load_state_dict({"state": {}, "param_groups": good["param_groups"] * 2})
    bad = {"state": {0: {**good["state"][0], "exp_avg": np.zeros((4,), np.float32)}},
           "param_groups": good["param_groups"]}
    with pytest.raises(ValueError, match=r"exp_avg' of parameter 0 has shape \(4,\)"):
        opt.load_state_dict(bad)
    with pytest.raises(ValueError, match="unexpected state 'sum'"):
        opt.load_state_dict({"state": {0: {"sum": np.zeros(3)}}, "param_groups": good["param_groups"]})
    with pytest.raises(ValueError, match="maximize=True is not supported"):
        opt.load_state_dict({"state": {}, "param_groups": [{**good["param_groups"][0], "maximize": True}]})
    with pytest.raises(ValueError, match="decoupled_weight_decay=True belongs to AdamW"):
        group = {**good["param_groups"][0], "decoupled_weight_decay": True}  # torch's AdamW
        opt.load_state_dict({"state": {}, "param_groups": [group]})
    with pytest.raises(ValueError, match="expected a dict"):
        opt.load_state_dict({"param_groups": []})
    # nothing was changed by the failed loads
    assert float(opt.state_dict()["state"][1]["step"]) == 1.0


# ----- graph capture contract -----

def test_step_reads_nothing_back_and_launches_once_per_param(dev, rng, monkeypatch):
    _, params = _setup(dev, rng, [(5,), (3, 4), (1,)])
    opt = optim.Adam([{"params": params[:2]}, {"params": params[2:], "lr": 0.1}], lr=0.01)
    sched = optim.CosineAnnealingLR(opt, T_max=4)
    for p in params:
        p.grad = hetero.ones(p.shape, device=dev)
    copies = []
    device_module = importlib.import_module("hetero.device")  # hetero.device is also a function
    real_write = device_module._write_buffer

    def write(queue, buf, host, blocking, *rest):
        copies.append(blocking)
        return real_write(queue, buf, host, blocking, *rest)

    def forbidden(*a, **k):
        raise AssertionError("step() must not wait for the device")

    monkeypatch.setattr(device_module, "_write_buffer", write)
    monkeypatch.setattr(hetero.Tensor, "numpy", forbidden)
    monkeypatch.setattr(hetero.Tensor, "item", forbidden)
    monkeypatch.setattr(type(dev), "synchronize", forbidden)
    monkeypatch.setattr(cl.CommandQueue, "finish", forbidden)
    with recorded_launches(dev) as launches:
        opt.step()
        assert len(launches) == 3 + 2, "one update per parameter and one step count per group"
        first = len(copies)
        assert first == 2 + 2 + 3 * 2, "hyperparameters and slot table per group, zeroed exp_avg(_sq) per param"
        opt.step()  # nothing changed: no copy at all
        assert len(copies) == first
        sched.step()  # the lr changes: both groups' hyperparameters are rewritten, nothing else
        opt.step()
        assert len(copies) == first + 2
        assert not any(copies), "every copy must be non-blocking"
    monkeypatch.undo()
    assert float(opt.state_dict()["state"][0]["step"]) == 3.0


def test_recorded_step_replays_with_changing_lr(dev, rng):
    """What the graph executor does: record one step's launches, replay them; lr changes reach the kernels."""
    host, params = _setup(dev, rng, [(7,), (2, 5)])
    kw = dict(lr=0.01, betas=(0.9, 0.99), weight_decay=0.1)
    opt = optim.Adam(params, **kw)
    sched = optim.StepLR(opt, step_size=2, gamma=0.5)
    grads = [hetero.zeros(p.shape, device=dev) for p in params]
    for p, g in zip(params, grads):
        p.grad = g
    states = [{}, {}]

    def new_grads():
        for i, g in enumerate(grads):
            gh = rng.standard_normal(g.shape).astype(np.float32)
            dev.write(g, gh, blocking=True)
            host[i], states[i] = ref.adam(host[i], _f64(gh), states[i], **{**kw, "lr": opt.param_groups[0]["lr"]})

    new_grads()
    with recorded_launches(dev) as recorded:
        opt.step()
    sched.step()
    for _ in range(5):
        new_grads()
        opt.sync_hyperparameters()
        for kernel, gsize, lsize, args in recorded:
            kernel.set_args(*args)
            cl.enqueue_nd_range_kernel(dev.queue, kernel, gsize, lsize)
        sched.step()
    for p, h in zip(params, host):
        assert_close(p, h, rtol=2e-5, what="replayed Adam")
    assert float(opt.state_dict()["state"][1]["step"]) == 6.0


# ----- bad input -----

@pytest.mark.parametrize("make,match", [
    (lambda p: optim.SGD(p, lr=-1), "SGD: invalid learning rate: -1"),
    (lambda p: optim.SGD(p, momentum=-0.5), "invalid momentum value"),
    (lambda p: optim.SGD(p, weight_decay=-1), "invalid weight_decay"),
    (lambda p: optim.SGD(p, nesterov=True), "Nesterov momentum requires a momentum and zero dampening"),
    (lambda p: optim.SGD(p, momentum=0.9, dampening=0.1, nesterov=True), "Nesterov"),
    (lambda p: optim.Adam(p, betas=(1.0, 0.999)), "beta parameter at index 0"),
    (lambda p: optim.Adam(p, betas=(0.9, -0.1)), "beta parameter at index 1"),
    (lambda p: optim.AdamW(p, eps=-1e-8), "invalid epsilon"),
    (lambda p: optim.Adagrad(p, lr_decay=-1), "invalid lr_decay"),
    (lambda p: optim.Adagrad(p, initial_accumulator_value=-1), "initial_accumulator_value"),
    (lambda p: optim.RMSprop(p, alpha=-0.1), "invalid alpha"),
    (lambda p: optim.SGD([], lr=0.1), "empty parameter list"),
    (lambda p: optim.SGD(p[0], lr=0.1), "iterable of Tensors"),
    (lambda p: optim.SGD([p[0], p[0]], lr=0.1), "appears more than once"),
    (lambda p: optim.SGD([{"params": p}, {"params": p[:1]}], lr=0.1), "appears more than once"),
    (lambda p: optim.SGD([np.zeros(3)], lr=0.1), "float32 Tensors, got ndarray"),
    (lambda p: optim.SGD([hetero.tensor(np.arange(3), device=p[0].device)], lr=0.1), "got a int32 Tensor"),
    (lambda p: optim.SGD([{"lr": 0.1}]), "needs a 'params' entry"),
    (lambda p: optim.StepLR(optim.SGD(p), step_size=0), "step_size must be a positive integer"),
    (lambda p: optim.CosineAnnealingLR(optim.SGD(p), T_max=0), "T_max must be a positive integer"),
    (lambda p: optim.StepLR(object(), step_size=1), "expected a hetero.optim.Optimizer"),
    (lambda p: optim.StepLR(optim.SGD(p), step_size=1, last_epoch=3), "initial_lr"),
])
def test_bad_arguments_raise_value_error(dev, make, match):
    params = [hetero.zeros((3,), device=dev), hetero.zeros((2, 2), device=dev)]
    with pytest.raises(ValueError, match=match):
        make(params)


def test_bad_gradient_and_bad_lr_raise_before_launching(dev):
    q, p = hetero.zeros((2,), device=dev), hetero.zeros((3,), device=dev)
    opt = optim.SGD([{"params": [q]}, {"params": [p]}], lr=0.1)
    q.grad = hetero.ones((2,), device=dev)
    p.grad = hetero.zeros((4,), device=dev)
    with pytest.raises(ValueError, match=r"SGD.step: parameter \(3,\) .* gradient of shape \(4,\)"):
        opt.step()
    p.grad = hetero.ones((3,), device=dev)
    opt.param_groups[1]["lr"] = -0.5
    with pytest.raises(ValueError, match="invalid learning rate"):
        opt.step()
    assert np.array_equal(q.numpy(), np.zeros(2, np.float32)), "the first group was not updated either"
    assert np.array_equal(p.numpy(), np.zeros(3, np.float32))


def test_non_leaf_tensor_is_rejected(dev):
    x = hetero.tensor(np.ones(3), device=dev, requires_grad=True)
    with pytest.raises(ValueError, match="non-leaf"):
        optim.SGD([x * 2.0])


# ----- schedulers -----

def _lrs(sched, n):
    out = [sched.get_last_lr()[0]]
    for _ in range(n - 1):
        sched.step()
        out.append(sched.get_last_lr()[0])
    return out


def test_step_lr_values(dev):
    opt = optim.SGD([hetero.zeros((1,), device=dev)], lr=0.1)
    sched = optim.StepLR(opt, step_size=3, gamma=0.5)
    expected = [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025, 0.025, 0.0125]
    assert np.allclose(_lrs(sched, 10), expected, rtol=1e-15)
    assert opt.param_groups[0]["lr"] == sched.get_last_lr()[0]
    assert opt.param_groups[0]["initial_lr"] == 0.1


def test_cosine_annealing_lr_values(dev):
    opt = optim.SGD([hetero.zeros((1,), device=dev)], lr=0.1)
    sched = optim.CosineAnnealingLR(opt, T_max=4, eta_min=0.01)
    h = 0.09 * math.sqrt(0.5) / 2  # (base - eta_min) * cos(pi / 4) / 2
    expected = [0.1, 0.055 + h, 0.055, 0.055 - h, 0.01, 0.055 - h, 0.055, 0.055 + h, 0.1]  # periodic past T_max
    assert np.allclose(_lrs(sched, 9), expected, rtol=1e-14)


def test_scheduler_per_group_and_state_dict_resume(dev):
    params = [hetero.zeros((1,), device=dev), hetero.zeros((2,), device=dev)]
    opt = optim.SGD([{"params": params[:1]}, {"params": params[1:], "lr": 1.0}], lr=0.1)
    sched = optim.CosineAnnealingLR(opt, T_max=10, eta_min=0.001)
    for _ in range(4):
        sched.step()
    assert np.allclose(sched.get_last_lr(), [ref.cosine_annealing_lr(b, 4, 10, 0.001) for b in (0.1, 1.0)])
    saved, opt_saved = sched.state_dict(), opt.state_dict()
    assert "optimizer" not in saved
    later = _lrs(sched, 4)[1:]
    opt2 = optim.SGD([{"params": [hetero.zeros((1,), device=dev)]}, {"params": [hetero.zeros((2,), device=dev)]}])
    opt2.load_state_dict(opt_saved)
    sched2 = optim.CosineAnnealingLR(opt2, T_max=3)
    sched2.load_state_dict(saved)
    assert _lrs(sched2, 4)[1:] == later


@pytest.mark.parametrize("make,tmake", [
    (lambda o: optim.StepLR(o, 3), lambda t, o: t.optim.lr_scheduler.StepLR(o, 3)),
    (lambda o: optim.StepLR(o, 2, gamma=0.7), lambda t, o: t.optim.lr_scheduler.StepLR(o, 2, gamma=0.7)),
    (lambda o: optim.CosineAnnealingLR(o, 7), lambda t, o: t.optim.lr_scheduler.CosineAnnealingLR(o, 7)),
    (lambda o: optim.CosineAnnealingLR(o, 5, eta_min=0.002),
     lambda t, o: t.optim.lr_scheduler.CosineAnnealingLR(o, 5, eta_min=0.002)),
])
def test_schedulers_match_torch(dev, make, tmake):
    torch = pytest.importorskip("torch")
    opt = optim.SGD([{"params": [hetero.zeros((1,), device=dev)]}, {"params": [hetero.zeros((1,), device=dev)],
                                                                     "lr": 0.03}], lr=0.1)
    topt = torch.optim.SGD([{"params": [torch.zeros(1)]}, {"params": [torch.zeros(1)], "lr": 0.03}], lr=0.1)
    sched, tsched = make(opt), tmake(torch, topt)
    for _ in range(25):
        assert np.allclose(sched.get_last_lr(), tsched.get_last_lr(), rtol=1e-12, atol=1e-15)
        topt.step()
        sched.step()
        tsched.step()


@pytest.mark.parametrize("groups, message", [
    ("x", "param group 0 must be a dict"),
    ([{"lr": 0.1, "params": [0, 1]}], "lacks dampening, momentum, nesterov, weight_decay"),
])
def test_load_state_dict_refuses_malformed_param_groups(dev, groups, message):
    p = hetero.tensor(np.ones(3, np.float32), device=dev, requires_grad=True)
    q = hetero.tensor(np.ones(2, np.float32), device=dev, requires_grad=True)
    opt = optim.SGD([p, q], lr=0.5)
    with pytest.raises(ValueError, match=message):
        opt.load_state_dict({"state": {}, "param_groups": groups})
    assert opt.param_groups[0]["lr"] == 0.5, "a refused state_dict changed the optimizer"
