"""Column widths of the app's tables and trees: every column as wide as its header and cells, one column (a
device name, elided) taking the room the others leave, and optional columns hidden while that room is too small."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTreeView

MIN_SECTION = 16
HEADER_MARGIN = 12  # a header section's padding around its text (Fusion), for a section Qt does not measure


def header_of(view: QAbstractItemView) -> QHeaderView:
    """The horizontal header of a tree or a table."""
    return view.header() if isinstance(view, QTreeView) else view.horizontalHeader()


def needed_width(view: QAbstractItemView, column: int) -> int:
    """What a column needs to show its header and every cell whole (Qt's own measure, margins included; a hidden
    section's size hint is not kept up to date, so its header is measured here)."""
    header = header_of(view)
    if header.isSectionHidden(column):
        text = str(view.model().headerData(column, Qt.Orientation.Horizontal) or "")
        title = header.fontMetrics().horizontalAdvance(text) + HEADER_MARGIN
    else:
        title = header.sectionSizeHint(column)
    return max(title, view.sizeHintForColumn(column), header.minimumSectionSize())


class ColumnFitter(QObject):
    """Keeps `column` as wide as the room the other columns (each sized to its contents) leave, at least `minimum`;
    short of that it hides the `optional` columns, first listed first (the rows' tooltips keep what they say)."""

    def __init__(self, view: QAbstractItemView, column: int, minimum: int | Callable[[], int],
                 optional: Sequence[int] = ()):
        super().__init__(view)
        self.view = view
        self.column = column
        self.minimum = minimum
        self.optional = list(optional)
        self._busy = False
        header = header_of(view)
        header.setStretchLastSection(False)
        header.setMinimumSectionSize(MIN_SECTION)  # Qt's default (some 36 pixels) widens "CUs" and "ETA" for nothing
        for c in range(header.count()):
            mode = QHeaderView.ResizeMode.Interactive if c == column else QHeaderView.ResizeMode.ResizeToContents
            header.setSectionResizeMode(c, mode)
        header.sectionResized.connect(self._section_resized)
        view.viewport().installEventFilter(self)

    def least(self) -> int:
        return int(self.minimum() if callable(self.minimum) else self.minimum)

    def eventFilter(self, watched, event) -> bool:
        if event.type() == QEvent.Type.Resize:
            self.fit()
        return False

    def _section_resized(self, index: int, _old: int, _new: int) -> None:
        if index != self.column:  # a cell's text grew or shrank: the fitted column takes up the difference
            self.fit()

    def pause(self) -> None:
        """Stop fitting until resume(): while a table is refilled cell by cell, fitting per cell would hide and show
        a column back and forth, which leaves Qt's header positions stale."""
        self._busy = True

    def resume(self) -> None:
        """Fit again from the next change on (call fit() for one now)."""
        self._busy = False

    def fit(self) -> None:
        """Hide what must go, then give the fitted column the rest of the viewport."""
        if self._busy:
            return
        self._busy = True
        try:
            header = header_of(self.view)
            room = self.view.viewport().width()
            least = self.least()
            widths = {c: needed_width(self.view, c) for c in range(header.count()) if c != self.column}
            hidden: set[int] = set()
            for c in self.optional:
                if room - sum(w for k, w in widths.items() if k not in hidden) >= least:
                    break
                hidden.add(c)
            for c in self.optional:  # only what changes: toggling a section back and forth in one go leaves
                if header.isSectionHidden(c) != (c in hidden):  # Qt's section positions off by its old width
                    header.setSectionHidden(c, c in hidden)
            rest = room - sum(w for c, w in widths.items() if c not in hidden)
            header.resizeSection(self.column, max(least, rest))
        finally:
            self._busy = False
