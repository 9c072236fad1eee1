"""Model zoo: LeNet-5, AlexNet, ResNet-18/34, pre-activation ResNet-18, MobileNet v1, by name."""

from __future__ import annotations

from collections.abc import Callable

from ..nn.module import Module
from .alexnet import AlexNet, AlexNetMNIST, alexnet, alexnet_mnist
from .lenet import LeNet5, lenet5
from .mobilenet import MobileNetV1, mobilenet_v1
from .resnet import BasicBlock, PreActBlock, PreActResNet, ResNet, preact_resnet18, resnet18, resnet34

MODELS: dict[str, Callable[..., Module]] = {
    "lenet5": lenet5,
    "alexnet_mnist": alexnet_mnist,
    "alexnet": alexnet,
    "resnet18": resnet18,
    "resnet34": resnet34,
    "preact_resnet18": preact_resnet18,
    "mobilenet_v1": mobilenet_v1,
}


# The models that train on 28x28 single-channel images (MNIST-sized): the CLI's, the GUI's and the
# benchmark's choices. Each maps to the keyword arguments it needs for such input beyond num_classes.
SMALL_IMAGE_MODELS: dict[str, dict] = {
    "lenet5": {},  # made for 28x28 single-channel input
    "alexnet_mnist": {},
    "resnet18": {"small_input": True},
    "preact_resnet18": {"small_input": True},
    "mobilenet_v1": {"small_input": True},
}


def small_image_kwargs(name: str, num_classes: int = 10, in_channels: int = 1) -> dict:
    """The keyword arguments that build get_model(name) for small images of `in_channels` channels."""
    if name not in SMALL_IMAGE_MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(SMALL_IMAGE_MODELS)}")
    extra = SMALL_IMAGE_MODELS[name]
    if not extra:
        return {"num_classes": num_classes}
    return {"num_classes": num_classes, "in_channels": in_channels, **extra}


def get_model(name: str, **kwargs) -> Module:
    """Build a registered model by name, e.g. get_model("resnet18", num_classes=10, small_input=True)."""
    fn = MODELS.get(name)
    if fn is None:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(sorted(MODELS))}")
    return fn(**kwargs)


__all__ = [
    "MODELS",
    "SMALL_IMAGE_MODELS",
    "AlexNet",
    "AlexNetMNIST",
    "BasicBlock",
    "LeNet5",
    "MobileNetV1",
    "PreActBlock",
    "PreActResNet",
    "ResNet",
    "alexnet",
    "alexnet_mnist",
    "get_model",
    "lenet5",
    "mobilenet_v1",
    "preact_resnet18",
    "resnet18",
    "resnet34",
    "small_image_kwargs",
]
