"""launch_gemm: the buffer-level GEMM every matrix op builds on, its structured arguments, and sum_rows."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ...device import Device
from ...tensor import empty
from ...validate import INT_MAX, int32_range
from . import config
from .config import up
from .cpu import launch_cpu
from .kernels import buffer, run

_BIAS_IDS = {None: 0, "m": 1, "n": 2}
_TILE_KEYS = ("MR", "NR", "UNROLL", "TSM", "TSN", "TSK", "WPTM", "WPTN")
_XGEMM_KEYS = ("MWG", "NWG", "KWG", "MDIMC", "NDIMC", "VWM", "VWN", "SA", "SB")
# Fixed local sizes everywhere: PoCL compiles a kernel once per local size, and letting it choose one per
# global size would recompile for every new shape. The naive kernel's shrinks where the kernel allows less.
_NAIVE_WG = 8
_SUM_WG = 16
# (device, kernel, defines) -> what the build allows: the most work-items of its work-group
_allowed: dict[tuple, int] = {}
# device -> the fewest work-items an xgemm build of it allowed when it refused a row: later rows needing more
# go straight to the fallback instead of being compiled only to be refused (rusticl refuses every row of over
# 32 work-items, each refusal a compile of its own)
_refused: dict[Device, int] = {}


class Operand(NamedTuple):
    """A row-major matrix in a buffer: op(X) is X, or X^T with trans (offset, ld and stride in floats)."""

    # stride steps from one batch entry's matrix to the next (0: one matrix shared by all)
    buf: Any
    offset: int = 0
    ld: int = 0
    trans: bool = False
    stride: int = 0


class ImplicitB(NamedTuple):
    """op(B) as a convolution's column matrix read from the NCHW image in `buf` (IMPLICIT_B in gemm.cl)."""

    # Rows (channel, kh, kw), columns output pixels of consecutive images; never stored: the CPU variant's B
    # packing reads the image instead. offset: channel 0 (of the group) of the first image; stride: from
    # image to image between batch entries; window: the compile-time geometry COL_KH .. COL_DW; h, w: image
    # size; ow: output row width; p: output pixels per image (columns j >= p continue with the next image,
    # img floats further).
    buf: Any
    offset: int
    stride: int
    window: dict
    h: int
    w: int
    ow: int
    p: int
    img: int

    def geometry_args(self) -> tuple:
        """The B packers' trailing image-geometry arguments, as int32."""
        return tuple(np.int32(v) for v in (self.h, self.w, self.ow, self.p, self.img))


class Output(NamedTuple):
    """C in a buffer: row i of a batch entry at offset + i * ld, entries `stride` apart."""

    # images = (p, img): C's columns run over images (column j is pixel j % p of image j // p, images img
    # floats apart, row i of an image at i * ld), a convolution writing NCHW directly; needs an implicit B.
    buf: Any
    offset: int = 0
    ld: int = 0
    stride: int = 0
    images: tuple[int, int] | None = None


class Epilogue(NamedTuple):
    """C = alpha * op(A) @ op(B) + beta * C + bias (bias_axis "m": bias[i], "n": bias[j]); beta == 0 never reads C."""

    alpha: float = 1.0
    beta: float = 0.0
    bias: Any = None
    bias_offset: int = 0
    bias_axis: str | None = None


PLAIN = Epilogue()  # C = op(A) @ op(B)


def _validate(m: int, n: int, k: int, a: Operand, b: Operand | ImplicitB, c: Output, epi: Epilogue,
              batch: int) -> None:
    implicit = isinstance(b, ImplicitB)
    ldb = 0 if implicit else b.ld
    for name, v in (("m", m), ("n", n), ("k", k), ("a.offset", a.offset), ("a.ld", a.ld), ("b.offset", b.offset),
                    ("b.ld", ldb), ("c.offset", c.offset), ("c.ld", c.ld), ("bias_offset", epi.bias_offset),
                    ("batch", batch), ("a.stride", a.stride), ("b.stride", b.stride), ("c.stride", c.stride)):
        int32_range("gemm", name, v)
    if implicit:
        for name in ("h", "w", "ow", "p", "img"):
            int32_range("gemm", f"implicit_b.{name}", getattr(b, name))
    if c.images is not None:
        if not implicit:
            raise ValueError("gemm: c.images (image-split columns of C) needs an implicit B operand")
        p_img, img_stride = (int(v) for v in c.images)
        int32_range("gemm", "c.images stride", img_stride)
        if p_img < 1 or p_img > INT_MAX or c.ld < p_img or img_stride < m * c.ld:
            raise ValueError(f"gemm: c.images={c.images} does not fit ldc={c.ld} and m={m}: each image needs "
                             f"1 <= p <= ldc and an image stride >= m * ldc")
    trans_b = False if implicit else b.trans
    min_ldb = 0 if implicit else (k if trans_b else n)  # an implicit B has no rows
    min_ldc = c.images[0] if c.images is not None else n  # image-split columns: ldc steps C's rows in an image
    if a.ld < (m if a.trans else k) or ldb < min_ldb or c.ld < min_ldc:
        raise ValueError(f"gemm: leading dimensions lda={a.ld}, ldb={ldb}, ldc={c.ld} too small for "
                         f"m={m}, n={n}, k={k}, trans_a={a.trans}, trans_b={trans_b}")
    if epi.bias_axis not in _BIAS_IDS:
        raise ValueError(f"gemm: bias_axis must be None, 'm' or 'n', got {epi.bias_axis!r}")
    if (epi.bias is None) != (epi.bias_axis is None):
        raise ValueError("gemm: bias and bias_axis must be given together")


