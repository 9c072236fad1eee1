"""What the Train view shows of a run, with scripted runners instead of training (no device needed): a new run
starts from a clean slate, a stopped or failed run's bar shows how far it got, the confusion header."""

from __future__ import annotations

import math
import os
import re
import threading
import time

import numpy as np
import pytest
from hetero.gui.device_panel import DevicePanel
from hetero.gui.log_panel import LogPanel
from hetero.gui.plots import EMPTY_LOSS, EMPTY_X
from hetero.gui.train_view import TrainView
from PySide6.QtCore import Qt

from hetero.selection import DeviceInfo
from hetero.train import DoneEvent, EpochEndEvent, PausedEvent, StepEvent, TrainingControl

GPU = DeviceInfo(id="0:0", platform="P", name="Big GPU", vendor="V", type="gpu", compute_units=40,
                 global_mem_bytes=8 << 30, fp16=True)


def steps(worker, n: int, batches: int = 10) -> None:
    for k in range(1, n + 1):
        worker.on_event(StepEvent(k, (k - 1) // batches, (k - 1) % batches, batches, 2.3 / k, 0.1 * k, 500.0,
                                  0.1 * k))


def an_epoch(worker, epoch: int = 0) -> None:
    confusion = np.eye(10, dtype=np.int64) * 4
    worker.on_event(EpochEndEvent(epoch, 0.5, 0.8, 0.4, 1.0, 1.0, confusion, np.arange(40) % 10))


def stopped_at_3(worker) -> None:
    steps(worker, 3)
    worker.on_event(DoneEvent("stopped", "stopped", 3, 0, 0.3))


def failing_at_5(worker) -> None:
    steps(worker, 5)
    raise RuntimeError("the device went away")


def finished(worker) -> None:
    steps(worker, 10)
    an_epoch(worker)
    worker.on_event(DoneEvent("finished", "", 10, 1, 1.0))


def scripted_view(qtbot, runner) -> TrainView:
    view = TrainView(LogPanel(), DevicePanel([GPU]), runner=runner, control_factory=TrainingControl)
    qtbot.addWidget(view)
    view.resize(1280, 800)
    view.show()
    view.epochs_box.setValue(1)
    return view


def run_to_end(qtbot, view, runner) -> None:
    view.runner = runner
    with qtbot.waitSignal(view.sigRunsFinished, timeout=10000):
        assert view.start()
    qtbot.waitUntil(lambda: all(r.done is not None for r in view.runs.values()), timeout=5000)
    view._dirty = True
    view.redraw()


@pytest.mark.parametrize("runner, state, percent", [(stopped_at_3, "stopped", 30), (failing_at_5, "failed", 50)])
def test_a_stopped_or_failed_run_shows_how_far_it_got(qtbot, runner, state, percent):
    view = scripted_view(qtbot, runner)
    run_to_end(qtbot, view, runner)
    (run,) = view.runs.values()
    assert run.state == state
    assert view.progress.value() == 10 * percent  # not a full bar
    assert view.progress.format() == f"{state} at {percent}% · 1 run(s)"
    assert view.run_table.item(0, 1).text() == state and view.run_table.item(0, 9).text() == "-"  # no ETA


