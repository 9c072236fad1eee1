"""Module mechanics (registration, names, state_dict, load errors, modes, grads, devices), layers and init."""

from __future__ import annotations

import math

import numpy as np
import pytest

import hetero
from hetero.nn import functional as F
from hetero.nn import init
from hetero.nn.activation import ELU, SELU, LeakyReLU, LogSoftmax, PReLU, ReLU, Sigmoid, Softmax, Tanh
from hetero.nn.container import ModuleList, Sequential
from hetero.nn.conv import Conv2d
from hetero.nn.dropout import Dropout
from hetero.nn.linear import Flatten, Identity, Linear
from hetero.nn.module import IncompatibleKeys, Module, Parameter, StateDictError
from hetero.nn.normalization import BatchNorm2d
from hetero.nn.pooling import AdaptiveAvgPool2d, AvgPool2d, LocalResponseNorm, MaxPool2d
from tests.helpers import assert_close


class Toy(Module):
    """Parameters, a non-persistent and a persistent buffer, and children, in a known order."""

    def __init__(self, dev, rng):
        super().__init__()
        self.w = Parameter(hetero.tensor(rng.standard_normal((3, 2)), device=dev))
        self.register_buffer("stat", hetero.tensor(rng.standard_normal(3), device=dev))
        self.register_buffer("scratch", hetero.zeros((2,), device=dev), persistent=False)
        self.child = Leaf(dev, rng)
        self.b = Parameter(hetero.tensor(rng.standard_normal(3), device=dev))
        self.seq = Sequential(Leaf(dev, rng), Identity(), Leaf(dev, rng))
        self.note = "plain attribute"


class Leaf(Module):
    def __init__(self, dev, rng):
        super().__init__()
        self.weight = Parameter(hetero.tensor(rng.standard_normal((2, 2)), device=dev))
        self.register_parameter("bias", None)
        self.register_buffer("count", hetero.tensor(np.array(0), device=dev, dtype=np.int32))


PARAM_KEYS = ["w", "b", "child.weight", "seq.0.weight", "seq.2.weight"]
STATE_KEYS = ["w", "b", "stat", "child.weight", "child.count", "seq.0.weight", "seq.0.count",
              "seq.2.weight", "seq.2.count"]


def _snapshot(m: Module) -> dict[str, np.ndarray]:
    return {k: v.numpy().copy() for k, v in m.state_dict().items()}


# ---- registration and traversal ---------------------------------------------------------------

def test_named_parameters_order_and_dotted_keys(dev, rng):
    m = Toy(dev, rng)
    assert [k for k, _ in m.named_parameters()] == PARAM_KEYS
    assert all(isinstance(p, Parameter) and p.requires_grad for p in m.parameters())
    assert [k for k, _ in m.named_parameters(recurse=False)] == ["w", "b"]
    assert [k for k, _ in m.named_buffers()] == ["stat", "scratch", "child.count", "seq.0.count", "seq.2.count"]
    assert [k for k, _ in m.named_modules()] == ["", "child", "seq", "seq.0", "seq.1", "seq.2"]
    assert [type(c).__name__ for c in m.children()] == ["Leaf", "Sequential"]
    assert m.child.bias is None
    assert m.note == "plain attribute"


def test_shared_parameter_listed_once(dev, rng):
    m = Sequential(Leaf(dev, rng), Leaf(dev, rng))
    m[1].weight = m[0].weight
    assert [k for k, _ in m.named_parameters()] == ["0.weight"]
    assert len(list(m.named_parameters(remove_duplicate=False))) == 2


def test_setattr_rules(dev, rng):
    m = Leaf(dev, rng)
    with pytest.raises(TypeError, match="parameter 'weight'"):
        m.weight = hetero.zeros((2, 2), device=dev)  # a plain Tensor is not a Parameter
    m.count = hetero.tensor(np.array(5), device=dev, dtype=np.int32)  # buffers take any Tensor
    assert m.count.item() == 5 and "count" in dict(m.named_buffers())
    with pytest.raises(TypeError, match="buffer 'count'"):
        m.count = np.zeros(1)
    m.extra = Leaf(dev, rng)
    assert "extra.weight" in dict(m.named_parameters())
    del m.extra
    assert "extra.weight" not in dict(m.named_parameters())
    with pytest.raises(AttributeError, match="no attribute 'missing'"):
        _ = m.missing
    with pytest.raises(KeyError):
        m.register_buffer("a.b", None)

    class NoInit(Module):
        def __init__(self):
            self.p = Parameter(hetero.zeros((1,), device=dev))

    with pytest.raises(AttributeError, match="Module.__init__"):
        NoInit()


