"""GEMM: the buffer-level launcher every matrix op builds on, its per-device config, and a tensor-level op."""

from __future__ import annotations

import weakref
from typing import NamedTuple

import numpy as np

from ..device import Device
from ..tensor import Tensor, empty

_INT_MAX = 2**31 - 1
_BIAS_IDS = {None: 0, "m": 1, "n": 2}
_ACT_IDS = range(7)  # ACT_NONE .. ACT_TANH in kernels_cl/common.h
_NAIVE_MAX_FLOPS = 16 * 16 * 16
# Fixed local sizes everywhere: PoCL compiles a kernel once per local size, and letting it choose
# one per global size would recompile for every new shape.
_PACK_WG = 4
_IMPLICIT_PACK_ROWS = 8  # x NR: rows of an implicit B panel per gemm_pack_b work-item (PACK_B_ROWS in gemm.cl)
_CPU_DIRECT_B_BYTES = 256 * 1024
_PACK_COST = 64
_BAND_BYTES = 3 << 20
_CPU_MR, _CPU_NR = 8, 16  # the CPU tiles' rows and block width (see gemm_config)
_STRIP_MAX_TILE_ROWS = 16
# A strip's own B panels (k x NR x PANELS floats) stay in L2 while its tiles run over them: measured, a
# 96-channel 5x5 convolution over 256 channels (k = 6400, 800 KiB of panels) ran 5% slower as strips.
_STRIP_MAX_PANEL_BYTES = 512 * 1024
_CPU_WG = 16  # tiles per work-group: one tile per work-group lost up to 25% to scheduling with 2 threads
_SUM_WG = 16
# Split-k on CPUs: a GEMM with fewer C tiles than this (MR x 2NR each) and k of at least _SPLIT_K_MIN_K runs
# as slices of k side by side, then sums them (LeNet-5's conv1 weight gradient, 6 x 25 with k = 50176:
# its 2 tiles kept one core busy for 474 us).
_SPLIT_K_MAX_TILES = 32
_SPLIT_K_MIN_K = 2048
_SPLIT_K_MIN_SLICE = 256
_SPLIT_K_WORK_ITEMS = 64
# see _launch; per device, weakly, so a Device that is dropped (hetero bench makes fresh ones) is freed
_KERNELS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_TILE_KEYS = ("MR", "NR", "UNROLL", "TSM", "TSN", "TSK", "WPTM", "WPTN")


class ImplicitB(NamedTuple):
    """op(B) as a convolution's column matrix (rows (channel, kh, kw), columns output pixels of consecutive
    images), never stored: the CPU path's B packing reads the NCHW image instead (IMPLICIT_B in gemm.cl).
    launch_gemm's b / b_offset then point at channel 0 (of the group) of the first image, stride_b steps
    from image to image between batch entries, and ldb is unused. `window` holds the compile-time geometry
    COL_KH .. COL_DW (ConvGeometry.col_defines without ACT); h, w: image size; ow: output row width;
    p: output pixels per image (columns j >= p continue with the next image, img floats further)."""

    window: dict
    h: int
    w: int
    ow: int
    p: int
    img: int


