"""Program building: -D defines, #error on missing ones, memoisation, the on-disk binary cache."""

import numpy as np
import pytest

import hetero
from hetero import program as programs
from hetero.errors import BuildError


def test_missing_required_define_fails_loudly_with_log(dev):
    with pytest.raises(BuildError) as e:
        dev.program("elementwise.cl", {"BROADCAST": 0})
    err = e.value
    assert "OP must be defined" in err.log
    assert err.device == dev.label and "-DBROADCAST=0" in err.options
    assert "elementwise.cl" in str(err) and "OP must be defined" in str(err)


def test_programs_are_memoised_per_device_and_options(dev):
    a = dev.program("fill.cl")
    assert dev.program("fill.cl") is a
    assert a.kernel("fill_f32") is a.kernel("fill_f32")
    with pytest.raises(KeyError, match="no kernel 'nope'"):
        a.kernel("nope")


def test_unknown_kernel_file_lists_available():
    with pytest.raises(FileNotFoundError, match="elementwise.cl"):
        programs.load_source("nope.cl")


def test_includes_are_inlined_once(tmp_path, monkeypatch):
    (tmp_path / "a.cl").write_text('#include "b.h"\n#include "b.h"\nkernel A\n')
    (tmp_path / "b.h").write_text('#include "c.h"\nheader B\n')
    (tmp_path / "c.h").write_text("header C\n")
    monkeypatch.setattr(programs, "kernel_dir", lambda: tmp_path)
    src = programs.load_source("a.cl")
    assert "#include" not in src
    assert src.count("header B") == 1 and src.count("header C") == 1 and "kernel A" in src


def test_options_are_canonical():
    assert programs.format_options({"B": 2, "A": 1.5, "C": True}) == "-DA=1.5f -DB=2 -DC=1"


def test_binary_cache_is_written_and_reused(dev, tmp_path, monkeypatch):
    monkeypatch.setenv("HETERO_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(programs, "driver_caches_builds", lambda device: False)
    p1 = programs.build(dev.context, dev.cl_device, "fill.cl", "-DX=1", dev.label)
    files = list((tmp_path / "programs").glob("*.bin"))
    assert len(files) == 1
    built = []
    real = programs.cl.Program.build
    monkeypatch.setattr(programs.cl.Program, "build", lambda self, *a, **k: built.append(1) or real(self, *a, **k))
    p2 = programs.build(dev.context, dev.cl_device, "fill.cl", "-DX=1", dev.label)
    assert built == [1]  # built once, from the cached binary
    out = hetero.empty((4,), device=dev)
    dev.launch(p2.kernel("fill_f32"), (4,), None, out, np.float32(7), np.int32(4))
    assert np.array_equal(out.numpy(), np.full(4, 7, np.float32))
    assert p1.options == p2.options


def test_corrupt_cached_binary_is_rebuilt(dev, tmp_path, monkeypatch):
    monkeypatch.setenv("HETERO_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(programs, "driver_caches_builds", lambda device: False)
    programs.build(dev.context, dev.cl_device, "fill.cl", "-DY=1", dev.label)
    (path,) = (tmp_path / "programs").glob("*.bin")
    path.write_bytes(b"garbage")
    prg = programs.build(dev.context, dev.cl_device, "fill.cl", "-DY=1", dev.label)
    assert prg.kernel("fill_f32") is not None
    assert path.read_bytes() != b"garbage"


def test_no_binaries_kept_for_drivers_that_cache_builds(dev, tmp_path, monkeypatch):
    monkeypatch.setenv("HETERO_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(programs, "driver_caches_builds", lambda device: True)
    prg = programs.build(dev.context, dev.cl_device, "fill.cl", "-DZ=1", dev.label)
    out = hetero.empty((3,), device=dev)
    dev.launch(prg.kernel("fill_f32"), (3,), None, out, np.float32(2), np.int32(3))
    assert np.array_equal(out.numpy(), np.full(3, 2, np.float32))
    assert not (tmp_path / "programs").exists()


@pytest.mark.parametrize("platform, env, expected", [
    ("Portable Computing Language", {}, True),
    ("Portable Computing Language", {"POCL_KERNEL_CACHE": "0"}, False),
    ("NVIDIA CUDA", {}, True),
    ("NVIDIA CUDA", {"CUDA_CACHE_DISABLE": "1"}, False),
    ("Intel(R) OpenCL", {}, False),
    ("AMD Accelerated Parallel Processing", {}, False),
])
def test_which_drivers_cache_builds(monkeypatch, platform, env, expected):
    from types import SimpleNamespace

    for name in ("POCL_KERNEL_CACHE", "CUDA_CACHE_DISABLE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    device = SimpleNamespace(platform=SimpleNamespace(name=platform))
    assert programs.driver_caches_builds(device) is expected
