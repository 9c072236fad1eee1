"""The Compare view: hetero.bench in the background, a bar chart and a table side by side, export, load."""

from __future__ import annotations

import math
import os

from PySide6.QtCore import QRectF, QSize, Qt, Signal, Slot
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPen
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from hetero.bench.report import LOWER_IS_BETTER

from . import qtfix, theme
from .device_panel import DevicePanel
from .history import COLOURS
from .log_panel import LogPanel
from .plots import BarChart, format_value, render_to_file
from .slots import slot
from .theme import bold_font
from .workers import BenchWorker

BENCH_MODELS = ("lenet5", "alexnet_mnist", "resnet18")
REFERENCES = ("numpy", "torch-cpu")


def field(result, name: str, default=None):
    """A result's field, whether bench gives objects or dicts."""
    if isinstance(result, dict):
        return result.get(name, default)
    return getattr(result, name, default)


def figure_key(result) -> tuple[str, str, str, str]:
    return (str(field(result, "category", "")), str(field(result, "test", "")), str(field(result, "metric", "")),
            str(field(result, "unit", "")))


class ReportTable:
    """A bench report pivoted: one row per figure, one column per device (references included)."""

    def __init__(self, report):
        self.report = report
        self.results = list(getattr(report, "results", []) or [])
        self.columns: list[str] = []
        self.rows: list[tuple[str, str, str, str]] = []
        self.cells: dict[tuple, object] = {}
        for r in self.results:
            dev = str(field(r, "device", "?"))
            key = figure_key(r)
            if dev not in self.columns:
                self.columns.append(dev)
            if key not in self.rows:
                self.rows.append(key)
            self.cells[(key, dev)] = r

    def values(self, key) -> list[float | None]:
        out = []
        for dev in self.columns:
            r = self.cells.get((key, dev))
            ok = r is not None and field(r, "status", "ok") == "ok"
            out.append(float(field(r, "value")) if ok and field(r, "value") is not None else None)
        return out

    def best(self, key) -> int | None:
        vals = self.values(key)
        finite = [(v, k) for k, v in enumerate(vals) if v is not None and math.isfinite(v)]
        if len(finite) < 2:
            return None
        pick = min if key[3] in LOWER_IS_BETTER else max  # the units hetero.bench counts as "less is better"
        return pick(finite)[1]


def cell_text(r: object) -> tuple[str, str | None]:
    """(text, colour or None) of a result's cell, as the table and the exported image show it."""
    if r is None:
        return "", None
    status = field(r, "status", "ok")
    if status != "ok":
        return str(status), "#b00020" if status == "error" else "#888888"
    text = format_value(field(r, "value"))
    spread = field(r, "spread")  # (max - min) / median of the repeats, shown as ± half of it, as bench does
    if isinstance(spread, (int, float)) and math.isfinite(spread) and spread > 0:
        text += f" ± {50 * spread:.0f}%"
    return text, None


def report_rows(model: ReportTable) -> list[list[str]]:
    """The table as text: a header row, then one row per figure (what the CSV of the table would hold)."""
    rows = [["figure", "unit", *model.columns]]
    for key in model.rows:
        category, test, metric, unit = key
        rows.append([f"{category} · {test} · {metric}", unit,
                     *(cell_text(model.cells.get((key, dev)))[0] for dev in model.columns)])
    return rows


