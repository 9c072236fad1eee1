"""The device list: every OpenCL device with its key figures, unusable ones greyed with the reason.

A device that OpenCL can split (CPU device fission) also offers its two halves as sub-devices, so two
runs can share a CPU without fighting over its cores. Checked rows are the selection.

"Check devices" (or a row's context menu) runs `hetero doctor` on the devices in a worker thread and shows
the verdict in the Status column. It runs on demand, not at start: a check costs seconds per device (minutes
on a driver that builds slowly the first time) and would compete with a run started right away for the same
device. The verdicts are shared by every panel of the session (the Train and Compare tabs each have one).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from PySide6.QtCore import QObject, Qt, QThread, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QApplication,
    QGroupBox,
    QLabel,
    QMenu,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from .layout import ColumnFitter
from .slots import slot

COLUMNS = ("Device", "Type", "CUs", "Memory", "fp16", "Status")
STATUS = len(COLUMNS) - 1
ID_ROLE = Qt.ItemDataRole.UserRole
BAD = "#b00020"
GOOD = "#1b7f3b"
_TIP_FAILURES = 8  # failed checks listed in a row's tooltip


def gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def list_devices() -> tuple[list, str]:
    """hetero.devices() and '' , or [] and why no device could be listed."""
    import hetero

    try:
        return hetero.devices(), ""
    except hetero.HeteroError as e:
        return [], str(e)


def run_doctor(device_id: str, cancel: threading.Event | None = None) -> list:
    """hetero.doctor on one device (imported here: the GUI starts without building anything)."""
    from hetero.doctor import doctor

    return doctor(device_id, cancel=cancel)


class DoctorWorker(QThread):
    """Runs the doctor on each device in turn; never touches widgets, reports through signals."""

    sigStarted = Signal(str)          # device id
    sigDone = Signal(str, object)     # (device id, the doctor's rows)
    sigFailed = Signal(str, str)      # (device id, why the doctor could not run)

    def __init__(self, ids: list[str], doctor: Callable = run_doctor):
        super().__init__()
        self.ids = list(ids)
        self.doctor = doctor
        self.cancel = threading.Event()

    def run(self) -> None:
        for device_id in self.ids:
            if self.cancel.is_set():
                self.sigFailed.emit(device_id, "cancelled")
                continue
            self.sigStarted.emit(device_id)
            try:
                rows = self.doctor(device_id, cancel=self.cancel)
            except Exception as e:  # a device that does not open, say: the row says so, the app goes on
                self.sigFailed.emit(device_id, f"{type(e).__name__}: {' '.join(str(e).split())}")
                continue
            self.sigDone.emit(device_id, rows)


class DoctorResults(QObject):
    """The doctor's verdict per device id — ("checking", None), ("done", rows) or ("failed", message) — and the
    workers computing them. Lives in the GUI thread; sigChanged(device id) tells the panels to redraw."""

    sigChanged = Signal(str)

    def __init__(self, doctor: Callable = run_doctor, parent=None):
        super().__init__(parent)
        self.doctor = doctor
        self.state: dict[str, tuple[str, object]] = {}
        self.workers: list[DoctorWorker] = []
        app = QApplication.instance()
        if app is not None:  # a thread still running when Qt tears down aborts the process
            app.aboutToQuit.connect(slot(self.stop))

    def checking(self, device_id: str) -> bool:
        return self.state.get(device_id, ("", None))[0] == "checking"

    def check(self, ids: list[str]) -> DoctorWorker | None:
        """Start one worker for the ids not being checked already; None when there is nothing to start."""
        ids = [i for i in ids if not self.checking(i)]
        if not ids:
            return None
        worker = DoctorWorker(ids, self.doctor)
        worker.sigDone.connect(self._on_done)
        worker.sigFailed.connect(self._on_failed)
        worker.finished.connect(self._reap)
        self.workers.append(worker)
        for i in ids:
            self._set(i, ("checking", None))
        worker.start()
        return worker

    def busy(self) -> bool:
        return any(w.isRunning() for w in self.workers)

    def stop(self, wait_ms: int | None = None) -> bool:
        """Cancel the workers between two checks and wait for them (None: as long as a check lasts)."""
        for w in self.workers:
            w.cancel.set()
        return all(w.wait() if wait_ms is None else w.wait(wait_ms) for w in list(self.workers))

    def _set(self, device_id: str, value: tuple[str, object]) -> None:
        self.state[device_id] = value
        self.sigChanged.emit(device_id)

    def _on_done(self, device_id: str, rows: object) -> None:
        self._set(device_id, ("done", rows))

    def _on_failed(self, device_id: str, message: str) -> None:
        self._set(device_id, ("failed", message))

    def _reap(self) -> None:
        # queued from the worker's last moments: wait() returns as soon as its thread has ended
        worker = self.sender()
        if worker in self.workers:
            worker.wait()
            self.workers.remove(worker)


_shared: DoctorResults | None = None


def shared_results() -> DoctorResults:
    """The session's DoctorResults, created on first use (in the GUI thread, by the first panel)."""
    global _shared
    if _shared is None:
        _shared = DoctorResults()
    return _shared


