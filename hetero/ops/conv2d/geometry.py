"""ConvGeometry: every size a conv2d launch needs, validated with PyTorch's rules."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...validate import pair, positive_int


@dataclass(frozen=True)
class ConvGeometry:
    """Every size a conv2d launch needs, validated. pad_t / pad_l are the top / left padding."""

    n: int
    c: int
    h: int
    w: int
    oc: int
    kh: int
    kw: int
    stride: tuple[int, int]
    pad_t: int
    pad_l: int
    dilation: tuple[int, int]
    groups: int
    oh: int
    ow: int

    @property
    def out_shape(self) -> tuple[int, int, int, int]:
        return (self.n, self.oc, self.oh, self.ow)

    @property
    def icg(self) -> int:
        return self.c // self.groups

    @property
    def ocg(self) -> int:
        return self.oc // self.groups

    @property
    def taps(self) -> int:
        return self.kh * self.kw

    @property
    def p(self) -> int:
        return self.oh * self.ow

    @property
    def depthwise(self) -> bool:
        # one input channel is plain convolution, where im2col + GEMM is several times faster
        return self.groups == self.c > 1

    @property
    def pointwise(self) -> bool:
        """1x1, stride 1, no padding: the input is already the column matrix."""
        return (self.kh == self.kw == 1 and self.stride == (1, 1) and self.pad_t == self.pad_l == 0
                and self.oh == self.h and self.ow == self.w)

    def col_defines(self) -> dict:
        """The compile-time window geometry COL_KH .. COL_DW of the window kernels."""
        return {"COL_KH": self.kh, "COL_KW": self.kw, "COL_SH": self.stride[0], "COL_SW": self.stride[1],
                "COL_PH": self.pad_t, "COL_PW": self.pad_l, "COL_DH": self.dilation[0], "COL_DW": self.dilation[1]}

    def padded_size(self) -> int:
        """An upper bound of the floats of the zero-padded input copy the direct kernels read."""
        return self.n * self.c * (self.h + 2 * self.kh * self.dilation[0] + self.stride[0]) * \
            (self.w + 2 * self.kw * self.dilation[1] + self.stride[1])


def _pair(op: str, name: str, v: Any) -> tuple[int, int]:
    if isinstance(v, (tuple, list)) and len(v) != 2:
        raise ValueError(f"{op}: {name} must be an int or a pair, got {v!r}")
    return pair(op, name, v)


def conv2d_geometry(x_shape: tuple[int, ...], w_shape: tuple[int, ...], stride: Any = 1, padding: Any = 0,
                    dilation: Any = 1, groups: int = 1, op: str = "conv2d") -> ConvGeometry:
    """Validate shapes and hyperparameters (PyTorch rules) and derive the output size; ValueError if bad."""
    x_shape, w_shape = tuple(x_shape), tuple(w_shape)
    if len(x_shape) != 4:
        raise ValueError(f"{op}: input must be 4-D (N, C, H, W), got shape {x_shape}")
    if len(w_shape) != 4:
        raise ValueError(f"{op}: weight must be 4-D (out, in/groups, kH, kW), got shape {w_shape}")
    groups = positive_int(op, "groups", groups)
    n, c, h, w = x_shape
    oc, icg, kh, kw = w_shape
    if min(oc, icg, kh, kw) < 1:
        raise ValueError(f"{op}: weight {w_shape} has an empty dimension")
    st = _pair(op, "stride", stride)
    dil = _pair(op, "dilation", dilation)
    if min(st) < 1:
        raise ValueError(f"{op}: stride must be >= 1, got {stride!r} (input {x_shape}, weight {w_shape})")
    if min(dil) < 1:
        raise ValueError(f"{op}: dilation must be >= 1, got {dilation!r} (input {x_shape}, weight {w_shape})")
    span = (dil[0] * (kh - 1) + 1, dil[1] * (kw - 1) + 1)
    if isinstance(padding, str):
        if padding == "valid":
            pt = pb = pl = pr = 0
        elif padding == "same":
            if st != (1, 1):
                raise ValueError(f"{op}: padding='same' needs stride 1, got stride {stride!r}")
            # PyTorch puts the odd extra row / column at the bottom / right
            pt, pl = (span[0] - 1) // 2, (span[1] - 1) // 2
            pb, pr = span[0] - 1 - pt, span[1] - 1 - pl
        else:
            raise ValueError(f"{op}: padding must be an int, a pair, 'valid' or 'same', got {padding!r}")
    else:
        pt, pl = _pair(op, "padding", padding)
        pb, pr = pt, pl
        if min(pt, pl) < 0:
            raise ValueError(f"{op}: padding must be >= 0, got {padding!r} (input {x_shape}, weight {w_shape})")
    if c % groups:
        raise ValueError(f"{op}: input {x_shape} has {c} channels, not divisible by groups={groups}")
    if oc % groups:
        raise ValueError(f"{op}: weight {w_shape} has {oc} output channels, not divisible by groups={groups}")
    if c != icg * groups:
        raise ValueError(f"{op}: input {x_shape} has {c} channels but weight {w_shape} expects {icg * groups}"
                         + (f" ({icg} x groups={groups})" if groups > 1 else ""))
    ph, pw = h + pt + pb, w + pl + pr
    if span[0] > ph or span[1] > pw:
        raise ValueError(f"{op}: kernel ({kh}, {kw}) with dilation {dil} spans {span}, larger than the padded "
                         f"input ({ph}, {pw}) of input {x_shape}")
    oh = (ph - span[0]) // st[0] + 1
    ow = (pw - span[1]) // st[1] + 1
    return ConvGeometry(n, c, h, w, oc, kh, kw, st, pt, pl, dil, groups, oh, ow)
