"""The Compare view: a real (tiny) hetero.bench run in the background, a canned report, export and load."""

from __future__ import annotations

import csv
import json

import pytest
from hetero.gui.compare_view import CompareView
from hetero.gui.log_panel import LogPanel
from PySide6.QtCore import QPointF

from hetero.bench import BenchReport, Result, Settings


def canned_report() -> BenchReport:
    results = [
        Result("0:0", "device", "gemm 128", "fp32", "GFLOP/s", 90.0, 0.1),
        Result("numpy", "device", "gemm 128", "fp32", "GFLOP/s", 30.0, 0.2),
        Result("0:0", "device", "kernel launch", "round trip", "us", 20.0, 0.0),
        Result("numpy", "device", "kernel launch", "round trip", "us", None, None, "unsupported", "no kernels"),
        Result("0:0", "model", "lenet5 b8", "train", "img/s", 1800.0, 0.05),
        Result("0/1", "model", "lenet5 b8", "train", "img/s", 2400.0, 0.05),
    ]
    devices = [{"id": "0:0", "name": "cpu", "kind": "opencl"}, {"id": "numpy", "name": "numpy", "kind": "reference"}]
    return BenchReport(results=results, devices=devices)


@pytest.fixture
def view(qtbot):
    calls = []

    def fake_run(progress, cancel, **options):
        calls.append(options)
        progress("measuring", 0.5)
        return canned_report()

    v = CompareView(LogPanel(), bench_run=fake_run)
    v.calls = calls
    qtbot.addWidget(v)
    v.resize(1300, 700)
    yield v
    v.stop_all()


