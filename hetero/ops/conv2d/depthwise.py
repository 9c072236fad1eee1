"""Depthwise convolution (groups == C, OC = C * multiplier): direct kernels, one output (or input) pixel per
work-item, the window compile-time."""

from __future__ import annotations

import numpy as np

from ...tensor import Tensor, empty
from .geometry import ConvGeometry
from .kernels import REDUCE_WG, run


def forward(x: Tensor, w: Tensor, b: Tensor | None, geo: ConvGeometry, out: Tensor) -> None:
    run(x.device, "depthwise_fwd", geo.col_defines(), (geo.ow, geo.oh, geo.n * geo.oc), None,
        x, w, w if b is None else b, np.int32(b is not None), out, np.int32(geo.c), np.int32(geo.h),
        np.int32(geo.w), np.int32(geo.oc // geo.c), np.int32(geo.oh), np.int32(geo.ow))


def backward(g: Tensor, x: Tensor, w: Tensor, geo: ConvGeometry, need_dx: bool,
             need_dw: bool) -> tuple[Tensor | None, Tensor | None]:
    """(dx, dw), None where not needed."""
    dev = x.device
    dims = (np.int32(geo.c), np.int32(geo.h), np.int32(geo.w), np.int32(geo.oc // geo.c))
    dx = dw = None
    if need_dx:
        dx = empty((geo.n, geo.c, geo.h, geo.w), np.float32, dev)
        run(dev, "depthwise_bw_input", geo.col_defines(), (geo.w, geo.h, geo.n * geo.c), None,
            g, w, dx, *dims, np.int32(geo.oh), np.int32(geo.ow))
    if need_dw:
        dw = empty(w.shape, np.float32, dev)
        run(dev, "depthwise_bw_weight", geo.col_defines(), (REDUCE_WG, geo.oc), (REDUCE_WG, 1),
            g, x, dw, np.int32(geo.n), *dims, np.int32(geo.oh), np.int32(geo.ow))
    return dx, dw