def test_parameter_shares_storage(dev):
    t = hetero.tensor(np.arange(4.0), device=dev)
    p = Parameter(t)
    assert p.storage is t.storage and p.requires_grad and p.grad_fn is None
    assert not Parameter(t, requires_grad=False).requires_grad
    with pytest.raises(TypeError, match="hetero.Tensor"):
        Parameter(np.zeros(3))


def test_sequential_indexing(dev):
    relu, tanh, flat = ReLU(), Tanh(), Flatten()
    s = Sequential(relu, tanh, flat)
    assert len(s) == 3 and s[0] is relu and s[-1] is flat and list(s) == [relu, tanh, flat]
    assert [k for k, _ in s.named_children()] == ["0", "1", "2"]
    sub = s[1:]
    assert isinstance(sub, Sequential) and list(sub) == [tanh, flat]
    with pytest.raises(IndexError):
        s[3]
    s.append(Sigmoid())
    assert len(s) == 4 and [k for k, _ in s.named_children()][-1] == "3"
    ml = ModuleList([relu, tanh])
    assert len(ml) == 2 and ml[1] is tanh and [k for k, _ in ml.named_modules()] == ["", "0", "1"]


# ---- state_dict -------------------------------------------------------------------------------

def test_state_dict_keys_values_and_round_trip(dev, rng):
    a, b = Toy(dev, rng), Toy(dev, rng)
    sd = a.state_dict()
    assert list(sd) == STATE_KEYS  # params, then persistent buffers, then children, as torch
    assert all(isinstance(v, hetero.Tensor) and not v.requires_grad for v in sd.values())
    assert sd["child.count"].dtype == np.int32
    ids = {k: id(p) for k, p in b.named_parameters()}
    result = b.load_state_dict(sd)
    assert result == IncompatibleKeys([], [])
    assert {k: id(p) for k, p in b.named_parameters()} == ids  # copied in place: optimizers keep their tensors
    for k, v in b.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), sd[k].numpy(), err_msg=k)


def test_load_state_dict_from_numpy_converts_dtypes(dev, rng):
    m = Toy(dev, rng)
    host = {k: v.numpy().astype(np.float64 if v.dtype == np.float32 else np.int64) for k, v in m.state_dict().items()}
    host["w"] = rng.standard_normal((3, 2))
    host["seq.2.count"] = np.array(7, dtype=np.int64)  # torch stores num_batches_tracked as int64
    m.load_state_dict(host)
    assert_close(m.w, host["w"], 0, 1e-7, "w")
    assert m.seq[2].count.dtype == np.int32 and m.seq[2].count.item() == 7


def _bad_load(m: Module, sd: dict, *needles: str) -> None:
    before = _snapshot(m)
    with pytest.raises(StateDictError) as e:
        m.load_state_dict(sd)
    for n in needles:
        assert n in str(e.value), f"{n!r} not in {e.value}"
    after = _snapshot(m)
    for k in before:
        np.testing.assert_array_equal(after[k], before[k], err_msg=f"{k} changed by a failed load")


