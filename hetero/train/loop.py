"""fit(): compiled training steps epoch by epoch, reported to callbacks as events."""

from __future__ import annotations

import math
import os
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from ..graph import compile as compile_model
from ..graph import compile_step
from ..nn import functional as F
from ..recipe import TrainingRecipe
from ..tensor import Tensor
from .checkpoints import save_checkpoint
from .control import TrainingControl
from .evaluate import batches, evaluate
from .events import (
    Callback,
    CheckpointEvent,
    DoneEvent,
    EpochEndEvent,
    LogEvent,
    PausedEvent,
    ResumedEvent,
    StepEvent,
    _Event,
)
from .readback import Readback, correct


@dataclass
class History:
    """What fit() did: one EpochEndEvent per (possibly partial) epoch, how it ended, and where it stopped."""

    epochs: list[EpochEndEvent]
    done: DoneEvent
    step: int  # optimizer steps done in total: pass as start_step to continue
    epoch: int  # the epoch to continue at: pass as start_epoch

    def __len__(self) -> int:
        return len(self.epochs)

    def __iter__(self):
        return iter(self.epochs)

    def __getitem__(self, i: int) -> EpochEndEvent:
        return self.epochs[i]

    @property
    def reason(self) -> str:
        return self.done.reason


@dataclass(frozen=True)
class FitOptions:
    """fit()'s settings beyond the model, optimizer, scheduler, loaders, callbacks and control."""

    epochs: int = 1  # trains the 0-based epochs start_epoch..epochs-1
    loss_fn: Callable[[Tensor, Tensor], Tensor] = F.cross_entropy
    # the total step count (start_step included) to stop at; reached mid-epoch, the partial epoch is
    # evaluated and fit ends with reason "max_steps"
    max_steps: int | None = None
    start_epoch: int = 0  # where load_checkpoint() says to continue
    start_step: int = 0
    scheduler_interval: str = "epoch"  # scheduler.step() after every full "epoch", or after every "step"
    # written after every epoch and at max_steps (unless checkpoint_epochs is False), on stop and on a
    # KeyboardInterrupt (which is then re-raised), with checkpoint_extra and the recipe in it
    checkpoint: str | os.PathLike | None = None
    checkpoint_extra: dict | None = None
    checkpoint_epochs: bool = True
    recipe: TrainingRecipe | None = None  # how to rebuild the run, stored in its checkpoints
    log_every: int = 1  # a StepEvent every log_every steps and at each epoch's last batch
    readback_lag: int = 2  # steps are read back this many steps after they were queued


class _CaptureLoss:
    """Wraps the loss function so the traced step keeps the model output and targets of each plan alive
    (and so in their own buffers, rewritten by every replay) for the readback."""

    def __init__(self, loss_fn):
        self.loss_fn = loss_fn
        self.captured: tuple[Tensor, Tensor] | None = None

    def __call__(self, output: Tensor, target: Tensor) -> Tensor:
        self.captured = (output.detach(), target)
        return self.loss_fn(output, target)


