"""The Runs tab: the table of stored runs, overlaid curves, delete, CSV; the Train view recording its runs."""

from __future__ import annotations

import csv
import sqlite3
import threading
import time

import pytest
from hetero.gui import run_store as S
from hetero.gui.device_panel import DevicePanel
from hetero.gui.history import COLOURS, RunHistory
from hetero.gui.log_panel import LogPanel
from hetero.gui.main_window import MainWindow
from hetero.gui.run_store import RunStore
from hetero.gui.runs_view import COLUMNS, RunsView
from hetero.gui.train_view import TrainView
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QMessageBox

from hetero.recipe import TrainingRecipe
from hetero.selection import DeviceInfo
from hetero.train import DoneEvent, EpochEndEvent, StepEvent, TrainingControl

from .views import finish

GPU = DeviceInfo(id="0:0", platform="P", name="Big GPU", vendor="V", type="gpu", compute_units=40,
                 global_mem_bytes=8 << 30, fp16=True)


class Clock:
    def __init__(self, t: float = 1_800_000_000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


def add_run(store: RunStore, clock: Clock, n_steps: int, accuracies: list[float], status: str, seconds: float,
            devices: str = "0:0", **recipe) -> int:
    """A stored run of n_steps steps (loss 2/step), an epoch end per accuracy, ended after `seconds`."""
    rec = store.start_run(TrainingRecipe(**recipe).to_dict(), devices, f"device {devices}")
    h = RunHistory(devices, devices, "#000000", recipe.get("epochs", 2))
    per = n_steps // max(len(accuracies), 1)
    for s in range(1, n_steps + 1):
        h.add(StepEvent(s, (s - 1) // per, (s - 1) % per, per, 2.0 / s, s / n_steps, 50.0 * s, 0.25 * s))
        if s % per == 0 and s // per <= len(accuracies):
            e = s // per - 1
            h.add(EpochEndEvent(e, 0.5, 0.8, 0.4, accuracies[e], 3.0))
    clock.t += seconds
    rec.write(h, status)
    clock.t += 100  # the next run starts later
    return rec.run_id


@pytest.fixture
def store(tmp_path):
    clock = Clock()
    s = RunStore(str(tmp_path / "runs.sqlite3"), clock)
    s.ids = [
        add_run(s, clock, 40, [0.90, 0.95], "finished", 90, model="lenet5", batch_size=64, optimizer="sgd", lr=0.05,
                epochs=2, seed=3),
        add_run(s, clock, 30, [0.97], "stopped", 3725, devices="0:0/2.0,0:0/2.1", model="alexnet_mnist",
                batch_size=1024, optimizer="adam", lr=0.001, epochs=3, seed=1),
        add_run(s, clock, 6, [], "failed", 5, model="lenet5", batch_size=8, optimizer="adam", epochs=1),
    ]
    yield s
    s.close()


@pytest.fixture
def view(qtbot, store):
    v = RunsView(LogPanel(), store)
    qtbot.addWidget(v)
    v.resize(1280, 700)
    v.show()
    qtbot.waitExposed(v)
    return v


def column(view: RunsView, name: str) -> list[str]:
    col = COLUMNS.index(name)
    return [view.table.item(r, col).text() for r in range(view.table.rowCount())]


def test_the_table_holds_each_runs_settings_and_result(view, store):
    a, b, c = store.ids
    assert view.table.rowCount() == 3 and [r.id for r in view.ordered_runs()] == [c, b, a]  # newest first
    first = view.row_texts(a)
    assert first["Date"] == time.strftime("%Y-%m-%d %H:%M", time.localtime(store.run(a).started))
    assert {k: first[k] for k in ("Status", "Model", "Data", "Device(s)", "Batch", "Optim.", "LR", "Schedule",
                                  "Seed", "Epochs", "Best", "Time")} == {
        "Status": "finished", "Model": "lenet5", "Data": "mnist", "Device(s)": "0:0", "Batch": "64",
        "Optim.": "sgd", "LR": "0.05", "Schedule": "cosine", "Seed": "3", "Epochs": "2/2", "Best": "95.00%",
        "Time": "1:30"}
    second = view.row_texts(b)
    assert (second["Device(s)"], second["Batch"], second["Epochs"], second["Best"], second["Time"]) == (
        "0:0/2.0 + 0:0/2.1", "1,024", "1/3", "97.00%", "1:02:05")
    assert view.row_texts(c)["Best"] == "-" and view.row_texts(c)["Status"] == "failed"
    assert "device 0:0/2.0,0:0/2.1" in view.table.item(view.row_of(b), COLUMNS.index("Device(s)")).toolTip()
    # sorted by value, not by text: "1,024" after "64", and the failed run's "-" below every accuracy
    view.table.sortByColumn(COLUMNS.index("Batch"), Qt.SortOrder.AscendingOrder)
    assert column(view, "Batch") == ["8", "64", "1,024"]
    view.table.sortByColumn(COLUMNS.index("Best"), Qt.SortOrder.DescendingOrder)
    assert column(view, "Best") == ["97.00%", "95.00%", "-"]
    view.table.sortByColumn(COLUMNS.index("Time"), Qt.SortOrder.AscendingOrder)
    assert column(view, "Time") == ["0:05", "1:30", "1:02:05"]
    view.refresh()  # the order stays
    assert column(view, "Time") == ["0:05", "1:30", "1:02:05"]


def test_the_columns_are_readable_at_1280x800(qtbot, store):
    window = MainWindow(demo=True, infos=[GPU], runs_db=store.path)
    qtbot.addWidget(window)
    window.resize(1280, 800)
    window.show()
    window.tabs.setCurrentWidget(window.runs_view)
    qtbot.waitExposed(window)
    view = window.runs_view
    table = view.table
    header = table.horizontalHeader()
    shown = [c for c in range(table.columnCount()) if not header.isSectionHidden(c)]
    for name in ("Date", "Status", "Model", "Device(s)", "Batch", "Optim.", "LR", "Epochs", "Best",
                 "Time"):
        assert COLUMNS.index(name) in shown, name
    fm = table.fontMetrics()
    for c in shown:  # every shown cell whole, but the device names (elided in the middle, whole in the tooltip)
        if c == COLUMNS.index("Device(s)"):
            assert header.sectionSize(c) >= fm.horizontalAdvance("0:0/2.0 p…")
            continue
        widest = max(fm.horizontalAdvance(table.item(r, c).text()) for r in range(table.rowCount()))
        assert header.sectionSize(c) >= widest, COLUMNS[c]
    assert sum(header.sectionSize(c) for c in shown) <= table.viewport().width()  # no sideways scrolling
    window.close()


def test_ticked_runs_are_overlaid_with_their_stored_curves(qtbot, view, store):
    a, b, _ = store.ids
    assert view.hint.isVisible() and view.plots.curve_data(str(a)) == {}
    view.set_ticked(a, True)
    counts = view.plots.curve_data(str(a))
    assert counts["loss_raw"] == 40 and counts["train_acc"] == 40 and counts["test_acc"] == 2
    items = view.plots._items[str(a)]
    assert items.loss_raw.xData.tolist() == list(range(1, 41))
    assert items.loss_raw.yData.tolist() == [2.0 / s for s in range(1, 41)]
    assert items.test_acc.yData.tolist() == [90.0, 95.0]
    assert not view.hint.isVisible()
    view.set_ticked(b, True)
    assert [h.key for h in view.overlaid()] == [str(a), str(b)]
    assert [h.colour for h in view.overlaid()] == [COLOURS[0], COLOURS[1]]
    assert view.plots.curve_data(str(b))["loss_raw"] == 30
    view.x_box.setCurrentText("seconds")
    assert view.plots._items[str(b)].loss_raw.xData.tolist() == [0.25 * s for s in range(1, 31)]
    view.set_ticked(a, False)
    assert [h.key for h in view.overlaid()] == [str(b)] and view.plots.curve_data(str(a)) == {}
    assert view.overlaid()[0].colour == COLOURS[0]
    assert view.table.item(view.row_of(b), 0).data(Qt.ItemDataRole.DecorationRole).name() == COLOURS[0]


def test_delete_asks_then_removes_the_runs(qtbot, view, store, monkeypatch):
    a, b, c = store.ids
    answers = []
    monkeypatch.setattr(QMessageBox, "question", lambda *args, **kw: answers.pop(0))
    view.set_ticked(a, True)
    view.select_runs([a])
    assert view.delete_button.isEnabled()
    answers.append(QMessageBox.StandardButton.Cancel)
    assert view.delete_selected() == 0 and len(store.runs()) == 3
    answers.append(QMessageBox.StandardButton.Yes)
    assert view.delete_selected() == 1
    assert sorted(r.id for r in store.runs()) == sorted([b, c]) and view.table.rowCount() == 2
    assert view.row_of(a) == -1 and view.overlaid() == [] and view.plots.curve_data(str(a)) == {}
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("SELECT count(*) FROM points WHERE run_id = ?", (a,)).fetchone()[0] == 0
    assert any("Deleted 1 run(s)" in m for _, m in view.log.entries)


def test_a_run_still_training_is_not_deleted(qtbot, tmp_path, monkeypatch):
    store = RunStore(str(tmp_path / "r.sqlite3"))
    store.start_run(TrainingRecipe().to_dict(), "0:0", "cpu")  # running, its writer open
    view = RunsView(LogPanel(), store)
    qtbot.addWidget(view)
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: pytest.fail("asked to delete a running run"))
    view.select_runs([store.runs()[0].id])
    assert view.delete_selected() == 0 and len(store.runs()) == 1
    assert view.log.count("warning") == 1 and "still training" in view.log.entries[-1][1]


def test_export_csv_writes_the_table_in_its_order(qtbot, view, store, tmp_path):
    a, b, c = store.ids
    view.table.sortByColumn(COLUMNS.index("Batch"), Qt.SortOrder.DescendingOrder)
    path = tmp_path / "runs.csv"
    assert view.export_csv(str(path))
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["id"]) for r in rows] == [b, a, c]
    assert rows[0]["devices"] == "0:0/2.0,0:0/2.1" and rows[0]["batch_size"] == "1024"
    assert (rows[1]["model"], rows[1]["optimizer"], rows[1]["lr"], rows[1]["seed"]) == ("lenet5", "sgd", "0.05", "3")
    assert (rows[1]["best_test_accuracy"], rows[1]["best_epoch"], rows[1]["duration_s"]) == ("0.95", "2", "90.0")
    assert (rows[1]["status"], rows[1]["epochs"], rows[1]["epochs_done"], rows[1]["steps"]) == (
        "finished", "2", "2", "40")
    assert rows[2]["best_test_accuracy"] == "" and rows[2]["status"] == "failed"
    assert not view.export_csv(str(tmp_path / "no-such-folder" / "runs.csv"))
    assert view.log.count("error") == 1


