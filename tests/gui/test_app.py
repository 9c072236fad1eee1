"""The window as a whole and the `hetero gui --demo --screenshot` path."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from hetero.gui.main_window import MainWindow

pytestmark = pytest.mark.usefixtures("usable_device")


def test_demo_screenshot_writes_a_png_and_exits_0(tmp_path, tiny_data):
    out = tmp_path / "shot.png"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.run([sys.executable, "-m", "hetero", "gui", "--demo", "--screenshot", str(out), "--after", "4",
                           "--data", str(tiny_data), "--epochs", "2"], env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20000


def training_window(qtbot, tiny_data, demo: bool) -> MainWindow:
    """A shown window whose long training has made a couple of steps."""
    window = MainWindow(demo=demo)
    qtbot.addWidget(window)
    view = window.train_view
    view.data_edit.setText(str(tiny_data))
    view.epochs_box.setValue(1000)
    view.batch_box.setValue(8)
    window.show()
    view.start()
    (run,) = view.runs.values()
    qtbot.waitUntil(lambda: len(run.steps) >= 2, timeout=60000)
    return window


def test_closing_the_window_stops_training(qtbot, tiny_data):
    window = training_window(qtbot, tiny_data, demo=True)
    view = window.train_view
    window.close()  # demo mode: no dialog
    assert not view.is_running()
    assert all(w.isFinished() for w in view.workers.values())


def test_entry_points_exist():
    from hetero.gui import main

    from hetero.cli import build_parser

    assert callable(main)
    args = build_parser().parse_args(["gui", "--demo", "--device", "cpu/2", "--after", "2"])
    assert args.demo and args.device == "cpu/2" and args.after == 2.0


@pytest.mark.parametrize("answer", ["Cancel", "Discard"])
def test_closing_asks_to_save_outside_demo_mode(qtbot, tiny_data, monkeypatch, answer):
    from hetero.gui import main_window

    asked = []
    button = getattr(main_window.QMessageBox.StandardButton, answer)
    monkeypatch.setattr(main_window.QMessageBox, "question", lambda *a, **k: asked.append(a) or button)
    window = training_window(qtbot, tiny_data, demo=False)
    view = window.train_view
    closed = window.close()
    assert len(asked) == 1
    assert closed == (answer == "Discard")
    assert view.is_running() == (answer == "Cancel")
    view.stop_all()


def test_no_display_is_a_clear_error(monkeypatch, capsys):
    from hetero.gui import app

    for name in ("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(app.sys, "platform", "linux")
    monkeypatch.setattr("PySide6.QtWidgets.QApplication.instance", staticmethod(lambda: None))
    assert app.main([]) == 1
    assert "no display" in capsys.readouterr().err


@pytest.mark.parametrize("platform, checked", [("", True), ("xcb", True), ("offscreen", False), ("wayland", False)])
def test_missing_xcb_libraries_are_named_with_the_line_that_installs_them(monkeypatch, capsys, platform, checked):
    from hetero.gui import app

    monkeypatch.setenv("QT_QPA_PLATFORM", platform)
    monkeypatch.setenv("DISPLAY", ":99")
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(app.sys, "platform", "linux")
    monkeypatch.setattr("PySide6.QtWidgets.QApplication.instance", staticmethod(lambda: None))
    looked = []
    lacking = {"libxcb-icccm.so.4", "libxcb-keysyms.so.1"}

    def present(soname, cache):
        looked.append(soname)
        return soname not in lacking

    monkeypatch.setattr(app, "known_libraries", lambda: set())
    monkeypatch.setattr(app, "library_present", present)
    assert app.uses_xcb() == checked
    if not checked:  # another platform plugin: run_app looks for nothing of X11
        return
    assert app.main([]) == 1  # before any QApplication, which would abort the process
    err = capsys.readouterr().err
    assert "needs libraries this system lacks: libxcb-icccm.so.4, libxcb-keysyms.so.1." in err
    assert "sudo apt-get install libxcb-icccm4 libxcb-keysyms1\n" in err
    assert "xcb-cursor0" not in err and "QT_QPA_PLATFORM=offscreen" in err
    assert "libxcb-cursor.so.0" in looked  # every library the plugin links was looked for


def test_the_linker_cache_is_read_and_beside_it_the_library_path(monkeypatch, tmp_path):
    from hetero.gui import app

    (tmp_path / "libxcb-icccm.so.4").write_bytes(b"")
    monkeypatch.setenv("LD_LIBRARY_PATH", str(tmp_path))
    assert app.library_present("libxcb-icccm.so.4", set())  # found in $LD_LIBRARY_PATH
    assert not app.library_present("libnot-a-library.so.7", set())
    assert app.library_present("libc.so.6", None)  # no cache (musl, NixOS): loaded to see
    cache = app.known_libraries()
    assert cache is None or "libc.so.6" in cache
