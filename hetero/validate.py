"""Argument checks shared by ops, layers and data: each raises ValueError naming the op and what was wrong."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .tensor import Tensor

INT_MAX = 2**31 - 1  # kernel sizes, offsets and strides are int32 arguments
# The largest size a kernel taking it as an int argument accepts when its int loop indices may step up to one
# grid (fewer than 2^24 work-items) past their end (batch_norm.cl, softmax.cl).
INT_INDEX_MAX = INT_MAX - 2**24


def is_int(v: Any) -> bool:
    """An int or numpy integer, not a bool."""
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def is_number(v: Any) -> bool:
    """An int, float or numpy number, not a bool."""
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def pair(op: str, name: str, value: Any, context: str = "", *, minimum: int | None = None,
         noun: str = "a pair of ints") -> tuple[int, int]:
    """An int or a 1- or 2-sequence of ints as a pair (torch's _pair), each >= minimum when given;
    context is appended to the error, noun names the pair in it."""
    vals = tuple(value) if isinstance(value, (tuple, list)) else (value,)
    if len(vals) == 1:
        vals = vals * 2
    if len(vals) != 2 or not all(is_int(v) for v in vals):
        raise ValueError(f"{op}: {name} must be an int or {noun}, got {value!r}{context}")
    out = int(vals[0]), int(vals[1])
    if minimum is not None and min(out) < minimum:
        raise ValueError(f"{op}: {name} must be >= {minimum}, got {out}{context}")
    return out


def positive_int(op: str, name: str, value: Any, context: str = "") -> int:
    """value as an int, refused unless it is an int >= 1."""
    if not is_int(value) or value < 1:
        raise ValueError(f"{op}: {name} must be a positive int, got {value!r}{context}")
    return int(value)


def int_at_least(op: str, name: str, value: Any, minimum: int) -> int:
    """value as an int, refused unless it is an int >= minimum."""
    if not is_int(value) or value < minimum:
        raise ValueError(f"{op}: {name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def finite(op: str, name: str, value: Any, context: str = "") -> float:
    """value as a float, refused unless it is a finite int or float (not a bool)."""
    if not is_number(value) or not math.isfinite(value):
        raise ValueError(f"{op}: {name} must be a finite number, got {value!r}{context}")
    return float(value)


def int32_range(op: str, name: str, value: int) -> int:
    """value as an int, refused outside [0, 2^31) (what an int32 kernel argument holds)."""
    if not 0 <= int(value) <= INT_MAX:
        raise ValueError(f"{op}: {name}={value} is out of range [0, 2^31)")
    return int(value)


def tensor_arg(op: str, name: str, t: Any, dtype: Any = np.float32, ndim: int | tuple[int, ...] | None = None,
               optional: bool = False):
    """t checked to be a hetero Tensor of dtype (None: any) and, when given, one of the ranks ndim."""
    if t is None and optional:
        return None
    if not isinstance(t, Tensor):
        raise ValueError(f"{op}: {name} must be a hetero Tensor, got {type(t).__name__}")
    if dtype is not None and t.dtype != np.dtype(dtype):
        raise ValueError(f"{op}: {name} {t.shape} must be {np.dtype(dtype).name}, got {t.dtype}")
    if ndim is not None:
        ranks = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if t.ndim not in ranks:
            want = " or ".join(f"{r}-D" for r in ranks)
            raise ValueError(f"{op}: {name} must be {want}, got shape {t.shape}")
    return t


def float_input(op: str, x: Any) -> Tensor:
    """The input of a functional op (torch's wording): a float32 hetero Tensor."""
    if not isinstance(x, Tensor):
        raise ValueError(f"{op}: expected a Tensor, got {type(x).__name__}")
    if x.dtype != np.float32:
        raise ValueError(f"{op}: expected a float32 tensor, got {x.dtype} {x.shape}")
    return x


def same_device(op: str, ref_name: str, ref: Any, **others: Any) -> None:
    """Every tensor in others (None skipped) on ref's device."""
    for name, t in others.items():
        if t is not None and t.device is not ref.device:
            raise ValueError(f"{op}: {ref_name} {ref.shape} is on device {ref.device.id} but {name} {t.shape} "
                             f"is on {t.device.id}")
