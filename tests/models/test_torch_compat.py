"""Models against PyTorch: torch-layout models written here with torch.nn (torchvision is not needed),
their state_dicts loaded into hetero.models both ways, logits, running stats and gradients compared.

torch runs in float64 on weights that are exactly float32 values, so the only error is hetero's float32
arithmetic. Tolerances (assert_close: |a - e| <= atol + rtol * max(1, max|e|)): logits and running stats
rtol 1e-4 / atol 1e-5; gradients rtol 5e-4 / atol 1e-5 relative to each gradient's largest entry.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

import hetero  # noqa: E402
from hetero import models  # noqa: E402
from hetero.nn import functional as F  # noqa: E402
from hetero.nn import init  # noqa: E402
from tests.helpers import assert_close, oclgrind, shapes  # noqa: E402

LOGIT_TOL = dict(rtol=1e-4, atol=1e-5)
GRAD_TOL = dict(rtol=5e-4, atol=1e-5)
too_slow_for_simulator = pytest.mark.skipif(oclgrind(), reason="a whole CNN is too slow for Oclgrind")


# ---- torch models with the exact module layouts of torchvision / hetero.models ------------------

class TorchBasicBlock(nn.Module):
    """torchvision.models.resnet.BasicBlock."""

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        return self.relu(out + identity)


class TorchResNet(nn.Module):
    """torchvision.models.resnet.ResNet with BasicBlock (resnet18: layers [2, 2, 2, 2])."""

    def __init__(self, layers, num_classes=1000, small_input=False):
        super().__init__()
        self.inplanes = 64
        if small_input:
            self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        else:
            self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.Identity() if small_input else nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._make_layer(64, layers[0])
        self.layer2 = self._make_layer(128, layers[1], 2)
        self.layer3 = self._make_layer(256, layers[2], 2)
        self.layer4 = self._make_layer(512, layers[3], 2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512, num_classes)

    def _make_layer(self, planes, blocks, stride=1):
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))
        layers = [TorchBasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        layers += [TorchBasicBlock(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class TorchFeaturesClassifier(nn.Module):
    """The features -> flatten -> classifier layout of hetero's LeNet5 and AlexNetMNIST."""

    def __init__(self, features, classifier):
        super().__init__()
        self.features = features
        self.classifier = classifier

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


def torch_lenet5():
    return TorchFeaturesClassifier(
        nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                      nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2)),
        nn.Sequential(nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10)))


def torch_alexnet_mnist():
    lrn = (5, 1e-4, 0.75, 2.0)
    return TorchFeaturesClassifier(
        nn.Sequential(nn.Conv2d(1, 96, 5, padding=2), nn.ReLU(), nn.LocalResponseNorm(*lrn), nn.MaxPool2d(2),
                      nn.Conv2d(96, 256, 5, padding=2), nn.ReLU(), nn.LocalResponseNorm(*lrn), nn.MaxPool2d(2),
                      nn.Conv2d(256, 384, 3, padding=1), nn.ReLU(), nn.Conv2d(384, 384, 3, padding=1), nn.ReLU(),
                      nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)),
        nn.Sequential(nn.Dropout(0.5), nn.Linear(2304, 10)))


