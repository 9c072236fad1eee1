"""GEMM: the buffer-level launcher every matrix op builds on, its per-device config, and a tensor-level op."""

from __future__ import annotations

import numpy as np

from ..device import Device
from ..tensor import Tensor, empty

_INT_MAX = 2**31 - 1
_BIAS_IDS = {None: 0, "m": 1, "n": 2}
_ACT_IDS = range(7)  # ACT_NONE .. ACT_TANH in kernels_cl/common.h


def gemm_config(dev: Device, m: int, n: int, k: int, trans_a: bool, trans_b: bool) -> dict:
    """Kernel name, tile defines and work sizes for one GEMM shape on one device (autotuner hook)."""
    return {"kernel": "gemm_naive", "defines": {}, "tile_m": 1, "tile_n": 1}


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
                batch: int = 1, stride_a: int = 0, stride_b: int = 0, stride_c: int = 0) -> None:
    """Enqueue C[m,n] = act(alpha * op(A) @ op(B) + beta * C + bias) over `batch` strided matrices.

    Row-major; op(A) is A (m x k) or, with trans_a, A stored k x m; likewise B (k x n or n x k).
    Offsets, leading dimensions and strides are in float32 elements; beta == 0 never reads C.
    """
    for name, v in (("m", m), ("n", n), ("k", k), ("a_offset", a_offset), ("lda", lda), ("b_offset", b_offset),
                    ("ldb", ldb), ("c_offset", c_offset), ("ldc", ldc), ("bias_offset", bias_offset),
                    ("batch", batch), ("stride_a", stride_a), ("stride_b", stride_b), ("stride_c", stride_c)):
        _check_int(name, int(v))
    if lda < (m if trans_a else k) or ldb < (k if trans_b else n) or ldc < n:
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
    cfg = gemm_config(dev, m, n, k, bool(trans_a), bool(trans_b))
    defines = {"TRANS_A": int(bool(trans_a)), "TRANS_B": int(bool(trans_b)), "BIAS": _BIAS_IDS[bias_axis],
               "ACT": int(act), **cfg["defines"]}
    if act in (2, 3):
        defines["ACT_ALPHA"] = float(act_alpha)
    kern = dev.kernel("gemm.cl", cfg["kernel"], defines)
    c_buf = _buffer(c)
    bias_buf = c_buf if bias is None else _buffer(bias)  # never read when BIAS == 0
    tm, tn = cfg["tile_m"], cfg["tile_n"]
    gsize = (-(-n // tn), -(-m // tm), batch)
    dev.launch(kern, gsize, cfg.get("local"),
               np.int32(m), np.int32(n), np.int32(k),
               _buffer(a), np.int32(a_offset), np.int32(lda), np.int32(stride_a),
               _buffer(b), np.int32(b_offset), np.int32(ldb), np.int32(stride_b),
               c_buf, np.int32(c_offset), np.int32(ldc), np.int32(stride_c),
               np.float32(alpha), np.float32(beta), bias_buf, np.int32(bias_offset))


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
