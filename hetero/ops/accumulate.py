"""Same-shape elementwise a + b and a * b, below autograd: backward sums the gradients of a tensor used
twice with it, so this module must not import hetero.autograd (the broadcasting ops in elementwise.py do)."""

from __future__ import annotations

import numpy as np
import pyopencl.cltypes as cltypes

from ..tensor import Tensor, empty
from ..validate import INT_MAX

ADD, MUL = 0, 1  # elementwise.cl's OP ids
RANK = 8  # elementwise.cl's largest rank (its shapes and strides are int8 / long8 vectors)


def long_index(elements: int) -> bool:
    """elementwise.cl's LONG_INDEX for a launch whose largest tensor has this many elements: 64-bit indices
    only past what int reaches (the broadcast decode's 64-bit divisions cost 10-35% on PoCL, see index_args)."""
    return elements > INT_MAX  # what an int index reaches (LONG_INDEX=0)


def index_args(long: bool) -> tuple[type, object]:
    """(the scalar type, the vector maker) of elementwise.cl's index arguments for a LONG_INDEX choice."""
    return (np.int64, cltypes.make_long8) if long else (np.int32, cltypes.make_int8)


def same_shape(op: int, a: Tensor, b: Tensor) -> Tensor:
    """a (+|*) b for two float32 tensors of one shape on one device, one launch."""
    out = empty(a.shape, np.float32, a.device)
    n = out.size
    long = long_index(n)
    scalar, vector = index_args(long)
    unused = vector(*[0] * RANK)  # no strides without broadcasting
    a.device.run("elementwise.cl", "binary", {"OP": op, "BROADCAST": 0, "LONG_INDEX": int(long)}, (n,), None,
                 a, b, out, unused, unused, unused, scalar(n))
    return out


def accumulate(a: Tensor, b: Tensor) -> Tensor:
    """a + b for two gradients of one shape, outside autograd (used by backward)."""
    return same_shape(ADD, a, b)
