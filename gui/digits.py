"""After-epoch views: a confusion matrix and a grid of test images with predicted and true labels."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRect, QSize, Qt
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPen
from PySide6.QtWidgets import QHeaderView, QSizePolicy, QTableWidget, QTableWidgetItem, QWidget

MISTAKE = QColor("#d62728")
CORRECT = QColor("#2ca02c")


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
                pred = classes[j] if j < len(classes) else str(j)
                item.setToolTip(f"true {name}, predicted {pred}: {m[i, j]} ({100 * share[i, j]:.1f}% of the row)")
                self.setItem(i, j, item)


class DigitGrid(QWidget):
    """Test images in a grid, each captioned 'predicted (true)'; mistakes framed in red."""

    def __init__(self, columns: int = 8, rows: int = 5, parent=None):
        super().__init__(parent)
        self.columns, self.rows = columns, rows
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(240, 160)
        self.cells: list[tuple[QImage, int, int, int]] = []  # (image, predicted, true, index)
        self.mistakes_only = False
        self.caption = ""
        self.names: list[str] | None = None  # class names when they are not the digits themselves

    def sizeHint(self) -> QSize:
        return QSize(self.columns * 44, self.rows * 56)

    def show_predictions(self, images: np.ndarray, labels: np.ndarray, predictions: np.ndarray,
                         classes: list[str] | None = None) -> None:
        """Pick what to show: every mistake first (up to half the grid, or all of it when mistakes_only),
        then the first test images in order."""
        predictions = np.asarray(predictions)
        labels = np.asarray(labels)[: len(predictions)]
        wrong = np.flatnonzero(predictions != labels)
        room = self.columns * self.rows
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
        self.caption = f"{len(wrong)} of {len(predictions)} test images misclassified"
        self.update()

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor("white"))
        if not self.cells:
            painter.setPen(QColor("#777777"))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "test digits appear after each epoch")
            return
        cw = self.width() / self.columns
        ch = self.height() / self.rows
        font = QFont(self.font())
        font.setPointSizeF(max(6.0, min(9.0, ch * 0.14)))
        painter.setFont(font)
        text_h = int(font.pointSizeF() * 1.6)
        for n, (img, pred, true, _) in enumerate(self.cells):
            r, c = divmod(n, self.columns)
            x, y = int(c * cw), int(r * ch)
            side = int(max(8, min(cw - 6, ch - text_h - 6)))
            target = QRect(x + int((cw - side) / 2), y + 3, side, side)
            painter.drawImage(target, img)
            ok = pred == true
            if not ok:
                painter.setPen(QPen(MISTAKE, 3))
                painter.drawRect(target.adjusted(-1, -1, 1, 1))
            painter.setPen(CORRECT.darker(130) if ok else MISTAKE)
            if ok:
                text = self._name(pred)
            elif self.names is None:
                text = f"{pred} (true {true})"
            else:  # names are long: predicted ≠ true
                text = f"{self._name(pred)}≠{self._name(true)}"
            painter.drawText(QRect(x, y + side + 4, int(cw), text_h), Qt.AlignmentFlag.AlignHCenter, text)
        painter.end()


    def _name(self, k: int) -> str:
        return self.names[k] if self.names is not None and k < len(self.names) else str(k)


def _qimage(image: np.ndarray) -> QImage:
    """A grayscale QImage of a 28x28 uint8 array, white digit on black as MNIST stores it."""
    a = np.ascontiguousarray(image, dtype=np.uint8)
    h, w = a.shape[-2:]
    return QImage(a.tobytes(), w, h, w, QImage.Format.Format_Grayscale8).copy()