class _Fit:
    def __init__(self, model, optimizer, scheduler, train_loader, test_loader, callbacks: Iterable[Callback],
                 control: TrainingControl | None, options: FitOptions):
        if options.scheduler_interval not in ("epoch", "step"):
            raise ValueError(f"fit: scheduler_interval must be 'epoch' or 'step', got {options.scheduler_interval!r}")
        self.options = options
        self.scheduler_per_step = scheduler is not None and options.scheduler_interval == "step"
        self.model, self.optimizer, self.scheduler = model, optimizer, scheduler
        self.train_loader, self.test_loader = train_loader, test_loader
        self.epochs, self.max_steps = int(options.epochs), options.max_steps
        self.loss_fn = options.loss_fn
        self.callbacks = list(callbacks)
        self.control = control if control is not None else TrainingControl()
        self.log_every = max(1, int(options.log_every))
        self.capture = _CaptureLoss(options.loss_fn)
        self.step_fn = compile_step(model, self.capture, optimizer)
        self.outputs: dict[tuple, tuple[Tensor, Tensor]] = {}  # input shape -> captured (output, target)
        self.eval_fn = None
        self.readback = Readback(options.readback_lag)
        self.batches = len(train_loader)
        self.step = int(options.start_step)
        self.epoch = int(options.start_epoch)  # where training would continue
        self.start_batch = min(max(0, self.step - self.epoch * self.batches), self.batches)
        self.history: list[EpochEndEvent] = []
        self.diverged: str | None = None
        self.t0 = time.perf_counter()
        # (time queued, images) of recent steps: once the host runs `readback_lag` steps ahead, their
        # spacing is the device's pace
        self.rate: deque = deque(maxlen=20)
        self.sums = [0.0, 0, 0]  # this epoch: loss * images, correct, images
        self.epoch_steps = 0  # steps queued since the epoch started (or training resumed)
        self.in_step = False

    def emit(self, event: _Event) -> None:
        for cb in self.callbacks:
            cb(event)

    def log(self, message: str, level: str = "info") -> None:
        self.emit(LogEvent(level, message))

    # -- the pieces of an epoch --

    def run_step(self, x, y) -> None:
        shape = tuple(getattr(x, "shape", np.shape(x)))
        self.capture.captured = None
        self.in_step = True  # an interrupt now leaves the step half queued
        loss = self.step_fn(x, y)
        self.in_step = False
        if self.capture.captured is not None:  # this call traced a new plan
            self.outputs[shape] = self.capture.captured
        output, target = self.outputs[shape]
        self.step += 1
        self.epoch_steps += 1
        if self.epoch_steps > self.readback.lag:  # the first steps of an epoch are queued without waiting
            self.rate.append((time.perf_counter(), int(target.shape[0])))
        self.readback.push((self.step, self.epoch, self.batch), loss, output, target)
        if self.scheduler_per_step:
            self.scheduler.step()  # the next replay writes the new lr to the device first

    def consume(self, drain: bool = False) -> None:
        for (step, epoch, batch), loss_arr, out, target in self.readback.ready(drain):
            if self.diverged is not None:
                continue
            loss = float(loss_arr.reshape(()))
            n = len(target)
            if not math.isfinite(loss):
                lrs = ", ".join(f"{g['lr']:g}" for g in self.optimizer.param_groups)
                self.diverged = (f"the loss became {loss} at step {step} (epoch {epoch + 1}, batch {batch + 1} "
                                 f"of {self.batches}); training stopped. Try a lower learning rate (lr is now "
                                 f"{lrs}).")
                continue
            right, _ = correct(out, target)
            self.sums[0] += loss * n
            self.sums[1] += right
            self.sums[2] += n
            now = time.perf_counter()
            if step % self.log_every == 0 or batch == self.batches - 1:
                self.emit(StepEvent(step, epoch, batch, self.batches, loss, right / n if n else 0.0,
                                    self.images_per_s(), now - self.t0))

    def images_per_s(self) -> float:
        if len(self.rate) < 2:
            return 0.0
        span = self.rate[-1][0] - self.rate[0][0]
        images = sum(n for _, n in list(self.rate)[1:])
        return images / span if span > 0 else 0.0

    def pause_point(self) -> None:
        if self.control.paused and not self.control.stopped:
            self.consume(drain=True)
            self.log(f"paused at step {self.step}")
            self.emit(PausedEvent(self.step, self.epoch))
            self.control.wait_while_paused()
            if not self.control.stopped:
                self.log(f"resumed at step {self.step}")
                self.emit(ResumedEvent(self.step, self.epoch))
                self.rate.clear()  # the pause is not throughput
                self.epoch_steps = 0

    def limit_reached(self) -> bool:
        return self.max_steps is not None and self.step >= self.max_steps

    def train_epoch(self, start: int) -> str | None:
        """Run the epoch's batches from `start`; returns why it ended early (or None when it ran through)."""
        self.model.train()
        self.sums = [0.0, 0, 0]
        self.rate.clear()  # evaluation and checkpoints are not training throughput
        self.epoch_steps = 0
        self.batch = start
        loader = batches(self.train_loader, self.epoch, start)
        try:
            for batch, (x, y) in enumerate(loader, start=start):
                self.pause_point()
                if self.control.stopped:
                    return "stopped"
                self.batch = batch
                self.run_step(x, y)
                self.batch = batch + 1
                self.consume()
                if self.diverged is not None:
                    return "diverged"
                if self.limit_reached() and batch + 1 < self.batches:
                    return "max_steps"
        finally:
            close = getattr(loader, "close", None)
            if close is not None:
                close()
        self.consume(drain=True)
        if self.diverged is not None:
            return "diverged"
        return None

    def end_epoch(self, seconds_from: float) -> None:
        self.consume(drain=True)
        loss_sum, right, images = self.sums
        test = (None, None, None, None)
        if self.test_loader is not None:
            if self.eval_fn is None:
                self.eval_fn = compile_model(self.model)
            test = evaluate(self.model, self.test_loader, self.loss_fn, compiled=self.eval_fn)
        ev = EpochEndEvent(self.epoch, loss_sum / images if images else float("nan"),
                           right / images if images else float("nan"), test[0], test[1],
                           time.perf_counter() - seconds_from, test[2], test[3])
        self.history.append(ev)
        self.emit(ev)

    def save(self, reason: str) -> None:
        path = self.options.checkpoint
        if path is None:
            return
        extra = dict(self.options.checkpoint_extra or {})
        extra["batch"] = self.batch
        save_checkpoint(path, self.model, self.optimizer, self.epoch, self.step, self.scheduler, extra,
                        recipe=self.options.recipe)
        self.log(f"checkpoint written to {path} (step {self.step})")
        self.emit(CheckpointEvent(os.fspath(path), self.step, self.epoch, reason))

    def done(self, reason: str, message: str) -> History:
        ev = DoneEvent(reason, message, self.step, self.epoch, time.perf_counter() - self.t0)
        self.emit(ev)
        return History(self.history, ev, self.step, self.epoch)

    # -- the whole run --

    def run(self) -> History:
        self.batch = self.start_batch
        if self.start_batch >= self.batches and self.batches:  # saved at the very end of an epoch
            self.epoch += 1
            self.start_batch = self.batch = 0
        try:
            return self._run()
        except KeyboardInterrupt:
            self.readback.clear()
            if self.in_step:  # part of a step is queued: the weights match no step count
                self.log("interrupted in the middle of a step: no checkpoint written", "warning")
            else:
                self.save("interrupted")
            self.done("stopped", f"interrupted at step {self.step}")
            raise
        except Exception as e:
            self.readback.clear()
            self.done("error", f"{type(e).__name__}: {e}")
            raise

    def _run(self) -> History:
        if self.limit_reached():
            return self.done("max_steps", f"already at step {self.step} of max_steps={self.max_steps}")
        start = self.start_batch
        per_epoch = self.options.checkpoint_epochs
        while self.epoch < self.epochs:
            t_epoch = time.perf_counter()
            ended = self.train_epoch(start)
            start = 0
            if ended == "diverged":
                self.readback.clear()
                return self.done("diverged", self.diverged)
            if ended == "stopped":
                self.consume(drain=True)
                self.save("stopped")
                return self.done("stopped", f"stopped at step {self.step} (epoch {self.epoch + 1}, "
                                            f"{self.batch} of {self.batches} batches done)")
            self.end_epoch(t_epoch)
            if ended == "max_steps":
                if per_epoch:
                    self.save("max_steps")
                return self.done("max_steps", f"reached max_steps={self.max_steps} (epoch {self.epoch + 1}, "
                                              f"{self.batch} of {self.batches} batches done)")
            self.epoch += 1
            self.batch = 0
            if self.scheduler is not None and not self.scheduler_per_step:
                self.scheduler.step()
            if per_epoch:
                self.save("epoch")
            if self.limit_reached() and self.epoch < self.epochs:
                return self.done("max_steps", f"reached max_steps={self.max_steps} at the end of an epoch")
        plural = "s" if self.epochs != 1 else ""
        if self.step == self.options.start_step:  # resumed from a finished run: say so, not "trained"
            return self.done("finished", f"nothing to train: the run had already finished its {self.epochs} "
                                         f"epoch{plural} ({self.step} steps)")
        return self.done("finished", f"trained {self.epochs} epoch{plural} ({self.step} steps)")


