"""The menu bar and its keyboard shortcuts, what the window remembers between sessions, the light and dark
themes (the plots too), and the model summary."""

from __future__ import annotations

import csv
import time

import numpy as np
import pytest
from hetero.gui import theme
from hetero.gui.main_window import MainWindow
from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QPalette
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QDockWidget

from hetero.selection import DeviceInfo
from hetero.train import EpochEndEvent, PausedEvent, StepEvent, TrainingControl

GPU = DeviceInfo(id="0:0", platform="P", name="Big GPU", vendor="V", type="gpu", compute_units=40,
                 global_mem_bytes=8 << 30, fp16=True, driver_version="555.1")


def steps_until_stopped(worker) -> None:
    """Like fit: a step every few ms (an epoch end at step 10), waiting whenever paused, until stopped."""
    step = 0
    while not worker.control.stopped:
        step += 1
        worker.on_event(StepEvent(step, 0, step - 1, 100000, 1.0 / step, 0.5, 100.0, 0.01 * step))
        if step == 10:
            worker.on_event(EpochEndEvent(0, 0.5, 0.8, 0.4, 0.9, 1.0))
        if worker.control.paused:
            worker.on_event(PausedEvent(step, 0))
            worker.control.wait_while_paused()
        time.sleep(0.002)


@pytest.fixture
def settings(tmp_path):
    return QSettings(str(tmp_path / "hetero.conf"), QSettings.Format.IniFormat)


@pytest.fixture
def window(qtbot, settings):
    w = MainWindow(demo=True, runner=steps_until_stopped, control_factory=TrainingControl, infos=[GPU],
                   settings=settings)
    qtbot.addWidget(w)
    w.resize(1280, 800)
    w.show()
    qtbot.waitExposed(w)
    w.activateWindow()
    yield w
    w.train_view.stop_all()
    theme.apply("light")  # the theme is the whole app's: leave it as the other tests expect it


