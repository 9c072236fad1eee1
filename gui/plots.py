"""pyqtgraph plots: the live training curves and the benchmark bar chart.

Plot items are created once per run and updated with setData() from the GUI thread's redraw timer.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPoint, QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFontMetricsF, QImage, QPainter, QPalette
from PySide6.QtSvg import QSvgGenerator
from PySide6.QtWidgets import QLabel, QPushButton, QSizePolicy, QVBoxLayout, QWidget

from . import theme
from .history import RunHistory
from .slots import slot

pg.setConfigOptions(antialias=True, background=theme.colours().background, foreground=theme.colours().foreground)

# What an empty plot shows: a run's first steps, a loss from 0.01 to 10 (cross-entropy of 10 classes starts
# at 2.3), accuracy in %, images/s. A new run starts from these, not from the last run's zoom.
EMPTY_X = (0.0, 100.0)
EMPTY_LOSS = (0.01, 10.0)
EMPTY_SPEED = (0.0, 1000.0)
LABEL_GAP = 4  # pixels between a bar's error beam and its value label
MIN_VIEW_HEIGHT = 80  # pixels of a training plot's view box, at the least
PLOT_CHROME = 56      # a plot's title and x tick labels around its view box
PLOT_CHROME_X = 72    # ... and the x axis's name, under the lowest plot

_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")
_LOG_SETS = ((1,), (1, 2, 5), (1, 2, 3, 5), tuple(range(1, 10)))  # mantissas labelled per decade


def format_tick(v: float, step: float | None = None, powers: bool | None = None) -> str:
    """A tick label: '0.25', '3', '12,000' from 1e-4 to 1e6, else '2·10⁶', '10⁻⁵' (`powers` True or False
    decides for a whole axis); `step` (the spacing of linear ticks) sets the digits, None means the value's own
    ('0.02', '0.5')."""
    if v == 0 or not math.isfinite(v):
        return "0" if v == 0 else str(v)
    exponent = math.floor(math.log10(abs(v)) + 1e-9)
    plain = -4 <= exponent < 6 if powers is None else not powers
    if plain:
        places = 6 if step is None else max(0, -math.floor(math.log10(step) + 1e-9))
        text = f"{v:,.{places}f}" if abs(v) >= 10000 else f"{v:.{places}f}"
        return text.rstrip("0").rstrip(".") if "." in text else text
    mantissa = v / 10.0**exponent
    digits = 3 if step is None else max(1, 1 - math.floor(math.log10(step / 10.0**exponent) + 1e-9))
    m = f"{mantissa:.{digits}g}"
    power = "10" + str(exponent).translate(_SUPERSCRIPT)
    return power if m == "1" else f"{m}·{power}"


def format_ticks(values: list[float], step: float | None = None) -> list[str]:
    """Labels for one axis, all plain numbers or all powers of ten (not '50,000' beside '10⁵')."""
    powers = any(v != 0 and not -4 <= math.floor(math.log10(abs(v)) + 1e-9) < 6 for v in values)
    return [format_tick(v, step, powers) for v in values]


def log_ticks(lo: float, hi: float, pixels: float, min_gap: float) -> tuple[list[tuple[float, str]], list[float]]:
    """The labelled ticks ((value, label) pairs) and unlabelled minor ticks (values) of a log axis that shows
    10**lo .. 10**hi over `pixels`, no two labels closer than `min_gap` pixels.

    Of the candidate sets — every k-th decade, 1-2-5 (1-2-3-5, 1..9) in each decade, and multiples of a
    linear 1, 2 or 5 x 10^n step for a range within a decade — it takes the one with the most labels that
    keeps them apart: decades across many decades, 0.1 0.2 0.5 1 2 across a few, 0.22 0.24 ... 0.34 within
    one."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo or pixels <= 0:
        return [], []
    per_decade = pixels / (hi - lo)
    eps = 1e-9 * max(1.0, hi - lo)

    def inside(values) -> list[float]:
        return sorted(v for v in values if v > 0 and lo - eps <= math.log10(v) <= hi + eps)

    def apart(values: list[float], gap: float) -> bool:
        return len(values) < 2 or float(np.min(np.diff(np.log10(values)))) * per_decade >= gap

    k0, k1 = math.floor(lo), math.ceil(hi)
    candidates: list[tuple[list[float], float | None]] = []  # (values, linear step or None)
    for stride in (50, 20, 10, 5, 2, 1):
        candidates.append((inside(10.0**k for k in range(k0, k1 + 1) if k % stride == 0), None))
    for mantissas in _LOG_SETS[1:]:
        candidates.append((inside(m * 10.0**k for k in range(k0, k1 + 1) for m in mantissas), None))
    if hi - lo < 1:  # within about a decade the 1..9 marks are too few: linear steps
        a, b = 10.0**lo, 10.0**hi
        top = math.floor(math.log10(b - a))
        for e in range(top + 1, top - 3, -1):
            for m in (5, 2, 1):
                step = m * 10.0**e
                n0, n1 = math.ceil(a / step - 1e-9), math.floor(b / step + 1e-9)
                if 0 <= n1 - n0 <= 200:
                    candidates.append((inside(n * step for n in range(n0, n1 + 1)), step))
    values, step = [], None
    for vals, s in candidates:  # coarse to fine: a later set wins only with more labels
        if len(vals) > len(values) and apart(vals, min_gap):
            values, step = vals, s
    major = list(zip(values, format_ticks(values, step)))
    minor = []
    fine = inside(m * 10.0**k for k in range(k0, k1 + 1) for m in _LOG_SETS[-1])
    if step is None and apart(fine, 3.0):  # grid lines at the unlabelled 2..9 marks while they stay apart
        taken = set(values)
        minor = [v for v in fine if v not in taken]
    return major, minor