def test_load_state_dict_errors_leave_model_unchanged(dev, rng):
    m = Toy(dev, rng)
    good = {k: v.numpy() + 1 for k, v in Toy(dev, rng).state_dict().items()}

    missing = dict(good)
    del missing["seq.0.weight"]
    _bad_load(m, missing, "missing key(s): seq.0.weight")

    extra = dict(good, **{"seq.5.weight": np.zeros((2, 2)), "head.bias": np.zeros(3)})
    _bad_load(m, extra, "unexpected key(s): seq.5.weight, head.bias")

    # the bad key comes last, after keys that would load: nothing may be copied before validation ends
    shape = dict(good, **{"seq.2.weight": np.zeros((3, 2))})
    _bad_load(m, shape, "seq.2.weight: size mismatch: expected shape (2, 2), got (3, 2)")

    together = dict(missing, **{"w": np.zeros(6), "x": np.zeros(1)})
    _bad_load(m, together, "missing key(s): seq.0.weight", "unexpected key(s): x",
              "w: size mismatch: expected shape (3, 2), got (6,)")

    _bad_load(m, dict(good, **{"child.count": np.array(1.5)}), "child.count: expected integer values")
    _bad_load(m, dict(good, **{"child.count": np.array(2**40)}), "do not fit in int32")
    _bad_load(m, dict(good, **{"b": np.array(["a", "b", "c"])}), "b: unsupported dtype")
    with pytest.raises(TypeError):
        m.load_state_dict([1, 2])


def test_load_state_dict_non_strict(dev, rng):
    m = Toy(dev, rng)
    before = _snapshot(m)
    new_w = rng.standard_normal((3, 2))
    result = m.load_state_dict({"w": new_w, "unknown": np.zeros(1)}, strict=False)
    assert result.unexpected_keys == ["unknown"]
    assert result.missing_keys == [k for k in STATE_KEYS if k != "w"]
    assert_close(m.w, new_w, 0, 1e-7, "w")
    np.testing.assert_array_equal(m.b.numpy(), before["b"])
    _snapshot_before = _snapshot(m)
    with pytest.raises(StateDictError, match="size mismatch"):  # shapes are checked even when not strict
        m.load_state_dict({"w": np.zeros((2, 3))}, strict=False)
    np.testing.assert_array_equal(m.w.numpy(), _snapshot_before["w"])


# ---- modes, grads, devices, printing ----------------------------------------------------------

def test_train_eval_propagate(dev, rng):
    m = Toy(dev, rng)
    assert all(x.training for x in m.modules())
    assert m.eval() is m
    assert not any(x.training for x in m.modules())
    m.seq.train()
    assert m.seq[2].training and not m.training and not m.child.training
    assert m.train() is m and all(x.training for x in m.modules())
    with pytest.raises(ValueError, match="bool"):
        m.train("no")


def test_zero_grad(dev, rng):
    m = Toy(dev, rng)
    for p in m.parameters():
        p.grad = hetero.ones(p.shape, device=dev)
    m.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.numpy().any() for p in m.parameters())
    m.zero_grad()
    assert all(p.grad is None for p in m.parameters())


def _other_device(dev):
    for d in hetero.select_devices("all"):
        if d is not dev:
            return d
    if dev.info.parent is None and dev.info.max_sub_devices >= 2:
        return hetero.select_devices(f"{dev.id}/2")[1]
    pytest.skip("needs a second device or a device that splits into sub-devices")


def test_to_device_moves_params_buffers_and_grads(dev, rng):
    m = Toy(dev, rng)
    m.w.grad = hetero.ones(m.w.shape, device=dev)
    before = _snapshot(m)
    assert m.to(dev) is m and m.w.device is dev
    other = _other_device(dev)
    assert m.to(other) is m
    assert all(t.device is other for t in list(m.parameters()) + list(m.buffers()))
    assert all(isinstance(p, Parameter) and p.requires_grad for p in m.parameters())
    assert m.w.grad.device is other and m.w.grad.numpy().sum() == 6
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), before[k], err_msg=k)


