"""The one door to gemm.cl's kernels."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ...device import Device
from ...tensor import Tensor


def buffer(x: Any) -> Any:
    """The cl.Buffer behind a Tensor (a buffer passes through)."""
    return x.buffer if isinstance(x, Tensor) else x


def run(dev: Device, name: str, defines: dict, global_size: Sequence[int], local_size: Sequence[int] | None,
        *args: Any) -> None:
    """Launch gemm.cl's kernel `name` (dev.run: built once per defines, scalar types declared once)."""
    dev.run("gemm.cl", name, defines, global_size, local_size, *args)
