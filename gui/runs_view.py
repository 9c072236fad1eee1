"""The Runs view: every stored training run in one sortable table of its settings and result; ticked runs'
curves overlaid in plots of their own."""

from __future__ import annotations

import csv
import math
import os
import time

from PySide6.QtCore import QItemSelectionModel, Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from . import theme
from .history import COLOURS, RunHistory, format_duration
from .layout import ColumnFitter
from .log_panel import LogPanel
from .plots import TrainPlots
from .run_store import RunStore, RunStoreError, StoredRun
from .slots import slot

# Short headers (their tooltips say the rest): at 1280x800 the table has some 800 pixels.
COLUMNS = ("Date", "Status", "Model", "Data", "Device(s)", "Batch", "Optim.", "LR", "Schedule", "Seed", "Epochs",
           "Best", "Time")
TIPS = ("When the run started; tick it to draw its curves", "finished, stopped, failed, running, or interrupted (the "
        "app ended during the run)", "The model trained", "The data set", "The device(s) it trained on",
        "Images per step", "The optimizer", "The learning rate", "The learning-rate schedule",
        "The seed of weights and data order", "Epochs finished, of those planned", "The best test accuracy of an "
        "epoch", "How long it ran, from Start to the end")
DEVICE_COLUMN = 4
NUMERIC = ("Batch", "LR", "Seed", "Epochs", "Best", "Time")  # right-aligned
OPTIONAL = (8, 9, 3)  # hidden in this order when the device names would have less than DEVICE_MIN_CHARS
DEVICE_MIN_CHARS = "0:0/2.0 p…"
SMOOTHING = 0.9  # the Train view's default
SORT_ROLE = Qt.ItemDataRole.UserRole + 1
ID_ROLE = Qt.ItemDataRole.UserRole + 2
CSV_COLUMNS = ("id", "started", "ended", "status", "model", "dataset", "devices", "device_label", "batch_size",
               "optimizer", "lr", "lr_schedule", "momentum", "weight_decay", "seed", "epochs", "epochs_done", "steps",
               "best_test_accuracy", "best_epoch", "duration_s", "resumed_from", "message")
STATUS_COLOURS = {"failed": "#b00020", "interrupted": "#b26a00"}


class _Item(QTableWidgetItem):
    """A cell that sorts by its SORT_ROLE value (a number, a time) rather than its text."""

    def __lt__(self, other: QTableWidgetItem) -> bool:
        a, b = self.data(SORT_ROLE), other.data(SORT_ROLE)
        if a is None or b is None or type(a) is not type(b):
            return super().__lt__(other)
        return a < b


def _date(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t))


def _pct(v: float | None) -> str:
    return "-" if v is None or not math.isfinite(v) else f"{100 * v:.2f}%"


def row_cells(run: StoredRun) -> list[tuple[str, object]]:
    """A run's table row: (text, the value it sorts by) per column of COLUMNS."""
    lr = run.get("lr")
    best = run.best_test_accuracy
    epochs = run.get("epochs", 0) or 0
    return [
        (_date(run.started), run.started),
        (run.status, run.status),
        (str(run.get("model", "?")), str(run.get("model", ""))),
        (str(run.get("dataset", "?")), str(run.get("dataset", ""))),
        (run.devices.replace(",", " + "), run.devices),
        (f"{run.get('batch_size', 0):,}", float(run.get("batch_size", 0) or 0)),
        (str(run.get("optimizer", "?")), str(run.get("optimizer", ""))),
        ("-" if lr is None else f"{lr:g}", float(lr or 0.0)),
        (str(run.get("lr_schedule", "?")), str(run.get("lr_schedule", ""))),
        (str(run.get("seed", "?")), float(run.get("seed", 0) or 0)),
        (f"{run.epochs_done}/{epochs}", float(run.epochs_done)),
        (_pct(best), -1.0 if best is None else float(best)),
        (format_duration(run.duration), float(run.duration)),
    ]


