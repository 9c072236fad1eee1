"""Activations and PReLU: reference vs finite differences, then device vs the float64 reference."""

import gc
import re

import numpy as np
import pytest

import hetero
from hetero import nn, optim, program
from hetero.nn import functional as F
from hetero.ops import activation as act
from hetero.reference import activation as ref
from hetero.reference import softmax as ref_softmax
from tests.helpers import assert_close, numeric_grad, shapes

# name -> (device fn, reference forward, reference backward), each taking the same keyword hyperparameters
CASES = {
    "relu": (act.relu, ref.relu, ref.relu_backward, {}),
    "leaky_relu": (act.leaky_relu, ref.leaky_relu, ref.leaky_relu_backward, {}),
    "leaky_relu_0.2": (act.leaky_relu, ref.leaky_relu, ref.leaky_relu_backward, {"negative_slope": 0.2}),
    "leaky_relu_neg": (act.leaky_relu, ref.leaky_relu, ref.leaky_relu_backward, {"negative_slope": -0.5}),
    "elu": (act.elu, ref.elu, ref.elu_backward, {}),
    "elu_0.3": (act.elu, ref.elu, ref.elu_backward, {"alpha": 0.3}),
    "elu_neg": (act.elu, ref.elu, ref.elu_backward, {"alpha": -0.7}),
    "selu": (act.selu, ref.selu, ref.selu_backward, {}),
    "sigmoid": (act.sigmoid, ref.sigmoid, ref.sigmoid_backward, {}),
    "tanh": (act.tanh, ref.tanh, ref.tanh_backward, {}),
}

SHAPES = shapes(
    [(1,), (7,), (3, 5), (2, 3, 4, 5), (1, 1, 1, 1), (4, 1, 9, 1), (3, 257), (), (0, 3)],
    [(7,), (2, 3)],
)


def _away_from_kinks(rng, shape, scale=2.0):
    """Inputs at least 0.05 from 0, where the piecewise activations are not differentiable."""
    x = rng.standard_normal(shape) * scale
    return np.where(x >= 0, x + 0.05, x - 0.05)


@pytest.mark.parametrize("name", list(CASES))
def test_reference_gradients_match_finite_differences(name, rng):
    _, f, fb, kw = CASES[name]
    x = _away_from_kinks(rng, (3, 4))
    w = rng.standard_normal(x.shape)
    assert np.allclose(fb(w, x, **kw), numeric_grad(lambda v: (f(v, **kw) * w).sum(), x), atol=1e-6)


@pytest.mark.parametrize("wshape", [(1,), (), (3,)])
def test_prelu_reference_gradients_match_finite_differences(wshape, rng):
    x = _away_from_kinks(rng, (2, 3, 4))
    w = rng.standard_normal(wshape)
    g = rng.standard_normal(x.shape)
    gx, gw = ref.prelu_backward(g, x, w)
    assert gw.shape == w.shape
    assert np.allclose(gx, numeric_grad(lambda v: (ref.prelu(v, w) * g).sum(), x), atol=1e-6)
    assert np.allclose(gw, numeric_grad(lambda v: (ref.prelu(x, v) * g).sum(), w), atol=1e-6)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", list(CASES))
def test_forward_and_backward_match_reference(dev, name, shape, rng):
    fn, f, fb, kw = CASES[name]
    x = (rng.standard_normal(shape) * 3).astype(np.float32)
    if x.size:
        x.reshape(-1)[0] = 0.0  # PyTorch's gradient convention at the kink
    X = hetero.tensor(x, device=dev, requires_grad=True)
    y = fn(X, **kw)
    x64 = x.astype(np.float64)
    assert_close(y, f(x64, **kw), rtol=1e-5, atol=1e-6, what=f"{name} forward {shape}")
    g = rng.standard_normal(shape).astype(np.float32)
    y.backward(hetero.tensor(g, device=dev))
    assert_close(X.grad, fb(g.astype(np.float64), x64, **kw), rtol=1e-5, atol=1e-6, what=f"{name} grad {shape}")


