"""Linear (y = x W^T + b), Identity and Flatten."""

from __future__ import annotations

import numpy as np

from .. import validate
from ..device import Device
from ..tensor import Tensor, empty
from . import functional as F
from . import init
from .module import Module, Parameter, resolve_device


class Linear(Module):
    """Fully connected layer with an (out_features, in_features) weight, as torch.nn.Linear."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 device: str | int | Device | None = None):
        super().__init__()
        for name, v in (("in_features", in_features), ("out_features", out_features)):
            if not validate.is_int(v) or v <= 0:
                raise ValueError(f"Linear: {name} must be a positive integer, got {v!r}")
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        dev = resolve_device(device)
        self.weight = Parameter(empty((self.out_features, self.in_features), np.float32, dev))
        if bias:
            self.bias = Parameter(empty((self.out_features,), np.float32, dev))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self, generator: np.random.Generator | None = None) -> None:
        """torch's init: kaiming_uniform_(a=sqrt(5)) weight, bias U(-1/sqrt(in), 1/sqrt(in))."""
        init.default_layer_init_(self.weight, self.bias, generator)

    def forward(self, input: Tensor) -> Tensor:
        return F.linear(input, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Identity(Module):
    """Returns its input; a placeholder that keeps a model's layout (e.g. a removed max pool)."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, input: Tensor) -> Tensor:
        return input


class Flatten(Module):
    """Merge dims start_dim..end_dim (default: all but the batch dim), as torch.nn.Flatten."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        for name, v in (("start_dim", start_dim), ("end_dim", end_dim)):
            if not validate.is_int(v):
                raise ValueError(f"Flatten: {name} must be an int, got {v!r}")
        self.start_dim = int(start_dim)
        self.end_dim = int(end_dim)

    def forward(self, input: Tensor) -> Tensor:
        return F.flatten(input, self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
