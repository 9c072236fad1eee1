"""The doors to conv2d.cl and conv2d_direct.cl, and the column-matrix view every algorithm shares."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from ...device import Device
from ...tensor import Tensor, empty
from ..gemm import cpu as gemm_cpu
from ..gemm.config import up

# Fixed work-group width (at most; less where the device allows less for a kernel): PoCL compiles a kernel once
# per local size, so letting the driver pick one per global size would recompile for every new shape.
WG = 64
REDUCE_WG = 64  # REDUCE_WG in conv2d.cl: the reduction kernels' widest work-group
SWAP_PIXELS = 16  # pixels per swap01 work-item (one vector)


def run(dev: Device, name: str, defines: dict, global_size: Sequence[int], local_size: Sequence[int] | None,
        *args: Any) -> None:
    """Launch conv2d.cl's kernel `name`."""
    dev.run("conv2d.cl", name, defines, global_size, local_size, *args)


def group_width(dev: Device, name: str, defines: dict, cap: int, file: str = "conv2d.cl") -> int:
    """The largest power of two <= cap work-items kernel `name` (built with these defines) may run as a 1-D
    work-group on this device."""
    return gemm_cpu.group_width(dev, file, name, defines, cap)


def run_rows(dev: Device, name: str, defines: dict, items: int, images: int, *args: Any) -> None:
    """Run conv2d.cl's kernel `name` over (items, images) work-items, items rounded up to the work-group."""
    wg = group_width(dev, name, defines, WG)
    run(dev, name, defines, (up(items, wg), images), (wg, 1), *args)


def pixel_slices(total: int, p: int, wg: int, per_pixel: int, overhead: int) -> list[tuple[int, int]]:
    """[q0, q1) ranges of a reduction over `total` (image, pixel) pairs (p pixels per image, wg work-items
    sharing the pixels, per_pixel loop iterations each), one launch each, so that no work-item runs more loop
    iterations than MAX_LOOP_STEPS (hetero/ops/gemm/cpu.py); one range when it fits, as on most shapes."""
    # L pixels span at most L/p + 2 images (a loop iteration each) and give a work-item at most L/wg + L/p + 2
    # pixels
    room = gemm_cpu.MAX_LOOP_STEPS - overhead - 2 - 2 * per_pixel
    length = max(1, int(room / (1 / p + per_pixel / wg + per_pixel / p)))
    return [(q, min(q + length, total)) for q in range(0, max(total, 1), length)]  # (0, 0) for no pixels


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
