"""The training loop: `fit` runs compiled training steps epoch by epoch and reports what happens as events.

- Each step is one replay of `hetero.compile_step` (forward, backward, update). The loss, the model's
  output and the targets of a step are copied to host memory with non-blocking copies and read a couple
  of steps later (`readback_lag`), so the host never waits for the step it has just queued: the device
  always has the next step in its queue while the host looks at an older one.
- Callbacks are plain callables that receive events (`StepEvent`, `EpochEndEvent`, `DoneEvent`,
  `LogEvent`); the CLI, the GUI (from a worker thread) and scripts consume the same events.
- A `TrainingControl` pauses, resumes or stops the loop from another thread; it is checked between steps.
- A NaN or infinite loss stops training (DoneEvent reason "diverged", saying the step and what to try).
- Numbering: epochs and batches are 0-based indices (as in `loader.iterate(epoch, start=batch)`); `step` is
  the number of optimizer steps done so far (1 after the first step), which is also what checkpoints store.
- Determinism: with `seed_everything(seed)` before the model is built and a loader seeded with the same
  seed, training is the same on the same device whether it runs straight through or is stopped, saved with
  `save_checkpoint` and resumed with `load_checkpoint` + `fit(start_epoch=..., start_step=...)`.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar

import numpy as np
import pyopencl as cl

from . import random as hrandom
from .autograd import no_grad
from .checkpoint import load_training, save_training
from .graph import compile as compile_model
from .graph import compile_step
from .nn import functional as F
from .nn import init
from .nn.module import model_device
from .tensor import Tensor, tensor

# ----- events -----


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


@dataclass
class EpochEndEvent(_Event):
    """An epoch ended (or was cut short by max_steps) and the test set, if any, was evaluated.

    confusion[true, predicted] counts test images; predictions holds the predicted class of every test
    image in loader order. Both are None without a test loader.
    """

    event: ClassVar[str] = "epoch_end"
    epoch: int
    train_loss: float
    train_accuracy: float
    test_loss: float | None
    test_accuracy: float | None
    seconds: float  # this epoch, evaluation included
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
class LogEvent(_Event):
    """A line for the user: level is "info", "warning" or "error"."""

    event: ClassVar[str] = "log"
    level: str
    message: str


Callback = Callable[[_Event], Any]


# ----- control from another thread -----


class TrainingControl:
    """Pause, resume and stop a running fit() from any thread; fit checks it between steps."""

    def __init__(self) -> None:
        self._running = threading.Event()
        self._running.set()
        self._stop = threading.Event()

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def stop(self) -> None:
        self._stop.set()
        self._running.set()  # wake a paused loop so that it can stop

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def wait_while_paused(self, timeout: float = 0.2) -> None:
        """Return once resumed or stopped (waits in short slices, so Ctrl-C still reaches the main thread)."""
        while not self._running.wait(timeout):
            pass


# ----- results -----


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


# ----- models and optimizers by name (the CLI and the GUI) -----

MODEL_NAMES = ("lenet5", "alexnet_mnist", "resnet18", "preact_resnet18", "mobilenet_v1")
OPTIMIZER_NAMES = ("sgd", "adam", "adamw", "adagrad", "rmsprop")
# measured on MNIST with the CLI's cosine schedule (2 epochs, batch 64): LeNet-5 98.86% with Adam 2e-3,
# 98.77% with SGD 0.02 (momentum 0.9), 98.31% with SGD 0.05
_SGD_LR = {"lenet5": 0.02, "alexnet_mnist": 0.01, "resnet18": 0.05, "preact_resnet18": 0.05, "mobilenet_v1": 0.05}
_ADAM_LR = {"lenet5": 2e-3}
_OTHER_LR = {"adam": 1e-3, "adamw": 1e-3, "adagrad": 1e-2, "rmsprop": 1e-3}


def model_kwargs(name: str, num_classes: int = 10, in_channels: int = 1) -> dict:
    """The keyword arguments that build hetero.models.get_model(name) for small single-channel images."""
    if name not in MODEL_NAMES:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODEL_NAMES)}")
    if name in ("lenet5", "alexnet_mnist"):  # made for 28x28 single-channel input
        return {"num_classes": num_classes}
    return {"num_classes": num_classes, "in_channels": in_channels, "small_input": True}


def default_lr(model: str, optimizer: str = "adam") -> float:
    """A learning rate that trains `model` well with `optimizer` (SGD with momentum 0.9 for "sgd")."""
    if optimizer == "sgd":
        return _SGD_LR.get(model, 0.01)
    if optimizer in ("adam", "adamw"):
        return _ADAM_LR.get(model, _OTHER_LR[optimizer])
    return _OTHER_LR[optimizer]


def make_optimizer(name: str, params, lr: float, momentum: float = 0.9, weight_decay: float = 0.0):
    """An optimizer by name; momentum applies to SGD and RMSprop."""
    from . import optim

    if name == "sgd":
        return optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "adam":
        return optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    if name == "adagrad":
        return optim.Adagrad(params, lr=lr, weight_decay=weight_decay)
    if name == "rmsprop":
        return optim.RMSprop(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZER_NAMES)}")


# ----- seeding and checkpoints -----


def seed_everything(seed: int) -> None:
    """Seed the device random generators (dropout) and the weight initialisers; give loaders the same seed."""
    hrandom.manual_seed(seed)
    init.manual_seed(seed)


def save_checkpoint(path: str | os.PathLike, model, optimizer, epoch: int, step: int, scheduler=None,
                    extra: dict | None = None) -> None:
    """Everything fit needs to continue bit-identically: weights, optimizer state, the device RNG state,
    the scheduler, the epoch to continue at and the steps done. `extra` (JSON-like) is stored alongside,
    e.g. {"model": "lenet5", "model_kwargs": {...}} so that the model can be rebuilt."""
    rng = hrandom.get_rng_state(model_device(model, "checkpoint"))
    save_training(path, model, optimizer, epoch, step, rng_state=rng, extra=dict(extra or {}),
                  scheduler=scheduler)


def load_checkpoint(path: str | os.PathLike, model, optimizer=None, scheduler=None) -> dict:
    """Restore save_checkpoint's file into model (and optimizer, scheduler, device RNG).

    Returns {"start_epoch", "start_step", "extra"}: pass the first two to fit() to continue.
    """
    ck = load_training(path)
    model.load_state_dict(ck["model"])
    if optimizer is not None and ck["optimizer"] is not None:
        optimizer.load_state_dict(ck["optimizer"])
    if scheduler is not None and ck["scheduler"] is not None:
        scheduler.load_state_dict(ck["scheduler"])
    if ck["rng_state"] is not None:
        hrandom.set_rng_state(model_device(model, "checkpoint"), ck["rng_state"])
    return {"start_epoch": ck["epoch"], "start_step": ck["step"], "extra": ck["extra"] or {}}


# ----- reading results back without stalling the device -----


class _Readback:
    """Non-blocking device->host copies of a step's loss, output and targets; read `lag` steps later."""

    def __init__(self, lag: int):
        self.lag = max(0, int(lag))
        self.pending: deque = deque()

    def push(self, meta, loss: Tensor | None, output: Tensor, target: Tensor | np.ndarray) -> None:
        queue = output.device.queue
        events = []
        hosts = []
        for t in (loss, output, target):
            if isinstance(t, Tensor):
                host = np.empty(t.shape, t.dtype)
                events.append(cl.enqueue_copy(queue, host, t.buffer, is_blocking=False))
                hosts.append(host)
            else:
                hosts.append(None if t is None else np.asarray(t))
        self.pending.append((meta, events, hosts))

    def ready(self, drain: bool = False):
        """Yield (meta, loss, output, target) host values of the steps old enough (all when drain)."""
        while self.pending and (drain or len(self.pending) > self.lag):
            meta, events, hosts = self.pending.popleft()
            for e in events:
                e.wait()
            yield meta, hosts[0], hosts[1], hosts[2]

    def clear(self) -> None:
        for _, events, _ in self.pending:
            for e in events:
                e.wait()
        self.pending.clear()


