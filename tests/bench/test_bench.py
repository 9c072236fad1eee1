"""hetero.bench and `hetero bench`: report schema, JSON/CSV, table, compare, failure isolation, CLI.
Tiny settings throughout; speed is never asserted."""

from __future__ import annotations

import csv
import json
import math
import os
import threading

import pytest

import hetero
from hetero import bench
from hetero.bench import clblast, device_figures
from hetero.bench.report import FIELDS, STATUSES, BenchReport, Result
from hetero.bench.timing import Settings
from hetero.cli import main

TINY = Settings(repeats=2, min_time=0.0, copy_bytes=1 << 20, gemm_n=96, op_batch=1, model_batch=2)


def _first_device():
    try:
        devs = hetero.select_devices(os.environ.get("HETERO_TEST_DEVICES") or "all")
    except hetero.HeteroError as e:
        pytest.skip(f"no usable OpenCL device: {e}")
    if not devs:
        pytest.skip("no usable OpenCL device")
    return devs[0]


def _torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except Exception:
        return False
    return True


@pytest.fixture(scope="module")
def device():
    return _first_device()


@pytest.fixture(scope="module")
def report(device):
    """One small run over every category with both references."""
    seen = []
    rep = bench.run(devices=[device], models=("lenet5",), quick=True, settings=TINY,
                    progress=lambda msg, frac: seen.append((msg, frac)))
    rep.progress_seen = seen
    return rep


def test_json_schema(report, device, tmp_path):
    path = tmp_path / "bench.json"
    report.to_json(path)
    data = json.loads(path.read_text())
    assert data["format_version"] == 1
    assert data["hetero_version"] == hetero.__version__
    assert data["host"]["cpu_count"] >= 1
    ids = [d["id"] for d in data["devices"]]
    assert device.id in ids and "numpy" in ids and "torch-cpu" in ids
    assert all("name" in d for d in data["devices"])
    assert data["results"]
    for r in data["results"]:
        assert set(r) == set(FIELDS)
        assert r["status"] in STATUSES
        assert r["category"] in bench.CATEGORIES
        assert r["device"] in ids
    categories = {(r["device"], r["category"]) for r in data["results"]}
    assert {(device.id, "device"), (device.id, "op"), (device.id, "model"), ("numpy", "op")} <= categories


def test_json_round_trip(report, tmp_path):
    path = tmp_path / "bench.json"
    report.to_json(path)
    loaded = BenchReport.load(path)
    assert loaded.to_dict() == report.to_dict()
    assert loaded.table() == report.table()


def test_load_rejects_other_format(tmp_path):
    path = tmp_path / "old.json"
    path.write_text(json.dumps({"format_version": 99, "results": []}))
    with pytest.raises(ValueError, match="format_version"):
        BenchReport.load(path)


def test_csv(report, tmp_path):
    path = tmp_path / "bench.csv"
    report.to_csv(path)
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert tuple(rows[0]) == FIELDS
    assert len(rows) == len(report.results) + 1
    ok = [r for r in rows[1:] if r[FIELDS.index("status")] == "ok"]
    assert ok and all(float(r[FIELDS.index("value")]) > 0 for r in ok)


def test_values_positive_and_finite(report, device):
    ok = [r for r in report.results if r.status == "ok"]
    assert ok
    for r in ok:
        assert r.value is not None and math.isfinite(r.value) and r.value > 0, r
        assert r.spread is None or (math.isfinite(r.spread) and r.spread >= 0), r
    # every figure the device gives on this PoCL-like setup is measured, except fp16 and the CLBlast peer where
    # CLBlast is not installed (an optional extra), which say why
    mine = [r for r in report.results if r.device == device.id and r.metric != "fp16"]
    assert all(r.status == "ok" or (r.metric == clblast.METRIC and r.status == "unsupported" and r.reason)
               for r in mine), [r for r in mine if r.status != "ok"]
    model = {r.metric for r in mine if r.category == "model"}
    assert {"train", "inference", "peak memory", "first step cold", "first step warm"} <= model


def test_references(report):
    numpy_models = [r for r in report.results if r.device == "numpy" and r.category == "model"]
    assert numpy_models and all(r.status == "unsupported" and r.reason for r in numpy_models)
    assert any(r.device == "numpy" and r.category == "op" and r.status == "ok" for r in report.results)
    if _torch_available():
        torch_ok = {r.category for r in report.results if r.device == "torch-cpu" and r.status == "ok"}
        assert torch_ok == {"device", "op", "model"}


