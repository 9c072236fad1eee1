"""Direct convolution (CPU): the GEMM kernels of conv2d_direct.cl read B straight from a zero-padded copy of
the input (pad2d), so nothing is packed (forward) and no column matrix is written (weight gradient)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ...device import Device
from ...tensor import Tensor, empty
from ...validate import int32_range
from ..gemm import ImplicitB, gemm_config
from ..gemm.config import up
from ..gemm.cpu import PACK_WG, k_slice, tile_defines, tile_grid
from ..gemm.kernels import buffer
from ..gemm.kernels import run as run_gemm
from . import algorithms as table
from .geometry import ConvGeometry
from .kernels import Mat, empty_mat, group_width, run, swap01

PAD_WG = 16  # padded rows per pad2d work-group


def _run(dev: Device, name: str, defines: dict, global_size: tuple, local_size: tuple, *args: Any) -> None:
    dev.run("conv2d_direct.cl", name, defines, global_size, local_size, *args)


def padded_input(x: Tensor, geo: ConvGeometry) -> ImplicitB:
    """x copied into zero-padded planes that hold every window (pad2d), DIRECT_SLACK readable floats either
    side, as the direct kernels read it (buf: the copy; window padding 0)."""
    dev = x.device
    (sh, sw), (dh, dw) = geo.stride, geo.dilation
    hp = max(geo.h + geo.pad_t, (geo.oh - 1) * sh + (geo.kh - 1) * dh + 1)
    wp = max(geo.w + geo.pad_l, (geo.ow - 1) * sw + (geo.kw - 1) * dw + 1)
    slack = table.DIRECT_SLACK
    xp = empty((slack + geo.n * geo.c * hp * wp + slack,), np.float32, dev)
    wg = group_width(dev, "pad2d", {}, PAD_WG)
    run(dev, "pad2d", {}, (up(hp, wg), geo.c, geo.n), (wg, 1, 1),
        x, xp, np.int32(slack), np.int32(geo.h), np.int32(geo.w), np.int32(hp), np.int32(wp),
        np.int32(geo.pad_t), np.int32(geo.pad_l))
    window = {**geo.col_defines(), "COL_PH": 0, "COL_PW": 0}
    return ImplicitB(xp, slack, 0, window, hp, wp, geo.ow, geo.p, geo.c * hp * wp)


def launch_conv_direct(dev: Device, m: int, n: int, k: int, a: Any, a_offset: int, lda: int, padded: ImplicitB,
                       c: Any, c_offset: int, c_images: tuple[int, int], bias: Any = None,
                       bias_offset: int = 0) -> None:
    """C = A @ cols + bias[i] with B read straight from a padded input copy (gemm_cpu_direct)."""
    # padded (from padded_input: window padding 0, stride 1 along rows) has NR readable floats either side of
    # its offset; C is stored per image (c_images, ldc = p); k is the channels times the window's taps.
    win = padded.window
    if win["COL_PH"] or win["COL_PW"] or win["COL_SW"] != 1:
        raise ValueError(f"gemm: the direct convolution needs a padded input read at stride 1 along rows, "
                         f"got window {win}")
    if k % (win["COL_KH"] * win["COL_KW"]):
        raise ValueError(f"gemm: k={k} is not a whole number of channels of {win['COL_KH']}x{win['COL_KW']} taps")
    if m == 0 or n == 0:
        return
    taps = win["COL_KH"] * win["COL_KW"]
    cfg = gemm_config(dev, m, n, k, False, False, implicit_b=True)
    i32, f32 = np.int32, np.float32
    grid, local, band = tile_grid(cfg, m, n)
    c_buf = buffer(c)
    plane = padded.h * padded.w
    # Work-items whose blocks take different paths run both of them (llvmpipe): two k loops, each with a loop
    # over the channels, so long windows of channels run as slices summed into C.
    ks = k_slice(k, taps, 2.0 + 2.0 / taps)
    for k0 in range(0, k, ks):
        kc, first = min(ks, k - k0), k0 == 0
        defines = {"BIAS": 0 if bias is None or not first else 1, **tile_defines(cfg), "C_TRANS": 0, "C_IMAGES": 1,
                   **win}
        _run(dev, "gemm_cpu_direct", defines, grid, local,
             i32(m), i32(n), i32(kc), buffer(a), i32(a_offset + k0), i32(lda), buffer(padded.buf),
             i32(padded.offset + k0 // taps * plane), c_buf, i32(c_offset), i32(c_images[0]), f32(1.0),
             f32(0.0 if first else 1.0), c_buf if bias is None else buffer(bias), i32(bias_offset), i32(band),
             *padded.geometry_args(), *(i32(v) for v in c_images))


def launch_conv_weight_direct(dev: Device, m: int, n: int, k: int, padded: ImplicitB, dy: Any, dy_offset: int,
                              ld_dy: int, dw: Any) -> None:
    """dW[n, m] = dY[n, k] @ cols^T with the columns read from a padded input copy (gemm_cpu_dw_direct)."""
    # Any stride and dilation. dY is [n output channels, k = images * output pixels] (CNHW) with leading
    # dimension ld_dy; m is the channels times the window's taps; dW is contiguous.
    win = padded.window
    if win["COL_PH"] or win["COL_PW"]:
        raise ValueError(f"gemm: the direct weight gradient needs a padded input, got window {win}")
    if m % (win["COL_KH"] * win["COL_KW"]) or k % padded.p:
        raise ValueError(f"gemm: m={m} must be whole channels of {win['COL_KH']}x{win['COL_KW']} taps and "
                         f"k={k} whole images of {padded.p} pixels")
    for name, v in (("m", m), ("n", n), ("k", k), ("xp_offset", padded.offset), ("dy_offset", dy_offset),
                    ("ld_dy", ld_dy)):
        int32_range("gemm", name, v)
    if m == 0 or n == 0 or k == 0:
        return
    cfg = gemm_config(dev, m, n, k, False, False, implicit_b=True)
    nr = cfg["NR"]
    base = {"BIAS": 0, **tile_defines(cfg), "C_TRANS": 1, "C_IMAGES": 0}
    i32, f32 = np.int32, np.float32
    nt = -(-n // nr)
    grid, local, band = tile_grid(cfg, m, n)
    # Output rows per launch: a work-item loops over each row's pixels and over the rows (k_slice's budget);
    # longer sums run as launches adding into dW.
    ow = padded.ow
    rows = k_slice(k // ow, 1, ow + 1.0)
    bp = empty((nt * nr * rows * ow,), np.float32, dev)
    for r0 in range(0, k // ow, rows):
        kc = min(rows, k // ow - r0) * ow
        # op(B) = dY^T for these columns, stored n x k: packed transposed, as launch_gemm packs a TRANS_B operand
        run_gemm(dev, "gemm_pack_b", {"TRANS_A": 0, **base, "TRANS_B": 1, "IMPLICIT_B": 0},
                 (up(-(-kc // nr), PACK_WG), nt, 1), (PACK_WG, 1, 1),
                 i32(n), i32(kc), buffer(dy), i32(dy_offset + r0 * ow), i32(ld_dy), i32(0), bp, i32(0))
        _run(dev, "gemm_cpu_dw_direct", {**base, **win}, grid, local,
             i32(m), i32(n), i32(kc), buffer(padded.buf), i32(padded.offset), bp, buffer(dw), i32(m), i32(band),
             f32(0.0 if r0 == 0 else 1.0), i32(r0), *padded.geometry_args())


def forward(x: Tensor, w: Tensor, b: Tensor | None, geo: ConvGeometry, out: Tensor) -> None:
    """out = conv(x, w) + b with the direct kernel (one group, stride 1 along rows)."""
    padded = padded_input(x, geo)
    kdim = geo.c * geo.taps
    launch_conv_direct(x.device, geo.oc, geo.n * geo.p, kdim, w, 0, kdim, padded, out, 0, (geo.p, geo.oc * geo.p),
                       bias=b)


def weight_grad(g: Tensor, x: Tensor, geo: ConvGeometry, dw: Tensor) -> Mat:
    """dw = dY (CNHW) . cols^T with the columns read from a padded copy of x; returns the CNHW dY, which the
    input gradient's GEMMs reuse."""
    dev = x.device
    dy_all = empty_mat(dev, geo.oc, geo.n, geo.p, "batch")
    swap01(dev, g, 0, dy_all.buf, 0, geo.n, geo.oc, geo.p)
    padded = padded_input(x, geo)
    launch_conv_weight_direct(dev, geo.c * geo.taps, geo.oc, geo.n * geo.p, padded, dy_all.buf, 0, dy_all.ld, dw)
    return dy_all