def _correct(output: np.ndarray, target: np.ndarray) -> tuple[int, np.ndarray]:
    pred = np.argmax(output.reshape(len(target), -1), axis=1).astype(np.int32)
    return int(np.count_nonzero(pred == target.reshape(-1))), pred


# ----- evaluation -----


def evaluate(model, loader, loss_fn: Callable[[Tensor, Tensor], Tensor] = F.cross_entropy, compiled=None,
             readback_lag: int = 2) -> tuple[float, float, np.ndarray, np.ndarray]:
    """(mean loss, accuracy in [0, 1], confusion[true, predicted] as int64, predictions as int32 in order).

    The model runs in eval mode through a compiled forward (`compiled`: a hetero.compile(model) to reuse
    across calls; one is made otherwise); the mode is restored afterwards.
    """
    was_training = model.training
    model.eval()
    compiled = compiled if compiled is not None else compile_model(model)
    dev = compiled.device
    rb = _Readback(readback_lag)
    total_loss = 0.0
    count = 0
    preds: list[np.ndarray] = []
    targets: list[np.ndarray] = []

    def consume(drain: bool) -> None:
        nonlocal total_loss, count
        for n, loss, out, target in rb.ready(drain):
            total_loss += float(loss.reshape(())) * n
            count += n
            preds.append(np.argmax(out.reshape(n, -1), axis=1).astype(np.int32))
            targets.append(target.reshape(-1).astype(np.int32))

    try:
        for x, y in _batches(loader):
            out = compiled(x)
            yt = y if isinstance(y, Tensor) else tensor(np.asarray(y, np.int32), device=dev)
            with no_grad():
                loss = loss_fn(out, yt)
            rb.push(int(yt.shape[0]), loss, out, yt)
            consume(False)
        consume(True)
    finally:
        rb.clear()
        model.train(was_training)
    pred = np.concatenate(preds) if preds else np.zeros(0, np.int32)
    true = np.concatenate(targets) if targets else np.zeros(0, np.int32)
    classes = _num_classes(loader, pred, true)
    confusion = np.zeros((classes, classes), np.int64)
    np.add.at(confusion, (true, pred), 1)
    accuracy = float(np.count_nonzero(pred == true)) / count if count else 0.0
    return (total_loss / count if count else 0.0), accuracy, confusion, pred


