"""The doors to conv2d.cl and conv2d_direct.cl, and the column-matrix view every algorithm shares."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from ...device import Device
from ...tensor import Tensor, empty
from ..gemm.config import up

# Fixed work-group width: PoCL compiles a kernel once per local size, so letting the driver pick one per
# global size would recompile for every new shape.
WG = 64
REDUCE_WG = 64  # REDUCE_WG in conv2d.cl
SWAP_PIXELS = 16  # pixels per swap01 work-item (one vector)


def run(dev: Device, name: str, defines: dict, global_size: Sequence[int], local_size: Sequence[int] | None,
        *args: Any) -> None:
    """Launch conv2d.cl's kernel `name`."""
    dev.run("conv2d.cl", name, defines, global_size, local_size, *args)


def run_rows(dev: Device, name: str, defines: dict, items: int, images: int, *args: Any) -> None:
    """Run conv2d.cl's kernel `name` over (items, images) work-items, items rounded up to the work-group."""
    run(dev, name, defines, (up(items, WG), images), (WG, 1), *args)


class Mat(NamedTuple):
    """A column-layout matrix inside a buffer: element (row r, image i, pixel p) at off + r*ld + i*img + p."""

    buf: Tensor
    off: int
    ld: int
    img: int


def empty_mat(dev: Device, rows: int, nb: int, p: int, layout: str) -> Mat:
    """A new [rows, nb images, p pixels] matrix, batch-major ("batch") or per image ("image")."""
    t = empty((rows * nb * p,), np.float32, dev)
    return Mat(t, 0, nb * p, p) if layout == "batch" else Mat(t, 0, p, rows * p)


def nchw_view(t: Tensor, n0: int, channels: int, p: int) -> Mat:
    """An NCHW tensor from image n0 on, seen as a per-image column matrix (rows = channels)."""
    return Mat(t, n0 * channels * p, p, channels * p)


def swap01(dev: Device, src: Any, src_off: int, dst: Any, dst_off: int, a: int, b: int, p: int) -> None:
    """dst[b][a][p] = src[a][b][p]: NCHW <-> CNHW for one chunk."""
    run_rows(dev, "swap01", {}, b * -(-p // SWAP_PIXELS), a, src, np.int32(src_off), dst, np.int32(dst_off),
             np.int32(a), np.int32(b), np.int32(p))