def press(window, key, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    QTest.keyClick(window.tabs.currentWidget(), key, modifier)


def test_the_menus_hold_every_command_with_its_shortcut(window):
    titles = [a.text() for a in window.menuBar().actions()]
    assert titles == ["&File", "&Training", "&View", "&Help"]
    a = window.actions
    assert a["open"].shortcut().toString() == "Ctrl+O" and a["save"].shortcut().toString() == "Ctrl+S"
    assert a["quit"].shortcut().toString() == "Ctrl+Q"
    assert [a[f"tab_{t}"].shortcut().toString() for t in ("train", "compare", "inference")] == [
        "Ctrl+1", "Ctrl+2", "Ctrl+3"]
    assert a["start"].shortcut().toString() == "F5" and a["pause"].shortcut().toString() == "Space"
    assert a["reset_zoom"].shortcut().toString() == "Ctrl+0"
    assert {k for k in a if k.startswith("export_")} == {"export_png", "export_svg", "export_csv"}
    assert {k for k in a if k.startswith("theme_")} == {"theme_auto", "theme_light", "theme_dark"}
    assert not a["pause"].isEnabled() and not a["stop"].isEnabled()  # Space types a space until training runs


def test_shortcuts_switch_tabs_start_pause_and_resume(qtbot, window):
    press(window, Qt.Key.Key_2, Qt.KeyboardModifier.ControlModifier)
    assert window.tabs.currentIndex() == 1
    press(window, Qt.Key.Key_3, Qt.KeyboardModifier.ControlModifier)
    assert window.tabs.currentIndex() == 2
    press(window, Qt.Key.Key_F5)  # starts training, from any tab
    view = window.train_view
    assert window.tabs.currentIndex() == 0 and view.is_running()
    (run,) = view.runs.values()
    qtbot.waitUntil(lambda: len(run.steps) >= 3, timeout=10000)
    assert window.actions["pause"].isEnabled() and window.actions["stop"].isEnabled()
    press(window, Qt.Key.Key_Space)
    assert view.pause_button.text() == "Resume" and window.actions["pause"].text() == "&Resume"
    qtbot.waitUntil(lambda: run.state == "paused", timeout=10000)
    press(window, Qt.Key.Key_Space)
    assert view.pause_button.text() == "Pause" and run.state == "running"
    view.plots.loss.getPlotItem().getViewBox().scaleBy((0.5, 0.5))
    view.plots._moved_by_user()
    press(window, Qt.Key.Key_0, Qt.KeyboardModifier.ControlModifier)  # View > Reset zoom
    assert view.plots.following
    window.actions["stop"].trigger()
    qtbot.waitUntil(lambda: not view.is_running(), timeout=10000)
    assert not window.actions["pause"].isEnabled() and window.actions["start"].isEnabled()


def test_export_plots_as_png_svg_and_csv(qtbot, window, tmp_path, monkeypatch):
    from hetero.gui import train_view

    view = window.train_view
    window.actions["start"].trigger()
    (run,) = view.runs.values()
    qtbot.waitUntil(lambda: len(run.steps) >= 12, timeout=10000)
    view.stop()
    qtbot.waitUntil(lambda: not view.is_running(), timeout=10000)
    qtbot.wait(50)  # the last steps' signals
    for fmt in ("png", "svg", "csv"):
        target = tmp_path / f"plots.{fmt}"
        monkeypatch.setattr(train_view.QFileDialog, "getSaveFileName", lambda *a, t=target: (str(t), ""))
        window.actions[f"export_{fmt}"].trigger()
        assert target.is_file() and target.stat().st_size > 0
    from PySide6.QtGui import QImage

    image = QImage(str(tmp_path / "plots.png"))
    plots = view.plots
    assert image.height() == 2 * sum(w.height() for w in (plots.loss, plots.accuracy, plots.speed))
    assert "<svg" in (tmp_path / "plots.svg").read_text()
    rows = list(csv.reader(open(tmp_path / "plots.csv")))
    assert rows[0][:3] == ["run", "step", "seconds"] and len(rows) == 1 + len(run.steps)
    assert [r[6] for r in rows[1:] if r[6]] == ["1"] and rows[10][8] == "0.9"  # epoch 1 ended at step 10


def test_open_checkpoint_asks_for_a_file_and_about_names_versions_and_devices(qtbot, window, tmp_path,
                                                                               monkeypatch):
    import PySide6
    from hetero.gui import train_view

    import hetero

    asked = []
    monkeypatch.setattr(train_view.QFileDialog, "getOpenFileName",
                        lambda *a: asked.append(a) or (str(tmp_path / "none.safetensors"), ""))
    window.tabs.setCurrentIndex(1)
    window.actions["open"].trigger()
    assert asked and window.tabs.currentIndex() == 0
    assert any("Could not load" in m and "none.safetensors" in m for _, m in window.log.entries)
    text = window.about_text()
    assert f"hetero {hetero.__version__}" in text and f"PySide6 {PySide6.__version__}" in text
    assert "0:0 Big GPU (gpu, P, driver 555.1): usable" in text


def test_the_window_remembers_folder_tab_theme_and_geometry(qtbot, settings, tmp_path):
    first = MainWindow(demo=True, infos=[GPU], settings=settings)
    qtbot.addWidget(first)
    first.resize(1210, 790)
    first.show()
    dock = first.findChild(QDockWidget, "log")
    first.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)  # the user moved the log to the right
    first.train_view.data_edit.setText(str(tmp_path))
    first.tabs.setCurrentIndex(2)
    first.set_theme("dark")
    first.close()
    try:
        second = MainWindow(demo=True, infos=[GPU], settings=settings)
        qtbot.addWidget(second)
        assert second.train_view.data_edit.text() == str(tmp_path)
        assert second.tabs.currentIndex() == 2
        assert theme.mode() == "dark" and second.actions["theme_dark"].isChecked()
        assert second.restore_geometry()  # (the offscreen screen, 800 pixels wide, then clamps the size)
        second.show()
        assert second.dockWidgetArea(second.findChild(QDockWidget, "log")) == Qt.DockWidgetArea.RightDockWidgetArea
        fresh = MainWindow(demo=True, infos=[GPU])  # --demo and --screenshot: nothing remembered
        qtbot.addWidget(fresh)
        assert fresh.settings is None and not fresh.restore_geometry() and fresh.tabs.currentIndex() == 0
    finally:
        theme.apply("light")