def linear_ticks(lo: float, hi: float, pixels: float, min_gap: float) -> tuple[list[tuple[float, str]], list[float]]:
    """Labelled ticks ((value, label) pairs) and unlabelled minor ticks of a linear axis from lo to hi over
    `pixels`: multiples of the finest 1, 2 or 5 x 10^n step that keeps labels `min_gap` pixels apart. A plot
    too short for two labels that far apart gets closer ones, down to min_gap / 2 (a label's height)."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo or pixels <= 0:
        return [], []
    per_unit = pixels / (hi - lo)
    edge = min_gap / 3.4 / per_unit  # a label this close to an end is cut off by the plot's edge

    def ticks(step: float) -> list[float]:
        n0, n1 = math.ceil(lo / step - 1e-9), math.floor(hi / step + 1e-9)
        return [n * step for n in range(n0, n1 + 1)]

    def shown(values: list[float]) -> int:
        return sum(1 for v in values if lo + edge <= v <= hi - edge)

    least = min_gap / 2  # a short plot's labels: a label's height apart, never closer
    e = math.floor(math.log10(least / per_unit))
    steps = [m * 10.0**k for k in range(e, e + 3) for m in (1, 2, 5)]
    steps = [st for st in steps if st * per_unit >= least * (1 - 1e-9)]
    wide = next(k for k, st in enumerate(steps) if st * per_unit >= min_gap * (1 - 1e-9))
    # the widest step that shows two labels inside the plot while they stay comfortably apart, else one;
    # else (a plot a few labels tall) the widest that shows the most
    candidates = steps[wide::-1]
    counts = [shown(ticks(st)) for st in candidates]
    comfortable = [(st, n) for st, n in zip(candidates, counts) if st * per_unit >= min_gap / 1.4 * (1 - 1e-9)]
    step = next((st for st, n in comfortable if n >= 2), None) or next((st for st, n in comfortable if n >= 1), None)
    if step is None:
        step = candidates[counts.index(max(counts))]
    values = ticks(step)
    major = list(zip(values, format_ticks(values, step)))
    minor = []
    for parts in (5, 2):
        fine = step / parts
        if fine * per_unit >= 6:
            minor = [v for v in ticks(fine) if round(v / fine) % parts]
            break
    return major, minor


class ReadableAxis(pg.AxisItem):
    """An axis whose labels never print over each other, in plain numbers (no SI prefix, no '1e+04'): on a
    log axis see log_ticks (pyqtgraph's own labels every 1..9 mark, '3·10², 2·10², 10², 9·10¹' over each other,
    once the range is under a decade), on a linear one linear_ticks (pyqtgraph's put five labels on a plot 40
    pixels tall)."""

    def __init__(self, orientation: str = "left", **kwargs):
        super().__init__(orientation, **kwargs)
        self.enableAutoSIPrefix(False)
        self._texts: dict[float, str] = {}

    def min_gap(self) -> float:
        """The least distance of two labels in pixels: twice a label's height (or a long one's width)."""
        font = self.style["tickFont"] or self.font()
        metrics = QFontMetricsF(font)
        size = metrics.height() if self.orientation in ("left", "right") else metrics.horizontalAdvance("00000")
        return 2.0 * size

    def tickValues(self, minVal, maxVal, size):
        lo, hi = sorted((minVal, maxVal))
        if self.logMode:
            major, minor = log_ticks(lo, hi, size, self.min_gap())
            major = [(math.log10(v), text) for v, text in major]
            minor = [math.log10(v) for v in minor]
        else:
            major, minor = linear_ticks(lo * self.scale, hi * self.scale, size, self.min_gap())
            major = [(v / self.scale, text) for v, text in major]
            minor = [v / self.scale for v in minor]
        self._texts = {self._key(v): text for v, text in major}
        levels = [(1.0, [v for v, _ in major])]
        if minor:
            levels.append((0.1, minor))
        return levels

    def tickStrings(self, values, scale, spacing):
        return [self._texts.get(self._key(v)) for v in values]  # None: a minor tick, drawn without a label

    @staticmethod
    def _key(v: float) -> float:
        return round(v, 9)


def _plot(title: str, y_label: str, legend: tuple[int, int] | None = (-10, 10)) -> pg.PlotWidget:
    """A plot with a grid and, unless legend is None, a legend at that offset (negative: from the right or
    bottom edge). No axis scales its numbers by an SI prefix ('step (x0.001)')."""
    w = pg.PlotWidget(axisItems={"left": ReadableAxis("left"), "bottom": ReadableAxis("bottom")})
    p = w.getPlotItem()
    p.setTitle(title, size="10pt")
    p.setLabel("left", y_label)
    p.hideButtons()  # its "A" button re-fits one plot only; TrainPlots' Follow button re-fits all three
    p.showGrid(x=True, y=True, alpha=0.25)
    p.setClipToView(True)
    p.setDownsampling(auto=True, mode="peak")
    if legend is not None:
        p.addLegend(offset=legend, labelTextSize="8pt", brush=pg.mkBrush(*theme.colours().fill))
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
        self.best_text = pg.TextItem(color=run.colour, anchor=(1.05, -0.1), fill=pg.mkBrush(*theme.colours().fill))
        # (left of and below the star, on a white ground so the curves under it do not hide it)
        plots.accuracy.addItem(self.best_text, ignoreBounds=True)  # else, empty at (0, 0), it widens the x range
        self.best.setZValue(20)  # above every run's curves, also those of runs added later
        self.best_text.setZValue(21)
        self.speed = plots.speed.plot(pen=pg.mkPen(colour, width=2))
        self.marks: list[pg.InfiniteLine] = []
        self.pen_mark = pg.mkPen(colour, width=1, style=Qt.PenStyle.DashLine)
        self.resume_lines: list[pg.InfiniteLine] = []  # where a run continued from a checkpoint


class TrainPlots(QWidget):
    """Loss (raw + EMA), accuracy (train EMA, test per epoch, best epoch starred) and images/s.

    The three plots share their x axis and follow the run: x from the first step to the last, the loss fitted
    on its log axis, accuracy and images/s fitted by _fit_y. Zooming or panning any plot stops that (the user
    is reading a part of it) and says so beside `follow_button`; the button, a double-click on a plot, or a
    new run (clear()) follows the run again."""

    sigFollowChanged = Signal(bool)

    def __init__(self, parent=None):
        super().__init__(parent)
        # loss on a log axis: the first steps and the last, orders of magnitude apart, both stay readable
        self.loss = _plot("Loss", "cross-entropy (log)")
        self.loss.getPlotItem().setLogMode(y=True)
        self.accuracy = _plot("Accuracy", "%", legend=(-10, -10))  # bottom right: the curves climb to the top
        # a run's train and test entries side by side: in one column, two runs' four rows covered the whole plot
        self.accuracy.getPlotItem().legend.setColumnCount(2)
        self.speed = _plot("Throughput", "images/s", legend=None)
        for w in (self.accuracy, self.speed):
            w.getPlotItem().enableAutoRange(y=False)
        self.loss.setXLink(self.accuracy)
        self.speed.setXLink(self.accuracy)
        self.following = True
        self.follow_button = QPushButton("Follow the run")
        self.follow_button.setToolTip("Fit the three plots to the whole run again and keep them following new "
                                      "steps (a double-click on a plot does the same)")
        self.follow_button.clicked.connect(slot(self.follow))
        self.follow_hint = QLabel("Zoomed: not following")
        self.follow_hint.setToolTip("You zoomed or moved a plot, so the plots stay where you put them while "
                                    "training goes on. Follow the run (or double-click a plot) shows it all again.")
        self.follow_hint.setStyleSheet("color: #b26a00; font-weight: bold;")
        self.follow_hint.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        # it takes the room the row has, never more: a wider row would push the results panel off the window
        self.follow_hint.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        for w in (self.loss, self.accuracy, self.speed):
            w.getPlotItem().getViewBox().sigRangeChangedManually.connect(self._moved_by_user)
            w.scene().sigMouseClicked.connect(self._clicked)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        # Equal shares, and none so short that its labels crowd (the throughput plot, given 3 of 13 parts, had a
        # view 47 pixels tall at 1280x800): the view boxes keep at least MIN_VIEW_HEIGHT.
        for w, chrome in ((self.loss, PLOT_CHROME), (self.accuracy, PLOT_CHROME), (self.speed, PLOT_CHROME_X)):
            w.setMinimumHeight(MIN_VIEW_HEIGHT + chrome)
            layout.addWidget(w, 1)
        self._items: dict[str, _RunItems] = {}
        self._labelled: str | None = None  # the run whose best epoch gets a text label
        self.set_x_mode("steps")
        self._show_empty()
        theme.register(self)

    # ----- following the run -----

    def follow(self) -> None:
        """Fit the plots to the whole run and keep them following it (undoes a zoom or pan)."""
        self.following = True
        self._auto_range()
        self._show_following()

    def _auto_range(self) -> None:
        """x from the accuracy plot's data (the loss and images/s plots follow it), the loss's y from its own;
        _fit_y sets the others' y."""
        acc, loss = self.accuracy.getPlotItem().getViewBox(), self.loss.getPlotItem().getViewBox()
        if acc.autoRangeEnabled()[0] is False:
            acc.enableAutoRange(x=True)
        if loss.autoRangeEnabled()[1] is False:
            loss.enableAutoRange(y=True)

    def _moved_by_user(self, *_) -> None:
        if self.following:
            self.following = False
            self._show_following()

    def _clicked(self, event) -> None:
        if event.double():
            self.follow()

    def _show_following(self) -> None:
        self.follow_button.setEnabled(not self.following)
        self.follow_button.setText("Following the run" if self.following else "Follow the run")
        # bold orange while zoomed, through font and palette (a style sheet would keep it light in the dark theme)
        font = self.follow_button.font()
        font.setBold(not self.following)
        self.follow_button.setFont(font)
        palette = QPalette()
        if not self.following:
            palette.setColor(QPalette.ColorRole.ButtonText, QColor("#b26a00"))
        self.follow_button.setPalette(palette)
        self.follow_hint.setVisible(not self.following)
        self.sigFollowChanged.emit(self.following)

    def _show_empty(self) -> None:
        """The ranges of plots without data; then follow what comes."""
        self.accuracy.getPlotItem().setXRange(*EMPTY_X, padding=0)
        self.loss.getPlotItem().setYRange(math.log10(EMPTY_LOSS[0]), math.log10(EMPTY_LOSS[1]), padding=0)
        self.accuracy.getPlotItem().setYRange(0.0, 100.0, padding=0.02)
        self.speed.getPlotItem().setYRange(*EMPTY_SPEED, padding=0)
        self.follow()

    def set_x_mode(self, mode: str) -> None:
        self.x_mode = mode
        for w in (self.loss, self.accuracy, self.speed):
            w.getPlotItem().setLabel("bottom", "seconds" if mode == "seconds" else "step")
            # the plots share their x axis: its name under the lowest is enough, the room goes to the curves
            w.getPlotItem().getAxis("bottom").showLabel(w is self.speed)
        for items in self._items.values():
            for line in items.marks + items.resume_lines:
                for w in (self.loss, self.accuracy, self.speed):
                    w.removeItem(line)
            items.marks.clear()
            items.resume_lines.clear()
        if self._items:
            self.follow()  # another x axis: the old zoom means nothing on it

    def clear(self) -> None:
        for w in (self.loss, self.accuracy, self.speed):
            p = w.getPlotItem()
            p.clear()  # the best-epoch labels and epoch lines go with the curves
            if p.legend is not None:
                p.legend.clear()
        self._items.clear()
        self._show_empty()

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
            self._update_resume(items, run)
        if self.following:
            self._auto_range()  # also after anything else that switched the auto range off (the menu's View All)
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

    def _update_resume(self, items: _RunItems, run: RunHistory) -> None:
        """A grey line where a resumed run continues from its checkpoint, labelled in the loss plot."""
        x = run.resume_x(self.x_mode)
        if x is None or items.resume_lines:
            return
        c = theme.colours()
        pen = pg.mkPen(c.muted, width=1.5)
        for w in (self.loss, self.accuracy, self.speed):
            label = f"continues from checkpoint step {run.resumed_step:,}" if w is self.loss else None
            line = pg.InfiniteLine(pos=x, angle=90, pen=pen, movable=False, label=label,
                                   labelOpts={"position": 0.9, "color": c.foreground, "anchors": [(0, 0), (0, 0)],
                                              "fill": pg.mkBrush(*c.fill)})
            line.setToolTip(f"the run continued from a checkpoint at step {run.resumed_step:,}" +
                            ("" if run.resumed_with_history else "; the checkpoint held no earlier curves"))
            w.addItem(line, ignoreBounds=True)
            items.resume_lines.append(line)

    def save_image(self, path: str, fmt: str) -> None:
        """The three plots as shown, one above the other, to a PNG (twice the size, for sharp text) or an SVG;
        OSError when the file cannot be written."""
        plots = (self.loss, self.accuracy, self.speed)
        width = max(w.width() for w in plots)
        height = sum(w.height() for w in plots)

        def paint(painter: QPainter) -> None:
            painter.fillRect(QRectF(0, 0, width, height), QColor(theme.colours().background))
            y = 0.0
            for w in plots:
                w.scene().render(painter, QRectF(0, y, w.width(), w.height()), QRectF(w.viewRect()))
                y += w.height()

        render_to_file(path, fmt, QSize(width, height), paint, "hetero training plots")

    def apply_theme(self, c: theme.Colours) -> None:
        """Restyle the three plots and the labels drawn over their curves (theme.apply calls this)."""
        for w in (self.loss, self.accuracy, self.speed):
            theme.style_plot(w, c)
        for items in self._items.values():
            items.best_text.fill = pg.mkBrush(*c.fill)
            items.best_text.update()
            for line in items.resume_lines:
                line.setPen(pg.mkPen(c.muted, width=1.5))
                label = _label_of(line)
                if label is not None:
                    label.fill = pg.mkBrush(*c.fill)
                    label.setColor(c.foreground)

    def resume_label(self, key: str) -> str:
        """The text of a run's checkpoint line in the loss plot ('' when it has none)."""
        items = self._items.get(key)
        if items is None or not items.resume_lines or _label_of(items.resume_lines[0]) is None:
            return ""
        return _label_of(items.resume_lines[0]).toPlainText()

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
        super().__init__(parent, axisItems={"left": ReadableAxis("left")})
        self.getPlotItem().showGrid(y=True, alpha=0.25)
        self.getPlotItem().getAxis("bottom").enableAutoSIPrefix(False)
        self._bars: list = []
        self.error_bars: pg.ErrorBarItem | None = None
        self.value_labels: list[pg.TextItem] = []
        self._beams: list[tuple[float, float]] = []  # (x, top of the error bar) of each value label
        theme.register(self)

    def show_values(self, title: str, unit: str, labels: list[str], values: list[float], spreads: list[float],
                    colours: list[str], best: int | None) -> None:
        p = self.getPlotItem()
        p.clear()
        p.setTitle(title, size="10pt")
        p.setLabel("left", unit)
        x = np.arange(len(values), dtype=np.float64)
        heights = np.nan_to_num(np.asarray(values, dtype=np.float64))
        brushes = [pg.mkBrush(c) for c in colours]
        ink = theme.colours().foreground
        bars = pg.BarGraphItem(x=x, height=heights, width=0.6, brushes=brushes,
                               pens=[pg.mkPen(ink, width=2 if k == best else 0.5) for k in range(len(x))])
        p.addItem(bars)
        err = np.nan_to_num(np.asarray(spreads, dtype=np.float64))
        if err.any():
            self.error_bars = pg.ErrorBarItem(x=x, y=heights, height=2 * err, beam=0.15, pen=pg.mkPen(ink))
            p.addItem(self.error_bars)
        else:
            self.error_bars = None
        # each value above its error bar's top beam (drawn over it, the bar hid the digits), a few pixels clear
        tops = heights + err
        self._beams = [(float(x[k]), float(tops[k])) for k in range(len(values))]
        self.value_labels = []
        for k, v in enumerate(values):
            text = pg.TextItem(("★ " if k == best else "") + format_value(v), color=ink, anchor=(0.5, 1.0))
            text.setPos(x[k], tops[k])
            p.addItem(text)
            self.value_labels.append(text)
        p.getAxis("bottom").setTicks([[(float(k), lab) for k, lab in enumerate(labels)]])
        p.setXRange(-0.6, len(values) - 0.4, padding=0)
        self._fit_labels()
        self._bars = list(values)

    def _fit_labels(self) -> None:
        """The y range from 0 to the highest beam plus a label's height, each value label LABEL_GAP pixels above
        its beam (in pixels: redone when the chart is resized)."""
        vb = self.getPlotItem().getViewBox()
        height = vb.height()
        top = max((beam for _, beam in self._beams), default=0.0)
        label = max((t.boundingRect().height() for t in self.value_labels), default=0.0)
        share = (label + LABEL_GAP + 2) / height if height > 0 else 0.25
        vb.setYRange(0, top / (1 - min(share, 0.5)) if top > 0 else 1.0, padding=0)
        if height <= 0:
            return
        per_pixel = (vb.viewRange()[1][1] - vb.viewRange()[1][0]) / height
        for text, (x, beam) in zip(self.value_labels, self._beams):
            text.setPos(x, beam + LABEL_GAP * per_pixel)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if getattr(self, "_beams", None):  # (PlotWidget resizes itself before __init__ has set them)
            self._fit_labels()

    def apply_theme(self, c: theme.Colours) -> None:
        """Restyle the chart, its bars' outlines, error bars and value labels."""
        theme.style_plot(self, c)
        if self.error_bars is not None:
            self.error_bars.setData(pen=pg.mkPen(c.foreground))
        for text in self.value_labels:
            text.setColor(c.foreground)
        for item in self.getPlotItem().items:
            if isinstance(item, pg.BarGraphItem):
                pens = [pg.mkPen(c.foreground, width=p.widthF()) for p in item.opts["pens"]]
                item.setOpts(pens=pens)

    def bar_count(self) -> int:
        return len(self._bars)


