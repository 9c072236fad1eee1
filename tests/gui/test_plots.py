"""The training plots without training: the loss axis's labels at any range, and the view following the run
until the user zooms (and again after Follow)."""

from __future__ import annotations

import math
import re
from types import SimpleNamespace

import pytest
from hetero.gui.history import RunHistory
from hetero.gui.plots import TrainPlots, format_tick, format_ticks, linear_ticks, log_ticks
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QImage, QPainter, QWheelEvent
from PySide6.QtWidgets import QApplication

# a plain number or a power of ten, '2·10⁶', '10⁻⁵': never '3e+02', '(x0.001)' or an SI letter
READABLE = re.compile(r"(\d{1,4}|\d{2,3}(,\d{3})+)(\.\d+)?|(\d(\.\d+)?·)?10⁻?[⁰¹²³⁴⁵⁶⁷⁸⁹]+")


def step(k, loss, epoch=0, batches=1000):
    return SimpleNamespace(event="step", step=k, epoch=epoch, batch=(k - 1) % batches, batches=batches, loss=loss,
                           accuracy=0.9, images_per_s=1000.0, seconds=0.01 * k)


def a_run(steps, loss=lambda k: 2.3 / k**0.5) -> RunHistory:
    run = RunHistory("0:0", "0:0 cpu", "#1f77b4", epochs=1)
    for k in steps:
        run.add(step(k, loss(k)))
    return run


@pytest.fixture
def plots(qtbot):
    p = TrainPlots()
    qtbot.addWidget(p)
    p.resize(800, 700)
    p.show()
    qtbot.waitExposed(p)
    return p


