"""Conv2d: stores hyperparameters and an (out, in/groups, kh, kw) weight; the work is F.conv2d."""

from __future__ import annotations

import numpy as np

from .. import validate
from ..device import Device
from ..tensor import Tensor, empty
from . import functional as F
from . import init
from .module import Module, Parameter, resolve_device


class Conv2d(Module):
    """2-D convolution over (N, C, H, W) input, torch.nn.Conv2d's arguments and initialisation."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int],
                 stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] | str = 0,
                 dilation: int | tuple[int, int] = 1, groups: int = 1, bias: bool = True,
                 padding_mode: str = "zeros", device: str | int | Device | None = None):
        super().__init__()
        for name, v in (("in_channels", in_channels), ("out_channels", out_channels), ("groups", groups)):
            if not validate.is_int(v) or v <= 0:
                raise ValueError(f"Conv2d: {name} must be a positive integer, got {v!r}")
        if in_channels % groups:
            raise ValueError(f"Conv2d: in_channels ({in_channels}) must be divisible by groups ({groups})")
        if out_channels % groups:
            raise ValueError(f"Conv2d: out_channels ({out_channels}) must be divisible by groups ({groups})")
        if padding_mode != "zeros":
            raise ValueError(f"Conv2d: padding_mode {padding_mode!r} is not supported, only 'zeros'")
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.kernel_size = validate.pair("Conv2d", "kernel_size", kernel_size, minimum=1)
        self.stride = validate.pair("Conv2d", "stride", stride, minimum=1)
        self.dilation = validate.pair("Conv2d", "dilation", dilation, minimum=1)
        self.groups = int(groups)
        self.padding_mode = padding_mode
        if isinstance(padding, str):
            self.padding = padding
            self._pad = self._string_padding(padding)
        else:
            self.padding = validate.pair("Conv2d", "padding", padding, minimum=0)
            self._pad = self.padding
        dev = resolve_device(device)
        shape = (self.out_channels, self.in_channels // self.groups) + self.kernel_size
        self.weight = Parameter(empty(shape, np.float32, dev))
        if bias:
            self.bias = Parameter(empty((self.out_channels,), np.float32, dev))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def _string_padding(self, padding: str) -> tuple[int, int]:
        if padding == "valid":
            return (0, 0)
        if padding != "same":
            raise ValueError(f"Conv2d: padding {padding!r} must be 'valid', 'same' or ints")
        if self.stride != (1, 1):
            raise ValueError(f"Conv2d: padding='same' needs stride 1, got stride={self.stride}")
        total = [d * (k - 1) for d, k in zip(self.dilation, self.kernel_size)]
        if any(t % 2 for t in total):
            # torch pads such kernels asymmetrically, which F.conv2d's symmetric padding cannot express
            raise ValueError(f"Conv2d: padding='same' with kernel_size={self.kernel_size} and "
                             f"dilation={self.dilation} needs asymmetric padding, which is not supported")
        return (total[0] // 2, total[1] // 2)

    def reset_parameters(self, generator: np.random.Generator | None = None) -> None:
        """torch's init: kaiming_uniform_(a=sqrt(5)) weight, bias U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
        init.default_layer_init_(self.weight, self.bias, generator)

    def forward(self, input: Tensor) -> Tensor:
        return F.conv2d(input, self.weight, self.bias, self.stride, self._pad, self.dilation, self.groups)

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s
