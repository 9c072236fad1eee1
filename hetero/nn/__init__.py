"""Layers, functional ops and initialisers with PyTorch names."""

from . import functional, init
from .activation import ELU, SELU, LeakyReLU, LogSoftmax, PReLU, ReLU, Sigmoid, Softmax, Tanh
from .container import ModuleList, Sequential
from .conv import Conv2d
from .dropout import Dropout
from .linear import Flatten, Identity, Linear
from .loss import CrossEntropyLoss, NLLLoss
from .module import IncompatibleKeys, Module, Parameter, StateDictError
from .normalization import BatchNorm2d
from .pooling import AdaptiveAvgPool2d, AvgPool2d, LocalResponseNorm, MaxPool2d

__all__ = [
    "AdaptiveAvgPool2d", "AvgPool2d", "BatchNorm2d", "Conv2d", "CrossEntropyLoss", "Dropout", "ELU", "Flatten",
    "functional", "Identity", "IncompatibleKeys", "init", "LeakyReLU", "Linear", "LocalResponseNorm", "LogSoftmax",
    "MaxPool2d", "Module", "ModuleList", "NLLLoss", "Parameter", "PReLU", "ReLU", "SELU", "Sequential", "Sigmoid",
    "Softmax", "StateDictError", "Tanh",
]
