"""Launch limits (hetero.limits): the pure checks on fake limits and kernels, then launches on every device."""

import dataclasses
import re

import numpy as np
import pyopencl as cl
import pytest

import hetero
from hetero import limits
from hetero.graph import Plan
from hetero.limits import STRICT, KernelLimits, LaunchLimitError, Limits, check_launch, violations
from hetero.program import kernel_dir

GPU = Limits("a fake GPU", 1024, (1024, 1024, 64), (None, None, None), 48 * 1024)
PLAIN = KernelLimits(work_group_size=1024, local_mem_bytes=0, required=None)


def problems(lim: Limits, kern: KernelLimits, g, local) -> list[str]:
    return [v.problem for v in violations(lim, kern, g, local)]


# ---------------------------------------------------------------- pure checks

def test_a_launch_within_every_limit_passes():
    assert violations(GPU, PLAIN, (4096, 64), (256, 1)) == []
    assert violations(GPU, PLAIN, (7, 5, 3), None) == []
    assert violations(STRICT, PLAIN, (1 << 20, 65535 * 4, 65535 * 2), (16, 4, 2)) == []


def test_local_size_over_the_kernels_work_group_size():
    small = PLAIN._replace(work_group_size=32)  # a register-hungry kernel, or rusticl's figure for every kernel
    (p,) = problems(GPU, small, (256,), (64,))
    assert "64 work-items > 32" in p and "CL_KERNEL_WORK_GROUP_SIZE" in p
    assert problems(GPU, small, (256,), (32,)) == []


def test_strict_caps_work_groups_at_256_and_z_at_64():
    found = problems(STRICT, PLAIN, (512,), (512,))
    assert "local size (512,) = 512 work-items > 256, the most work-items per group" in found
    assert "local size 512 in dim 0 > 256, the most work-items in that dim" in found
    (p,) = problems(STRICT, PLAIN, (4, 4, 128), (1, 1, 128))
    assert "local size 128 in dim 2 > 64" in p
    assert problems(GPU, PLAIN, (4, 4, 128), (1, 1, 64)) == []


def test_global_must_be_a_multiple_of_local():
    (p,) = problems(GPU, PLAIN, (100, 8), (64, 8))
    assert "not a multiple" in p and "dim 0" in p
    v = violations(GPU, PLAIN, (100, 8), (64, 8))[0]
    assert "round the global size up" in v.fix


def test_local_memory_over_the_device():
    kern = PLAIN._replace(local_mem_bytes=40 * 1024)
    assert problems(GPU, kern, (64,), (64,)) == []  # 48 KiB on the fake GPU
    (p,) = problems(STRICT, kern, (64,), (64,))
    assert f"{40 * 1024} bytes of __local memory > {32 * 1024}" in p


def test_int_ids_cap_each_dim_at_2_31_minus_1():
    (p,) = problems(GPU, PLAIN, (2**31,), None)
    assert "2^31 - 1" in p
    assert problems(GPU, PLAIN, (2**31 - 1,), None) == []


def test_required_work_group_size():
    kern = PLAIN._replace(required=(16, 16, 1))
    assert problems(GPU, kern, (64, 64), (16, 16)) == []
    assert "requires (16, 16, 1)" in problems(GPU, kern, (64, 64), (8, 8))[0]
    assert "no local size" in problems(GPU, kern, (64, 64), None)[0]


def test_strict_counts_work_groups_in_dims_1_and_2():
    (p,) = problems(STRICT, PLAIN, (4, 70000), (4, 1))
    assert "70000 work-groups in dim 1 > 65535" in p
    assert problems(STRICT, PLAIN, (4, 70000), (4, 2)) == []  # 35000 groups
    (p,) = problems(STRICT, PLAIN, (8, 8, 70000), None)  # the driver may choose 1 there
    assert "dim 2 > 65535" in p
    assert problems(STRICT, PLAIN, (1 << 24,), None) == []  # dim 0 has no such limit
    assert problems(GPU, PLAIN, (4, 70000), (4, 1)) == []  # unknown on a device: not checked


def test_dimension_counts():
    assert "4 dimensions" in problems(GPU, PLAIN, (1, 1, 1, 1), None)[0]
    assert "2-D local size for a 1-D global" in problems(GPU, PLAIN, (8,), (8, 1))[0]


