"""hetero.ops.gemm.config: the per-device GEMM decision table, asked without a device."""

from types import SimpleNamespace

import pytest

from hetero.ops.gemm import config as cfg
from hetero.ops.gemm import gemm_config, k_splits


@pytest.mark.parametrize("device", ["cpu", "gpu"])
def test_tiny_problems_and_k_zero_run_naive(device):
    assert gemm_config(device, 16, 16, 16, False, False) == {"variant": "naive"}
    assert gemm_config(device, 512, 512, 0, True, False) == {"variant": "naive"}
    assert gemm_config(device, 4, 4, 4, False, False, implicit_b=True)["variant"] == "cpu"  # never naive


def _gpu(vendor: str = "NVIDIA Corporation", name: str = "NVIDIA H200", device_type: str = "gpu",
         max_work_group_size: int = 1024, local_mem_bytes: int = 48 * 1024, compute_units: int = 132):
    """A fake device with what gemm_config reads of a real one."""
    info = SimpleNamespace(vendor=vendor, name=name, type=device_type, max_work_group_size=max_work_group_size,
                           local_mem_bytes=local_mem_bytes, compute_units=compute_units)
    return SimpleNamespace(flavour="gpu", type=device_type, info=info)


def _xgemm(row: cfg.Xgemm) -> dict:
    return {"variant": "xgemm", **row.defines()}


def test_gpu_tiles():
    generic = cfg.GPU_TABLE["generic"]
    assert gemm_config("gpu", 256, 256, 256, False, False) == _xgemm(generic.large)
    assert gemm_config("gpu", 32, 512, 512, False, True) == _xgemm(generic.small)
    assert gemm_config(SimpleNamespace(type="accelerator"), 256, 256, 256, False, False) == _xgemm(generic.large)
    assert gemm_config(_gpu(), 256, 256, 256, True, True) == _xgemm(cfg.GPU_TABLE["nvidia"].large)
    assert gemm_config(_gpu(), 6, 50176, 25, False, False) == _xgemm(cfg.GPU_TABLE["nvidia"].narrow_m)
    # an implicit B is only read by the CPU kernels, which are plain OpenCL
    assert gemm_config("gpu", 64, 4096, 576, False, False, implicit_b=True)["variant"] == "cpu"
    # the previous GPU kernel stays available for comparisons, never chosen by the table
    assert cfg.tiled_config(256, 256) == {"variant": "tiled", **cfg.GPU_TILE}
    assert cfg.tiled_config(32, 512) == {"variant": "tiled", **cfg.GPU_SMALL_TILE}


@pytest.mark.parametrize("vendor,name,device_type,expected", [
    ("NVIDIA Corporation", "NVIDIA H200", "gpu", "nvidia"),
    ("NVIDIA Corporation", "GeForce GTX 1080", "gpu", "nvidia"),
    ("Advanced Micro Devices, Inc.", "gfx90a:sramecc+:xnack-", "gpu", "amd"),
    ("AMD", "AMD Radeon RX 6800 (radeonsi, navi21, LLVM 15.0.6)", "gpu", "amd"),
    ("Mesa/X.org", "AMD Radeon RX 6800 (radeonsi, navi21)", "gpu", "amd"),  # rusticl: the hardware is in the name
    ("Intel(R) Corporation", "Intel(R) UHD Graphics 630", "gpu", "intel"),
    ("Intel(R) Corporation", "Intel(R) Arc(TM) A770 Graphics", "gpu", "intel"),
    ("Apple", "Apple M1", "gpu", "apple"),
    ("ARM", "Mali-G78", "gpu", "mobile"),
    ("QUALCOMM", "QUALCOMM Adreno(TM) 740", "gpu", "mobile"),
    ("Mesa/X.org", "llvmpipe (LLVM 15.0.6, 256 bits)", "gpu", "generic"),
    ("Imagination Technologies", "PowerVR B-Series BXE-4-32", "gpu", "generic"),
    # not a GPU: a CPU run with the GPU kernels gets no GPU vendor's tiles
    ("GenuineIntel", "pthread-skylake-avx512-Intel(R) Xeon(R) Processor", "cpu", "generic"),
    ("Intel(R) Corporation", "Intel(R) Core(TM) i7-8700 CPU", "cpu", "generic"),
    ("AuthenticAMD", "pthread-znver3-AMD Ryzen 9 5950X", "cpu", "generic"),
])
def test_gpu_class(vendor, name, device_type, expected):
    assert cfg.gpu_class(vendor, name, device_type) == expected
    assert cfg.class_of(_gpu(vendor, name, device_type)) == expected