class ReportImage:
    """The whole report drawn from its data, not from the window: a title, the chosen figure's chart, every row and
    column of the table (each row's best bold on green) and the device names; paint() draws on a PNG or an SVG."""

    PAD = 8

    def __init__(self, model: ReportTable, title: str, names: dict[str, str], chart: BarChart | None = None,
                 font: QFont | None = None):
        self.model = model
        self.title = title
        self.names = names
        self.chart = chart
        self.font = QFont(font or QFont())
        self.bold = QFont(self.font)
        self.bold.setBold(True)
        self.rows = report_rows(model)
        bold_metrics = QFontMetrics(self.bold)
        self.widths = [max(bold_metrics.horizontalAdvance(row[c]) for row in self.rows) + 2 * self.PAD
                       for c in range(len(self.rows[0]))]
        self.row_height = bold_metrics.height() + self.PAD
        self.legend = [f"{dev}: {names[dev]}" for dev in model.columns if names.get(dev, dev) != dev]
        self.width = max(sum(self.widths), 640, *(bold_metrics.horizontalAdvance(t) for t in [title, *self.legend]))
        self.width += 2 * self.PAD
        # the chart at its size on screen (scaled, its fonts would stretch), smaller only to fit the width
        self.chart_rect = QRectF()
        source = chart.getPlotItem().sceneBoundingRect() if chart is not None else QRectF()
        if source.width() >= 200 and source.height() >= 100:
            scale = min(1.0, (self.width - 2 * self.PAD) / source.width())
            self.chart_rect = QRectF(0, 0, source.width() * scale, source.height() * scale)
        self.chart_height = self.chart_rect.height()
        self.height = (2 * self.PAD + self.row_height * (1 + len(self.rows) + len(self.legend)) + self.chart_height
                       + self.PAD)

    def size(self) -> QSize:
        return QSize(int(self.width), int(self.height))

    def paint(self, painter: QPainter) -> None:
        pad, h = self.PAD, self.row_height
        painter.fillRect(QRectF(0, 0, self.width, self.height), QColor("white"))
        painter.setPen(QColor("#222222"))
        painter.setFont(self.bold)
        y = pad
        painter.drawText(QRectF(pad, y, self.width - 2 * pad, h), Qt.AlignmentFlag.AlignVCenter, self.title)
        y += h
        if self.chart_height:
            target = QRectF(self.chart_rect)
            target.moveTo((self.width - target.width()) / 2, y)
            shown = theme.colours()
            if shown.dark:  # the image is on white whatever the window's theme
                self.chart.apply_theme(theme.LIGHT)
            self.chart.scene().render(painter, target, self.chart.getPlotItem().sceneBoundingRect())
            if shown.dark:
                self.chart.apply_theme(shown)
            y += self.chart_height
        grid = QPen(QColor("#cccccc"))
        for k, row in enumerate(self.rows):
            key = self.model.rows[k - 1] if k else None
            best = self.model.best(key) if key is not None else None
            x = pad
            if k == 0:
                painter.fillRect(QRectF(pad, y, sum(self.widths), h), QColor("#eeeeee"))
            for c, text in enumerate(row):
                rect = QRectF(x, y, self.widths[c], h)
                is_best = best is not None and c == 2 + best
                if is_best:
                    painter.fillRect(rect, QColor("#e3f4e3"))
                colour = cell_text(self.model.cells.get((key, self.model.columns[c - 2])))[1] if key and c >= 2 \
                    else None
                painter.setPen(QColor(colour or "#222222"))
                painter.setFont(self.bold if k == 0 or is_best else self.font)
                align = Qt.AlignmentFlag.AlignLeft if c < 2 else Qt.AlignmentFlag.AlignRight
                painter.drawText(rect.adjusted(pad, 0, -pad, 0), align | Qt.AlignmentFlag.AlignVCenter, text)
                painter.setPen(grid)
                painter.drawRect(rect)
                x += self.widths[c]
            y += h
        painter.setPen(QColor("#555555"))
        painter.setFont(self.font)
        for line in self.legend:
            painter.drawText(QRectF(pad, y, self.width - 2 * pad, h), Qt.AlignmentFlag.AlignVCenter, line)
            y += h

    def save(self, path: str, fmt: str) -> None:
        """Write a PNG (at twice the size, for sharp text) or an SVG; OSError when the file cannot be written."""
        render_to_file(path, fmt, self.size(), self.paint, self.title)