# ----- the Train view records its runs -----


def scripted(go: threading.Event):
    """20 steps, a wait for `go`, then 10 more, an epoch end and the end (like fit, in the worker thread)."""
    def run(worker) -> None:
        for s in range(1, 31):
            worker.on_event(StepEvent(s, 0, s - 1, 30, 3.0 / s, s / 30, 200.0, 0.1 * s))
            if s == 20:
                go.wait(30)
        worker.on_event(EpochEndEvent(0, 0.2, 0.9, 0.3, 0.925, 3.0))
        worker.on_event(DoneEvent("finished", "", 30, 1, 3.0))

    return run


def scripted_view(qtbot, store: RunStore, runner) -> TrainView:
    view = TrainView(LogPanel(), DevicePanel([GPU]), runner, TrainingControl, run_store=store)
    qtbot.addWidget(view)
    view.epochs_box.setValue(1)
    view.batch_box.setValue(16)
    return view


def test_the_train_view_writes_its_run_as_it_goes_and_at_its_end(qtbot, tmp_path):
    clock = Clock()
    path = str(tmp_path / "r.sqlite3")
    store = RunStore(path, clock)
    go = threading.Event()
    view = scripted_view(qtbot, store, scripted(go))
    try:
        assert view.start()
        (run,) = view.runs.values()
        reader = RunStore(path)  # another window, or the app after a crash
        (stored,) = reader.runs()
        assert (stored.status, stored.steps, stored.devices) == ("running", 0, "0:0")
        assert stored.get("batch_size") == 16 and stored.get("epochs") == 1
        qtbot.waitUntil(lambda: len(run.steps) == 20, timeout=10000)
        view.record_runs()  # the timer's write comes only every RECORD_SECONDS
        assert reader.curves(stored.id)["steps"] == []
        clock.t += S.RECORD_SECONDS
        view.record_runs()
        assert reader.curves(stored.id)["steps"] == list(range(1, 21))
        assert reader.runs()[0].status == "running"
    finally:
        go.set()
    finish(qtbot, view)
    (stored,) = reader.runs()
    assert (stored.status, stored.steps, stored.epochs_done, stored.best_test_accuracy) == ("finished", 30, 1, 0.925)
    assert reader.curves(stored.id)["loss"] == [3.0 / s for s in range(1, 31)]
    assert view.log.count("warning") == 0


