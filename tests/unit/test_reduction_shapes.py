"""The reduction and launch-shape tables of batch_norm, the losses and the elementwise ops, asked without a
device: which layouts a shape gets, that GPU launches stay within the strict limits, and the int32 checks."""

import math
from types import SimpleNamespace

import numpy as np
import pytest

from hetero.limits import STRICT
from hetero.ops import accumulate
from hetero.ops import batch_norm as bn
from hetero.ops import softmax as sm

STRICT_GROUP, STRICT_Z, STRICT_GROUPS_YZ = 256, 64, 65535
H200_CUS = 132


# --- batch_norm: chunks per channel ----------------------------------------------------------------------

def test_cpu_flavour_keeps_one_group_per_channel():
    assert bn.reduce_split("cpu", 3, 10**7, 64) == bn.ReduceSplit(1, 10**7)
    assert bn.reduce_split(SimpleNamespace(flavour="cpu"), 1, 10**8, 2) == (1, 10**8)
    assert bn.reduce_split(SimpleNamespace(flavour=None, type="cpu"), 1, 10**8, 2).splits == 1


@pytest.mark.parametrize("channels,per_channel,cus,splits", [
    (64, 256 * 56 * 56, H200_CUS, 9),  # resnet's first BN at batch 256: 64 groups alone leave most SMs idle
    (512, 256 * 7 * 7, H200_CUS, 2),  # a late BN: 512 channels nearly fill the GPU already
    (2048, 256 * 7 * 7, H200_CUS, 1),
    (1, 10**8, H200_CUS, bn.GPU_MAX_SPLITS),  # one channel: capped (its merge is one work-item)
    (3, 2 * bn.GPU_MIN_CHUNK, H200_CUS, 2),  # capped by the values: chunks of at least GPU_MIN_CHUNK
    (3, bn.GPU_MIN_CHUNK, H200_CUS, 1),
    (64, 256 * 56 * 56, 2, 1),  # two compute units: channels fill them
    (3, 10**6, 2, 3),
])
def test_gpu_splits(channels, per_channel, cus, splits):
    got = bn.reduce_split("gpu", channels, per_channel, cus)
    assert got.splits == splits
    assert (got.splits - 1) * got.chunk < per_channel <= got.splits * got.chunk  # no empty chunk


def test_gpu_chunks_cover_every_value_once():
    rng = np.random.default_rng(7)
    for _ in range(300):
        c, m, cus = int(rng.integers(1, 600)), int(rng.integers(1, 10**7)), int(rng.integers(1, 300))
        got = bn.reduce_split("gpu", c, m, cus)
        assert 1 <= got.splits <= bn.GPU_MAX_SPLITS
        assert (got.splits - 1) * got.chunk < m <= got.splits * got.chunk, (c, m, cus, got)
        assert got.splits == 1 or got.chunk >= bn.GPU_MIN_CHUNK


# --- batch_norm: the GPU elementwise grid ----------------------------------------------------------------

