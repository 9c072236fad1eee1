"""Background work: one training QThread per device, one QThread for a benchmark run.

Workers never touch widgets. hetero.train calls our callback in the worker thread; the callback emits a
Qt signal, and Qt queues it to the slots in the GUI thread (the QThread object lives there).
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass

from PySide6.QtCore import QThread, Signal

from hetero import train as T

DATASETS = ("mnist", "fashion-mnist")

_build_lock = threading.Lock()  # model weights come from one global host generator: build one at a time
_data_lock = threading.Lock()
_datasets: dict[tuple, object] = {}


@dataclass
class TrainConfig:
    """Everything the Train view's form says about a run. Checkpoints store it as their 'extra', with the
    keys `hetero train` writes and reads, so each resumes the other's checkpoints."""

    model: str = "lenet5"
    dataset: str = "mnist"
    data_dir: str | None = None
    epochs: int = 2
    batch_size: int = 64
    optimizer: str = "adam"
    lr: float = 1e-3
    seed: int = 0
    max_steps: int | None = None
    resume_from: str | None = None  # a checkpoint (hetero.train.save_checkpoint) to continue from

    def to_extra(self) -> dict:
        d = asdict(self)
        for k in ("resume_from", "max_steps"):
            d.pop(k)
        d["model_kwargs"] = T.model_kwargs(self.model)
        d["lr_schedule"] = "none"
        return {k: v for k, v in d.items() if v is not None}

    @classmethod
    def from_extra(cls, extra: dict) -> TrainConfig:
        """The settings a checkpoint's extra holds (the GUI's or `hetero train`'s); defaults for the rest."""
        known = {k: extra[k] for k in cls.__dataclass_fields__ if k in extra and k not in ("resume_from",)}
        config = cls(**known)
        if config.model not in T.MODEL_NAMES or config.optimizer not in T.OPTIMIZER_NAMES:
            raise ValueError(f"unknown model {config.model!r} or optimizer {config.optimizer!r}")
        if "lr" not in extra:  # `hetero train` keeps its lr in the optimizer state, not in extra
            config.lr = T.default_lr(config.model, config.optimizer)
        return config


def load_dataset(name: str, root: str | None, train: bool):
    """hetero.data.get_dataset, shared between the workers of one session (read-only arrays)."""
    from hetero import data

    key = (name, root, train)
    with _data_lock:
        ds = _datasets.get(key)
        if ds is None:
            ds = data.get_dataset(name, root=root, train=train)
            _datasets[key] = ds
        return ds


def build_model(config: TrainConfig, dev):
    """The model and optimizer of a run on one device; the same seed gives the same weights everywhere.

    Seeding sets process-wide generators, so builds take turns (and TrainView starts fit only once every
    worker has built its model, see TrainWorker.barrier)."""
    from hetero import models

    with _build_lock:
        T.seed_everything(config.seed)
        model = models.get_model(config.model, device=dev, **T.model_kwargs(config.model))
    return model, T.make_optimizer(config.optimizer, model.parameters(), config.lr)


def run_training(worker: TrainWorker) -> None:
    """The real job: load data, build the model on the worker's device, hetero.train.fit with callbacks."""
    import hetero
    from hetero import data

    config = worker.config
    try:
        dev = hetero.device(worker.device_id)
        train_set = load_dataset(config.dataset, config.data_dir, True)
        test_set = load_dataset(config.dataset, config.data_dir, False)
        worker.sigTestSet.emit(worker.key, test_set)
        model, optimizer = build_model(config, dev)
        start = {"start_epoch": 0, "start_step": 0}
        if config.resume_from:
            with _build_lock:
                restored = T.load_checkpoint(config.resume_from, model, optimizer)
            start = {"start_epoch": restored["start_epoch"], "start_step": restored["start_step"]}
            worker.log("info", f"continuing from {config.resume_from} at epoch {start['start_epoch'] + 1}, "
                               f"step {start['start_step']}")
        worker.model, worker.optimizer = model, optimizer
        worker.last_epoch, worker.last_step = start["start_epoch"], start["start_step"]
        train_loader = data.DataLoader(train_set, config.batch_size, shuffle=True, seed=config.seed, device=dev)
        test_loader = data.DataLoader(test_set, max(config.batch_size, 256), device=dev)
    except BaseException:
        worker.release_barrier()
        raise
    worker.wait_barrier()
    worker.log("info", f"{config.model} on {dev.label}: {len(train_set.labels):,} training and "
                       f"{len(test_set.labels):,} test images, {len(train_loader)} batches of {config.batch_size}")
    T.fit(model, optimizer, train_loader, test_loader, epochs=config.epochs, callbacks=[worker.on_event],
          control=worker.control, max_steps=config.max_steps, **start)


def explain(error: BaseException) -> str:
    """A failure in words a user understands, with the technical message after it."""
    name = type(error).__name__
    text = " ".join(str(error).split()) or name
    if name == "DatasetNotFoundError":
        return f"The data set was not found. Pick the folder that holds the IDX files (Data folder). {text}"
    if name == "OutOfMemoryError":
        return f"The device ran out of memory. Try a smaller batch size or a smaller model. {text}"
    if name == "BuildError":
        return f"The device's OpenCL compiler could not build a kernel, so this device cannot train. {text}"
    if name in ("DeviceNotFoundError", "NoPlatformError"):
        return f"The device is not available. {text}"
    if name == "CheckpointError":
        return f"The checkpoint could not be used. {text}"
    return f"Training failed ({name}): {text}"