def test_repr_matches_torch_format(dev):
    net = Sequential(Conv2d(1, 6, 5, padding=2, device=dev), ReLU(inplace=True), MaxPool2d(2),
                     BatchNorm2d(6, device=dev), Flatten(), Dropout(), Linear(24, 10, bias=False, device=dev),
                     LocalResponseNorm(5, k=2.0), AdaptiveAvgPool2d((1, 1)), LeakyReLU(0.2), PReLU(device=dev),
                     Conv2d(4, 8, (3, 1), stride=2, groups=2, bias=False, dilation=(1, 2), device=dev))
    # the string torch 2.13 prints for the same torch.nn layers
    assert repr(net) == """Sequential(
  (0): Conv2d(1, 6, kernel_size=(5, 5), stride=(1, 1), padding=(2, 2))
  (1): ReLU(inplace=True)
  (2): MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)
  (3): BatchNorm2d(6, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)
  (4): Flatten(start_dim=1, end_dim=-1)
  (5): Dropout(p=0.5, inplace=False)
  (6): Linear(in_features=24, out_features=10, bias=False)
  (7): LocalResponseNorm(5, alpha=0.0001, beta=0.75, k=2.0)
  (8): AdaptiveAvgPool2d(output_size=(1, 1))
  (9): LeakyReLU(negative_slope=0.2)
  (10): PReLU(num_parameters=1)
  (11): Conv2d(4, 8, kernel_size=(3, 1), stride=(2, 2), dilation=(1, 2), groups=2, bias=False)
)"""
    assert repr(Sequential(Sequential(ReLU()))) == "Sequential(\n  (0): Sequential(\n    (0): ReLU()\n  )\n)"


# ---- layers: hyperparameters, parameters, wiring ------------------------------------------------

def test_layer_parameter_shapes_and_keys(dev):
    assert {k: v.shape for k, v in Conv2d(6, 4, 3, groups=2, device=dev).state_dict().items()} == \
        {"weight": (4, 3, 3, 3), "bias": (4,)}
    assert list(Conv2d(3, 4, 1, bias=False, device=dev).state_dict()) == ["weight"]
    assert {k: v.shape for k, v in Linear(5, 7, device=dev).state_dict().items()} == \
        {"weight": (7, 5), "bias": (7,)}
    bn = BatchNorm2d(3, device=dev)
    sd = bn.state_dict()
    assert list(sd) == ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    assert sd["num_batches_tracked"].shape == () and sd["num_batches_tracked"].dtype == np.int32
    np.testing.assert_array_equal(sd["weight"].numpy(), np.ones(3))
    np.testing.assert_array_equal(sd["bias"].numpy(), np.zeros(3))
    np.testing.assert_array_equal(sd["running_mean"].numpy(), np.zeros(3))
    np.testing.assert_array_equal(sd["running_var"].numpy(), np.ones(3))
    assert sd["num_batches_tracked"].item() == 0
    assert list(BatchNorm2d(3, affine=False, track_running_stats=False, device=dev).state_dict()) == []
    assert list(BatchNorm2d(3, bias=False, device=dev).state_dict())[:2] == ["weight", "running_mean"]
    np.testing.assert_array_equal(PReLU(3, init=0.1, device=dev).weight.numpy(), np.full(3, 0.1, np.float32))
    for layer in (ReLU(), Tanh(), MaxPool2d(2), Dropout(), Flatten(), LocalResponseNorm(3)):
        assert list(layer.parameters()) == []


@pytest.mark.parametrize("make, needle", [
    (lambda d: Conv2d(3, 4, 3, groups=2, device=d), "in_channels (3) must be divisible by groups (2)"),
    (lambda d: Conv2d(4, 3, 3, groups=2, device=d), "out_channels (3) must be divisible by groups (2)"),
    (lambda d: Conv2d(0, 3, 3, device=d), "in_channels must be a positive integer"),
    (lambda d: Conv2d(3, 3, 0, device=d), "kernel_size must be >= 1"),
    (lambda d: Conv2d(3, 3, 3, stride=0, device=d), "stride must be >= 1"),
    (lambda d: Conv2d(3, 3, 3, padding=-1, device=d), "padding must be >= 0"),
    (lambda d: Conv2d(3, 3, (3, 3, 3), device=d), "kernel_size must be an int or a pair"),
    (lambda d: Conv2d(3, 3, 3, padding="same", stride=2, device=d), "padding='same' needs stride 1"),
    (lambda d: Conv2d(3, 3, 2, padding="same", device=d), "asymmetric"),
    (lambda d: Conv2d(3, 3, 3, padding_mode="reflect", device=d), "padding_mode"),
    (lambda d: Linear(0, 3, device=d), "in_features must be a positive integer"),
    (lambda d: BatchNorm2d(0, device=d), "num_features"),
    (lambda d: BatchNorm2d(3, momentum=1.5, device=d), "momentum"),
    (lambda d: Dropout(1.5), "between 0 and 1"),
    (lambda d: MaxPool2d(2, padding=2), "at most half"),
    (lambda d: AvgPool2d(3, stride=0), "stride must be >= 1"),
    (lambda d: AdaptiveAvgPool2d(0), "output_size"),
    (lambda d: LocalResponseNorm(0), "size must be a positive int"),
    (lambda d: PReLU(0, device=d), "num_parameters"),
])
def test_layer_bad_hyperparameters(dev, make, needle):
    with pytest.raises(ValueError) as e:
        make(dev)
    assert needle in str(e.value)