def _within_strict(glob, local, max_group=STRICT_GROUP, max_local=(256, 256, 64)):
    assert math.prod(local) <= max_group, local
    assert all(lc <= most for lc, most in zip(local, max_local)), local
    assert local[2] <= STRICT_Z, local
    assert all(g % lc == 0 for g, lc in zip(glob, local))
    assert all(g // lc <= STRICT_GROUPS_YZ for g, lc in zip(glob[1:], local[1:])), (glob, local)


@pytest.mark.parametrize("shape,local", [
    ((256, 1), (1, 1, 64)),  # were (1, 1, 256): NVIDIA's CL_INVALID_WORK_ITEM_SIZE
    ((256, 2), (1, 2, 64)),
    ((65, 1), (1, 1, 64)),
    ((300, 5), (1, 8, 32)),
    ((8, 64, 56, 56), (256, 1, 1)),
    ((8, 64, 7, 7), (64, 4, 1)),
    ((2, 3, 17, 19), (256, 1, 1)),
])
def test_gpu_grid_local_sizes(shape, local):
    n, c, s = shape[0], shape[1], math.prod(shape[2:])
    glob, got = bn.gpu_grid(n, c, s, STRICT_GROUP, STRICT.max_work_item_sizes)
    assert got == local
    _within_strict(glob, got)
    covered = [g >= v for g, v in zip(glob, (s, c, n))]
    assert all(covered)


@pytest.mark.parametrize("shape", [(10**7, 3), (3, 10**6), (2**20, 2**10), (70000, 1, 2, 2), (1, 2**21, 1, 1)])
def test_gpu_grid_caps_groups_along_channels_and_images(shape):
    n, c, s = shape[0], shape[1], math.prod(shape[2:])
    glob, local = bn.gpu_grid(n, c, s, STRICT_GROUP, STRICT.max_work_item_sizes)
    _within_strict(glob, local)
    assert glob[0] >= s  # the spatial axis is never capped: the kernels loop only over channels and images


@pytest.mark.parametrize("max_group,max_local", [(32, (32, 32, 32)), (1024, (1024, 1024, 64)), (128, (48, 48, 4)),
                                                 (1, (1, 1, 1))])
def test_gpu_grid_keeps_to_what_the_device_allows(max_group, max_local):
    """rusticl reports CL_KERNEL_WORK_GROUP_SIZE 32; a device may allow less than 64 in z, or odd sizes."""
    for shape in [(256, 1), (256, 2), (65, 1), (8, 64, 7, 7), (3, 5, 1000)]:
        n, c, s = shape[0], shape[1], math.prod(shape[2:])
        glob, local = bn.gpu_grid(n, c, s, min(max_group, STRICT_GROUP), max_local)
        _within_strict(glob, local, min(max_group, STRICT_GROUP), max_local)
        assert all(lc & (lc - 1) == 0 for lc in local)


# --- batch_norm: int32 sizes -------------------------------------------------------------------------------

def test_batch_norm_sizes_past_int32_in_total_are_supported():
    bn.check_sizes("batch_norm", (1024, 64, 224, 224))  # 3.3e9 values: offsets are size_t
    bn.check_sizes("batch_norm", (2**18, 2**6, 2**8))  # 2^32 values


@pytest.mark.parametrize("shape,what", [((2**16, 2**16), r"rows \(N\*C\)"),
                                        ((2**16, 1, 2**15), r"values per channel \(N\*S\)"),
                                        ((1, 2**10, 2**21), r"values per image \(C\*S\)")])
def test_batch_norm_refuses_int32_overflow_naming_op_shape_and_limit(shape, what):
    with pytest.raises(ValueError, match=rf"batch_norm: input \({shape[0]}, .*\) has \d+ {what}, more than the "
                                         rf"{bn.INT_INDEX_MAX} \(2\^31 - 1 - 2\^24\)"):
        bn.check_sizes("batch_norm", shape)


# --- the losses ----------------------------------------------------------------------------------------

def test_loss_layout():
    assert sm.loss_layout("cpu", 131072, 256, H200_CUS) == sm.LossLayout(False, 1)
    assert sm.loss_layout(SimpleNamespace(flavour="gpu"), 64, 256, H200_CUS) == sm.LossLayout(True, 1)
    assert sm.loss_layout("gpu", 1024, 256, H200_CUS) == (True, 4)  # a row per work-item first
    assert sm.loss_layout("gpu", 131072, 256, H200_CUS) == (True, 512)
    assert sm.loss_layout("gpu", 10**7, 256, H200_CUS) == (True, sm.LOSS_GROUPS_PER_CU * H200_CUS)
    assert sm.loss_layout("gpu", 10**8, 32, 1000) == (True, sm.LOSS_MAX_GROUPS)
    assert sm.loss_layout("gpu", 0, 256, H200_CUS) == (True, 1)


@pytest.mark.parametrize("rows,classes,wg,local", [(64, 10, 256, (16, 16)), (131072, 32000, 256, (256, 1)),
                                                    (10**7, 2, 256, (2, 128)), (5, 1, 32, (1, 32)), (3, 7, 1, (1, 1))])
def test_loss_backward_grid(rows, classes, wg, local):
    glob, got = sm.backward_grid(rows, classes, wg)
    assert got == local and math.prod(got) <= wg
    assert glob[0] >= classes and glob[0] % got[0] == 0 and glob[1] % got[1] == 0
    assert glob[1] // got[1] <= STRICT_GROUPS_YZ
    assert glob[1] >= min(rows, STRICT_GROUPS_YZ * got[1])  # past the cap, rows loop


def test_softmax_row_launches_keep_the_global_size_an_int_id():
    assert sm.row_launches(5, 256) == [(0, 5)] and sm.row_launches(0, 256) == []
    most = (2**31 - 1) // 256
    assert sm.row_launches(2**24, 256) == [(0, most), (most, most), (2 * most, 2**24 - 2 * most)]  # 2^24 rows of 128
    assert sm.row_launches(2**23, 1) == [(0, 2**23)]


def test_softmax_sizes():
    sm.check_softmax_size("softmax", (2**20, 2**12), 1)  # 2^32 elements: offsets are size_t
    sm.check_softmax_size("softmax", (2**12, 2**20, 2), 0)
    with pytest.raises(ValueError, match=r"softmax: input \(4294967296,\) has 4294967296 elements along dim 0"):
        sm.check_softmax_size("softmax", (2**32,), 0)
    with pytest.raises(ValueError, match=r"log_softmax: input \(65536, 2, 65536\) has 4294967296 rows"):
        sm.check_softmax_size("log_softmax", (2**16, 2, 2**16), 1)
    with pytest.raises(ValueError, match=r"cross_entropy: input \(3, 2147483647\) has 2147483647 classes \(C\), more "
                                         rf"than the {sm.INT_INDEX_MAX}"):
        sm.check_size("cross_entropy", "classes (C)", (3, 2**31 - 1), 2**31 - 1)


# --- elementwise: 64-bit indices only where int does not reach ----------------------------------------

def test_elementwise_index_width():
    assert not accumulate.long_index(0) and not accumulate.long_index(2**31 - 1)
    assert accumulate.long_index(2**31) and accumulate.long_index(3 * 2**31)
    scalar, vector = accumulate.index_args(True)
    assert scalar(2**40) == 2**40 and vector(*[2**33] * 8)["s0"] == 2**33  # no silent wrap, also on numpy < 2
    scalar, vector = accumulate.index_args(False)
    assert scalar is np.int32 and vector(*range(8))["s7"] == 7
