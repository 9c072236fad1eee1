"""Model zoo: parameter counts, torchvision state_dict keys, forward shapes, a gradient for every parameter."""

from __future__ import annotations

import numpy as np
import pytest

import hetero
from hetero import models
from hetero.nn import functional as F
from hetero.nn import init
from hetero.nn.conv import Conv2d
from hetero.nn.linear import Identity
from hetero.nn.normalization import BatchNorm2d
from hetero.nn.pooling import LocalResponseNorm, MaxPool2d
from tests.helpers import oclgrind, shapes

BN = ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]


too_big_for_simulator = pytest.mark.skipif(oclgrind(), reason="ResNet-sized models take gigabytes under Oclgrind")


def _count(model) -> int:
    return sum(p.size for p in model.parameters())


def torchvision_resnet_keys(blocks: list[int]) -> list[str]:
    """torchvision's resnet18/34 state_dict keys, in order, written out from its layout."""
    keys = ["conv1.weight"] + [f"bn1.{k}" for k in BN]
    for i, n in enumerate(blocks):
        for b in range(n):
            p = f"layer{i + 1}.{b}."
            keys += [p + "conv1.weight"] + [p + f"bn1.{k}" for k in BN]
            keys += [p + "conv2.weight"] + [p + f"bn2.{k}" for k in BN]
            if i > 0 and b == 0:
                keys += [p + "downsample.0.weight"] + [p + f"downsample.1.{k}" for k in BN]
    return keys + ["fc.weight", "fc.bias"]


# Known totals: LeNet-5 and torchvision's ResNets/AlexNet are the published numbers; the others are
# summed by hand in the comments (weights + biases, BN weight + bias per channel).
@pytest.mark.parametrize("name, kwargs, expected", [
    ("lenet5", {}, 61_706),  # 156 + 2,416 + 48,120 + 10,164 + 850
    # convs 2,496 + 614,656 + 885,120 + 1,327,488 + 884,992, fc 2,304*10 + 10
    ("alexnet_mnist", {}, 3_737_802),
    ("alexnet", {}, 62_378_344),  # single-tower AlexNet (torchvision's 61,100,840 has 64-192-384-256-256)
    ("resnet18", {}, 11_689_512),
    ("resnet34", {}, 21_797_672),
    ("resnet18", {"num_classes": 10, "small_input": True}, 11_173_962),  # 3x3 stem: -9,408 + 1,728
    # resnet18 (10 classes, 3x3 stem) minus the stem BN (-128) and the 3 shortcut BNs (-1,792), plus the
    # final 512-channel BN (+1,024); the first bn1 of layer2..4 sees the narrower input (-2 * (64+128+256))
    ("preact_resnet18", {}, 11_173_962 - 128 - 1_792 + 1_024 - 2 * (64 + 128 + 256)),  # 11,172,170
    ("mobilenet_v1", {}, 4_231_976),  # Keras MobileNet(alpha=1.0) trainable parameters
])
def test_parameter_counts(dev, name, kwargs, expected):
    if 4 * expected > dev.info.global_mem_bytes // 2 or (oclgrind() and expected > 4_000_000):
        # Oclgrind's simulated device has 128 MiB, and shadow memory makes big buffers cost gigabytes
        pytest.skip(f"{name}'s {4 * expected / 2**20:.0f} MiB of weights are too big for {dev.label}")
    assert _count(models.get_model(name, device=dev, **kwargs)) == expected


@too_big_for_simulator
def test_resnet_state_dict_keys_are_torchvision(dev):
    assert list(models.resnet18(device=dev).state_dict()) == torchvision_resnet_keys([2, 2, 2, 2])
    r34 = models.resnet34(num_classes=7, small_input=True, device=dev)
    assert list(r34.state_dict()) == torchvision_resnet_keys([3, 4, 6, 3])
    sd = r34.state_dict()
    assert sd["conv1.weight"].shape == (64, 3, 3, 3) and sd["fc.weight"].shape == (7, 512)
    assert sd["layer3.0.downsample.0.weight"].shape == (256, 128, 1, 1)
    assert isinstance(r34.maxpool, Identity)
    r18 = models.resnet18(in_channels=1, device=dev)
    assert r18.conv1.weight.shape == (64, 1, 7, 7) and isinstance(r18.maxpool, MaxPool2d)
    assert [k for k, _ in r18.named_children()] == ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2",
                                                     "layer3", "layer4", "avgpool", "fc"]


@too_big_for_simulator
def test_other_model_layouts(dev):
    pre = models.preact_resnet18(device=dev)
    keys = list(pre.state_dict())
    assert keys[:7] == ["conv1.weight", "layer1.0.bn1.weight", "layer1.0.bn1.bias", "layer1.0.bn1.running_mean",
                        "layer1.0.bn1.running_var", "layer1.0.bn1.num_batches_tracked", "layer1.0.conv1.weight"]
    assert "layer2.0.downsample.0.weight" in keys and "layer2.0.downsample.1.weight" not in keys
    assert keys[-7:-2] == [f"bn.{k}" for k in BN] and keys[-2:] == ["fc.weight", "fc.bias"]
    assert pre.conv1.kernel_size == (3, 3)
    assert models.preact_resnet18(small_input=False, device=dev).conv1.stride == (2, 2)

    mob = models.mobilenet_v1(width_mult=0.5, num_classes=5, device=dev)
    assert len(mob.features) == 14 and mob.fc.in_features == 512
    dw = mob.features[1].dw[0]
    assert isinstance(dw, Conv2d) and dw.groups == dw.in_channels == 16 and dw.bias is None
    assert "features.13.pw.1.running_var" in mob.state_dict()
    strides = [mob.features[0][0].stride[0]] + [mob.features[i].dw[0].stride[0] for i in range(1, 14)]
    assert strides == [2, 1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1]
    assert models.mobilenet_v1(small_input=True, device=dev).features[0][0].stride == (1, 1)

    alex = models.alexnet_mnist(device=dev)
    lrn = [m for m in alex.modules() if isinstance(m, LocalResponseNorm)]
    assert len(lrn) == 2 and (lrn[0].size, lrn[0].alpha, lrn[0].beta, lrn[0].k) == (5, 1e-4, 0.75, 2.0)
    assert [m.out_channels for m in alex.modules() if isinstance(m, Conv2d)] == [96, 256, 384, 384, 256]
    assert list(models.lenet5(device=dev).state_dict())[:2] == ["features.0.weight", "features.0.bias"]


