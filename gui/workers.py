"""Background work: one training QThread per run (one device, or several data-parallel), one QThread for a
benchmark run.

Workers never touch widgets. hetero.train calls our callback in the worker thread; the callback emits a
Qt signal, and Qt queues it to the slots in the GUI thread (the QThread object lives there).
"""

from __future__ import annotations

import re
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import QThread, Signal

from hetero import recipe as R
from hetero import train as T
from hetero.recipe import TrainingRecipe

from .history import RunHistory

DATASETS = R.DATASET_NAMES

_build_lock = threading.Lock()  # model weights come from one global host generator: build one at a time
_data_lock = threading.Lock()
_datasets: dict[tuple, object] = {}

# The form's starting point: a constant learning rate, as the app has always trained by default.
APP_RECIPE = TrainingRecipe(lr_schedule="constant")


HISTORY_KEY = "gui_history"  # the checkpoint's extra entry that holds the curves (RunHistory.to_saved)


@dataclass
class TrainConfig:
    """A run the Train view starts: its recipe, where the data lies, and the checkpoint it continues from."""

    recipe: TrainingRecipe = APP_RECIPE
    data_dir: str | None = None
    resume_from: str | None = None  # a checkpoint (hetero.train.save_checkpoint) to continue from

    def extra(self) -> dict:
        """What a checkpoint stores beside the recipe: the data folder, which the recipe leaves out."""
        return {"data_dir": self.data_dir} if self.data_dir else {}

    @classmethod
    def from_checkpoint(cls, state: dict) -> TrainConfig:
        """The run a hetero.checkpoint.load_training() result describes (RecipeError when it does not say)."""
        extra = state.get("extra") or {}
        data_dir = extra.get("data_dir") if isinstance(extra.get("data_dir"), str) else None
        return cls(R.recipe_from_checkpoint(state), data_dir)


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


def build_model(recipe: TrainingRecipe, dev):
    """The model and optimizer of a run on one device; the same seed gives the same weights everywhere."""
    # Seeding sets process-wide generators, so builds take turns (and TrainView starts fit only once every
    # worker has built its model, see TrainWorker.barrier).
    with _build_lock:
        model = R.build_model(recipe, dev)
    return model, R.build_optimizer(recipe, model.parameters())


def run_training(worker: TrainWorker) -> None:
    """The real job: load data, build the run from its recipe on the worker's device, hetero.train.fit; a
    worker given several devices trains one model on them with hetero.parallel.fit_parallel."""
    import hetero

    config = worker.config
    recipe = worker.recipe
    parallel = len(worker.device_ids) > 1
    if parallel:
        from hetero import parallel as P
    try:
        devs = P.resolve_devices(worker.device_id) if parallel else [hetero.device(worker.device_id)]
        dev = devs[0]  # the model, the optimizer and the test set live here; fit_parallel copies the model
        train_set = load_dataset(recipe.dataset, config.data_dir, True)
        test_set = load_dataset(recipe.dataset, config.data_dir, False)
        worker.sigTestSet.emit(worker.key, test_set)
        model, optimizer = build_model(recipe, dev)
        if parallel:  # fit_parallel splits each batch on the host, so the training loader yields numpy arrays
            train_loader = R.build_loaders(recipe, None, train_set, None)[0]
            test_loader = R.build_loaders(recipe, dev, None, test_set)[1]
        else:
            train_loader, test_loader = R.build_loaders(recipe, dev, train_set, test_set)
        scheduler = R.build_scheduler(recipe, optimizer, len(train_loader))
        start = {"start_epoch": 0, "start_step": 0}
        if config.resume_from:
            with _build_lock:
                restored = T.load_checkpoint(config.resume_from, model, optimizer, scheduler, recipe=recipe)
            start = {"start_epoch": restored["start_epoch"], "start_step": restored["start_step"]}
            worker.log("info", f"continuing from {config.resume_from} at epoch {start['start_epoch'] + 1}, "
                               f"step {start['start_step']}")
        worker.model, worker.optimizer, worker.scheduler = model, optimizer, scheduler
        worker.last_epoch, worker.last_step = start["start_epoch"], start["start_step"]
    except BaseException:
        worker.release_barrier()
        raise
    worker.wait_barrier()
    where = f"data-parallel on {' + '.join(d.id for d in devs)}" if parallel else f"on {dev.label}"
    worker.log("info", f"{recipe.model} {where}: {len(train_set.labels):,} training and "
                       f"{len(test_set.labels):,} test images, {len(train_loader)} batches of {recipe.batch_size}")
    kwargs = dict(epochs=recipe.epochs, callbacks=[worker.on_event], control=worker.control,
                  max_steps=recipe.max_steps, scheduler=scheduler, scheduler_interval=R.SCHEDULER_INTERVAL,
                  recipe=recipe, **start)
    if parallel:  # the worker's model is the first device's replica: its checkpoints are the run's
        P.fit_parallel(model, optimizer, devs, train_loader, test_loader, **kwargs)
    else:
        T.fit(model, optimizer, train_loader, test_loader, **kwargs)