def fit(model, optimizer, train_loader, test_loader=None, epochs: int = 1,
        loss_fn: Callable[[Tensor, Tensor], Tensor] = F.cross_entropy, callbacks: Iterable[Callback] = (),
        control: TrainingControl | None = None, max_steps: int | None = None, start_epoch: int = 0,
        start_step: int = 0, scheduler=None, scheduler_interval: str = "epoch",
        checkpoint: str | os.PathLike | None = None,
        checkpoint_extra: dict | None = None, checkpoint_epochs: bool = True, log_every: int = 1,
        readback_lag: int = 2, recipe: TrainingRecipe | None = None) -> History:
    """Train `model` on `train_loader` (evaluating `test_loader` after each epoch), reporting events to callbacks.

    The other arguments are FitOptions' fields; returns a History (an exception propagates after DoneEvent "error").
    """
    options = FitOptions(epochs=epochs, loss_fn=loss_fn, max_steps=max_steps, start_epoch=start_epoch,
                         start_step=start_step, scheduler_interval=scheduler_interval, checkpoint=checkpoint,
                         checkpoint_extra=checkpoint_extra, checkpoint_epochs=checkpoint_epochs, recipe=recipe,
                         log_every=log_every, readback_lag=readback_lag)
    return _Fit(model, optimizer, scheduler, train_loader, test_loader, callbacks, control, options).run()