def test_a_failed_run_is_stored_with_its_reason(qtbot, tmp_path):
    def broken(worker) -> None:
        raise ValueError("the data folder holds no labels")

    store = RunStore(str(tmp_path / "r.sqlite3"))
    view = scripted_view(qtbot, store, broken)
    assert view.start()
    finish(qtbot, view)
    (stored,) = store.runs()
    assert stored.status == "failed" and "holds no labels" in stored.message


def test_a_history_that_fails_mid_run_is_turned_off_with_one_warning(qtbot, tmp_path):
    clock = Clock()
    store = RunStore(str(tmp_path / "r.sqlite3"), clock)
    go = threading.Event()
    view = scripted_view(qtbot, store, scripted(go))
    try:
        assert view.start()
        (run,) = view.runs.values()
        qtbot.waitUntil(lambda: len(run.steps) == 20, timeout=10000)
        store.conn.execute("CREATE TEMP TRIGGER full BEFORE INSERT ON points BEGIN SELECT RAISE(ABORT, 'disk full'); "
                           "END")
        clock.t += S.RECORD_SECONDS
        view.record_runs()
    finally:
        go.set()
    finish(qtbot, view)
    assert run.state == "finished" and view.run_store is None
    warnings = [m for level, m in view.log.entries if level == "warning"]
    assert len(warnings) == 1 and "Run history is off from now on" in warnings[0] and "disk full" in warnings[0]


