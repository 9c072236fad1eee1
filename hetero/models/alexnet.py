"""AlexNet: Krizhevsky et al. 2012 (227x227, LRN, overlapping pools) and a small variant for MNIST."""

from __future__ import annotations

from ..device import Device
from ..nn import functional as F
from ..nn.activation import ReLU
from ..nn.container import Sequential
from ..nn.conv import Conv2d
from ..nn.dropout import Dropout
from ..nn.linear import Linear
from ..nn.module import Module
from ..nn.pooling import AdaptiveAvgPool2d, LocalResponseNorm, MaxPool2d
from ..tensor import Tensor


class AlexNetMNIST(Module):
    """Five convs (96-256-384-384-256) with LRN after the first two, for (N, 1, 28, 28): 3,737,802 params."""

    def __init__(self, num_classes: int = 10, device: str | int | Device | None = None):
        super().__init__()
        self.features = Sequential(
            Conv2d(1, 96, 5, padding=2, device=device), ReLU(), LocalResponseNorm(5, 1e-4, 0.75, 2.0),
            MaxPool2d(2),                                                      # 28 -> 14
            Conv2d(96, 256, 5, padding=2, device=device), ReLU(), LocalResponseNorm(5, 1e-4, 0.75, 2.0),
            MaxPool2d(2),                                                      # 14 -> 7
            Conv2d(256, 384, 3, padding=1, device=device), ReLU(),
            Conv2d(384, 384, 3, padding=1, device=device), ReLU(),
            Conv2d(384, 256, 3, padding=1, device=device), ReLU(),
            MaxPool2d(2),                                                      # 7 -> 3
        )
        self.classifier = Sequential(
            Dropout(0.5),
            Linear(256 * 3 * 3, num_classes, device=device),
        )

    def forward(self, x: Tensor) -> Tensor:
        x = self.features(x)
        x = F.flatten(x, 1)
        return self.classifier(x)


class AlexNet(Module):
    """Krizhevsky's single-tower AlexNet (no conv groups) for (N, 3, 227, 227): 62,378,344 params.

    As torchvision, an AdaptiveAvgPool2d((6, 6)) before the classifier lets smaller inputs through;
    at 227x227 it is the identity.
    """

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, device: str | int | Device | None = None):
        super().__init__()
        self.features = Sequential(
            Conv2d(in_channels, 96, 11, stride=4, device=device), ReLU(),         # 227 -> 55
            LocalResponseNorm(5, 1e-4, 0.75, 2.0), MaxPool2d(3, 2),               # -> 27
            Conv2d(96, 256, 5, padding=2, device=device), ReLU(),
            LocalResponseNorm(5, 1e-4, 0.75, 2.0), MaxPool2d(3, 2),               # -> 13
            Conv2d(256, 384, 3, padding=1, device=device), ReLU(),
            Conv2d(384, 384, 3, padding=1, device=device), ReLU(),
            Conv2d(384, 256, 3, padding=1, device=device), ReLU(),
            MaxPool2d(3, 2),                                                      # -> 6
        )
        self.avgpool = AdaptiveAvgPool2d((6, 6))
        self.classifier = Sequential(
            Dropout(0.5), Linear(256 * 6 * 6, 4096, device=device), ReLU(),
            Dropout(0.5), Linear(4096, 4096, device=device), ReLU(),
            Linear(4096, num_classes, device=device),
        )

    def forward(self, x: Tensor) -> Tensor:
        x = self.avgpool(self.features(x))
        x = F.flatten(x, 1)
        return self.classifier(x)


def alexnet_mnist(num_classes: int = 10, device: str | int | Device | None = None) -> AlexNetMNIST:
    """AlexNet-style network for (N, 1, 28, 28) input."""
    return AlexNetMNIST(num_classes, device)


def alexnet(num_classes: int = 1000, in_channels: int = 3, device: str | int | Device | None = None) -> AlexNet:
    """Classic AlexNet for (N, 3, 227, 227) input."""
    return AlexNet(num_classes, in_channels, device)