def test_gpu_class_of_a_type_string_is_generic():
    assert cfg.class_of("gpu") == "generic"
    assert cfg.class_of(SimpleNamespace(type="gpu")) == "generic"


def _all_rows() -> list[cfg.Xgemm]:
    return [getattr(rows, shape) for rows in cfg.GPU_TABLE.values() for shape in cfg.GPU_SHAPES] + list(
        cfg.GPU_FALLBACK)


@pytest.mark.parametrize("row", sorted(set(_all_rows()), key=repr), ids=repr)
def test_every_row_builds_and_fits_the_strict_limits(row):
    assert row.problems() == []
    assert row.threads <= 256 and max(row.mdimc, row.ndimc) <= 64  # work-items per group, per dim
    assert row.local_bytes <= 32 * 1024
    # the kernel's exact __local use, the bound above with padding on one operand each at most
    assert 4 * row.kwg * (row.mwg * row.sa + (row.nwg + 1) * row.sb) <= row.local_bytes


def test_a_bad_row_says_what_is_wrong():
    assert cfg.Xgemm(64, 64, 32, 8, 16, 3, 4, 1, 1).problems()  # VWM 3
    assert "MWG must be a multiple" in cfg.Xgemm(64, 64, 32, 16, 16, 8, 4, 1, 1).problems()[0]  # 16 * 8 > 64
    assert any("KWG" in p for p in cfg.Xgemm(64, 64, 4, 8, 8, 8, 1, 1, 1).problems())


@pytest.mark.parametrize("m,n,expected", [
    (6, 50176, "narrow_m"),  # LeNet-5's first convolution (6 channels)
    (50176, 10, "narrow_n"),  # a 10-class classifier's weight gradient at a large batch
    (16, 16, "small"), (32, 512, "small"), (512, 32, "small"), (100, 100, "small"),  # under four 64 x 64 tiles
    (17, 512, "small"), (128, 128, "large"), (33, 512, "large"), (2048, 2048, "large"),
])
def test_gpu_shapes(m, n, expected):
    assert cfg.gpu_shape(m, n) == expected


def test_rows_that_do_not_fit_the_device_fall_back():
    nvidia = cfg.GPU_TABLE["nvidia"].large
    assert gemm_config(_gpu(max_work_group_size=64), 512, 512, 512, False, False) == _xgemm(cfg.GPU_FALLBACK[1])
    # rusticl reports 32 work-items for every kernel build: launch_gemm asks the fallback for that limit
    assert cfg.xgemm_fallback(_gpu(), 32) == _xgemm(cfg.GPU_FALLBACK[2])
    assert cfg.xgemm_fallback(_gpu(), 16) == _xgemm(cfg.GPU_FALLBACK[3])
    assert cfg.xgemm_fallback(_gpu(), 15) == {"variant": "naive"}
    # too little __local for the 16.6 KiB of 64 x 64 tiles: the first fallback that fits
    small_local = _gpu(local_mem_bytes=16 * 1024)
    assert nvidia.local_bytes > 16 * 1024
    assert gemm_config(small_local, 512, 512, 512, False, False) == _xgemm(cfg.GPU_FALLBACK[0])


MIB = 1 << 20


def _cpu(name: str = "pthread-skylake-avx512-Intel(R) Xeon(R)", width: int = 16, compute_units: int = 2,
         cache_bytes: int = 32 * MIB):
    """A fake CPU device with what cpu_traits reads of a real one's cl_device."""
    cl_device = SimpleNamespace(name=name, native_vector_width_float=width, max_compute_units=compute_units,
                                global_mem_cache_size=cache_bytes)
    return SimpleNamespace(type="cpu", flavour="cpu", cl_device=cl_device)


AVX512 = _cpu()
AVX2 = _cpu("pthread-haswell-Intel(R) Core(TM) i7-4770", 8, 4, 8 * MIB)
SSE2 = _cpu("pthread-athlon64-AMD Athlon(tm) 64", 4, 1, 1 * MIB)