def test_closing_the_window_records_how_its_runs_ended(qtbot, runs_db, tmp_path):
    def until_stopped(worker) -> None:
        s = 0
        while not worker.control.stopped:
            s += 1
            worker.on_event(StepEvent(s, 0, s - 1, 1000, 1.0 / s, 0.5, 100.0, 0.01 * s))
            time.sleep(0.002)

    settings = QSettings(str(tmp_path / "hetero.conf"), QSettings.Format.IniFormat)
    # not a demo: the history file of $HETERO_RUNS_DB
    window = MainWindow(infos=[GPU], runner=until_stopped, control_factory=TrainingControl, settings=settings)
    qtbot.addWidget(window)
    window.resize(1280, 800)
    window.show()
    assert window.run_store.path == str(runs_db)
    assert window.train_view.start()
    (run,) = window.train_view.runs.values()
    qtbot.waitUntil(lambda: len(run.steps) >= 5, timeout=10000)
    window._close_asked = True  # no save question (the fake worker holds no model)
    window.close()
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=10000)
    (stored,) = RunStore(str(runs_db)).runs()
    assert stored.status == "stopped" and stored.steps >= 5
    assert stored.steps == len(window.train_view.workers[run.key].history.steps)


def test_the_runs_tab_and_its_menu_entry(qtbot, store):
    window = MainWindow(demo=True, infos=[GPU], runs_db=store.path)
    qtbot.addWidget(window)
    window.show()
    assert window.tabs.tabText(window.tabs.indexOf(window.runs_view)) == "Runs"
    action = window.actions["tab_runs"]
    assert action.shortcut().toString() == "Ctrl+4"
    action.trigger()
    assert window.tabs.currentWidget() is window.runs_view and window.runs_view.table.rowCount() == 3
    assert window.runs_view.where_label.text() == f"History: {store.path}"
    window.close()