def test_conv_same_and_valid_padding(dev, rng):
    conv = Conv2d(2, 3, 3, padding="same", dilation=2, device=dev)
    assert conv._pad == (2, 2) and "padding=same" in repr(conv)
    x = hetero.tensor(rng.standard_normal((1, 2, 7, 6)), device=dev)
    assert conv(x).shape == (1, 3, 7, 6)
    assert Conv2d(2, 3, 3, padding="valid", device=dev)(x).shape == (1, 3, 5, 4)


def test_linear_forward_backward_wiring(dev, rng):
    lin = Linear(5, 3, device=dev)
    x = rng.standard_normal((4, 5))
    y = lin(hetero.tensor(x, device=dev))
    w, b = lin.weight.numpy().astype(np.float64), lin.bias.numpy().astype(np.float64)
    assert_close(y, x @ w.T + b, 1e-5, 1e-5, "linear")
    F.mul(y, 1.0).backward(hetero.ones(y.shape, device=dev))
    assert_close(lin.weight.grad, np.ones((4, 3)).T @ x, 1e-5, 1e-5, "dW")
    assert_close(lin.bias.grad, np.full(3, 4.0), 1e-5, 1e-5, "db")


def test_layers_call_their_functional_op(dev, rng):
    x = hetero.tensor(rng.standard_normal((2, 4, 6, 6)), device=dev)
    ref = x.numpy().astype(np.float64)
    assert_close(ReLU()(x), np.maximum(ref, 0), 0, 1e-6, "relu")
    assert_close(LeakyReLU(0.2)(x), np.where(ref > 0, ref, 0.2 * ref), 1e-6, 1e-6, "leaky_relu")
    assert_close(ELU(0.5)(x), np.where(ref > 0, ref, 0.5 * np.expm1(ref)), 1e-5, 1e-6, "elu")
    s, a = 1.0507009873554805, 1.6732632423543772
    assert_close(SELU()(x), s * np.where(ref > 0, ref, a * np.expm1(ref)), 1e-5, 1e-6, "selu")
    assert_close(PReLU(4, 0.3, device=dev)(x), np.where(ref > 0, ref, 0.3 * ref), 1e-6, 1e-6, "prelu")
    assert_close(Sigmoid()(x), 1 / (1 + np.exp(-ref)), 1e-5, 1e-6, "sigmoid")
    assert_close(Tanh()(x), np.tanh(ref), 1e-5, 1e-6, "tanh")
    assert_close(Flatten()(x), ref.reshape(2, -1), 0, 0, "flatten")
    assert_close(Flatten(0, 1)(x), ref.reshape(8, 6, 6), 0, 0, "flatten 0..1")
    assert_close(MaxPool2d(2)(x), ref.reshape(2, 4, 3, 2, 3, 2).max(axis=(3, 5)), 0, 1e-6, "max_pool2d")
    assert_close(AvgPool2d(3)(x), ref.reshape(2, 4, 2, 3, 2, 3).mean(axis=(3, 5)), 1e-5, 1e-6, "avg_pool2d")
    assert_close(AdaptiveAvgPool2d(1)(x), ref.mean(axis=(2, 3), keepdims=True), 1e-5, 1e-6, "adaptive")
    assert_close(Identity()(x), ref, 0, 0, "identity")
    e = np.exp(ref - ref.max(axis=1, keepdims=True))
    assert_close(Softmax(dim=1)(x), e / e.sum(axis=1, keepdims=True), 1e-5, 1e-6, "softmax")
    z = rng.standard_normal((3, 5))
    lz = z - z.max(axis=1, keepdims=True)
    lz -= np.log(np.exp(lz).sum(axis=1, keepdims=True))
    assert_close(LogSoftmax()(hetero.tensor(z, device=dev)), lz, 1e-5, 1e-6, "log_softmax (legacy dim 1)")
    assert "dim=None" in repr(LogSoftmax())
    conv = Conv2d(4, 3, 3, padding=1, bias=False, device=dev)
    w = conv.weight.numpy().astype(np.float64)
    xp = np.pad(ref, ((0, 0), (0, 0), (1, 1), (1, 1)))
    want = np.zeros((2, 3, 6, 6))
    for i in range(3):
        for j in range(3):
            want += np.einsum("nchw,oc->nohw", xp[:, :, i:i + 6, j:j + 6], w[:, :, i, j])
    assert_close(conv(x), want, 1e-5, 1e-5, "conv2d without bias")
    drop = Dropout(0.5)
    assert_close(drop.eval()(x), ref, 0, 0, "dropout eval")
    kept = drop.train()(x).numpy()
    assert np.all((kept == 0) | np.isclose(kept, 2 * ref, rtol=1e-6))
    assert 0.2 < (kept == 0).mean() < 0.8