def test_fp16_unsupported_without_extension(report, device):
    r = report.get(device.id, "device", f"gemm {TINY.gemm_n}", "fp16")
    assert r is not None and r.status == "unsupported" and r.value is None
    if not device.info.fp16:
        assert "cl_khr_fp16" in r.reason


def test_fp16_reason_per_device(device):
    class Fake:
        id = "x:0"

        def __init__(self, fp16):
            self.info = type("Info", (), {"fp16": fp16})()

    with pytest.raises(device_figures.Unsupported, match="cl_khr_fp16"):
        device_figures.gemm_fp16(Fake(False), TINY, {})
    with pytest.raises(device_figures.Unsupported, match="float32 only"):
        device_figures.gemm_fp16(Fake(True), TINY, {})


def test_table(report, device):
    text = report.table()
    head = text.splitlines()[0]
    assert device.id in head and "numpy" in head and "ours/numpy" in head
    if _torch_available():
        assert "torch-cpu" in head and "ours/torch-cpu" in head
    assert "*" in text
    assert "lenet5 b2" in text and "conv 3x3" in text and "gemm 96" in text
    assert device.info.name in text  # the legend


def test_progress(report):
    fractions = [f for _, f in report.progress_seen]
    assert fractions[-1] == 1.0 and all(0 <= f <= 1 for f in fractions)
    assert fractions == sorted(fractions)


def test_compare(report):
    baseline = BenchReport.from_dict(report.to_dict())
    target = next(r for r in baseline.results if r.ok and r.unit == "GFLOP/s")
    target.value *= 2  # the baseline was twice as fast: this run is 50% worse
    target.spread = 0.0
    now = next(r for r in report.results if r.key == target.key)
    saved = now.spread
    now.spread = 0.0
    try:
        text = report.compare(baseline)
    finally:
        now.spread = saved
    line = next(ln for ln in text.splitlines() if target.test in ln and target.metric in ln
                and ln.startswith(target.device))
    assert "-50.0% worse" in line
    assert "baseline" in text.splitlines()[0]


def test_compare_lower_is_better():
    old = BenchReport(results=[Result("d", "device", "kernel launch", "round trip", "us", 20.0, 0.0)])
    new = BenchReport(results=[Result("d", "device", "kernel launch", "round trip", "us", 10.0, 0.0)])
    assert "+100.0% better" in new.compare(old)


def _two_devices(device):
    """Two distinct Devices: the halves of the first test device when it splits, else two devices."""
    if device.info.max_sub_devices >= 2:
        return hetero.select_devices(f"{device.id}/2")
    devs = hetero.select_devices("all")
    if len(devs) < 2:
        pytest.skip("needs two devices or a device that splits in two")
    return devs[:2]


def test_failing_figure_is_recorded_and_others_run(device, monkeypatch):
    bad, good = _two_devices(device)
    real = device_figures.memory_bandwidth

    def flaky(dev, settings, out):
        if dev is bad:
            raise RuntimeError("injected failure")
        real(dev, settings, out)

    monkeypatch.setattr(device_figures, "memory_bandwidth", flaky)
    rep = bench.run(devices=[bad, good], models=(), references=(), categories=("device",), settings=TINY)
    mib = TINY.copy_bytes >> 20
    failed = rep.get(bad.id, "device", f"memory copy {mib} MiB", "copy")
    assert failed.status == "error" and "RuntimeError: injected failure" in failed.reason
    assert rep.get(good.id, "device", f"memory copy {mib} MiB", "copy").status == "ok"
    # the failing device's other figures still ran
    assert rep.get(bad.id, "device", "kernel launch", "round trip").status == "ok"
    assert "ERROR" in rep.table()


def test_device_failing_mid_run_is_skipped_and_others_finish(device, monkeypatch):
    bad, good = _two_devices(device)

    def broken(real):
        def fn(dev, settings, out):
            if dev is bad:
                raise RuntimeError("device lost")
            real(dev, settings, out)
        return fn

    for name in ("memory_bandwidth", "transfer", "launch_latency"):
        monkeypatch.setattr(device_figures, name, broken(getattr(device_figures, name)))
    rep = bench.run(devices=[bad, good], models=(), references=(), categories=("device",), settings=TINY)
    mine = [r for r in rep.results if r.device == bad.id]
    assert {r.status for r in mine} == {"error", "skipped"}
    assert all("device lost" in r.reason for r in mine)
    theirs = [r for r in rep.results if r.device == good.id and r.metric != "fp16"]
    assert theirs and all(r.status == "ok" or (r.metric == clblast.METRIC and r.status == "unsupported")
                          for r in theirs)


