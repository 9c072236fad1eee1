"""The main window: Train, Compare, Inference and Runs tabs over a shared log panel, a menu bar with the app's keyboard
shortcuts, settings remembered between sessions; closing stops the workers."""

from __future__ import annotations

import platform
import sys

from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QActionGroup, QGuiApplication, QKeySequence
from PySide6.QtWidgets import QDockWidget, QMainWindow, QMessageBox, QTabWidget

from . import qtfix, theme
from .compare_view import CompareView
from .device_panel import DevicePanel, list_devices
from .inference_view import InferenceView
from .log_panel import LogPanel
from .run_store import RunStore, RunStoreError, session_path
from .runs_view import RunsView
from .slots import slot
from .train_view import TrainView
from .workers import run_training

THEME_NAMES = {"auto": "Follow the desktop", "light": "Light", "dark": "Dark"}


def app_settings() -> QSettings:
    """Where the app keeps what it remembers (~/.config/hetero/hetero.conf on Linux)."""
    return QSettings("hetero", "hetero")


def open_run_store(path: str) -> tuple[RunStore | None, str]:
    """The run history at path, or None and why it cannot be used (the app then runs without one)."""
    try:
        return RunStore(path), ""
    except RunStoreError as e:
        return None, str(e)


class MainWindow(QMainWindow):
    """`demo=True` (the --demo/--screenshot mode and tests) never opens a dialog and remembers nothing, unless it
    is given `settings` (or, for the run history, $HETERO_RUNS_DB names a file)."""

    def __init__(self, demo: bool = False, runner=run_training, control_factory=None, bench_run=None,
                 infos=None, parent=None, settings: QSettings | None = None, runs_db: str | None = None):
        qtfix.apply()
        super().__init__(parent)
        import hetero

        self.demo = demo
        self.settings = settings if settings is not None or demo else app_settings()
        self._close_asked = False  # the save question is asked once, not again while workers wind down
        self.setWindowTitle(f"hetero {hetero.__version__} — train and compare on any OpenCL device")
        error = ""
        if infos is None:
            infos, error = list_devices()
        self.infos = list(infos)
        self.log = LogPanel()
        self.run_store, problem = open_run_store(runs_db or session_path(demo))
        if problem:
            self.log.add("warning", f"Run history is off this session: {problem}")
        self.train_view = TrainView(self.log, DevicePanel(infos, error), runner, control_factory,
                                    run_store=self.run_store)
        self.compare_view = CompareView(self.log, DevicePanel(infos, error), bench_run)
        self.inference_view = InferenceView(self.log, DevicePanel(infos, error, split=False))
        self.tabs = QTabWidget()
        self.tabs.addTab(self.train_view, "Train")
        self.tabs.addTab(self.compare_view, "Compare devices")
        self.tabs.addTab(self.inference_view, "Inference")
        self.runs_view = RunsView(self.log, self.run_store, problem)
        self.tabs.addTab(self.runs_view, "Runs")
        self.train_view.sigRecorded.connect(slot(self._runs_recorded))
        self.setCentralWidget(self.tabs)
        dock = QDockWidget("Log", self)
        dock.setObjectName("log")
        dock.setWidget(self.log)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, dock)
        self.resizeDocks([dock], [110], Qt.Orientation.Vertical)
        if error:
            self.log.add("error", error)
        else:
            usable = [d for d in infos if d.usable]
            self.log.add("info", f"{len(infos)} OpenCL device(s), {len(usable)} usable.")
            for d in infos:
                if not d.usable:
                    self.log.add("warning", f"{d.id} {d.name} cannot be used: {d.reason}")
        self.statusBar().showMessage("Tick devices, pick a model and press Start (F5). Hover a device for details.")
        self.train_view.sigStatus.connect(self.statusBar().showMessage)
        self.actions: dict[str, QAction] = {}
        self._build_menus()
        self.train_view.sigButtonsChanged.connect(slot(self._sync_actions))
        self._sync_actions()
        self._restore_settings()
        hints = QGuiApplication.styleHints()
        if hasattr(hints, "colorSchemeChanged"):  # Qt 6.5+: the desktop switched between light and dark
            hints.colorSchemeChanged.connect(slot(self._desktop_scheme_changed))

    # ----- menus -----

    def _action(self, key: str, text: str, handler, shortcut: QKeySequence | str | None = None,
                tip: str = "") -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        if tip:
            action.setStatusTip(tip)
            action.setToolTip(tip)
        action.triggered.connect(slot(handler))
        self.addAction(action)  # its shortcut works wherever the focus is in the window, the menu closed
        self.actions[key] = action
        return action

    def _build_menus(self) -> None:
        bar = self.menuBar()
        train = self.train_view
        file_menu = bar.addMenu("&File")
        file_menu.addAction(self._action("open", "&Open checkpoint…", self.open_checkpoint, "Ctrl+O",
                                         "Read a training checkpoint: its settings fill the form, Start continues"))
        file_menu.addAction(self._action("save", "&Save checkpoint…", self.save_checkpoint, "Ctrl+S",
                                         "Save the weights, optimizer state and curves of the run shown"))
        export = file_menu.addMenu("&Export plots")
        for fmt, text in (("png", "as &PNG image…"), ("svg", "as &SVG drawing…"), ("csv", "as &CSV table…")):
            export.addAction(self._action(f"export_{fmt}", text, self._exporter(fmt),
                                          tip=f"The training plots as {fmt.upper()}"))
        file_menu.addSeparator()
        # spelled out: Qt's standard Quit key is empty on X11 desktops without a platform theme
        file_menu.addAction(self._action("quit", "&Quit", self.close, "Ctrl+Q"))

        run_menu = bar.addMenu("&Training")
        run_menu.addAction(self._action("start", "&Start", self._start, "F5",
                                        "Train with the form's settings on the ticked devices"))
        run_menu.addAction(self._action("pause", "&Pause", train.toggle_pause, "Space",
                                        "Pause after the current step, or resume"))
        run_menu.addAction(self._action("stop", "S&top", train.stop, "Shift+F5", "Stop after the current step"))
        run_menu.addSeparator()
        run_menu.addAction(self._action("summary", "Model s&ummary…", train.show_summary, "Ctrl+I",
                                        "Layers, output shapes, parameters and FLOPs of the chosen model"))

        view_menu = bar.addMenu("&View")
        for k, (key, text) in enumerate((("tab_train", "&Train"), ("tab_compare", "&Compare devices"),
                                         ("tab_inference", "&Inference"), ("tab_runs", "R&uns"))):
            view_menu.addAction(self._action(key, text, slot(self.tabs.setCurrentIndex, k), f"Ctrl+{k + 1}"))
        view_menu.addSeparator()
        view_menu.addAction(self._action("reset_zoom", "&Reset zoom", train.plots.follow, "Ctrl+0",
                                         "Fit the training plots to the whole run and follow it again"))
        themes = view_menu.addMenu("T&heme")
        group = QActionGroup(self)
        for mode in theme.MODES:
            action = self._action(f"theme_{mode}", THEME_NAMES[mode], slot(self.set_theme, mode))
            action.setCheckable(True)
            group.addAction(action)
            themes.addAction(action)

        help_menu = bar.addMenu("&Help")
        help_menu.addAction(self._action("about", "&About hetero…", self.show_about,
                                         tip="Versions of hetero, Python, Qt and the OpenCL devices"))

    def _exporter(self, fmt: str):
        def export() -> None:
            self.tabs.setCurrentWidget(self.train_view)
            self.train_view.export_plots(fmt)

        return export

    def _runs_recorded(self) -> None:
        if self.tabs.currentWidget() is self.runs_view:  # else it reads them when shown
            self.runs_view.refresh()

    def _start(self) -> None:
        self.tabs.setCurrentWidget(self.train_view)
        self.train_view.start()

    def open_checkpoint(self) -> None:
        self.tabs.setCurrentWidget(self.train_view)
        self.train_view.load_checkpoint()

    def save_checkpoint(self) -> None:
        self.train_view.save_checkpoint()

    def _sync_actions(self) -> None:
        """The menu's Start, Pause and Stop as the Train tab's buttons are (Space only pauses while training)."""
        train = self.train_view
        self.actions["start"].setEnabled(train.start_button.isEnabled())
        self.actions["pause"].setEnabled(train.pause_button.isEnabled())
        self.actions["pause"].setText("&Resume" if train.pause_button.text() == "Resume" else "&Pause")
        self.actions["stop"].setEnabled(train.stop_button.isEnabled())
        self.actions["open"].setEnabled(train.load_button.isEnabled())

    # ----- theme -----

    def set_theme(self, mode: str) -> None:
        """Use the light or dark theme, or follow the desktop ("auto"); remembered for the next start."""
        theme.apply(mode)
        self.actions[f"theme_{mode}"].setChecked(True)
        if self.settings is not None:
            self.settings.setValue("theme", mode)

    def _desktop_scheme_changed(self) -> None:
        if theme.mode() == "auto":
            theme.apply("auto")

    # ----- about -----

    def about_text(self) -> str:
        """What Help > About says: hetero's version and its dependencies', and each OpenCL device."""
        import numpy
        import pyqtgraph
        import PySide6
        from PySide6.QtCore import qVersion

        import hetero

        lines = [f"<b>hetero {hetero.__version__}</b>: train and compare CNNs on any OpenCL device.",
                 f"Python {platform.python_version()} ({sys.platform}), numpy {numpy.__version__}, "
                 f"PySide6 {PySide6.__version__} (Qt {qVersion()}), pyqtgraph {pyqtgraph.__version__}",
                 "", "<b>OpenCL devices</b>"]
        for d in self.infos:
            state = "usable" if d.usable else f"unusable: {d.reason}"
            lines.append(f"{d.id} {d.name} ({d.type}, {d.platform}, driver {d.driver_version or '?'}): {state}")
        if not self.infos:
            lines.append("none found")
        return "<br>".join(lines)

    def show_about(self) -> None:
        if self.demo:
            self.log.add("info", self.about_text().replace("<br>", "\n").replace("<b>", "").replace("</b>", ""))
            return
        QMessageBox.about(self, "About hetero", self.about_text())

    # ----- remembered settings -----

    def _restore_settings(self) -> None:
        """The theme, the last tab and the data folder of the last session (the geometry: restore_geometry)."""
        s = self.settings
        mode = str(s.value("theme", "auto")) if s is not None else "auto"
        self.set_theme(mode if mode in theme.MODES else "auto")
        if s is None:
            return
        tab = s.value("tab", 0, type=int)
        if 0 <= tab < self.tabs.count():
            self.tabs.setCurrentIndex(tab)
        folder = s.value("data_dir", "", type=str)
        if folder:
            self.train_view.data_edit.setText(folder)

    def restore_geometry(self) -> bool:
        """The window's size, place and docks as last closed; False when nothing was remembered."""
        s = self.settings
        geometry = s.value("geometry") if s is not None else None
        if not geometry or not self.restoreGeometry(geometry):
            return False
        state = s.value("state")
        if state:
            self.restoreState(state)
        return True

    def save_settings(self) -> None:
        s = self.settings
        if s is None:
            return
        s.setValue("geometry", self.saveGeometry())
        s.setValue("state", self.saveState())
        s.setValue("tab", self.tabs.currentIndex())
        s.setValue("data_dir", self.train_view.data_edit.text().strip())
        s.setValue("theme", theme.mode())
        s.sync()

    # ----- closing -----

    def closeEvent(self, event) -> None:
        if not self.demo and not self._close_asked and self.train_view.has_model():
            answer = QMessageBox.question(
                self, "Save before closing?",
                "Save a checkpoint of the trained model before closing?" +
                ("\nTraining is still running; it will be stopped." if self.train_view.is_running() else ""),
                QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
                | QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Save)
            if answer == QMessageBox.StandardButton.Cancel:
                event.ignore()
                return
            if answer == QMessageBox.StandardButton.Save and not self.train_view.save_checkpoint():
                event.ignore()
                return
            self._close_asked = True
        # Workers stop between two steps (or measurements); a long test-set evaluation can take longer than
        # we should block the window for, so after a short wait the close is tried again until they end.
        done = self.train_view.stop_all(wait_ms=2000)
        done = self.compare_view.stop_all(wait_ms=2000) and done
        done = self.inference_view.stop_all(wait_ms=2000) and done
        if not done:
            self.statusBar().showMessage("Stopping the workers: the window closes as soon as they end…")
            event.ignore()
            QTimer.singleShot(250, self.close)
            return
        self.train_view.timer.stop()
        self.train_view.finish_records()
        if self.run_store is not None:
            self.run_store.close()
            self.run_store = self.train_view.run_store = self.runs_view.store = None
        self.save_settings()
        event.accept()
