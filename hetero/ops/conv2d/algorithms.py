"""Which algorithm computes each pass of a convolution: an explicit table of named predicates, asked in order.

`choose(device, geometry)` walks FORWARD, INPUT_GRAD and WEIGHT_GRAD and takes, for each pass, the first
algorithm whose predicate holds (the last entry of each always holds). Predicates see only a `Problem`: the
device's type string, the geometry and whether the weight gradient is wanted, so the table is unit-tested
without a device. The tuning constants the predicates and the algorithms read live here, named.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

from ...limits import STRICT
from ...validate import INT_MAX
from ..gemm.config import CPU_TILES, flavour_of
from .geometry import ConvGeometry

# --- tuning constants ------------------------------------------------------------------------------------
# Bytes per column matrix: bounds temporaries whatever the batch size (images are processed in chunks).
COLS_BUDGET = 64 << 20
# Output pixels per image from which forward / input-gradient GEMMs over column matrices use the per-image
# layout: a per-image GEMM has n = P columns, poorly tiled below this (a transpose of the output is cheaper
# then). GPUs: one tiled-GEMM tile width.
PER_IMAGE_MIN_P = {"cpu": 16}
PER_IMAGE_MIN_P_DEFAULT = 64
# Devices whose GEMMs read a convolution's columns straight from the image (implicit GEMM, the direct
# kernels) and whose window kernels are the vector "block" variants: the CPU GEMM packs B anyway.
IMPLICIT_FLAVOURS = ("cpu",)
# Implicit GEMMs whose output pixels per image are a multiple of the CPU tile width run one GEMM per image; the
# others one GEMM over all images' pixels, so tiles are not left part empty. A multiple of every CPU_TILES row's
# columns (hetero/ops/gemm/config.py), so that whole tiles per image hold on every device and the choice stays
# the same for a device and its type string.
IMPLICIT_TILE_COLUMNS = math.lcm(*(tile.columns for _, tile in CPU_TILES))
# The direct convolution: at most this many output channels (few tile rows, where packing B costs most),
# output rows of at least this many pixels (a 16-column block then mostly lies in two rows: two vector
# loads, else it gathers), and a window over at least DIRECT_MIN_K column rows (channels x taps) unless there
# are very few output channels (every tile row reads B itself, which a packed strip does once).
DIRECT_MAX_CHANNELS = 128
DIRECT_MIN_OW = 12
DIRECT_MIN_K = 64
DIRECT_FEW_CHANNELS = 16
# Work-groups a launch may have in dimensions 1 and 2 (GPUs allow 65535; dimension 0 2^31 - 1): grids whose
# dimension 1 or 2 counts images or planes run in chunks of at most this many.
MAX_GRID_GROUPS = STRICT.max_groups[1]
# Readable floats either side of the padded input copy (a vector's width).
DIRECT_SLACK = 16
# The input gradient as a flipped-weight convolution pays off from this many input channels (its GEMM has
# C rows); below it the GEMM + col2im is faster.
FLIPPED_MIN_CHANNELS = 64
# The depthwise weight gradient's work-group (REDUCE_WG in conv2d.cl), at most: its work-items' partial sums of
# a chunk of taps meet in local memory, 4 bytes per tap per work-item.
DEPTHWISE_REDUCE_WG = 64


class Algorithms(NamedTuple):
    """The named algorithm of each pass (see FORWARD, INPUT_GRAD, WEIGHT_GRAD)."""

    forward: str
    input_grad: str
    weight_grad: str


class Problem(NamedTuple):
    """What the predicates see: the device's kernel flavour ("cpu" or "gpu"), the geometry, and whether dW is
    computed too."""

    device: str
    geo: ConvGeometry
    weight_grad: bool = True


Predicate = Callable[[Problem], bool]


# --- predicates ------------------------------------------------------------------------------------------

def per_image_min_p(device: Any) -> int:
    """Output pixels per image from which column-matrix GEMMs run per image."""
    return PER_IMAGE_MIN_P.get(flavour_of(device), PER_IMAGE_MIN_P_DEFAULT)


def reads_image(device: Any) -> bool:
    """Whether the device's GEMMs read columns from the image and its window kernels are the block variants."""
    return flavour_of(device) in IMPLICIT_FLAVOURS


def always(q: Problem) -> bool:
    return True


def is_depthwise(q: Problem) -> bool:
    return q.geo.depthwise


def is_per_image_layout(q: Problem) -> bool:
    """Column-matrix GEMMs per image (n = P), not one over the chunk's images (batch-major)."""
    return q.geo.p >= per_image_min_p(q.device)


def is_pointwise_per_image(q: Problem) -> bool:
    """A per-image pointwise conv: the NCHW input (or dx) already is the column matrix, nothing to unfold."""
    return q.geo.pointwise and is_per_image_layout(q)


def padded_copy_fits(q: Problem) -> bool:
    """The direct kernels' zero-padded input copy is addressable with int offsets."""
    return q.geo.padded_size() < INT_MAX + 1 - 2 * DIRECT_SLACK


def is_direct_compatible(q: Problem) -> bool:
    """The forward GEMM reads B straight from a zero-padded input copy (gemm_cpu_direct, nothing packed)."""
    g = q.geo
    return (reads_image(q.device) and g.groups == 1 and not g.pointwise and g.stride[1] == 1
            and g.oc <= DIRECT_MAX_CHANNELS and g.ow >= DIRECT_MIN_OW
            and (g.c * g.taps >= DIRECT_MIN_K or g.oc <= DIRECT_FEW_CHANNELS) and padded_copy_fits(q))


