"""Dropout with PyTorch's scaling; masks come from the device's Philox generator (hetero.random)."""

from __future__ import annotations

import numpy as np

from .. import validate
from ..autograd import Context, Function
from ..random import default_generator
from ..tensor import Storage, Tensor, empty, zeros


def keep_threshold(p: float) -> int:
    """Elements whose 32-bit Philox word is below this are kept: P(keep) = threshold / 2**32 ~= 1 - p."""
    return min(int((1.0 - p) * 2.0**32), 2**32 - 1)


def philox_blocks(n: int) -> int:
    """Philox blocks (4 words each) one dropout of n elements draws: the generator advances by this."""
    return -(-n // 4)


def dropout_forward(x: Tensor, p: float, local_size: int | None = None) -> tuple[Tensor, Storage]:
    """(y, mask): one launch drawing the mask from the device generator, one advancing its counter.

    local_size only exists to show that masks do not depend on work-group sizes.
    """
    dev = x.device
    gen = default_generator(dev)
    n = x.size
    y = empty(x.shape, np.float32, dev)
    mask = Storage(dev, n)  # one uint8 per element, 4x smaller than a float mask
    blocks = philox_blocks(n)
    glob = blocks if local_size is None else -(-blocks // local_size) * local_size
    dev.run("dropout.cl", "dropout_fw", None, (glob,), None if local_size is None else (local_size,), x, y,
            mask.buffer, gen.state, np.uint32(keep_threshold(p)), np.float32(1.0 / (1.0 - p)), np.int32(n))
    gen.advance(blocks)
    return y, mask


def dropout_backward(g: Tensor, mask: Storage, p: float) -> Tensor:
    dx = empty(g.shape, np.float32, g.device)
    g.device.run("dropout.cl", "dropout_bw", None, (g.size,), None, g, mask.buffer, dx, np.float32(1.0 / (1.0 - p)),
                 np.int32(g.size))
    return dx


class DropoutFn(Function):
    @staticmethod
    def forward(ctx: Context, x: Tensor, p: float) -> Tensor:
        y, ctx.mask = dropout_forward(x, p)
        ctx.p = p
        return y

    @staticmethod
    def backward(ctx: Context, g: Tensor):
        return dropout_backward(g, ctx.mask, ctx.p), None


class DropAllFn(Function):
    """p == 1: zeros out, zeros back, and no random numbers drawn (as PyTorch)."""

    @staticmethod
    def forward(ctx: Context, x: Tensor) -> Tensor:
        return zeros(x.shape, np.float32, x.device)

    @staticmethod
    def backward(ctx: Context, g: Tensor):
        return zeros(g.shape, np.float32, g.device)


def dropout(input: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Zero each element with probability p and scale the rest by 1 / (1 - p); identity unless training.

    p == 0, training=False or an empty input return `input` itself, as PyTorch does.
    """
    validate.float_input("dropout", input)
    if not validate.is_number(p) or not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: probability has to be between 0 and 1, but got {p!r} (input {input.shape})")
    p = float(p)
    if p == 0.0 or not training or input.size == 0:
        return input
    if p == 1.0:
        return DropAllFn.apply(input)
    return DropoutFn.apply(input, p)
