"""BatchNorm2d: per-channel affine parameters and running statistics; the work is F.batch_norm."""

from __future__ import annotations

import numpy as np

from .. import validate
from ..device import Device
from ..tensor import Tensor, empty
from . import functional as F
from . import init
from .module import Module, Parameter, resolve_device


class BatchNorm2d(Module):
    """Batch normalisation over (N, C, H, W), torch.nn.BatchNorm2d's arguments, buffers and update rule.

    num_batches_tracked is an int32 buffer of shape () (torch: int64; load_state_dict converts).
    F.batch_norm increments it with a one-work-item kernel in each training step, so counting needs
    no host read and stays right under graph replay; momentum=None (cumulative average) reads the
    count on the device too.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, device: str | int | Device | None = None, *, bias: bool = True):
        super().__init__()
        if not validate.is_int(num_features) or num_features <= 0:
            raise ValueError(f"BatchNorm2d: num_features must be a positive integer, got {num_features!r}")
        if not eps > 0:
            raise ValueError(f"BatchNorm2d: eps must be positive, got {eps!r}")
        if momentum is not None and not 0.0 <= momentum <= 1.0:
            raise ValueError(f"BatchNorm2d: momentum must be in [0, 1] or None, got {momentum!r}")
        self.num_features = int(num_features)
        self.eps = eps
        self.momentum = momentum
        self.affine = bool(affine)
        self.track_running_stats = bool(track_running_stats)
        dev = resolve_device(device)
        if self.affine:
            self.weight = Parameter(empty((self.num_features,), np.float32, dev))
        else:
            self.register_parameter("weight", None)
        if self.affine and bias:
            self.bias = Parameter(empty((self.num_features,), np.float32, dev))
        else:
            self.register_parameter("bias", None)
        if self.track_running_stats:
            self.register_buffer("running_mean", empty((self.num_features,), np.float32, dev))
            self.register_buffer("running_var", empty((self.num_features,), np.float32, dev))
            self.register_buffer("num_batches_tracked", empty((), np.int32, dev))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        self.reset_parameters()

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            init.zeros_(self.running_mean)
            init.ones_(self.running_var)
            init.zeros_(self.num_batches_tracked)

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        if self.weight is not None:
            init.ones_(self.weight)
        if self.bias is not None:
            init.zeros_(self.bias)

    def forward(self, input: Tensor) -> Tensor:
        if input.ndim != 4:
            raise ValueError(f"BatchNorm2d: expected 4D input (N, C, H, W), got shape {input.shape}")
        if input.shape[1] != self.num_features:
            raise ValueError(f"BatchNorm2d: input {input.shape} has {input.shape[1]} channels, "
                             f"expected num_features={self.num_features}")
        # torch: batch statistics in training, or in eval when no running stats are kept
        use_batch_stats = self.training or self.running_mean is None
        keep_stats = not self.training or self.track_running_stats
        return F.batch_norm(input, self.running_mean if keep_stats else None,
                            self.running_var if keep_stats else None, self.weight, self.bias,
                            use_batch_stats, self.momentum, self.eps,
                            num_batches_tracked=self.num_batches_tracked if keep_stats else None)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}")
