"""`hetero bench --onnx`: a tiny ONNX model built here, the report's rows and values, the onnxruntime column
(present or absent), and the one-line refusals of files it cannot measure. Speed is never asserted."""

from __future__ import annotations

import math

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from hetero import bench  # noqa: E402
from hetero.bench import onnx as onnx_figures  # noqa: E402
from hetero.bench.timing import Settings  # noqa: E402
from hetero.cli import main  # noqa: E402
from tests.bench.test_bench import _first_device  # noqa: E402

TINY = Settings(repeats=2, min_time=0.0, copy_bytes=1 << 20, gemm_n=96, op_batch=1, model_batch=2)


def _tiny_model(path, batch="N", hw=(8, 8), outputs=1, inputs=1):
    """conv 3x3 -> relu -> global average pool -> flatten -> gemm: (batch, 3, 8, 8) -> (batch, 5)."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w"),
             numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "b"),
             numpy_helper.from_array(rng.standard_normal((5, 4)).astype(np.float32), "fw")]
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("GlobalAveragePool", ["r"], ["g"]),
             helper.make_node("Flatten", ["g"], ["f"]),
             helper.make_node("Gemm", ["f", "fw"], ["y"], transB=1)]
    graph_inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3, *hw])]
    if inputs == 2:
        nodes.append(helper.make_node("Add", ["y", "z"], ["y2"]))
        graph_inputs.append(helper.make_tensor_value_info("z", TensorProto.FLOAT, [batch, 5]))
    outs = [helper.make_tensor_value_info("y2" if inputs == 2 else "y", TensorProto.FLOAT, [batch, 5])]
    if outputs == 2:
        outs.append(helper.make_tensor_value_info("f", TensorProto.FLOAT, [batch, 4]))
    graph = helper.make_graph(nodes, "tiny", graph_inputs, outs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def _ort_available() -> bool:
    return onnx_figures.import_ort()[0] is not None


@pytest.fixture(scope="module")
def device():
    return _first_device()


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    return _tiny_model(tmp_path_factory.mktemp("onnx") / "tiny.onnx")


@pytest.fixture(scope="module")
def report(device, model_file):
    return bench.run(devices=[device], onnx=model_file, settings=TINY)


def test_rows_per_device_and_reference(report, device):
    assert report.settings["categories"] == ["onnx"]  # only what --onnx asked for
    assert {r.category for r in report.results} == {"onnx"}
    ids = [d["id"] for d in report.devices]
    assert ids == [device.id, "onnxruntime"]  # numpy and torch-cpu have nothing to show here
    for column in ids:
        mine = {(r.test, r.metric, r.unit) for r in report.results if r.device == column}
        assert mine == {("tiny.onnx b1", "latency p50", "us"), ("tiny.onnx b1", "latency p99", "us"),
                        ("tiny.onnx b32", "throughput", "img/s")}


def test_values_positive_and_finite(report, device):
    columns = [device.id] + (["onnxruntime"] if _ort_available() else [])
    for r in report.results:
        if r.device not in columns:
            continue
        assert r.status == "ok", r
        assert r.value is not None and math.isfinite(r.value) and r.value > 0, r
        assert r.spread is None or (math.isfinite(r.spread) and r.spread >= 0), r
    p50 = report.get(device.id, "onnx", "tiny.onnx b1", "latency p50").value
    p99 = report.get(device.id, "onnx", "tiny.onnx b1", "latency p99").value
    assert p99 >= p50


def test_table_has_the_reference_and_ratios(report, device):
    text = report.table()
    head = text.splitlines()[0]
    assert device.id in head and "onnxruntime" in head and "ours/onnxruntime" in head
    assert "tiny.onnx b1" in text and "latency p50" in text and "tiny.onnx b32" in text


def test_json_round_trip(report, tmp_path):
    path = tmp_path / "onnx.json"
    report.to_json(path)
    loaded = bench.BenchReport.load(path)
    assert loaded.table() == report.table()
    assert loaded.settings["onnx"].endswith("tiny.onnx")


def test_without_onnxruntime_the_column_says_so(device, model_file, monkeypatch):
    monkeypatch.setattr(onnx_figures, "import_ort", lambda: (None, "onnxruntime does not import (test)"))
    rep = bench.run(devices=[device], onnx=model_file, settings=TINY)
    theirs = [r for r in rep.results if r.device == "onnxruntime"]
    assert theirs and all(r.status == "unsupported" and "does not import" in r.reason for r in theirs)
    assert all(r.status == "ok" for r in rep.results if r.device == device.id)
    text = rep.table()
    assert "onnxruntime" in text.splitlines()[0] and "n/a" in text and "does not import (test)" in text


def test_fixed_batch_and_several_outputs(device, tmp_path):
    fixed = _tiny_model(tmp_path / "fixed.onnx", batch=1, outputs=2)
    rep = bench.run(devices=[device], onnx=fixed, references=(), settings=TINY)
    tests = {(r.test, r.metric) for r in rep.results if r.status == "ok"}
    assert tests == {("fixed.onnx b1", "latency p50"), ("fixed.onnx b1", "latency p99"),
                     ("fixed.onnx b1", "throughput")}


def test_inspect(model_file):
    case = onnx_figures.inspect(model_file)
    assert (case.input_name, case.sample_shape, case.fixed_batch) == ("x", (3, 8, 8), None)
    assert (case.latency_batch(), case.throughput_batch()) == (1, 32)
    assert case.data(2).shape == (2, 3, 8, 8) and case.data(2).dtype == np.float32


def _refusals(tmp_path):
    text = tmp_path / "notes.onnx"
    text.write_text("these are notes, not a model\n")
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    return [
        (str(tmp_path / "missing.onnx"), "no such file"),
        (str(tmp_path), "is a folder"),
        (str(text), "not an ONNX model"),
        (str(empty), "not an ONNX model"),
        (str(_tiny_model(tmp_path / "dyn.onnx", hw=("H", 8))), "only the first (batch) dimension may be dynamic"),
        (str(_tiny_model(tmp_path / "two_inputs.onnx", inputs=2)), "has 2 inputs"),
    ]


def test_bad_files_are_refused_in_one_line_before_measuring(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(bench, "run", lambda *a, **kw: pytest.fail("bench.run was called"))
    for path, says in _refusals(tmp_path):
        assert main(["bench", "--onnx", path]) == 2, path
        err = capsys.readouterr().err
        assert says in err and "Traceback" not in err, err
        assert len(err.strip().splitlines()) == 1, err
        assert err.startswith(f"hetero bench: error: --onnx {path}: ")


def test_bad_files_raise_value_error_from_python(tmp_path):
    for path, says in _refusals(tmp_path):
        with pytest.raises(ValueError, match="bench: .*" + says.replace("(", r"\(").replace(")", r"\)")):
            bench.run(devices=[], onnx=path)


def test_onnx_category_needs_a_file(monkeypatch, capsys):
    with pytest.raises(ValueError, match="pass onnx=PATH"):
        bench.run(devices=[], categories=("onnx",))
    monkeypatch.setattr(bench, "run", lambda *a, **kw: pytest.fail("bench.run was called"))
    assert main(["bench", "--only", "onnx"]) == 2
    assert "--only onnx measures a model file" in capsys.readouterr().err