def doctor_status(state: tuple[str, object] | None) -> tuple[str, str, str | None]:
    """(Status text, tooltip addition, colour or None) of a usable device's doctor state; the text is short ("ready",
    "checking…", "doctor ok", "doctor: 2 ops wrong", "doctor failed") so the column is never cut."""
    if state is None:
        return "ready", "", None
    kind, value = state
    if kind == "checking":
        return "checking…", "\n\nhetero doctor is running on this device", None
    if kind == "failed":
        return "doctor failed", f"\n\nhetero doctor could not run: {value}", BAD
    from hetero.doctor import failures, summary, verdict

    rows = list(value)
    bad = failures(rows)
    tip = f"\n\nhetero doctor: {summary(rows)}"
    for r in bad[:_TIP_FAILURES]:
        tip += f"\n  {r.op}: {r.error}"
    if len(bad) > _TIP_FAILURES:
        tip += f"\n  (+{len(bad) - _TIP_FAILURES} more; run `hetero doctor --device ID` for all)"
    return verdict(rows), tip, BAD if bad else GOOD


class DevicePanel(QWidget):
    """A checkable tree of devices; `selected_ids()` are the specs to open with hetero.device()."""

    sigSelectionChanged = Signal()

    def __init__(self, infos=None, error: str = "", split: bool = True, results: DoctorResults | None = None,
                 parent=None):
        super().__init__(parent)
        if infos is None:
            infos, error = list_devices()
        self.infos = list(infos)
        self.results = results if results is not None else shared_results()
        self.tree = QTreeWidget()
        self.tree.setColumnCount(len(COLUMNS))
        self.tree.setHeaderLabels(COLUMNS)
        self.tree.setRootIsDecorated(True)
        self.tree.setUniformRowHeights(True)
        self.tree.setAlternatingRowColors(True)
        # a long name keeps both ends ("pthread-sky…AMD EPYC"); the row's tooltip has it whole
        self.tree.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.message = QLabel(error)
        self.message.setWordWrap(True)
        self.message.setStyleSheet("color: #b00020;")
        self.message.setVisible(bool(error))
        self.note = QLabel()  # why a tick just unticked another row
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color: #b26a00;")
        self.note.setVisible(False)
        self.unusable_note = QLabel()  # why a greyed device cannot be used, whole: its Status says "unusable"
        self.unusable_note.setWordWrap(True)
        self.unusable_note.setStyleSheet(f"color: {BAD};")
        self.unusable_note.setVisible(False)
        self.check_button = QPushButton("Check devices")
        self.check_button.setToolTip("Run hetero doctor on every usable device: each op at small shapes against "
                                     "the numpy reference, in the background (seconds per device; longer the "
                                     "first time, while kernels build). Right-click a device to check only it.")
        self.check_button.clicked.connect(slot(self.check_all))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.tree)
        layout.addWidget(self.unusable_note)
        layout.addWidget(self.check_button)
        layout.addWidget(self.note)
        layout.addWidget(self.message)
        self.tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.tree.customContextMenuRequested.connect(self._context_menu)
        self._items: dict[str, QTreeWidgetItem] = {}
        self._tips: dict[str, str] = {}  # each row's tooltip before the doctor's lines
        self._fitted = False  # fit_tree_to_rows() was asked for: keep it fitted as rows are added
        # Ticking a device unticks its sub-devices and the other way round: for the Train tab, whose runs go at
        # once. (The Compare tab measures one device after another, a CPU beside its half is a fair question.)
        self.exclusive_parts = False
        for info in self.infos:
            item = self._add(info, None)
            if split and info.usable and info.max_sub_devices >= 2:
                for i in range(2):
                    self._add(info.split(2, i), item)
                item.setExpanded(True)
        # Every column as wide as its contents, the name the rest; a narrow panel (the Train tab's, 1280 pixels
        # wide) drops fp16, CUs, Memory and Type in that order (the tooltip has them) rather than cut the Status.
        self.columns = ColumnFitter(self.tree, 0, self._name_width, optional=(4, 2, 3, 1))
        unusable = [f"{info.id} {info.name}: {info.reason}" for info in self.infos if not info.usable]
        self.unusable_note.setText("Cannot be used: " + "; ".join(unusable) if unusable else "")
        self.unusable_note.setVisible(bool(unusable))
        self.tree.itemChanged.connect(self._item_changed)
        self.check_button.setEnabled(any(info.usable for info in self.infos))
        self.results.sigChanged.connect(self._show_doctor)
        best = self._best_id()
        if best is not None:
            self.select([best])

    def _add(self, info, parent: QTreeWidgetItem | None) -> QTreeWidgetItem:
        name = info.name if parent is None else f"half {info.id.rsplit('.', 1)[1]} ({info.id})"
        status = "ready" if info.usable else "unusable"
        item = QTreeWidgetItem([name, info.type, str(info.compute_units), gib(info.global_mem_bytes),
                                "yes" if info.fp16 else "no", status])
        item.setData(0, ID_ROLE, info.id)
        tip = (f"{info.id}  {info.name}\n{info.type} · {info.vendor} · {info.platform}\ndriver {info.driver_version}"
               f" · {info.opencl_c_version}\n{info.compute_units} compute units at {info.clock_mhz} MHz, "
               f"{gib(info.global_mem_bytes)}, fp16 {'yes' if info.fp16 else 'no'}")
        if info.usable:
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(0, Qt.CheckState.Unchecked)
        else:
            item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEnabled)
            item.setForeground(STATUS, QBrush(QColor(BAD)))
            tip += f"\n\nhetero cannot use this device: {info.reason}"
        if parent is None:
            self.tree.addTopLevelItem(item)
        else:
            parent.addChild(item)
        self._items[info.id] = item
        self._tips[info.id] = tip
        self._show_doctor(info.id)
        return item

    # ---- the doctor's verdicts ------------------------------------------------------------------------------
    def check_all(self) -> None:
        """Run the doctor on every usable device (sub-devices share their parent's driver and hardware)."""
        self.check([info.id for info in self.infos if info.usable])

    def check(self, ids: list[str]) -> None:
        self.results.check(ids)

    def status(self, device_id: str) -> str:
        """The Status column's text of a row."""
        return self._items[device_id].text(STATUS)

    def _show_doctor(self, device_id: str) -> None:
        item = self._items.get(device_id)
        if item is None:
            return
        info = self.info(device_id)
        tip = self._tips[device_id]
        if not info.usable:
            item.setText(STATUS, "unusable")
        else:
            text, extra, colour = doctor_status(self.results.state.get(device_id))
            item.setText(STATUS, text)
            tip += extra
            if colour is None:
                item.setData(STATUS, Qt.ItemDataRole.ForegroundRole, None)
            else:
                item.setForeground(STATUS, QBrush(QColor(colour)))
        for k in range(len(COLUMNS)):
            item.setToolTip(k, tip)

    def _context_menu(self, pos) -> None:
        item = self.tree.itemAt(pos)
        menu = None if item is None else self.context_menu(item.data(0, ID_ROLE))
        if menu is not None:
            menu.exec(self.tree.viewport().mapToGlobal(pos))
            menu.deleteLater()

    def context_menu(self, device_id: str) -> QMenu | None:
        """A row's context menu: "Check ID with hetero doctor" (None for an unusable device)."""
        if not self.info(device_id).usable:
            return None
        menu = QMenu(self)
        action = menu.addAction(f"Check {device_id} with hetero doctor")
        action.setEnabled(not self.results.checking(device_id))
        action.triggered.connect(slot(self.check, [device_id]))
        return menu

    def _name_width(self) -> int:
        """The least width of the Device column: each sub-device row whole ("half 0 (0:0/2.0)"), and a dozen
        characters of a device's name beside its tick box."""
        tree = self.tree
        metrics = tree.fontMetrics()
        box = tree.style().pixelMetric(tree.style().PixelMetric.PM_IndicatorWidth) + 8
        least = tree.indentation() + box + metrics.horizontalAdvance("pthread-skyl…")
        for item in self._items.values():
            if item.parent() is not None:
                least = max(least, 2 * tree.indentation() + box + metrics.horizontalAdvance(item.text(0)) + 8)
        return least

    def _best_id(self) -> str | None:
        from hetero.selection import choose_base

        try:
            return choose_base(self.infos, None).id
        except Exception:
            return None

    def info(self, device_id: str):
        """The DeviceInfo of a row (sub-devices included)."""
        from hetero.selection import choose

        for info in self.infos:
            if info.id == device_id:
                return info
        return choose(self.infos, device_id)[0]

    def _item_changed(self, item: QTreeWidgetItem, column: int) -> None:
        """A device and its sub-devices share the same compute units: ticking one unticks the other(s), so two
        runs never fight over the same cores unseen (the note under the list says what was unticked)."""
        if self.exclusive_parts and column == 0 and item.checkState(0) == Qt.CheckState.Checked:
            others = [item.child(k) for k in range(item.childCount())]
            if item.parent() is not None:
                others.append(item.parent())
            unticked = [o for o in others if o.checkState(0) == Qt.CheckState.Checked]
            if unticked:
                self.tree.blockSignals(True)
                for o in unticked:
                    o.setCheckState(0, Qt.CheckState.Unchecked)
                self.tree.blockSignals(False)
                ids = ", ".join(o.data(0, ID_ROLE) for o in unticked)
                self.note.setText(f"Unticked {ids}: it shares the cores of {item.data(0, ID_ROLE)} (runs on both "
                                  f"would slow each other down).")
                self.note.setToolTip("A device and its halves (sub-devices) run on the same compute units: tick "
                                     "the whole device, or one or both halves.")
                self.note.setVisible(True)
            else:
                self.note.setVisible(False)
        self.sigSelectionChanged.emit()

    def fit_tree_to_rows(self) -> None:
        """At most as tall as the rows (and the header and scroll bar): the room below goes to what follows."""
        tree = self.tree
        rows = sum(1 for item in self._items.values() if item.parent() is None or item.parent().isExpanded())
        row = tree.sizeHintForRow(0) if rows else 20
        tree.setMaximumHeight(tree.header().sizeHint().height() + rows * max(row, 1)
                              + tree.horizontalScrollBar().sizeHint().height() + 2 * tree.frameWidth() + 4)
        self._fitted = True

    def overlapping(self, ids: list[str]) -> list[tuple[str, str]]:
        """(device, sub-device) pairs among ids that share compute units: a CPU and one of its halves."""
        chosen = set(ids)
        pairs = []
        for i in ids:
            parent = self.info(i).parent
            while parent:
                if parent in chosen:
                    pairs.append((parent, i))
                parent = self.info(parent).parent
        return pairs

    def selected_ids(self) -> list[str]:
        return [i for i, item in self._items.items() if item.checkState(0) == Qt.CheckState.Checked]

    def select(self, ids: list[str]) -> None:
        """Check exactly these rows (adding sub-device rows such as '0:0/4.1' that are not listed yet)."""
        self.tree.blockSignals(True)
        for i in ids:
            if i not in self._items:
                info = self.info(i)
                parent = self._items.get(info.parent) if info.parent else None
                self._add(info, parent)
                if self._fitted:
                    self.fit_tree_to_rows()
        for i, item in self._items.items():
            if item.flags() & Qt.ItemFlag.ItemIsUserCheckable:
                item.setCheckState(0, Qt.CheckState.Checked if i in ids else Qt.CheckState.Unchecked)
        self.tree.blockSignals(False)
        self.sigSelectionChanged.emit()

    def select_spec(self, spec: str) -> list[str]:
        """Check the devices a spec names ('cpu', '0:0', 'cpu/2', 'gpu,cpu'); raise DeviceNotFoundError."""
        from hetero.selection import choose

        ids = []
        for part in spec.split(","):
            if part.strip():
                ids += [d.id for d in choose(self.infos, part.strip())]
        self.select(ids)
        return ids

    def column(self, title: str, stretch: int) -> tuple[QWidget, QVBoxLayout]:
        """A views' left column: this panel in a titled box on top; the caller adds the rest below."""
        column = QWidget()
        layout = QVBoxLayout(column)
        layout.setContentsMargins(0, 0, 0, 0)
        box = QGroupBox(title)
        QVBoxLayout(box).addWidget(self)
        layout.addWidget(box, stretch)
        return column, layout

    def label(self, device_id: str) -> str:
        info = self.info(device_id)
        return f"{info.id} {info.name}"
