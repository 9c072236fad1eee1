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


def test_gpu_tiles():
    assert gemm_config("gpu", 256, 256, 256, False, False) == {"variant": "tiled", **cfg.GPU_TILE}
    assert gemm_config("gpu", 32, 512, 512, False, True) == {"variant": "tiled", **cfg.GPU_SMALL_TILE}
    assert gemm_config(SimpleNamespace(type="accelerator"), 256, 256, 256, False, False)["variant"] == "tiled"
    # an implicit B is only read by the CPU kernels, which are plain OpenCL
    assert gemm_config("gpu", 64, 4096, 576, False, False, implicit_b=True)["variant"] == "cpu"


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
    assert k_splits("gpu", 6, 25, 50176) == 1