def test_saturated_inputs_stay_finite(dev):
    x = np.array([-100.0, -30.0, 30.0, 100.0], np.float32)
    X = hetero.tensor(x, device=dev)
    assert_close(act.sigmoid(X), ref.sigmoid(x.astype(np.float64)), atol=1e-7, what="sigmoid saturation")
    assert_close(act.tanh(X), np.tanh(x.astype(np.float64)), atol=1e-7, what="tanh saturation")
    assert_close(act.elu(X), ref.elu(x.astype(np.float64)), atol=1e-5, what="elu saturation")


PRELU_CASES = shapes(
    [((2, 3, 4, 5), (3,)), ((2, 3), (3,)), ((5, 1, 7), (1,)), ((2, 3, 4, 5), (1,)), ((1, 1, 1, 1), (1,)),
     ((3, 4), ()), ((9,), (1,)), ((1, 6, 1, 1), (6,)),
     ((4, 3, 33, 35), (3,)),  # 4620 elements per channel: several work-groups per channel
     ((20001,), (1,)), ((0, 3), (3,))],
    [((2, 3, 2), (3,)), ((5,), (1,))],
)


@pytest.mark.parametrize("xshape,wshape", PRELU_CASES)
def test_prelu_forward_and_backward_match_reference(dev, xshape, wshape, rng):
    x = (rng.standard_normal(xshape)).astype(np.float32)
    if x.size:
        x.reshape(-1)[0] = 0.0
    w = (rng.standard_normal(wshape) * 0.5).astype(np.float32)
    X = hetero.tensor(x, device=dev, requires_grad=True)
    W = hetero.tensor(w, device=dev, requires_grad=True)
    y = act.prelu(X, W)
    assert_close(y, ref.prelu(x.astype(np.float64), w.astype(np.float64)), atol=1e-6, what="prelu forward")
    g = rng.standard_normal(xshape).astype(np.float32)
    y.backward(hetero.tensor(g, device=dev))
    gx, gw = ref.prelu_backward(g.astype(np.float64), x.astype(np.float64), w.astype(np.float64))
    assert_close(X.grad, gx, atol=1e-6, what="prelu grad input")
    # a sum of up to 20k products in float32
    assert_close(W.grad, gw, rtol=1e-5, atol=1e-4, what="prelu grad weight")


def test_prelu_weight_only_gradient(dev, rng):
    x = rng.standard_normal((3, 2, 5)).astype(np.float32)
    w = np.array([0.1, -0.2], np.float32)
    W = hetero.tensor(w, device=dev, requires_grad=True)
    y = act.prelu(hetero.tensor(x, device=dev), W)
    y.backward(hetero.ones(y.shape, device=dev))
    assert_close(W.grad, ref.prelu_backward(np.ones(x.shape), x.astype(np.float64), w)[1], atol=1e-5,
                 what="prelu weight grad with input not requiring grad")


def test_bad_inputs_raise_value_error(dev):
    xi = hetero.tensor(np.zeros((2, 3), np.int32), device=dev)
    x = hetero.zeros((2, 3, 4), device=dev)
    with pytest.raises(ValueError, match="relu: expected a float32 tensor"):
        act.relu(xi)
    with pytest.raises(ValueError, match="sigmoid: expected a Tensor"):
        act.sigmoid(np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="leaky_relu: negative_slope must be a finite number"):
        act.leaky_relu(x, float("nan"))
    with pytest.raises(ValueError, match="elu: alpha must be a finite number"):
        act.elu(x, "1")
    with pytest.raises(ValueError, match=r"prelu: input \(2, 3, 4\) has 3 channels .* weight \(4,\)"):
        act.prelu(x, hetero.zeros((4,), device=dev))
    with pytest.raises(ValueError, match=r"prelu: weight must be a scalar or 1-D, got shape \(1, 3\)"):
        act.prelu(x, hetero.zeros((1, 3), device=dev))
    with pytest.raises(ValueError, match=r"prelu: input \(5,\) has 1 channels"):
        act.prelu(hetero.zeros((5,), device=dev), hetero.zeros((5,), device=dev))
    with pytest.raises(ValueError, match="prelu: weight must be a float32 tensor"):
        act.prelu(x, hetero.tensor(np.zeros(3, np.int32), device=dev))


