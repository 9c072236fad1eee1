"""Widgets fed by hand: the device panel, and the log's words for a run that diverges (a scripted runner)."""

from __future__ import annotations

import time

from hetero.gui.device_panel import DevicePanel
from hetero.gui.log_panel import LogPanel
from hetero.gui.main_window import MainWindow
from hetero.gui.train_view import TrainView
from PySide6.QtCore import Qt

from hetero.selection import DeviceInfo
from hetero.train import DoneEvent, StepEvent, TrainingControl

GPU = DeviceInfo(id="0:0", platform="P", name="Big GPU", vendor="V", type="gpu", compute_units=40,
                 global_mem_bytes=8 << 30, fp16=True)
BROKEN = DeviceInfo(id="1:0", platform="Q", name="Old CPU", vendor="W", type="cpu", compute_units=4,
                    usable=False, reason="kernel build fails: unknown target CPU 'generic'")
CPU = DeviceInfo(id="2:0", platform="R", name="CPU", vendor="X", type="cpu", compute_units=4, max_sub_devices=4)


def test_device_panel_lists_greys_selects_and_splits(qtbot):
    panel = DevicePanel([GPU, BROKEN, CPU])
    qtbot.addWidget(panel)
    assert panel.selected_ids() == ["0:0"]  # the best usable device is ticked
    top = [panel.tree.topLevelItem(k) for k in range(panel.tree.topLevelItemCount())]
    assert [t.text(0) for t in top] == ["Big GPU", "Old CPU", "CPU"]
    assert top[0].text(2) == "40" and top[0].text(3) == "8.0 GiB" and top[0].text(4) == "yes"
    assert not top[1].flags() & top[1].flags().ItemIsEnabled
    assert top[1].text(5) == "unusable" and "hetero cannot use" in top[1].toolTip(0)  # a short Status, never cut
    assert "1:0 Old CPU: kernel build fails: unknown target CPU" in panel.unusable_note.text()  # why, whole
    assert top[2].childCount() == 2  # the two halves of the CPU
    assert panel.select_spec("2:0/2") == ["2:0/2.0", "2:0/2.1"]
    assert panel.selected_ids() == ["2:0/2.0", "2:0/2.1"]
    panel.select_spec("2:0/4.3")  # a split not listed yet gets its row
    assert panel.selected_ids() == ["2:0/4.3"] and panel.info("2:0/4.3").compute_units == 1


def scripted_divergence(worker):
    worker.on_event(StepEvent(1, 0, 0, 10, 2.3, 0.1, 500.0, 0.1))
    worker.on_event(StepEvent(2, 0, 1, 10, float("nan"), 0.1, 500.0, 0.2))
    worker.on_event(DoneEvent("diverged", "the loss became nan at step 2", 2, 0, 0.2))


def test_a_diverging_run_is_explained_in_the_log(qtbot):
    view = TrainView(LogPanel(), DevicePanel([GPU]), runner=scripted_divergence, control_factory=TrainingControl)
    qtbot.addWidget(view)
    with qtbot.waitSignal(view.sigRunsFinished, timeout=10000):
        view.start()
    (run,) = view.runs.values()
    assert run.state == "failed" and len(run.loss) == 2
    errors = [m for level, m in view.log.entries if level == "error"]
    assert len(errors) == 1 and "NaN or infinite at step 2" in errors[0] and "lower learning rate" in errors[0]
    view._dirty = True
    view.redraw()  # a NaN loss is left out of the log-scale plot, not drawn as a gap that breaks it
    assert view.plots.curve_data("0:0")["loss_raw"] == 1


def slow_to_stop(worker):
    while not worker.control.stopped:
        time.sleep(0.01)
    time.sleep(2.5)  # like a long test-set evaluation that ends only after the stop
    worker.on_event(DoneEvent("stopped", "stopped", 0, 0, 2.5))


def test_closing_waits_for_a_slow_worker_without_blocking(qtbot):
    window = MainWindow(demo=True, runner=slow_to_stop, control_factory=TrainingControl, infos=[GPU])
    qtbot.addWidget(window)
    window.show()
    window.train_view.start()
    assert window.close() is False  # still winding down: the close is retried, the window stays responsive
    assert "Stopping the workers" in window.statusBar().currentMessage()
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=10000)
    assert not window.train_view.is_running()


