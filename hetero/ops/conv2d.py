"""conv2d (PyTorch semantics): im2col + GEMM, direct GEMM for pointwise 1x1, direct kernels for depthwise.

On CPU devices the forward GEMM takes the column matrix as an implicit operand (gemm.ImplicitB): the GEMM's
B packing reads it straight from the image, so no column matrix is written and read back
(_use_implicit_cols), and it stores NCHW directly: per image, or with columns over all images of a chunk
(launch_gemm's c_images) when a per-image GEMM would leave tiles part empty. Neither layout below is
needed there. With few output channels (_use_direct) the CPU forward packs nothing at all: it reads B
straight from a zero-padded copy of the input (gemm.launch_conv_direct). GPUs keep im2col + the tiled
GEMM, which has no implicit operand. On CPUs the weight gradient reads its columns from a zero-padded copy
of the input too (gemm.launch_conv_weight_direct); elsewhere, and for grouped or pointwise convolutions, it
unfolds with im2col (on CPUs im2col_block, the implicit packing's vector loads): there gemm_config swaps the
operands and the columns become A, read in place. The CPU input gradient of other than stride-1
convolutions folds with col2im_block.

Layouts of the column matrices fed to the GEMMs (see kernels_cl/conv2d.cl):
- per-image  [nb, R, P]: one GEMM batched over the images (stride = R*P); no transpose of the output.
- batch-major [R, nb, P]: one GEMM with n = nb*P, so small outputs (P = 1 at the end of a network) still
  give the GEMM wide matrices; costs a transpose of the output. The weight gradient always uses it,
  because it folds the sum over images into the GEMM's k.
Images are processed in chunks so that a column matrix stays under _COLS_BUDGET bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ..autograd import Context, Function
from ..device import Device
from ..tensor import Tensor, empty, zeros
from .gemm import ImplicitB, launch_conv_direct, launch_conv_weight_direct, launch_gemm

ACT_NONE = 0
_ACT_IDS = range(7)  # ACT_NONE .. ACT_TANH in kernels_cl/common.h
_COLS_BUDGET = 64 << 20  # bytes per column matrix; bounds temporaries whatever the batch size
# Output pixels per image from which forward / input-gradient GEMMs use the per-image layout. Measured on
# PoCL (2-core Zen, 32 images): per-image was as fast or faster from P = 16 (e.g. 96->256 on 12x12:
# 55 ms vs 60 ms forward, 44 vs 56 ms input gradient), batch-major faster at P = 4. GPUs get one
# tiled-GEMM tile width (64), below which a per-image GEMM leaves most of its tiles padding.
_PER_IMAGE_MIN_P = {"cpu": 16}
_PER_IMAGE_MIN_P_DEFAULT = 64
_REDUCE_WG = 64  # REDUCE_WG in conv2d.cl
# Devices whose forward GEMMs read the columns from the image (the CPU GEMM path packs B anyway; measured on
# PoCL, 2-core Zen: resnet18 inference x1.5, lenet5 x1.3).
_IMPLICIT_COLS_TYPES = ("cpu",)
# The CPU GEMM's tile width (two 16-wide blocks, gemm_config): implicit-GEMM convolutions whose output pixels
# per image are a multiple of it run one GEMM per image, the others one GEMM over all images' pixels.
_IMPLICIT_TILE_COLUMNS = 32
# The direct convolution (see _use_direct): at most this many output channels, output rows of at least this
# many pixels; the padded input copy gets this many readable floats either side (a vector's width).
_DIRECT_MAX_CHANNELS = 128
_DIRECT_MIN_OW = 12
# ... and a window over at least _DIRECT_MIN_K column rows (channels x taps), unless there are very few output
# channels: every tile row reads B itself, which a packed strip does once (alexnet_mnist's 96-channel 5x5 conv
# over one input channel, k = 25: 1% slower direct; LeNet-5's 6-channel one: inference 6% faster).
_DIRECT_MIN_K = 64
_DIRECT_FEW_CHANNELS = 16
_DIRECT_SLACK = 16
_PAD_WG = 16  # padded rows per pad2d work-group
# The input gradient as a flipped-weight convolution pays off from this many input channels (its GEMM has
# C rows): measured in one process, resnet18 (C >= 64) training +5%, LeNet-5's conv2 (C = 6) -17%.
_DX_CONV_MIN_CHANNELS = 64
# im2col_block / col2im_block (CPU): columns or pixels (NR in conv2d.cl) and rows (IM2COL_ROWS) per
# work-item, work-group width.
_IM2COL_COLS = 16
_IM2COL_ROWS = 32
_IM2COL_WG = 16
# Fixed work-group width: PoCL compiles a kernel once per local size, so letting the driver pick one per
# global size would recompile for every new shape.
_WG = 64


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
        """im2col / col2im's compile-time window geometry (plus conv2d.cl's required ACT)."""
        return {"ACT": 0, "COL_KH": self.kh, "COL_KW": self.kw, "COL_SH": self.stride[0], "COL_SW": self.stride[1],
                "COL_PH": self.pad_t, "COL_PW": self.pad_l, "COL_DH": self.dilation[0], "COL_DW": self.dilation[1]}

    def spatial_args(self) -> tuple:
        """The kernel arguments KH .. OW shared by every conv2d.cl kernel, as int32."""
        vals = (self.kh, self.kw, *self.stride, self.pad_t, self.pad_l, *self.dilation, self.oh, self.ow)
        return tuple(np.int32(v) for v in vals)


def _pair(op: str, name: str, v) -> tuple[int, int]:
    if isinstance(v, (tuple, list)):
        if len(v) != 2:
            raise ValueError(f"{op}: {name} must be an int or a pair, got {v!r}")
        a, b = v
    else:
        a = b = v
    if not all(isinstance(x, (int, np.integer)) and not isinstance(x, bool) for x in (a, b)):
        raise ValueError(f"{op}: {name} must be an int or a pair of ints, got {v!r}")
    return int(a), int(b)


def conv2d_geometry(x_shape: tuple[int, ...], w_shape: tuple[int, ...], stride=1, padding=0, dilation=1,
                    groups: int = 1, op: str = "conv2d") -> ConvGeometry:
    """Validate shapes and hyperparameters (PyTorch rules) and derive the output size; ValueError if bad."""
    x_shape, w_shape = tuple(x_shape), tuple(w_shape)
    if len(x_shape) != 4:
        raise ValueError(f"{op}: input must be 4-D (N, C, H, W), got shape {x_shape}")
    if len(w_shape) != 4:
        raise ValueError(f"{op}: weight must be 4-D (out, in/groups, kH, kW), got shape {w_shape}")
    if not isinstance(groups, (int, np.integer)) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
    groups = int(groups)
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


def _check_tensors(op: str, geo_args: tuple, x, w, b=None) -> ConvGeometry:
    for name, t in (("input", x), ("weight", w), ("bias", b)):
        if t is None and name == "bias":
            continue
        if not isinstance(t, Tensor):
            raise ValueError(f"{op}: {name} must be a hetero Tensor, got {type(t).__name__}")
        if t.dtype != np.float32:
            raise ValueError(f"{op}: {name} {t.shape} must be float32, got {t.dtype}")
    geo = conv2d_geometry(x.shape, w.shape, *geo_args, op=op)
    if b is not None and b.shape != (geo.oc,):
        raise ValueError(f"{op}: bias {b.shape} must have shape ({geo.oc},) for weight {w.shape}")
    for name, t in (("weight", w), ("bias", b)):
        if t is not None and t.device is not x.device:
            raise ValueError(f"{op}: input {x.shape} is on device {x.device.id} but {name} {t.shape} is on "
                             f"{t.device.id}")
    return geo


def _check_act(op: str, act: int) -> None:
    if int(act) not in _ACT_IDS:
        raise ValueError(f"{op}: unknown activation id {act} (ACT_* in kernels_cl/common.h)")


def _defines(act: int = ACT_NONE, act_alpha: float = 0.0) -> dict:
    d = {"ACT": int(act)}
    if act in (2, 3):  # LEAKY_RELU, ELU
        d["ACT_ALPHA"] = float(act_alpha)
    return d


def _kernel(dev: Device, name: str, defines: dict, args: tuple):
    """conv2d.cl's kernel with its scalar argument types declared once: pyopencl's untyped set_args costs
    ~10 us per numpy scalar, and these kernels take up to 17."""
    kern = dev.kernel("conv2d.cl", name, defines)
    if not getattr(kern, "_hetero_typed", False):
        kern.set_scalar_arg_dtypes([type(a) if isinstance(a, np.generic) else None for a in args])
        kern._hetero_typed = True
    return kern


def _launch(dev: Device, name: str, defines: dict, items: int, images: int, *args) -> None:
    """Run kernel `name` over (items, images) work-items, items rounded up to the work-group width."""
    kern = _kernel(dev, name, defines, args)
    dev.launch(kern, (-(-items // _WG) * _WG, images), (_WG, 1), *args)


# --- column matrices -------------------------------------------------------------------------------------

class _Mat(NamedTuple):
    """A column-layout matrix inside a buffer: element (row r, image i, pixel p) at off + r*ld + i*img + p."""

    buf: Tensor
    off: int
    ld: int
    img: int


def _per_image_min_p(dev: Device) -> int:
    return _PER_IMAGE_MIN_P.get(dev.type, _PER_IMAGE_MIN_P_DEFAULT)


def _layout(dev: Device, geo: ConvGeometry, backward_weight: bool = False) -> str:
    # Small outputs make per-image GEMMs thin (n = P) and poorly tiled; a transpose is cheaper then.
    if backward_weight or geo.p < _per_image_min_p(dev):
        return "batch"
    return "image"


def _chunk(geo: ConvGeometry, rows: int) -> int:
    """Images per chunk so that a [rows, nb * P] float matrix fits the budget (at least one image)."""
    per_image = max(rows * geo.p * 4, 1)
    return max(1, min(geo.n, _COLS_BUDGET // per_image))


def _empty_mat(dev: Device, rows: int, nb: int, p: int, layout: str) -> _Mat:
    t = empty((rows * nb * p,), np.float32, dev)
    return _Mat(t, 0, nb * p, p) if layout == "batch" else _Mat(t, 0, p, rows * p)


def _gemm_cols(layout: str, nb: int, p: int) -> tuple[int, int]:
    """(GEMM n, GEMM batch) for a column matrix of nb images of p pixels."""
    return (nb * p, 1) if layout == "batch" else (p, nb)


def _swap01(dev: Device, src, src_off: int, dst, dst_off: int, a: int, b: int, p: int) -> None:
    """dst[b][a][p] = src[a][b][p]: NCHW <-> CNHW for one chunk."""
    _launch(dev, "swap01", _defines(), b * -(-p // 16), a, src, np.int32(src_off), dst, np.int32(dst_off),
            np.int32(a), np.int32(b), np.int32(p))  # 16 pixels per work-item (see conv2d.cl)


def _nchw_view(t: Tensor, n0: int, channels: int, p: int) -> _Mat:
    """An NCHW tensor from image n0 on, seen as a per-image column matrix (rows = channels)."""
    return _Mat(t, n0 * channels * p, p, channels * p)


def _unfold(x: Tensor, geo: ConvGeometry, n0: int, nb: int, layout: str) -> _Mat:
    """The column matrix of images n0 .. n0+nb-1 (rows = C*kH*kW, columns = output pixels)."""
    dev = x.device
    hw = geo.h * geo.w
    if geo.pointwise:
        if layout == "image":
            return _nchw_view(x, n0, geo.c, hw)
        cols = _empty_mat(dev, geo.c, nb, hw, layout)
        _swap01(dev, x, n0 * geo.c * hw, cols.buf, 0, nb, geo.c, hw)
        return cols
    rows = geo.c * geo.taps
    cols = _empty_mat(dev, rows, nb, geo.p, layout)
    if layout == "batch" and dev.type in _IMPLICIT_COLS_TYPES:
        # the CPU variant: NR columns x _IM2COL_ROWS rows per work-item, as vectors (see conv2d.cl)
        args = (x, np.int32(n0 * geo.c * geo.h * geo.w), np.int32(geo.c), np.int32(geo.h), np.int32(geo.w),
                np.int32(geo.ow), np.int32(geo.p), np.int32(nb * geo.p), cols.buf, np.int32(cols.ld))
        blocks = -(-nb * geo.p // _IM2COL_COLS)
        dev.launch(_kernel(dev, "im2col_block", geo.col_defines(), args),
                   (-(-blocks // _IM2COL_WG) * _IM2COL_WG, -(-rows // _IM2COL_ROWS)), (_IM2COL_WG, 1), *args)
        return cols
    _launch(dev, "im2col", geo.col_defines(), geo.c * geo.p, nb, x, np.int32(n0), np.int32(geo.c),
            np.int32(geo.h), np.int32(geo.w), np.int32(geo.oh), np.int32(geo.ow), cols.buf, np.int32(cols.ld),
            np.int32(cols.img))
    return cols


def _use_implicit_cols(dev: Device, geo: ConvGeometry, layout: str) -> bool:
    """Whether the forward GEMM takes the column matrix as an implicit operand instead of an im2col output.
    Not for a per-image pointwise conv: its input already is the column matrix."""
    return dev.type in _IMPLICIT_COLS_TYPES and not (geo.pointwise and layout == "image")


def _implicit_cols(geo: ConvGeometry) -> ImplicitB:
    window = {key: v for key, v in geo.col_defines().items() if key != "ACT"}
    return ImplicitB(window, geo.h, geo.w, geo.ow, geo.p, geo.c * geo.h * geo.w)


def _fold_target(dx: Tensor, geo: ConvGeometry, n0: int, nb: int, layout: str) -> _Mat:
    """Where the GEMM writes column gradients: straight into dx for a per-image pointwise conv."""
    if geo.pointwise and layout == "image":
        return _nchw_view(dx, n0, geo.c, geo.h * geo.w)
    return _empty_mat(dx.device, geo.c * geo.taps, nb, geo.p, layout)


def _fold(dcols: _Mat, dx: Tensor, geo: ConvGeometry, n0: int, nb: int, layout: str) -> None:
    """Sum column gradients back into dx for images n0 .. n0+nb-1."""
    dev = dx.device
    hw = geo.h * geo.w
    if geo.pointwise:
        if layout == "batch":
            _swap01(dev, dcols.buf, 0, dx, n0 * geo.c * hw, geo.c, nb, hw)
        return
    if layout == "batch" and dev.type in _IMPLICIT_COLS_TYPES:
        # the CPU variant: 16 pixels of a dx row per work-item, no per-pixel branches (see conv2d.cl)
        items = geo.h * -(-geo.w // _IM2COL_COLS)
        args = (dcols.buf, np.int32(dcols.ld), np.int32(geo.c * geo.taps * dcols.ld), np.int32(n0),
                np.int32(geo.c), np.int32(geo.h), np.int32(geo.w), np.int32(geo.oh), np.int32(geo.ow), dx)
        dev.launch(_kernel(dev, "col2im_block", geo.col_defines(), args),
                   (-(-items // _IM2COL_WG) * _IM2COL_WG, geo.c, nb), (_IM2COL_WG, 1, 1), *args)
        return
    _launch(dev, "col2im", geo.col_defines(), geo.c * hw, nb, dcols.buf, np.int32(dcols.ld), np.int32(dcols.img),
            np.int32(n0), np.int32(geo.c), np.int32(geo.h), np.int32(geo.w), np.int32(geo.oh), np.int32(geo.ow), dx)


# --- forward -------------------------------------------------------------------------------------------------

def _forward_gemm(x: Tensor, w: Tensor, b: Tensor | None, geo: ConvGeometry, act: int, act_alpha: float,
                  out: Tensor) -> None:
    dev = x.device
    layout = _layout(dev, geo)
    kdim = geo.icg * geo.taps
    nb_max = _chunk(geo, max(geo.c * geo.taps, geo.oc))
    hw = geo.h * geo.w
    if _use_direct(dev, geo):
        _forward_direct(x, w, b, geo, act, act_alpha, out)
        return
    if _use_implicit_cols(dev, geo, layout):
        # Written straight into NCHW, no transpose: per image (a batch entry each) when P fills whole
        # tiles, else one GEMM whose columns are the pixels of all the chunk's images (c_images): 7x7
        # outputs per image left 15 of every 64 columns padding (resnet18's 256-channel convs: 280 ->
        # 350 GFLOP/s) and 4x4 ones half of every 32-column tile (512 channels: 245 -> 470).
        implicit = _implicit_cols(geo)
        per_image = geo.p % _IMPLICIT_TILE_COLUMNS == 0
        for n0 in range(0, geo.n, nb_max):
            nb = min(nb_max, geo.n - n0)
            gn, batch, c_images = (geo.p, nb, None) if per_image else (nb * geo.p, 1, (geo.p, geo.oc * geo.p))
            for g in range(geo.groups):
                launch_gemm(dev, geo.ocg, gn, kdim,
                            w, g * geo.ocg * kdim, kdim, False,
                            x, (n0 * geo.c + g * geo.icg) * hw, 0, False,
                            out, (n0 * geo.oc + g * geo.ocg) * geo.p, geo.p,
                            bias=b, bias_offset=g * geo.ocg, bias_axis=None if b is None else "m",
                            act=act, act_alpha=act_alpha, batch=batch, stride_b=geo.c * hw,
                            stride_c=geo.oc * geo.p, implicit_b=implicit, c_images=c_images)
        return
    for n0 in range(0, geo.n, nb_max):
        nb = min(nb_max, geo.n - n0)
        cols = _unfold(x, geo, n0, nb, layout)
        dst = _empty_mat(dev, geo.oc, nb, geo.p, layout) if layout == "batch" else _nchw_view(out, n0, geo.oc, geo.p)
        gn, batch = _gemm_cols(layout, nb, geo.p)
        for g in range(geo.groups):
            launch_gemm(dev, geo.ocg, gn, kdim,
                        w, g * geo.ocg * kdim, kdim, False,
                        cols.buf, cols.off + g * kdim * cols.ld, cols.ld, False,
                        dst.buf, dst.off + g * geo.ocg * dst.ld, dst.ld,
                        bias=b, bias_offset=g * geo.ocg, bias_axis=None if b is None else "m",
                        act=act, act_alpha=act_alpha,
                        batch=batch, stride_a=0, stride_b=cols.img, stride_c=dst.img)
        if layout == "batch":
            _swap01(dev, dst.buf, 0, out, n0 * geo.oc * geo.p, geo.oc, nb, geo.p)


def _use_direct(dev: Device, geo: ConvGeometry) -> bool:
    """Whether the CPU forward reads B straight from a zero-padded copy of the input (gemm_cpu_direct): one
    group of up to _DIRECT_MAX_CHANNELS output channels (few tile rows, where packing B costs most: resnet18's
    64- and 128-channel 3x3 convs ran at 384-406 GFLOP/s that way, 264-330 as packed strips; in one process
    resnet18 b32 inference 86.8 -> 80.3 ms, training 321 -> 305 ms), stride 1 along rows, output rows of at
    least _DIRECT_MIN_OW pixels (a 16-column block then mostly lies in two rows, two vector loads; else it
    gathers), and the padded copy addressable with int offsets."""
    return (_use_implicit_cols(dev, geo, "batch") and geo.groups == 1 and not geo.pointwise
            and geo.stride[1] == 1 and geo.oc <= _DIRECT_MAX_CHANNELS and geo.ow >= _DIRECT_MIN_OW
            and (geo.c * geo.taps >= _DIRECT_MIN_K or geo.oc <= _DIRECT_FEW_CHANNELS)
            and _padded_size(geo) < 2**31 - 2 * _DIRECT_SLACK)


def _padded_input(x: Tensor, geo: ConvGeometry) -> tuple[Tensor, ImplicitB]:
    """x copied into zero-padded planes that hold every window (pad2d), _DIRECT_SLACK readable floats either
    side, and its geometry for the direct GEMMs (window padding 0)."""
    dev = x.device
    (sh, sw), (dh, dw) = geo.stride, geo.dilation
    hp = max(geo.h + geo.pad_t, (geo.oh - 1) * sh + (geo.kh - 1) * dh + 1)
    wp = max(geo.w + geo.pad_l, (geo.ow - 1) * sw + (geo.kw - 1) * dw + 1)
    slack = _DIRECT_SLACK
    xp = empty((slack + geo.n * geo.c * hp * wp + slack,), np.float32, dev)
    args = (x, xp, np.int32(slack), np.int32(geo.h), np.int32(geo.w), np.int32(hp), np.int32(wp),
            np.int32(geo.pad_t), np.int32(geo.pad_l))
    dev.launch(_kernel(dev, "pad2d", _defines(), args), (-(-hp // _PAD_WG) * _PAD_WG, geo.n * geo.c), (_PAD_WG, 1),
               *args)
    window = {**{key: v for key, v in geo.col_defines().items() if key != "ACT"}, "COL_PH": 0, "COL_PW": 0}
    return xp, ImplicitB(window, hp, wp, geo.ow, geo.p, geo.c * hp * wp)


def _use_direct_weight_grad(dev: Device, geo: ConvGeometry) -> bool:
    """Whether the CPU weight gradient reads its columns from a zero-padded copy of the input
    (gemm.launch_conv_weight_direct) instead of an im2col column matrix: one group, not pointwise, any
    stride and dilation (the columns are read one element at a time), the copy addressable with ints."""
    return (_use_implicit_cols(dev, geo, "batch") and geo.groups == 1 and not geo.pointwise
            and _padded_size(geo) < 2**31 - 2 * _DIRECT_SLACK)


def _padded_size(geo: ConvGeometry) -> int:
    """An upper bound of the padded input copy's floats."""
    return geo.n * geo.c * (geo.h + 2 * geo.kh * geo.dilation[0] + geo.stride[0]) * \
        (geo.w + 2 * geo.kw * geo.dilation[1] + geo.stride[1])


