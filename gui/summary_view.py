"""The chosen model's summary (hetero.summary): each layer's output shape, parameters, FLOPs and convolution
algorithms, and the device memory one training step plans for, computed in a worker thread."""

from __future__ import annotations

from PySide6.QtCore import Qt, QThread, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from hetero.recipe import TrainingRecipe
from hetero.summary import ModelSummary

INPUT_SHAPE = (1, 28, 28)  # every model the Train tab offers is built for 28x28 grey images (MNIST's)
STEP_BATCH_LIMIT = 1024    # a training step is traced to measure its memory: above this batch it takes too long
COLUMNS = ("layer", "type", "output shape", "params", "MFLOPs", "conv algorithms (forward / input grad / weight grad)")


def model_summary(recipe: TrainingRecipe, device_id: str | None) -> ModelSummary:
    """hetero.summary of the recipe's model on the device (its weights from the recipe's seed), with a training
    step at the recipe's batch size when that is at most STEP_BATCH_LIMIT."""
    import hetero
    from hetero import recipe as R
    from hetero.summary import summary

    from .workers import _build_lock

    dev = hetero.device(device_id)
    with _build_lock:  # seeding is process-wide: not while a run builds its model
        model = R.build_model(recipe, dev)
    step = recipe.batch_size <= STEP_BATCH_LIMIT
    return summary(model, (1, *INPUT_SHAPE), train_step=step, print_out=False, name=recipe.model,
                   train_batch_size=max(recipe.batch_size, 2) if step else None)


class SummaryWorker(QThread):
    """Computes one summary; never touches widgets."""

    sigDone = Signal(object)  # the ModelSummary
    sigFailed = Signal(str)

    def __init__(self, recipe: TrainingRecipe, device_id: str | None, compute=model_summary, parent=None):
        super().__init__(parent)
        self.recipe, self.device_id, self.compute = recipe, device_id, compute

    def run(self) -> None:
        try:
            result = self.compute(self.recipe, self.device_id)
        except Exception as e:  # a device that fails to build a kernel, say: the dialog says so
            self.sigFailed.emit(f"{type(e).__name__}: {' '.join(str(e).split())}")
            return
        self.sigDone.emit(result)


class SummaryDialog(QDialog):
    """A table of the model's layers and a line of totals; 'computing…' until the worker is done."""

    def __init__(self, recipe: TrainingRecipe, device_id: str | None, compute=model_summary, parent=None):
        super().__init__(parent)
        self.setWindowTitle(f"{recipe.model}: model summary")
        self.recipe = recipe
        self.result = None
        where = device_id or "the default device"
        self.status = QLabel(f"Computing the summary of {recipe.model} on {where} (its kernels build the first "
                             f"time: seconds)…")
        self.status.setWordWrap(True)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.totals = QLabel()
        self.totals.setWordWrap(True)
        self.totals.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.status)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.totals)
        layout.addWidget(buttons)
        self.resize(820, 520)
        self.worker = SummaryWorker(recipe, device_id, compute, parent=self)
        self.worker.sigDone.connect(self._show)
        self.worker.sigFailed.connect(self._failed)
        self.worker.start()

    def _show(self, s: ModelSummary) -> None:
        self.result = s
        self.status.setText(f"<b>{s.model}</b>, input {'x'.join(map(str, s.input_shape))} on "
                            f"{self.worker.device_id or 'the default device'}")
        self.table.setRowCount(len(s.rows))
        for row, r in enumerate(s.rows):
            algorithms = " / ".join(r.algorithms) if r.algorithms is not None else ""
            cells = (r.name, r.kind, "x".join(map(str, r.output_shape)), f"{r.params:,}", f"{r.flops / 1e6:,.2f}",
                     algorithms)
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if col in (3, 4):
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(row, col, item)
        self.totals.setText(totals_text(s, self.recipe))

    def _failed(self, message: str) -> None:
        self.status.setText(f"The summary could not be computed: {message}")
        self.status.setStyleSheet("color: #b00020;")

    def done(self, code: int) -> None:
        self.worker.wait()  # a summary takes seconds; the thread must not outlive its dialog
        super().done(code)


def totals_text(s: ModelSummary, recipe: TrainingRecipe) -> str:
    """The summary's totals in words: parameters, FLOPs, memory of the outputs and of a training step."""
    mib = 2**20
    text = (f"{s.total_params:,} parameters ({s.trainable_params:,} trainable, {s.param_bytes / mib:.2f} MiB); "
            f"forward {s.forward_flops / 1e6:,.2f} MFLOPs per image; layer outputs {s.activation_bytes / mib:.2f} MiB")
    if s.train_step_bytes is not None:
        text += (f"; a training step at batch {s.train_batch_size:,} plans {s.train_step_bytes / mib:,.1f} MiB of "
                 f"device memory")
    elif recipe.batch_size > STEP_BATCH_LIMIT:
        text += f"; training-step memory not measured above batch {STEP_BATCH_LIMIT:,} (it runs a step)"
    elif s.train_step_note:
        text += f"; training step: {s.train_step_note}"
    return text + "."
