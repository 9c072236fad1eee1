"""A Train view set up for the tests (tiny data, small batches), and waiting for its runs to end."""

from __future__ import annotations

from hetero.gui.log_panel import LogPanel
from hetero.gui.train_view import TrainView


def train_view(qtbot, data, size: tuple[int, int], epochs: int) -> TrainView:
    """A shown TrainView of `size` on the tiny IDX files in `data`: batch 16, lr 0.01, `epochs` epochs."""
    v = TrainView(LogPanel())
    qtbot.addWidget(v)
    v.resize(*size)
    v.show()
    v.data_edit.setText(str(data))
    v.batch_box.setValue(16)
    v.epochs_box.setValue(epochs)
    v.lr_box.setValue(0.01)
    return v


def finish(qtbot, view: TrainView, timeout: int = 60000) -> None:
    """Wait until every run's end has reached the GUI (its thread may end before its last signals land)."""
    qtbot.waitUntil(lambda: not view.is_running() and all(r.done is not None for r in view.runs.values()),
                    timeout=timeout)
    view._dirty = True
    view.redraw()