def test_a_new_run_starts_from_a_clean_slate(qtbot):
    view = scripted_view(qtbot, finished)
    run_to_end(qtbot, view, finished)
    assert view.progress.format() == "finished at 100% · 1 run(s)"
    header = view.confusion.horizontalHeader().model()
    assert [header.headerData(k, Qt.Orientation.Horizontal) for k in range(10)] == [str(k) for k in range(10)]
    least = view.centre.minimumSizeHint().width()
    view.plots.loss.getPlotItem().getViewBox().scaleBy((0.5, 0.5))  # the user looked closer at run 1
    view.plots._moved_by_user()
    assert view.plots.follow_hint.isVisible()
    assert view.centre.minimumSizeHint().width() <= least  # the hint fits the row; it never widens the view

    go = threading.Event()

    def slow_start(worker):  # a big batch: loading and the first step take a while
        go.wait(10)
        finished(worker)

    view.runner = slow_start
    assert view.start()
    (run,) = view.runs.values()
    assert view.progress.value() == 0 and view.progress.format().startswith("starting")
    assert view.run_table.rowCount() == 1 and view.run_table.item(0, 1).text() == "starting"
    assert view.run_table.item(0, 3).text() == "-"
    assert view.confusion.columnCount() == 0 and view.confusion.matrix is None  # not an empty "1..10" header
    assert "Results appear" in view.summary.text() and not view.digits.cells
    plots = view.plots
    assert plots.following
    qtbot.wait(50)  # a paint: pyqtgraph fits its auto ranges then (the new run's empty items must not move it)
    x, (lo, hi) = plots.loss.getPlotItem().getViewBox().viewRange()
    assert x == pytest.approx(list(EMPTY_X), abs=1) and (lo, hi) == pytest.approx([math.log10(v) for v in EMPTY_LOSS])
    view.redraw()
    assert view.progress.format().startswith("starting")  # the timer keeps saying so
    go.set()
    with qtbot.waitSignal(view.sigRunsFinished, timeout=10000):
        pass
    qtbot.waitUntil(lambda: run.done is not None, timeout=5000)
    view._dirty = True
    view.redraw()
    assert [header.headerData(k, Qt.Orientation.Horizontal) for k in range(10)] == [str(k) for k in range(10)]
    assert view.confusion.matrix.sum() == 40


def steps_until_stopped(worker) -> None:
    """Like fit: a step every few ms, a PausedEvent and a wait whenever paused, until stopped."""
    worker.model = object()  # "built"; the test replaces save_now
    step = 0
    while not worker.control.stopped:
        step += 1
        worker.on_event(StepEvent(step, 0, step - 1, 100000, 1.0, 0.5, 100.0, 0.01 * step))
        if worker.control.paused:
            worker.on_event(PausedEvent(step, 0))
            worker.control.wait_while_paused()
        time.sleep(0.002)
    worker.on_event(DoneEvent("stopped", "", step, 0, 0.01 * step))


def test_the_saved_file_is_named_after_the_step_it_holds(qtbot, monkeypatch, tmp_path):
    from hetero.gui import train_view, workers

    written = []
    monkeypatch.setattr(workers.TrainWorker, "save_now", lambda self, path: written.append((path, self.last_step)))
    offered = {}

    def dialog(parent, caption, path, filters):  # the user takes a while, then keeps the name offered
        offered["name"] = os.path.basename(path)
        qtbot.wait(300)
        return str(tmp_path / offered["name"]), filters

    monkeypatch.setattr(train_view.QFileDialog, "getSaveFileName", dialog)
    view = scripted_view(qtbot, steps_until_stopped)
    assert view.start()
    (run,) = view.runs.values()
    qtbot.waitUntil(lambda: len(run.steps) >= 5, timeout=10000)
    assert view.save_checkpoint()
    qtbot.waitUntil(lambda: bool(written), timeout=10000)
    (path, step), = written
    offered_step = int(re.search(r"step(\d+)", offered["name"])[1])
    assert step > offered_step  # training went on while the dialog was open
    assert os.path.basename(path) == f"lenet5-mnist-step{step}.safetensors"
    assert any(f"step{step}.safetensors (epoch 1, step {step})" in m for _, m in view.log.entries)
    # a name of the user's own is kept as typed
    monkeypatch.setattr(train_view.QFileDialog, "getSaveFileName",
                        lambda *a: (str(tmp_path / "mine-step3.safetensors"), ""))
    assert view.save_checkpoint()
    qtbot.waitUntil(lambda: len(written) == 2, timeout=10000)
    assert written[1][0] == str(tmp_path / "mine-step3.safetensors")
    view.stop()
    qtbot.waitUntil(lambda: not view.is_running(), timeout=10000)


def look_for_data(worker) -> None:
    from hetero import data

    data.get_dataset("mnist", root=worker.config.data_dir, train=True)  # as run_training does first