def is_implicit_compatible(q: Problem) -> bool:
    """The forward GEMM's B packing reads the columns from the image (no column matrix)."""
    return reads_image(q.device) and not is_pointwise_per_image(q)


def is_implicit_per_image_compatible(q: Problem) -> bool:
    """Implicit GEMM with whole tiles per image: one GEMM per image (a batch entry each)."""
    return is_implicit_compatible(q) and q.geo.p % IMPLICIT_TILE_COLUMNS == 0


def is_flipped_conv_compatible(q: Problem) -> bool:
    """dx as the convolution of dy with the flipped, transposed weights (padding kernel - 1 - padding):
    exact for stride 1, no dilation, one group and symmetric padding of at most kernel - 1."""
    g = q.geo
    return (reads_image(q.device) and g.stride == (1, 1) and g.dilation == (1, 1) and g.groups == 1
            and not g.pointwise and g.c >= FLIPPED_MIN_CHANNELS and g.pad_t <= g.kh - 1 and g.pad_l <= g.kw - 1
            and g.oh == g.h + 2 * g.pad_t - g.kh + 1 and g.ow == g.w + 2 * g.pad_l - g.kw + 1)


def is_input_grad_per_image(q: Problem) -> bool:
    """The dx GEMM runs per image: only without a weight gradient, which shares its batch-major dY."""
    return not q.weight_grad and is_per_image_layout(q)


def is_input_grad_pointwise(q: Problem) -> bool:
    return is_input_grad_per_image(q) and q.geo.pointwise


def is_dw_direct_compatible(q: Problem) -> bool:
    """dW reads its columns one element at a time from a zero-padded input copy (gemm_cpu_dw_direct): any
    stride and dilation; grouped and pointwise convolutions keep im2col."""
    return reads_image(q.device) and q.geo.groups == 1 and not q.geo.pointwise and padded_copy_fits(q)


# --- the table -------------------------------------------------------------------------------------------

FORWARD: tuple[tuple[str, Predicate], ...] = (
    ("depthwise", is_depthwise),
    ("direct", is_direct_compatible),
    ("implicit_per_image", is_implicit_per_image_compatible),
    ("implicit_images", is_implicit_compatible),
    ("pointwise", is_pointwise_per_image),
    ("columns_per_image", is_per_image_layout),
    ("columns_batch", always),
)
INPUT_GRAD: tuple[tuple[str, Predicate], ...] = (
    ("depthwise", is_depthwise),
    ("flipped_conv", is_flipped_conv_compatible),
    ("pointwise", is_input_grad_pointwise),
    ("col2im_per_image", is_input_grad_per_image),
    ("col2im_batch", always),
)
WEIGHT_GRAD: tuple[tuple[str, Predicate], ...] = (
    ("depthwise", is_depthwise),
    ("dw_direct", is_dw_direct_compatible),
    ("dw_columns", always),
)


def images_per_chunk(geo: ConvGeometry, rows: int) -> int:
    """Images per chunk so that a [rows, images * P] float matrix fits COLS_BUDGET (at least one image), and at
    most MAX_GRID_GROUPS: the window kernels' grids have a dimension of images."""
    return max(1, min(geo.n, COLS_BUDGET // max(rows * geo.p * 4, 1), MAX_GRID_GROUPS))


# --- the depthwise weight gradient within the device's local memory ---------------------------------------

def local_budget(local_mem_bytes: int, strict: bool) -> int:
    """The __local bytes a work-group may use: the device's (CL_DEVICE_LOCAL_MEM_SIZE), at most the strict
    limits' 32 KiB (hetero.limits.STRICT: Intel's and AMD's; NVIDIA has 48) under HETERO_STRICT_LIMITS=1."""
    return min(local_mem_bytes, STRICT.local_mem_bytes) if strict else local_mem_bytes


def depthwise_reduce_wg(budget: int, kw: int, cap: int = DEPTHWISE_REDUCE_WG) -> int:
    """The depthwise weight gradient's work-group width before the device is asked: cap, or the largest power
    of two whose partial sums of one kernel row (the smallest chunk) fit the budget."""
    wg = cap
    while wg > 1 and 4 * wg * kw > budget:
        wg //= 2
    if 4 * wg * kw > budget:
        raise ValueError(f"conv2d: a depthwise kernel row of {kw} taps needs {4 * kw} bytes of local memory per "
                         f"work-item, over the device's {budget}; use a narrower kernel or another grouping")
    return wg


def depthwise_chunk_taps(budget: int, wg: int, kh: int, kw: int) -> int:
    """Taps per work-group of the depthwise weight gradient (CHUNK_TAPS): the most whole kernel rows whose
    partial sums (4 bytes per tap and work-item) fit the budget; the whole window when it fits."""
    rows = budget // (4 * wg * kw)
    if rows < 1:
        raise ValueError(f"conv2d: one depthwise kernel row of {kw} taps by {wg} work-items needs "
                         f"{4 * wg * kw} bytes of local memory, over {budget}")
    return min(kh, rows) * kw


def _first(table: tuple[tuple[str, Predicate], ...], q: Problem) -> str:
    return next(name for name, ok in table if ok(q))


def choose(device: Any, geometry: ConvGeometry, weight_grad: bool = True) -> Algorithms:
    """The algorithm of each pass for a geometry on a device (a Device, a traits object with .type, or a type
    string); weight_grad=False: the input gradient is computed without the weight gradient."""
    q = Problem(flavour_of(device), geometry, bool(weight_grad))
    return Algorithms(_first(FORWARD, q), _first(INPUT_GRAD, q), _first(WEIGHT_GRAD, q))