class TorchMobileNetV1(nn.Module):
    """hetero.models.MobileNetV1's layout: features.0 = conv-BN-ReLU, features.i.dw / .pw, avgpool, fc."""

    PLAN = models.mobilenet.PLAN

    def __init__(self, num_classes, width_mult, small_input):
        super().__init__()

        def cbr(cin, cout, k, s, g):
            return nn.Sequential(nn.Conv2d(cin, cout, k, s, k // 2, groups=g, bias=False), nn.BatchNorm2d(cout),
                                 nn.ReLU(inplace=True))

        class Block(nn.Module):
            def __init__(self, cin, cout, stride):
                super().__init__()
                self.dw = cbr(cin, cin, 3, stride, cin)
                self.pw = cbr(cin, cout, 1, 1, 1)

            def forward(self, x):
                return self.pw(self.dw(x))

        def w(c):
            return max(1, int(c * width_mult))

        layers = [cbr(3, w(32), 3, 1 if small_input else 2, 1)]
        cin = w(32)
        for cout, stride in self.PLAN:
            layers.append(Block(cin, w(cout), stride))
            cin = w(cout)
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        return self.fc(torch.flatten(self.avgpool(self.features(x)), 1))


# ---- helpers -------------------------------------------------------------------------------------

def randomize_bn(model, gen):
    """Non-trivial BN affine parameters and running statistics, so eval mode really uses them."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5, generator=gen)
                m.bias.normal_(0.0, 0.2, generator=gen)
                m.running_mean.normal_(0.0, 0.2, generator=gen)
                m.running_var.uniform_(0.5, 2.0, generator=gen)
                m.num_batches_tracked.fill_(5)
    return model


def to_torch_state(state: dict) -> dict:
    out = {}
    for k, v in state.items():
        arr = v.numpy()
        out[k] = torch.from_numpy(arr.astype(np.int64) if arr.dtype == np.int32 else arr)
    return out


def assert_state_matches(hmodel, tmodel, what: str) -> None:
    ts = tmodel.state_dict()
    for k, v in hmodel.state_dict().items():
        assert_close(v, ts[k].double().numpy(), **LOGIT_TOL, what=f"{what}: {k}")


def run_both(hmodel, tmodel64, x: np.ndarray, target: np.ndarray | None, dev):
    """hetero logits (and backward when target is given) next to float64 torch's."""
    hx = hetero.tensor(x, device=dev)
    hout = hmodel(hx)
    tout = tmodel64(torch.from_numpy(x))
    if target is not None:
        F.cross_entropy(hout, hetero.tensor(target, device=dev)).backward()
        torch.nn.functional.cross_entropy(tout, torch.from_numpy(target.astype(np.int64))).backward()
    return hout, tout.detach().numpy()


def assert_grads_match(hmodel, tmodel64, what: str) -> None:
    tgrads = {k: p.grad.numpy() for k, p in tmodel64.named_parameters()}
    hnames = [k for k, _ in hmodel.named_parameters()]
    assert hnames == list(tgrads), f"{what}: parameter names/order differ from torch"
    for k, p in hmodel.named_parameters():
        assert p.grad is not None, f"{what}: no gradient for {k}"
        e = tgrads[k]
        scale = max(float(np.abs(e).max()), 1e-30)
        # relative to this gradient's scale: deep layers' gradients are small in absolute terms
        assert_close(p.grad.numpy() / scale, e / scale, **GRAD_TOL, what=f"{what}: grad {k}")


def make_pair(hbuild, tbuild, seed: int, bn: bool = True):
    """(hetero model, float32 torch model, float64 torch copy) with the torch weights loaded into hetero."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    tmodel = tbuild()
    if bn:
        randomize_bn(tmodel, gen)
    hmodel = hbuild()
    assert list(hmodel.state_dict()) == list(tmodel.state_dict()), "state_dict keys/order differ from torch"
    hmodel.load_state_dict(tmodel.state_dict())  # torch CPU tensors load as they are (int64 count -> int32)
    return hmodel, tmodel, copy.deepcopy(tmodel).double()


# ---- tests ---------------------------------------------------------------------------------------

# under Oclgrind (reduced lists) only LeNet-5 runs: a whole ResNet takes over 10 minutes there
RESNET_EVAL = shapes([((2, 3, 32, 32), False), ((1, 3, 64, 48), False), ((2, 3, 16, 16), True)], [])


@pytest.mark.parametrize("shape, small_input", RESNET_EVAL)
def test_resnet18_eval_logits_match_torch(dev, shape, small_input):
    hmodel, tmodel, t64 = make_pair(lambda: models.resnet18(num_classes=1000, small_input=small_input, device=dev),
                                    lambda: TorchResNet([2, 2, 2, 2], 1000, small_input), seed=1)
    hmodel.eval()
    t64.eval()
    x = np.random.default_rng(2).standard_normal(shape)
    hout, tout = run_both(hmodel, t64, x, None, dev)
    assert_close(hout, tout, **LOGIT_TOL, what="resnet18 eval logits")
    assert all(v.item() == 5 for k, v in hmodel.state_dict().items() if k.endswith("num_batches_tracked"))


@too_slow_for_simulator
def test_resnet18_train_step_matches_torch(dev):
    """Training mode: batch statistics, running-stat updates, batch counts and every gradient.

    The batch is chosen well conditioned: with (4, 3, 16, 16) a layer4 BN over 16 values makes even
    torch's own float32 gradients differ from float64 by 26%, and hetero's by the same amount.
    """
    hmodel, tmodel, t64 = make_pair(lambda: models.resnet18(num_classes=10, small_input=True, device=dev),
                                    lambda: TorchResNet([2, 2, 2, 2], 10, small_input=True), seed=3)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((4, 3, 32, 32))
    target = rng.integers(0, 10, x.shape[0]).astype(np.int32)
    hout, tout = run_both(hmodel.train(), t64.train(), x, target, dev)
    assert_close(hout, tout, **LOGIT_TOL, what="resnet18 train logits")
    assert_state_matches(hmodel, t64, "resnet18 after one training forward")  # running stats, count 6
    assert_grads_match(hmodel, t64, "resnet18")


@too_slow_for_simulator
def test_resnet18_state_dict_loads_into_torch(dev):
    """The other direction: hetero's state_dict (int32 count) loads into the torch layout unchanged."""
    init.manual_seed(5)
    hmodel = models.resnet18(num_classes=10, device=dev)
    x = np.random.default_rng(6).standard_normal((2, 3, 32, 32))
    hmodel(hetero.tensor(x, device=dev))  # move the running stats away from 0 / 1
    tmodel = TorchResNet([2, 2, 2, 2], 10)
    result = tmodel.load_state_dict(to_torch_state(hmodel.state_dict()), strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert int(tmodel.bn1.num_batches_tracked) == 1
    hmodel.eval()
    t64 = tmodel.double().eval()
    hout, tout = run_both(hmodel, t64, x, None, dev)
    assert_close(hout, tout, **LOGIT_TOL, what="resnet18 hetero -> torch logits")


def test_lenet5_matches_torch(dev):
    hmodel, tmodel, t64 = make_pair(lambda: models.lenet5(device=dev), torch_lenet5, seed=7, bn=False)
    rng = np.random.default_rng(8)
    x = rng.standard_normal((3, 1, 28, 28))
    target = rng.integers(0, 10, 3).astype(np.int32)
    hout, tout = run_both(hmodel, t64, x, target, dev)
    assert_close(hout, tout, **LOGIT_TOL, what="lenet5 logits")
    assert_grads_match(hmodel, t64, "lenet5")


@too_slow_for_simulator
def test_alexnet_mnist_eval_matches_torch(dev):
    """LRN with k=2 and dropout as identity in eval mode; gradients through LRN."""
    hmodel, tmodel, t64 = make_pair(lambda: models.alexnet_mnist(device=dev), torch_alexnet_mnist, seed=9, bn=False)
    rng = np.random.default_rng(10)
    x = rng.standard_normal((2, 1, 28, 28))
    target = rng.integers(0, 10, 2).astype(np.int32)
    hout, tout = run_both(hmodel.eval(), t64.eval(), x, target, dev)
    assert_close(hout, tout, **LOGIT_TOL, what="alexnet_mnist logits")
    assert_grads_match(hmodel, t64, "alexnet_mnist")


@too_slow_for_simulator
def test_mobilenet_v1_matches_torch(dev):
    """Depthwise (groups = channels) and pointwise convs with BN, training mode."""
    hmodel, tmodel, t64 = make_pair(
        lambda: models.mobilenet_v1(num_classes=10, width_mult=0.25, small_input=True, device=dev),
        lambda: TorchMobileNetV1(10, 0.25, True), seed=11)
    rng = np.random.default_rng(12)
    x = rng.standard_normal((4, 3, 32, 32))
    target = rng.integers(0, 10, 4).astype(np.int32)
    hout, tout = run_both(hmodel, t64, x, target, dev)
    assert_close(hout, tout, **LOGIT_TOL, what="mobilenet_v1 logits")
    assert_state_matches(hmodel, t64, "mobilenet_v1 after one training forward")
    assert_grads_match(hmodel, t64, "mobilenet_v1")


def test_torch_layer_defaults_and_init_formulas(dev):
    """Hyperparameter defaults equal torch's, and init bounds/gains follow the same formulas."""
    from hetero.nn.activation import ELU, LeakyReLU, PReLU
    from hetero.nn.normalization import BatchNorm2d
    from hetero.nn.pooling import LocalResponseNorm, MaxPool2d

    pairs = [
        (BatchNorm2d(4, device=dev), nn.BatchNorm2d(4), ("eps", "momentum", "affine", "track_running_stats")),
        (LocalResponseNorm(3), nn.LocalResponseNorm(3), ("size", "alpha", "beta", "k")),
        (MaxPool2d(3), nn.MaxPool2d(3), ("kernel_size", "stride", "padding", "dilation", "ceil_mode")),
        (LeakyReLU(), nn.LeakyReLU(), ("negative_slope",)),
        (ELU(), nn.ELU(), ("alpha",)),
        (PReLU(device=dev), nn.PReLU(), ("num_parameters",)),
    ]
    for ours, theirs, attrs in pairs:
        for a in attrs:
            assert getattr(ours, a) == getattr(theirs, a), f"{type(ours).__name__}.{a}"
        assert repr(ours) == repr(theirs)
    for nl, param in [("relu", None), ("tanh", None), ("leaky_relu", None), ("leaky_relu", 5 ** 0.5), ("selu", None),
                      ("sigmoid", None), ("conv2d", None)]:
        assert init.calculate_gain(nl, param) == pytest.approx(torch.nn.init.calculate_gain(nl, param))
    t = torch.empty(32, 16, 3, 3)
    assert init.calculate_fan_in_and_fan_out(hetero.empty(tuple(t.shape), device=dev)) == \
        torch.nn.init._calculate_fan_in_and_fan_out(t)