def test_report_fills_table_and_chart_and_exports(qtbot, view, tmp_path):
    with qtbot.waitSignal(view.sigReport, timeout=10000):
        view.run()
    assert view.calls[0]["models"] == ("lenet5",) and view.calls[0]["quick"] is True
    t = view.table
    assert t.rowCount() == 3 and t.columnCount() == 2 + 3
    headers = [t.horizontalHeaderItem(c).text() for c in range(t.columnCount())]
    assert headers == ["figure", "unit", "0:0", "numpy", "0/1"]
    assert t.item(0, 2).text() == "90.0 ± 5%" and t.item(0, 2).font().bold()  # the best GFLOP/s
    assert t.item(1, 3).text() == "unsupported" and t.item(1, 3).toolTip() == "no kernels"
    assert view.figure_box.currentText().startswith("model · lenet5 b8 · train")  # the training figure first
    assert view.chart.bar_count() == 3
    for fmt in ("csv", "json", "png"):
        assert view.export(fmt, str(tmp_path / f"bench.{fmt}"))
    rows = list(csv.reader(open(tmp_path / "bench.csv")))
    assert len(rows) == 1 + 6
    assert len(json.loads((tmp_path / "bench.json").read_text())["results"]) == 6
    assert (tmp_path / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    other = CompareView(LogPanel(), bench_run=None)
    qtbot.addWidget(other)
    assert other.load(str(tmp_path / "bench.json"))
    assert other.table.rowCount() == 3
    assert not other.load(str(tmp_path / "bench.csv"))
    assert other.log.count("error") == 1


def test_real_quick_bench_produces_its_table(qtbot, usable_device):
    view = CompareView(LogPanel())
    qtbot.addWidget(view)
    view.devices.select([usable_device.id])
    fractions = []
    view.progress.valueChanged.connect(fractions.append)
    tiny = Settings(repeats=1, min_time=0.01, copy_bytes=1 << 20, gemm_n=64, op_batch=1, model_batch=4)
    with qtbot.waitSignal(view.sigReport, timeout=60000):
        view.run(models=(), references=("numpy",), categories=("device",), settings=tiny)
    assert view.table.rowCount() >= 3
    assert usable_device.id in view.table_model.columns and "numpy" in view.table_model.columns
    assert any(0 < f < 1000 for f in fractions)  # progress was shown on the way
    assert view.chart.bar_count() == len(view.table_model.columns)
    view.stop_all()


def big_report(figures: int) -> BenchReport:
    """`figures` rows of four devices and references each, with spreads."""
    results = []
    for k in range(figures):
        for d, dev in enumerate(("0:0", "0:0/2.0", "numpy", "torch-cpu")):
            results.append(Result(dev, "op", f"conv2d case {k}", "forward", "GFLOP/s", 10.0 + k + d, 0.1))
    devices = [{"id": "0:0", "name": "pthread-skylake-avx512-AMD EPYC", "kind": "opencl"},
               {"id": "numpy", "name": "numpy", "kind": "reference"}]
    return BenchReport(results=results, devices=devices)


def test_the_exported_image_holds_the_whole_report_drawn_from_its_data(qtbot, view, tmp_path):
    from PySide6.QtGui import QImage

    heights = {}
    for figures in (5, 58):
        view.show_report(big_report(figures))
        view.resize(900, 500)  # the window shows a dozen rows; the export has them all
        for fmt in ("png", "svg", "csv"):
            assert view.export(fmt, str(tmp_path / f"bench{figures}.{fmt}"))
        rows = list(csv.reader(open(tmp_path / f"bench{figures}.csv")))
        assert len(rows) == 1 + 4 * figures  # a line per result, from the data
        image = QImage(str(tmp_path / f"bench{figures}.png"))
        drawing = view.report_image()
        assert image.height() == 2 * drawing.height and image.width() == 2 * drawing.width
        assert drawing.width >= sum(drawing.widths)  # every column, none cut off
        heights[figures] = image.height()
        svg = (tmp_path / f"bench{figures}.svg").read_text()
        assert f"conv2d case {figures - 1}" in svg and "torch-cpu" in svg  # the last row and the last column
        assert "0:0: pthread-skylake-avx512-AMD EPYC" in svg  # the device names under the table
    per_row = view.report_image().row_height
    assert heights[58] - heights[5] == 2 * 53 * per_row  # one row of pixels per figure, no more, no less
    assert view.log.count("error") == 0


def test_value_labels_sit_above_their_error_bars(qtbot, view):
    view.show()
    view.show_report(canned_report())
    for k in range(view.figure_box.count()):
        view.figure_box.setCurrentIndex(k)
        qtbot.wait(20)
        chart = view.chart
        vb = chart.getPlotItem().getViewBox()
        assert len(chart.value_labels) == len(chart._beams) == 3
        for text, (x, beam) in zip(chart.value_labels, chart._beams):
            if text.toPlainText() == "-":
                continue
            beam_y = vb.mapViewToScene(QPointF(x, beam)).y()
            box = text.mapRectToScene(text.boundingRect())
            assert box.bottom() <= beam_y, (text.toPlainText(), box, beam_y)  # clear of the beam, not over it
            assert box.top() >= vb.sceneBoundingRect().top() - 1  # and inside the plot


def test_cancel_says_cancelled_and_keeps_the_report_shown_before(qtbot, tmp_path):
    started = []

    def slow_run(progress, cancel, **options):
        started.append(True)
        progress("measuring", 0.3)
        cancel.wait(10)
        return BenchReport(results=[Result("0:0", "device", "gemm 64", "fp32", "GFLOP/s", 1.0, 0.0)])

    view = CompareView(LogPanel(), bench_run=slow_run)
    qtbot.addWidget(view)
    view.show_report(canned_report())
    before = view.report
    assert view.run()
    qtbot.waitUntil(lambda: bool(started), timeout=5000)
    view.cancel()
    qtbot.waitUntil(lambda: not view.is_running(), timeout=10000)
    qtbot.wait(50)
    messages = [m for _, m in view.log.entries]
    assert any("Benchmark cancelled" in m and "the report shown before is kept" in m for m in messages), messages
    assert not any("Benchmark done" in m for m in messages)
    assert view.report is before and view.table.rowCount() == 3
    assert view.progress.format() == "cancelled"
    assert all(b.isEnabled() for b in view.export_buttons.values())
