"""The window at 1280x800 and 1920x1080 with runs going: every column of the device lists and the run table shows
its header and cells whole (the device name elided, whole in its tooltip), the plots are tall enough to read and
the digit captions are at least 8 pt and whole."""

from __future__ import annotations

import time

import numpy as np
import pytest
from hetero.gui.digits import MIN_POINT_SIZE
from hetero.gui.main_window import MainWindow
from hetero.gui.plots import MIN_VIEW_HEIGHT
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHeaderView, QTableWidget, QTreeWidget

from hetero.selection import DeviceInfo
from hetero.train import EpochEndEvent, StepEvent, TrainingControl

CPU = DeviceInfo(id="0:0", platform="Portable Computing Language", name="pthread-skylake-avx512-AMD EPYC 7B12 "
                 "64-Core Processor", vendor="AuthenticAMD", type="cpu", compute_units=64, global_mem_bytes=9 << 30,
                 max_sub_devices=2)
GPU = DeviceInfo(id="1:0", platform="NVIDIA CUDA", name="NVIDIA GeForce RTX 3080 Ti Laptop GPU", vendor="NVIDIA",
                 type="gpu", compute_units=58, global_mem_bytes=16 << 30, fp16=True)
BROKEN = DeviceInfo(id="2:0", platform="Q", name="Old CPU", vendor="W", type="cpu", compute_units=4, usable=False,
                    reason="kernel build fails: unknown target CPU 'generic'")
MARGIN = 6  # what Qt draws around a cell's text (the style's focus frame margins)


class FakeTestSet:
    images = np.zeros((10000, 28, 28), np.uint8)
    labels = np.arange(10000) % 10
    classes = [str(k) for k in range(10)]


def wide_figures(worker) -> None:
    """A run with figures as wide as they get on a long run (step 4,690 of 9,380, 12,345 images/s, an hour left),
    then running until stopped."""
    worker.sigTestSet.emit(worker.key, FakeTestSet())
    for k in range(4681, 4691):
        worker.on_event(StepEvent(k, 4, k - 3753, 938, 0.0712, 0.9737, 12345.0, 3600.0 * k / 4690))
    predictions = FakeTestSet.labels.copy()
    predictions[::7] = 3
    worker.on_event(EpochEndEvent(4, 0.07, 0.9737, 0.065, 0.9794, 120.0, np.eye(10, dtype=np.int64) * 1126,
                                  predictions))
    while not worker.control.stopped:
        time.sleep(0.01)


def texts_fit(view, column: int) -> list[str]:
    """The texts of a column (its header's too) that do not fit its width."""
    width = view.columnWidth(column)
    metrics = view.fontMetrics()
    bad = []
    if isinstance(view, QTreeWidget):
        header = view.headerItem().text(column)
        items = []
        stack = [view.topLevelItem(k) for k in range(view.topLevelItemCount())]
        while stack:
            item = stack.pop()
            items.append(item.text(column))
            stack += [item.child(k) for k in range(item.childCount())]
    else:
        header = view.horizontalHeaderItem(column).text()
        items = [view.item(r, column).text() for r in range(view.rowCount())
                 if view.item(r, column) is not None and view.columnSpan(r, column) == 1]
    for text in [header, *items]:
        if metrics.horizontalAdvance(text) + MARGIN > width:
            bad.append(text)
    return bad


def check_columns(view, elided: int) -> None:
    """Every shown column but `elided` holds its header and cells whole; all columns are in sight, none scrolled."""
    header = view.header() if isinstance(view, QTreeWidget) else view.horizontalHeader()
    shown = [c for c in range(header.count()) if not header.isSectionHidden(c)]
    for c in shown:
        if c != elided:
            assert not texts_fit(view, c), (c, texts_fit(view, c), view.columnWidth(c))
            assert view.columnWidth(c) >= max(header.sectionSizeHint(c), view.sizeHintForColumn(c))
    right = max(header.sectionViewportPosition(c) + header.sectionSize(c) for c in shown)
    sizes = [(header.sectionSize(c), view.model().headerData(c, Qt.Orientation.Horizontal)) for c in shown]
    assert right <= view.viewport().width(), (right, view.viewport().width(), sizes)
    assert view.horizontalScrollBar().maximum() == 0
    assert isinstance(header, QHeaderView)


