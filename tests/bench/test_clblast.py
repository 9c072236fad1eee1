"""The bench's CLBlast peer: CLBlast's SGEMM measured on each OpenCL device beside hetero's (metric "fp32 CLBlast"
under "gemm N") through pyclblast or libclblast's C API, and unsupported with the install hint when neither is
there. Speed is never asserted."""

from __future__ import annotations

import os

import pytest

import hetero
from hetero import bench
from hetero.bench import clblast, device_figures
from hetero.bench.timing import Settings

TINY = Settings(repeats=2, min_time=0.0, copy_bytes=1 << 20, gemm_n=96, op_batch=1, model_batch=2)


@pytest.fixture(scope="module")
def device():
    try:
        devs = hetero.select_devices(os.environ.get("HETERO_TEST_DEVICES") or "all")
    except hetero.HeteroError as e:
        pytest.skip(f"no usable OpenCL device: {e}")
    return devs[0]


def test_without_pyclblast_the_figure_is_unsupported_with_the_install_hint(device, monkeypatch):
    monkeypatch.setattr(clblast, "import_pyclblast", lambda: (None, "pyclblast does not import"))
    monkeypatch.setattr(clblast, "load_library", lambda: (None, "no libclblast found"))
    with pytest.raises(device_figures.Unsupported, match=r"pyclblast does not import; no libclblast found; "
                       r"pip install 'hetero\[clblast\]'.*libclblast-dev"):
        device_figures.gemm_fp32_clblast(device, TINY, {})
    report = bench.run(devices=[device], models=(), references=(), categories=("device",), settings=TINY)
    r = report.get(device.id, "device", "gemm 96", clblast.METRIC)
    assert r.status == "unsupported" and "libclblast-dev" in r.reason
    assert report.get(device.id, "device", "gemm 96", "fp32").ok  # ours is measured all the same
    assert "libclblast-dev" in report.table()


def test_clblast_gemm_is_measured_on_the_device_beside_ours(device):
    pytest.importorskip("pyclblast", reason="pyclblast is not installed (pip install 'hetero[clblast]')")
    out: dict = {}
    device_figures.gemm_fp32_clblast(device, TINY, out)
    value, spread = out[clblast.METRIC]
    assert value > 0 and spread >= 0
    report = bench.run(devices=[device], models=(), references=(), categories=("device",), settings=TINY)
    ours = report.get(device.id, "device", "gemm 96", "fp32")
    theirs = report.get(device.id, "device", "gemm 96", clblast.METRIC)
    assert ours.ok and theirs.ok and theirs.unit == "GFLOP/s"
    rows = [line.split() for line in report.table().splitlines()]
    assert ["device", "gemm", "96", "fp32", "CLBlast", "GFLOP/s"] in [r[:6] for r in rows]


def test_libclblast_through_ctypes_when_pyclblast_is_missing(device, monkeypatch):
    fn, why = clblast.load_library()
    if fn is None:
        pytest.skip(f"libclblast is not installed: {why}")
    monkeypatch.setattr(clblast, "import_pyclblast", lambda: (None, "pyclblast does not import"))
    assert clblast.sgemm(device)[1] == "libclblast"
    out: dict = {}
    device_figures.gemm_fp32_clblast(device, TINY, out)  # checked against numpy before it is timed
    assert out[clblast.METRIC][0] > 0