def checkpoint_name(recipe: TrainingRecipe, step: int) -> str:
    """The file name the save dialog offers: 'lenet5-mnist-step370.safetensors'."""
    return f"{recipe.model}-{recipe.dataset}-step{step}.safetensors"


def step_path(path: str, named_step: int | None, step: int) -> str:
    """`path` with the step in its name ('-step370.safetensors') made `step`, the one the checkpoint holds;
    unchanged when its name says no step (the user's own name)."""
    tail = f"-step{named_step}.safetensors"
    if named_step is None or named_step == step or not path.endswith(tail):
        return path
    return path[: -len(tail)] + f"-step{step}.safetensors"


# hetero's messages advise the command line and Python; the app's user has the form
_GUI_WORDS = (
    (re.compile(r"then pass --data DIR \(root=DIR in Python\) or set (\w+)=DIR"),
     r"then choose DIR as the Data folder (the … button beside it), or set \1=DIR before starting the app"),
    (re.compile(r"an explicit root is the only place looked at; without it hetero looks in"),
     "the Data folder set in the form is the only place looked at; left empty, the app looks in"),
    (re.compile(r"^(\s*)root argument:", re.MULTILINE), r"\1Data folder:"),
)


def message_lines(error: BaseException) -> str:
    """The error's message with each line's spacing tidied and its line breaks (a "Looked in:" list) kept."""
    lines = []
    for line in str(error).splitlines():
        words = " ".join(line.split())
        if words:
            lines.append(("  " if line[:1].isspace() else "") + words)
    return "\n".join(lines)


def explain(error: BaseException) -> str:
    """A failure in words a user understands, with the technical message after it (line breaks kept)."""
    name = type(error).__name__
    text = message_lines(error) or name
    for pattern, words in _GUI_WORDS:
        text = pattern.sub(words, text)
    if name == "DatasetNotFoundError":
        return f"The data set was not found. Pick the folder that holds the IDX files (Data folder).\n{text}"
    if name == "OutOfMemoryError":
        return f"The device ran out of memory. Try a smaller batch size or a smaller model. {text}"
    if name == "BuildError":
        return f"The device's OpenCL compiler could not build a kernel, so this device cannot train. {text}"
    if name in ("DeviceNotFoundError", "NoPlatformError"):
        return f"The device is not available. {text}"
    if name == "DataParallelError":
        return f"Data-parallel training failed: {text.removeprefix('data parallel: ')}"
    if name == "CheckpointError":
        return f"The checkpoint could not be used. {text}"
    return f"Training failed ({name}): {text}"