@pytest.mark.parametrize("device,traits", [
    (AVX512, cfg.CpuTraits(16, 32, 2, 32 * MIB)),
    (AVX2, cfg.CpuTraits(8, 16, 4, 8 * MIB)),
    (SSE2, cfg.CpuTraits(4, 16, 1, 1 * MIB)),
    # PoCL forced to its avx2 / sse2 kernel library on an AVX-512 host reports the host's width
    (_cpu("pthread-haswell-AMD EPYC", 16), cfg.CpuTraits(8, 16, 2, 32 * MIB)),
    (_cpu("pthread-athlon64-AMD EPYC", 16), cfg.CpuTraits(4, 16, 2, 32 * MIB)),
    (_cpu("cpu-haswell-AMD EPYC", 16), cfg.CpuTraits(8, 16, 2, 32 * MIB)),  # PoCL 4's device names
    # any other CPU: what it reports
    (_cpu("pthread-znver3-AMD Ryzen 9 5950X", 8, 16), cfg.CpuTraits(8, 16, 16, 32 * MIB)),
    (_cpu("pthread-cortex-a72-ARM", 4, 4, 1 * MIB), cfg.CpuTraits(4, 16, 4, 1 * MIB)),
    (_cpu("Intel(R) Xeon(R) Gold 6248 CPU", 16, 40, 28 * MIB), cfg.CpuTraits(16, 32, 40, 28 * MIB)),
])
def test_cpu_traits_come_from_the_device(device, traits):
    assert cfg.cpu_traits(device) == traits


def test_cpu_traits_of_a_device_stating_nothing():
    assert cfg.cpu_traits("cpu") == cfg.ASSUMED_CPU
    assert cfg.cpu_traits(SimpleNamespace(type="cpu")) == cfg.ASSUMED_CPU
    # a GPU-flavoured device runs the CPU kernels only for an implicit B: its vector width is no CPU's
    gpu = SimpleNamespace(type="gpu", flavour="gpu", cl_device=AVX2.cl_device)
    assert cfg.cpu_traits(gpu) == cfg.ASSUMED_CPU


@pytest.mark.parametrize("device,tile", [
    (AVX512, cfg.CpuTile(mr=8, nr=16, panels=2)),
    (AVX2, cfg.CpuTile(mr=6, nr=16, panels=1)),
    (SSE2, cfg.CpuTile(mr=6, nr=8, panels=1)),
    (_cpu("pthread-generic", 2), cfg.CPU_TILES[-1][1]),  # narrower than any row: the last one
    ("cpu", cfg.CPU_TILES[0][1]),
])
def test_cpu_tile_by_register_width(device, tile):
    assert cfg.cpu_tile(device) == tile
    c = gemm_config(device, 2048, 2048, 2048, False, False)
    assert (c["MR"], c["NR"], c["PANELS"]) == (tile.mr, tile.nr, tile.panels)


@pytest.mark.parametrize("width,tile", cfg.CPU_TILES, ids=lambda v: repr(v))
def test_every_cpu_tile_fits_its_registers(width, tile):
    registers = cfg.CPU_REGISTERS_WIDE if width >= 16 else cfg.CPU_REGISTERS
    assert tile.registers(width) <= registers
    assert tile.nr in (8, 16) and tile.panels in (1, 2) and 1 <= tile.mr <= 16  # what gemm_tile.h builds
    assert cfg.cpu_tile(cfg.CpuTraits(width, registers, 2, 32 * MIB)) == tile
    # every row's tiles are whole within the conv table's per-image tile width
    from hetero.ops.conv2d import algorithms

    assert algorithms.IMPLICIT_TILE_COLUMNS % tile.columns == 0


def test_the_wide_tile_spills_on_16_registers():
    wide = cfg.CPU_TILES[0][1]
    assert wide.registers(16) <= cfg.CPU_REGISTERS_WIDE
    assert wide.registers(8) > cfg.CPU_REGISTERS  # 32 accumulators of 8 floats: the AVX2 spill