def _forward_direct(x: Tensor, w: Tensor, b: Tensor | None, geo: ConvGeometry, act: int, act_alpha: float,
                    out: Tensor) -> None:
    xp, padded = _padded_input(x, geo)
    kdim = geo.c * geo.taps
    launch_conv_direct(x.device, geo.oc, geo.n * geo.p, kdim, w, 0, kdim, xp, _DIRECT_SLACK, padded, out, 0,
                       (geo.p, geo.oc * geo.p), bias=b, act=act, act_alpha=act_alpha)


def _forward_depthwise(x: Tensor, w: Tensor, b: Tensor | None, geo: ConvGeometry, act: int, act_alpha: float,
                       out: Tensor) -> None:
    dev = x.device
    args = (x, w, w if b is None else b, np.int32(b is not None), out, np.int32(geo.c), np.int32(geo.h),
            np.int32(geo.w), np.int32(geo.oc // geo.c), np.int32(geo.oh), np.int32(geo.ow))
    kern = _kernel(dev, "depthwise_fwd", {**geo.col_defines(), **_defines(act, act_alpha)}, args)
    dev.launch(kern, (geo.ow, geo.oh, geo.n * geo.oc), None, *args)


def conv2d_forward(x: Tensor, w: Tensor, b: Tensor | None = None, stride=1, padding=0, dilation=1, groups: int = 1,
                   act: int = ACT_NONE, act_alpha: float = 0.0) -> Tensor:
    """act(conv2d(x, w, b)) with the activation fused into the epilogue (act: ACT_* id from common.h)."""
    geo = _check_tensors("conv2d", (stride, padding, dilation, groups), x, w, b)
    _check_act("conv2d", act)
    out = empty(geo.out_shape, np.float32, x.device)
    if geo.n == 0:
        return out
    if geo.depthwise:
        _forward_depthwise(x, w, b, geo, act, act_alpha, out)
    else:
        _forward_gemm(x, w, b, geo, act, act_alpha, out)
    return out


# --- backward ------------------------------------------------------------------------------------------------

def _bias_grad(g: Tensor, geo: ConvGeometry) -> Tensor:
    dev = g.device
    db = empty((geo.oc,), np.float32, dev)
    args = (g, np.int32(geo.n), np.int32(geo.oc), np.int32(geo.p), db)
    dev.launch(_kernel(dev, "bias_grad", _defines(), args), (geo.oc * _REDUCE_WG,), (_REDUCE_WG,), *args)
    return db


def _dx_by_convolution(dev: Device, geo: ConvGeometry) -> bool:
    """Whether the input gradient is computed as a convolution of dy with the flipped, transposed weights
    (padding kernel - 1 - padding): exact for stride 1, no dilation, one group and symmetric padding of
    at most kernel - 1. On the implicit-GEMM path that reads dy in place instead of writing a column
    gradient matrix and folding it back with col2im."""
    return (_use_implicit_cols(dev, geo, "batch") and geo.stride == (1, 1) and geo.dilation == (1, 1)
            and geo.groups == 1 and not geo.pointwise and geo.c >= _DX_CONV_MIN_CHANNELS
            and geo.pad_t <= geo.kh - 1 and geo.pad_l <= geo.kw - 1
            and geo.oh == geo.h + 2 * geo.pad_t - geo.kh + 1 and geo.ow == geo.w + 2 * geo.pad_l - geo.kw + 1)


def _dx_convolution(g: Tensor, w: Tensor, geo: ConvGeometry) -> Tensor:
    dev = g.device
    wt = empty((geo.c, geo.oc, geo.kh, geo.kw), np.float32, dev)
    _launch(dev, "flip_transpose", _defines(), geo.c, geo.oc, w, wt, np.int32(geo.oc), np.int32(geo.c),
            np.int32(geo.kh), np.int32(geo.kw))
    return conv2d_forward(g, wt, None, 1, (geo.kh - 1 - geo.pad_t, geo.kw - 1 - geo.pad_l), 1, 1)


def _backward_gemm(g: Tensor, x: Tensor, w: Tensor, geo: ConvGeometry, need_dx: bool, need_dw: bool):
    dev = x.device
    dx = None
    if need_dx and _dx_by_convolution(dev, geo):
        dx, need_dx = _dx_convolution(g, w, geo), False
        if not need_dw:
            return dx, None
    layout = _layout(dev, geo, backward_weight=need_dw)
    kdim = geo.icg * geo.taps
    dw = empty((geo.oc, geo.icg, geo.kh, geo.kw), np.float32, dev) if need_dw else None
    dy_all = None  # dY of every image, batch-major, when the direct weight gradient made it
    if need_dw and _use_direct_weight_grad(dev, geo):
        # dW = dY (CNHW) . cols^T with the columns read from a padded copy of x: no column matrix
        dy_all = _empty_mat(dev, geo.oc, geo.n, geo.p, "batch")
        _swap01(dev, g, 0, dy_all.buf, 0, geo.n, geo.oc, geo.p)
        xp, padded = _padded_input(x, geo)
        launch_conv_weight_direct(dev, kdim, geo.oc, geo.n * geo.p, xp, _DIRECT_SLACK, padded, dy_all.buf, 0,
                                  dy_all.ld, dw)
        del xp
        need_dw = False
        if not need_dx:
            return dx, dw
    if need_dx:
        dx = empty((geo.n, geo.c, geo.h, geo.w), np.float32, dev)
    nb_max = _chunk(geo, max(geo.c * geo.taps, geo.oc))
    for n0 in range(0, geo.n, nb_max):
        nb = min(nb_max, geo.n - n0)
        gn, batch = _gemm_cols(layout, nb, geo.p)
        if layout == "batch" and dy_all is not None:  # images n0.. of the matrix already swapped
            dy = _Mat(dy_all.buf, n0 * geo.p, dy_all.ld, geo.p)
        elif layout == "batch":
            dy = _empty_mat(dev, geo.oc, nb, geo.p, layout)
            _swap01(dev, g, n0 * geo.oc * geo.p, dy.buf, 0, nb, geo.oc, geo.p)
        else:
            dy = _nchw_view(g, n0, geo.oc, geo.p)
        if need_dw:
            # dW_g += dY_g [ocg, nb*P] . cols_g^T: the sum over images is the GEMM's k
            cols = _unfold(x, geo, n0, nb, layout)
            for grp in range(geo.groups):
                launch_gemm(dev, geo.ocg, kdim, gn,
                            dy.buf, dy.off + grp * geo.ocg * dy.ld, dy.ld, False,
                            cols.buf, cols.off + grp * kdim * cols.ld, cols.ld, True,
                            dw, grp * geo.ocg * kdim, kdim, beta=0.0 if n0 == 0 else 1.0)
            del cols
        if need_dx:
            # dcols_g = W_g^T [kdim, ocg] . dY_g, then col2im
            dcols = _fold_target(dx, geo, n0, nb, layout)
            for grp in range(geo.groups):
                launch_gemm(dev, kdim, gn, geo.ocg,
                            w, grp * geo.ocg * kdim, kdim, True,
                            dy.buf, dy.off + grp * geo.ocg * dy.ld, dy.ld, False,
                            dcols.buf, dcols.off + grp * kdim * dcols.ld, dcols.ld,
                            batch=batch, stride_a=0, stride_b=dy.img, stride_c=dcols.img)
            _fold(dcols, dx, geo, n0, nb, layout)
    return dx, dw


def _backward_depthwise(g: Tensor, x: Tensor, w: Tensor, geo: ConvGeometry, need_dx: bool, need_dw: bool):
    dev = x.device
    mult = np.int32(geo.oc // geo.c)
    dims = (np.int32(geo.c), np.int32(geo.h), np.int32(geo.w), mult)
    dx = dw = None
    if need_dx:
        dx = empty((geo.n, geo.c, geo.h, geo.w), np.float32, dev)
        args = (g, w, dx, *dims, np.int32(geo.oh), np.int32(geo.ow))
        kern = _kernel(dev, "depthwise_bw_input", geo.col_defines(), args)
        dev.launch(kern, (geo.w, geo.h, geo.n * geo.c), None, *args)
    if need_dw:
        dw = empty(w.shape, np.float32, dev)
        args = (g, x, dw, np.int32(geo.n), *dims, np.int32(geo.oh), np.int32(geo.ow))
        k = _kernel(dev, "depthwise_bw_weight", geo.col_defines(), args)
        dev.launch(k, (_REDUCE_WG, geo.oc), (_REDUCE_WG, 1), *args)
    return dx, dw


def conv2d_backward(grad: Tensor, x: Tensor, w: Tensor, stride=1, padding=0, dilation=1, groups: int = 1,
                    needs: tuple[bool, bool, bool] = (True, True, True), act: int = ACT_NONE,
                    act_alpha: float = 0.0, out: Tensor | None = None):
    """(dx, dw, db) of conv2d_forward, None where needs is False; with a fused act, out is its saved output."""
    geo = _check_tensors("conv2d_backward", (stride, padding, dilation, groups), x, w)
    _check_act("conv2d_backward", act)
    if not isinstance(grad, Tensor) or grad.shape != geo.out_shape or grad.dtype != np.float32:
        raise ValueError(f"conv2d_backward: grad {getattr(grad, 'shape', grad)} must be float32 of the output "
                         f"shape {geo.out_shape} (input {x.shape}, weight {w.shape})")
    if grad.device is not x.device:
        raise ValueError(f"conv2d_backward: grad {grad.shape} is on device {grad.device.id}, input on {x.device.id}")
    need_dx, need_dw, need_db = (bool(v) for v in needs)
    dev = x.device
    if act != ACT_NONE:
        if not isinstance(out, Tensor) or out.shape != geo.out_shape or out.device is not dev:
            raise ValueError(f"conv2d_backward: a fused activation needs the forward output {geo.out_shape} "
                             f"on the same device as out=, got {getattr(out, 'shape', out)}")
        pre = empty(geo.out_shape, np.float32, dev)
        _launch(dev, "act_bw", _defines(act, act_alpha), pre.size, 1, grad, out, pre, np.int32(pre.size))
        grad = pre
    db = _bias_grad(grad, geo) if need_db else None
    if not (need_dx or need_dw):
        return None, None, db
    if geo.depthwise:
        dx, dw = _backward_depthwise(grad, x, w, geo, need_dx, need_dw)
    else:
        dx, dw = _backward_gemm(grad, x, w, geo, need_dx, need_dw)
        if need_dw and geo.n == 0:
            dw = zeros(w.shape, np.float32, dev)  # no image to accumulate over
    return dx, dw, db


# --- autograd and the public function ----------------------------------------------------------------------------

class Conv2dFn(Function):
    """conv2d with an optional fused activation; backward gives input, weight and bias gradients."""

    @staticmethod
    def forward(ctx: Context, input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
                dilation=1, groups: int = 1, act: int = ACT_NONE, act_alpha: float = 0.0) -> Tensor:
        out = conv2d_forward(input, weight, bias, stride, padding, dilation, groups, act, act_alpha)
        # out.detach(), not out: out -> grad_fn -> ctx -> out would be a cycle only the cyclic GC frees
        ctx.save_for_backward(input, weight, out.detach() if act != ACT_NONE else None)
        ctx.params = (stride, padding, dilation, groups, act, act_alpha)
        return out

    @staticmethod
    def backward(ctx: Context, grad: Tensor):
        x, w, out = ctx.saved_tensors
        stride, padding, dilation, groups, act, act_alpha = ctx.params
        needs = tuple(ctx.needs_input_grad[:3]) + (False,) * (3 - len(ctx.needs_input_grad[:3]))
        dx, dw, db = conv2d_backward(grad, x, w, stride, padding, dilation, groups, needs, act, act_alpha, out)
        return dx, dw, db, None, None, None, None, None, None


def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1,
           groups: int = 1) -> Tensor:
    """2-D cross-correlation over NCHW input, like torch.nn.functional.conv2d."""
    _check_tensors("conv2d", (stride, padding, dilation, groups), input, weight, bias)
    return Conv2dFn.apply(input, weight, bias, stride, padding, dilation, groups)