def launch_gemm(dev: Device, m: int, n: int, k: int, a: Operand, b: Operand | ImplicitB, c: Output,
                epilogue: Epilogue = PLAIN, batch: int = 1) -> None:
    """Enqueue C[m,n] = alpha * op(A) @ op(B) + beta * C + bias over `batch` strided matrices (row-major)."""
    if not isinstance(b, (Operand, ImplicitB)):
        raise ValueError(f"gemm: b must be an Operand or an ImplicitB, got {type(b).__name__}")
    _validate(m, n, k, a, b, c, epilogue, batch)
    if m == 0 or n == 0 or batch == 0:
        return
    implicit = isinstance(b, ImplicitB)
    if (not implicit and c.images is None and batch == 1 and epilogue.beta == 0.0 and epilogue.bias is None
            and c.ld == n):
        splits = config.k_splits(dev, m, n, k)
        if 1 < splits <= k:
            _launch_split_k(dev, m, n, k, a, b, c, epilogue.alpha, splits)
            return
    trans_a, trans_b = bool(a.trans), (False if implicit else bool(b.trans))
    # k == 0 reads neither A nor B (C = beta * C + bias): the naive kernel needs no packing for it.
    cfg = {"variant": "naive"} if k == 0 else config.gemm_config(dev, m, n, k, trans_a, trans_b, implicit_b=implicit)
    defines = {"TRANS_A": int(trans_a), "TRANS_B": int(trans_b), "BIAS": _BIAS_IDS[epilogue.bias_axis]}
    defines.update({key: cfg[key] for key in _TILE_KEYS if key in cfg})
    c_buf = buffer(c.buf)
    bias_buf = c_buf if epilogue.bias is None else buffer(epilogue.bias)  # never read when BIAS == 0
    i32, f32 = np.int32, np.float32
    tail = (c_buf, i32(c.offset), i32(c.ld), i32(c.stride), f32(epilogue.alpha), f32(epilogue.beta), bias_buf,
            i32(epilogue.bias_offset))
    a_args = (buffer(a.buf), i32(a.offset), i32(a.ld), i32(a.stride))
    b_args = (buffer(b.buf), i32(b.offset), i32(0 if implicit else b.ld), i32(b.stride))
    if implicit and cfg["variant"] != "cpu":
        raise ValueError(f"gemm: gemm_config gave variant {cfg['variant']!r} for an implicit B operand")
    if cfg["variant"] == "xgemm":
        cfg, defines = _fitting_xgemm(dev, cfg, defines)
    variant = cfg["variant"]
    if variant == "naive":
        wx, wy = _naive_local(dev, defines)
        run(dev, "gemm_naive", defines, (up(n, wx), up(m, wy), batch), (wx, wy, 1),
            i32(m), i32(n), i32(k), *a_args, *b_args, *tail)
    elif variant == "xgemm":
        mdimc, ndimc = cfg["MDIMC"], cfg["NDIMC"]
        gsize = (-(-n // cfg["NWG"]) * ndimc, -(-m // cfg["MWG"]) * mdimc, batch)
        run(dev, "gemm_xgemm", defines, gsize, (ndimc, mdimc, 1), i32(m), i32(n), i32(k), *a_args, *b_args, *tail)
    elif variant == "cpu":
        launch_cpu(dev, cfg, defines, m, n, k, a_args, b_args, tail, batch, b if implicit else None, c.images)
    elif variant == "tiled":
        rtsm, rtsn = cfg["TSM"] // cfg["WPTM"], cfg["TSN"] // cfg["WPTN"]
        gsize = (-(-n // cfg["TSN"]) * rtsn, -(-m // cfg["TSM"]) * rtsm, batch)
        run(dev, "gemm_tiled", defines, gsize, (rtsn, rtsm, 1), i32(m), i32(n), i32(k), *a_args, *b_args, *tail)
    else:
        raise ValueError(f"gemm: gemm_config gave an unknown variant {variant!r}")


def _allowed_items(dev: Device, name: str, defines: dict) -> int:
    """The most work-items of a work-group of kernel `name` so built on dev (memoised: it is asked per launch)."""
    key = (dev, name, *defines.items())
    allowed = _allowed.get(key)
    if allowed is None:
        allowed = _allowed[key] = dev.local_size_limit("gemm.cl", name, defines)
    return allowed


def _fitting_xgemm(dev: Device, cfg: dict, defines: dict) -> tuple[dict, dict]:
    """(cfg, its kernel's defines), or the table's fallback for what the build allows (CL_KERNEL_WORK_GROUP_SIZE,
    the device's work-item sizes per dim): the build is asked, never assumed to take the row's work-group."""
    while cfg["variant"] == "xgemm":
        mdimc, ndimc = cfg["MDIMC"], cfg["NDIMC"]
        if mdimc * ndimc > _refused.get(dev, mdimc * ndimc):
            cfg = config.xgemm_fallback(dev, _refused[dev])
            continue
        xg = {**defines, **{key: cfg[key] for key in _XGEMM_KEYS}}
        allowed = _allowed_items(dev, "gemm_xgemm", xg)
        if mdimc * ndimc <= allowed and max(mdimc, ndimc) <= min(dev.limits.max_work_item_sizes[:2]):
            return cfg, xg
        allowed = min(allowed, mdimc * ndimc - 1)  # fewer work-items each time round
        _refused[dev] = min(allowed, _refused.get(dev, allowed))
        cfg = config.xgemm_fallback(dev, allowed)
    return cfg, defines


def _naive_local(dev: Device, defines: dict) -> tuple[int, int]:
    """gemm_naive's local size: 8 x 8, halved (y first) until its build allows it."""
    allowed = _allowed_items(dev, "gemm_naive", defines)
    wx, wy = _NAIVE_WG, _NAIVE_WG
    while wx * wy > allowed and wx > 1:
        if wy > 1:
            wy //= 2
        else:
            wx //= 2
    return wx, wy


def _launch_split_k(dev: Device, m: int, n: int, k: int, a: Operand, b: Operand, c: Output, alpha: float,
                    splits: int) -> None:
    """C = alpha * op(A) @ op(B) as `splits` slices of k // splits run as batch entries into partial Cs (and the
    rest of k, if any, as one more), then summed."""
    ks = k // splits  # slice s: A's columns / B's rows from s * ks on
    rest = k - splits * ks
    slices = splits + (rest > 0)
    partial = empty((slices * m * n,), np.float32, dev)
    a_step, b_step = (ks * a.ld if a.trans else ks), (ks if b.trans else ks * b.ld)
    launch_gemm(dev, m, n, ks, a._replace(stride=a_step), b._replace(stride=b_step), Output(partial, 0, n, m * n),
                Epilogue(alpha=alpha), batch=splits)
    if rest:
        launch_gemm(dev, m, n, rest, a._replace(offset=a.offset + splits * a_step, stride=0),
                    b._replace(offset=b.offset + splits * b_step, stride=0),
                    Output(partial, splits * m * n, n), Epilogue(alpha=alpha))
    launch_sum_rows(dev, slices, m * n, partial, 0, m * n, c.buf, c.offset)


def launch_sum_rows(dev: Device, rows: int, cols: int, g: Any, g_offset: int, ld: int, out: Any,
                    out_offset: int = 0) -> None:
    """Enqueue out[j] = sum_i g[i * ld + j] over rows i, for j < cols (bias gradients)."""
    for name, v in (("rows", rows), ("cols", cols), ("g_offset", g_offset), ("ld", ld), ("out_offset", out_offset)):
        int32_range("gemm", name, v)
    if ld < cols:
        raise ValueError(f"sum_rows: leading dimension {ld} < cols {cols}")
    run(dev, "gemm_sum_rows", {"SUM_ROWS": 1}, (up(cols, _SUM_WG),), (_SUM_WG,),
        np.int32(rows), np.int32(cols), buffer(g), np.int32(g_offset), np.int32(ld), buffer(out),
        np.int32(out_offset))