def test_strict_mode_env(monkeypatch):
    assert limits.strict_mode("1") and not limits.strict_mode("0") and not limits.strict_mode("")
    monkeypatch.setenv(limits.STRICT_ENV, "1")
    assert limits.strict_mode()
    with pytest.raises(hetero.HeteroError, match="HETERO_STRICT_LIMITS='yes'"):
        limits.strict_mode("yes")


# ---------------------------------------------------------------- check_launch on fakes (no device)

class FakeClDevice:
    name = "fake gpu "
    local_mem_size = 32 * 1024
    int_ptr = 12345
    max_work_group_size = 1024
    max_work_item_sizes = [1024, 1024, 64]
    address_bits = 64


class FakeKernel:
    """Answers the work-group queries as a driver would, counting them."""

    function_name = "tile_kernel"

    def __init__(self, wg=1024, local=0, required=(0, 0, 0)):
        self.answers = {"WORK_GROUP_SIZE": wg, "LOCAL_MEM_SIZE": local, "COMPILE_WORK_GROUP_SIZE": required}
        self.queries = 0

    def get_work_group_info(self, param, device):
        self.queries += 1
        names = {getattr(cl.kernel_work_group_info, k): k for k in self.answers}
        return self.answers[names[param]]


class FakeDevice:
    label = "9:9 fake gpu"
    cl_device = FakeClDevice()
    limits = limits.device_limits(FakeClDevice())

    def kernel_origin(self, kernel):
        return "tiles.cl", "-DTILE=32"


def test_check_launch_names_the_kernel_sizes_limit_and_fix():
    with pytest.raises(LaunchLimitError) as e:
        check_launch(FakeDevice(), FakeKernel(wg=128), (1024,), (256,), "Device.launch", strict=False)
    msg = str(e.value)
    assert "Device.launch" in msg and "kernels_cl/tiles.cl:tile_kernel (-DTILE=32)" in msg and "9:9 fake gpu" in msg
    assert "global size (1024,), local size (256,)" in msg and "256 work-items > 128" in msg
    assert "Device.work_group_size" in msg  # what to do


def test_check_launch_queries_a_kernel_once_and_remembers_passed_shapes():
    dev, kern = FakeDevice(), FakeKernel()
    check_launch(dev, kern, (1024,), (256,), "x", strict=False)
    first = kern.queries
    for _ in range(3):
        check_launch(dev, kern, (1024,), (256,), "x", strict=False)
        check_launch(dev, kern, (2048,), None, "x", strict=False)
    assert first == 3 and kern.queries == first


def test_strict_is_checked_on_top_of_the_device():
    dev, kern = FakeDevice(), FakeKernel()
    check_launch(dev, kern, (512,), (512,), "x", strict=False)  # the fake GPU allows 1024
    with pytest.raises(LaunchLimitError, match=r"strict limits \(HETERO_STRICT_LIMITS=1\):\n  - local size \(512,\)"):
        check_launch(dev, kern, (512,), (512,), "x", strict=True)


def test_over_reported_local_memory_is_corrected_by_the_measured_factor(monkeypatch):
    monkeypatch.setitem(limits._local_factors, FakeClDevice.int_ptr, 2.0)  # rusticl's: twice the declared bytes
    check_launch(FakeDevice(), FakeKernel(local=48 * 1024), (64,), (64,), "x", strict=True)  # 24 KiB really
    monkeypatch.setitem(limits._local_factors, FakeClDevice.int_ptr, 1.0)
    with pytest.raises(LaunchLimitError, match="49152 bytes of __local memory > 32768"):
        check_launch(FakeDevice(), FakeKernel(local=48 * 1024), (64,), (64,), "x", strict=False)


def test_int_ids_cap_kernels_without_long_index_only():
    long_ids = PLAIN._replace(int_ids=False)
    assert problems(GPU, long_ids, (2**31,), None) == []
    gpu32 = dataclasses.replace(GPU, max_global_size=2**32 - 1)  # a 32-bit size_t
    assert "the device's size_t" in problems(gpu32, long_ids, (2**32,), None)[0]


