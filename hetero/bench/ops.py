"""Per-op figures: conv 3x3 / 5x5, depthwise 3x3, max pooling, LRN and linear, forward and backward.

The same OpSpec drives hetero (here), numpy (hetero/reference/) and torch (hetero.bench.references).
Forward runs with gradients enabled, as in training; backward calls the op's autograd Function backward
on the saved context, so it times the gradient alone (input and weight gradients, no bias).
Work: GFLOP for conv and linear (backward: twice the forward's, for dx and dw); for pooling and LRN,
GB of input plus output (the same count for every implementation, so the columns compare).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..device import Device
from ..nn import functional as F
from ..tensor import tensor
from .timing import Settings, rate, sample


@dataclass(frozen=True)
class OpSpec:
    name: str  # "conv", "depthwise", "max_pool", "lrn", "linear"
    x_shape: tuple[int, ...]
    w_shape: tuple[int, ...] | None
    kwargs: dict = field(default_factory=dict)

    @property
    def unit(self) -> str:
        return "GB/s" if self.w_shape is None else "GFLOP/s"

    @property
    def out_shape(self) -> tuple[int, ...]:
        if self.name == "linear":
            return self.x_shape[:-1] + (self.w_shape[0],)
        n, c, h, w = self.x_shape
        if self.name == "max_pool":
            k = self.kwargs["kernel_size"]
            return (n, c, h // k, w // k)
        if self.name == "lrn":
            return self.x_shape
        pad = self.kwargs.get("padding", 0)
        kh, kw = self.w_shape[2:]
        return (n, self.w_shape[0], h + 2 * pad - kh + 1, w + 2 * pad - kw + 1)

    def work(self, backward: bool) -> float:
        """GFLOP or GB for one call."""
        if self.w_shape is None:
            return 4 * (math.prod(self.x_shape) + math.prod(self.out_shape)) / 1e9
        if self.name == "linear":
            flop = 2 * math.prod(self.x_shape) * self.w_shape[0]
        else:
            flop = 2 * math.prod(self.out_shape) * math.prod(self.w_shape[1:])
        return flop * (2 if backward else 1) / 1e9

    def test(self) -> str:
        n = self.x_shape[0]
        if self.name == "linear":
            return f"linear {self.w_shape[1]}->{self.w_shape[0]} b{n}"
        _, c, h, w = self.x_shape
        if self.name == "max_pool":
            k = self.kwargs["kernel_size"]
            return f"max pool {k}x{k} {c}ch {h}x{w} b{n}"
        if self.name == "lrn":
            return f"LRN size {self.kwargs['size']} {c}ch {h}x{w} b{n}"
        kh, kw = self.w_shape[2:]
        if self.name == "depthwise":
            return f"depthwise {kh}x{kw} {c}ch {h}x{w} b{n}"
        return f"conv {kh}x{kw} {c}->{self.w_shape[0]} {h}x{w} b{n}"

    def inputs(self, seed: int = 0) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        """Host x, w (or None) and an output gradient, float32."""
        rng = np.random.default_rng(seed)
        x = rng.standard_normal(self.x_shape, dtype=np.float32)
        w = None
        if self.w_shape is not None:
            w = (rng.standard_normal(self.w_shape, dtype=np.float32) / math.sqrt(math.prod(self.w_shape[1:])))
        g = rng.standard_normal(self.out_shape, dtype=np.float32)
        return x, w, g


def specs(settings: Settings) -> list[OpSpec]:
    b = settings.op_batch
    lrn = dict(size=5, alpha=1e-4, beta=0.75, k=2.0)
    return [
        OpSpec("conv", (b, 64, 28, 28), (64, 64, 3, 3), dict(padding=1)),
        OpSpec("conv", (b, 32, 28, 28), (64, 32, 5, 5), dict(padding=2)),
        OpSpec("depthwise", (b, 64, 28, 28), (64, 1, 3, 3), dict(padding=1, groups=64)),
        OpSpec("max_pool", (b, 64, 28, 28), None, dict(kernel_size=2)),
        OpSpec("lrn", (b, 64, 28, 28), None, lrn),
        OpSpec("linear", (8 * b, 1024), (1024, 1024)),
    ]


def hetero_forward(spec: OpSpec) -> Callable:
    """f(x, w) -> y with hetero.nn.functional."""
    kw = spec.kwargs
    if spec.name in ("conv", "depthwise"):
        return lambda x, w: F.conv2d(x, w, None, padding=kw["padding"], groups=kw.get("groups", 1))
    if spec.name == "max_pool":
        return lambda x, w: F.max_pool2d(x, kw["kernel_size"])
    if spec.name == "lrn":
        return lambda x, w: F.local_response_norm(x, kw["size"], kw["alpha"], kw["beta"], kw["k"])
    if spec.name == "linear":
        return lambda x, w: F.linear(x, w)
    raise ValueError(f"bench: unknown op {spec.name!r}")


def measure_hetero(dev: Device, spec: OpSpec, settings: Settings, out: dict) -> None:
    hx, hw, hg = spec.inputs()
    x = tensor(hx, dev, requires_grad=True)
    w = None if hw is None else tensor(hw, dev, requires_grad=True)
    g = tensor(hg, dev)
    fwd = hetero_forward(spec)
    out["forward"] = rate(spec.work(False), sample(lambda: fwd(x, w), dev.synchronize, settings))
    node = fwd(x, w).grad_fn
    out["backward"] = rate(spec.work(True), sample(lambda: node.fn.backward(node.ctx, g), dev.synchronize, settings))
