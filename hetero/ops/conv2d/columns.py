"""Convolution as im2col + GEMM (forward, dW) and GEMM + col2im (dx), over column matrices in two layouts.

Column matrices hold one row per (channel, kh, kw) and one column per (image, output pixel):
- per-image  [nb, R, P]: one GEMM batched over the images (stride = R*P); no transpose of the output.
- batch-major [R, nb, P]: one GEMM with n = nb*P, so small outputs (P = 1 at the end of a network) still
  give the GEMM wide matrices; costs a transpose of the output. The weight gradient always uses it,
  because it folds the sum over images into the GEMM's k.
Images are processed in chunks so that a column matrix stays under algorithms.COLS_BUDGET bytes. A pointwise
convolution's input is its column matrix: per image it is read in place, batch-major it is transposed.
"""

from __future__ import annotations

import numpy as np

from ...device import Device
from ...tensor import Tensor
from ..gemm import Epilogue, Operand, Output, launch_gemm
from ..gemm.config import up
from . import algorithms as table
from .geometry import ConvGeometry
from .kernels import Mat, empty_mat, group_width, nchw_view, run, run_rows, swap01

# im2col_block / col2im_block (the vector variants): columns or pixels (NR in conv2d.cl) and rows
# (IM2COL_ROWS) per work-item, work-group width (at most).
BLOCK_COLS = 16
BLOCK_ROWS = 32
BLOCK_WG = 16


def _gemm_cols(layout: str, nb: int, p: int) -> tuple[int, int]:
    """(GEMM n, GEMM batch) for a column matrix of nb images of p pixels."""
    return (nb * p, 1) if layout == "batch" else (p, nb)


