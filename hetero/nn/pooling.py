"""Pooling and local response normalisation layers over (N, C, H, W) input."""

from __future__ import annotations

from .. import validate
from ..tensor import Tensor
from . import functional as F
from .module import Module


class MaxPool2d(Module):
    """Max over kernel_size windows; stride defaults to kernel_size, as torch.nn.MaxPool2d."""

    def __init__(self, kernel_size: int | tuple[int, int], stride: int | tuple[int, int] | None = None,
                 padding: int | tuple[int, int] = 0, dilation: int | tuple[int, int] = 1,
                 return_indices: bool = False, ceil_mode: bool = False):
        super().__init__()
        k = validate.pair("MaxPool2d", "kernel_size", kernel_size, minimum=1)
        validate.pair("MaxPool2d", "stride", kernel_size if stride is None else stride, minimum=1)
        p = validate.pair("MaxPool2d", "padding", padding, minimum=0)
        validate.pair("MaxPool2d", "dilation", dilation, minimum=1)
        if any(pi > ki // 2 for pi, ki in zip(p, k)):
            raise ValueError(f"MaxPool2d: padding {padding} must be at most half of kernel_size {kernel_size}")
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding
        self.dilation = dilation
        self.return_indices = bool(return_indices)
        self.ceil_mode = bool(ceil_mode)

    def forward(self, input: Tensor) -> Tensor:
        return F.max_pool2d(input, self.kernel_size, self.stride, self.padding, self.dilation,
                            ceil_mode=self.ceil_mode, return_indices=self.return_indices)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class AvgPool2d(Module):
    """Mean over kernel_size windows; stride defaults to kernel_size, as torch.nn.AvgPool2d."""

    def __init__(self, kernel_size: int | tuple[int, int], stride: int | tuple[int, int] | None = None,
                 padding: int | tuple[int, int] = 0, ceil_mode: bool = False, count_include_pad: bool = True,
                 divisor_override: int | None = None):
        super().__init__()
        k = validate.pair("AvgPool2d", "kernel_size", kernel_size, minimum=1)
        validate.pair("AvgPool2d", "stride", kernel_size if stride is None else stride, minimum=1)
        p = validate.pair("AvgPool2d", "padding", padding, minimum=0)
        if any(pi > ki // 2 for pi, ki in zip(p, k)):
            raise ValueError(f"AvgPool2d: padding {padding} must be at most half of kernel_size {kernel_size}")
        if divisor_override is not None and (not validate.is_int(divisor_override) or divisor_override <= 0):
            raise ValueError(f"AvgPool2d: divisor_override must be a positive int or None, got {divisor_override!r}")
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding
        self.ceil_mode = bool(ceil_mode)
        self.count_include_pad = bool(count_include_pad)
        self.divisor_override = divisor_override

    def forward(self, input: Tensor) -> Tensor:
        return F.avg_pool2d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad, self.divisor_override)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AdaptiveAvgPool2d(Module):
    """Mean pooling to a fixed output size (torch's start/end index rule), e.g. (1, 1) for global pooling."""

    def __init__(self, output_size: int | tuple[int | None, int | None]):
        super().__init__()
        vals = (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)
        if len(vals) != 2 or any(v is not None and (isinstance(v, bool) or int(v) <= 0) for v in vals):
            raise ValueError(f"AdaptiveAvgPool2d: output_size must be a positive int or a pair, got {output_size!r}")
        self.output_size = output_size

    def forward(self, input: Tensor) -> Tensor:
        return F.adaptive_avg_pool2d(input, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class LocalResponseNorm(Module):
    """Normalise across `size` neighbouring channels: x / (k + alpha/size * sum x^2)^beta."""

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0):
        super().__init__()
        self.size = validate.positive_int("LocalResponseNorm", "size", size)
        self.alpha = alpha
        self.beta = beta
        self.k = k

    def forward(self, input: Tensor) -> Tensor:
        return F.local_response_norm(input, self.size, self.alpha, self.beta, self.k)

    def extra_repr(self) -> str:
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"