@pytest.mark.parametrize("name", ["sigmoid", "elu_neg"])
def test_graph_frees_without_the_cyclic_gc(dev, name):
    """Saved tensors must not form a reference cycle: GC-driven frees can land inside the pool's lock."""
    fn, _, _, kw = CASES[name]
    X = hetero.zeros((3, 50), device=dev)
    X.requires_grad = True
    gc.disable()
    try:
        before = dev.memory_stats()["bytes_in_use"]
        y = fn(X, **kw)
        assert dev.memory_stats()["bytes_in_use"] > before
        del y
        assert dev.memory_stats()["bytes_in_use"] == before
    finally:
        gc.enable()


def test_activation_table_matches_common_h():
    """hetero.ops.activation.ACTIVATIONS is the one table: its ids and alpha flags are common.h's."""
    text = (program.kernel_dir() / "common.h").read_text()
    ids = {m[1].lower(): int(m[2]) for m in re.finditer(r"^#define ACT_(\w+) (\d+)\s*$", text, re.M)}
    assert ids == {name: a.id for name, a in act.ACTIVATIONS.items()}
    guard = re.search(r"^#if (.*)\n#ifndef ACT_ALPHA", text, re.M)
    with_alpha = {m.lower() for m in re.findall(r"ACT == ACT_(\w+)", guard[1])}
    assert with_alpha == {name for name, a in act.ACTIVATIONS.items() if a.alpha}


# every path that takes an activation with a negative alpha, where act_backward's y > 0 rule does not hold
NEGATIVE_ALPHA = {
    "leaky_relu": (lambda a: nn.LeakyReLU(negative_slope=a), lambda x, a: F.leaky_relu(x, a), -0.5,
                   ref.leaky_relu, ref.leaky_relu_backward),
    "elu": (lambda a: nn.ELU(alpha=a), lambda x, a: F.elu(x, a), -0.7, ref.elu, ref.elu_backward),
}


@pytest.mark.parametrize("name", list(NEGATIVE_ALPHA))
@pytest.mark.parametrize("path", ["functional", "module"])
def test_negative_alpha_forward_and_backward(dev, rng, name, path):
    layer, fn, alpha, f, fb = NEGATIVE_ALPHA[name]
    x = _away_from_kinks(rng, (4, 9)).astype(np.float32)
    X = hetero.tensor(x, device=dev, requires_grad=True)
    y = fn(X, alpha) if path == "functional" else layer(alpha)(X)
    assert_close(y, f(x.astype(np.float64), alpha), rtol=1e-5, atol=1e-6, what=f"{path} {name} forward")
    g = rng.standard_normal(x.shape).astype(np.float32)
    y.backward(hetero.tensor(g, device=dev))
    assert_close(X.grad, fb(g.astype(np.float64), x.astype(np.float64), alpha), rtol=1e-5, atol=1e-6,
                 what=f"{path} {name} grad")


def _linear_then(dev, name: str):
    layer, _, alpha, f, fb = NEGATIVE_ALPHA[name]
    hetero.nn.init.manual_seed(3)
    model = nn.Sequential(nn.Linear(6, 5, device=dev), layer(alpha))
    return model, alpha, f, fb


@pytest.mark.parametrize("name", list(NEGATIVE_ALPHA))
def test_negative_alpha_in_a_compiled_inference_plan(dev, rng, name):
    model, alpha, f, _ = _linear_then(dev, name)
    w, b = (p.numpy().astype(np.float64) for p in model.parameters())
    run = hetero.compile(model)
    for _ in range(2):  # the trace, then a replay
        x = rng.standard_normal((3, 6)).astype(np.float32)
        assert_close(run(x), f(x @ w.T + b, alpha), rtol=1e-5, atol=1e-5, what=f"compiled {name}")


