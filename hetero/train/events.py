"""The events fit() reports to its callbacks: what happened, as typed values (LogEvent carries only human text).

Front ends react to the typed events (a checkpoint written, a pause reached) and show LogEvent's message;
they never read meaning out of a message's words.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar

import numpy as np


class _Event:
    event: ClassVar[str] = ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict with the event's name under "event"."""
        out: dict[str, Any] = {"event": self.event}
        out.update(asdict(self))
        return out


@dataclass
class StepEvent(_Event):
    """One training step was read back. loss/accuracy are this batch's; images_per_s is a recent average."""

    event: ClassVar[str] = "step"
    step: int  # optimizer steps done so far (1 after the first)
    epoch: int  # 0-based epoch index
    batch: int  # 0-based index of the batch within its epoch
    batches: int  # batches per epoch
    loss: float
    accuracy: float  # fraction of this batch classified correctly, in [0, 1]
    images_per_s: float
    seconds: float  # since fit() started
    # data-parallel runs: per device {"device": label, "share": fraction of the batch, "images_per_s": its rate}
    devices: list[dict] | None = None


@dataclass
class EpochEndEvent(_Event):
    """An epoch ended (or was cut short by max_steps) and the test set, if any, was evaluated."""

    event: ClassVar[str] = "epoch_end"
    epoch: int
    train_loss: float
    train_accuracy: float
    test_loss: float | None
    test_accuracy: float | None
    seconds: float  # this epoch, evaluation included
    # confusion[true, predicted] counts test images; predictions: each test image's class in loader
    # order; both None without a test loader
    confusion: np.ndarray | None = field(default=None, repr=False)
    predictions: np.ndarray | None = field(default=None, repr=False)

    def to_dict(self, arrays: bool = False) -> dict[str, Any]:
        """JSON-able; the confusion matrix and predictions are included (as lists) only when `arrays`."""
        out: dict[str, Any] = {"event": self.event}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("confusion", "predictions"):
                if arrays:
                    out[f.name] = None if value is None else value.tolist()
                continue
            out[f.name] = value
        return out


@dataclass
class DoneEvent(_Event):
    """fit() ended. reason: "finished", "stopped", "max_steps", "diverged" or "error"."""

    event: ClassVar[str] = "done"
    reason: str
    message: str
    steps: int  # optimizer steps done in total
    epoch: int  # the epoch training would resume at
    seconds: float


@dataclass
class CheckpointEvent(_Event):
    """fit() wrote a checkpoint that resumes at (epoch, step). reason: "epoch", "max_steps", "stopped" or
    "interrupted" (a KeyboardInterrupt between steps)."""

    event: ClassVar[str] = "checkpoint"
    path: str
    step: int
    epoch: int  # the epoch a resume continues at
    reason: str


@dataclass
class PausedEvent(_Event):
    """fit() has read back every queued step and waits for TrainingControl.resume() or stop()."""

    event: ClassVar[str] = "paused"
    step: int
    epoch: int


@dataclass
class ResumedEvent(_Event):
    """fit() goes on after a pause."""

    event: ClassVar[str] = "resumed"
    step: int
    epoch: int


@dataclass
class LogEvent(_Event):
    """A line for the user: level is "info", "warning" or "error"."""

    event: ClassVar[str] = "log"
    level: str
    message: str


Callback = Callable[[_Event], Any]