def test_batchnorm_running_stats_and_count(dev, rng):
    x = rng.standard_normal((4, 3, 5, 5)) * 2 + 1
    bn = BatchNorm2d(3, momentum=0.25, device=dev)
    y = bn(hetero.tensor(x, device=dev))
    mean, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
    assert_close(y, (x - mean[:, None, None]) / np.sqrt(var[:, None, None] + 1e-5), 1e-4, 1e-5, "bn train")
    assert_close(bn.running_mean, 0.25 * mean, 1e-5, 1e-6, "running_mean")
    assert_close(bn.running_var, 0.75 + 0.25 * x.var(axis=(0, 2, 3), ddof=1), 1e-5, 1e-6, "running_var")
    bn(hetero.tensor(x, device=dev))
    assert bn.num_batches_tracked.item() == 2  # counted on the device by F.batch_norm
    bn.eval()
    rm, rv = bn.running_mean.numpy(), bn.running_var.numpy()
    y = bn(hetero.tensor(x, device=dev))
    assert bn.num_batches_tracked.item() == 2  # eval neither counts nor updates
    assert_close(y, (x - rm[:, None, None]) / np.sqrt(rv[:, None, None] + 1e-5), 1e-4, 1e-5, "bn eval")
    np.testing.assert_array_equal(bn.running_mean.numpy(), rm)

    cumulative = BatchNorm2d(3, momentum=None, device=dev)
    xs = [rng.standard_normal((2, 3, 4, 4)) + k for k in range(3)]
    for xi in xs:
        cumulative(hetero.tensor(xi, device=dev))
    assert_close(cumulative.running_mean, np.mean([xi.mean(axis=(0, 2, 3)) for xi in xs], axis=0), 1e-5, 1e-5,
                 "cumulative mean")
    assert cumulative.num_batches_tracked.item() == 3
    with pytest.raises(ValueError, match="BatchNorm2d: expected 4D input"):
        bn(hetero.tensor(np.zeros((2, 3)), device=dev))
    with pytest.raises(ValueError, match="has 4 channels"):
        bn(hetero.tensor(np.zeros((2, 4, 2, 2)), device=dev))


def test_batchnorm_without_running_stats_uses_batch_stats_in_eval(dev, rng):
    x = rng.standard_normal((3, 2, 4, 4))
    bn = BatchNorm2d(2, affine=False, track_running_stats=False, device=dev).eval()
    mean, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
    normed = (x - mean[:, None, None]) / np.sqrt(var[:, None, None] + 1e-5)
    assert_close(bn(hetero.tensor(x, device=dev)), normed, 1e-4, 1e-5, "bn no stats")
    scaled = BatchNorm2d(2, bias=False, device=dev)  # torch 2.13's bias=False: a scale but no shift
    scaled.load_state_dict({"weight": np.array([2.0, -1.0])}, strict=False)
    assert_close(scaled(hetero.tensor(x, device=dev)), normed * np.array([2.0, -1.0])[:, None, None], 1e-4, 1e-5,
                 "bn bias=False")