def _num_classes(loader, pred: np.ndarray, true: np.ndarray) -> int:
    classes = getattr(getattr(loader, "dataset", None), "classes", None)
    n = len(classes) if classes is not None else 0
    if pred.size:
        n = max(n, int(pred.max()) + 1, int(true.max()) + 1)
    return n


def _batches(loader, epoch: int | None = None, start: int = 0):
    """The loader's batches for an epoch from batch `start` (loader.iterate), or plain iteration."""
    if epoch is not None and hasattr(loader, "iterate"):
        return loader.iterate(epoch, start)
    if epoch is not None and hasattr(loader, "set_epoch"):
        loader.set_epoch(epoch)
    it = iter(loader)
    for _ in range(start):
        next(it, None)
    return it


# ----- fit -----


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
    def __init__(self, model, optimizer, train_loader, test_loader, epochs, loss_fn, callbacks, control,
                 max_steps, start_epoch, start_step, scheduler, scheduler_interval, checkpoint, checkpoint_extra,
                 checkpoint_epochs, log_every, readback_lag):
        if scheduler_interval not in ("epoch", "step"):
            raise ValueError(f"fit: scheduler_interval must be 'epoch' or 'step', got {scheduler_interval!r}")
        self.scheduler_per_step = scheduler is not None and scheduler_interval == "step"
        self.model, self.optimizer, self.scheduler = model, optimizer, scheduler
        self.train_loader, self.test_loader = train_loader, test_loader
        self.epochs, self.max_steps = int(epochs), max_steps
        self.loss_fn = loss_fn
        self.callbacks = list(callbacks)
        self.control = control if control is not None else TrainingControl()
        self.checkpoint, self.checkpoint_extra = checkpoint, dict(checkpoint_extra or {})
        self.checkpoint_epochs = checkpoint_epochs
        self.log_every = max(1, int(log_every))
        self.capture = _CaptureLoss(loss_fn)
        self.step_fn = compile_step(model, self.capture, optimizer)
        self.outputs: dict[tuple, tuple[Tensor, Tensor]] = {}  # input shape -> captured (output, target)
        self.eval_fn = None
        self.readback = _Readback(readback_lag)
        self.batches = len(train_loader)
        self.step = int(start_step)
        self.epoch = int(start_epoch)  # where training would continue
        self.start_batch = min(max(0, self.step - self.epoch * self.batches), self.batches)
        self.history: list[EpochEndEvent] = []
        self.diverged: str | None = None
        self.t0 = time.perf_counter()
        self.rate: deque = deque(maxlen=20)  # (time queued, images) of recent steps: their spacing is the
        # device's pace once the host runs `readback_lag` steps ahead
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
            correct, _ = _correct(out, target)
            self.sums[0] += loss * n
            self.sums[1] += correct
            self.sums[2] += n
            now = time.perf_counter()
            if step % self.log_every == 0 or batch == self.batches - 1:
                self.emit(StepEvent(step, epoch, batch, self.batches, loss, correct / n if n else 0.0,
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
            self.control.wait_while_paused()
            if not self.control.stopped:
                self.log(f"resumed at step {self.step}")
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
        batches = _batches(self.train_loader, self.epoch, start)
        try:
            for batch, (x, y) in enumerate(batches, start=start):
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
            close = getattr(batches, "close", None)
            if close is not None:
                close()
        self.consume(drain=True)
        if self.diverged is not None:
            return "diverged"
        return None

    def end_epoch(self, seconds_from: float) -> None:
        self.consume(drain=True)
        loss_sum, correct, images = self.sums
        test = (None, None, None, None)
        if self.test_loader is not None:
            if self.eval_fn is None:
                self.eval_fn = compile_model(self.model)
            test = evaluate(self.model, self.test_loader, self.loss_fn, compiled=self.eval_fn)
        ev = EpochEndEvent(self.epoch, loss_sum / images if images else float("nan"),
                           correct / images if images else float("nan"), test[0], test[1],
                           time.perf_counter() - seconds_from, test[2], test[3])
        self.history.append(ev)
        self.emit(ev)

    def save(self) -> None:
        if self.checkpoint is None:
            return
        extra = dict(self.checkpoint_extra)
        extra["batch"] = self.batch
        save_checkpoint(self.checkpoint, self.model, self.optimizer, self.epoch, self.step, self.scheduler, extra)
        self.log(f"checkpoint written to {self.checkpoint} (step {self.step})")

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
                self.save()
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
        while self.epoch < self.epochs:
            t_epoch = time.perf_counter()
            ended = self.train_epoch(start)
            start = 0
            if ended == "diverged":
                self.readback.clear()
                return self.done("diverged", self.diverged)
            if ended == "stopped":
                self.consume(drain=True)
                self.save()
                return self.done("stopped", f"stopped at step {self.step} (epoch {self.epoch + 1}, "
                                            f"{self.batch} of {self.batches} batches done)")
            self.end_epoch(t_epoch)
            if ended == "max_steps":
                if self.checkpoint_epochs:
                    self.save()
                return self.done("max_steps", f"reached max_steps={self.max_steps} (epoch {self.epoch + 1}, "
                                              f"{self.batch} of {self.batches} batches done)")
            self.epoch += 1
            self.batch = 0
            if self.scheduler is not None and not self.scheduler_per_step:
                self.scheduler.step()
            if self.checkpoint_epochs:
                self.save()
            if self.limit_reached() and self.epoch < self.epochs:
                return self.done("max_steps", f"reached max_steps={self.max_steps} at the end of an epoch")
        return self.done("finished", f"trained {self.epochs} epoch{'s' if self.epochs != 1 else ''} "
                                     f"({self.step} steps)")


def fit(model, optimizer, train_loader, test_loader=None, epochs: int = 1,
        loss_fn: Callable[[Tensor, Tensor], Tensor] = F.cross_entropy, callbacks: Iterable[Callback] = (),
        control: TrainingControl | None = None, max_steps: int | None = None, start_epoch: int = 0,
        start_step: int = 0, scheduler=None, scheduler_interval: str = "epoch",
        checkpoint: str | os.PathLike | None = None,
        checkpoint_extra: dict | None = None, checkpoint_epochs: bool = True, log_every: int = 1,
        readback_lag: int = 2) -> History:
    """Train `model` with `optimizer` on `train_loader` for `epochs` epochs (0-based epochs start_epoch..epochs-1).

    train_loader yields (x, y) batches (numpy arrays or device Tensors) and has len() and preferably
    iterate(epoch, start) (hetero.data.DataLoader); test_loader, if given, is evaluated after every epoch.
    callbacks receive StepEvent (every `log_every` steps, read back `readback_lag` steps late),
    EpochEndEvent, LogEvent and one DoneEvent. max_steps caps the total step count (start_step included);
    reaching it mid-epoch evaluates the partial epoch and ends with reason "max_steps". scheduler.step()
    runs after every full epoch, or after every step with scheduler_interval="step".
    checkpoint: a path written after every epoch and at max_steps (unless checkpoint_epochs is False), on
    stop and on KeyboardInterrupt (which is then re-raised), with checkpoint_extra stored in it. Resume
    with load_checkpoint() and start_epoch/start_step. Returns a History; exceptions propagate after a
    DoneEvent with reason "error".
    """
    run = _Fit(model, optimizer, train_loader, test_loader, epochs, loss_fn, callbacks, control, max_steps,
               start_epoch, start_step, scheduler, scheduler_interval, checkpoint, checkpoint_extra,
               checkpoint_epochs, log_every, readback_lag)
    return run.run()


__all__ = [
    "DoneEvent",
    "EpochEndEvent",
    "History",
    "LogEvent",
    "StepEvent",
    "MODEL_NAMES",
    "OPTIMIZER_NAMES",
    "TrainingControl",
    "default_lr",
    "evaluate",
    "fit",
    "load_checkpoint",
    "make_optimizer",
    "model_kwargs",
    "save_checkpoint",
    "seed_everything",
]