def test_registry(dev):
    assert sorted(models.MODELS) == ["alexnet", "alexnet_mnist", "lenet5", "mobilenet_v1", "preact_resnet18",
                                     "resnet18", "resnet34"]
    assert models.get_model("lenet5", num_classes=3, device=dev).classifier[-1].out_features == 3
    with pytest.raises(ValueError, match="unknown model 'vgg16'; available: alexnet, alexnet_mnist, lenet5"):
        models.get_model("vgg16")
    with pytest.raises(ValueError, match="width_mult must be positive"):
        models.mobilenet_v1(width_mult=0, device=dev)


def test_construction_is_deterministic_for_a_seed(dev):
    def build():  # kaiming_normal_ convs (torchvision's ResNet/MobileNet init), BN, default Linear
        return models.mobilenet_v1(num_classes=10, width_mult=0.25, device=dev).state_dict()

    init.manual_seed(42)
    a = build()
    init.manual_seed(42)
    b = build()
    for k in a:
        np.testing.assert_array_equal(a[k].numpy(), b[k].numpy(), err_msg=k)
    c = build()
    assert not np.array_equal(b["features.0.0.weight"].numpy(), c["features.0.0.weight"].numpy())
    assert not np.array_equal(b["fc.weight"].numpy(), c["fc.weight"].numpy())


CASES = shapes([
    ("lenet5", {}, (2, 1, 28, 28), 10),
    ("lenet5", {"num_classes": 4}, (1, 1, 28, 28), 4),
    ("alexnet_mnist", {}, (2, 1, 28, 28), 10),
    ("alexnet", {"num_classes": 6}, (1, 3, 227, 227), 6),
    ("alexnet", {"num_classes": 5}, (2, 3, 67, 67), 5),  # the adaptive pool takes a 1x1 map to 6x6
    ("resnet18", {"num_classes": 10, "small_input": True}, (2, 3, 32, 32), 10),
    ("resnet18", {"num_classes": 3, "in_channels": 1}, (1, 1, 64, 64), 3),
    ("resnet34", {"num_classes": 10, "small_input": True}, (2, 3, 16, 16), 10),
    ("preact_resnet18", {}, (2, 3, 32, 32), 10),
    ("preact_resnet18", {"num_classes": 4, "small_input": False}, (2, 3, 40, 40), 4),
    ("mobilenet_v1", {"num_classes": 10, "small_input": True, "width_mult": 0.25}, (2, 3, 32, 32), 10),
    ("mobilenet_v1", {"num_classes": 7, "width_mult": 0.5}, (2, 3, 33, 33), 7),
], [
    ("lenet5", {}, (1, 1, 28, 28), 10),  # a whole ResNet takes over 10 minutes under Oclgrind
])


@pytest.mark.parametrize("name, kwargs, shape, classes", CASES)
def test_forward_shape_and_grads_for_every_parameter(dev, name, kwargs, shape, classes):
    init.manual_seed(0)
    model = models.get_model(name, device=dev, **kwargs)
    rng = np.random.default_rng(0)
    x = hetero.tensor(rng.standard_normal(shape), device=dev)
    target = hetero.tensor(rng.integers(0, classes, shape[0]), device=dev)
    out = model(x)
    assert out.shape == (shape[0], classes)
    loss = F.cross_entropy(out, target)
    loss.backward()
    assert np.isfinite(loss.item())
    for key, p in model.named_parameters():
        assert p.grad is not None, f"{name}: no gradient for {key}"
        g = p.grad.numpy()
        assert g.shape == p.shape and np.all(np.isfinite(g)), key
        assert np.abs(g).max() > 0, f"{name}: gradient of {key} is all zeros"
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


@too_big_for_simulator
def test_eval_is_deterministic_and_train_updates_bn(dev, rng):
    model = models.resnet18(num_classes=10, small_input=True, device=dev)
    x = hetero.tensor(rng.standard_normal((2, 3, 16, 16)), device=dev)
    model(x)  # training: running stats move, batches counted
    bn = [m for m in model.modules() if isinstance(m, BatchNorm2d)]
    assert all(m.num_batches_tracked.item() == 1 for m in bn)
    assert np.abs(model.bn1.running_mean.numpy()).max() > 0
    model.eval()
    stats = model.bn1.running_mean.numpy()
    a, b = model(x).numpy(), model(x).numpy()
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(model.bn1.running_mean.numpy(), stats)
    assert all(m.num_batches_tracked.item() == 1 for m in bn)