def test_digit_grid_puts_mistakes_first_and_names_fashion_classes(qtbot):
    import numpy as np
    from hetero.gui.digits import DigitGrid

    grid = DigitGrid(columns=4, rows=2)
    qtbot.addWidget(grid)
    images = np.zeros((20, 28, 28), np.uint8)
    labels = np.arange(20) % 10
    predictions = labels.copy()
    predictions[[15, 17]] = 0
    grid.show_predictions(images, labels, predictions, [str(k) for k in range(10)])
    assert [c[3] for c in grid.cells] == [0, 1, 2, 3, 4, 5, 15, 17]  # both mistakes shown, in test-set order
    assert grid.caption == "2 of 20 misclassified" and grid.names is None
    grid.mistakes_only = True
    grid.show_predictions(images, labels, predictions, ["T-shirt/top", "Trouser"] + ["x"] * 8)
    assert [c[3] for c in grid.cells] == [15, 17] and grid.names[0] == "T-shirt"
    grid.grab()  # paints without error


def test_in_the_train_tab_ticking_a_cpu_unticks_its_halves_and_the_other_way_round(qtbot):
    panel = DevicePanel([GPU, CPU])
    qtbot.addWidget(panel)
    panel.show()
    items = panel._items
    items["2:0"].setCheckState(0, Qt.CheckState.Checked)
    items["2:0/2.0"].setCheckState(0, Qt.CheckState.Checked)
    assert panel.selected_ids() == ["0:0", "2:0", "2:0/2.0"]  # the Compare tab measures them one by one
    panel.select(["0:0"])
    panel.exclusive_parts = True  # what the Train view asks for: its runs share the cores at once
    with qtbot.waitSignal(panel.sigSelectionChanged):
        items["2:0/2.0"].setCheckState(0, Qt.CheckState.Checked)  # what a click on its box does
    items["2:0/2.1"].setCheckState(0, Qt.CheckState.Checked)
    assert panel.selected_ids() == ["0:0", "2:0/2.0", "2:0/2.1"] and not panel.note.isVisible()
    items["2:0"].setCheckState(0, Qt.CheckState.Checked)
    assert panel.selected_ids() == ["0:0", "2:0"]
    assert panel.note.isVisible() and "Unticked 2:0/2.0, 2:0/2.1" in panel.note.text()
    items["2:0/2.1"].setCheckState(0, Qt.CheckState.Checked)
    assert panel.selected_ids() == ["0:0", "2:0/2.1"] and "Unticked 2:0:" in panel.note.text()
    assert panel.overlapping(["2:0", "2:0/2.1", "0:0"]) == [("2:0", "2:0/2.1")]


def waiting(worker):
    while not worker.control.stopped:
        time.sleep(0.01)
    worker.on_event(DoneEvent("stopped", "stopped", 0, 0, 0.1))


def test_every_run_shows_in_the_run_table_and_overlaps_are_warned(qtbot):
    window = MainWindow(demo=True, runner=waiting, control_factory=TrainingControl,
                        infos=[DeviceInfo(id="2:0", platform="R", name="pthread-haswell-AMD EPYC 7B12 64-Core "
                                          "Processor", vendor="X", type="cpu", compute_units=2, max_sub_devices=2)])
    qtbot.addWidget(window)
    window.resize(1280, 800)
    window.show()
    view = window.train_view
    view.devices.select(["2:0", "2:0/2.0", "2:0/2.1"])  # as --device can; a click would untick the others
    assert view.start()
    qtbot.wait(50)
    assert any("2:0 and 2:0/2.0 share the same cores" in m for level, m in view.log.entries if level == "warning")
    table = view.run_table
    assert table.rowCount() == 3
    for row in range(3):  # figures as wide as they get: the columns need a horizontal scroll bar
        for col in range(2, table.columnCount()):
            table.item(row, col).setText("99.99% (ep 100) 123,456")
    qtbot.wait(50)
    assert table.horizontalScrollBar().maximum() > 0
    for row in range(3):  # each row whole in sight, none behind the scroll bar
        rect = table.visualRect(table.model().index(row, 0))
        assert table.viewport().rect().contains(rect), (row, rect, table.viewport().rect())
    assert table.verticalScrollBar().maximum() == 0
    view.stop_all()
