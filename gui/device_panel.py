"""The device list: every OpenCL device with its key figures, unusable ones greyed with the reason.

A device that OpenCL can split (CPU device fission) also offers its two halves as sub-devices, so two
runs can share a CPU without fighting over its cores. Checked rows are the selection.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QGroupBox, QLabel, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

from .slots import slot

COLUMNS = ("Device", "Type", "CUs", "Memory", "fp16", "Status")
ID_ROLE = Qt.ItemDataRole.UserRole


def gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def list_devices() -> tuple[list, str]:
    """hetero.devices() and '' , or [] and why no device could be listed."""
    import hetero

    try:
        return hetero.devices(), ""
    except hetero.HeteroError as e:
        return [], str(e)


class DevicePanel(QWidget):
    """A checkable tree of devices; `selected_ids()` are the specs to open with hetero.device()."""

    sigSelectionChanged = Signal()

    def __init__(self, infos=None, error: str = "", split: bool = True, parent=None):
        super().__init__(parent)
        if infos is None:
            infos, error = list_devices()
        self.infos = list(infos)
        self.tree = QTreeWidget()
        self.tree.setColumnCount(len(COLUMNS))
        self.tree.setHeaderLabels(COLUMNS)
        self.tree.setRootIsDecorated(True)
        self.tree.setUniformRowHeights(True)
        self.tree.setAlternatingRowColors(True)
        self.message = QLabel(error)
        self.message.setWordWrap(True)
        self.message.setStyleSheet("color: #b00020;")
        self.message.setVisible(bool(error))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.tree)
        layout.addWidget(self.message)
        self._items: dict[str, QTreeWidgetItem] = {}
        for info in self.infos:
            item = self._add(info, None)
            if split and info.usable and info.max_sub_devices >= 2:
                for i in range(2):
                    self._add(info.split(2, i), item)
                item.setExpanded(True)
        for k in range(1, len(COLUMNS)):
            self.tree.resizeColumnToContents(k)
        self.tree.setColumnWidth(0, 165)  # long names are elided; the tooltip has them whole
        self.tree.itemChanged.connect(slot(self.sigSelectionChanged.emit))
        best = self._best_id()
        if best is not None:
            self.select([best])

    def _add(self, info, parent: QTreeWidgetItem | None) -> QTreeWidgetItem:
        name = info.name if parent is None else f"half {info.id.rsplit('.', 1)[1]} ({info.id})"
        status = "ready" if info.usable else f"unusable: {info.reason}"
        item = QTreeWidgetItem([name, info.type, str(info.compute_units), gib(info.global_mem_bytes),
                                "yes" if info.fp16 else "no", status])
        item.setData(0, ID_ROLE, info.id)
        tip = (f"{info.id}  {info.name}\n{info.vendor} · {info.platform}\ndriver {info.driver_version} · "
               f"{info.opencl_c_version}\n{info.compute_units} compute units at {info.clock_mhz} MHz, "
               f"{gib(info.global_mem_bytes)}")
        if info.usable:
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(0, Qt.CheckState.Unchecked)
        else:
            item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEnabled)
            item.setForeground(len(COLUMNS) - 1, QBrush(QColor("#b00020")))
            tip += f"\n\nhetero cannot use this device: {info.reason}"
        for k in range(len(COLUMNS)):
            item.setToolTip(k, tip)
        if parent is None:
            self.tree.addTopLevelItem(item)
        else:
            parent.addChild(item)
        self._items[info.id] = item
        return item

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
