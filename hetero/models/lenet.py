"""LeNet-5 for 28x28 single-channel input (MNIST): 61,706 parameters with 10 classes."""

from __future__ import annotations

from ..device import Device
from ..nn import functional as F
from ..nn.activation import ReLU
from ..nn.container import Sequential
from ..nn.conv import Conv2d
from ..nn.linear import Linear
from ..nn.module import Module
from ..nn.pooling import MaxPool2d
from ..tensor import Tensor


class LeNet5(Module):
    """conv 5x5 (pad 2) 6 -> pool -> conv 5x5 16 -> pool -> fc 120 -> fc 84 -> fc num_classes, ReLU between."""

    def __init__(self, num_classes: int = 10, device: str | int | Device | None = None):
        super().__init__()
        self.features = Sequential(
            Conv2d(1, 6, 5, padding=2, device=device), ReLU(), MaxPool2d(2),
            Conv2d(6, 16, 5, device=device), ReLU(), MaxPool2d(2),
        )
        self.classifier = Sequential(
            Linear(16 * 5 * 5, 120, device=device), ReLU(),
            Linear(120, 84, device=device), ReLU(),
            Linear(84, num_classes, device=device),
        )

    def forward(self, x: Tensor) -> Tensor:
        x = self.features(x)
        x = F.flatten(x, 1)
        return self.classifier(x)


def lenet5(num_classes: int = 10, device: str | int | Device | None = None) -> LeNet5:
    """LeNet-5 (ReLU, max pooling) for (N, 1, 28, 28) input."""
    return LeNet5(num_classes, device)