# ---- init ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("make, fan_in", [
    (lambda d: Conv2d(16, 32, 3, device=d), 16 * 9),
    (lambda d: Conv2d(32, 32, 3, groups=32, device=d), 9),
    (lambda d: Conv2d(8, 64, (5, 3), device=d), 8 * 15),
    (lambda d: Linear(300, 200, device=d), 300),
])
def test_default_init_matches_torch_bounds(dev, make, fan_in):
    init.manual_seed(7)
    layer = make(dev)
    bound = 1 / math.sqrt(fan_in)  # kaiming_uniform_(a=sqrt(5)): gain sqrt(1/3) * sqrt(3 / fan_in)
    w, b = layer.weight.numpy(), layer.bias.numpy()
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    assert np.abs(w).max() > 0.98 * bound  # draws fill the interval
    assert abs(w.std() - bound / math.sqrt(3)) < 0.05 * bound
    assert abs(w.mean()) < 0.05 * bound


def test_init_functions_statistics(dev):
    t = hetero.empty((256, 128, 3, 3), device=dev)
    init.manual_seed(3)
    init.kaiming_normal_(t, mode="fan_out", nonlinearity="relu")
    assert abs(t.numpy().std() - math.sqrt(2 / (256 * 9))) < 0.01 * math.sqrt(2 / (256 * 9))
    init.kaiming_uniform_(t)  # a=0, leaky_relu: bound sqrt(6 / fan_in)
    assert np.abs(t.numpy()).max() <= math.sqrt(6 / (128 * 9))
    init.xavier_uniform_(t, gain=2.0)
    assert np.abs(t.numpy()).max() <= 2 * math.sqrt(6 / (128 * 9 + 256 * 9))
    init.xavier_normal_(t)
    assert abs(t.numpy().std() - math.sqrt(2 / (128 * 9 + 256 * 9))) < 0.01 * math.sqrt(2 / (384 * 9))
    init.normal_(t, 3.0, 0.5)
    assert abs(t.numpy().mean() - 3) < 0.01 and abs(t.numpy().std() - 0.5) < 0.01
    init.constant_(t, 0.25)
    assert np.all(t.numpy() == 0.25)
    assert init.calculate_fan_in_and_fan_out(t) == (128 * 9, 256 * 9)
    assert init.calculate_gain("relu") == math.sqrt(2) and init.calculate_gain("tanh") == 5 / 3
    assert init.calculate_gain("leaky_relu", math.sqrt(5)) == math.sqrt(1 / 3)
    with pytest.raises(ValueError, match="unsupported nonlinearity"):
        init.calculate_gain("gelu")
    with pytest.raises(ValueError, match="mode"):
        init.kaiming_normal_(t, mode="fan_avg")
    with pytest.raises(ValueError, match="2 or more dimensions"):
        init.xavier_uniform_(hetero.empty((5,), device=dev))


def test_init_is_deterministic_for_a_seed(dev):
    init.manual_seed(11)
    a = Conv2d(3, 8, 3, device=dev).weight.numpy()
    init.manual_seed(11)
    b = Conv2d(3, 8, 3, device=dev).weight.numpy()
    c = Conv2d(3, 8, 3, device=dev).weight.numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(b, c)
    lin = Linear(4, 4, device=dev)
    lin.reset_parameters(np.random.default_rng(5))
    w1 = lin.weight.numpy()
    lin.reset_parameters(np.random.default_rng(5))
    np.testing.assert_array_equal(lin.weight.numpy(), w1)


@pytest.mark.parametrize("args", [(1.0,), (1, 2.5), (True,), ("1",)])
def test_flatten_refuses_non_int_dims(args):
    with pytest.raises(ValueError, match="Flatten: .* must be an int"):
        Flatten(*args)
