"""After-epoch views: a confusion matrix and a grid of test images with predicted and true labels."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QEvent, QRect, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QImage, QPainter, QPen
from PySide6.QtWidgets import QHeaderView, QSizePolicy, QTableWidget, QTableWidgetItem, QToolTip, QWidget

from . import theme

MISTAKE = QColor("#d62728")
CORRECT = QColor("#2ca02c")
MIN_POINT_SIZE = 8.0  # the digits' captions, at the least (6 pt was unreadable)
MIN_IMAGE = 28        # pixels of a digit's side, at the least: MNIST's own size


class ConfusionMatrix(QTableWidget):
    """Rows are the true classes, columns the predictions; cells shaded by their share of the row."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.setSelectionMode(QTableWidget.SelectionMode.NoSelection)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.horizontalHeader().setMinimumSectionSize(20)
        self.verticalHeader().setMinimumSectionSize(14)
        font = self.font()
        font.setPointSizeF(font.pointSizeF() * 0.85)
        self.setFont(font)
        self.setToolTip("rows: true class, columns: predicted class")
        self.matrix: np.ndarray | None = None

    def least_width(self) -> int:
        """The width that shows ten columns of four-digit counts whole (10,000 test images: up to 1,135 in a
        cell), with the row numbers and the frame."""
        metrics = QFontMetrics(self.font())
        column = metrics.horizontalAdvance("8888") + 8  # the cell's text margins and its grid line
        return 10 * column + metrics.horizontalAdvance("9") + 12 + 2 * self.frameWidth()

    def clear_matrix(self) -> None:
        """No matrix, no header: an empty table keeps Qt's own column numbers (1..10), not the classes 0..9."""
        self.clear()
        self.setRowCount(0)
        self.setColumnCount(0)
        self.matrix = None

    def show_matrix(self, matrix, classes: list[str]) -> None:
        m = np.asarray(matrix, dtype=np.int64)
        self.matrix = m
        n = m.shape[0]
        self.clear()
        self.setRowCount(n)
        self.setColumnCount(n)
        short = [str(k) for k in range(n)]
        self.setHorizontalHeaderLabels(short)
        self.setVerticalHeaderLabels(short)
        rows = np.maximum(m.sum(axis=1, keepdims=True), 1)
        share = m / rows
        for i in range(n):
            name = classes[i] if i < len(classes) else str(i)
            self.verticalHeaderItem(i).setToolTip(f"true: {name}")
            for j in range(n):
                item = QTableWidgetItem(str(m[i, j]) if m[i, j] else "")
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                s = float(share[i, j])
                if i == j:
                    colour = QColor.fromRgbF(1 - 0.75 * s, 1 - 0.35 * s, 1 - 0.75 * s)
                else:
                    s = min(1.0, 8 * s)  # mistakes are rare: make a few of them visible
                    colour = QColor.fromRgbF(1, 1 - 0.7 * s, 1 - 0.7 * s)
                item.setBackground(colour)
                item.setForeground(QColor("#111111"))  # the shades are light in either theme: dark digits on them
                pred = classes[j] if j < len(classes) else str(j)
                item.setToolTip(f"true {name}, predicted {pred}: {m[i, j]} ({100 * share[i, j]:.1f}% of the row)")
                self.setItem(i, j, item)


