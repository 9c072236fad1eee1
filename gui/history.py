"""What one training run (one device, or several data-parallel) reported so far, as growing lists the
plots read.

Pure Python and numpy (no Qt), so the bookkeeping is tested without a window. The GUI thread feeds it
the hetero.train events that reach it through signals; the plot timer reads it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from hetero.train.events import EpochEndEvent

# One colour per device (matplotlib's tab10, which stays readable on white and in print).
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")
SAVED_VERSION = 1
SAVED_SERIES = ("steps", "seconds", "loss", "accuracy", "images_per_s")
SAVED_EPOCH = ("epoch", "train_loss", "train_accuracy", "test_loss", "test_accuracy", "seconds", "step", "at")
MAX_SAVED_STEPS = 20000  # a checkpoint keeps at most this many points per curve (evenly thinned, the last kept)
MAX_SAVED_EPOCHS = 100000


class SavedHistoryError(ValueError):
    """A checkpoint's curve history is not one the app wrote (damaged, or from elsewhere)."""


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def check_saved(saved: object, step: int) -> dict:
    """A checkpoint's "gui_history" (RunHistory.to_saved) checked as the untrusted input it is, cut at the
    checkpoint's step; SavedHistoryError says what is wrong."""
    if not isinstance(saved, dict) or saved.get("version") != SAVED_VERSION:
        raise SavedHistoryError(f"not a curve history of version {SAVED_VERSION}")
    out: dict = {}
    length = None
    for name in SAVED_SERIES:
        values = saved.get(name)
        if not isinstance(values, list) or len(values) > MAX_SAVED_STEPS or not all(_number(v) for v in values):
            raise SavedHistoryError(f"{name!r} is not a list of at most {MAX_SAVED_STEPS} numbers")
        if length is not None and len(values) != length:
            raise SavedHistoryError(f"{name!r} has {len(values)} values, 'steps' {length}")
        length = len(values)
        out[name] = [float(v) for v in values]
    steps = out["steps"]
    if any(not math.isfinite(v) or v < 1 or v != int(v) for v in steps) or any(
            b <= a for a, b in zip(steps, steps[1:])):
        raise SavedHistoryError("'steps' are not increasing step numbers")
    keep = sum(1 for v in steps if v <= step)  # nothing after the weights the file holds
    out = {name: values[:keep] for name, values in out.items()}
    out["steps"] = [int(v) for v in out["steps"]]
    epochs = saved.get("epochs", [])
    if not isinstance(epochs, list) or len(epochs) > MAX_SAVED_EPOCHS:
        raise SavedHistoryError("'epochs' is not a list")
    out["epochs"] = []
    for e in epochs:
        if not isinstance(e, dict) or not all(e.get(k) is None or _number(e.get(k)) for k in SAVED_EPOCH) or not (
                _number(e.get("epoch")) and _number(e.get("step"))):
            raise SavedHistoryError("an epoch's figures are not numbers")
        if e["step"] <= step:
            out["epochs"].append({k: (None if e.get(k) is None else float(e[k])) for k in SAVED_EPOCH})
    return out


def thinned(n: int, most: int) -> list[int]:
    """Indices of at most `most` of n points spread evenly, the first and the last among them."""
    if n <= most:
        return list(range(n))
    return sorted(set(np.linspace(0, n - 1, most).round().astype(int).tolist()))


def ema(values: np.ndarray, smoothing: float) -> np.ndarray:
    """Exponential moving average with TensorBoard's debiasing; smoothing 0 returns the values."""
    values = np.asarray(values, dtype=np.float64)
    if smoothing <= 0 or values.size == 0:
        return values
    out = np.empty_like(values)
    acc = 0.0
    weight = 0.0
    for i, v in enumerate(values):
        if not math.isfinite(v):
            out[i] = v
            continue
        acc = smoothing * acc + (1 - smoothing) * v
        weight = smoothing * weight + (1 - smoothing)
        out[i] = acc / weight
    return out