class TrainWorker(QThread):
    """Trains one model on one device, or data-parallel on several (device_id "0:0/2.0,0:0/2.1"). Signals
    carry the worker's key so one slot serves every run."""

    # Checkpoints are written only where fit() is between steps with every step read back: right away once
    # the run has ended or while fit() waits in a pause (its PausedEvent), else at the next pause, which the
    # worker asks for (and lifts again after saving). So a saved (epoch, step) always matches the weights.

    sigEvent = Signal(str, object)     # (key, hetero.train event)
    sigTestSet = Signal(str, object)   # (key, test dataset) once loaded, for the digit grid
    sigLog = Signal(str, str, str)     # (key, level, message)
    sigFailed = Signal(str, str)       # (key, message in plain words)

    def __init__(self, key: str, device_id: str, config: TrainConfig,
                 runner: Callable[[TrainWorker], None] = run_training, control=None, parent=None):
        super().__init__(parent)
        self.key = key
        self.device_id = device_id
        self.device_ids = device_id.split(",")
        self.config = config
        self.recipe = config.recipe.replace(devices=device_id)  # what this worker's checkpoints record
        self.runner = runner
        self.control = control if control is not None else T.TrainingControl()
        self.barrier: threading.Barrier | None = None  # set by the view: all runs start fit together
        self.model = None
        self.optimizer = None
        self.scheduler = None
        self.last_step = 0
        self.last_epoch = 0           # 0-based epoch a resume would continue at
        self.paused = False           # the user's pause
        self.at_pause = False         # fit() has drained its readbacks and waits
        self.done_seen = False
        self._pause_for_save = False
        self._save_requests: list[tuple[str, int | None]] = []  # (path, the step its name says, if it does)
        self._save_lock = threading.Lock()
        self.saved: list[tuple[str, int]] = []  # (path, step) of each checkpoint written
        # the run's curves, fed in the fit thread and read by save_now (there, or once the thread has ended):
        # every checkpoint carries them, so a resumed run shows its whole history (a GUI-thread copy may lag)
        self.history = RunHistory(key, key, "#000000", self.recipe.epochs)
        self.error_kind = ""  # the exception's class name once the run has failed ("DatasetNotFoundError")

    # ----- called in the worker thread -----

    def run(self) -> None:
        try:
            self.runner(self)
        except Exception as e:  # a worker never dies silently: the GUI shows why in the log
            self.error_kind = type(e).__name__
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
        if isinstance(event, T.LogEvent):
            self.sigLog.emit(self.key, event.level, event.message)
            return
        if isinstance(event, T.StepEvent):
            self.last_step = event.step
            self.last_epoch = event.epoch
            self.history.add(event)
        elif isinstance(event, T.EpochEndEvent):
            self.last_epoch = event.epoch + 1
            self.history.add(event)
        elif isinstance(event, T.PausedEvent):
            self._reached_pause()  # fit has read back every queued step and now waits
        elif getattr(event, "event", None) == "done":
            self.done_seen = True
            self.last_step, self.last_epoch = event.steps, event.epoch
        self.sigEvent.emit(self.key, event)

    def _reached_pause(self) -> None:
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
        for path, named_step in requests:
            self._save_and_report(path, named_step)

    def _save_and_report(self, path: str, named_step: int | None = None) -> None:
        path = step_path(path, named_step, self.last_step)
        error = self.save_now(path)
        if error is None:
            self.saved.append((path, self.last_step))
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
            extra = {**self.config.extra(), HISTORY_KEY: self.history.to_saved()}
            T.save_checkpoint(path, self.model, self.optimizer, self.last_epoch, self.last_step, self.scheduler,
                              extra=extra, recipe=self.recipe)
        except Exception as e:
            return explain(e)
        return None

    def request_save(self, path: str, named_step: int | None = None) -> None:
        """Save now when fit() is not stepping, else at the next pause (asked for here when needed).
        `named_step`: the step that the file name offered ("...-step370.safetensors") says; the file is
        named after the step it holds when that has moved on by the time the save happens."""
        if not self.isRunning() or self.at_pause:
            self._save_and_report(path, named_step)
            return
        with self._save_lock:
            self._save_requests.append((path, named_step))
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