class TrainWorker(QThread):
    """Trains one model on one device. Signals carry the worker's key so one slot serves every device.

    Checkpoints are written only where fit() is between steps with every step read back: right away once
    the run has ended or while fit() waits in a pause, else at the next pause, which the worker asks for
    (and lifts again after saving). So a saved (epoch, step) always matches the saved weights.
    """

    sigEvent = Signal(str, object)     # (key, hetero.train event)
    sigTestSet = Signal(str, object)   # (key, test dataset) once loaded, for the digit grid
    sigLog = Signal(str, str, str)     # (key, level, message)
    sigFailed = Signal(str, str)       # (key, message in plain words)

    def __init__(self, key: str, device_id: str, config: TrainConfig,
                 runner: Callable[[TrainWorker], None] = run_training, control=None, parent=None):
        super().__init__(parent)
        self.key = key
        self.device_id = device_id
        self.config = config
        self.runner = runner
        self.control = control if control is not None else T.TrainingControl()
        self.barrier: threading.Barrier | None = None  # set by the view: all runs start fit together
        self.model = None
        self.optimizer = None
        self.last_step = 0
        self.last_epoch = 0           # 0-based epoch a resume would continue at
        self.paused = False           # the user's pause
        self.at_pause = False         # fit() has drained its readbacks and waits
        self.done_seen = False
        self._pause_for_save = False
        self._save_requests: list[str] = []
        self._save_lock = threading.Lock()

    # ----- called in the worker thread -----

    def run(self) -> None:
        try:
            self.runner(self)
        except Exception as e:  # a worker never dies silently: the GUI shows why in the log
            self.sigFailed.emit(self.key, explain(e))
            self.sigLog.emit(self.key, "debug", traceback.format_exc())
            if not self.done_seen:
                self.sigEvent.emit(self.key, _Done("error", explain(e), self.last_step, self.last_epoch))
        self._do_saves()

    def wait_barrier(self) -> None:
        if self.barrier is not None:
            try:
                self.barrier.wait()
            except threading.BrokenBarrierError:
                pass  # another device failed to start: train anyway

    def release_barrier(self) -> None:
        if self.barrier is not None:
            self.barrier.abort()

    def on_event(self, event) -> None:
        """hetero.train callback (fit thread): forward to the GUI, serve checkpoint requests at a pause."""
        kind = getattr(event, "event", None)
        if kind == "step":
            self.last_step = event.step
            self.last_epoch = event.epoch
        elif kind == "epoch_end":
            self.last_epoch = event.epoch + 1
        elif kind == "done":
            self.done_seen = True
            self.last_step, self.last_epoch = event.steps, event.epoch
        elif kind == "log":
            if self.control.paused and not self.control.stopped:
                self._reached_pause()
            self.sigLog.emit(self.key, event.level, event.message)
            return
        self.sigEvent.emit(self.key, event)

    def _reached_pause(self) -> None:
        # fit() logs "paused at step N" after draining its readbacks, just before it waits
        self.at_pause = True
        self._do_saves()
        if self._pause_for_save and not self.paused:
            self._pause_for_save = False
            self.at_pause = False
            self.control.resume()

    def log(self, level: str, message: str) -> None:
        self.sigLog.emit(self.key, level, message)

    def _do_saves(self) -> None:
        with self._save_lock:
            requests, self._save_requests = self._save_requests, []
        for path in requests:
            self._save_and_report(path)

    def _save_and_report(self, path: str) -> None:
        error = self.save_now(path)
        if error is None:
            self.sigLog.emit(self.key, "info", f"Checkpoint saved to {path} (epoch {self.last_epoch + 1}, "
                                               f"step {self.last_step}).")
        else:
            self.sigLog.emit(self.key, "error", f"Could not save the checkpoint to {path}: {error}")

    # ----- called in the GUI thread -----

    def save_now(self, path: str) -> str | None:
        """Write a training checkpoint; None on success, else why not."""
        if self.model is None:
            return "the model is not built yet"
        try:
            T.save_checkpoint(path, self.model, self.optimizer, self.last_epoch, self.last_step,
                              extra={**self.config.to_extra(), "device": self.device_id})
        except Exception as e:
            return explain(e)
        return None

    def request_save(self, path: str) -> None:
        """Save now when fit() is not stepping, else at the next pause (asked for here when needed)."""
        if not self.isRunning() or self.at_pause:
            self._save_and_report(path)
            return
        with self._save_lock:
            self._save_requests.append(path)
        if not self.paused:
            self._pause_for_save = True
            self.control.pause()

    def pause(self) -> None:
        self.paused = True
        self.control.pause()

    def resume(self) -> None:
        self.paused = False
        self.at_pause = False
        self._pause_for_save = False
        self.control.resume()

    def stop(self) -> None:
        self.paused = False
        self.control.stop()


@dataclass
class _Done:
    """A DoneEvent for a run that failed before or outside hetero.train.fit."""

    reason: str
    message: str
    steps: int
    epoch: int
    seconds: float = 0.0
    event: str = "done"


class BenchWorker(QThread):
    """Runs hetero.bench.run in the background; progress and the report come back as signals."""

    sigProgress = Signal(str, float)   # (message, fraction 0..1)
    sigDone = Signal(object)           # the BenchReport
    sigFailed = Signal(str)

    def __init__(self, options: dict, bench_run: Callable | None = None, parent=None):
        super().__init__(parent)
        self.options = dict(options)
        self.bench_run = bench_run
        self.cancel = threading.Event()

    def run(self) -> None:
        try:
            bench_run = self.bench_run
            if bench_run is None:
                from hetero import bench

                bench_run = bench.run
            report = bench_run(progress=self._progress, cancel=self.cancel, **self.options)
        except Exception as e:
            self.sigFailed.emit(f"The benchmark failed ({type(e).__name__}): {' '.join(str(e).split())}")
            return
        self.sigDone.emit(report)

    def _progress(self, message: str, fraction: float) -> None:
        self.sigProgress.emit(str(message), float(fraction))