def test_a_demo_window_keeps_no_history_on_disk(qtbot, tmp_path, monkeypatch):
    monkeypatch.delenv("HETERO_RUNS_DB")
    window = MainWindow(demo=True, infos=[GPU])
    qtbot.addWidget(window)
    assert window.run_store.path == ":memory:"
    assert "only until it closes" in window.runs_view.where_label.text()
    window.close()
    assert not (tmp_path / "xdg-data").exists()


def test_a_damaged_history_leaves_the_app_working_with_one_warning(qtbot, runs_db, tmp_path):
    runs_db.write_bytes(b"\x00garbage" * 100)
    window = MainWindow(infos=[GPU], settings=QSettings(str(tmp_path / "hetero.conf"), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    assert window.run_store is None and window.train_view.run_store is None
    warnings = [m for level, m in window.log.entries if level == "warning"]
    assert len(warnings) == 1 and "Run history is off this session" in warnings[0] and str(runs_db) in warnings[0]
    assert "Run history is off this session" in window.runs_view.where_label.text()
    assert window.runs_view.table.rowCount() == 0 and not window.runs_view.export_button.isEnabled()
    window.close()
    assert runs_db.read_bytes() == b"\x00garbage" * 100


def test_a_real_training_lands_in_the_store(qtbot, tiny_data, usable_device, tmp_path):
    store = RunStore(str(tmp_path / "r.sqlite3"))
    view = TrainView(LogPanel(), run_store=store)
    qtbot.addWidget(view)
    view.data_edit.setText(str(tiny_data))
    view.batch_box.setValue(16)
    view.epochs_box.setValue(2)
    view.lr_box.setValue(0.01)
    with qtbot.waitSignal(view.sigRunsFinished, timeout=60000):
        assert view.start()
    finish(qtbot, view)
    (key, run), = view.runs.items()
    assert run.state == "finished", view.log.entries
    (stored,) = store.runs()
    assert (stored.status, stored.devices, stored.steps, stored.epochs_done) == ("finished", key, 12, 2)
    assert stored.best_test_accuracy == run.best()[1] and stored.best_epoch == run.best()[0]
    assert (stored.get("model"), stored.get("batch_size"), stored.get("lr"), stored.get("epochs")) == (
        "lenet5", 16, 0.01, 2)
    curves = store.curves(stored.id)
    assert curves["steps"] == run.steps and curves["loss"] == run.loss and curves["accuracy"] == run.accuracy
    assert [e["test_accuracy"] for e in store.epochs(stored.id)] == [ev.test_accuracy for ev in run.epoch_ends]
    runs = RunsView(LogPanel(), store)
    qtbot.addWidget(runs)
    assert runs.row_texts(stored.id)["Best"] == f"{100 * run.best()[1]:.2f}%"


def test_the_rows_stay_painted_through_refreshes_that_hide_and_show_columns(qtbot, tmp_path):
    clock = Clock()
    store = RunStore(str(tmp_path / "r.sqlite3"), clock)
    ids = [add_run(store, clock, 12, [0.9], "finished", 60, model="lenet5") for _ in range(4)]
    add_run(store, clock, 12, [0.9], "stopped", 60, devices="0:0/2.0,0:0/2.1", model="alexnet_mnist")
    view = RunsView(LogPanel(), store)
    qtbot.addWidget(view)
    view.resize(1280, 700)
    view.show()
    qtbot.waitExposed(view)
    table = view.table
    for k in range(6):
        view.set_ticked(ids[k % 4], k % 2 == 0)  # a swatch in the Date column: the fitter hides or shows Data
        add_run(store, clock, 12, [0.5 + k / 100], "finished", 30, model="lenet5")
        view.refresh()
        qtbot.wait(10)
        # the header's positions and the rows where they are painted agree
        assert table.columnAt(5) == 0 and table.rowAt(5) == 0, k
        image = table.viewport().grab().toImage()
        text = sum(1 for x in range(0, 600, 3) for y in range(0, 150, 3) if image.pixelColor(x, y).lightness() < 128)
        assert text > 100, k