def unfold(x: Tensor, geo: ConvGeometry, n0: int, nb: int, layout: str) -> Mat:
    """The column matrix of images n0 .. n0+nb-1 (rows = C*kH*kW, columns = output pixels)."""
    dev = x.device
    hw = geo.h * geo.w
    if geo.pointwise:
        if layout == "image":
            return nchw_view(x, n0, geo.c, hw)
        cols = empty_mat(dev, geo.c, nb, hw, layout)
        swap01(dev, x, n0 * geo.c * hw, cols.buf, 0, nb, geo.c, hw)
        return cols
    rows = geo.c * geo.taps
    cols = empty_mat(dev, rows, nb, geo.p, layout)
    if layout == "batch" and table.reads_image(dev):
        # NR columns x BLOCK_ROWS rows per work-item, as vectors (see conv2d.cl)
        blocks = -(-nb * geo.p // BLOCK_COLS)
        wg = group_width(dev, "im2col_block", geo.col_defines(), BLOCK_WG)
        run(dev, "im2col_block", geo.col_defines(), (up(blocks, wg), -(-rows // BLOCK_ROWS)), (wg, 1),
            x, np.int32(n0 * geo.c * geo.h * geo.w), np.int32(geo.c), np.int32(geo.h),
            np.int32(geo.w), np.int32(geo.ow), np.int32(geo.p), np.int32(nb * geo.p), cols.buf, np.int32(cols.ld))
        return cols
    run_rows(dev, "im2col", geo.col_defines(), geo.c * geo.p, nb, x, np.int32(n0), np.int32(geo.c),
             np.int32(geo.h), np.int32(geo.w), np.int32(geo.oh), np.int32(geo.ow), cols.buf, np.int32(cols.ld),
             np.int32(cols.img))
    return cols


def fold_target(dx: Tensor, geo: ConvGeometry, n0: int, nb: int, layout: str) -> Mat:
    """Where the GEMM writes column gradients: straight into dx for a per-image pointwise conv."""
    if geo.pointwise and layout == "image":
        return nchw_view(dx, n0, geo.c, geo.h * geo.w)
    return empty_mat(dx.device, geo.c * geo.taps, nb, geo.p, layout)


def fold(dcols: Mat, dx: Tensor, geo: ConvGeometry, n0: int, nb: int, layout: str) -> None:
    """Sum column gradients back into dx for images n0 .. n0+nb-1."""
    dev = dx.device
    hw = geo.h * geo.w
    if geo.pointwise:
        if layout == "batch":
            swap01(dev, dcols.buf, 0, dx, n0 * geo.c * hw, geo.c, nb, hw)
        return
    if layout == "batch" and table.reads_image(dev):
        # NR pixels of a dx row per work-item, no per-pixel branches (see conv2d.cl)
        items = geo.h * -(-geo.w // BLOCK_COLS)
        wg = group_width(dev, "col2im_block", geo.col_defines(), BLOCK_WG)
        run(dev, "col2im_block", geo.col_defines(), (up(items, wg), geo.c, nb), (wg, 1, 1),
            dcols.buf, np.int32(dcols.ld), np.int32(geo.c * geo.taps * dcols.ld), np.int32(n0), np.int32(geo.c),
            np.int32(geo.h), np.int32(geo.w), np.int32(geo.oh), np.int32(geo.ow), dx)
        return
    run_rows(dev, "col2im", geo.col_defines(), geo.c * hw, nb, dcols.buf, np.int32(dcols.ld), np.int32(dcols.img),
             np.int32(n0), np.int32(geo.c), np.int32(geo.h), np.int32(geo.w), np.int32(geo.oh), np.int32(geo.ow), dx)


def forward(x: Tensor, w: Tensor, b: Tensor | None, geo: ConvGeometry, layout: str, out: Tensor) -> None:
    """out = conv(x, w) + b through column matrices in `layout` ("image" or "batch")."""
    dev = x.device
    kdim = geo.icg * geo.taps
    nb_max = table.images_per_chunk(geo, max(geo.c * geo.taps, geo.oc))
    for n0 in range(0, geo.n, nb_max):
        nb = min(nb_max, geo.n - n0)
        cols = unfold(x, geo, n0, nb, layout)
        dst = empty_mat(dev, geo.oc, nb, geo.p, layout) if layout == "batch" else nchw_view(out, n0, geo.oc, geo.p)
        gn, batch = _gemm_cols(layout, nb, geo.p)
        for g in range(geo.groups):
            launch_gemm(dev, geo.ocg, gn, kdim,
                        Operand(w, g * geo.ocg * kdim, kdim),
                        Operand(cols.buf, cols.off + g * kdim * cols.ld, cols.ld, False, cols.img),
                        Output(dst.buf, dst.off + g * geo.ocg * dst.ld, dst.ld, dst.img),
                        Epilogue(bias=b, bias_offset=g * geo.ocg, bias_axis=None if b is None else "m"),
                        batch=batch)
        if layout == "batch":
            swap01(dev, dst.buf, 0, out, n0 * geo.oc * geo.p, geo.oc, nb, geo.p)


def backward(g: Tensor, x: Tensor, w: Tensor, geo: ConvGeometry, layout: str, dx: Tensor | None,
             dw: Tensor | None, dy_all: Mat | None = None) -> None:
    """dx (col2im) and / or dw (im2col) chunk by chunk, sharing each chunk's dY; dy_all: dY of every image,
    batch-major, when the direct weight gradient already made it."""
    dev: Device = x.device
    kdim = geo.icg * geo.taps
    nb_max = table.images_per_chunk(geo, max(geo.c * geo.taps, geo.oc))
    for n0 in range(0, geo.n, nb_max):
        nb = min(nb_max, geo.n - n0)
        gn, batch = _gemm_cols(layout, nb, geo.p)
        if layout == "batch" and dy_all is not None:  # images n0.. of the matrix already swapped
            dy = Mat(dy_all.buf, n0 * geo.p, dy_all.ld, geo.p)
        elif layout == "batch":
            dy = empty_mat(dev, geo.oc, nb, geo.p, layout)
            swap01(dev, g, n0 * geo.oc * geo.p, dy.buf, 0, nb, geo.oc, geo.p)
        else:
            dy = nchw_view(g, n0, geo.oc, geo.p)
        if dw is not None:
            # dW_g += dY_g [ocg, nb*P] . cols_g^T: the sum over images is the GEMM's k
            cols = unfold(x, geo, n0, nb, layout)
            for grp in range(geo.groups):
                launch_gemm(dev, geo.ocg, kdim, gn,
                            Operand(dy.buf, dy.off + grp * geo.ocg * dy.ld, dy.ld),
                            Operand(cols.buf, cols.off + grp * kdim * cols.ld, cols.ld, True),
                            Output(dw, grp * geo.ocg * kdim, kdim), Epilogue(beta=0.0 if n0 == 0 else 1.0))
            del cols
        if dx is not None:
            # dcols_g = W_g^T [kdim, ocg] . dY_g, then col2im
            dcols = fold_target(dx, geo, n0, nb, layout)
            for grp in range(geo.groups):
                launch_gemm(dev, kdim, gn, geo.ocg,
                            Operand(w, grp * geo.ocg * kdim, kdim, True),
                            Operand(dy.buf, dy.off + grp * geo.ocg * dy.ld, dy.ld, False, dy.img),
                            Output(dcols.buf, dcols.off + grp * kdim * dcols.ld, dcols.ld, dcols.img),
                            batch=batch)
            fold(dcols, dx, geo, n0, nb, layout)
