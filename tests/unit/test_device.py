"""Device listing, probing, selection and sub-devices on the real OpenCL platforms."""

import importlib
import json

import numpy as np
import pyopencl as cl
import pytest

import hetero
from hetero.errors import DeviceNotFoundError, NoPlatformError

device_mod = importlib.import_module("hetero.device")  # the module; hetero.device is the function


@pytest.fixture
def fresh_listing(monkeypatch, tmp_path):
    """Forget the process-wide listing and use an empty cache dir, so probing happens again."""
    monkeypatch.setenv("HETERO_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(device_mod, "_listing", None)
    return tmp_path


def test_listing_has_every_field(dev):
    info = dev.info
    assert info.id.count(":") == 1
    assert info.type in ("cpu", "gpu", "accelerator", "other")
    assert info.compute_units >= 1 and info.global_mem_bytes > 0 and info.max_work_group_size >= 1
    assert info.opencl_c_version.startswith("OpenCL C")
    assert info.usable and info.reason == ""
    d = info.to_dict()
    for key in ("id", "platform", "name", "vendor", "type", "driver_version", "opencl_c_version", "compute_units",
                "clock_mhz", "global_mem_bytes", "local_mem_bytes", "max_work_group_size", "fp16", "fp64",
                "usable", "reason"):
        assert key in d
    json.dumps(d)


def test_probe_verdict_is_cached_per_device_and_driver(fresh_listing, monkeypatch):
    calls = []
    real = device_mod._probe
    monkeypatch.setattr(device_mod, "_probe", lambda d: calls.append(d.name) or real(d))
    first = hetero.devices()
    assert calls and (fresh_listing / "probe.json").is_file()
    cache = json.loads((fresh_listing / "probe.json").read_text())
    assert len(cache) == len(calls)
    monkeypatch.setattr(device_mod, "_listing", None)
    calls.clear()
    assert [d.usable for d in hetero.devices()] == [d.usable for d in first]
    assert calls == []  # second listing read the verdicts from disk


def test_broken_compiler_is_listed_unusable_and_never_chosen(fresh_listing, monkeypatch):
    monkeypatch.setattr(device_mod, "_probe", lambda d: "kernel build fails: unknown target CPU 'generic'")
    infos = hetero.devices()
    assert infos and all(not d.usable for d in infos)
    assert "unknown target CPU" in infos[0].reason
    with pytest.raises(DeviceNotFoundError, match="unknown target CPU"):
        hetero.device()


def test_no_platform_gives_install_advice(fresh_listing, monkeypatch):
    monkeypatch.setattr(cl, "get_platforms", lambda: [])
    with pytest.raises(NoPlatformError, match="pocl-opencl-icd"):
        hetero.devices()


def test_unknown_spec_lists_usable_devices(dev):
    with pytest.raises(DeviceNotFoundError) as e:
        hetero.device("nope")
    assert "'nope'" in str(e.value) and dev.info.id in str(e.value)


def test_env_var_selects_device(dev, monkeypatch):
    monkeypatch.setenv("HETERO_DEVICE", dev.info.id)
    assert hetero.device() is dev
    assert hetero.device(dev.info.id) is dev  # opened once, then shared


def test_sub_devices_split_a_cpu_and_run_kernels():
    cpus = [d for d in hetero.devices() if d.type == "cpu" and d.usable and d.max_sub_devices >= 2]
    if not cpus:
        pytest.skip("no CPU device that supports equal partitioning")
    halves = hetero.select_devices(f"{cpus[0].id}/2")
    assert [h.id for h in halves] == [f"{cpus[0].id}/2.0", f"{cpus[0].id}/2.1"]
    for k, h in enumerate(halves):
        assert h.cl_device.max_compute_units == cpus[0].compute_units // 2
        t = hetero.tensor(np.arange(5, dtype=np.float32) + k, device=h)
        assert np.array_equal((t * 2.0).numpy(), (np.arange(5) + k) * 2.0)
    with pytest.raises(hetero.HeteroError, match="names 2 sub-devices"):
        hetero.device(f"{cpus[0].id}/2")


def test_select_devices_all_and_lists(dev):
    assert dev in hetero.select_devices("all")
    assert hetero.select_devices(f"{dev.id},{dev.id}") == [dev]


def test_import_touches_no_opencl():
    import subprocess
    import sys

    code = ("import pyopencl as cl\ncalls = []\norig = cl.get_platforms\n"
            "cl.get_platforms = lambda: calls.append(1) or orig()\n"
            "import hetero, hetero.nn.functional\nprint(len(calls))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0"


# ----- the doors: host<->device copies, tracing, kernel launches -----

def test_write_and_read_round_trip_tensors_and_buffers(dev, rng):
    host = rng.standard_normal(37).astype(np.float32)
    t = hetero.empty((37,), device=dev)
    dev.write(t, host, blocking=True)
    assert np.array_equal(dev.read(t, np.empty(37, np.float32)), host)
    buf = cl.Buffer(dev.context, cl.mem_flags.READ_WRITE, host.nbytes)
    dev.write(buf, host[::-1].copy())
    out = np.empty(37, np.float32)
    assert dev.read(buf, out) is out and np.array_equal(out, host[::-1])


def test_non_blocking_write_snapshots_the_array(dev):
    """The caller may change its array as soon as write() returns (snapshot=True, the default)."""
    host = np.arange(1 << 16, dtype=np.float32)
    t = hetero.empty(host.shape, device=dev)
    dev.write(t, host)
    host[:] = -1
    assert np.array_equal(t.numpy(), np.arange(1 << 16, dtype=np.float32))


def test_empty_copies_are_no_ops(dev):
    t = hetero.empty((0, 3), device=dev)
    dev.write(t, np.empty((0, 3), np.float32))
    dev.write(t, np.empty((0, 3), np.float32), blocking=True)
    assert dev.read(t, np.empty((0, 3), np.float32)).shape == (0, 3)
    dev.copy(t, t, 0)


def test_read_async_and_copy(dev, rng):
    host = rng.standard_normal((4, 5)).astype(np.float32)
    src = hetero.tensor(host, device=dev)
    dst = hetero.zeros((4, 5), device=dev)
    dev.copy(dst, src, 2 * 5 * 4)  # the first two rows only
    out = np.full((4, 5), 7.0, np.float32)
    event = dev.read_async(dst, out)
    event.wait()
    assert np.array_equal(out[:2], host[:2]) and not out[2:].any()


def test_keep_holds_events_until_they_complete(dev):
    t = hetero.empty((8,), device=dev)
    for _ in range(3):
        dev.write(t, np.ones(8, np.float32))
    dev.synchronize()
    assert not dev._pending
    done = dev.read_async(t, np.empty(8, np.float32))
    done.wait()
    dev.keep(done)
    dev.keep(dev.read_async(t, np.empty(8, np.float32)))  # the completed event at the front leaves
    assert done not in dev._pending and len(dev._pending) == 1
    dev.synchronize()


def test_tracing_records_launches_host_writes_and_frees(dev):
    kept = hetero.empty((16,), device=dev)
    with dev.tracing() as trace:
        assert dev.trace is trace and dev.pool.trace is trace
        tmp = hetero.full((16,), 2.0, device=dev)
        dev.write(kept, np.ones(16, np.float32))
        ptr = tmp.buffer.int_ptr
        del tmp
    assert dev.trace is None and dev.pool.trace is None
    assert [launch[0].function_name for launch in trace.launches] == ["fill_f32"]
    assert trace.host_written == {kept.buffer.int_ptr}
    assert [b.int_ptr for b in trace.freed] == [ptr], "a buffer freed while tracing is set aside, not reused"
    for buf in trace.freed:
        dev.pool.free(buf)


def test_tracing_refuses_host_reads_and_nesting_and_always_stops(dev):
    t = hetero.zeros((4,), device=dev)
    dev.synchronize()
    before = dev.memory_stats()["bytes_in_use"]
    with pytest.raises(hetero.HeteroError, match="host read"):
        with dev.tracing():
            hetero.full((64,), 1.0, device=dev)  # freed at once: set aside while tracing
            t.numpy()
    assert dev.trace is None and dev.pool.trace is None
    assert dev.memory_stats()["bytes_in_use"] == before, "a failed trace gives back the buffers it set aside"
    with dev.tracing():
        with pytest.raises(hetero.HeteroError, match="already recording"):
            with dev.tracing():
                pass
        assert dev.trace is not None
    assert dev.trace is None


def test_run_memoises_one_typed_kernel_per_defines_and_scalar_types(dev):
    t = hetero.empty((5,), device=dev)
    dev.run("fill.cl", "fill_f32", None, (5,), None, t, np.float32(3), np.int32(5))
    n = len(dev._kernels)
    dev.run("fill.cl", "fill_f32", None, (5,), None, t, np.float32(4), np.int32(5))
    assert len(dev._kernels) == n, "the same kernel, defines and scalar types reuse the kernel object"
    assert np.array_equal(t.numpy(), np.full(5, 4.0, np.float32))
    dev.run("fill.cl", "fill_f32", None, (0,), None, t, np.float32(9), np.int32(0))  # an empty grid: nothing
    assert np.array_equal(t.numpy(), np.full(5, 4.0, np.float32))


def test_work_group_size_is_a_power_of_two_within_the_cap(dev):
    wg = dev.work_group_size("softmax.cl", "softmax_fw_rows", {"OP": 0}, cap=64)
    assert wg & (wg - 1) == 0 and 1 <= wg <= min(64, dev.info.max_work_group_size)
    assert dev.work_group_size("softmax.cl", "softmax_fw_rows", {"OP": 0}, cap=64) == wg



def _real_keys(fresh_listing) -> list[str]:
    hetero.devices()
    device_mod._listing = None  # the fixture's monkeypatch restores it afterwards
    return list(json.loads((fresh_listing / "probe.json").read_text()))


@pytest.mark.parametrize("content", [b"[1, 2]", b'"text"', b"42", b"null", b"\xff\xfe not utf-8", b"{truncated",
                                     b"", "values:3", "values:null", "values:list", "values:dict"])
def test_a_damaged_probe_cache_is_re_probed(fresh_listing, monkeypatch, content):
    if isinstance(content, str):  # the right keys with values of the wrong type
        value = {"3": 3, "null": None, "list": ["x"], "dict": {"a": ""}}[content.split(":")[1]]
        content = json.dumps({k: value for k in _real_keys(fresh_listing)}).encode()
    (fresh_listing / "probe.json").write_bytes(content)
    calls = []
    real = device_mod._probe
    monkeypatch.setattr(device_mod, "_probe", lambda d: calls.append(d.name) or real(d))
    infos = hetero.devices()
    assert calls and infos and any(d.usable for d in infos)
    assert all(isinstance(d.reason, str) for d in infos)
    cache = json.loads((fresh_listing / "probe.json").read_text())
    assert isinstance(cache, dict) and all(isinstance(v, str) for v in cache.values())  # rewritten whole


@pytest.mark.parametrize("specs", ["", " , ", []])
def test_select_devices_refuses_an_empty_spec(specs):
    with pytest.raises(DeviceNotFoundError, match="no device spec given"):
        hetero.select_devices(specs)


def test_kernel_flavour_by_type_and_forced(monkeypatch):
    from hetero.device import FLAVOUR_ENV, kernel_flavour

    monkeypatch.delenv(FLAVOUR_ENV, raising=False)
    assert [kernel_flavour(t) for t in ("cpu", "gpu", "accelerator")] == ["cpu", "gpu", "gpu"]
    assert kernel_flavour("cpu", env="gpu") == "gpu" and kernel_flavour("gpu", env=" CPU ") == "cpu"
    monkeypatch.setenv(FLAVOUR_ENV, "gpu")
    assert kernel_flavour("cpu") == "gpu"
    with pytest.raises(hetero.HeteroError, match=r"HETERO_KERNEL_FLAVOUR='fpga': use one of cpu, gpu"):
        kernel_flavour("cpu", env="fpga")
