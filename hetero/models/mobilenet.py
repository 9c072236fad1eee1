"""MobileNet v1 (Howard et al. 2017): a 3x3 stem and 13 depthwise-separable blocks."""

from __future__ import annotations

from ..device import Device
from ..nn import functional as F
from ..nn import init
from ..nn.activation import ReLU
from ..nn.container import Sequential
from ..nn.conv import Conv2d
from ..nn.linear import Linear
from ..nn.module import Module
from ..nn.normalization import BatchNorm2d
from ..nn.pooling import AdaptiveAvgPool2d
from ..tensor import Tensor

Dev = str | int | Device | None

# (output channels, stride) of the 13 depthwise-separable blocks, Table 1 of the paper
PLAN = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
        (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1)]


def conv_bn_relu(cin: int, cout: int, kernel: int, stride: int, groups: int, device: Dev) -> Sequential:
    """conv (no bias) -> BN -> ReLU; keys <i>.0.weight, <i>.1.running_mean, ..."""
    return Sequential(
        Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, groups=groups, bias=False, device=device),
        BatchNorm2d(cout, device=device),
        ReLU(inplace=True),
    )


class DepthwiseSeparable(Module):
    """Depthwise 3x3 conv (groups=channels) + BN + ReLU, then pointwise 1x1 conv + BN + ReLU."""

    def __init__(self, cin: int, cout: int, stride: int, device: Dev = None):
        super().__init__()
        self.dw = conv_bn_relu(cin, cin, 3, stride, cin, device)
        self.pw = conv_bn_relu(cin, cout, 1, 1, 1, device)

    def forward(self, x: Tensor) -> Tensor:
        return self.pw(self.dw(x))


class MobileNetV1(Module):
    """features (stem + 13 blocks) -> global average pool -> fc. 4,231,976 parameters at width 1, 1000 classes."""

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, width_mult: float = 1.0,
                 small_input: bool = False, device: Dev = None):
        super().__init__()
        if not width_mult > 0:
            raise ValueError(f"mobilenet_v1: width_mult must be positive, got {width_mult!r}")

        def width(c: int) -> int:
            return max(1, int(c * width_mult))

        # small_input (32x32): a stride-1 stem, so the last feature map is 2x2 rather than 1x1
        layers = [conv_bn_relu(in_channels, width(32), 3, 1 if small_input else 2, 1, device)]
        cin = width(32)
        for cout, stride in PLAN:
            layers.append(DepthwiseSeparable(cin, width(cout), stride, device))
            cin = width(cout)
        self.features = Sequential(*layers)
        self.avgpool = AdaptiveAvgPool2d((1, 1))
        self.fc = Linear(cin, num_classes, device=device)
        for m in self.modules():
            if isinstance(m, Conv2d):
                init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: Tensor) -> Tensor:
        x = self.avgpool(self.features(x))
        return self.fc(F.flatten(x, 1))


def mobilenet_v1(num_classes: int = 1000, in_channels: int = 3, width_mult: float = 1.0,
                 small_input: bool = False, device: Dev = None) -> MobileNetV1:
    """MobileNet v1 (ReLU, BN); width_mult scales every layer's channels."""
    return MobileNetV1(num_classes, in_channels, width_mult, small_input, device)