@pytest.mark.parametrize("name", list(NEGATIVE_ALPHA))
def test_negative_alpha_in_a_compiled_training_step(dev, rng, name):
    model, alpha, f, fb = _linear_then(dev, name)
    w, b = (p.numpy().astype(np.float64) for p in model.parameters())
    lr = 0.5
    step = hetero.compile_step(model, F.cross_entropy, optim.SGD(model.parameters(), lr=lr))
    for _ in range(3):  # the trace, then replays
        x = rng.standard_normal((4, 6)).astype(np.float32)
        t = rng.integers(0, 5, 4).astype(np.int32)
        x64 = x.astype(np.float64)
        z = x64 @ w.T + b
        a = f(z, alpha)
        loss = step(x, t)
        assert_close(loss, ref_softmax.cross_entropy(a, t), rtol=1e-5, atol=1e-5, what=f"{name} loss")
        dz = fb(ref_softmax.cross_entropy_backward(np.array(1.0), a, t), z, alpha)
        w, b = w - lr * dz.T @ x64, b - lr * dz.sum(0)
        got_w, got_b = (p.numpy() for p in model.parameters())
        assert_close(got_w, w, rtol=1e-4, atol=1e-5, what=f"{name} weight after a compiled step")
        assert_close(got_b, b, rtol=1e-4, atol=1e-5, what=f"{name} bias after a compiled step")


SPECIAL = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.5, -1.5, 30.0, -30.0, np.nan], np.float32)

TORCH = {  # CASES name -> the torch function with the same hyperparameters
    "relu": lambda t, x: t.relu(x),
    "leaky_relu": lambda t, x: t.nn.functional.leaky_relu(x),
    "leaky_relu_0.2": lambda t, x: t.nn.functional.leaky_relu(x, 0.2),
    "leaky_relu_neg": lambda t, x: t.nn.functional.leaky_relu(x, -0.5),
    "elu": lambda t, x: t.nn.functional.elu(x),
    "elu_0.3": lambda t, x: t.nn.functional.elu(x, 0.3),
    "elu_neg": lambda t, x: t.nn.functional.elu(x, -0.7),
    "selu": lambda t, x: t.nn.functional.selu(x),
    "sigmoid": lambda t, x: t.sigmoid(x),
    "tanh": lambda t, x: t.tanh(x),
}


def _special_case(dev, name):
    fn, rfw, rbw, kw = CASES[name]
    g = np.linspace(-1, 1, SPECIAL.size).astype(np.float32)
    x = hetero.tensor(SPECIAL, device=dev, requires_grad=True)
    y = fn(x, **kw)
    y.backward(hetero.tensor(g, device=dev))
    return g, y.numpy(), x.grad.numpy(), rfw(SPECIAL.astype(np.float64), **kw), rbw(g, SPECIAL.astype(np.float64), **kw)


@pytest.mark.parametrize("name", list(CASES))
def test_nan_and_inf_propagate_as_in_the_reference(dev, name):
    """relu(NaN) was 0 (fmax), hiding a NaN; NaN inputs must give NaN outputs and torch's gradients."""
    _, y, dx, ry, rdx = _special_case(dev, name)
    assert np.isnan(y[SPECIAL != SPECIAL]).all()
    np.testing.assert_allclose(y, ry, rtol=1e-5, atol=1e-6, equal_nan=True)
    np.testing.assert_allclose(dx, rdx, rtol=1e-5, atol=1e-6, equal_nan=True)


@pytest.mark.parametrize("name", list(CASES))
def test_nan_and_inf_match_torch(dev, name):
    torch = pytest.importorskip("torch")
    g, y, dx, ry, rdx = _special_case(dev, name)
    tx = torch.tensor(SPECIAL, requires_grad=True)
    ty = TORCH[name](torch, tx)
    ty.backward(torch.tensor(g))
    for ours, theirs in ((y, ty.detach().numpy()), (dx, tx.grad.numpy()), (ry, ty.detach().numpy()),
                         (rdx, tx.grad.numpy())):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6, equal_nan=True)


def test_prelu_propagates_nan_as_torch(dev):
    x = hetero.tensor(SPECIAL, device=dev, requires_grad=True)
    w = hetero.tensor(np.array([0.25], np.float32), device=dev, requires_grad=True)
    y = F.prelu(x, w)
    y.backward(hetero.ones(y.shape, device=dev))
    ry = ref.prelu(SPECIAL.astype(np.float64), np.array([0.25]))
    rdx, rdw = ref.prelu_backward(np.ones(SPECIAL.size), SPECIAL.astype(np.float64), np.array([0.25]))
    np.testing.assert_allclose(y.numpy(), ry, equal_nan=True)
    np.testing.assert_allclose(x.grad.numpy(), rdx, equal_nan=True)
    assert np.isnan(w.grad.numpy()).all() and np.isnan(rdw).all()  # a NaN x * g joins the slope's sum
