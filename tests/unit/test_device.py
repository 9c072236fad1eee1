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
