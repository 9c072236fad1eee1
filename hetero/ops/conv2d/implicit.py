"""Implicit GEMM (CPU): the forward GEMM's B packing reads the column matrix straight from the image, and it
stores NCHW directly, so no column matrix is written and read back and no output is transposed."""

from __future__ import annotations

from ...tensor import Tensor
from ..gemm import Epilogue, ImplicitB, Operand, Output, launch_gemm
from . import algorithms as table
from .geometry import ConvGeometry


def implicit_cols(geo: ConvGeometry, buf, offset: int = 0, stride: int = 0) -> ImplicitB:
    """The column matrix of the images in `buf` from `offset` (channel 0 of the group), entries `stride` apart."""
    return ImplicitB(buf, offset, stride, geo.col_defines(), geo.h, geo.w, geo.ow, geo.p, geo.c * geo.h * geo.w)


def forward(x: Tensor, w: Tensor, b: Tensor | None, geo: ConvGeometry, per_image: bool, out: Tensor) -> None:
    """out = conv(x, w) + b. per_image: one GEMM per image (a batch entry each; P fills whole tiles), else one
    GEMM whose columns are the pixels of all the chunk's images (C's image-split columns)."""
    dev = x.device
    kdim = geo.icg * geo.taps
    hw = geo.h * geo.w
    nb_max = table.images_per_chunk(geo, max(geo.c * geo.taps, geo.oc))
    for n0 in range(0, geo.n, nb_max):
        nb = min(nb_max, geo.n - n0)
        gn, batch, images = (geo.p, nb, None) if per_image else (nb * geo.p, 1, (geo.p, geo.oc * geo.p))
        for g in range(geo.groups):
            launch_gemm(dev, geo.ocg, gn, kdim,
                        Operand(w, g * geo.ocg * kdim, kdim),
                        implicit_cols(geo, x, (n0 * geo.c + g * geo.icg) * hw, geo.c * hw),
                        Output(out, (n0 * geo.oc + g * geo.ocg) * geo.p, geo.p, geo.oc * geo.p, images),
                        Epilogue(bias=b, bias_offset=g * geo.ocg, bias_axis=None if b is None else "m"),
                        batch=batch)