@pytest.mark.parametrize("folder", [True, False])
def test_missing_data_is_shown_whole_with_the_form_words_and_the_field_marked(qtbot, isolated, folder):
    from hetero.gui.main_window import MainWindow

    window = MainWindow(demo=True, runner=look_for_data, control_factory=TrainingControl, infos=[GPU])
    qtbot.addWidget(window)
    window.resize(1280, 800)
    window.show()
    view = window.train_view
    empty = isolated / "empty"
    empty.mkdir()
    view.data_edit.setText(str(empty) if folder else "")
    with qtbot.waitSignal(view.sigRunsFinished, timeout=10000):
        assert view.start()
    assert view.error_box.isVisible()
    shown = view.error_text.text()
    assert "Looked in:<br>" in shown and "The data set was not found" in shown
    assert "the Data folder (the … button beside it)" in shown
    assert "--data" not in shown and "root=DIR" not in shown and "explicit root" not in shown
    assert "root argument" not in shown and ("Data folder:" in shown) == folder
    assert "Looked in:\n" in view.log.toPlainText()  # the log keeps the lines too
    assert "border" in view.data_edit.styleSheet()
    message = view.field_messages["data"]
    assert message.isVisible() and "No mnist files" in message.text()
    status = window.statusBar().currentMessage()
    assert status.startswith("Training failed on 0:0") and "press Start" not in status
    assert view.start_button.isEnabled()  # files copied there since: Start may look again
    view.data_edit.setText(str(isolated))  # the user picks another folder: the mark goes
    assert view.data_edit.styleSheet() == "" and not message.isVisible()


def resumed_mid_epoch(worker) -> None:
    """fit continuing from a checkpoint at step 4 of a 10-batch epoch: its clock starts at 0 again."""
    for k in range(5, 11):
        worker.on_event(StepEvent(k, 0, k - 1, 10, 1.0 / k, 0.9, 500.0, 0.1 * (k - 4)))
    an_epoch(worker)
    worker.on_event(DoneEvent("finished", "", 10, 1, 0.6))


def test_a_run_resumed_mid_epoch_keeps_its_curves_and_says_what_its_train_accuracy_covers(qtbot):
    from hetero.gui.history import RunHistory, check_saved

    before = RunHistory("0:0", "0:0", "#000000", 1)
    for k in range(1, 5):
        before.add(StepEvent(k, 0, k - 1, 10, 2.0 / k, 0.5, 400.0, 0.25 * k))
    view = scripted_view(qtbot, resumed_mid_epoch)
    view.loaded_path = "resumed.safetensors"  # as load_checkpoint leaves it
    view.loaded_resume = (4, 0, check_saved(before.to_saved(), 4))
    run_to_end(qtbot, view, resumed_mid_epoch)
    (run,) = view.runs.values()
    assert run.steps == list(range(1, 11)) and run.loss[:4] == pytest.approx(before.loss, rel=1e-5)
    assert run.seconds[3] == 1.0 and run.seconds[4] == pytest.approx(1.1)  # the clock goes on from the checkpoint
    assert view.plots.curve_data(run.key)["loss_raw"] == 10
    assert view.plots.resume_label(run.key) == "continues from checkpoint step 4"
    note = "train accuracy 80.00% (batches 5-10 only: resumed mid-epoch)"
    assert any(note in m for _, m in view.log.entries)
    assert note in view.summary.text()
    assert any("Continues from checkpoint step 4 (epoch 1)" in m for _, m in view.log.entries)


def test_the_eta_of_a_resumed_run_is_its_own_pace():
    from hetero.gui.history import RunHistory

    run = RunHistory("0:0", "0:0", "#000000", 2)
    run.resume(10, 1)  # half done, no curves in the checkpoint: this session's clock starts at 0
    run.add(StepEvent(11, 1, 0, 10, 1.0, 0.5, 100.0, 2.0))
    run.add(StepEvent(15, 1, 4, 10, 1.0, 0.5, 100.0, 10.0))
    # 5 steps of 20 in 10 s since the resume: 5 left take 10 s (not 10 s * 0.25 / 0.75 from a run half done)
    assert run.eta() == pytest.approx(10.0)