def test_the_dark_theme_reaches_the_plots_and_follows_the_desktop(qtbot, window, monkeypatch):
    app = QApplication.instance()
    window.log.add("info", "in the light")
    window.set_theme("dark")
    assert theme.DARK.foreground in window.log.document().toHtml().split("in the light")[0][-400:]  # redrawn
    assert window.train_view.start_button.font().bold() and not window.train_view.start_button.styleSheet()
    assert app.palette().color(QPalette.ColorRole.Window).lightness() < 80
    plots = window.train_view.plots
    for w in (plots.loss, plots.accuracy, plots.speed, window.compare_view.chart):
        assert w.backgroundBrush().color().name() == theme.DARK.background
        assert w.getPlotItem().getAxis("left").textPen().color().name() == theme.DARK.foreground
    window.log.add("info", "in the dark")
    assert theme.DARK.foreground in window.log.document().toHtml().split("in the dark")[0][-400:]
    window.set_theme("light")
    assert plots.loss.backgroundBrush().color().name() == theme.LIGHT.background
    monkeypatch.setattr(theme, "desktop_is_dark", lambda: True)
    window.set_theme("auto")
    assert theme.colours().dark  # the desktop is dark
    monkeypatch.setattr(theme, "desktop_is_dark", lambda: False)
    window._desktop_scheme_changed()  # what Qt's colorSchemeChanged calls
    assert not theme.colours().dark and plots.speed.backgroundBrush().color().name() == theme.LIGHT.background


def test_the_model_summary_lists_layers_and_totals(qtbot, window):
    from hetero.summary import LayerRow, ModelSummary

    def fake(recipe, device_id):
        assert device_id == "0:0" and recipe.model == "lenet5"
        rows = [LayerRow("conv1", "Conv2d", (1, 6, 28, 28), 156, 235200, 18816, ("direct", "direct", "direct")),
                LayerRow("fc", "Linear", (1, 10), 850, 1700, 40)]
        return ModelSummary("lenet5", (1, 1, 28, 28), rows, total_params=1006, trainable_params=1006,
                            param_bytes=4024, forward_flops=236900, activation_bytes=18856,
                            train_step_bytes=3 << 20, train_batch_size=64)

    dialog = window.train_view.show_summary(fake)
    qtbot.waitUntil(lambda: dialog.result is not None, timeout=10000)
    t = dialog.table
    assert t.rowCount() == 2 and t.item(0, 2).text() == "1x6x28x28" and t.item(0, 3).text() == "156"
    assert t.item(0, 5).text() == "direct / direct / direct"
    assert "1,006 parameters" in dialog.totals.text() and "batch 64 plans 3.0 MiB" in dialog.totals.text()
    dialog.close()

    def broken(recipe, device_id):
        raise RuntimeError("no kernel today")

    dialog = window.train_view.show_summary(broken)
    qtbot.waitUntil(lambda: "could not be computed" in dialog.status.text(), timeout=10000)
    assert "RuntimeError: no kernel today" in dialog.status.text()
    dialog.close()


def test_the_real_summary_of_lenet5(qtbot, usable_device):
    from hetero.gui.summary_view import SummaryDialog

    from hetero.recipe import TrainingRecipe

    dialog = SummaryDialog(TrainingRecipe(model="lenet5", batch_size=16), usable_device.id)
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: dialog.result is not None or "could not" in dialog.status.text(), timeout=120000)
    assert dialog.result is not None, dialog.status.text()
    assert dialog.table.rowCount() == len(dialog.result.rows) >= 5
    params = sum(int(dialog.table.item(r, 3).text().replace(",", "")) for r in range(dialog.table.rowCount()))
    assert params == dialog.result.total_params == 61706  # LeNet-5's 61,706 weights and biases
    assert "a training step at batch 16 plans" in dialog.totals.text()
    assert np.isfinite(dialog.result.forward_flops)
    dialog.close()