def test_kernels_read_their_ids_as_int_unless_built_with_long_index():
    """Why 2^31 - 1 per dim: every id a kernel reads is stored in an int (a few plane counts in size_t), but for
    index_t, which only files switching on LONG_INDEX define (long with -DLONG_INDEX=1, read by the check)."""
    found = {}
    for path in sorted(kernel_dir().glob("*.cl")) + sorted(kernel_dir().glob("*.h")):
        text = path.read_text()
        for m in re.finditer(r"(\w+)\s+(\w+)\s*=\s*get_(?:global|group)_id\(\d\)", text):
            found.setdefault(m.group(1), []).append(f"{path.name}:{m.group(2)}")
            if m.group(1) == "index_t":
                assert re.search(r"#if LONG_INDEX\s+typedef long index_t;", text), path.name
    assert set(found) <= {"int", "size_t", "index_t"}, found
    assert len(found["int"]) > 50


def test_a_long_index_build_lifts_the_int_cap(dev):
    kern = dev.kernel("elementwise.cl", "binary", {"OP": 0, "BROADCAST": 1, "LONG_INDEX": 1})
    assert not limits.kernel_limits(dev, kern).int_ids
    assert limits.kernel_limits(dev, dev.kernel("fill.cl", "fill_f32")).int_ids


# ---------------------------------------------------------------- real launches

def _fill(dev, n):
    return dev.kernel("fill.cl", "fill_f32"), hetero.empty((n,), device=dev)


def test_an_over_limit_launch_raises_naming_the_kernel(dev):
    kern, out = _fill(dev, 8)
    wg = limits.kernel_limits(dev, kern).work_group_size
    with pytest.raises(LaunchLimitError) as e:
        dev.launch(kern, (2 * wg,), (2 * wg,), out, np.float32(1), np.int32(8))
    msg = str(e.value)
    assert "kernels_cl/fill.cl:fill_f32" in msg and dev.label in msg
    assert f"{2 * wg} work-items > {wg}" in msg


def test_strict_mode_catches_512_work_items(dev, monkeypatch):
    kern, out = _fill(dev, 512)
    allowed = dev.local_size_limit("fill.cl", "fill_f32") >= 512
    if allowed:  # PoCL allows 4096: the launch itself works
        dev.launch(kern, (512,), (512,), out, np.float32(3), np.int32(512))
        assert np.array_equal(out.numpy(), np.full(512, 3, np.float32))
    monkeypatch.setattr(dev, "strict_limits", True)
    with pytest.raises(LaunchLimitError) as e:
        dev.launch(kern, (512,), (512,), out, np.float32(3), np.int32(512))
    msg = str(e.value)
    if allowed:
        assert "the strict limits (HETERO_STRICT_LIMITS=1):\n  - local size (512,) = 512 work-items > 256" in msg
        assert "the device's limits" not in msg
    assert dev.local_size_limit("fill.cl", "fill_f32") <= 256
    assert dev.work_group_size("activation.cl", "prelu_bw_weight_partial", {"PRELU": 1}, cap=1024) <= 256


def test_a_plan_checks_its_launches_once_when_bound(dev, monkeypatch):
    kern, out = _fill(dev, 512)
    n = min(512, dev.local_size_limit("fill.cl", "fill_f32"))
    plan = Plan(dev, [])
    plan.launches = [(kern, (n,), (n,), (out.buffer, np.float32(5), np.int32(n)))]
    monkeypatch.setattr(dev, "strict_limits", True)
    if n > 256:
        with pytest.raises(LaunchLimitError, match=r"compiled plan \(Plan._bind\)"):
            plan.replay()
    m = min(n, 256)
    plan.launches = [(kern, (n,), (m,), (out.buffer, np.float32(5), np.int32(n)))]
    monkeypatch.setattr(kern, "_hetero_passed", set(), raising=False)  # as if never launched
    calls = []
    real = limits.violations
    monkeypatch.setattr(limits, "violations", lambda *a: calls.append(a[0].name) or real(*a))
    plan._bound = None
    plan.replay()
    assert calls == [dev.limits.name, STRICT.name]  # checked when bound...
    plan.replay()
    assert len(calls) == 2  # ...and never on replay
    assert np.array_equal(out.numpy()[:n], np.full(n, 5, np.float32))
