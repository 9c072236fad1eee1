"""Argument checks shared by ops, layers and data: each raises ValueError naming the op and what was wrong."""

from __future__ import annotations

from typing import Any

import numpy as np

from .tensor import Tensor

INT_MAX = 2**31 - 1  # kernel sizes, offsets and strides are int32 arguments


def is_int(v: Any) -> bool:
    """An int or numpy integer, not a bool."""
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def pair(op: str, name: str, value: Any, context: str = "") -> tuple[int, int]:
    """An int or a 1- or 2-sequence of ints as a pair (torch's _pair); context is appended to the error."""
    vals = tuple(value) if isinstance(value, (tuple, list)) else (value,)
    if len(vals) == 1:
        vals = vals * 2
    if len(vals) != 2 or not all(is_int(v) for v in vals):
        raise ValueError(f"{op}: {name} must be an int or a pair of ints, got {value!r}{context}")
    return int(vals[0]), int(vals[1])


def positive_int(op: str, name: str, value: Any) -> int:
    if not is_int(value) or value < 1:
        raise ValueError(f"{op}: {name} must be a positive int, got {value!r}")
    return int(value)


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


def same_device(op: str, ref_name: str, ref: Any, **others: Any) -> None:
    """Every tensor in others (None skipped) on ref's device."""
    for name, t in others.items():
        if t is not None and t.device is not ref.device:
            raise ValueError(f"{op}: {ref_name} {ref.shape} is on device {ref.device.id} but {name} {t.shape} "
                             f"is on {t.device.id}")