def test_bad_spec_is_recorded(device):
    rep = bench.run(devices=f"{device.id},no-such-device-xyz", models=(), references=(),
                    categories=("device",), settings=TINY)
    assert rep.get("no-such-device-xyz", "device", "open", "open").status == "error"
    assert any(r.device == device.id and r.status == "ok" for r in rep.results)


def test_cancel_skips_the_rest(device):
    cancel = threading.Event()
    cancel.set()
    rep = bench.run(devices=[device], models=(), references=("numpy",), categories=("device",), settings=TINY,
                    cancel=cancel)
    assert rep.results and all(r.status == "skipped" and r.reason == "cancelled" for r in rep.results)


def test_unknown_model_and_category(device):
    with pytest.raises(ValueError, match="unknown model"):
        bench.run(devices=[device], models=("nope",))
    with pytest.raises(ValueError, match="unknown categories"):
        bench.run(devices=[device], categories=("gpu",))


def test_cli_parses_flags():
    from hetero.cli import build_parser

    args = build_parser().parse_args(["bench", "--devices", "all,cpu/2", "--models", "lenet5", "--batch-size",
                                      "4", "--quick", "--json", "a.json", "--csv", "a.csv", "--compare", "b.json"])
    assert (args.devices, args.models, args.batch_size, args.quick) == ("all,cpu/2", "lenet5", 4, True)
    assert (args.json, args.csv, args.compare) == ("a.json", "a.csv", "b.json")


def test_cli_writes_files_and_compares(device, tmp_path, capsys):
    js, cs = tmp_path / "run.json", tmp_path / "run.csv"
    argv = ["bench", "--devices", device.id, "--models", "none", "--only", "device", "--references", "numpy",
            "--quick"]
    assert main(argv + ["--json", str(js), "--csv", str(cs)]) == 0
    out = capsys.readouterr().out
    assert device.id in out.splitlines()[0] and "numpy" in out.splitlines()[0]
    data = json.loads(js.read_text())
    assert data["format_version"] == 1 and data["settings"]["quick"] is True
    assert cs.read_text().splitlines()[0] == ",".join(FIELDS)
    assert main(argv + ["--compare", str(js)]) == 0
    out = capsys.readouterr().out
    assert f"change against {js}" in out and "baseline" in out


def test_run_in_worker_thread_and_cancel_midway(device):
    """As the GUI does: run() in a worker thread, cancelled from another after the first figure."""
    cancel = threading.Event()
    box = {}

    def progress(message, fraction):
        if fraction > 0:
            cancel.set()

    worker = threading.Thread(target=lambda: box.setdefault("report", bench.run(
        devices=[device], models=(), references=("numpy",), categories=("device",), settings=TINY,
        progress=progress, cancel=cancel)))
    worker.start()
    worker.join(timeout=120)
    rep = box["report"]
    statuses = [r.status for r in rep.results]
    assert statuses[0] == "ok" and statuses[-1] == "skipped"
    assert {r.reason for r in rep.results if r.status == "skipped"} == {"cancelled"}


# ----- issue 15: every argument is checked before anything is measured -----


@pytest.mark.parametrize("args, says", [
    (["--devices", "nonsense"], "--devices nonsense"),
    (["--devices", ""], "--devices is empty"),
    (["--devices", " , "], "--devices is empty"),
    (["--models", "nonsense"], "--models: unknown 'nonsense'"),
    (["--only", "nonsense"], "--only: unknown 'nonsense'"),
    (["--only", "none"], "--only: name at least one"),
    (["--references", "nonsense"], "--references: unknown 'nonsense'"),
    (["--compare", "/nonexistent.json"], "--compare /nonexistent.json: cannot read it"),
    (["--json", "/nonexistent_dir/x.json"], "does not exist"),
    (["--batch-size", "0"], "--batch-size must be positive"),
])
def test_bad_arguments_are_refused_before_measuring(monkeypatch, capsys, args, says):
    def measured(*a, **kw):
        raise AssertionError("bench.run was called")

    monkeypatch.setattr(bench, "run", measured)
    assert main(["bench", "--quick", *args]) == 2
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err


@pytest.mark.parametrize("text, says", [
    ("not json", "not JSON"), ("[1, 2]", "expected a JSON object"), ('{"format_version": 1, "results": 3}',
                                                                   "'results' must be a list"),
])
def test_compare_explains_a_bad_baseline(tmp_path, monkeypatch, capsys, text, says):
    monkeypatch.setattr(bench, "run", lambda *a, **kw: pytest.fail("bench.run was called"))
    path = tmp_path / "b.json"
    path.write_text(text)
    assert main(["bench", "--compare", str(path)]) == 2
    assert says in capsys.readouterr().err