class DigitGrid(QWidget):
    """Test images in a grid, each captioned 'predicted (true)'; mistakes framed in red. `columns` x `rows` is the
    most it shows: a smaller widget shows fewer, so that captions stay at least MIN_POINT_SIZE and whole."""

    def __init__(self, columns: int = 8, rows: int = 5, parent=None):
        super().__init__(parent)
        self.columns, self.rows = columns, rows
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(240, 160)
        self.cells: list[tuple[QImage, int, int, int]] = []  # (image, predicted, true, index)
        self.mistakes_only = False
        self.caption = ""
        self.names: list[str] | None = None  # class names when they are not the digits themselves
        self._shown: tuple | None = None  # the last show_predictions() arguments, to choose again on a resize
        theme.register(self)

    def sizeHint(self) -> QSize:
        return QSize(self.columns * 60, self.rows * 60)

    def caption_font(self, cell_height: float | None = None) -> QFont:
        """The captions' font: MIN_POINT_SIZE to 10 pt, larger in taller cells while "8 (true 8)" fits a cell's
        width."""
        font = QFont(self.font())
        columns, rows = self.grid()
        height = self.height() / rows if cell_height is None else cell_height
        width = self.width() / columns - 2
        size = max(MIN_POINT_SIZE, min(10.0, height * 0.16))
        font.setPointSizeF(size)
        while size > MIN_POINT_SIZE and QFontMetrics(font).horizontalAdvance("8 (true 8)") > width:
            size = max(MIN_POINT_SIZE, size - 0.5)
            font.setPointSizeF(size)
        return font

    def grid(self) -> tuple[int, int]:
        """(columns, rows) shown at the widget's size: as many as fit cells wide enough for a whole "5 (true 3)"
        caption at MIN_POINT_SIZE over an image at least MIN_IMAGE pixels tall."""
        font = QFont(self.font())
        font.setPointSizeF(MIN_POINT_SIZE)
        metrics = QFontMetrics(font)
        cell_w = metrics.horizontalAdvance("8 (true 8)") + 6
        cell_h = MIN_IMAGE + metrics.height() + 10
        return (max(1, min(self.columns, self.width() // cell_w)), max(1, min(self.rows, self.height() // cell_h)))

    def capacity(self) -> int:
        columns, rows = self.grid()
        return columns * rows

    def show_predictions(self, images: np.ndarray, labels: np.ndarray, predictions: np.ndarray,
                         classes: list[str] | None = None) -> None:
        """Pick what to show: every mistake first (up to half the grid, or all of it when mistakes_only),
        then the first test images in order."""
        self._shown = (images, labels, predictions, classes)
        predictions = np.asarray(predictions)
        labels = np.asarray(labels)[: len(predictions)]
        wrong = np.flatnonzero(predictions != labels)
        room = self.capacity()
        if self.mistakes_only:
            chosen = list(wrong[:room])
        else:
            chosen = list(wrong[: room // 2])
            taken = set(chosen)
            for k in range(len(predictions)):
                if len(chosen) >= room:
                    break
                if k not in taken:
                    chosen.append(k)
            chosen.sort()
        self.cells = [(_qimage(images[k]), int(predictions[k]), int(labels[k]), int(k)) for k in chosen]
        named = classes and any(not str(c).isdigit() for c in classes)
        self.names = [str(c).split("/")[0][:7] for c in classes] if named else None  # "T-shirt/top" -> "T-shirt"
        self.caption = f"{len(wrong):,} of {len(predictions):,} misclassified"  # one line beside "mistakes only"
        self.update()

    def clear(self) -> None:
        self.cells = []
        self._shown = None
        self.update()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self._shown is not None and len(self.cells) != self.capacity():
            self.show_predictions(*self._shown)  # the grid holds more (or fewer) cells at this size

    def cell_rect(self, n: int) -> QRect:
        columns, rows = self.grid()
        cw, ch = self.width() / columns, self.height() / rows
        r, c = divmod(n, columns)
        return QRect(int(c * cw), int(r * ch), int(cw), int(ch))

    def cell_text(self, n: int) -> str:
        """The caption of cell n: '7', '5 (true 3)', or for named classes 'Sandal≠Sneaker'."""
        _, pred, true, _ = self.cells[n]
        if pred == true:
            return self._name(pred)
        if self.names is None:
            return f"{pred} (true {true})"
        return f"{self._name(pred)}≠{self._name(true)}"  # names are long: predicted ≠ true

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        c = theme.colours()
        painter.fillRect(self.rect(), QColor(c.background))
        if not self.cells:
            painter.setPen(QColor(c.muted))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "test digits appear after each epoch")
            return
        columns, rows = self.grid()
        font = self.caption_font(self.height() / rows)
        painter.setFont(font)
        metrics = QFontMetrics(font)
        text_h = metrics.height()
        for n, (img, pred, true, _) in enumerate(self.cells):
            cell = self.cell_rect(n)
            side = int(max(8, min(cell.width() - 6, cell.height() - text_h - 6)))
            target = QRect(cell.x() + (cell.width() - side) // 2, cell.y() + 3, side, side)
            painter.drawImage(target, img)
            ok = pred == true
            if not ok:
                painter.setPen(QPen(MISTAKE, 3))
                painter.drawRect(target.adjusted(-1, -1, 1, 1))
            painter.setPen(QColor(c.correct) if ok else MISTAKE)
            text = metrics.elidedText(self.cell_text(n), Qt.TextElideMode.ElideRight, cell.width() - 2)
            painter.drawText(QRect(cell.x(), cell.y() + side + 4, cell.width(), text_h),
                             Qt.AlignmentFlag.AlignHCenter, text)
        painter.end()

    def apply_theme(self, c: theme.Colours) -> None:
        self.update()

    def event(self, event) -> bool:
        if event.type() == QEvent.Type.ToolTip:
            n = next((k for k in range(len(self.cells)) if self.cell_rect(k).contains(event.pos())), None)
            if n is None:
                QToolTip.hideText()
            else:
                _, pred, true, index = self.cells[n]
                QToolTip.showText(event.globalPos(), f"test image {index}: predicted {self._name(pred)}, true "
                                                     f"{self._name(true)}", self)
            return True
        return super().event(event)

    def _name(self, k: int) -> str:
        return self.names[k] if self.names is not None and k < len(self.names) else str(k)


def _qimage(image: np.ndarray) -> QImage:
    """A grayscale QImage of a 28x28 uint8 array, white digit on black as MNIST stores it."""
    a = np.ascontiguousarray(image, dtype=np.uint8)
    h, w = a.shape[-2:]
    return QImage(a.tobytes(), w, h, w, QImage.Format.Format_Grayscale8).copy()
