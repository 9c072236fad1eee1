"""The main window: Train and Compare tabs over a shared log panel; closing stops the workers."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QDockWidget, QMainWindow, QMessageBox, QTabWidget

from . import qtfix
from .compare_view import CompareView
from .device_panel import DevicePanel, list_devices
from .inference_view import InferenceView
from .log_panel import LogPanel
from .train_view import TrainView
from .workers import run_training


class MainWindow(QMainWindow):
    """`demo=True` (the --demo/--screenshot mode and tests) never opens a dialog."""

    def __init__(self, demo: bool = False, runner=run_training, control_factory=None, bench_run=None,
                 infos=None, parent=None):
        qtfix.apply()
        super().__init__(parent)
        import hetero

        self.demo = demo
        self._close_asked = False  # the save question is asked once, not again while workers wind down
        self.setWindowTitle(f"hetero {hetero.__version__} — train and compare on any OpenCL device")
        error = ""
        if infos is None:
            infos, error = list_devices()
        self.log = LogPanel()
        self.train_view = TrainView(self.log, DevicePanel(infos, error), runner, control_factory)
        self.compare_view = CompareView(self.log, DevicePanel(infos, error), bench_run)
        self.inference_view = InferenceView(self.log, DevicePanel(infos, error, split=False))
        self.tabs = QTabWidget()
        self.tabs.addTab(self.train_view, "Train")
        self.tabs.addTab(self.compare_view, "Compare devices")
        self.tabs.addTab(self.inference_view, "Inference")
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
        self.statusBar().showMessage("Tick devices, pick a model and press Start. Hover a device for details.")
        self.train_view.sigStatus.connect(self.statusBar().showMessage)

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
        event.accept()