def gemm_config(dev: Device, m: int, n: int, k: int, trans_a: bool, trans_b: bool,
                implicit_b: bool = False) -> dict:
    """Kernel variant and tile defines for one GEMM shape on one device (the autotuner's hook).

    "naive": one work-item per element (tiny problems, k == 0).
    "cpu": MR x (NR * PANELS) register tiles; keys MR, NR, UNROLL, PANELS (NR-wide blocks per tile, 2 only
    with B packed), local (work-group size), band (tile rows walked
    together, column by column, so neighbouring work-items share a B panel), pack_a / pack_b (copy the
    operand into panels first; a transposed operand is always packed), strip (a work-item per column
    of tiles packs its own B panel: no separate packing pass), swap (compute C^T = op(B)^T op(A)^T so
    the smaller operand is the packed one).
    "tiled": local-memory tiles for GPUs; keys TSM, TSN, TSK, WPTM, WPTN.
    implicit_b: B is an ImplicitB, which only the "cpu" variant reads, packed and unswapped (pack_b is
    always True, swap always False), so it gets that variant on every device (its kernels are plain
    OpenCL; whether an implicit B pays off on a device is the caller's choice).
    """
    if not implicit_b and (k == 0 or m * n * k <= _NAIVE_MAX_FLOPS):
        return {"variant": "naive"}
    if dev.type == "cpu" or implicit_b:
        # Cost in multiply-adds: the tiles' padded work plus ~64 per element copied into panels: B (k x n)
        # always and A (m x k) when it is transposed; swapped, op(A)^T is the packed side, op(B)^T is read
        # in place when B is stored n x k, and C is stored element by element, transposed.
        mr, nr = _CPU_MR, _CPU_NR
        cost = _up(m, mr) * _up(n, nr) * k + _PACK_COST * (k * n + (m * k if trans_a else 0))
        cost_swapped = (_up(n, mr) * _up(m, nr) * k + _PACK_COST * (m * k + (0 if trans_b else k * n))
                        + _PACK_COST * m * n)
        swap = cost_swapped < cost and not implicit_b
        km, kn = (n, m) if swap else (m, n)  # the problem the kernel runs
        # The B side of the problem the kernel runs (op(A)^T when swapped) is read in place, saving a
        # launch, when it needs no transposing and stays in L2.
        kernel_trans_b = (not trans_a) if swap else trans_b
        pack_b = bool(kernel_trans_b) or k * kn * 4 > _CPU_DIRECT_B_BYTES or implicit_b
        # A band of tile rows whose A rows span a few MiB: the current B panel stays in L2 while the
        # band's A rows are read from L3 (measured: 2048^3 on one Zen 3 core, 50 GFLOP/s with one tile
        # row, 83 with all, 92 with 64).
        band = max(1, _BAND_BYTES // (mr * k * 4))
        # Few tile rows: packing B is a large share of the work, so each work-item packs its own B panel
        # and runs the whole column of tiles on it while it is in cache (m = 64: +10-25%), given
        # enough columns to keep the cores busy.
        strip = (pack_b and _up(km, mr) // mr <= _STRIP_MAX_TILE_ROWS and _up(kn, nr) // nr >= 8
                 and k * nr * 2 * 4 <= _STRIP_MAX_PANEL_BYTES)
        # Two NR-wide blocks per tile when B is packed: 2 * MR FMAs per MR + 2 loads instead of MR per
        # MR + 1, which left the loads as the bound (measured, 2-core Zen AVX-512, 2048^3: 347 -> 468
        # GFLOP/s, 90% of the FMA peak). MR = 8 fits channel counts (64, 96, 128, ...) exactly and ran
        # a little faster than 6 or 12. UNROLL 1: as fast as 2 or 4 (GEMM 2048: 491 GFLOP/s each), a smaller
        # program, and no "loop not unrolled" remark from PoCL's compiler on every cold build.
        # One block where there is one panel (a 16-column problem would compute a discarded second).
        panels = 2 if _up(kn, nr) // nr >= 2 else 1
        return {"variant": "cpu", "MR": mr, "NR": nr, "UNROLL": 1, "PANELS": panels, "local": _CPU_WG, "band": band,
                "pack_a": False, "pack_b": pack_b, "swap": swap, "strip": strip}
    small = min(m, n) <= 32
    return {"variant": "tiled", "TSM": 32 if small else 64, "TSN": 32 if small else 64, "TSK": 16,
            "WPTM": 2 if small else 4, "WPTN": 2 if small else 4}


def _up(x: int, multiple: int) -> int:
    return -(-x // multiple) * multiple


def _launch(dev: Device, name: str, defines: dict, global_size, local_size, *args) -> None:
    """dev.launch of gemm.cl's kernel `name`. Kernels are looked up here by (device, name, defines in
    insertion order), cheaper than dev.kernel's option formatting, and their scalar argument types are
    declared once: pyopencl's untyped set_args costs ~10 us per numpy scalar (~300 us a GEMM)."""
    memo = _KERNELS.get(dev)
    if memo is None:
        memo = _KERNELS[dev] = {}
    key = (name, *defines.items())
    kern = memo.get(key)
    if kern is None:
        kern = dev.kernel("gemm.cl", name, defines)
        kern.set_scalar_arg_dtypes([type(a) if isinstance(a, np.generic) else None for a in args])
        memo[key] = kern
    dev.launch(kern, global_size, local_size, *args)


def _buffer(x):
    return x.buffer if isinstance(x, Tensor) else x


def _check_int(name: str, v: int) -> None:
    if not 0 <= v <= _INT_MAX:
        raise ValueError(f"gemm: {name}={v} is out of range [0, 2^31)")


def launch_gemm(dev: Device, m: int, n: int, k: int,
                a, a_offset: int, lda: int, trans_a: bool,
                b, b_offset: int, ldb: int, trans_b: bool,
                c, c_offset: int, ldc: int, *,
                alpha: float = 1.0, beta: float = 0.0,
                bias=None, bias_offset: int = 0, bias_axis: str | None = None,
                act: int = 0, act_alpha: float = 0.0,
                batch: int = 1, stride_a: int = 0, stride_b: int = 0, stride_c: int = 0,
                implicit_b: ImplicitB | None = None, c_images: tuple[int, int] | None = None) -> None:
    """Enqueue C[m,n] = act(alpha * op(A) @ op(B) + beta * C + bias) over `batch` strided matrices.

    Row-major; op(A) is A (m x k) or, with trans_a, A stored k x m; likewise B (k x n or n x k).
    Offsets, leading dimensions and strides are in float32 elements; beta == 0 never reads C.
    implicit_b: B is a convolution's column matrix read from its image (see ImplicitB; trans_b False).
    c_images: (p, img) with implicit_b: C's columns run over images, column j being pixel j % p of image
    j // p, images img floats apart (row i of an image at i * ldc): a convolution writing NCHW directly.
    """
    for name, v in (("m", m), ("n", n), ("k", k), ("a_offset", a_offset), ("lda", lda), ("b_offset", b_offset),
                    ("ldb", ldb), ("c_offset", c_offset), ("ldc", ldc), ("bias_offset", bias_offset),
                    ("batch", batch), ("stride_a", stride_a), ("stride_b", stride_b), ("stride_c", stride_c)):
        _check_int(name, int(v))
    if implicit_b is not None:
        if trans_b:
            raise ValueError("gemm: an implicit B operand cannot be transposed")
        for name, v in (("h", implicit_b.h), ("w", implicit_b.w), ("ow", implicit_b.ow), ("p", implicit_b.p),
                        ("img", implicit_b.img)):
            _check_int(f"implicit_b.{name}", int(v))
    if c_images is not None:
        if implicit_b is None:
            raise ValueError("gemm: c_images (image-split columns of C) needs an implicit B operand")
        p_img, img_stride = (int(v) for v in c_images)
        _check_int("c_images stride", img_stride)
        if p_img < 1 or p_img > _INT_MAX or ldc < p_img or img_stride < m * ldc:
            raise ValueError(f"gemm: c_images={c_images} does not fit ldc={ldc} and m={m}: each image needs "
                             f"1 <= p <= ldc and an image stride >= m * ldc")
    min_ldb = 0 if implicit_b is not None else (k if trans_b else n)  # an implicit B has no rows
    min_ldc = c_images[0] if c_images is not None else n  # image-split columns: ldc steps C's rows in an image
    if lda < (m if trans_a else k) or ldb < min_ldb or ldc < min_ldc:
        raise ValueError(f"gemm: leading dimensions lda={lda}, ldb={ldb}, ldc={ldc} too small for "
                         f"m={m}, n={n}, k={k}, trans_a={trans_a}, trans_b={trans_b}")
    if bias_axis not in _BIAS_IDS:
        raise ValueError(f"gemm: bias_axis must be None, 'm' or 'n', got {bias_axis!r}")
    if (bias is None) != (bias_axis is None):
        raise ValueError("gemm: bias and bias_axis must be given together")
    if int(act) not in _ACT_IDS:
        raise ValueError(f"gemm: unknown activation id {act}")
    if m == 0 or n == 0 or batch == 0:
        return
    splits = _k_splits(dev, m, n, k) if (implicit_b is None and c_images is None and batch == 1 and beta == 0.0
                                         and bias is None and act == 0 and ldc == n) else 1
    if splits > 1:
        # slice s of k: A's columns / B's rows from s * ks on, each batch entry writing a partial C
        ks = k // splits
        partial = empty((splits * m * n,), np.float32, dev)
        launch_gemm(dev, m, n, ks, a, a_offset, lda, trans_a, b, b_offset, ldb, trans_b, partial, 0, n,
                    alpha=alpha, batch=splits, stride_a=ks * lda if trans_a else ks,
                    stride_b=ks if trans_b else ks * ldb, stride_c=m * n)
        launch_sum_rows(dev, splits, m * n, partial, 0, m * n, c, c_offset)
        return
    # k == 0 reads neither A nor B (C = act(beta * C + bias)): the naive kernel needs no packing for it.
    if k == 0:
        cfg = {"variant": "naive"}
    else:
        cfg = gemm_config(dev, m, n, k, bool(trans_a), bool(trans_b), implicit_b=implicit_b is not None)
    defines = {"TRANS_A": int(bool(trans_a)), "TRANS_B": int(bool(trans_b)), "BIAS": _BIAS_IDS[bias_axis],
               "ACT": int(act)}
    if act in (2, 3):
        defines["ACT_ALPHA"] = float(act_alpha)
    defines.update({key: cfg[key] for key in _TILE_KEYS if key in cfg})
    c_buf = _buffer(c)
    bias_buf = c_buf if bias is None else _buffer(bias)  # never read when BIAS == 0
    i32, f32 = np.int32, np.float32
    tail = (c_buf, i32(c_offset), i32(ldc), i32(stride_c), f32(alpha), f32(beta), bias_buf, i32(bias_offset))
    a_args = (_buffer(a), i32(a_offset), i32(lda), i32(stride_a))
    b_args = (_buffer(b), i32(b_offset), i32(ldb), i32(stride_b))
    variant = cfg["variant"]
    if implicit_b is not None and variant != "cpu":
        raise ValueError(f"gemm: gemm_config gave variant {variant!r} for an implicit B operand")
    if variant == "naive":
        _launch(dev, "gemm_naive", defines, (_up(n, 8), _up(m, 8), batch), (8, 8, 1),
                i32(m), i32(n), i32(k), *a_args, *b_args, *tail)
    elif variant == "cpu":
        _launch_cpu(dev, cfg, defines, m, n, k, a_args, b_args, tail, batch, implicit_b, c_images)
    elif variant == "tiled":
        rtsm, rtsn = cfg["TSM"] // cfg["WPTM"], cfg["TSN"] // cfg["WPTN"]
        gsize = (-(-n // cfg["TSN"]) * rtsn, -(-m // cfg["TSM"]) * rtsm, batch)
        _launch(dev, "gemm_tiled", defines, gsize, (rtsn, rtsm, 1),
                i32(m), i32(n), i32(k), *a_args, *b_args, *tail)
    else:
        raise ValueError(f"gemm: gemm_config gave an unknown variant {variant!r}")


def _k_splits(dev: Device, m: int, n: int, k: int) -> int:
    """How many slices of k a plain CPU GEMM with few tiles runs side by side (1: none); slices are equal,
    so the count divides k."""
    if dev.type != "cpu" or k < _SPLIT_K_MIN_K:
        return 1
    wide = 2 * _CPU_NR  # a tile's two blocks; either orientation
    tiles = min(-(-m // _CPU_MR) * -(-n // wide), -(-n // _CPU_MR) * -(-m // wide))
    if tiles >= _SPLIT_K_MAX_TILES:
        return 1
    want = min(-(-_SPLIT_K_WORK_ITEMS // tiles), k // _SPLIT_K_MIN_SLICE)
    return next((s for s in range(want, 1, -1) if k % s == 0), 1)


def _launch_cpu(dev: Device, cfg: dict, defines: dict, m: int, n: int, k: int, a_args: tuple, b_args: tuple,
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
        geo_args = tuple(i32(v) for v in (implicit_b.h, implicit_b.w, implicit_b.ow, implicit_b.p, implicit_b.img))
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
        kb = -(-k // 16)  # PACK_K in gemm.cl
        grid = (_up(mt, _PACK_WG), kb, a_batch) if trans_a else (_up(kb, _PACK_WG), mt, a_batch)
        _launch(dev, "gemm_pack_a", defines, grid, (_PACK_WG, 1, 1), i32(m), i32(k), *a_args, ap, i32(stride_ap))
        a_args = (ap.buffer, i32(0), i32(k), i32(stride_ap))
    if strip:  # each work-item packs its own B panel: one panel per batch entry, even for a shared B
        bp = empty((batch * nt * nr * k,), np.float32, dev)
        _launch(dev, "gemm_cpu_strip", defines, (_up(tn, wg), batch), (wg, 1),
                i32(m), i32(n), i32(k), *a_args, *b_args, bp, i32(nt * nr * k), *tail, *geo_args, *c_args)
        return
    if pack_b:
        b_batch = batch if int(b_args[3]) else 1
        stride_bp = nt * nr * k if b_batch > 1 else 0
        bp = empty((b_batch * nt * nr * k,), np.float32, dev)
        kb = -(-k // (nr * (_IMPLICIT_PACK_ROWS if implicit_b is not None else 1)))
        grid = (_up(kb, _PACK_WG), nt, b_batch) if trans_b else (_up(nt, _PACK_WG), kb, b_batch)
        _launch(dev, "gemm_pack_b", defines, grid, (_PACK_WG, 1, 1), i32(n), i32(k), *b_args, bp, i32(stride_bp),
                *geo_args)
        b_args = (bp.buffer, i32(0), i32(nr), i32(stride_bp))
    band = max(1, min(int(cfg.get("band", mt)), mt))
    _launch(dev, "gemm_cpu", defines, (_up(mt * tn, wg), batch), (wg, 1),
            i32(m), i32(n), i32(k), *a_args, *b_args, *tail, i32(band), *c_args)


def _direct_tile_defines(cfg: dict) -> dict:
    """The tile defines of the direct convolution kernels (A in place, B from panels or the image)."""
    return {"MR": cfg["MR"], "NR": cfg["NR"], "UNROLL": cfg["UNROLL"], "PANELS": cfg["PANELS"], "A_PACKED": 0,
            "B_PACKED": 1}


def _direct_tile_grid(cfg: dict, m: int, n: int) -> tuple[tuple[int], tuple[int], int]:
    """(global, local, band) of a kernel with one tile per work-item in gemm_cpu's banded order."""
    mt, tn = -(-m // cfg["MR"]), -(-n // (cfg["NR"] * cfg["PANELS"]))
    return (_up(mt * tn, cfg["local"]),), (cfg["local"],), max(1, min(int(cfg["band"]), mt))


def launch_conv_direct(dev: Device, m: int, n: int, k: int, a, a_offset: int, lda: int, xp, xp_offset: int,
                       padded: ImplicitB, c, c_offset: int, c_images: tuple[int, int], *,
                       bias=None, bias_offset: int = 0, act: int = 0, act_alpha: float = 0.0) -> None:
    """C = act(A @ cols + bias[i]) for a convolution whose input was copied into a zero-padded buffer `xp`
    (gemm_cpu_direct: B read straight from it, nothing packed). `padded` describes that buffer (window
    padding 0, stride 1 along rows, h x w padded pixels per channel, img floats per image); xp_offset points
    at the padded channel 0 of image 0 with NR readable floats either side; C is stored per image
    (c_images, ldc = p); k is the channels times the window's taps."""
    win = padded.window
    if win["COL_PH"] or win["COL_PW"] or win["COL_SW"] != 1:
        raise ValueError(f"gemm: the direct convolution needs a padded input read at stride 1 along rows, "
                         f"got window {win}")
    if k % (win["COL_KH"] * win["COL_KW"]):
        raise ValueError(f"gemm: k={k} is not a whole number of channels of {win['COL_KH']}x{win['COL_KW']} taps")
    if m == 0 or n == 0:
        return
    cfg = gemm_config(dev, m, n, k, False, False, implicit_b=True)
    defines = {"TRANS_A": 0, "TRANS_B": 0, "BIAS": 0 if bias is None else _BIAS_IDS["m"], "ACT": int(act)}
    if act in (2, 3):
        defines["ACT_ALPHA"] = float(act_alpha)
    defines.update({**_direct_tile_defines(cfg), "C_TRANS": 0, "IMPLICIT_B": 1, "C_IMAGES": 1, **win})
    i32, f32 = np.int32, np.float32
    grid, local, band = _direct_tile_grid(cfg, m, n)
    c_buf = _buffer(c)
    _launch(dev, "gemm_cpu_direct", defines, grid, local,
            i32(m), i32(n), i32(k), _buffer(a), i32(a_offset), i32(lda), _buffer(xp), i32(xp_offset),
            c_buf, i32(c_offset), i32(c_images[0]), f32(1.0), f32(0.0), c_buf if bias is None else _buffer(bias),
            i32(bias_offset), i32(band), *(i32(v) for v in (padded.h, padded.w, padded.ow, padded.p, padded.img)),
            *(i32(v) for v in c_images))


def launch_conv_weight_direct(dev: Device, m: int, n: int, k: int, xp, xp_offset: int, padded: ImplicitB,
                              dy, dy_offset: int, ld_dy: int, dw) -> None:
    """dW[n, m] (contiguous) = dY[n, k] @ cols^T for a convolution whose input was copied into a zero-padded
    buffer `xp` (gemm_cpu_dw_direct: the columns read straight from it, no column matrix). `padded` as for
    launch_conv_direct (window padding 0, any stride and dilation); dY is [n output channels, k = images *
    output pixels] (CNHW) with leading dimension ld_dy; m is the channels times the window's taps."""
    win = padded.window
    if win["COL_PH"] or win["COL_PW"]:
        raise ValueError(f"gemm: the direct weight gradient needs a padded input, got window {win}")
    if m % (win["COL_KH"] * win["COL_KW"]) or k % padded.p:
        raise ValueError(f"gemm: m={m} must be whole channels of {win['COL_KH']}x{win['COL_KW']} taps and "
                         f"k={k} whole images of {padded.p} pixels")
    for name, v in (("m", m), ("n", n), ("k", k), ("xp_offset", xp_offset), ("dy_offset", dy_offset),
                    ("ld_dy", ld_dy)):
        _check_int(name, int(v))
    if m == 0 or n == 0 or k == 0:
        return
    cfg = gemm_config(dev, m, n, k, False, False, implicit_b=True)
    nr = cfg["NR"]
    base = {"TRANS_A": 0, "BIAS": 0, "ACT": 0, **_direct_tile_defines(cfg), "C_TRANS": 1, "C_IMAGES": 0}
    i32 = np.int32
    nt = -(-n // nr)
    bp = empty((nt * nr * k,), np.float32, dev)
    # op(B) = dY^T, stored n x k: packed transposed, as launch_gemm packs a TRANS_B operand
    _launch(dev, "gemm_pack_b", {**base, "TRANS_B": 1, "IMPLICIT_B": 0}, (_up(-(-k // nr), _PACK_WG), nt, 1),
            (_PACK_WG, 1, 1), i32(n), i32(k), _buffer(dy), i32(dy_offset), i32(ld_dy), i32(0), bp, i32(0))
    grid, local, band = _direct_tile_grid(cfg, m, n)
    _launch(dev, "gemm_cpu_dw_direct", {**base, "TRANS_B": 0, "IMPLICIT_B": 1, **win},
            grid, local, i32(m), i32(n), i32(k), _buffer(xp), i32(xp_offset), bp,
            _buffer(dw), i32(m), i32(band),
            *(i32(v) for v in (padded.h, padded.w, padded.ow, padded.p, padded.img)))


def launch_sum_rows(dev: Device, rows: int, cols: int, g, g_offset: int, ld: int, out, out_offset: int = 0) -> None:
    """Enqueue out[j] = sum_i g[i * ld + j] over rows i, for j < cols (bias gradients)."""
    for name, v in (("rows", rows), ("cols", cols), ("g_offset", g_offset), ("ld", ld), ("out_offset", out_offset)):
        _check_int(name, int(v))
    if ld < cols:
        raise ValueError(f"sum_rows: leading dimension {ld} < cols {cols}")
    _launch(dev, "gemm_sum_rows", {"SUM_ROWS": 1}, (_up(cols, _SUM_WG),), (_SUM_WG,),
            np.int32(rows), np.int32(cols), _buffer(g), np.int32(g_offset), np.int32(ld), _buffer(out),
            np.int32(out_offset))


def gemm(a: Tensor, b: Tensor, trans_a: bool = False, trans_b: bool = False, bias: Tensor | None = None,
         act: int = 0, *, act_alpha: float = 0.0) -> Tensor:
    """act(op(a) @ op(b) + bias) for 2-D float32 tensors; bias has one value per output column."""
    for name, t in (("a", a), ("b", b)):
        if not isinstance(t, Tensor) or t.ndim != 2:
            raise ValueError(f"gemm: {name} must be a 2-D tensor, got {getattr(t, 'shape', type(t))}")
        if t.dtype != np.float32:
            raise ValueError(f"gemm: {name} {t.shape} must be float32, got {t.dtype}")
    if a.device is not b.device or (bias is not None and bias.device is not a.device):
        raise ValueError("gemm: tensors are on different devices")
    m, ka = (a.shape[1], a.shape[0]) if trans_a else a.shape
    kb, n = (b.shape[1], b.shape[0]) if trans_b else b.shape
    if ka != kb:
        raise ValueError(f"gemm: inner dimensions differ: a {a.shape} (trans_a={trans_a}) and "
                         f"b {b.shape} (trans_b={trans_b})")
    if bias is not None and (bias.shape != (n,) or bias.dtype != np.float32):
        raise ValueError(f"gemm: bias {bias.shape} {bias.dtype} must be float32 of shape ({n},)")
    out = empty((m, n), np.float32, a.device)
    launch_gemm(a.device, m, n, ka, a, 0, a.shape[1], trans_a, b, 0, b.shape[1], trans_b, out, 0, n,
                bias=bias, bias_axis=None if bias is None else "n", act=act, act_alpha=act_alpha)
    return out
