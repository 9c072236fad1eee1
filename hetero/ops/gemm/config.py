"""Which GEMM kernel variant and tile defines a shape gets on a device: the per-device decision table.

Everything here is plain data and arithmetic on the device's type string (or anything with a `.type`; for GPUs
its `.info`: vendor, name, limits; for CPUs what cpu_traits reads of its `.cl_device`: register width, compute
units, cache), so the table is unit-tested without a device and an autotuner can replace it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

# Problems up to this many multiply-adds run on the naive kernel: packing would cost more than it saves.
NAIVE_MAX_FLOPS = 16 * 16 * 16
# ---------------------------------------------------------------------------------------------------------
# CPU: gemm_cpu and the direct convolutions (kernels_cl/gemm_tile.h). The register tile follows the SIMD
# registers the kernels are compiled for (CpuTraits, read from the device by cpu_traits); the cache and
# compute-unit figures scale the bands, strips and split-k below.


@dataclass(frozen=True)
class CpuTraits:
    """What the CPU table reads of a device: its SIMD registers, compute units and last-level cache."""

    vector_width: int  # floats per SIMD register the kernels are compiled for
    registers: int  # SIMD registers
    compute_units: int
    cache_bytes: int  # CL_DEVICE_GLOBAL_MEM_CACHE_SIZE: the last-level cache on PoCL


@dataclass(frozen=True)
class CpuTile:
    """A register tile: MR rows by PANELS blocks of NR columns, each block an NR-wide OpenCL vector."""

    mr: int
    nr: int  # 8 or 16 (col_block.h's vector types)
    panels: int  # 1 or 2; 2 reads the second block from the next packed B panel

    @property
    def columns(self) -> int:
        """C columns per tile."""
        return self.nr * self.panels

    def registers(self, width: int) -> int:
        """SIMD registers the k loop holds at this register width: the accumulators, one B vector per block
        and the broadcast A element."""
        per_vector = -(-self.nr // width)
        return (self.mr + 1) * self.panels * per_vector + 1


# THE CPU tile table, widest registers first: cpu_tile gives the first row whose vectors are no wider than the
# device's registers and whose k loop fits its register file, else the last row, which fits 16 registers of 4
# floats (narrower registers get it too: col_block.h's vectors are 8 or 16 floats).
# - 16 floats (AVX-512, 32 zmm): 8 x 2 blocks of 16. Each A broadcast feeds two FMAs, so the FMA units, not the
#   loads, set the pace; MR 8 divides the common channel counts (64, 96, 128) and ran a little faster than 6 or
#   12.
# - 8 floats (AVX, AVX2, 16 ymm): 6 x 16, BLIS's and OpenBLAS's Haswell shape: 12 accumulators, two B vectors
#   and the broadcast make 15 registers, and each k step is 6 broadcasts + 2 loads for 12 FMAs, which two load
#   ports and two FMA units sustain. One 16-wide vector (two ymm) rather than two 8-wide panels: B rows of one
#   cache line, and the same tile where B is read in place (one block only). The AVX-512 tile needs 32 ymm
#   there and spills.
# - 4 floats (SSE, 16 xmm): 6 x 8, the same 15 registers at half the width.
CPU_TILES: tuple[tuple[int, CpuTile], ...] = (
    (16, CpuTile(mr=8, nr=16, panels=2)),
    (8, CpuTile(mr=6, nr=16, panels=1)),
    (4, CpuTile(mr=6, nr=8, panels=1)),
)
# x86's SIMD register files: 32 registers with AVX-512, 16 with SSE and AVX(2). OpenCL reports no register
# count, so the register width stands for the instruction set; other CPUs get the 16 (NEON has 32: its rows
# would be the SSE ones, correct and conservative).
CPU_REGISTERS_WIDE, CPU_REGISTERS = 32, 16
# What a device stating nothing (a type string, a traits object without a cl_device) is taken to be: the
# AVX-512 row on two compute units with 32 MiB of cache, the machine the table's figures come from.
ASSUMED_CPU = CpuTraits(vector_width=16, registers=32, compute_units=2, cache_bytes=32 << 20)
# PoCL's kernel-library CPUs (POCL_KERNELLIB_NAME: sse2 .. avx512) and their register widths in floats. PoCL
# names a device "pthread-<llvm cpu>-<model>" and compiles for that CPU, but reports the host's vector width:
# forced to `avx2` on an AVX-512 host it still reports 16 while its code has 8-float registers.
POCL_CPU_WIDTHS = {"athlon64": 4, "core2": 4, "penryn": 4, "sandybridge": 8, "ivybridge": 8, "bdver1": 8,
                   "haswell": 8, "skylake-avx512": 16}
_POCL_PREFIXES = ("pthread-", "basic-", "cpu-")
# Tile defines of every CPU row: UNROLL 1 runs as fast as 2 or 4 with a smaller program, and no "loop not
# unrolled" remark from PoCL's compiler on every cold build.
CPU_UNROLL = 1
CPU_WG = 16  # tiles per work-group: one tile per work-group lost much of its time to scheduling
# The tile of a device stating nothing (tests/ops/test_conv2d.py reads these).
CPU_MR, CPU_NR = CPU_TILES[0][1].mr, CPU_TILES[0][1].nr
# op(B) read in place, saving a launch, while it stays in L2 (which OpenCL does not report).
CPU_DIRECT_B_BYTES = 256 * 1024
PACK_COST = 64  # multiply-adds one float copied into a panel costs, in gemm_config's cost model
# A band of tile rows whose A rows span a few MiB: the current B panel stays in L2 while the band's A
# rows are read from the last-level cache, of which the band takes at most 1 / BAND_CACHE_SHARE.
BAND_BYTES = 3 << 20
BAND_CACHE_SHARE = 4
# Strips (a work-item packs its own B panel and runs the column of tiles on it while it is in cache) pay
# off with few tile rows, enough tile columns (strips, one per work-item) to keep the cores busy, and panels
# that stay in L2.
STRIP_MAX_TILE_ROWS = 16
STRIP_MIN_TILE_COLUMNS_PER_CU = 2
STRIP_MAX_PANEL_BYTES = 512 * 1024
# Split-k on CPUs: a GEMM with fewer C tiles than SPLIT_K_MAX_TILES_PER_CU per compute unit and k of at least
# SPLIT_K_MIN_K runs as slices of k side by side, then sums them, so that a thin GEMM keeps every core busy.
SPLIT_K_MAX_TILES_PER_CU = 16
SPLIT_K_MIN_K = 2048
SPLIT_K_MIN_SLICE = 256
SPLIT_K_WORK_ITEMS_PER_CU = 32
# ---------------------------------------------------------------------------------------------------------
# GPU: gemm_xgemm (kernels_cl/gemm_xgemm.h). CLBlast's database is column-major; hetero's C is row-major, so
# CLBlast's M (C's contiguous dimension) is our n: a CLBlast entry (MWG, NWG, MDIMC, NDIMC, VWM, VWN, SA, SB)
# reads here as (NWG, MWG, NDIMC, MDIMC, VWN, VWM, SB, SA). Entries below name where they come from; the
# CLBlast ones are the per-vendor "default" entries of its xgemm_32 database (src/database/kernels/xgemm; the
# version read has nothing newer than NVIDIA Pascal and no Apple GPU), a starting point for a tuner, not a
# tuned result.


@dataclass(frozen=True)
class Xgemm:
    """One gemm_xgemm configuration: its required defines (see kernels_cl/gemm_xgemm.h)."""

    mwg: int
    nwg: int
    kwg: int
    mdimc: int
    ndimc: int
    vwm: int
    vwn: int
    sa: int
    sb: int

    @property
    def threads(self) -> int:
        """Work-items per work-group."""
        return self.mdimc * self.ndimc

    @property
    def local_bytes(self) -> int:
        """__local bytes of the staged slices at most (a transposed operand's rows carry one float of padding)."""
        return 4 * self.kwg * ((self.mwg + 1) * self.sa + (self.nwg + 1) * self.sb)

    def problems(self) -> list[str]:
        """What makes this configuration unbuildable (gemm_xgemm.h's #error conditions); [] when it is valid."""
        out = []
        if self.mwg % (self.mdimc * self.vwm) or self.nwg % (self.ndimc * self.vwn):
            out.append("MWG must be a multiple of MDIMC * VWM and NWG of NDIMC * VWN")
        if self.kwg % self.vwm or self.kwg % self.vwn:
            out.append("KWG must be a multiple of VWM and VWN (operands stored with k contiguous load along k)")
        if self.vwm not in (1, 2, 4, 8) or self.vwn not in (1, 2, 4, 8):
            out.append("VWM and VWN must be 1, 2, 4 or 8")
        if self.sa not in (0, 1) or self.sb not in (0, 1):
            out.append("SA and SB must be 0 or 1")
        return out

    def defines(self) -> dict:
        """The kernel's -D defines."""
        return {"MWG": self.mwg, "NWG": self.nwg, "KWG": self.kwg, "MDIMC": self.mdimc, "NDIMC": self.ndimc,
                "VWM": self.vwm, "VWN": self.vwn, "SA": self.sa, "SB": self.sb}


@dataclass(frozen=True)
class SplitK:
    """When a thin GEMM (few tiles, long k) runs as k slices side by side, summed afterwards (split-k)."""

    groups_per_cu: int  # aim at this many work-groups per compute unit in all
    min_k: int = 2048  # shorter: one slice's launch and partial C cost more than the idle units
    min_slice: int = 256  # each slice's k at least this (a slice's partial C is written and read once)


@dataclass(frozen=True)
class GpuRows:
    """A vendor class's xgemm rows, by shape (see gpu_shape), and its split-k rule."""

    large: Xgemm
    small: Xgemm
    narrow_m: Xgemm
    narrow_n: Xgemm
    split_k: SplitK


# Shapes: "small" when the smaller side is at most SMALL_SIDE or C has fewer than SMALL_MAX_OUTPUTS elements
# (under four 64 x 64 tiles: a 32 x 32 tile gives the device four times as many groups); "narrow_m" /
# "narrow_n" when one side is at most NARROW_SIDE and the other beyond SMALL_SIDE (a convolution with few
# output channels, a linear layer with few outputs): a 16-wide tile on that side wastes less of each group.
SMALL_SIDE = 32
SMALL_MAX_OUTPUTS = 128 * 128
NARROW_SIDE = 16
GPU_SHAPES = ("large", "small", "narrow_m", "narrow_n")

# CLBlast's AMD, Intel-GPU and NVIDIA Pascal (SM6.1) defaults, all the same entry (KWG 32, 16 x 8 work-items,
# 64 x 64 tiles, vectors of 4, both operands staged): 128 work-items, 8 x 4 outputs each, 16.6 KiB __local.
_CLBLAST_64 = Xgemm(mwg=64, nwg=64, kwg=32, mdimc=8, ndimc=16, vwm=4, vwn=4, sa=1, sb=1)
# CLBlast's architecture-independent default (its "Default" device entry): 32 x 32 tiles of 128 work-items,
# 2 x 4 outputs each. Kept as the 128-work-item fallback, not as the generic row: see _GENERIC.
_CLBLAST_DEFAULT = Xgemm(mwg=32, nwg=32, kwg=32, mdimc=16, ndimc=8, vwm=2, vwn=4, sa=1, sb=1)
# Unknown GPUs: the 64 x 64 tile of _CLBLAST_64 with 8 x 8 work-items, 8 x 8 outputs each (as several of
# CLBlast's Kepler and AMD entries): more work per work-item than _CLBLAST_DEFAULT, which ran at under half its
# speed with PoCL's GPU flavour (the one GPU-type device here that takes 64 work-items; rusticl allows 32 and
# gets GPU_FALLBACK). Figures: the commit message.
_GENERIC = Xgemm(mwg=64, nwg=64, kwg=32, mdimc=8, ndimc=8, vwm=4, vwn=4, sa=1, sb=1)
# CLBlast's ARM Mali default: 32 x 64 (ours) tiles, 128 work-items, 4 x 4 outputs each.
_CLBLAST_MALI = Xgemm(mwg=32, nwg=64, kwg=32, mdimc=8, ndimc=16, vwm=2, vwn=4, sa=1, sb=1)
# CLBlast's Qualcomm Adreno default: 32 x 32 tiles, 64 work-items, C vectors of 4.
_CLBLAST_ADRENO = Xgemm(mwg=32, nwg=32, kwg=32, mdimc=8, ndimc=8, vwm=1, vwn=4, sa=1, sb=1)
# CLBlast's XgemmDirect default (its kernel for small problems): 32 x 32 tiles, 8 x 8 work-items, scalars.
_CLBLAST_DIRECT = Xgemm(mwg=32, nwg=32, kwg=32, mdimc=8, ndimc=8, vwm=1, vwn=1, sa=1, sb=1)
# Not CLBlast's (it pads every side to its tile): the direct kernel's 64 work-items and 4 x 4 outputs each,
# reshaped to a 16-wide side, for GEMMs with up to 16 rows (columns).
_NARROW_M = Xgemm(mwg=16, nwg=64, kwg=32, mdimc=4, ndimc=16, vwm=1, vwn=4, sa=1, sb=1)
_NARROW_N = Xgemm(mwg=64, nwg=16, kwg=32, mdimc=16, ndimc=4, vwm=4, vwn=4, sa=1, sb=1)

# THE GPU table: the vendor class (gpu_class) -> its rows. Split-k's groups per compute unit: NVIDIA SMs and
# AMD CUs hold many 128-work-item groups at once, Apple's and Mali's cores several; Intel reports execution
# units (hundreds on a discrete card), so one group each is plenty; Adreno reports one or two very wide CUs.
GPU_TABLE: dict[str, GpuRows] = {
    "nvidia": GpuRows(_CLBLAST_64, _CLBLAST_DIRECT, _NARROW_M, _NARROW_N, SplitK(groups_per_cu=4)),
    "amd": GpuRows(_CLBLAST_64, _CLBLAST_DIRECT, _NARROW_M, _NARROW_N, SplitK(groups_per_cu=4)),
    "intel": GpuRows(_CLBLAST_64, _CLBLAST_DIRECT, _NARROW_M, _NARROW_N, SplitK(groups_per_cu=1)),
    # Apple: no CLBlast entry; the 64 x 64 row fits its 32 KiB of threadgroup memory and 32-wide SIMD groups.
    "apple": GpuRows(_CLBLAST_64, _CLBLAST_DIRECT, _NARROW_M, _NARROW_N, SplitK(groups_per_cu=4)),
    "mobile": GpuRows(_CLBLAST_MALI, _CLBLAST_ADRENO, _NARROW_M, _NARROW_N, SplitK(groups_per_cu=4)),
    "generic": GpuRows(_GENERIC, _CLBLAST_DIRECT, _NARROW_M, _NARROW_N, SplitK(groups_per_cu=2)),
}
GPU_CLASSES = tuple(GPU_TABLE)
# Work-group sizes below a row's threads (rusticl reports CL_KERNEL_WORK_GROUP_SIZE 32 for every kernel;
# register-hungry builds may allow less than the device's maximum): the first of these that fits, largest
# first; none fitting: the naive kernel. The 32 and 16 rows keep 32 outputs per work-item.
GPU_FALLBACK: tuple[Xgemm, ...] = (
    _CLBLAST_DEFAULT,
    _CLBLAST_DIRECT,
    Xgemm(mwg=32, nwg=32, kwg=16, mdimc=4, ndimc=8, vwm=1, vwn=2, sa=1, sb=1),
    Xgemm(mwg=16, nwg=32, kwg=16, mdimc=4, ndimc=4, vwm=1, vwn=4, sa=1, sb=1),
)
# The limits a device object that states none is assumed to have: the strict ones of common GPUs.
ASSUMED_MAX_THREADS = 256
ASSUMED_LOCAL_BYTES = 32 * 1024
ASSUMED_COMPUTE_UNITS = 16  # a GPU given as a type string only

# Vendor class by words in the device's vendor string, then its name (rusticl and other Mesa drivers report
# "Mesa/X.org" as the vendor and the hardware in the name).
_CLASS_WORDS = (
    ("nvidia", r"\bnvidia\b|\bgeforce\b|\bquadro\b|\btesla\b"),
    ("amd", r"\bamd\b|advanced micro devices|\bradeon\b|\bgfx\d"),
    ("intel", r"\bintel\b"),
    ("apple", r"\bapple\b"),
    ("mobile", r"\barm\b|\bmali\b|\bqualcomm\b|\badreno\b"),
)

# The previous GPU kernel (gemm_tiled), kept so benchmarks/gemm.py --kernel tiled can compare: a small tile
# when either side is thin, so fewer of its elements are padding.
GPU_SMALL_SIDE = 32
GPU_SMALL_TILE = {"TSM": 32, "TSN": 32, "TSK": 16, "WPTM": 2, "WPTN": 2}
GPU_TILE = {"TSM": 64, "TSN": 64, "TSK": 16, "WPTM": 4, "WPTN": 4}

# What gemm_config returns, by variant:
# "naive": one work-item per element (tiny problems, k == 0).
# "cpu": MR x (NR * PANELS) register tiles; keys MR, NR, UNROLL, PANELS (NR-wide blocks per tile, 2 only with B
#   packed), local (work-group size), band (tile rows walked together, column by column, so neighbouring
#   work-items share a B panel), pack_a / pack_b (copy the operand into panels first; a transposed operand is
#   always packed), strip (a work-item per column of tiles packs its own B panel: no separate packing pass),
#   swap (compute C^T = op(B)^T op(A)^T so the smaller operand is the packed one).
# "xgemm": the GPU kernel (gemm_xgemm.h), keys MWG, NWG, KWG, MDIMC, NDIMC, VWM, VWN, SA, SB from GPU_TABLE.
# "tiled": the previous GPU kernel, only when asked for (tiled_config); keys TSM, TSN, TSK, WPTM, WPTN.
# An implicit B (a convolution's columns read from the image) is only read by the "cpu" variant, packed and
# unswapped, so it gets that variant on every device: its kernels are plain OpenCL, and whether an implicit B
# pays off on a device is the caller's choice.
VARIANTS = ("naive", "cpu", "xgemm", "tiled")


def flavour_of(device: Any) -> str:
    """The kernel flavour ("cpu" or "gpu") of a Device, of a traits object (its .flavour, else its OpenCL
    .type), or the string itself."""
    if isinstance(device, str):
        return device
    flavour = getattr(device, "flavour", None)
    return flavour if flavour is not None else ("cpu" if device.type == "cpu" else "gpu")


def up(x: int, multiple: int) -> int:
    """x rounded up to a multiple."""
    return -(-x // multiple) * multiple


def gemm_config(device: Any, m: int, n: int, k: int, trans_a: bool, trans_b: bool,
                implicit_b: bool = False) -> dict:
    """Kernel variant and tile defines for one GEMM shape on one device (the autotuner's hook; see VARIANTS)."""
    if not implicit_b and (k == 0 or m * n * k <= NAIVE_MAX_FLOPS):
        return {"variant": "naive"}
    if flavour_of(device) == "cpu" or implicit_b:
        return _cpu_config(cpu_traits(device), m, n, k, trans_a, trans_b, implicit_b)
    max_threads, local_bytes, _ = gpu_limits(device)
    row = gpu_row(device, m, n)
    if row.threads > max_threads or row.local_bytes > local_bytes:
        return xgemm_fallback(device, max_threads)
    return {"variant": "xgemm", **row.defines()}


def gpu_class(vendor: str, name: str = "", device_type: str = "gpu") -> str:
    """The GPU_TABLE class of a device from its OpenCL vendor and name strings; "generic" for anything else,
    and for any device that is not a GPU (a CPU run with GPU kernels gets no GPU vendor's tiles)."""
    if device_type != "gpu":
        return "generic"
    for text in (vendor.lower(), name.lower()):
        for cls, words in _CLASS_WORDS:
            if re.search(words, text):
                return cls
    return "generic"


def class_of(device: Any) -> str:
    """gpu_class of a Device (or anything with .info.vendor / .name / .type); "generic" for a type string."""
    info = getattr(device, "info", None)
    if info is None:
        return "generic"
    return gpu_class(info.vendor, info.name, info.type)


def gpu_limits(device: Any) -> tuple[int, int, int]:
    """(work-items per group, __local bytes, compute units) a device states, else the ASSUMED_* values."""
    info = getattr(device, "info", None)
    if info is None:
        return ASSUMED_MAX_THREADS, ASSUMED_LOCAL_BYTES, ASSUMED_COMPUTE_UNITS
    return info.max_work_group_size, info.local_mem_bytes, max(1, info.compute_units)


def gpu_shape(m: int, n: int) -> str:
    """Which of a class's rows (GPU_SHAPES) a GEMM with C of m x n gets."""
    if m <= NARROW_SIDE and n > SMALL_SIDE:
        return "narrow_m"
    if n <= NARROW_SIDE and m > SMALL_SIDE:
        return "narrow_n"
    if min(m, n) <= SMALL_SIDE or m * n < SMALL_MAX_OUTPUTS:
        return "small"
    return "large"


def gpu_row(device: Any, m: int, n: int) -> Xgemm:
    """The GPU_TABLE row of this device's class for C of m x n (before any work-group size fallback)."""
    return getattr(GPU_TABLE[class_of(device)], gpu_shape(m, n))


def xgemm_fallback(device: Any, max_threads: int) -> dict:
    """The config for a device or kernel build that allows only max_threads work-items per group: the first
    GPU_FALLBACK row that fits, else the naive kernel."""
    _, local_bytes, _ = gpu_limits(device)
    for row in GPU_FALLBACK:
        if row.threads <= max_threads and row.local_bytes <= local_bytes:
            return {"variant": "xgemm", **row.defines()}
    return {"variant": "naive"}


def tiled_config(m: int, n: int) -> dict:
    """The previous GPU kernel's config (gemm_tiled), for comparisons: gemm_config never returns it."""
    return {"variant": "tiled", **(GPU_SMALL_TILE if min(m, n) <= GPU_SMALL_SIDE else GPU_TILE)}


def cpu_traits(device: Any) -> CpuTraits:
    """The CpuTraits of a CPU-flavoured device with a .cl_device (read once), else ASSUMED_CPU."""
    cl_device = getattr(device, "cl_device", None)
    # A GPU-flavoured device runs the CPU kernels only for an implicit B: its vector width is no CPU's.
    if cl_device is None or flavour_of(device) != "cpu":
        return ASSUMED_CPU
    try:
        return _traits[cl_device]
    except KeyError:
        pass
    except TypeError:  # an unhashable stand-in (a test's fake device): read it each time
        return _read_traits(cl_device)
    traits = _traits[cl_device] = _read_traits(cl_device)
    return traits


_traits: dict[Any, CpuTraits] = {}


def _read_traits(cl_device: Any) -> CpuTraits:
    width = max(1, int(cl_device.native_vector_width_float))
    name = cl_device.name.strip()
    for prefix in _POCL_PREFIXES:
        for cpu, cpu_width in POCL_CPU_WIDTHS.items():
            if name.startswith(f"{prefix}{cpu}-"):
                width = min(width, cpu_width)
    return CpuTraits(vector_width=width, registers=CPU_REGISTERS_WIDE if width >= 16 else CPU_REGISTERS,
                     compute_units=max(1, int(cl_device.max_compute_units)),
                     cache_bytes=int(cl_device.global_mem_cache_size))


def cpu_tile(device: Any) -> CpuTile:
    """The CPU_TILES row for a device (see cpu_traits): the widest that its registers hold."""
    traits = device if isinstance(device, CpuTraits) else cpu_traits(device)
    for width, tile in CPU_TILES:
        if width <= traits.vector_width and tile.registers(traits.vector_width) <= traits.registers:
            return tile
    return CPU_TILES[-1][1]


def _cpu_config(traits: CpuTraits, m: int, n: int, k: int, trans_a: bool, trans_b: bool, implicit_b: bool) -> dict:
    # Cost in multiply-adds: the tiles' padded work plus PACK_COST per element copied into panels: B (k x n)
    # always and A (m x k) when it is transposed; swapped, op(A)^T is the packed side, op(B)^T is read in
    # place when B is stored n x k, and C is stored element by element, transposed.
    tile = cpu_tile(traits)
    mr, nr = tile.mr, tile.nr
    cost = up(m, mr) * up(n, nr) * k + PACK_COST * (k * n + (m * k if trans_a else 0))
    cost_swapped = (up(n, mr) * up(m, nr) * k + PACK_COST * (m * k + (0 if trans_b else k * n))
                    + PACK_COST * m * n)
    swap = cost_swapped < cost and not implicit_b
    km, kn = (n, m) if swap else (m, n)  # the problem the kernel runs
    # The B side of the problem the kernel runs (op(A)^T when swapped) is read in place when it needs no
    # transposing and stays in L2.
    kernel_trans_b = (not trans_a) if swap else trans_b
    pack_b = bool(kernel_trans_b) or k * kn * 4 > CPU_DIRECT_B_BYTES or implicit_b
    band = max(1, min(BAND_BYTES, traits.cache_bytes // BAND_CACHE_SHARE) // (mr * k * 4))
    strip = (pack_b and up(km, mr) // mr <= STRIP_MAX_TILE_ROWS
             and up(kn, tile.columns) // tile.columns >= STRIP_MIN_TILE_COLUMNS_PER_CU * traits.compute_units
             and k * tile.columns * 4 <= STRIP_MAX_PANEL_BYTES)
    # The row's blocks per tile where B is packed and has that many panels: a 16-column problem would
    # compute a discarded second block.
    panels = tile.panels if up(kn, nr) // nr >= tile.panels else 1
    return {"variant": "cpu", "MR": mr, "NR": nr, "UNROLL": CPU_UNROLL, "PANELS": panels, "local": CPU_WG,
            "band": band, "pack_a": False, "pack_b": pack_b, "swap": swap, "strip": strip}


def k_splits(device: Any, m: int, n: int, k: int) -> int:
    """Into how many slices of k // splits a thin GEMM (few tiles, long k) is cut, run side by side and summed
    (1: none). On CPUs the slices divide k; on GPUs the rest, k % splits, is one more short slice."""
    if flavour_of(device) != "cpu":
        return _gpu_k_splits(device, m, n, k)
    if k < SPLIT_K_MIN_K:
        return 1
    traits = cpu_traits(device)
    tile = cpu_tile(traits)
    wide = tile.columns  # either orientation
    tiles = min(-(-m // tile.mr) * -(-n // wide), -(-n // tile.mr) * -(-m // wide))
    if tiles >= SPLIT_K_MAX_TILES_PER_CU * traits.compute_units:
        return 1
    want = min(-(-SPLIT_K_WORK_ITEMS_PER_CU * traits.compute_units // tiles), k // SPLIT_K_MIN_SLICE)
    return next((s for s in range(want, 1, -1) if k % s == 0), 1)


def _gpu_k_splits(device: Any, m: int, n: int, k: int) -> int:
    # as many slices as bring the GEMM's work-groups up to the class's target for the device, each at least
    # min_slice long; none when the tiles alone reach half the target
    rule = GPU_TABLE[class_of(device)].split_k
    if k < rule.min_k:
        return 1
    row = gpu_row(device, m, n)
    tiles = -(-m // row.mwg) * -(-n // row.nwg)
    target = rule.groups_per_cu * gpu_limits(device)[2]
    if 2 * tiles > target:
        return 1
    splits = min(-(-target // tiles), k // rule.min_slice)
    return splits if splits >= 2 else 1
