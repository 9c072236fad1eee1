"""pyqtgraph plots: the live training curves and the benchmark bar chart.

Plot items are created once per run and updated with setData() from the GUI thread's redraw timer.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QVBoxLayout, QWidget

from .history import RunHistory

pg.setConfigOptions(antialias=True, background="w", foreground="#333333")


def _plot(title: str, y_label: str, legend: tuple[int, int] | None = (-10, 10)) -> pg.PlotWidget:
    """A plot with a grid and, unless legend is None, a legend at that offset (negative: from the right or
    bottom edge)."""
    w = pg.PlotWidget()
    p = w.getPlotItem()
    p.setTitle(title, size="10pt")
    p.setLabel("left", y_label)
    p.showGrid(x=True, y=True, alpha=0.25)
    p.setClipToView(True)
    p.setDownsampling(auto=True, mode="peak")
    if legend is not None:
        p.addLegend(offset=legend, labelTextSize="8pt", brush=pg.mkBrush(255, 255, 255, 200))
    return w


class _RunItems:
    """The plot items that show one run."""

    def __init__(self, plots: TrainPlots, run: RunHistory):
        colour = pg.mkColor(run.colour)
        faint = pg.mkColor(run.colour)
        faint.setAlpha(70)
        name = run.short_label
        self.loss_raw = plots.loss.plot(pen=pg.mkPen(faint, width=1))
        self.loss_ema = plots.loss.plot(pen=pg.mkPen(colour, width=2), name=name)
        self.train_acc = plots.accuracy.plot(pen=pg.mkPen(colour, width=2), name=f"{name} train")
        self.test_acc = plots.accuracy.plot(pen=pg.mkPen(colour, width=2, style=Qt.PenStyle.DashLine),
                                            symbol="o", symbolSize=7, symbolBrush=colour, symbolPen="w",
                                            name=f"{name} test")
        self.best = pg.ScatterPlotItem(symbol="star", size=18, brush=pg.mkBrush("#ffd400"),
                                       pen=pg.mkPen(colour, width=1.5))
        plots.accuracy.addItem(self.best)
        self.best_text = pg.TextItem(color=run.colour, anchor=(1.05, -0.1), fill=pg.mkBrush(255, 255, 255, 210))
        # (left of and below the star, on a white ground so the curves under it do not hide it)
        plots.accuracy.addItem(self.best_text)
        self.best.setZValue(20)  # above every run's curves, also those of runs added later
        self.best_text.setZValue(21)
        self.speed = plots.speed.plot(pen=pg.mkPen(colour, width=2))
        self.marks: list[pg.InfiniteLine] = []
        self.pen_mark = pg.mkPen(colour, width=1, style=Qt.PenStyle.DashLine)


class TrainPlots(QWidget):
    """Loss (raw + EMA), accuracy (train EMA, test per epoch, best epoch starred) and images/s."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.loss = _plot("Loss", "cross-entropy")
        self.accuracy = _plot("Accuracy", "%", legend=(-10, -10))  # bottom right: the curves climb to the top
        self.speed = _plot("Throughput", "images/s", legend=None)
        # loss on a log axis: the first steps and the last, orders of magnitude apart, both stay readable
        self.loss.getPlotItem().setLogMode(y=True)
        self.loss.getPlotItem().setLabel("left", "cross-entropy (log)")
        for w in (self.accuracy, self.speed):
            w.getPlotItem().enableAutoRange(y=False)
        self.loss.setXLink(self.accuracy)
        self.speed.setXLink(self.accuracy)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.loss, 5)
        layout.addWidget(self.accuracy, 5)
        layout.addWidget(self.speed, 3)
        self._items: dict[str, _RunItems] = {}
        self._labelled: str | None = None  # the run whose best epoch gets a text label
        self.set_x_mode("steps")

    def set_x_mode(self, mode: str) -> None:
        self.x_mode = mode
        for w in (self.loss, self.accuracy, self.speed):
            w.getPlotItem().setLabel("bottom", "seconds" if mode == "seconds" else "step")
        for items in self._items.values():
            for line in items.marks:
                for w in (self.loss, self.accuracy, self.speed):
                    w.removeItem(line)
            items.marks.clear()

    def clear(self) -> None:
        for w in (self.loss, self.accuracy, self.speed):
            p = w.getPlotItem()
            p.clear()  # the best-epoch labels and epoch lines go with the curves
            if p.legend is not None:
                p.legend.clear()
        self._items.clear()

    def update_runs(self, runs: list[RunHistory], smoothing: float) -> None:
        """Redraw every run's curves (called by the view's timer, GUI thread only)."""
        mode = self.x_mode
        best_runs = [r for r in runs if r.best_epoch() is not None]
        self._labelled = max(best_runs, key=lambda r: r.epoch_ends[r.best_epoch()].test_accuracy).key \
            if best_runs else None
        for run in runs:
            items = self._items.get(run.key)
            if items is None:
                items = self._items[run.key] = _RunItems(self, run)
            x = run.x(mode)
            loss = np.asarray(run.loss, dtype=np.float64)
            finite = np.isfinite(loss)
            finite &= loss > 0  # the log axis
            items.loss_raw.setData(x[finite], loss[finite])
            ema_loss = run.smoothed("loss", smoothing)
            items.loss_ema.setData(x[finite], ema_loss[finite])
            items.train_acc.setData(x, 100.0 * run.smoothed("accuracy", smoothing))
            items.speed.setData(x, run.smoothed("images_per_s", min(smoothing, 0.9)))
            tx, ty = run.test_points(mode)
            items.test_acc.setData(tx, ty)
            self._update_best(items, run, tx, ty)
            self._update_marks(items, run.epoch_positions(mode))
        self._fit_y(runs, smoothing)

    def _fit_y(self, runs: list[RunHistory], smoothing: float) -> None:
        """Accuracy from a little below where most of the run is to 100%; images/s from 0 to what most steps reach."""
        # the first steps (chance accuracy; a burst of images/s while the queue fills) would otherwise
        # squash the part worth reading into a line
        acc, speed = [], []
        for run in runs:
            acc.append(100.0 * run.smoothed("accuracy", smoothing))
            acc.append(run.test_points(self.x_mode)[1])
            speed.append(run.smoothed("images_per_s", min(smoothing, 0.9)))
        acc = np.concatenate(acc) if acc else np.empty(0)
        acc = acc[np.isfinite(acc)]
        if acc.size:
            low = max(0.0, float(np.percentile(acc, 10)) - 5.0)
            self.accuracy.getPlotItem().setYRange(low, 100.0, padding=0.02)
        speed = np.concatenate(speed) if speed else np.empty(0)
        speed = speed[np.isfinite(speed)]
        if speed.size:
            top = float(np.percentile(speed, 95)) * 1.3
            self.speed.getPlotItem().setYRange(0.0, top if top > 0 else 1.0, padding=0)

    def _update_best(self, items: _RunItems, run: RunHistory, tx: np.ndarray, ty: np.ndarray) -> None:
        best = run.best_epoch()
        if best is None or best >= len(tx):
            items.best.setData([], [])
            items.best_text.setText("")
            return
        items.best.setData([tx[best]], [ty[best]])
        # one label per plot: several devices' labels would print over each other
        text = f"best: epoch {run.best()[0]}, {ty[best]:.2f}%"
        items.best_text.setText(text if run.key == self._labelled else "")
        items.best_text.setPos(tx[best], ty[best])

    def _update_marks(self, items: _RunItems, positions: list[float]) -> None:
        plots = (self.loss, self.accuracy, self.speed)
        # one line per epoch end in each plot; they stay put, an epoch's end does not move once reported
        for k in range(len(items.marks) // len(plots), len(positions)):
            for w in plots:
                line = pg.InfiniteLine(pos=positions[k], angle=90, pen=items.pen_mark, movable=False)
                line.setToolTip(f"end of epoch {k + 1}")
                w.addItem(line, ignoreBounds=True)
                items.marks.append(line)

    def curve_data(self, key: str) -> dict[str, int]:
        """How many points each curve of a run holds (for tests and the status bar)."""
        items = self._items.get(key)
        if items is None:
            return {}
        counts = {}
        for name in ("loss_raw", "loss_ema", "train_acc", "test_acc", "speed"):
            xs = getattr(items, name).xData  # all the points (getData() gives the clipped, downsampled view)
            counts[name] = 0 if xs is None else len(xs)
        return counts


class BarChart(pg.PlotWidget):
    """One bar per (device) for one benchmark figure, with the spread as an error bar."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.getPlotItem().showGrid(y=True, alpha=0.25)
        self._bars: list = []

    def show_values(self, title: str, unit: str, labels: list[str], values: list[float], spreads: list[float],
                    colours: list[str], best: int | None) -> None:
        p = self.getPlotItem()
        p.clear()
        p.setTitle(title, size="10pt")
        p.setLabel("left", unit)
        x = np.arange(len(values), dtype=np.float64)
        heights = np.nan_to_num(np.asarray(values, dtype=np.float64))
        brushes = [pg.mkBrush(c) for c in colours]
        bars = pg.BarGraphItem(x=x, height=heights, width=0.6, brushes=brushes,
                               pens=[pg.mkPen("#333333", width=2 if k == best else 0.5) for k in range(len(x))])
        p.addItem(bars)
        err = np.nan_to_num(np.asarray(spreads, dtype=np.float64))
        if err.any():
            p.addItem(pg.ErrorBarItem(x=x, y=heights, height=2 * err, beam=0.15, pen=pg.mkPen("#333333")))
        for k, v in enumerate(values):
            text = pg.TextItem(("★ " if k == best else "") + format_value(v), color="#222222", anchor=(0.5, 1.0))
            text.setPos(x[k], heights[k])
            p.addItem(text)
        p.getAxis("bottom").setTicks([[(float(k), lab) for k, lab in enumerate(labels)]])
        p.setXRange(-0.6, len(values) - 0.4, padding=0)
        top = float(heights.max()) if heights.size else 1.0
        p.setYRange(0, top * 1.18 if top > 0 else 1.0, padding=0)
        self._bars = list(values)

    def bar_count(self) -> int:
        return len(self._bars)


def format_value(v) -> str:
    """A figure with as many digits as it deserves: '12,345', '98.7', '0.0832', '-' when missing."""
    if v is None or not isinstance(v, (int, float)) or not np.isfinite(v):
        return "-"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.3g}"