def format_duration(seconds: float | None) -> str:
    """'1:05:03', '4:07', or '-' when unknown."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "-"
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class RunHistory:
    """The series of one run: per step (loss, accuracy, images/s), per epoch (test figures), and its end.
    `parts` are the device ids of a data-parallel run (empty for a run on one device)."""

    def __init__(self, key: str, label: str, colour: str, epochs: int, parts: list[str] | None = None):
        self.key = key
        self.label = label
        self.parts = list(parts or [])
        self.short_label = " + ".join(self.parts) or key  # legends: the device id(s) ("0:0", "0:0/2.1")
        self.colour = colour
        self.epochs = max(int(epochs), 1)
        self.steps: list[int] = []
        self.seconds: list[float] = []
        self.loss: list[float] = []
        self.accuracy: list[float] = []
        self.images_per_s: list[float] = []  # the whole run's, all its devices together
        self.shares: list[dict] = []         # data-parallel: the last step's {"device", "share", "images_per_s"}
        self.epoch_ends: list = []           # EpochEndEvent per finished epoch
        self.epoch_x: list[tuple[int, float]] = []  # (step, seconds) where each epoch ended
        self.epoch = 0
        self.batch = 0
        self.batches = 0
        self.done = None                     # the DoneEvent, once the run has ended
        self.state = "starting"              # starting, running, paused, finished, stopped, failed
        # a run continued from a checkpoint: the step and epoch it continues at, and the curves' seconds before it
        # (fit counts from 0 again)
        self.resumed_step: int | None = None
        self.resumed_epoch = 0
        self.resumed_with_history = False
        self.seconds_offset = 0.0
        self._ema_cache: dict[tuple[str, float], tuple[int, np.ndarray, float, float]] = {}

    # ----- a checkpoint's curves -----

    def to_saved(self) -> dict:
        """The curves and epoch figures as JSON-able lists, for a checkpoint's extra (check_saved reads them)."""
        keep = thinned(len(self.steps), MAX_SAVED_STEPS)
        out: dict = {"version": SAVED_VERSION}
        for name in SAVED_SERIES:
            values = getattr(self, name)
            out[name] = [int(values[k]) if name == "steps" else float(f"{values[k]:.6g}") for k in keep]
        out["epochs"] = []
        for ev, (step, sec) in zip(self.epoch_ends, self.epoch_x):
            figures = {k: getattr(ev, k, None) for k in SAVED_EPOCH[:6]}
            figures.update(step=step, at=sec)
            out["epochs"].append({k: None if v is None else float(v) for k, v in figures.items()})
        return out

    def resume(self, step: int, epoch: int, saved: dict | None = None) -> None:
        """Continue from a checkpoint at (step, epoch): with its curves (check_saved's result), they come first;
        without, the curves start at `step` (a line on the plots marks it either way)."""
        from hetero.train.events import EpochEndEvent

        self.resumed_step, self.resumed_epoch = int(step), int(epoch)
        self.resumed_with_history = bool(saved and saved["steps"])
        if saved:
            for name in SAVED_SERIES:
                setattr(self, name, list(saved[name]))
            self.seconds_offset = self.seconds[-1] if self.seconds else 0.0
            for e in saved["epochs"]:
                self.epoch_ends.append(EpochEndEvent(int(e["epoch"]), e["train_loss"], e["train_accuracy"],
                                                     e["test_loss"], e["test_accuracy"], e["seconds"] or 0.0))
                self.epoch_x.append((int(e["step"]), e["at"] if e["at"] is not None else 0.0))
            self._ema_cache.clear()

    def resume_x(self, mode: str) -> float | None:
        """Where the plots mark the checkpoint a resumed run continues from (None for a fresh run)."""
        if self.resumed_step is None:
            return None
        return self.seconds_offset if mode == "seconds" else float(self.resumed_step)

    def partial_epoch(self, event: EpochEndEvent) -> tuple[int, int] | None:
        """(first, last) batch, counted from 1, that an epoch's train figures cover when the run was resumed in
        the middle of that epoch (fit counts them from the resume on); None for a whole epoch."""
        if self.resumed_step is None or event.epoch != self.resumed_epoch or not self.batches:
            return None
        start = self.resumed_step - self.resumed_epoch * self.batches
        return (start + 1, self.batches) if 0 < start < self.batches else None

    # ----- feeding -----

    def add(self, event) -> None:
        kind = getattr(event, "event", None)
        if kind == "step":
            if self.steps and int(event.step) <= self.steps[-1]:
                return  # a checkpoint's curve already has this step
            self.steps.append(int(event.step))
            self.seconds.append(self.seconds_offset + float(event.seconds))
            self.loss.append(float(event.loss))
            self.accuracy.append(float(event.accuracy))
            self.images_per_s.append(float(event.images_per_s))
            if getattr(event, "devices", None):
                self.shares = [dict(d) for d in event.devices]
            self.epoch, self.batch, self.batches = int(event.epoch), int(event.batch), int(event.batches)
            if self.state in ("starting", "running"):
                self.state = "running"
        elif kind == "epoch_end":
            self.epoch_ends.append(event)
            step = self.steps[-1] if self.steps else 0
            seconds = float(event.seconds) if not self.seconds else self.seconds[-1]
            self.epoch_x.append((step, seconds))
        elif kind == "done":
            self.done = event
            self.state = {"finished": "finished", "max_steps": "finished", "stopped": "stopped"}.get(
                event.reason, "failed")

    # ----- reading -----

    def x(self, mode: str) -> np.ndarray:
        """The x values of the step series: 'steps' or 'seconds'."""
        return np.asarray(self.seconds if mode == "seconds" else self.steps, dtype=np.float64)

    def epoch_positions(self, mode: str) -> list[float]:
        return [float(sec if mode == "seconds" else step) for step, sec in self.epoch_x]

    def smoothed(self, name: str, smoothing: float) -> np.ndarray:
        """EMA of a step series ('loss', 'accuracy', 'images_per_s'), extended incrementally per redraw."""
        values = getattr(self, name)
        key = (name, round(float(smoothing), 4))
        done, out, acc, weight = self._ema_cache.get(key, (0, np.empty(0), 0.0, 0.0))
        if done < len(values):
            tail = np.empty(len(values) - done)
            for i, v in enumerate(values[done:]):
                if smoothing <= 0 or not math.isfinite(v):
                    tail[i] = v
                    continue
                acc = smoothing * acc + (1 - smoothing) * v
                weight = smoothing * weight + (1 - smoothing)
                tail[i] = acc / weight
            out = np.concatenate([out, tail])
            self._ema_cache = {k: v for k, v in self._ema_cache.items() if k[0] != name}
            self._ema_cache[key] = (len(values), out, acc, weight)
        return out

    def test_points(self, mode: str) -> tuple[np.ndarray, np.ndarray]:
        """(x, test accuracy in %) at the end of each epoch that had a test set."""
        xs, ys = [], []
        for (step, sec), ev in zip(self.epoch_x, self.epoch_ends):
            acc = getattr(ev, "test_accuracy", None)
            if acc is not None and math.isfinite(acc):
                xs.append(sec if mode == "seconds" else step)
                ys.append(100.0 * acc)
        return np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)

    def best_epoch(self) -> int | None:
        """Index into epoch_ends of the epoch with the highest test accuracy (the first on ties)."""
        best, best_acc = None, -1.0
        for i, ev in enumerate(self.epoch_ends):
            acc = getattr(ev, "test_accuracy", None)
            if acc is not None and math.isfinite(acc) and acc > best_acc:
                best, best_acc = i, acc
        return best

    def best(self) -> tuple[int, float] | None:
        """(epoch number counted from 1, test accuracy in [0, 1]) of the best epoch so far."""
        k = self.best_epoch()
        if k is None:
            return None
        ev = self.epoch_ends[k]
        return ev.epoch + 1, ev.test_accuracy

    def fraction(self) -> float:
        """How much of the planned training is done, 0..1: all of it once finished, what its last step reached
        for a run stopped or failed on the way."""
        if self.state == "finished":
            return 1.0
        if not self.batches:
            return 0.0
        # StepEvent.epoch and .batch are 0-based; the batch is the one just finished
        done = self.epoch * self.batches + self.batch + 1
        return min(done / (self.epochs * self.batches), 1.0)

    def eta(self) -> float | None:
        """Seconds left, from the time taken so far; None until it can be estimated and once stopped or failed."""
        if self.done is not None:
            return 0.0 if self.state == "finished" else None
        f = self.fraction()
        before = 0.0  # how much a resumed run had done at its checkpoint: the ETA is this session's pace
        if self.resumed_step is not None and self.batches:
            before = min(self.resumed_step / (self.epochs * self.batches), 1.0)
        done = f - before
        elapsed = (self.seconds[-1] - self.seconds_offset) if self.seconds else 0.0
        if done <= 0 or elapsed <= 0:
            return None
        return elapsed * (1 - f) / done  # this session's pace: a resumed run's earlier part took its own time

    def share(self, device_id: str) -> dict | None:
        """The last reported share of one device of a data-parallel run, or None before its first step."""
        for d in self.shares:
            if d.get("device") == device_id:
                return d
        return None

    def last(self, name: str) -> float | None:
        values = getattr(self, name)
        return values[-1] if values else None
