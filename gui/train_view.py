"""The Train view: pick devices and settings, train, watch the curves, inspect each epoch's results."""

from __future__ import annotations

import html
import math
import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSlider,
    QSpinBox,
    QSplitter,
    QStyle,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from . import qtfix, theme
from .device_panel import DevicePanel
from .digits import ConfusionMatrix, DigitGrid
from .history import COLOURS, RunHistory, SavedHistoryError, check_saved, format_duration
from .layout import ColumnFitter
from .log_panel import LEVEL_COLOURS, LogPanel, as_html
from .plots import TrainPlots
from .run_store import RECORD_SECONDS, RunRecorder, RunStore, RunStoreError
from .slots import slot
from .summary_view import SummaryDialog, model_summary
from .theme import bold_font
from .workers import (
    APP_RECIPE,
    DATASETS,
    HISTORY_KEY,
    R,
    TrainConfig,
    TrainWorker,
    checkpoint_name,
    explain,
    run_training,
)

if TYPE_CHECKING:
    from hetero.train.events import EpochEndEvent

TRAIN_IMAGES = 60000  # both data sets (MNIST, Fashion-MNIST): the largest batch there is
LARGE_BATCH = 8192
FIELD_TIPS = {
    "model": "The network to train. lenet5 is small and trains MNIST in seconds on a CPU; alexnet_mnist, the "
             "ResNets and MobileNet are larger and want a GPU.",
    "dataset": "The images to train on: mnist (handwritten digits) or fashion-mnist (clothes), each 60,000 "
               "training and 10,000 test images of 28x28 pixels.",
    "data": "The folder that holds the data set's IDX files (train-images-idx3-ubyte.gz and the others). Empty: "
            "$HETERO_DATA_DIR, the cache (~/.cache/hetero/datasets), or a download.",
    "epochs": "How many times training goes through all 60,000 training images; the test set is scored after "
              "each.",
    "batch": "Images per training step, 1 to 60,000. Larger batches run faster per image but need more "
             "device memory and fewer, larger steps; 32-512 is usual.",
    "optimizer": "How the gradients update the weights. Changing it (or the model) sets the learning rate that "
                 "suits the pair.",
    "lr": "The step size of each update, above 0. Too high and the loss explodes (NaN) or stays high; too low "
          "and training crawls. Adam: about 0.001; SGD: about 0.01-0.05.",
    "schedule": "cosine: the learning rate falls to 0 over the run, step by step (hetero train's default); "
                "constant: it stays as set",
    "seed": "Seeds the initial weights and the shuffling: the same seed, settings and device give the same "
            "run.",
}
LEFT_WIDTH = 280
REDRAW_MS = 100  # plots are redrawn on this timer, not per event: events can come faster than drawing
TABLE_ROWS = 6  # the run table shows this many rows, then scrolls
# Short headers (their tooltips say the rest): at 1280x800 the centre is some 600 pixels wide, and every column
# sized to its contents leaves the device name about 110 of them.
RUN_COLUMNS = ("Device", "State", "Epoch", "Step", "Loss", "Train", "Test", "Best", "img/s", "ETA")
RUN_TIPS = ("The device (the tooltip of a cell has its whole name)", "starting, running, paused, finished, stopped "
            "or failed", "The epoch being trained, of all planned", "Optimizer steps done", "Training loss, smoothed "
            "as the plots'", "Training accuracy of recent batches, smoothed as the plots'", "Test accuracy after the "
            "last finished epoch", "The best test accuracy so far and its epoch", "Training images per second",
            "Time left, from the pace so far")
DEVICE_MIN_CHARS = "0:0/2.0 p…"  # what the Device column shows at least: a sub-device's id whole
PARALLEL_TIP = ("<p>One model for all the ticked devices: each batch is split across them in proportion to their "
                "measured speed (images/s), their gradients are summed, and every device applies the same "
                "update.</p><p>Unticked, each ticked device trains a model of its own, side by side.</p>")


def _pct(v) -> str:
    return "-" if v is None or not math.isfinite(v) else f"{100 * v:.2f}%"


def _device_text(run: RunHistory) -> str:
    """A run's Device cell: the device's label, or a data-parallel run's device ids (its rows below name each)."""
    return run.short_label if run.parts else run.label


def partial_note(run: RunHistory, event: EpochEndEvent) -> str:
    """' (batches 401-938 only: resumed mid-epoch)' when an epoch's train figures cover only the part after the
    checkpoint (fit sums them from the resume on; the checkpoint keeps no sums of the part before), else ''."""
    part = run.partial_epoch(event)
    return "" if part is None else f" (batches {part[0]:,}-{part[1]:,} only: resumed mid-epoch)"


CSV_COLUMNS = ("run", "step", "seconds", "loss", "train_accuracy", "images_per_s", "epoch_end", "test_loss",
               "test_accuracy")


def write_curves_csv(path: str, runs: list[RunHistory]) -> None:
    """A line per step of every run (what the plots draw, unsmoothed); the step that ended an epoch also holds
    its number (from 1) and test figures."""
    import csv

    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(CSV_COLUMNS)
        for run in runs:
            ends = {step: ev for (step, _), ev in zip(run.epoch_x, run.epoch_ends)}
            for k, step in enumerate(run.steps):
                ev = ends.get(step)
                tail = ["", "", ""] if ev is None else [
                    ev.epoch + 1, "" if ev.test_loss is None else f"{ev.test_loss:.6g}",
                    "" if ev.test_accuracy is None else f"{ev.test_accuracy:.6g}"]
                out.writerow([run.label, step, f"{run.seconds[k]:.4f}", f"{run.loss[k]:.6g}",
                              f"{run.accuracy[k]:.6g}", f"{run.images_per_s[k]:.6g}", *tail])


def share_text(share: dict | None) -> str:
    """A data-parallel device's row: '52% of each batch · 3,121 images/s' (its rate once measured)."""
    if share is None:
        return "share of each batch: after the first step"
    rate = share.get("images_per_s")
    speed = "measuring its images/s" if rate is None else f"{rate:,.0f} images/s"
    return f"{100 * share['share']:.0f}% of each batch · {speed}"


