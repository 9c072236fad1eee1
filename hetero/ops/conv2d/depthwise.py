"""Depthwise convolution (groups == C, OC = C * multiplier): direct kernels, one output (or input) pixel per
work-item, the window compile-time; the weight gradient reduces a chunk of taps per work-group, the chunk sized
to the device's local memory."""

from __future__ import annotations

import numpy as np

from ...device import Device
from ...limits import kernel_limits
from ...tensor import Tensor, empty
from ..gemm import cpu as gemm_cpu
from ..gemm.config import up
from . import algorithms as table
from .geometry import ConvGeometry
from .kernels import group_width, pixel_slices, run

PLANE_WG = 64  # work-items per group of the forward and input-gradient kernels, at most

_plans: dict[tuple, tuple[dict, int]] = {}  # kernel_plan's answers


def kernel_plan(dev: Device, geo: ConvGeometry) -> tuple[dict, int]:
    """(defines, weight-gradient work-group width) of a window's depthwise kernels on a device: CHUNK_TAPS from
    the local memory the device (or the strict limits) allows, and what the driver says the built kernel uses."""
    col = geo.col_defines()
    budget = table.local_budget(dev.info.local_mem_bytes, dev.strict_limits)
    key = (dev, budget, *col.items())
    plan = _plans.get(key)
    if plan is None:
        wg = table.depthwise_reduce_wg(budget, geo.kw)
        chunk = table.depthwise_chunk_taps(budget, wg, geo.kh, geo.kw)
        while True:
            defines = {**col, "CHUNK_TAPS": chunk}
            wg = dev.work_group_size("conv2d.cl", "depthwise_bw_weight", defines, cap=wg, define="REDUCE_WG")
            defines["REDUCE_WG"] = wg
            used = kernel_limits(dev, dev.kernel("conv2d.cl", "depthwise_bw_weight", defines)).local_mem_bytes
            if used <= budget or chunk == geo.kw:  # one row over the budget: the launch check says so
                break
            chunk = max(geo.kw, min(chunk - geo.kw, chunk * budget // used // geo.kw * geo.kw))
        plan = _plans[key] = (defines, wg)
    return plan


def _pow2_ceil(n: int) -> int:
    return 1 << (max(n, 1) - 1).bit_length()


def _run_planes(dev: Device, name: str, defines: dict, width: int, height: int, planes: int, *args) -> None:
    """Run `name` over a (width, height, planes) grid in work-groups of at most PLANE_WG (what the device allows),
    at most MAX_GRID_GROUPS planes per launch, the first plane as the last argument."""
    wg = group_width(dev, name, defines, PLANE_WG)
    lx = min(_pow2_ceil(width), wg)
    ly = min(_pow2_ceil(height), wg // lx)
    for z0 in range(0, planes, table.MAX_GRID_GROUPS):
        run(dev, name, defines, (up(width, lx), up(height, ly), min(table.MAX_GRID_GROUPS, planes - z0)),
            (lx, ly, 1), *args, np.int32(z0))


def forward(x: Tensor, w: Tensor, b: Tensor | None, geo: ConvGeometry, out: Tensor) -> None:
    defines, _ = kernel_plan(x.device, geo)
    _run_planes(x.device, "depthwise_fwd", defines, geo.ow, geo.oh, geo.n * geo.oc,
                x, w, w if b is None else b, np.int32(b is not None), out, np.int32(geo.c), np.int32(geo.h),
                np.int32(geo.w), np.int32(geo.oc // geo.c), np.int32(geo.oh), np.int32(geo.ow))


def backward(g: Tensor, x: Tensor, w: Tensor, geo: ConvGeometry, need_dx: bool,
             need_dw: bool) -> tuple[Tensor | None, Tensor | None]:
    """(dx, dw), None where not needed."""
    dev = x.device
    defines, wg = kernel_plan(dev, geo)
    dims = (np.int32(geo.c), np.int32(geo.h), np.int32(geo.w), np.int32(geo.oc // geo.c), np.int32(geo.oh),
            np.int32(geo.ow))
    dx = dw = None
    if need_dx:
        dx = empty((geo.n, geo.c, geo.h, geo.w), np.float32, dev)
        _run_planes(dev, "depthwise_bw_input", defines, geo.w, geo.h, geo.n * geo.c, g, w, dx, *dims)
    if need_dw:
        dw = empty(w.shape, np.float32, dev)
        chunk = defines["CHUNK_TAPS"]
        rows = chunk // geo.kw
        # loop iterations per pixel and outside the pixels, nothing unrolled (see kernels.pixel_slices)
        per_pixel = rows * (geo.kw + 1) + 1
        overhead = gemm_cpu.TILE_OVERHEAD_STEPS + (wg.bit_length() + 3) * chunk
        chunks = -(-geo.kh // rows)
        for i, (q0, q1) in enumerate(pixel_slices(geo.n * geo.p, geo.p, wg, per_pixel, overhead)):
            for o0 in range(0, geo.oc, table.MAX_GRID_GROUPS):
                run(dev, "depthwise_bw_weight", defines, (wg, min(table.MAX_GRID_GROUPS, geo.oc - o0), chunks),
                    (wg, 1, 1), g, x, dw, *dims, np.int32(o0), np.int32(q0), np.int32(q1), np.int32(i > 0))
    return dx, dw