def write_runs_csv(path: str, runs: list[StoredRun]) -> None:
    """One line per run: its settings and result as plain values (times in ISO 8601, accuracy in [0, 1])."""
    def iso(t: float | None) -> str:
        return "" if t is None else time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(t))

    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(CSV_COLUMNS)
        for r in runs:
            out.writerow([r.id, iso(r.started), iso(r.ended), r.status, r.get("model", ""), r.get("dataset", ""),
                          r.devices, r.device_label, r.get("batch_size", ""), r.get("optimizer", ""),
                          r.get("lr", ""), r.get("lr_schedule", ""), r.get("momentum", ""),
                          r.get("weight_decay", ""), r.get("seed", ""), r.get("epochs", ""), r.epochs_done, r.steps,
                          "" if r.best_test_accuracy is None else f"{r.best_test_accuracy:.6g}",
                          "" if r.best_epoch is None else r.best_epoch, f"{r.duration:.1f}", r.resumed_from or "",
                          r.message])


class RunsView(QWidget):
    """The stored runs (`store`; None when the history is off, `problem` saying why) and their curves."""

    def __init__(self, log: LogPanel, store: RunStore | None, problem: str = "", parent=None):
        super().__init__(parent)
        self.log = log
        self.store = store
        self.problem = problem
        self.stored: dict[int, StoredRun] = {}
        self.ticked: list[int] = []  # in the order they were ticked: their colours
        self._histories: dict[int, RunHistory] = {}
        self._filling = False

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        for col, tip in enumerate(TIPS):
            self.table.horizontalHeaderItem(col).setToolTip(tip)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.verticalHeader().setVisible(False)
        self.table.setWordWrap(False)
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(0, Qt.SortOrder.DescendingOrder)
        self.columns = ColumnFitter(self.table, DEVICE_COLUMN, self._device_width, optional=OPTIONAL)
        self.table.itemChanged.connect(self._item_changed)
        self.table.itemSelectionChanged.connect(slot(self._update_buttons))

        self.delete_button = QPushButton("Delete…")
        self.delete_button.setToolTip("Delete the selected runs and their curves from the history (asks first)")
        self.delete_button.clicked.connect(slot(self.delete_selected))
        self.export_button = QPushButton("Export CSV…")
        self.export_button.setToolTip("The table as a CSV file: a line per run with its settings and result")
        self.export_button.clicked.connect(slot(self.export_csv))
        self.count_label = QLabel()
        buttons = QHBoxLayout()
        buttons.addWidget(self.count_label, 1)
        buttons.addWidget(self.delete_button)
        buttons.addWidget(self.export_button)
        self.where_label = QLabel()
        self.where_label.setWordWrap(True)
        self.where_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        lv.addLayout(buttons)
        lv.addWidget(self.table, 1)
        lv.addWidget(self.where_label)

        self.plots = TrainPlots()
        self.x_box = QComboBox()
        self.x_box.addItems(["steps", "seconds"])
        self.x_box.setToolTip("x axis of the plots: optimizer steps, or seconds since each run started")
        self.x_box.currentTextChanged.connect(slot(self._set_x_mode))
        self.hint = QLabel("Tick runs in the table to draw their curves here.")
        self.hint.setWordWrap(True)
        controls = QHBoxLayout()
        controls.addWidget(QLabel("x axis"))
        controls.addWidget(self.x_box)
        controls.addWidget(self.plots.follow_hint, 1)
        controls.addStretch(0)
        controls.addWidget(self.plots.follow_button)
        right = QWidget()
        rv = QVBoxLayout(right)
        rv.setContentsMargins(0, 0, 0, 0)
        rv.addLayout(controls)
        rv.addWidget(self.hint)
        rv.addWidget(self.plots, 1)

        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        split.setSizes([800, 460])
        self.splitter = split
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(split)
        self._show_where()
        self.refresh()

    def _device_width(self) -> int:
        return self.table.fontMetrics().horizontalAdvance(DEVICE_MIN_CHARS) + 12

    def _show_where(self) -> None:
        if self.store is None:
            text = f"Run history is off this session: {self.problem}" if self.problem else "Run history is off."
        elif self.store.path == ":memory:":
            text = ("This session keeps its runs only until it closes (--demo and --screenshot never write the "
                    "history; set HETERO_RUNS_DB to keep them).")
        else:
            text = f"History: {self.store.path}"
        self.where_label.setText(text)
        self.where_label.setStyleSheet(f"color: {theme.colours().muted};")

    def showEvent(self, event) -> None:
        self.refresh()  # runs recorded while another tab was shown
        super().showEvent(event)

    # ----- the table -----

    def _disable(self, e: RunStoreError) -> None:
        """The store failed mid-session: say so once and carry on without history."""
        self.log.add("warning", f"Run history is off from now on: {e}")
        self.store, self.problem = None, str(e)
        self._show_where()

    def refresh(self) -> None:
        """Read the runs again; ticks, selection and the sort order stay."""
        runs: list[StoredRun] = []
        if self.store is not None:
            try:
                runs = self.store.runs()
            except RunStoreError as e:
                self._disable(e)
        selected = set(self.selected_ids())
        self.stored = {r.id: r for r in runs}
        self.ticked = [i for i in self.ticked if i in self.stored]
        self._filling = True
        # the column fitter waits until the rows are all in: fitted per cell, it hid and showed a column back and
        # forth in one go, which leaves Qt's header positions stale (the table then paints no rows at all)
        self.columns.pause()
        table = self.table
        table.setSortingEnabled(False)
        table.setRowCount(0)  # fresh rows: items reused across a re-sort are where Qt's sorted views go wrong
        table.setRowCount(len(runs))
        for row, run in enumerate(runs):
            for col, (text, key) in enumerate(row_cells(run)):
                item = _Item(text)
                table.setItem(row, col, item)
                item.setData(SORT_ROLE, key)
                item.setData(ID_ROLE, run.id)
                if COLUMNS[col] in NUMERIC:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            first = table.item(row, 0)
            first.setFlags(first.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            first.setCheckState(Qt.CheckState.Checked if run.id in self.ticked else Qt.CheckState.Unchecked)
            first.setData(Qt.ItemDataRole.DecorationRole, QColor(self._colour(run.id)) if run.id in self.ticked
                          else None)
            status = table.item(row, 1)
            status.setForeground(QColor(STATUS_COLOURS[run.status]) if run.status in STATUS_COLOURS
                                 else table.palette().text().color())
            if run.message:
                status.setToolTip(run.message)
            table.item(row, DEVICE_COLUMN).setToolTip(run.device_label)
            table.item(row, 2).setToolTip(_recipe_tip(run))
        table.setSortingEnabled(True)
        self._filling = False
        self.columns.resume()
        self.select_runs(selected)
        table.viewport().update()
        self.count_label.setText(f"{len(runs)} run(s) · tick to overlay their curves" if runs else
                                 "No runs yet: every training started in the Train tab is kept here.")
        self.columns.fit()
        self._overlay(reload=True)
        self._update_buttons()

    def select_runs(self, ids) -> None:
        """Select the rows of these runs (only those)."""
        model = self.table.selectionModel()
        model.clearSelection()
        flags = QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows
        for row in range(self.table.rowCount()):
            if self.table.item(row, 0).data(ID_ROLE) in ids:
                model.select(self.table.model().index(row, 0), flags)

    def row_of(self, run_id: int) -> int:
        """The table row that shows a run (-1 when none does)."""
        for row in range(self.table.rowCount()):
            if self.table.item(row, 0).data(ID_ROLE) == run_id:
                return row
        return -1

    def row_texts(self, run_id: int) -> dict[str, str]:
        """What a run's row says, per column name."""
        row = self.row_of(run_id)
        return {name: self.table.item(row, col).text() for col, name in enumerate(COLUMNS)}

    def selected_ids(self) -> list[int]:
        rows = sorted({i.row() for i in self.table.selectedIndexes()})
        return [self.table.item(r, 0).data(ID_ROLE) for r in rows]

    def ordered_runs(self) -> list[StoredRun]:
        """The runs in the table's order (as sorted)."""
        ids = [self.table.item(r, 0).data(ID_ROLE) for r in range(self.table.rowCount())]
        return [self.stored[i] for i in ids if i in self.stored]

    def _update_buttons(self) -> None:
        self.delete_button.setEnabled(self.store is not None and bool(self.selected_ids()))
        self.export_button.setEnabled(bool(self.stored))

    # ----- overlay -----

    def _colour(self, run_id: int) -> str:
        return COLOURS[self.ticked.index(run_id) % len(COLOURS)]

    def set_ticked(self, run_id: int, on: bool) -> None:
        """Tick or untick a run's row (draws or removes its curves)."""
        row = self.row_of(run_id)
        if row >= 0:
            self.table.item(row, 0).setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)

    def _item_changed(self, item: QTableWidgetItem) -> None:
        if self._filling or item.column() != 0:
            return
        run_id = item.data(ID_ROLE)
        on = item.checkState() == Qt.CheckState.Checked
        if on == (run_id in self.ticked):
            return
        if on:
            self.ticked.append(run_id)
        else:
            self.ticked.remove(run_id)
            self._histories.pop(run_id, None)
        self._filling = True
        for rid in self.ticked + [run_id]:  # colours follow the tick order
            row = self.row_of(rid)
            if row >= 0:
                self.table.item(row, 0).setData(Qt.ItemDataRole.DecorationRole,
                                                QColor(self._colour(rid)) if rid in self.ticked else None)
        self._filling = False
        self._overlay()

    def overlaid(self) -> list[RunHistory]:
        """The curves drawn, one RunHistory per ticked run."""
        return [self._histories[i] for i in self.ticked if i in self._histories]

    def _overlay(self, reload: bool = False) -> None:
        """Draw the ticked runs; a run still going (or all, with `reload`) is read from the store again."""
        for run_id in self.ticked:
            run = self.stored[run_id]
            h = self._histories.get(run_id)
            if self.store is not None and (h is None or reload and run.status == "running"
                                           or h.colour != self._colour(run_id)):
                try:
                    self._histories[run_id] = self.store.history(run, self._colour(run_id))
                except RunStoreError as e:
                    self._disable(e)
                    break
        self.plots.clear()
        runs = self.overlaid()
        if runs:
            self.plots.update_runs(runs, SMOOTHING)
        self.hint.setVisible(not runs)

    def _set_x_mode(self) -> None:
        self.plots.set_x_mode(self.x_box.currentText())
        self._overlay()

    # ----- delete, export -----

    def delete_selected(self) -> int:
        """Delete the selected runs after asking; how many were deleted."""
        ids = self.selected_ids()
        if self.store is None or not ids:
            return 0
        going = [i for i in ids if self.stored[i].status == "running"]
        if going:
            self.log.add("warning", f"Run(s) {', '.join(f'#{i}' for i in going)} are still training: stop them "
                                    f"first, then delete.")
            return 0
        what = f"run #{ids[0]}" if len(ids) == 1 else f"these {len(ids)} runs"
        answer = QMessageBox.question(self, "Delete runs?", f"Delete {what} and their curves from the history? "
                                      f"This cannot be undone.",
                                      QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
                                      QMessageBox.StandardButton.Cancel)
        if answer != QMessageBox.StandardButton.Yes:
            return 0
        try:
            n = self.store.delete(ids)
        except RunStoreError as e:
            self._disable(e)
            return 0
        self.ticked = [i for i in self.ticked if i not in ids]
        for i in ids:
            self._histories.pop(i, None)
        self.log.add("info", f"Deleted {n} run(s) from the history.")
        self.refresh()
        return n

    def export_csv(self, path: str | None = None) -> bool:
        """The table (in its order) as CSV; asks for a file when path is None."""
        runs = self.ordered_runs()
        if not runs:
            self.log.add("warning", "Nothing to export: the history holds no runs yet.")
            return False
        if path is None:
            path, _ = QFileDialog.getSaveFileName(self, "Export the runs as CSV", os.path.join(os.getcwd(), "runs.csv"),
                                                  "CSV table (*.csv)")
            if not path:
                return False
        try:
            write_runs_csv(path, runs)
        except OSError as e:
            self.log.add("error", f"Could not export the runs to {path}: {e.strerror or e}")
            return False
        self.log.add("info", f"{len(runs)} run(s) exported to {path}.")
        return True


def _recipe_tip(run: StoredRun) -> str:
    """A run's whole recipe, a line per field, for the Model cell's tooltip."""
    lines = [f"#{run.id} on {run.device_label}"]
    lines += [f"{k}: {v}" for k, v in run.recipe.items() if k != "version" and v is not None]
    if run.resumed_from:
        lines.append(f"continued from {run.resumed_from}")
    return "\n".join(lines)