class TrainView(QWidget):
    """Runs one TrainWorker per selected device (or one for them all, data-parallel); every event is drawn from
    the GUI thread."""

    sigRunsFinished = Signal()
    sigStatus = Signal(str)  # a line for the window's status bar: what is going on, what to do next
    sigButtonsChanged = Signal()  # Start, Pause/Resume, Stop or Load changed: the window's menu follows them
    sigRecorded = Signal()  # a run was added to the run history, ended an epoch or ended

    def __init__(self, log: LogPanel, device_panel: DevicePanel | None = None, runner=run_training,
                 control_factory=None, parent=None, run_store: RunStore | None = None):
        qtfix.apply()
        super().__init__(parent)
        self.log = log
        self.runner = runner
        self.control_factory = control_factory
        self.runs: dict[str, RunHistory] = {}
        self.workers: dict[str, TrainWorker] = {}
        self._rows: list[tuple[RunHistory, str | None]] = []  # the run table: (run, None) or (run, its device)
        self.test_sets: dict[str, object] = {}
        self.loaded_path: str | None = None  # a checkpoint that the next Start continues from
        self.loaded_resume: tuple[int, int, dict | None] | None = None  # its (step, epoch, curves or None)
        self.summary_dialog: SummaryDialog | None = None
        self.config = TrainConfig()
        self.base_recipe = APP_RECIPE  # what the form leaves out (momentum, weight decay, ...) comes from here
        self._dirty = False
        self._paused = False
        self._data_failure = ""  # why the last run found no data set in the Data folder (marks the field)
        self.run_store = run_store  # the run history each run is recorded in (None: not kept)
        self.recorders: dict[str, RunRecorder] = {}

        self.devices = device_panel or DevicePanel()
        self.devices.exclusive_parts = True  # runs go at once: a CPU and its halves would share its cores
        self._build_form()
        self._build_centre()
        self._build_results()
        self.devices.sigSelectionChanged.connect(slot(self._update_parallel))
        self._update_parallel()

        # The device list as tall as its rows, the form under it, both scrolled when the form's messages and the
        # list's note need more room than the window has (1280x800 is tight); the buttons always in sight.
        self.devices.fit_tree_to_rows()
        settings, sv = self.devices.column("Devices (tick one or more)", 0)
        sv.addWidget(self.form_box, 0)
        sv.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(settings)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.settings_scroll = scroll
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        lv.addWidget(scroll, 1)
        lv.addLayout(self.button_row)
        lv.addLayout(self.checkpoint_row)

        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(self.centre)
        split.addWidget(self.results_box)
        # 280 pixels is the least the form and the device list need; a wider window gives them some more (the
        # device list then shows more of its columns), most of it to the plots
        left.setMinimumWidth(LEFT_WIDTH)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 5)
        split.setStretchFactor(2, 2)
        split.setSizes([LEFT_WIDTH, 840, 380])
        self.splitter = split
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(split)

        self.timer = QTimer(self)
        self.timer.setInterval(REDRAW_MS)
        self.timer.timeout.connect(slot(self.redraw))
        self.timer.start()
        # a crash loses at most this much of a run's curves; each write is a few milliseconds
        self.record_timer = QTimer(self)
        self.record_timer.setInterval(int(RECORD_SECONDS * 1000))
        self.record_timer.timeout.connect(slot(self.record_runs))
        self.record_timer.start()
        self._check_form()

    # ----- layout -----

    def _build_form(self) -> None:
        self.model_box = QComboBox()
        self.model_box.addItems(list(R.MODEL_NAMES))
        self.summary_button = QToolButton()  # an icon, not words: a wider model row widens the whole left column
        self.summary_button.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_FileDialogDetailedView))
        self.summary_button.setText("Summary")
        self.summary_button.setToolTip("The model's layers, output shapes, parameters and FLOPs, and the device "
                                       "memory a training step at this batch size needs (hetero summary)")
        self.summary_button.clicked.connect(slot(self.show_summary))
        model_row = QHBoxLayout()
        model_row.setContentsMargins(0, 0, 0, 0)
        model_row.addWidget(self.model_box, 1)
        model_row.addWidget(self.summary_button)
        self.dataset_box = QComboBox()
        self.dataset_box.addItems(list(DATASETS))
        self.data_edit = QLineEdit()
        self.data_edit.setPlaceholderText("default: $HETERO_DATA_DIR or the cache")
        browse = QToolButton()
        browse.setText("…")
        browse.setToolTip("choose the folder that holds the IDX files")
        browse.clicked.connect(slot(self._browse_data))
        data_row = QHBoxLayout()
        data_row.setContentsMargins(0, 0, 0, 0)
        data_row.addWidget(self.data_edit)
        data_row.addWidget(browse)
        # The spin boxes take more than what trains, so a value typed is kept and the message under the field
        # says what is wrong with it; a narrower range would change it silently (0 -> the old value).
        self.epochs_box = QSpinBox()
        self.epochs_box.setRange(0, 100000)
        self.epochs_box.setValue(self.config.recipe.epochs)
        self.batch_box = QSpinBox()
        self.batch_box.setRange(0, 10_000_000)
        self.batch_box.setGroupSeparatorShown(True)
        self.batch_box.setValue(self.config.recipe.batch_size)
        self.optimizer_box = QComboBox()
        self.optimizer_box.addItems(["adam"] + [o for o in R.OPTIMIZER_NAMES if o != "adam"])
        self.lr_box = QDoubleSpinBox()
        self.lr_box.setDecimals(5)
        self.lr_box.setRange(0.0, 1000.0)
        self.lr_box.setSingleStep(1e-4)
        self.lr_box.setValue(self.config.recipe.lr)
        self.model_box.currentTextChanged.connect(slot(self._suggest_lr))
        self.optimizer_box.currentTextChanged.connect(slot(self._suggest_lr))
        self.schedule_box = QComboBox()
        self.schedule_box.addItems(list(R.LR_SCHEDULES))
        self.schedule_box.setCurrentText(self.config.recipe.lr_schedule)
        self.seed_box = QSpinBox()
        self.seed_box.setRange(0, 2**31 - 1)
        self.form_box = QGroupBox("Training")
        form = QFormLayout(self.form_box)
        self.field_messages: dict[str, QLabel] = {}
        for key, label, field in (("model", "Model", model_row), ("dataset", "Dataset", self.dataset_box),
                                  ("data", "Data folder", data_row), ("epochs", "Epochs", self.epochs_box),
                                  ("batch", "Batch size", self.batch_box),
                                  ("optimizer", "Optimizer", self.optimizer_box),
                                  ("lr", "Learning rate", self.lr_box), ("schedule", "LR schedule", self.schedule_box),
                                  ("seed", "Seed", self.seed_box)):
            self._add_field(form, key, label, field)
        for box in (self.epochs_box, self.batch_box, self.lr_box):
            box.valueChanged.connect(slot(self._check_form))
        self.data_edit.textChanged.connect(slot(self._data_changed))
        self.dataset_box.currentTextChanged.connect(slot(self._data_changed))
        self.model_box.currentTextChanged.connect(slot(self._check_form))
        self.optimizer_box.currentTextChanged.connect(slot(self._check_form))
        # two lines: on one, this label alone would set the column's width and squeeze the run table
        self.parallel_box = QCheckBox("Train one model on the ticked devices\n(data-parallel)")
        self.parallel_box.toggled.connect(slot(self._update_parallel))
        self.parallel_message = QLabel()  # why the ticked devices cannot train one model together
        self.parallel_message.setWordWrap(True)
        self.parallel_message.setStyleSheet("color: #b00020;")
        self.parallel_message.setVisible(False)
        form.addRow(self.parallel_box)
        form.addRow(self.parallel_message)

        self.start_button = QPushButton("Start")
        bold_font(self.start_button)
        self.pause_button = QPushButton("Pause")
        self.stop_button = QPushButton("Stop")
        self.pause_button.setToolTip("Pause after the current step (the plots stay; Resume goes on)")
        self.stop_button.setToolTip("Stop after the current step; the model stays for Save checkpoint")
        self.start_button.clicked.connect(slot(self.start))
        self.pause_button.clicked.connect(slot(self.toggle_pause))
        self.stop_button.clicked.connect(slot(self.stop))
        self.button_row = QHBoxLayout()
        for b in (self.start_button, self.pause_button, self.stop_button):
            self.button_row.addWidget(b)
        self.save_button = QPushButton("Save checkpoint…")
        self.load_button = QPushButton("Load checkpoint…")
        self.save_button.setToolTip("Save the weights, optimizer state and settings of the run shown under "
                                    "\"After each epoch\"; a running training pauses for it and goes on")
        self.load_button.setToolTip("Read a checkpoint (from here or hetero train): its settings fill the form "
                                    "and Start continues training from it")
        self.save_button.clicked.connect(slot(self.save_checkpoint))
        self.load_button.clicked.connect(slot(self.load_checkpoint))
        self.checkpoint_row = QHBoxLayout()
        self.checkpoint_row.addWidget(self.save_button)
        self.checkpoint_row.addWidget(self.load_button)

    def _build_centre(self) -> None:
        # a run's failure, in full and in sight (the log has it too, among everything else)
        self.error_box = QFrame()
        self.error_box.setObjectName("error_box")
        self.error_box.setStyleSheet("#error_box { background: #fdecee; border: 1px solid #b00020; }")
        self.error_text = QLabel()
        self.error_text.setWordWrap(True)
        self.error_text.setTextFormat(Qt.TextFormat.RichText)
        self.error_text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error_text.setStyleSheet("color: #b00020;")
        hide = QToolButton()
        hide.setText("✕")
        hide.setToolTip("Hide this message (the log keeps it)")
        hide.clicked.connect(slot(self.error_box.hide))
        row = QHBoxLayout(self.error_box)
        row.setContentsMargins(6, 4, 4, 4)
        row.addWidget(self.error_text, 1)
        row.addWidget(hide, 0, Qt.AlignmentFlag.AlignTop)
        self.error_box.setVisible(False)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setFormat("idle")
        self.progress.setTextVisible(True)
        self.run_table = QTableWidget(0, len(RUN_COLUMNS))
        self.run_table.setHorizontalHeaderLabels(RUN_COLUMNS)
        for col, tip in enumerate(RUN_TIPS):
            self.run_table.horizontalHeaderItem(col).setToolTip(tip)
        self.run_table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.run_table.verticalHeader().setVisible(False)
        # the figures as wide as they are, the device name the rest (elided, never scrolled out of sight)
        self.run_columns = ColumnFitter(self.run_table, 0, self._device_column_width)
        self._fit_table_height()
        self.run_table.horizontalScrollBar().rangeChanged.connect(slot(self._fit_table_height))
        # a narrow window keeps both ends: "0:0/2.0…0:0/2.1", "NVIDIA…RTX 3080"
        self.run_table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.run_table.setWordWrap(False)
        self.x_box = QComboBox()
        self.x_box.addItems(["steps", "seconds"])
        self.x_box.setToolTip("x axis of the plots: optimizer steps, or seconds since training started (devices "
                              "side by side compare best in seconds)")
        self.x_box.currentTextChanged.connect(self._set_x_mode)
        self.smooth_slider = QSlider(Qt.Orientation.Horizontal)
        self.smooth_slider.setRange(0, 99)
        self.smooth_slider.setValue(90)
        self.smooth_slider.setMaximumWidth(160)
        self.smooth_slider.setToolTip("How much the thick curves average over recent steps (an exponential moving "
                                      "average, as TensorBoard's); 0 shows each step's value")
        self.smooth_label = QLabel()
        self.smooth_slider.valueChanged.connect(self._set_smoothing)
        self._set_smoothing(self.smooth_slider.value())
        controls = QHBoxLayout()
        controls.addWidget(QLabel("x axis"))
        controls.addWidget(self.x_box)
        controls.addSpacing(16)
        controls.addWidget(QLabel("smoothing"))
        controls.addWidget(self.smooth_slider)
        controls.addWidget(self.smooth_label)
        self.plots = TrainPlots()
        self.plots.sigFollowChanged.connect(slot(self._mark_dirty))  # refit at once, not at the next step
        controls.addWidget(self.plots.follow_hint, 1)  # the row's room while zoomed; the stretch's when hidden
        controls.addStretch(0)
        controls.addWidget(self.plots.follow_button)
        self.centre = QWidget()
        cv = QVBoxLayout(self.centre)
        cv.setContentsMargins(0, 0, 0, 0)
        cv.addWidget(self.progress)
        cv.addWidget(self.error_box)
        cv.addWidget(self.run_table)
        cv.addLayout(controls)
        cv.addWidget(self.plots, 1)

    def _build_results(self) -> None:
        self.results_box = QGroupBox("After each epoch")
        self.result_device = QComboBox()
        self.result_device.currentIndexChanged.connect(slot(self._show_results))
        self.summary = QLabel("Results appear when the first epoch ends.")
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        self.confusion = ConfusionMatrix()
        self.confusion.setMinimumHeight(220)
        # narrower, the confusion matrix elides its four-digit counts ("11…" for 1126)
        self.results_box.setMinimumWidth(self.confusion.least_width() + 24)
        self.digits = DigitGrid(columns=6, rows=6)
        self.digits_caption = QLabel("")
        self.digits_caption.setWordWrap(True)  # a long caption would widen the panel and squeeze the run table
        self.mistakes_box = QCheckBox("mistakes only")
        self.mistakes_box.setToolTip("Show only the test images the model got wrong")
        self.result_device.setToolTip("The run whose epoch results are shown (and saved by Save checkpoint)")
        self.mistakes_box.toggled.connect(self._set_mistakes_only)
        rv = QVBoxLayout(self.results_box)
        rv.addWidget(self.result_device)
        rv.addWidget(self.summary)
        caption = QLabel("Confusion matrix (rows: true class, columns: predicted)")
        caption.setWordWrap(True)  # else its width is the panel's least, taken from the plots at 1280x800
        rv.addWidget(caption)
        rv.addWidget(self.confusion, 3)
        row = QHBoxLayout()
        row.addWidget(self.digits_caption, 1)
        row.addWidget(self.mistakes_box)
        rv.addLayout(row)
        rv.addWidget(self.digits, 4)

    # ----- form -----

    def _add_field(self, form: QFormLayout, key: str, label: str, field) -> None:
        """A form row: the field with its tooltip (on its label too), and under it, the form's width wide, a
        message shown while the value is wrong (red) or unlikely to train well (orange)."""
        form.addRow(label, field)
        first = field.itemAt(0).widget() if isinstance(field, QHBoxLayout) else field
        tip = FIELD_TIPS[key]
        form.labelForField(field).setToolTip(tip)
        first.setToolTip(tip)
        message = QLabel()
        message.setWordWrap(True)
        form.addRow(message)
        form.setRowVisible(message, False)
        self.field_messages[key] = message

    def form_problems(self) -> dict[str, tuple[str, str]]:
        """What is wrong with the form ("error": Start refuses it) or unusual ("warning"), per field."""
        out: dict[str, tuple[str, str]] = {}
        epochs, batch, lr = self.epochs_box.value(), self.batch_box.value(), self.lr_box.value()
        if epochs < 1:
            out["epochs"] = ("error", "Train for at least 1 epoch.")
        if batch < 1:
            out["batch"] = ("error", "A batch holds at least 1 image.")
        elif batch > TRAIN_IMAGES:
            out["batch"] = ("error", f"At most {TRAIN_IMAGES:,}: a batch of {batch:,} is more than the "
                                     f"training images.")
        elif batch > LARGE_BATCH:
            out["batch"] = ("warning", f"Very large: needs much device memory, {math.ceil(TRAIN_IMAGES / batch)} "
                                       f"steps per epoch, a first step of minutes. 32-512 is usual.")
        usual = R.default_lr(self.model_box.currentText(), self.optimizer_box.currentText())
        if lr <= 0:
            out["lr"] = ("error", f"Must be above 0 (0 never changes the weights); try {usual:g} for "
                                  f"{self.model_box.currentText()} with {self.optimizer_box.currentText()}.")
        elif lr > 1:
            out["lr"] = ("warning", f"Very high: above 1 the loss usually explodes; try {usual:g} for "
                                    f"{self.model_box.currentText()} with {self.optimizer_box.currentText()}.")
        folder = self.data_edit.text().strip()
        if folder and not os.path.isdir(os.path.expanduser(folder)):
            out["data"] = ("error", "No such folder: choose the one with the IDX files, or leave it empty.")
        elif self._data_failure:  # the last run looked here in vain; Start may try again (files copied since)
            out["data"] = ("failed", self._data_failure)
        return out

    def _check_form(self) -> None:
        """Show each field's message, mark the data folder, and allow Start only for a form that can train."""
        problems = self.form_problems()
        for key, message in self.field_messages.items():
            level, text = problems.get(key, ("", ""))
            message.setText(text)
            message.setStyleSheet(f"color: {LEVEL_COLOURS.get(level, LEVEL_COLOURS['error'])};")
            self.form_box.layout().setRowVisible(message, bool(text))
        self._mark_data_field("data" in problems and problems["data"][0] in ("error", "failed"))
        self._update_buttons()

    def _data_changed(self) -> None:
        self._data_failure = ""
        self._check_form()

    def _mark_data_field(self, bad: bool) -> None:
        self.data_edit.setStyleSheet("QLineEdit { border: 2px solid #b00020; }" if bad else "")

    def form_errors(self) -> list[str]:
        return [text for level, text in self.form_problems().values() if level == "error"]

    def _browse_data(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Folder with the IDX files", self.data_edit.text())
        if path:
            self.data_edit.setText(path)

    def _suggest_lr(self) -> None:
        """The learning rate that trains this model well with this optimizer (hetero.recipe.default_lr)."""
        self.lr_box.setValue(R.default_lr(self.model_box.currentText(), self.optimizer_box.currentText()))

    def read_form(self) -> TrainConfig:
        """The form as a run: the base recipe (the app's, or a loaded checkpoint's) with the form's settings."""
        recipe = self.base_recipe.replace(
            model=self.model_box.currentText(),
            dataset=self.dataset_box.currentText(),
            epochs=self.epochs_box.value(),
            batch_size=self.batch_box.value(),
            optimizer=self.optimizer_box.currentText(),
            lr=self.lr_box.value(),
            lr_schedule=self.schedule_box.currentText(),
            seed=self.seed_box.value(),
        )
        return TrainConfig(recipe, data_dir=self.data_edit.text().strip() or None)

    def write_form(self, config: TrainConfig) -> None:
        recipe = config.recipe
        self.base_recipe = recipe
        self.model_box.setCurrentText(recipe.model)
        self.dataset_box.setCurrentText(recipe.dataset)
        if config.data_dir:  # a checkpoint without one keeps the folder the user has set
            self.data_edit.setText(config.data_dir)
        self.epochs_box.setValue(recipe.epochs)
        self.batch_box.setValue(recipe.batch_size)
        self.optimizer_box.setCurrentText(recipe.optimizer)
        self.lr_box.setValue(recipe.lr)
        self.schedule_box.setCurrentText(recipe.lr_schedule)
        self.seed_box.setValue(recipe.seed)

    def _update_parallel(self) -> None:
        """Offer data-parallel training for two or more ticked devices; say why when it cannot be used."""
        ids = self.devices.selected_ids()
        possible = len(ids) >= 2
        self.parallel_box.setEnabled(possible)
        why = "" if possible else "<p><b>Tick two or more devices to use this.</b></p>"
        self.parallel_box.setToolTip(why + PARALLEL_TIP)
        problem = self.parallel_problem(ids) if possible and self.parallel_box.isChecked() else ""
        self.parallel_message.setText(problem)
        self.parallel_message.setVisible(bool(problem))

    def parallel_problem(self, ids: list[str]) -> str:
        """Why these devices cannot train one model together (a CPU with one of its halves), or ''."""
        import hetero
        from hetero import parallel as P

        try:
            P.check_devices([hetero.device(i) for i in ids])
        except hetero.HeteroError as e:
            why = str(e).removeprefix("data parallel: ")
            why = why.replace("also listed", "also ticked").replace("list either", "tick either")  # the form's words
            return f"These devices cannot train one model together: {why}."
        return ""

    def is_parallel(self) -> bool:
        """Whether Start trains one model data-parallel on the ticked devices."""
        return self.parallel_box.isChecked() and len(self.devices.selected_ids()) >= 2

    # ----- running -----

    def is_running(self) -> bool:
        return any(w.isRunning() for w in self.workers.values())

    def start(self, max_steps: int | None = None) -> bool:
        """Start one worker per ticked device (one for them all when data-parallel) with the form's settings;
        False when nothing started."""
        if self.is_running():
            return False
        ids = self.devices.selected_ids()
        if not ids:
            self.log.add("warning", "Tick at least one device in the device list, then press Start.")
            return False
        errors = self.form_errors()
        if errors:
            self._check_form()
            self.log.add("warning", "Not started: " + " ".join(errors))
            return False
        warnings = [text for level, text in self.form_problems().values() if level == "warning"]
        for text in warnings:
            self.log.add("warning", text)
        parallel = self.is_parallel()
        if parallel:
            problem = self.parallel_problem(ids)
            if problem:
                self._update_parallel()
                self.log.add("warning", f"{problem} Untick one of them, or untick data-parallel to train a model "
                                        f"on each side by side.")
                return False
        if not parallel:
            for whole, half in self.devices.overlapping(ids):
                self.log.add("warning", f"{whole} and {half} share the same cores: their runs slow each other "
                                        f"down, so their speeds do not compare. Tick the whole device or its halves.")
        form = self.read_form()
        self.config = TrainConfig(form.recipe.replace(max_steps=max_steps), form.data_dir, self.loaded_path)
        resume = self.loaded_resume if self.loaded_path else None
        self.loaded_path = self.loaded_resume = None  # one Start continues from it; load it again to repeat
        self._reset()
        groups = [ids] if parallel else [[i] for i in ids]
        for k, group in enumerate(groups):
            device_id = ",".join(group)  # the worker's devices, and the recipe's `devices` in its checkpoints
            label = f"data-parallel: {' + '.join(group)}" if parallel else self.devices.label(device_id)
            run = RunHistory(device_id, label, COLOURS[k % len(COLOURS)], self.config.recipe.epochs,
                             group if parallel else None)
            self.runs[device_id] = run
            control = self.control_factory() if self.control_factory else None
            worker = TrainWorker(device_id, device_id, self.config, self.runner, control, parent=self)
            worker.sigEvent.connect(self._on_event)
            worker.sigTestSet.connect(self._on_test_set)
            worker.sigLog.connect(self._on_log)
            worker.sigFailed.connect(self._on_failed)
            worker.finished.connect(self._on_worker_finished)
            if resume is not None:
                run.resume(*resume)
                worker.history.resume(*resume)
            self.workers[device_id] = worker
            self.result_device.addItem(label, device_id)
        self._add_table_rows()
        if resume is not None:
            self._show_results()  # the checkpoint's last epoch, until this run ends one
        if len(groups) > 1:
            self.x_box.setCurrentText("seconds")  # the same seed gives the same curve per step on every device
        barrier = threading.Barrier(len(groups))
        for worker in self.workers.values():
            worker.barrier = barrier
        if parallel:
            names = f"{' + '.join(ids)}, one model data-parallel (each batch split by measured speed)"
        else:
            names = ", ".join(run.label for run in self.runs.values())
        recipe = self.config.recipe
        self.log.add("info", f"Training {recipe.model} on {recipe.dataset} for {recipe.epochs} epoch(s), batch "
                             f"{recipe.batch_size}, {recipe.optimizer} lr {recipe.lr:g} ({recipe.lr_schedule}), "
                             f"seed {recipe.seed} on: {names}")
        if resume is not None:
            step, epoch, saved = resume
            where = f"checkpoint step {step:,} (epoch {epoch + 1})"
            if saved and saved["steps"]:
                self.log.add("info", f"Continues from {where}: the curves up to there are the checkpoint's; a grey "
                                     f"line marks where this run takes over.")
            else:
                self.log.add("info", f"Continues from {where}: the checkpoint holds no curves (hetero train and "
                                     f"older versions of the app write none), so they start at step {step:,}, "
                                     f"marked by a grey line.")
        self._record_starts()
        for worker in self.workers.values():
            worker.start()
        self._update_buttons()
        went_on = f" from checkpoint step {resume[0]:,}" if resume is not None else ""
        self.sigStatus.emit(f"Training {recipe.model} on {len(groups)} run(s){went_on}… Pause, Stop or Save "
                            f"checkpoint at any time; zoom a plot with the mouse wheel, Follow the run to see it all "
                            f"again.")
        self._dirty = True
        self.redraw()  # the new runs' rows and state now, not when their first step comes (seconds later)
        return True

    def _reset(self) -> None:
        self.error_box.setVisible(False)
        if self._data_failure:
            self._data_failure = ""
            self._check_form()
        for worker in self.workers.values():
            worker.deleteLater()
        self.workers.clear()
        self.runs.clear()
        self._rows = []
        self.test_sets.clear()
        self.plots.clear()
        self.result_device.clear()
        self.confusion.clear_matrix()
        self.digits.clear()
        self.summary.setText("Results appear when the first epoch ends.")
        self.digits_caption.setText("")
        self._paused = False
        self.progress.setValue(0)  # not the last run's "stopped · 1 run(s)" until the first step arrives
        self.progress.setFormat("starting…")

    def toggle_pause(self) -> None:
        if not self.is_running():
            return
        self._paused = not self._paused
        for worker in self.workers.values():
            if worker.isRunning():
                (worker.pause if self._paused else worker.resume)()
                self.runs[worker.key].state = "paused" if self._paused else "running"
        self.log.add("info", "Paused." if self._paused else "Resumed.")
        self._dirty = True
        self._update_buttons()

    def stop(self) -> None:
        if not self.is_running():
            return
        for worker in self.workers.values():
            worker.stop()
        self._paused = False
        self.log.add("info", "Stopping after the current step…")
        self._update_buttons()

    def stop_all(self, wait_ms: int = 30000) -> bool:
        """Stop every worker and wait up to wait_ms for each (window closing); True when all have ended."""
        for worker in self.workers.values():
            worker.stop()
        ok = True
        for worker in self.workers.values():
            ok = worker.wait(wait_ms) and ok
        dialog = self.summary_dialog
        if dialog is not None:
            try:
                ok = dialog.worker.wait(wait_ms) and ok  # a summary cannot be cut short: it ends within seconds
            except RuntimeError:
                self.summary_dialog = None  # closed and deleted already
        return ok

    # ----- events (GUI thread) -----

    @Slot(str, object)
    def _on_event(self, key: str, event) -> None:
        run = self.runs.get(key)
        if run is None:
            return  # a late event of a run the user has already replaced
        run.add(event)  # a step read back during a pause leaves the run "paused"
        self._dirty = True
        kind = getattr(event, "event", None)
        if kind == "epoch_end":
            self._on_epoch_end(run, event)
        elif kind == "done":
            self._on_done(run, event)

    def _on_epoch_end(self, run: RunHistory, event) -> None:
        best = run.best_epoch()
        star = " (best so far)" if best == len(run.epoch_ends) - 1 else ""
        test_loss = "-" if event.test_loss is None else f"{event.test_loss:.4f}"
        self.log.add("info", f"Epoch {event.epoch + 1}: test accuracy {_pct(event.test_accuracy)}{star}, test loss "
                             f"{test_loss}, train accuracy {_pct(event.train_accuracy)}{partial_note(run, event)}, "
                             f"{event.seconds:.1f} s", run.label)
        if self.result_device.currentData() == run.key:
            self._show_results()
        self._record(run)

    def _on_done(self, run: RunHistory, event) -> None:
        self._record(run, getattr(event, "message", "") if run.state == "failed" else "")
        reason = event.reason
        where = run.label
        if reason in ("finished", "max_steps"):
            best = run.best()
            tail = f"; best test accuracy {_pct(best[1])} in epoch {best[0]}" if best else ""
            what = "Training finished" if reason == "finished" else "Reached the step limit"
            self.log.add("info", f"{what}: {event.steps} steps in {format_duration(event.seconds)}{tail}.", where)
        elif reason == "stopped":
            self.log.add("info", f"Stopped at step {event.steps}.", where)
        elif reason == "diverged":
            lr = self.config.recipe.lr
            text = (f"The loss became NaN or infinite at step {event.steps}, so training stopped. "
                    f"Try a lower learning rate (it was {lr:g}). {event.message}")
            self.log.add("error", text, where)
            self.show_error(text, where)
        elif not getattr(run, "failure_shown", False):
            self.log.add("error", event.message or "Training failed.", where)
            self.show_error(event.message or "Training failed.", where)

    # ----- the run history -----

    def _record_starts(self) -> None:
        """Add the new runs to the run history, as running."""
        self.recorders.clear()
        if self.run_store is None:
            return
        for key, worker in self.workers.items():
            recorder = self._store_call(self.run_store.start_run, worker.recipe.to_dict(), key, self.runs[key].label,
                                        self.config.resume_from)
            if recorder is None:
                return
            self.recorders[key] = recorder
        self.sigRecorded.emit()

    def _record(self, run: RunHistory, message: str = "") -> None:
        """Write what a run has gained (at its epoch ends and its end)."""
        recorder = self.recorders.get(run.key)
        if recorder is not None and not recorder.finished:
            self._store_call(recorder.write, run, None, message)
            self.sigRecorded.emit()

    def record_runs(self) -> None:
        """Write the runs still going (the timer's), so a crash loses only the last seconds of their curves."""
        for key, recorder in list(self.recorders.items()):
            run = self.runs.get(key)
            if run is not None and not recorder.finished and recorder.due():
                self._store_call(recorder.write, run)

    def finish_records(self) -> None:
        """The window closes: record how each run ended, from its worker's curves (the GUI's copy may lag a few
        queued events behind a thread that has just ended)."""
        for key, recorder in list(self.recorders.items()):
            run, worker = self.runs.get(key), self.workers.get(key)
            if recorder.finished or run is None:
                continue
            history = worker.history if worker is not None and not worker.isRunning() else run
            status = run.state if run.done is not None else "stopped"
            self._store_call(recorder.write, history, status)

    def _store_call(self, action: Callable, *args):
        """action(*args), a store write; a failure turns the history off with one warning (training goes on)."""
        try:
            return action(*args)
        except RunStoreError as e:
            self.log.add("warning", f"Run history is off from now on: {e}")
            self.run_store = None
            self.recorders.clear()
            return None

    @Slot(str, object)
    def _on_test_set(self, key: str, dataset) -> None:
        self.test_sets[key] = dataset

    @Slot(str, str, str)
    def _on_log(self, key: str, level: str, message: str) -> None:
        run = self.runs.get(key)
        self.log.add(level, message, run.label if run else key)

    @Slot(str, str)
    def _on_failed(self, key: str, message: str) -> None:
        run = self.runs.get(key)
        if run is not None:
            run.failure_shown = True
            run.state = "failed"
        self.log.add("error", message, run.label if run else key)
        worker = self.workers.get(key)
        if worker is not None and worker.error_kind == "DatasetNotFoundError":
            folder = self.data_edit.text().strip()
            self._data_failure = (f"No {self.dataset_box.currentText()} files in this folder." if folder else
                                  f"No {self.dataset_box.currentText()} files in the default places: choose "
                                  f"the folder that holds them.")
            self._check_form()
        self.show_error(message, run.label if run else key)

    def show_error(self, message: str, where: str = "") -> None:
        """A failure above the run table, its line breaks kept, and in the status bar."""
        head = f"<b>{html.escape(where)}:</b> " if where else ""
        self.error_text.setText(head + as_html(message))
        self.error_box.setVisible(True)
        first = message.split("\n", 1)[0]
        self.sigStatus.emit(f"Training failed{' on ' + where if where else ''}: {first} "
                            f"(the whole message is above the run table and in the log)")

    @Slot()
    def _on_worker_finished(self) -> None:
        self._dirty = True
        if not self.is_running():
            self._paused = False
            self._update_buttons()
            self.redraw()
            states = {r.state for r in self.runs.values()}
            if "failed" not in states:  # a failure's line stays
                what = "Training finished" if states == {"finished"} else "Training stopped"
                self.sigStatus.emit(f"{what}. Save checkpoint keeps the model; Start trains again with the form's "
                                    f"settings.")
            self.sigRunsFinished.emit()

    # ----- drawing (timer) -----

    def _mark_dirty(self) -> None:
        self._dirty = True

    def _set_x_mode(self, mode: str) -> None:
        self.plots.set_x_mode(mode)
        self._dirty = True

    def _set_smoothing(self, value: int) -> None:
        self.smoothing = value / 100.0
        self.smooth_label.setText(f"{self.smoothing:.2f}")
        self._dirty = True

    def _set_mistakes_only(self, on: bool) -> None:
        self.digits.mistakes_only = on
        self._show_results()

    def redraw(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        runs = list(self.runs.values())
        self.plots.update_runs(runs, self.smoothing)
        self._update_progress(runs)
        self._update_table()

    def _update_progress(self, runs: list[RunHistory]) -> None:
        if not runs:
            return
        fraction = sum(r.fraction() for r in runs) / len(runs)
        etas = [r.eta() for r in runs]
        eta = None if any(e is None for e in etas) else max(etas)
        self.progress.setValue(int(1000 * fraction))
        lead = max(runs, key=lambda r: r.fraction())
        if all(r.done is not None for r in runs):
            states = sorted({r.state for r in runs})
            text = f"{' / '.join(states)} at {100 * fraction:.0f}% · {len(runs)} run(s)"
        elif not any(r.steps for r in runs):
            text = "starting: loading the data, building the model and its kernels (a big batch takes a while)…"
        else:
            paused = " · paused" if self._paused else ""
            text = (f"epoch {lead.epoch + 1}/{lead.epochs} · batch {lead.batch + 1}/{lead.batches or '?'} · "
                    f"{100 * fraction:.0f}% · ETA {format_duration(eta)}{paused}")
        self.progress.setFormat(text)

    def _add_table_rows(self) -> None:
        """A row per run; under a data-parallel run, a row per device whose one wide cell says that device's share
        of each batch and its images/s (a sentence there reads better than a column empty for other runs)."""
        self.run_table.clearSpans()
        self._rows = [(run, part) for run in self.runs.values() for part in [None, *run.parts]]
        self.run_table.setRowCount(len(self._rows))
        for row, (run, part) in enumerate(self._rows):
            for col in range(len(RUN_COLUMNS)):
                item = QTableWidgetItem("")
                if col > 1 and part is None:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.run_table.setItem(row, col, item)
            first = self.run_table.item(row, 0)
            if part is None:
                first.setText(_device_text(run))
                first.setData(Qt.ItemDataRole.DecorationRole, QColor(run.colour))
                if run.parts:
                    first.setToolTip(f"{run.label}: one model; each batch is split across these devices in "
                                     f"proportion to their measured speed")
                else:
                    first.setToolTip(run.label)  # the whole name, which a narrow column elides
            else:
                first.setText(f"   ↳ {part}")
                first.setToolTip(self.devices.label(part))
                self.run_table.setSpan(row, 1, 1, len(RUN_COLUMNS) - 1)
                self.run_table.item(row, 1).setForeground(QColor(theme.colours().muted))
        self._fit_table_height()

    def _device_column_width(self) -> int:
        """The least width of the run table's Device column: the colour swatch and DEVICE_MIN_CHARS."""
        table = self.run_table
        swatch = table.style().pixelMetric(table.style().PixelMetric.PM_SmallIconSize) + 10
        return swatch + table.fontMetrics().horizontalAdvance(DEVICE_MIN_CHARS)

    def _fit_table_height(self) -> None:
        """As tall as its rows (up to TABLE_ROWS, then it scrolls), plus the horizontal scroll bar when one shows
        (else it hides the last row). A fixed height: the plots below, which take all the room they get, would
        otherwise squeeze it under its rows."""
        table = self.run_table
        shown = min(max(len(self._rows), 1), TABLE_ROWS)
        rows = sum(table.rowHeight(r) for r in range(min(shown, table.rowCount())))
        rows += table.verticalHeader().defaultSectionSize() * (shown - min(shown, table.rowCount()))
        bar = table.horizontalScrollBar()
        extra = bar.sizeHint().height() if bar.maximum() > 0 else 0
        table.setFixedHeight(table.horizontalHeader().sizeHint().height() + rows + 2 * table.frameWidth() + 2
                             + extra)

    def _update_table(self) -> None:
        for row, (run, part) in enumerate(self._rows):
            if part is not None:
                self._set_cell(row, 1, share_text(run.share(part)))
                continue
            best = run.best()
            last_test = run.epoch_ends[-1].test_accuracy if run.epoch_ends else None
            speed = run.smoothed("images_per_s", 0.9)
            cells = (
                _device_text(run),
                run.state,
                f"{run.epoch + 1}/{run.epochs}" if run.steps else "-",
                f"{run.steps[-1]:,}" if run.steps else "-",
                f"{run.smoothed('loss', self.smoothing)[-1]:.4f}" if run.loss else "-",
                _pct(run.smoothed("accuracy", self.smoothing)[-1]) if run.accuracy else "-",
                _pct(last_test),
                f"{_pct(best[1])} (ep {best[0]})" if best else "-",
                f"{speed[-1]:,.0f}" if speed.size else "-",
                format_duration(run.eta()),
            )
            for col, text in enumerate(cells):
                self._set_cell(row, col, text)

    def _set_cell(self, row: int, col: int, text: str) -> None:
        item = self.run_table.item(row, col)
        if item is not None and item.text() != text:
            item.setText(text)

    def _show_results(self) -> None:
        key = self.result_device.currentData()
        run = self.runs.get(key)
        if run is None or not run.epoch_ends:
            return
        ev = run.epoch_ends[-1]
        best = run.best()
        best_text = f"<br>best: epoch {best[0]} with {_pct(best[1])}" if best else ""
        test_loss = "-" if ev.test_loss is None else f"{ev.test_loss:.4f}"
        self.summary.setText(
            f"<b>Epoch {ev.epoch + 1} of {run.epochs}</b> · test accuracy <b>{_pct(ev.test_accuracy)}</b>"
            f"<br>test loss {test_loss} · train loss {ev.train_loss:.4f} · train accuracy "
            f"{_pct(ev.train_accuracy)}{html.escape(partial_note(run, ev))} · {ev.seconds:.1f} s{best_text}")
        dataset = self.test_sets.get(key)
        classes = [str(c) for c in getattr(dataset, "classes", [])] if dataset is not None else []
        if ev.confusion is not None:
            self.confusion.show_matrix(ev.confusion, classes)
        if dataset is not None and ev.predictions is not None:
            self.digits.show_predictions(dataset.images, np.asarray(dataset.labels), ev.predictions, classes)
            self.digits_caption.setText(self.digits.caption)

    def _update_buttons(self) -> None:
        running = self.is_running()
        errors = self.form_errors()
        self.start_button.setEnabled(not running and not errors)
        self.start_button.setToolTip("Fix the form first: " + " ".join(errors) if errors else
                                     "Train the model on each ticked device (or one model on all of them, "
                                     "data-parallel) with these settings")
        self.pause_button.setEnabled(running)
        self.pause_button.setText("Resume" if self._paused else "Pause")
        self.stop_button.setEnabled(running)
        self.load_button.setEnabled(not running)
        self.devices.setEnabled(not running)
        self.form_box.setEnabled(not running)
        self.sigButtonsChanged.emit()

    # ----- model summary -----

    def show_summary(self, compute: Callable | None = None) -> SummaryDialog:
        """A window with hetero.summary of the form's model on the first ticked device, computed in the
        background (`compute` replaces hetero.summary in tests)."""
        ids = self.devices.selected_ids()
        device_id = ids[0].split(",")[0] if ids else None
        recipe = self.read_form().recipe
        dialog = SummaryDialog(recipe, device_id, compute or model_summary, parent=self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()
        self.summary_dialog = dialog
        return dialog

    # ----- exports -----

    def export_plots(self, fmt: str, path: str | None = None) -> bool:
        """The plots as "png" or "svg" (as shown), or every run's curves and epoch figures as "csv"; asks for a
        file when path is None."""
        if fmt not in ("png", "svg", "csv"):
            raise ValueError(f"export_plots: {fmt!r} is not png, svg or csv")
        if not self.runs and fmt == "csv":
            self.log.add("warning", "Nothing to export yet: start a training first.")
            return False
        if path is None:
            kind = {"png": "PNG image", "svg": "SVG drawing", "csv": "CSV table"}[fmt]
            path, _ = QFileDialog.getSaveFileName(self, f"Export the plots as {fmt.upper()}",
                                                  os.path.join(os.getcwd(), f"training.{fmt}"),
                                                  f"{kind} (*.{fmt})")
            if not path:
                return False
        try:
            if fmt == "csv":
                write_curves_csv(path, list(self.runs.values()))
            else:
                self.redraw()
                self.plots.save_image(path, fmt)
        except OSError as e:
            self.log.add("error", f"Could not export the plots to {path}: {e.strerror or e}")
            return False
        self.log.add("info", f"Plots exported to {path}.")
        return True

    # ----- checkpoints -----

    def has_model(self) -> bool:
        return any(w.model is not None for w in self.workers.values())

    def save_checkpoint(self, path: str | None = None, key: str | None = None) -> bool:
        """Save the run shown in the results panel (or `key`); asks for a file when path is None."""
        key = key or self.result_device.currentData() or next(iter(self.workers), None)
        worker = self.workers.get(key)
        if worker is None or worker.model is None:
            self.log.add("warning", "Nothing to save yet: start a training first.")
            return False
        run = self.runs.get(key)
        if run is not None and run.done is not None:
            worker.wait(5000)  # its end is reported just before its thread returns: a save queued then is never made
        named_step = None
        if path is None:
            # Training goes on while the dialog is open, and the save waits for the next pause between steps:
            # a name the user keeps is renamed then to the step the checkpoint holds (TrainWorker.request_save).
            step = worker.last_step
            name = checkpoint_name(self.config.recipe, step)
            path, _ = QFileDialog.getSaveFileName(self, "Save training checkpoint", os.path.join(os.getcwd(), name),
                                                  "Checkpoints (*.safetensors)")
            if not path:
                return False
            named_step = step if os.path.basename(path) == name else None
        worker.request_save(path, named_step)
        return True

    def load_checkpoint(self, path: str | None = None) -> bool:
        """Read a training checkpoint: its settings fill the form and Start continues from it."""
        from hetero import checkpoint

        if path is None:
            path, _ = QFileDialog.getOpenFileName(self, "Load training checkpoint", os.getcwd(),
                                                  "Checkpoints (*.safetensors);;All files (*)")
            if not path:
                return False
        try:
            state = checkpoint.load_training(path)
        except Exception as e:
            self.log.add("error", f"Could not load {path}: {explain(e)}")
            return False
        try:
            self.write_form(TrainConfig.from_checkpoint(state))
        except R.RecipeError:
            self.log.add("warning", f"{os.path.basename(path)} does not say how it was trained; check the form.")
        if self.epochs_box.value() <= state["epoch"]:
            self.epochs_box.setValue(state["epoch"] + 1)
        self.loaded_path = path
        saved = (state.get("extra") or {}).get(HISTORY_KEY)
        curves = None
        if saved is not None:
            try:
                curves = check_saved(saved, state["step"])
            except SavedHistoryError as e:
                self.log.add("warning", f"{os.path.basename(path)}: its curves cannot be shown ({e}); they will "
                                        f"start at step {state['step']}.")
        self.loaded_resume = (state["step"], state["epoch"], curves)
        held = f", with its curves ({len(curves['steps']):,} points)" if curves and curves["steps"] else ""
        self.log.add("info", f"Loaded {os.path.basename(path)} (epoch {state['epoch'] + 1}, step {state['step']}"
                             f"{held}). Start continues training from there, up to the epochs set in the form.")
        return True
