"""Which GEMM kernel variant and tile defines a shape gets on a device: the per-device decision table.

Everything here is plain data and arithmetic on the device's type string (or anything with a `.type`), so
the table is unit-tested without a device and an autotuner can replace it.
"""

from __future__ import annotations

from typing import Any

# Problems up to this many multiply-adds run on the naive kernel: packing would cost more than it saves.
NAIVE_MAX_FLOPS = 16 * 16 * 16
# The CPU register tile: MR rows by NR-wide vector blocks. MR = 8 fits channel counts (64, 96, 128, ...)
# exactly and ran a little faster than 6 or 12.
CPU_MR, CPU_NR = 8, 16
# UNROLL 1: as fast as 2 or 4, a smaller program, and no "loop not unrolled" remark from PoCL's compiler
# on every cold build.
CPU_UNROLL = 1
CPU_WG = 16  # tiles per work-group: one tile per work-group lost much of its time to scheduling
# op(B) read in place, saving a launch, while it stays in L2.
CPU_DIRECT_B_BYTES = 256 * 1024
PACK_COST = 64  # multiply-adds one float copied into a panel costs, in gemm_config's cost model
# A band of tile rows whose A rows span a few MiB: the current B panel stays in L2 while the band's A
# rows are read from L3.
BAND_BYTES = 3 << 20
# Strips (a work-item packs its own B panel and runs the column of tiles on it while it is in cache) pay
# off with few tile rows, enough tile columns to keep the cores busy, and panels that stay in L2.
STRIP_MAX_TILE_ROWS = 16
STRIP_MIN_TILE_COLUMNS = 8
STRIP_MAX_PANEL_BYTES = 512 * 1024
# Split-k on CPUs: a GEMM with fewer C tiles than this (MR x 2NR each) and k of at least SPLIT_K_MIN_K
# runs as slices of k side by side, then sums them, so that a thin GEMM keeps every core busy.
SPLIT_K_MAX_TILES = 32
SPLIT_K_MIN_K = 2048
SPLIT_K_MIN_SLICE = 256
SPLIT_K_WORK_ITEMS = 64
# GPU local-memory tiles: a small tile when either side is thin, so fewer of its elements are padding.
GPU_SMALL_SIDE = 32
GPU_SMALL_TILE = {"TSM": 32, "TSN": 32, "TSK": 16, "WPTM": 2, "WPTN": 2}
GPU_TILE = {"TSM": 64, "TSN": 64, "TSK": 16, "WPTM": 4, "WPTN": 4}


# What gemm_config returns, by variant:
# "naive": one work-item per element (tiny problems, k == 0).
# "cpu": MR x (NR * PANELS) register tiles; keys MR, NR, UNROLL, PANELS (NR-wide blocks per tile, 2 only with B
#   packed), local (work-group size), band (tile rows walked together, column by column, so neighbouring
#   work-items share a B panel), pack_a / pack_b (copy the operand into panels first; a transposed operand is
#   always packed), strip (a work-item per column of tiles packs its own B panel: no separate packing pass),
#   swap (compute C^T = op(B)^T op(A)^T so the smaller operand is the packed one).
# "tiled": local-memory tiles for GPUs; keys TSM, TSN, TSK, WPTM, WPTN.
# An implicit B (a convolution's columns read from the image) is only read by the "cpu" variant, packed and
# unswapped, so it gets that variant on every device: its kernels are plain OpenCL, and whether an implicit B
# pays off on a device is the caller's choice.
VARIANTS = ("naive", "cpu", "tiled")


def flavour_of(device: Any) -> str:
    """The kernel flavour ("cpu" or "gpu") of a Device, of a traits object (its .flavour, else its OpenCL
    .type), or the string itself."""
    if isinstance(device, str):
        return device
    flavour = getattr(device, "flavour", None)
    return flavour if flavour is not None else ("cpu" if device.type == "cpu" else "gpu")


def up(x: int, multiple: int) -> int:
    """x rounded up to a multiple."""
    return -(-x // multiple) * multiple


def gemm_config(device: Any, m: int, n: int, k: int, trans_a: bool, trans_b: bool,
                implicit_b: bool = False) -> dict:
    """Kernel variant and tile defines for one GEMM shape on one device (the autotuner's hook; see VARIANTS)."""
    if not implicit_b and (k == 0 or m * n * k <= NAIVE_MAX_FLOPS):
        return {"variant": "naive"}
    if flavour_of(device) == "cpu" or implicit_b:
        return _cpu_config(m, n, k, trans_a, trans_b, implicit_b)
    return {"variant": "tiled", **(GPU_SMALL_TILE if min(m, n) <= GPU_SMALL_SIDE else GPU_TILE)}


def _cpu_config(m: int, n: int, k: int, trans_a: bool, trans_b: bool, implicit_b: bool) -> dict:
    # Cost in multiply-adds: the tiles' padded work plus PACK_COST per element copied into panels: B (k x n)
    # always and A (m x k) when it is transposed; swapped, op(A)^T is the packed side, op(B)^T is read in
    # place when B is stored n x k, and C is stored element by element, transposed.
    mr, nr = CPU_MR, CPU_NR
    cost = up(m, mr) * up(n, nr) * k + PACK_COST * (k * n + (m * k if trans_a else 0))
    cost_swapped = (up(n, mr) * up(m, nr) * k + PACK_COST * (m * k + (0 if trans_b else k * n))
                    + PACK_COST * m * n)
    swap = cost_swapped < cost and not implicit_b
    km, kn = (n, m) if swap else (m, n)  # the problem the kernel runs
    # The B side of the problem the kernel runs (op(A)^T when swapped) is read in place when it needs no
    # transposing and stays in L2.
    kernel_trans_b = (not trans_a) if swap else trans_b
    pack_b = bool(kernel_trans_b) or k * kn * 4 > CPU_DIRECT_B_BYTES or implicit_b
    band = max(1, BAND_BYTES // (mr * k * 4))
    strip = (pack_b and up(km, mr) // mr <= STRIP_MAX_TILE_ROWS and up(kn, nr) // nr >= STRIP_MIN_TILE_COLUMNS
             and k * nr * 2 * 4 <= STRIP_MAX_PANEL_BYTES)
    # Two NR-wide blocks per tile when B is packed: 2 * MR FMAs per MR + 2 loads instead of MR per MR + 1,
    # which left the loads as the bound. One block where there is one panel (a 16-column problem would
    # compute a discarded second).
    panels = 2 if up(kn, nr) // nr >= 2 else 1
    return {"variant": "cpu", "MR": mr, "NR": nr, "UNROLL": CPU_UNROLL, "PANELS": panels, "local": CPU_WG,
            "band": band, "pack_a": False, "pack_b": pack_b, "swap": swap, "strip": strip}


def k_splits(device: Any, m: int, n: int, k: int) -> int:
    """How many equal slices of k a plain CPU GEMM with few tiles runs side by side (1: none)."""
    if flavour_of(device) != "cpu" or k < SPLIT_K_MIN_K:
        return 1
    wide = 2 * CPU_NR  # a tile's two blocks; either orientation
    tiles = min(-(-m // CPU_MR) * -(-n // wide), -(-n // CPU_MR) * -(-m // wide))
    if tiles >= SPLIT_K_MAX_TILES:
        return 1
    want = min(-(-SPLIT_K_WORK_ITEMS // tiles), k // SPLIT_K_MIN_SLICE)
    return next((s for s in range(want, 1, -1) if k % s == 0), 1)