def test_cpu_band_within_the_cache():
    k = 2048
    assert gemm_config(AVX512, 2048, 2048, k, False, False)["band"] == cfg.BAND_BYTES // (8 * k * 4)
    small = _cpu(cache_bytes=4 * MIB)  # the band takes at most a quarter of a small cache
    assert gemm_config(small, 2048, 2048, k, False, False)["band"] == (MIB // (8 * k * 4))


def test_cpu_strips_need_tile_columns_for_every_core():
    assert gemm_config(AVX512, 64, 2048, 576, False, False)["strip"]  # 64 strips of 32 columns for 2 cores
    assert gemm_config(AVX512, 64, 128, 1024, False, False)["strip"]  # 4: two per core
    assert not gemm_config(AVX512, 64, 96, 1024, False, False)["strip"]  # 3 (B packed: over 256 KiB)
    assert not gemm_config(_cpu(compute_units=64), 64, 2048, 576, False, False)["strip"]  # 128 wanted


def test_cpu_k_splits_follow_the_tile_and_the_compute_units():
    assert k_splits(AVX512, 6, 25, 50176) == 64  # one 8 x 32 tile: 64 slices for 2 compute units
    assert k_splits(AVX2, 6, 25, 50176) == 64  # two 6 x 16 tiles: 64 slices for 4 compute units
    assert k_splits(SSE2, 6, 25, 50176) == 8  # four 6 x 8 tiles, one compute unit: 32 items wanted
    assert k_splits(AVX2, 64, 128, 8192) == 1  # 88 tiles: over 16 per compute unit
    assert k_splits(_cpu(compute_units=64), 64, 128, 8192) > 1  # 32 tiles for 64 cores


def test_cpu_large_square():
    assert gemm_config("cpu", 2048, 2048, 2048, False, False) == {
        "variant": "cpu", "MR": 8, "NR": 16, "UNROLL": 1, "PANELS": 2, "local": 16,
        "band": cfg.BAND_BYTES // (8 * 2048 * 4), "pack_a": False, "pack_b": True, "swap": False, "strip": False}


def test_cpu_few_tile_rows_run_as_strips():
    c = gemm_config("cpu", 64, 4096, 576, False, False)  # a 64-channel 3x3 convolution's GEMM
    assert c["strip"] and c["pack_b"] and not c["swap"] and c["PANELS"] == 2
    assert not gemm_config("cpu", 64, 4096, 576 * 16, False, False)["strip"]  # panels past L2


def test_cpu_small_b_read_in_place_and_one_panel():
    c = gemm_config("cpu", 200, 16, 64, False, False)
    assert not c["pack_b"] and c["PANELS"] == 1


def test_cpu_swaps_so_the_smaller_operand_is_packed():
    c = gemm_config("cpu", 64, 576, 25088, False, True)  # a convolution's weight gradient, B = cols^T
    assert c["swap"] and c["pack_b"]
    assert not gemm_config("cpu", 64, 576, 25088, False, True, implicit_b=True)["swap"]


def test_k_splits():
    assert k_splits("cpu", 6, 25, 50176) == 64  # LeNet-5's conv1 weight gradient
    assert k_splits("cpu", 150, 16, 6400) == 5  # 10 tiles: 7 slices wanted, 5 divide k
    assert k_splits("cpu", 6, 25, 2053) == 1  # prime: no equal slices
    assert k_splits("cpu", 6, 25, cfg.SPLIT_K_MIN_K - 1) == 1  # k too short
    assert k_splits("cpu", 64, 128, 8192) == 1  # enough tiles to keep the cores busy


def test_gpu_k_splits():
    # a type string: the generic class (2 groups per compute unit) on ASSUMED_COMPUTE_UNITS (16): 32 groups
    assert k_splits("gpu", 6, 25, 50176) == 32  # LeNet-5's conv1 weight gradient: one 32 x 32 tile
    assert k_splits("gpu", 150, 16, 6400) == 11  # three 64 x 16 tiles: 11 slices (the rest is a twelfth)
    assert k_splits("gpu", 6, 25, 2053) == 8  # k // 256: no slice under min_slice
    assert k_splits("gpu", 64, 128, 8192) == 4  # eight 32 x 32 tiles
    assert k_splits("gpu", 512, 512, 8192) == 1  # 64 tiles: more than half the 32 wanted
    assert k_splits("gpu", 6, 25, cfg.GPU_TABLE["generic"].split_k.min_k - 1) == 1  # k too short
    # an H200 (132 SMs, 4 groups each): as many slices as k allows
    assert k_splits(_gpu(), 6, 25, 50176) == 50176 // 256
    assert k_splits(_gpu(), 512, 512, 8192) == 9  # 64 tiles of the 528 wanted: 9 slices (k allows 32)
    assert k_splits(_gpu(compute_units=8), 512, 512, 8192) == 1