@pytest.fixture(params=[(1280, 800), (1920, 1080)], ids=["1280x800", "1920x1080"])
def window(request, qtbot):
    w = MainWindow(demo=True, runner=wide_figures, control_factory=TrainingControl, infos=[CPU, GPU, BROKEN])
    qtbot.addWidget(w)
    w.resize(*request.param)
    w.show()
    view = w.train_view
    view.devices.select(["0:0/2.0", "0:0/2.1", "1:0"])
    view.epochs_box.setValue(10)
    assert view.start()
    qtbot.waitUntil(lambda: all(r.epoch_ends for r in view.runs.values()) and len(view.test_sets) == 3,
                    timeout=10000)
    view._dirty = True
    view.redraw()
    view._show_results()
    qtbot.wait(50)
    yield w
    view.stop_all()


def test_the_device_lists_show_every_column_they_keep_whole(qtbot, window):
    for tab, panel in ((window.train_view, window.train_view.devices), (window.compare_view,
                                                                         window.compare_view.devices)):
        window.tabs.setCurrentWidget(tab)
        qtbot.wait(20)
        tree = panel.tree
        check_columns(tree, elided=0)
        assert not tree.isColumnHidden(5)  # the Status column is never the one dropped
        metrics = tree.fontMetrics()
        for item in panel._items.values():
            if item.parent() is not None:  # "half 0 (0:0/2.0)" whole, beside its indentation and tick box
                assert metrics.horizontalAdvance(item.text(0)) + 2 * tree.indentation() <= tree.columnWidth(0)
            assert item.text(0) in item.toolTip(0) or item.data(0, 0x0100) in item.toolTip(0)
        assert tree.columnWidth(0) >= metrics.horizontalAdvance("pthread-skyl…")
    window.tabs.setCurrentIndex(0)


def test_the_run_table_shows_every_figure_and_the_eta(qtbot, window):
    view = window.train_view
    table: QTableWidget = view.run_table
    assert table.rowCount() == 3
    assert table.item(0, 3).text() == "4,690" and table.item(0, 8).text() == "12,345"
    assert table.item(0, 7).text() == "97.94% (ep 5)" and table.item(0, 9).text() == "1:00:00"  # the ETA, in sight
    check_columns(table, elided=0)
    assert table.columnWidth(0) >= view._device_column_width()
    for row in range(3):
        assert table.item(row, 0).toolTip().startswith(table.item(row, 0).text().split(" ")[0])  # the name whole
    assert table.verticalScrollBar().maximum() == 0


def test_the_plots_are_tall_enough_and_the_digit_captions_readable(qtbot, window):
    view = window.train_view
    assert window.minimumSizeHint().height() <= window.height()  # nothing squeezed out at the bottom
    plots = view.plots
    for w in (plots.loss, plots.accuracy, plots.speed):
        assert w.getPlotItem().getViewBox().height() >= MIN_VIEW_HEIGHT, w.getPlotItem().titleLabel.text
    grid = view.digits
    assert grid.cells and len(grid.cells) == grid.capacity()
    font = grid.caption_font()
    assert font.pointSizeF() >= MIN_POINT_SIZE
    metrics = grid.fontMetrics().__class__(font)
    for n in range(len(grid.cells)):
        assert metrics.horizontalAdvance(grid.cell_text(n)) <= grid.cell_rect(n).width(), grid.cell_text(n)
    confusion = view.confusion  # four-digit counts whole in the narrowest results panel
    assert confusion.fontMetrics().horizontalAdvance("1126") + MARGIN + 2 <= min(  # the grid line too
        confusion.columnWidth(c) for c in range(10))
    left = view.settings_scroll  # the form and device list fit their column: nothing cut at its right edge
    assert left.widget().width() <= left.viewport().width() and left.horizontalScrollBar().maximum() == 0
    assert left.widget().minimumSizeHint().width() <= left.viewport().width()
    label = view.digits_caption
    wrong = int(np.sum(np.arange(0, 10000, 7) % 10 != 3))
    assert label.text() == f"{wrong:,} of 10,000 misclassified"
    assert label.height() >= label.heightForWidth(label.width())  # its lines whole, not squeezed

