"""Same-shape elementwise a + b and a * b, below autograd: backward sums the gradients of a tensor used
twice with it, so this module must not import hetero.autograd (the broadcasting ops in elementwise.py do)."""

from __future__ import annotations

import numpy as np
import pyopencl.cltypes as cltypes

from ..tensor import Tensor, empty

ADD, MUL = 0, 1  # elementwise.cl's OP ids
RANK = 8  # elementwise.cl's largest rank (its shapes and strides are int8 vectors)
_NO_STRIDES = cltypes.make_int8(*[0] * RANK)  # unused without broadcasting


def same_shape(op: int, a: Tensor, b: Tensor) -> Tensor:
    """a (+|*) b for two float32 tensors of one shape on one device, one launch."""
    out = empty(a.shape, np.float32, a.device)
    n = out.size
    a.device.run("elementwise.cl", "binary", {"OP": op, "BROADCAST": 0}, (n,), None, a, b, out,
                 _NO_STRIDES, _NO_STRIDES, _NO_STRIDES, np.int32(n))
    return out


def accumulate(a: Tensor, b: Tensor) -> Tensor:
    """a + b for two gradients of one shape, outside autograd (used by backward)."""
    return same_shape(ADD, a, b)