class CompareView(QWidget):
    """Choose devices and models, run the benchmark in a worker thread, show and export the report."""

    sigReport = Signal(object)

    def __init__(self, log: LogPanel, device_panel: DevicePanel | None = None, bench_run=None, parent=None):
        qtfix.apply()
        super().__init__(parent)
        self.log = log
        self.bench_run = bench_run
        self.worker: BenchWorker | None = None
        self.report = None
        self.table_model: ReportTable | None = None
        self.names: dict[str, str] = {}  # device id -> name, of the report shown

        self.devices = device_panel or DevicePanel()
        self.model_checks = {m: QCheckBox(m) for m in BENCH_MODELS}
        self.model_checks["lenet5"].setChecked(True)
        self.ref_checks = {r: QCheckBox(r) for r in REFERENCES}
        for c in self.ref_checks.values():
            c.setChecked(True)
        self.quick_box = QCheckBox("quick (fewer repeats)")
        self.quick_box.setChecked(True)
        self.batch_box = QSpinBox()
        self.batch_box.setRange(0, 4096)
        self.batch_box.setSpecialValueText("default")
        self.run_button = QPushButton("Run benchmark")
        bold_font(self.run_button)
        self.cancel_button = QPushButton("Cancel")
        self.load_button = QPushButton("Load saved run…")
        self.export_buttons = {fmt: QPushButton(f"Export {text}…") for fmt, text in
                               (("csv", "CSV"), ("json", "JSON"), ("image", "PNG/SVG"))}
        self.export_buttons["image"].setToolTip("The whole report as an image: the chart of the chosen figure and "
                                                "every row of the table (PNG, or SVG by the file's name)")
        self.run_button.clicked.connect(slot(self.run))
        self.cancel_button.clicked.connect(slot(self.cancel))
        self.load_button.clicked.connect(slot(self.load))
        for fmt, button in self.export_buttons.items():
            button.clicked.connect(slot(self.export, fmt))

        left, lv = self.devices.column("Devices", 1)
        opts = QGroupBox("Benchmark")
        ov = QVBoxLayout(opts)
        ov.addWidget(QLabel("Models"))
        row = QHBoxLayout()
        for c in self.model_checks.values():
            row.addWidget(c)
        ov.addLayout(row)
        ov.addWidget(QLabel("References beside the devices"))
        row = QHBoxLayout()
        for c in self.ref_checks.values():
            row.addWidget(c)
        ov.addLayout(row)
        row = QHBoxLayout()
        row.addWidget(QLabel("Batch size"))
        row.addWidget(self.batch_box)
        ov.addLayout(row)
        ov.addWidget(self.quick_box)
        lv.addWidget(opts)
        row = QHBoxLayout()
        row.addWidget(self.run_button)
        row.addWidget(self.cancel_button)
        lv.addLayout(row)
        lv.addWidget(self.load_button)
        row = QHBoxLayout()
        for b in self.export_buttons.values():
            row.addWidget(b)
        lv.addLayout(row)

        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setFormat("no benchmark run yet")
        self.figure_box = QComboBox()
        self.figure_box.currentIndexChanged.connect(slot(self._show_chart))
        self.chart = BarChart()
        self.table = QTableWidget(0, 0)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.currentCellChanged.connect(self._row_chosen)
        chart_side = QWidget()
        cv = QVBoxLayout(chart_side)
        cv.setContentsMargins(0, 0, 0, 0)
        cv.addWidget(self.figure_box)
        cv.addWidget(self.chart, 1)
        self.result_area = QSplitter(Qt.Orientation.Horizontal)
        self.result_area.addWidget(chart_side)
        self.result_area.addWidget(self.table)
        self.result_area.setSizes([500, 600])
        right = QWidget()
        rv = QVBoxLayout(right)
        rv.setContentsMargins(0, 0, 0, 0)
        rv.addWidget(self.progress)
        rv.addWidget(self.result_area, 1)

        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(right)
        split.setSizes([380, 1100])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(split)
        self._update_buttons()

    # ----- running -----

    def is_running(self) -> bool:
        return self.worker is not None and self.worker.isRunning()

    def options(self) -> dict:
        ids = self.devices.selected_ids()
        return {
            "devices": ids or "all",
            "models": tuple(m for m, c in self.model_checks.items() if c.isChecked()),
            "batch_size": self.batch_box.value() or None,
            "quick": self.quick_box.isChecked(),
            "references": tuple(r for r, c in self.ref_checks.items() if c.isChecked()),
        }

    def run(self, **overrides) -> bool:
        if self.is_running():
            return False
        options = {**self.options(), **overrides}
        self.worker = BenchWorker(options, self.bench_run, parent=self)
        self.worker.sigProgress.connect(self._on_progress)
        self.worker.sigDone.connect(self._on_done)
        self.worker.sigFailed.connect(self._on_failed)
        self.worker.finished.connect(self._update_buttons)
        devices = options["devices"] if isinstance(options["devices"], str) else ", ".join(options["devices"])
        self.log.add("info", f"Benchmark started on {devices}; models: {', '.join(options['models']) or 'none'}.")
        self.progress.setValue(0)
        self.progress.setFormat("starting…")
        self.worker.start()
        self._update_buttons()
        return True

    def cancel(self) -> None:
        if self.is_running():
            self.worker.cancel.set()
            self.progress.setFormat("cancelling after the current measurement…")

    def stop_all(self, wait_ms: int = 30000) -> bool:
        if self.worker is None:
            return True
        self.worker.cancel.set()
        return self.worker.wait(wait_ms)

    @Slot(str, float)
    def _on_progress(self, message: str, fraction: float) -> None:
        self.progress.setValue(int(1000 * max(0.0, min(fraction, 1.0))))
        self.progress.setFormat(f"{100 * fraction:.0f}% · {message}")

    @Slot(object)
    def _on_done(self, report) -> None:
        if self.worker is not None and self.worker.cancel.is_set():
            # a partial run compares nothing fairly: the report shown before stays, as if never started
            measured = len(getattr(report, "results", []) or [])
            kept = "the report shown before is kept" if self.report is not None else "no report is shown"
            self.progress.setValue(0)
            self.progress.setFormat("cancelled")
            self.log.add("info", f"Benchmark cancelled: its {measured} figure(s) so far were discarded; {kept}.")
            self._update_buttons()
            return
        self.progress.setValue(1000)
        self.progress.setFormat("done")
        self.show_report(report)
        # "unsupported" (no fp16, no numpy model runner) is in the table with its reason; errors are news
        bad = [r for r in self.table_model.results if field(r, "status", "ok") == "error"]
        for r in bad[:10]:
            self.log.add("warning", f"{field(r, 'device')}: {field(r, 'test')} {field(r, 'metric')}: "
                                    f"{field(r, 'status')} ({field(r, 'reason', '') or 'no reason given'})")
        self.log.add("info", f"Benchmark done: {len(self.table_model.results)} figures on "
                             f"{len(self.table_model.columns)} devices and references.")

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self.progress.setFormat("failed")
        self.log.add("error", message)

    @Slot()
    def _update_buttons(self) -> None:
        running = self.is_running()
        self.run_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        self.load_button.setEnabled(not running)
        for b in self.export_buttons.values():
            b.setEnabled(self.report is not None and not running)

    # ----- showing -----

    def show_report(self, report) -> None:
        self.report = report
        self.table_model = model = ReportTable(report)
        self.names = names = {}
        for d in getattr(report, "devices", []) or []:
            ident = field(d, "id")
            if ident is not None:
                names[str(ident)] = str(field(d, "name", ident))
        self.table.clear()
        self.table.setColumnCount(2 + len(model.columns))
        self.table.setRowCount(len(model.rows))
        self.table.setHorizontalHeaderLabels(["figure", "unit"] + model.columns)
        for c, dev in enumerate(model.columns):
            self.table.horizontalHeaderItem(2 + c).setToolTip(names.get(dev, dev))
        bold = QFont(self.table.font())
        bold.setBold(True)
        for row, key in enumerate(model.rows):
            category, test, metric, unit = key
            self.table.setItem(row, 0, QTableWidgetItem(f"{category} · {test} · {metric}"))
            self.table.setItem(row, 1, QTableWidgetItem(unit))
            best = model.best(key)
            for c, dev in enumerate(model.columns):
                r = model.cells.get((key, dev))
                item = self._cell(r, unit)
                if c == best:
                    item.setFont(bold)
                    item.setBackground(QColor("#e3f4e3"))
                    item.setForeground(QColor("#111111"))  # the light green in either theme
                self.table.setItem(row, 2 + c, item)
        self.figure_box.blockSignals(True)
        self.figure_box.clear()
        self.figure_box.addItems([f"{k[0]} · {k[1]} · {k[2]} ({k[3]})" for k in model.rows])
        self.figure_box.blockSignals(False)
        self.figure_box.setCurrentIndex(self._default_row(model))
        self._show_chart()
        self._update_buttons()
        self.sigReport.emit(report)

    @staticmethod
    def _default_row(model: ReportTable) -> int:
        """Training throughput of the first model when measured (the job users care about), else row 0."""
        for k, (category, _test, metric, _unit) in enumerate(model.rows):
            if category == "model" and metric == "train":
                return k
        return 0

    @staticmethod
    def _cell(r, unit: str) -> QTableWidgetItem:
        text, colour = cell_text(r)
        item = QTableWidgetItem(text)
        if colour is not None:
            item.setForeground(QColor(colour))
            item.setToolTip(str(field(r, "reason", "") or text))
        elif r is not None:
            item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return item

    def _row_chosen(self, row: int, *_) -> None:
        if row >= 0:
            self.figure_box.setCurrentIndex(row)

    def _show_chart(self) -> None:
        model = self.table_model
        k = self.figure_box.currentIndex()
        if model is None or not (0 <= k < len(model.rows)):
            return
        key = model.rows[k]
        values = model.values(key)
        spreads = []
        for dev in model.columns:
            r = model.cells.get((key, dev))
            s = field(r, "spread") if r is not None else None
            v = values[len(spreads)]
            ok = isinstance(s, (int, float)) and math.isfinite(s) and v is not None
            spreads.append(float(s) * v / 2 if ok else 0.0)  # half the range, in the figure's unit
        colours = [COLOURS[c % len(COLOURS)] for c in range(len(model.columns))]
        shown = [v if v is not None else float("nan") for v in values]
        better = "lower is better" if key[3] in LOWER_IS_BETTER else "higher is better"
        self.chart.show_values(f"{key[1]} · {key[2]} ({better})", key[3], model.columns, shown, spreads, colours,
                               model.best(key))

    # ----- files -----

    def report_image(self) -> ReportImage:
        """The report as ReportImage draws it (the whole table and the chart of the chosen figure)."""
        model = self.table_model
        version = field(self.report, "hetero_version", "") or ""
        title = (f"hetero {version} bench: {len(model.rows)} figures on {len(model.columns)} devices and "
                 f"references (best per row in bold)").replace("hetero  ", "hetero ")
        return ReportImage(model, title, self.names, self.chart, self.table.font())

    def export(self, fmt: str, path: str | None = None) -> bool:
        """Write the report as "csv" (one line per result), "json" (what Load reads back), "png" or "svg" (the
        whole report drawn from its data); "image" asks for a PNG or SVG file name."""
        if self.report is None:
            self.log.add("warning", "Run or load a benchmark before exporting.")
            return False
        if path is None:
            if fmt == "image":
                path, chosen = QFileDialog.getSaveFileName(self, "Export the benchmark as an image",
                                                           os.path.join(os.getcwd(), "bench.png"),
                                                           "PNG image (*.png);;SVG drawing (*.svg)")
                if path and not path.lower().endswith((".png", ".svg")):
                    path += ".svg" if "svg" in chosen.lower() else ".png"
            else:
                path, _ = QFileDialog.getSaveFileName(self, f"Export the benchmark as {fmt.upper()}",
                                                      os.path.join(os.getcwd(), f"bench.{fmt}"), f"*.{fmt}")
            if not path:
                return False
        if fmt == "image":
            fmt = "svg" if path.lower().endswith(".svg") else "png"
        try:
            if fmt in ("png", "svg"):
                self.report_image().save(path, fmt)
            elif fmt == "csv":
                self.report.to_csv(path)
            else:
                self.report.to_json(path)
        except Exception as e:
            self.log.add("error", f"Could not export to {path}: {e}")
            return False
        self.log.add("info", f"Benchmark exported to {path}.")
        return True

    def load(self, path: str | None = None) -> bool:
        from hetero import bench

        if path is None:
            path, _ = QFileDialog.getOpenFileName(self, "Load a saved benchmark run", os.getcwd(), "JSON (*.json)")
            if not path:
                return False
        try:
            report = bench.BenchReport.load(path)
        except Exception as e:
            self.log.add("error", f"Could not read the benchmark file {path}: {' '.join(str(e).split())}")
            return False
        self.show_report(report)
        self.progress.setValue(1000)
        self.progress.setFormat(f"loaded {os.path.basename(path)}")
        self.log.add("info", f"Loaded the benchmark run {path}.")
        return True
