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


def launch_cpu(dev: Device, cfg: dict, defines: dict, m: int, n: int, k: int, a_args: tuple, b_args: tuple,
               tail: tuple, batch: int, implicit_b: ImplicitB | None = None,
               c_images: tuple[int, int] | None = None) -> None:
    """Pack operands into panels where needed, then run the register-tiled kernel (on C^T when swapped)."""
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
    strip = bool(cfg.get("strip", False))
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
    run(dev, "gemm_cpu", defines, (up(mt * tn, wg), batch), (wg, 1),
        i32(m), i32(n), i32(k), *a_args, *b_args, *tail, i32(band), *c_args)


def tile_defines(cfg: dict) -> dict:
    """The tile defines of a kernel that reads A in place and B from panels (or an image), from a "cpu" cfg."""
    return {"MR": cfg["MR"], "NR": cfg["NR"], "UNROLL": cfg["UNROLL"], "PANELS": cfg["PANELS"], "A_PACKED": 0,
            "B_PACKED": 1}


def tile_grid(cfg: dict, m: int, n: int) -> tuple[tuple[int], tuple[int], int]:
    """(global, local, band) of a kernel with one tile per work-item in gemm_cpu's banded order."""
    mt, tn = -(-m // cfg["MR"]), -(-n // (cfg["NR"] * cfg["PANELS"]))
    return (up(mt * tn, cfg["local"]),), (cfg["local"],), max(1, min(int(cfg["band"]), mt))
