"""ResNet-18/34 with torchvision's module layout and state_dict keys, and a pre-activation ResNet-18."""

from __future__ import annotations

from ..device import Device
from ..nn import functional as F
from ..nn import init
from ..nn.activation import ReLU
from ..nn.container import Sequential
from ..nn.conv import Conv2d
from ..nn.linear import Identity, Linear
from ..nn.module import Module
from ..nn.normalization import BatchNorm2d
from ..nn.pooling import AdaptiveAvgPool2d, MaxPool2d
from ..tensor import Tensor

Dev = str | int | Device | None


def conv3x3(in_planes: int, out_planes: int, stride: int = 1, device: Dev = None) -> Conv2d:
    return Conv2d(in_planes, out_planes, 3, stride=stride, padding=1, bias=False, device=device)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1, device: Dev = None) -> Conv2d:
    return Conv2d(in_planes, out_planes, 1, stride=stride, bias=False, device=device)


class BasicBlock(Module):
    """Two 3x3 conv+BN, ReLU between, the shortcut added before the last ReLU (torchvision's)."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: Module | None = None,
                 device: Dev = None):
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride, device)
        self.bn1 = BatchNorm2d(planes, device=device)
        self.relu = ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes, 1, device)
        self.bn2 = BatchNorm2d(planes, device=device)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(F.add(out, identity))


class PreActBlock(Module):
    """He et al. 2016 ("Identity Mappings"): BN-ReLU-conv twice; the shortcut stays a clean identity."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, device: Dev = None):
        super().__init__()
        self.bn1 = BatchNorm2d(inplanes, device=device)
        self.relu = ReLU(inplace=True)
        self.conv1 = conv3x3(inplanes, planes, stride, device)
        self.bn2 = BatchNorm2d(planes, device=device)
        self.conv2 = conv3x3(planes, planes, 1, device)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = Sequential(conv1x1(inplanes, planes, stride, device))
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(x))
        # a projection shortcut takes the pre-activated input, as in the paper's Fig. 4(e)
        shortcut = x if self.downsample is None else self.downsample(out)
        out = self.conv1(out)
        out = self.conv2(self.relu(self.bn2(out)))
        return F.add(out, shortcut)


def _stem(in_channels: int, small_input: bool, device: Dev) -> tuple[Conv2d, Module]:
    """ImageNet stem (7x7/2 conv + 3x3/2 max pool) or, for 32x32 input, a 3x3/1 conv and no pool."""
    if small_input:
        return Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False, device=device), Identity()
    return (Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False, device=device),
            MaxPool2d(kernel_size=3, stride=2, padding=1))


def _torchvision_init(model: Module) -> None:
    """torchvision's ResNet init: kaiming_normal_(fan_out, relu) convs; BN (1, 0) and Linear keep their defaults."""
    for m in model.modules():
        if isinstance(m, Conv2d):
            init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")


class ResNet(Module):
    """torchvision.models.ResNet with BasicBlocks: conv1, bn1, relu, maxpool, layer1..4, avgpool, fc."""

    def __init__(self, layers: list[int], num_classes: int = 1000, in_channels: int = 3,
                 small_input: bool = False, device: Dev = None):
        super().__init__()
        self.inplanes = 64
        conv1, maxpool = _stem(in_channels, small_input, device)
        # assigned in torchvision's order, which is the order of named_parameters and state_dict
        self.conv1 = conv1
        self.bn1 = BatchNorm2d(64, device=device)
        self.relu = ReLU(inplace=True)
        self.maxpool = maxpool
        self.layer1 = self._make_layer(64, layers[0], 1, device)
        self.layer2 = self._make_layer(128, layers[1], 2, device)
        self.layer3 = self._make_layer(256, layers[2], 2, device)
        self.layer4 = self._make_layer(512, layers[3], 2, device)
        self.avgpool = AdaptiveAvgPool2d((1, 1))
        self.fc = Linear(512 * BasicBlock.expansion, num_classes, device=device)
        _torchvision_init(self)

    def _make_layer(self, planes: int, blocks: int, stride: int, device: Dev) -> Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * BasicBlock.expansion:
            downsample = Sequential(conv1x1(self.inplanes, planes * BasicBlock.expansion, stride, device),
                                    BatchNorm2d(planes * BasicBlock.expansion, device=device))
        layers = [BasicBlock(self.inplanes, planes, stride, downsample, device)]
        self.inplanes = planes * BasicBlock.expansion
        layers += [BasicBlock(self.inplanes, planes, 1, None, device) for _ in range(1, blocks)]
        return Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = F.flatten(self.avgpool(x), 1)
        return self.fc(x)


class PreActResNet(Module):
    """Pre-activation ResNet: stem conv, PreActBlocks, then a final BN-ReLU before pooling and fc."""

    def __init__(self, layers: list[int], num_classes: int = 10, in_channels: int = 3,
                 small_input: bool = True, device: Dev = None):
        super().__init__()
        self.conv1, self.maxpool = _stem(in_channels, small_input, device)
        inplanes = 64
        for i, (planes, blocks) in enumerate(zip((64, 128, 256, 512), layers)):
            stride = 1 if i == 0 else 2
            seq = [PreActBlock(inplanes, planes, stride, device)]
            seq += [PreActBlock(planes, planes, 1, device) for _ in range(1, blocks)]
            inplanes = planes
            self.add_module(f"layer{i + 1}", Sequential(*seq))
        self.bn = BatchNorm2d(512, device=device)
        self.relu = ReLU(inplace=True)
        self.avgpool = AdaptiveAvgPool2d((1, 1))
        self.fc = Linear(512, num_classes, device=device)
        _torchvision_init(self)

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.conv1(x))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.relu(self.bn(x))
        x = F.flatten(self.avgpool(x), 1)
        return self.fc(x)


def resnet18(num_classes: int = 1000, in_channels: int = 3, small_input: bool = False,
             device: Dev = None) -> ResNet:
    """ResNet-18 (11,689,512 parameters with 1000 classes); keys match torchvision's resnet18."""
    return ResNet([2, 2, 2, 2], num_classes, in_channels, small_input, device)


def resnet34(num_classes: int = 1000, in_channels: int = 3, small_input: bool = False,
             device: Dev = None) -> ResNet:
    """ResNet-34 (21,797,672 parameters with 1000 classes); keys match torchvision's resnet34."""
    return ResNet([3, 4, 6, 3], num_classes, in_channels, small_input, device)


def preact_resnet18(num_classes: int = 10, in_channels: int = 3, small_input: bool = True,
                    device: Dev = None) -> PreActResNet:
    """Pre-activation ResNet-18 (He et al. 2016); small_input=True (default) is the CIFAR form."""
    return PreActResNet([2, 2, 2, 2], num_classes, in_channels, small_input, device)