def render_to_file(path: str, fmt: str, size: QSize, paint: Callable[[QPainter], None], title: str = "") -> None:
    """Call paint(painter) on a PNG of twice `size` (sharp text) or on an SVG drawing of it, and write the file;
    OSError when it cannot be written."""
    if fmt == "svg":
        generator = QSvgGenerator()
        generator.setFileName(path)
        generator.setSize(size)
        generator.setViewBox(QRect(QPoint(0, 0), size))
        generator.setTitle(title)
        painter = QPainter()
        if not painter.begin(generator):
            raise OSError("Qt could not write the SVG file")
        paint(painter)
        painter.end()
        return
    image = QImage(size * 2, QImage.Format.Format_RGB32)
    image.fill(QColor("white"))
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.TextAntialiasing)
    painter.scale(2, 2)
    paint(painter)
    painter.end()
    if not image.save(path, "PNG"):
        raise OSError("Qt could not write the image")


def _label_of(line: pg.InfiniteLine):
    """An InfiniteLine's text label, or None: pyqtgraph gives the line a .label only when it was made with one."""
    return getattr(line, "label", None)


def format_value(v) -> str:
    """A figure with as many digits as it deserves: '12,345', '98.7', '0.0832', '-' when missing."""
    if v is None or not isinstance(v, (int, float)) or not np.isfinite(v):
        return "-"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.3g}"