def drawn_labels(axis) -> list[tuple[str, object]]:
    """The (text, rectangle) of every label the axis draws at its range and size now."""
    image = QImage(10, 10, QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    try:
        _, _, texts = axis.generateDrawSpecs(painter)
    finally:
        painter.end()
    return [(text, rect) for rect, _, text in texts]


@pytest.mark.parametrize("low, high", [(0.21, 0.34), (2.2, 2.4), (150.0, 300.0), (0.09, 0.5), (0.01, 3.0),
                                       (1e-4, 10.0), (1e-6, 1e6)])
def test_the_loss_axis_labels_are_few_distinct_readable_and_apart(qtbot, plots, low, high):
    p = plots.loss.getPlotItem()
    p.setYRange(math.log10(low), math.log10(high), padding=0)
    qtbot.wait(10)
    axis = p.getAxis("left")
    labels = drawn_labels(axis)
    texts = [t for t, _ in labels]
    assert 2 <= len(texts) <= 10, texts
    assert len(set(texts)) == len(texts), texts
    assert all(READABLE.fullmatch(t) for t in texts), texts
    rects = sorted((r for _, r in labels), key=lambda r: r.top())
    assert all(a.bottom() <= b.top() for a, b in zip(rects, rects[1:])), texts  # none over another
    assert "(x" not in axis.labelString()


@pytest.mark.parametrize("top", [1900.0, 3000.0, 5506.0, 7000.0, 123456.0])
def test_the_short_throughput_plot_keeps_a_label_and_none_over_another(qtbot, plots, top):
    plots.speed.setFixedHeight(120)  # shorter than the app lets it be (a view some 48 pixels tall)
    p = plots.speed.getPlotItem()
    p.setYRange(0.0, top, padding=0)
    qtbot.wait(10)
    labels = drawn_labels(p.getAxis("left"))
    texts = [t for t, _ in labels]
    assert 1 <= len(texts) <= 4 and all(re.fullmatch(r"\d{1,4}|\d{2,3}(,\d{3})+", t) for t in texts), texts
    rects = sorted((r for _, r in labels), key=lambda r: r.top())
    assert all(a.bottom() <= b.top() for a, b in zip(rects, rects[1:])), texts
    assert linear_ticks(0, 3000, 45, 25)[0] == [(0.0, "0"), (2000.0, "2000")]
    assert [t for _, t in linear_ticks(0, 1900, 45, 25)[0]] == ["0", "1000"]  # one inside, not only 0 at the edge
    # seen at 1280x800: 5000 was the only label, 4 pixels under the top, and so cut off: none showed
    assert [t for _, t in linear_ticks(0, 5506, 43.4, 27.9)[0]] == ["0", "2000", "4000"]


def test_no_axis_scales_its_numbers_and_empty_plots_have_sensible_ranges(plots):
    for w in (plots.loss, plots.accuracy, plots.speed):
        for name in ("left", "bottom"):
            assert "(x" not in w.getPlotItem().getAxis(name).labelString()
    assert plots.accuracy.getPlotItem().getAxis("bottom").labelText == "step"
    x_range, (lo, hi) = plots.loss.getPlotItem().getViewBox().viewRange()
    assert x_range[0] == pytest.approx(0.0, abs=1) and x_range[1] == pytest.approx(100.0, abs=5)
    assert (10**lo, 10**hi) == (pytest.approx(0.01), pytest.approx(10.0))
    assert drawn_labels(plots.loss.getPlotItem().getAxis("left"))  # labelled before any data


def test_tick_labels_in_words():
    assert format_tick(0.25, 0.05) == "0.25" and format_tick(0.30000000000000004, 0.05) == "0.3"
    assert format_tick(100.0) == "100" and format_tick(1e6) == "10⁶" and format_tick(2e-5) == "2·10⁻⁵"
    assert format_tick(120000.0, 20000.0) == "120,000"
    assert format_ticks([1e-6, 1e-3, 1.0]) == ["10⁻⁶", "10⁻³", "10⁰"]  # one style per axis
    narrow = [t for _, t in log_ticks(math.log10(0.21), math.log10(0.34), 200, 24)[0]]
    assert narrow == ["0.22", "0.24", "0.26", "0.28", "0.3", "0.32", "0.34"]
    wide = [t for _, t in log_ticks(-3, 3, 120, 24)[0]]
    assert wide == ["0.01", "1", "100"]  # every other decade when each would be closer than a label's room


def wheel(widget, steps: int = 3) -> None:
    """Turn the mouse wheel over the middle of a plot (zoom in)."""
    view = widget.viewport()
    centre = QPointF(view.width() / 2, view.height() / 2)
    event = QWheelEvent(centre, QPointF(view.mapToGlobal(centre.toPoint())), QPoint(0, 0), QPoint(0, 120 * steps),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(view, event)


def x_range(plots) -> list[float]:
    return plots.loss.getPlotItem().getViewBox().viewRange()[0]


def redraw(qtbot, plots, runs) -> None:
    """What the view's timer does, and a paint (pyqtgraph fits its auto ranges just before painting)."""
    plots.update_runs(runs, 0.6)
    qtbot.wait(30)


def test_a_zoom_stops_following_until_follow_and_a_new_run_follows_again(qtbot, plots):
    run = a_run(range(1, 201))
    redraw(qtbot, plots, [run])
    assert plots.following and not plots.follow_button.isEnabled() and plots.follow_hint.isHidden()
    assert x_range(plots)[1] == pytest.approx(200, rel=0.05)

    wheel(plots.loss)
    assert not plots.following  # the user reads a part of it: new steps do not move it
    assert plots.follow_button.isEnabled() and not plots.follow_hint.isHidden()
    zoomed = x_range(plots)
    assert zoomed[1] - zoomed[0] < 150
    for k in range(201, 401):
        run.add(step(k, 2.3 / k**0.5))
    redraw(qtbot, plots, [run])
    assert x_range(plots) == pytest.approx(zoomed)

    qtbot.mouseClick(plots.follow_button, Qt.MouseButton.LeftButton)
    redraw(qtbot, plots, [run])
    assert plots.following and plots.follow_hint.isHidden()
    low, high = x_range(plots)
    assert low <= 1 and high >= 400  # the whole run, its newest steps included
    y_low, y_high = plots.loss.getPlotItem().getViewBox().viewRange()[1]
    assert 10**y_low <= min(run.loss) and 10**y_high >= max(run.loss)

    wheel(plots.accuracy)  # any of the linked plots
    assert not plots.following
    plots.clear()  # a new run
    assert plots.following
    redraw(qtbot, plots, [a_run(range(1, 51))])
    assert x_range(plots)[1] == pytest.approx(50, rel=0.05)


def test_a_double_click_follows_the_run_again(qtbot, plots):
    run = a_run(range(1, 101))
    redraw(qtbot, plots, [run])
    wheel(plots.speed)
    assert not plots.following
    view = plots.speed.viewport()
    centre = view.rect().center()
    qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=centre)  # what a double-click sends: a click,
    qtbot.mouseDClick(view, Qt.MouseButton.LeftButton, pos=centre)  # a double-click press and a release
    qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, pos=centre)
    assert plots.following


def test_a_theme_change_restyles_a_resumed_runs_checkpoint_lines(plots):
    from hetero.gui import theme

    run = RunHistory("0:0", "0:0 cpu", "#1f77b4", epochs=1)
    run.resume(600, 0)
    for k in range(601, 611):
        run.add(step(k, 0.5))
    plots.update_runs([run], 0.0)
    assert plots.resume_label("0:0") == "continues from checkpoint step 600"
    # only the loss plot's line has a label: the accuracy and throughput lines have none to restyle
    plots.apply_theme(theme.DARK)
    line = plots._items["0:0"].resume_lines[0]
    assert line.label.color.name() == theme.DARK.foreground.lower()
    plots.apply_theme(theme.LIGHT)
    assert line.label.color.name() == theme.LIGHT.foreground.lower()
