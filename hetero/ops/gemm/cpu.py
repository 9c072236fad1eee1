"""The CPU GEMM variant: operands packed into panels where needed, then register-tiled kernels."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ...device import Device
from ...tensor import empty
from .config import up
from .kernels import run

if TYPE_CHECKING:
    from .launch import ImplicitB

PACK_WG = 4  # packing work-group width
PACK_K = 16  # columns of A per gemm_pack_a work-item (PACK_K in gemm.cl)
IMPLICIT_PACK_ROWS = 8  # x NR: rows of an implicit B panel per gemm_pack_b work-item (PACK_B_ROWS in gemm.cl)

# Loop iterations one work-item may run in all. Mesa's llvmpipe (rusticl) ends every loop of a work-item once
# it has run 65535 loop iterations, all its loops together, without any error (gallivm's
# LP_MAX_TGSI_LOOP_ITERATIONS; the work-items of one SIMD batch share the count, and both sides of a branch they
# take differently run), and no OpenCL query reports it: a strip of 12 tiles at k = 2304 lost most of its sums.
# The tile kernels spend one iteration per k step (gemm_tile.h writes the rows out), and long sums run as
# several launches, on every device: below this nothing changes.
MAX_LOOP_STEPS = 65535
# Loop iterations of a tile outside its k loop (accumulators, row pointers, stores: ~80 measured), rounded up.
TILE_OVERHEAD_STEPS = 256
# Loop iterations per k step of a strip's packing, at most (llvmpipe: 2.6 packing an implicit B, 3.4 with a
# partial panel in the SIMD batch of full ones).
STRIP_PACK_STEPS = 4


def k_slice(k: int, quantum: int = 1, steps_per_k: float = 1.0) -> int:
    """The longest part of k one launch of a tile kernel sums within MAX_LOOP_STEPS (all of k when it fits),
    a multiple of quantum (whole channels of an implicit or direct B)."""
    room = int((MAX_LOOP_STEPS - TILE_OVERHEAD_STEPS) / steps_per_k)
    if k <= room:
        return k
    if room < quantum:
        raise ValueError(f"gemm: the smallest part of k a launch can take ({quantum} steps of {steps_per_k:.0f} loop "
                         f"iterations) is over the loop budget of {MAX_LOOP_STEPS} per work-item")
    return room // quantum * quantum


def group_width(dev: Device, file: str, name: str, defines: dict, cap: int) -> int:
    """The largest power of two <= cap work-items that kernel `name` of kernels_cl/<file>, built with these
    defines (the launch's own program), may run as a 1-D work-group here (Device.local_size_limit)."""
    most = min(cap, dev.local_size_limit(file, name, defines))
    return 1 << (max(int(most), 1).bit_length() - 1)


def strip_fits(m: int, k: int, mr: int) -> bool:
    """Whether a strip (packing its panels, then every tile row) stays within MAX_LOOP_STEPS."""
    mt = -(-m // mr)
    return (mt + STRIP_PACK_STEPS) * k + TILE_OVERHEAD_STEPS * mt <= MAX_LOOP_STEPS


def launch_cpu(dev: Device, cfg: dict, defines: dict, m: int, n: int, k: int, a_args: tuple, b_args: tuple,
               tail: tuple, batch: int, implicit_b: ImplicitB | None = None,
               c_images: tuple[int, int] | None = None) -> None:
    """Pack operands into panels where needed, then run the register-tiled kernel (on C^T when swapped); a k
    longer than one work-item may loop over (k_slice) runs as slices summed into C."""
    quantum = 1 if implicit_b is None else implicit_b.window["COL_KH"] * implicit_b.window["COL_KW"]
    ks = k_slice(k, quantum)
    if ks < k:
        _launch_k_slices(dev, cfg, defines, m, n, k, ks, a_args, b_args, tail, batch, implicit_b, c_images)
        return
    mr, nr = cfg["MR"], cfg["NR"]
    trans_a, trans_b = bool(defines["TRANS_A"]), bool(defines["TRANS_B"])
    swap = bool(cfg.get("swap", False))
    i32 = np.int32
    geo_args: tuple = ()  # the B packers' trailing image geometry (IMPLICIT_B only)
    if implicit_b is not None:
        if swap or not cfg.get("pack_b", True):
            raise ValueError("gemm: an implicit B operand is only read packed and unswapped")
        defines = {**defines, **implicit_b.window}
        geo_args = implicit_b.geometry_args()
    c_args = () if c_images is None else tuple(i32(v) for v in c_images)  # gemm_cpu's trailing C geometry
    if swap:  # C^T = op(B)^T op(A)^T: op(B)^T is B read with the opposite transpose flag
        m, n, a_args, b_args, trans_a, trans_b = n, m, b_args, a_args, not trans_b, not trans_a
    mt, nt = -(-m // mr), -(-n // nr)
    pack_a = bool(cfg.get("pack_a", False) or trans_a)
    strip = bool(cfg.get("strip", False)) and strip_fits(m, k, mr)
    pack_b = bool(strip or cfg.get("pack_b", True) or trans_b or n < nr)
    panels = int(cfg.get("PANELS", 1)) if pack_b else 1  # blocks read from the next panel need packed B
    tn = -(-nt // panels)  # tile columns
    # one program holds the packers and the kernels
    defines = {**defines, "TRANS_A": int(trans_a), "TRANS_B": int(trans_b), "A_PACKED": int(pack_a),
               "B_PACKED": int(pack_b), "C_TRANS": int(swap), "IMPLICIT_B": int(implicit_b is not None),
               "C_IMAGES": int(c_images is not None), "PANELS": panels}
    wg = cfg.get("local", 1)
    if pack_a:
        a_batch = batch if int(a_args[3]) else 1  # a batch stride of 0: one matrix for all, packed once
        stride_ap = mt * mr * k if a_batch > 1 else 0
        ap = empty((a_batch * mt * mr * k,), np.float32, dev)
        kb = -(-k // PACK_K)
        grid = (up(mt, PACK_WG), kb, a_batch) if trans_a else (up(kb, PACK_WG), mt, a_batch)
        run(dev, "gemm_pack_a", defines, grid, (PACK_WG, 1, 1), i32(m), i32(k), *a_args, ap, i32(stride_ap))
        a_args = (ap.buffer, i32(0), i32(k), i32(stride_ap))
    if strip:  # each work-item packs its own B panel: one panel per batch entry, even for a shared B
        bp = empty((batch * nt * nr * k,), np.float32, dev)
        wg = group_width(dev, "gemm.cl", "gemm_cpu_strip", defines, wg)
        run(dev, "gemm_cpu_strip", defines, (up(tn, wg), batch), (wg, 1),
            i32(m), i32(n), i32(k), *a_args, *b_args, bp, i32(nt * nr * k), *tail, *geo_args, *c_args)
        return
    if pack_b:
        b_batch = batch if int(b_args[3]) else 1
        stride_bp = nt * nr * k if b_batch > 1 else 0
        bp = empty((b_batch * nt * nr * k,), np.float32, dev)
        kb = -(-k // (nr * (IMPLICIT_PACK_ROWS if implicit_b is not None else 1)))
        grid = (up(kb, PACK_WG), nt, b_batch) if trans_b else (up(nt, PACK_WG), kb, b_batch)
        run(dev, "gemm_pack_b", defines, grid, (PACK_WG, 1, 1), i32(n), i32(k), *b_args, bp, i32(stride_bp),
            *geo_args)
        b_args = (bp.buffer, i32(0), i32(nr), i32(stride_bp))
    band = max(1, min(int(cfg.get("band", mt)), mt))
    wg = group_width(dev, "gemm.cl", "gemm_cpu", defines, wg)
    run(dev, "gemm_cpu", defines, (up(mt * tn, wg), batch), (wg, 1),
        i32(m), i32(n), i32(k), *a_args, *b_args, *tail, i32(band), *c_args)


def _launch_k_slices(dev: Device, cfg: dict, defines: dict, m: int, n: int, k: int, ks: int, a_args: tuple,
                     b_args: tuple, tail: tuple, batch: int, implicit_b: ImplicitB | None,
                     c_images: tuple[int, int] | None) -> None:
    """C = alpha * sum over slices of op(A)[:, slice] @ op(B)[slice, :] + beta * C + bias: the first slice with
    the caller's beta and bias, the others adding to C (beta 1, no bias)."""
    trans_a, trans_b = bool(defines["TRANS_A"]), bool(defines["TRANS_B"])
    a_buf, a_off, lda, a_stride = a_args
    b_buf, b_off, ldb, b_stride = b_args
    c_buf, c_off, ldc, c_stride, alpha, beta, bias_buf, bias_off = tail
    i32 = np.int32
    for k0 in range(0, k, ks):
        kc = min(ks, k - k0)
        a_shift = k0 * int(lda) if trans_a else k0
        if implicit_b is not None:  # whole channels of the image: k0 column rows are k0 / taps channels
            taps = implicit_b.window["COL_KH"] * implicit_b.window["COL_KW"]
            b_shift = k0 // taps * implicit_b.h * implicit_b.w
        else:
            b_shift = k0 if trans_b else k0 * int(ldb)
        first = k0 == 0
        launch_cpu(dev, cfg, defines if first else {**defines, "BIAS": 0}, m, n, kc,
                   (a_buf, i32(int(a_off) + a_shift), lda, a_stride), (b_buf, i32(int(b_off) + b_shift), ldb, b_stride),
                   (c_buf, c_off, ldc, c_stride, alpha, beta if first else np.float32(1.0), bias_buf, bias_off),
                   batch, implicit_b, c_images)


def tile_defines(cfg: dict) -> dict:
    """The tile defines of a kernel that reads A in place and B from panels (or an image), from a "cpu" cfg."""
    return {"MR": cfg["MR"], "NR": cfg["NR"], "UNROLL": cfg["UNROLL"], "PANELS": cfg["PANELS"], "A_PACKED": 0,
            "B_PACKED": 1}


def tile_grid(cfg: dict, m: int, n: int) -> tuple[tuple[int], tuple[int], int]:
    """(global, local, band) of a kernel with one tile per work-item in gemm_cpu's banded order."""
    mt, tn = -(-m // cfg["MR"]), -(-n // (cfg["NR"] * cfg["PANELS"]))
    return (up(mt * tn, cfg["local"]),), (cfg["local"],), max(1, min(int(cfg["band"]), mt))
