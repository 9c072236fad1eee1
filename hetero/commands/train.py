"""`hetero train`: train a model-zoo CNN on MNIST / Fashion-MNIST with a progress bar, checkpoints and a JSON log.

Every argument and output path is checked before anything is trained (exit status 2 and a message). Ctrl-C
once, or SIGTERM, stops after the current step and writes a checkpoint (to --checkpoint, else a default path
named in the message that never replaces another run's file); Ctrl-C again aborts at once (a checkpoint is
still written between steps). --resume rebuilds the run from the checkpoint's training recipe (options given
with it override the recipe, and say so) and continues it bit-identically on the same device: the lr schedule
spans the recipe's epochs, so a run stopped at --max-steps and resumed with a larger one follows the schedule
of a run that never stopped.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

from ..errors import HeteroError
from ..recipe import MAX_SEED, RecipeError, TrainingRecipe, recipe_from_checkpoint
from ..train.checkpoints import restore_checkpoint
from ..train.events import CheckpointEvent
from . import float_arg, int_arg, output_problem


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..recipe import DATASET_NAMES, LR_SCHEDULES, MODEL_NAMES, OPTIMIZER_NAMES

    p = sub.add_parser("train", help="train a CNN on MNIST or Fashion-MNIST",
                       description="Train a model-zoo CNN on MNIST or Fashion-MNIST on an OpenCL device.")
    # Settings default to None so that a resumed run can tell what was asked for from what its recipe says.
    p.add_argument("--model", choices=MODEL_NAMES, default=None, help="the model (default lenet5, or the "
                   "checkpoint's with --resume)")
    p.add_argument("--dataset", choices=DATASET_NAMES, default=None, help="default mnist (or the checkpoint's)")
    p.add_argument("--data", metavar="DIR", default=None,
                   help="folder with the IDX files, the only place looked when given (default: $HETERO_DATA_DIR, "
                        "~/.cache/hetero/datasets, /usr/share/datasets, the checkout's data/, then a download)")
    _add_folder_arguments(p)
    p.add_argument("--device", metavar="SPEC[,SPEC...]", default=None,
                   help="device spec (see `hetero devices`; default: $HETERO_DEVICE, else the best usable device); "
                        "several, comma-separated, or a split such as cpu/2, train one model data-parallel")
    p.add_argument("--balance", choices=("throughput", "equal"), default="throughput",
                   help="data-parallel runs: split each batch by each device's measured images/s (default) or "
                        "equally")
    p.add_argument("--epochs", type=int_arg(1), default=None, help="default 2 (or the checkpoint's)")
    p.add_argument("--batch-size", type=int_arg(1), default=None, help="default 64 (or the checkpoint's)")
    p.add_argument("--eval-batch-size", type=int_arg(1), default=None,
                   help="batch size of the test-set evaluation (default 500, or the checkpoint's)")
    p.add_argument("--optimizer", choices=OPTIMIZER_NAMES, default=None,
                   help="default adam (or the checkpoint's)")
    p.add_argument("--lr", type=float_arg(), default=None,
                   help="learning rate (default: per model and optimizer, or the checkpoint's)")
    p.add_argument("--lr-schedule", choices=LR_SCHEDULES, default=None,
                   help="cosine: lr falls to 0 over --epochs, updated every step (default, or the checkpoint's)")
    p.add_argument("--momentum", type=float_arg(), default=None, help="SGD / RMSprop momentum (default 0.9, or the "
                   "checkpoint's)")
    p.add_argument("--weight-decay", type=float_arg(), default=None, help="default 0 (or the checkpoint's)")
    p.add_argument("--seed", type=int_arg(0, MAX_SEED), default=None,
                   help="seeds the weights, dropout and the data order (default 0, or the checkpoint's)")
    p.add_argument("--checkpoint", metavar="PATH", default=None,
                   help="write a training checkpoint here after every epoch (and on Ctrl-C or SIGTERM)")
    p.add_argument("--resume", metavar="PATH", default=None, help="continue from a training checkpoint (its recipe: "
                   "model, optimizer state, learning rate and schedule; other settings given here override it)")
    p.add_argument("--max-steps", type=int_arg(1, 2**63 - 1), default=None, help="stop after this many optimizer "
                   "steps in total (the lr schedule still spans --epochs, so a run stopped here resumes on it)")
    p.add_argument("--json-log", metavar="FILE", default=None, help="write every event as one JSON object a line")
    p.set_defaults(func=run)


def _add_folder_arguments(p: argparse.ArgumentParser) -> None:
    from ..data.folder import MAX_IMAGE_SIDE

    p.add_argument("--data-folder", metavar="DIR", default=None,
                   help="train on your own images: DIR/<class>/*.png (sorted folder names are the class ids) or "
                        "DIR/train/<class>/ and DIR/test/<class>/; with --resume: where its folder is now")
    p.add_argument("--image-size", nargs=2, type=int_arg(1, MAX_IMAGE_SIDE), metavar=("H", "W"), default=None,
                   help="--data-folder: resize every image to H x W (default: keep their size, which must be one)")
    p.add_argument("--channels", type=int, choices=(1, 3), default=None,
                   help="--data-folder: 1 grayscale or 3 RGB (default: the first image's; a folder of both needs it)")
    p.add_argument("--test-fraction", type=float_arg(0.0, 0.99), default=None,
                   help="--data-folder: hold out this share of each class, drawn by --seed, as the test set "
                        "(default 0.1; 0: none; not used with train/ and test/ folders)")
    p.add_argument("--skip-bad", action="store_true",
                   help="--data-folder: skip unreadable images and ones of another size or colour, and count them")


def _folder_problem(args: argparse.Namespace) -> str | None:
    """Why the --data-folder options do not go together, or None."""
    options = [o for o, v in (("--image-size", args.image_size), ("--channels", args.channels),
                              ("--test-fraction", args.test_fraction), ("--skip-bad", args.skip_bad or None))
               if v is not None]
    if args.data_folder is None:
        return f"{', '.join(options)} go(es) with --data-folder DIR" if options and not args.resume else None
    if args.dataset is not None or args.data is not None:
        return "--data-folder trains on the folder's images: leave out --dataset and --data"
    if not Path(args.data_folder).expanduser().is_dir():
        return f"--data-folder {args.data_folder}: no such folder; name the folder that holds one subfolder per class"
    if args.resume and options:
        return (f"{', '.join(options)}: a resumed run reads its folder as its checkpoint says; leave them out "
                "(--data-folder with --resume only says where the folder is now)")
    return None


def _load_folder(args: argparse.Namespace) -> tuple:
    """A new run's --data-folder (train, test or None) splits, decoded with a progress line; a usage error's exit
    status when the chosen model cannot take its images (checked before decoding)."""
    from .. import recipe as R
    from ..data.folder import DecodeProgress, plan_image_folder

    fraction = 0.1 if args.test_fraction is None else args.test_fraction
    seed = R.TrainingRecipe.seed if args.seed is None else args.seed  # the split is drawn by the run's seed
    plan = plan_image_folder(args.data_folder, args.image_size, args.channels, fraction, seed, args.skip_bad)
    try:
        R.check_model_input(args.model or R.TrainingRecipe.model, plan.channels, plan.image_size)
    except R.RecipeError as e:
        return _usage_error(f"--data-folder {args.data_folder}: {e}")
    train_set, test_set = plan.load(progress=DecodeProgress())
    skipped = train_set.skipped + (test_set.skipped if test_set is not None else ())
    if skipped:
        print(f"hetero: skipped {len(skipped)} unusable image{'s' if len(skipped) != 1 else ''} (--skip-bad), "
              f"e.g. {skipped[0][0]}: {skipped[0][1]}", file=sys.stderr)
    if plan.ignored:
        print(f"hetero: ignored {len(plan.ignored)} file(s) that are not image files (by name), e.g. {plan.ignored[0]}",
              file=sys.stderr)
    return train_set, test_set


# The recipe fields the command line sets, under their argparse names.
_RECIPE_ARGS = ("model", "dataset", "epochs", "batch_size", "eval_batch_size", "optimizer", "lr", "lr_schedule",
                "momentum", "weight_decay", "seed", "max_steps")


# ----- output -----


def _duration(seconds: float) -> str:
    seconds = int(max(0, seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Progress:
    """A one-line progress bar on a terminal (redrawn with \\r), periodic lines otherwise; epoch summaries on out."""

    def __init__(self, epochs: int, batches: int, batch_size: int, max_steps: int | None, out=None, err=None,
                 width: int = 24):
        self.epochs, self.batches, self.batch_size = epochs, batches, batch_size
        self.total = epochs * batches if max_steps is None else min(epochs * batches, max_steps)
        self.out = out if out is not None else sys.stdout
        self.err = err if err is not None else sys.stderr
        self.tty = self.err.isatty()
        self.width = width
        self.epoch = -1
        self.sums = [0.0, 0.0, 0]
        self.last_line = 0.0
        self.drawn = False

    def __call__(self, e) -> None:
        kind = e.event
        if kind == "step":
            self.step(e)
        elif kind == "epoch_end":
            self.clear()
            test = ""
            if e.test_accuracy is not None:
                test = f"  test loss {e.test_loss:.4f} acc {100 * e.test_accuracy:.2f}%"
            print(f"epoch {e.epoch + 1}/{self.epochs}  train loss {e.train_loss:.4f} acc "
                  f"{100 * e.train_accuracy:.2f}%{test}  {e.seconds:.1f} s", file=self.out, flush=True)
        elif kind == "log":
            self.clear()
            print(f"hetero: {e.message}", file=self.err, flush=True)
        elif kind == "done":
            self.clear()

    def step(self, e) -> None:
        if e.epoch != self.epoch:
            self.epoch, self.sums = e.epoch, [0.0, 0.0, 0]
        self.sums[0] += e.loss
        self.sums[1] += e.accuracy
        self.sums[2] += 1
        n = self.sums[2]
        left = max(0, self.total - e.step) * self.batch_size
        eta = _duration(left / e.images_per_s) if e.images_per_s > 0 else "?"
        done = (e.batch + 1) / self.batches
        stats = (f"loss {self.sums[0] / n:.4f}  acc {100 * self.sums[1] / n:5.2f}%  "
                 f"{e.images_per_s:,.0f} img/s  ETA {eta}")
        if getattr(e, "devices", None):
            stats += "  [" + ", ".join(_share(d) for d in e.devices) + "]"
        if self.tty:
            fill = int(self.width * done)
            bar = "#" * fill + "-" * (self.width - fill)
            self.err.write(f"\repoch {e.epoch + 1}/{self.epochs} [{bar}] {e.batch + 1}/{self.batches}  {stats}\x1b[K")
            self.err.flush()
            self.drawn = True
            return
        now = time.monotonic()
        every = max(1, self.batches // 10)
        if (e.batch + 1) % every == 0 or e.batch + 1 == self.batches or now - self.last_line > 30:
            self.last_line = now
            print(f"epoch {e.epoch + 1}/{self.epochs} batch {e.batch + 1}/{self.batches} ({100 * done:.0f}%)  "
                  f"{stats}", file=self.err, flush=True)

    def clear(self) -> None:
        if self.drawn:
            self.err.write("\r\x1b[K")
            self.err.flush()
            self.drawn = False


def _share(d: dict) -> str:
    rate = d.get("images_per_s")
    return f"{d['device']} {100 * d['share']:.0f}%" + (f" {rate:,.0f}/s" if rate else "")


class JsonLog:
    """One JSON object a line for the step, epoch_end and done events (flushed as written)."""

    def __init__(self, path: str):
        self.file = open(path, "w", encoding="utf-8")  # noqa: SIM115 (closed by close())

    def __call__(self, e) -> None:
        if e.event in ("step", "epoch_end", "done"):
            self.file.write(json.dumps(e.to_dict()) + "\n")
            self.file.flush()

    def close(self) -> None:
        self.file.close()


class _Signals:
    """Which stop signal arrived first (SIGINT or SIGTERM), so the exit status can say so (130 / 143)."""

    def __init__(self) -> None:
        self.first: int | None = None

    @property
    def exit_status(self) -> int:
        return 128 + (self.first or signal.SIGINT)


@contextlib.contextmanager
def _ctrl_c_stops(control, err, signals: _Signals | None = None):
    """First Ctrl-C or SIGTERM: stop after the current step (fit then writes the checkpoint); a second one:
    KeyboardInterrupt (fit still writes a checkpoint when it is between steps)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    signals = signals if signals is not None else _Signals()

    def handler(signum, frame):
        if control.stopped:
            raise KeyboardInterrupt
        signals.first = signum
        control.stop()
        what = "Ctrl-C" if signum == signal.SIGINT else "SIGTERM"
        print(f"\nhetero: {what}: stopping after this step and writing a checkpoint (Ctrl-C again to abort)",
              file=err, flush=True)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


# ----- the command -----


def _count(model) -> int:
    return sum(p.size for p in model.parameters())


class _CheckpointNotes:
    """Remembers the checkpoints fit reports writing, so an interrupt can say whether one holds its state."""

    def __init__(self) -> None:
        self.last = None

    def __call__(self, e) -> None:
        if isinstance(e, CheckpointEvent):
            self.last = e

    @property
    def interrupt_saved(self) -> bool:
        return self.last is not None and self.last.reason == "interrupted"


def _recipe(args: argparse.Namespace, resume: dict | None,
            folder: dict | None = None) -> tuple[TrainingRecipe | None, TrainingRecipe]:
    """(the checkpoint's recipe with --resume, else None; the run's: that or the defaults, changed by what was
    given here). folder: a new run's --data-folder spec."""
    given = {k: getattr(args, k) for k in _RECIPE_ARGS if getattr(args, k) is not None}
    given["devices"] = args.device
    if folder is not None:
        given.update(dataset="folder", data_folder=folder)
    if resume is None:
        return None, TrainingRecipe(**given)
    saved = recipe_from_checkpoint(resume)
    if args.data_folder is not None:  # the checkpoint's folder, moved
        if saved.data_folder is None:
            raise RecipeError(f"{args.resume} was trained on {saved.dataset}, not an image folder; leave out "
                              "--data-folder")
        given["data_folder"] = {**saved.data_folder, "path": os.fspath(Path(args.data_folder).expanduser())}
    if "model" in given and given["model"] != saved.model:
        raise RecipeError(f"{args.resume} holds a {saved.model}, not a {given['model']}")
    return saved, saved.replace(**given)


def _restore(args: argparse.Namespace, resume: dict, recipe: TrainingRecipe, model, optimizer,
             scheduler) -> dict | None:
    """Load --resume's state into the run built from its recipe: fit's start position, or None (said why)."""
    if resume["optimizer_class"] not in (None, type(optimizer).__name__):
        asked = f" (--optimizer {args.optimizer})" if args.optimizer else ""
        print(f"hetero: error: {args.resume} holds {resume['optimizer_class']} state, not "
              f"{type(optimizer).__name__}{asked}", file=sys.stderr)
        return None
    try:
        pos = restore_checkpoint(args.resume, resume, model, optimizer, scheduler, recipe=recipe)  # the file run() read
    except ValueError as e:
        print(f"hetero: error: {args.resume} does not fit this model and optimizer: {e}", file=sys.stderr)
        return None
    return {"start_epoch": pos["start_epoch"], "start_step": pos["start_step"]}


def _nothing_left(args: argparse.Namespace, resume: dict, recipe: TrainingRecipe) -> str | None:
    """Why resuming `resume` with `recipe` would train no step (a finished run, a reached max_steps), or None."""
    step, epoch = resume["step"], resume["epoch"]
    if recipe.max_steps is not None and step >= recipe.max_steps:
        return (f"{args.resume} is at step {step}, and --max-steps is {recipe.max_steps}: nothing to train; "
                f"pass a --max-steps above {step}")
    if epoch >= recipe.epochs:
        return (f"{args.resume} has finished its {recipe.epochs} epoch{'s' if recipe.epochs != 1 else ''} "
                f"(step {step}): nothing to train; pass --epochs above {recipe.epochs} to train further")
    return None


def _changes(args: argparse.Namespace, saved: TrainingRecipe, recipe: TrainingRecipe) -> str:
    """The recipe settings given with --resume that differ from the checkpoint's, in words."""
    changed = [f"{k} {getattr(saved, k)!r} -> {getattr(recipe, k)!r}" for k in _RECIPE_ARGS
               if getattr(args, k) is not None and getattr(saved, k) != getattr(recipe, k)]
    return ", ".join(changed)


def _default_checkpoint(recipe: TrainingRecipe, resume_path: str | None) -> tuple[str, str | None]:
    """The checkpoint path without --checkpoint, and the existing file it steps around (or None).

    A resumed run goes on writing its own checkpoint; a new run never replaces another run's file: it takes
    the first free name hetero-MODEL-DATASET-N.safetensors beside it."""
    if resume_path is not None:
        return resume_path, None
    stem = f"hetero-{recipe.model}-{recipe.dataset}"
    first = Path(f"{stem}.safetensors")
    if not first.exists():
        return os.fspath(first), None
    n = 2
    while Path(f"{stem}-{n}.safetensors").exists():
        n += 1
    return f"{stem}-{n}.safetensors", os.fspath(first)


def _finish(args: argparse.Namespace, history, checkpoint: str, notes: _CheckpointNotes, signals: _Signals) -> int:
    """Say how the run ended; the exit status."""
    done = history.done
    if done.reason == "diverged":
        print(f"hetero: error: {done.message}", file=sys.stderr)
        return 1
    written = notes.last is not None
    if done.reason == "stopped":
        if written:
            print(f"hetero: {done.message}; checkpoint written to {checkpoint}; resume with --resume {checkpoint}",
                  file=sys.stderr)
        else:
            print(f"hetero: {done.message}; no checkpoint written", file=sys.stderr)
        return signals.exit_status
    last = history.epochs[-1] if history.epochs else None
    summary = f"done: {done.message} in {_duration(done.seconds)}"
    if last is not None and last.test_accuracy is not None:
        summary += f"; test accuracy {100 * last.test_accuracy:.2f}%"
    if args.checkpoint and written:
        summary += f"; checkpoint {os.fspath(Path(args.checkpoint))}"
    print(summary, flush=True)
    return 0


def _usage_error(message: str) -> int:
    print(f"hetero train: error: {message}", file=sys.stderr)
    return 2


def _output_paths(args: argparse.Namespace, recipe: TrainingRecipe) -> tuple[str, str | None] | str:
    """(this run's checkpoint path, the other run's file it avoids, if any), or why the paths are unusable."""
    if args.checkpoint:
        return args.checkpoint, None
    checkpoint, renamed = _default_checkpoint(recipe, args.resume)
    problem = output_problem(checkpoint)
    if problem:
        return f"the default checkpoint {checkpoint}: {problem}; pass --checkpoint PATH"
    return checkpoint, renamed


def _devices(spec: str | None, comm) -> list:
    """The run's devices: one for a plain run, several (or this rank's) for a data-parallel one."""
    from .. import device as get_device
    from ..parallel import resolve_devices

    if spec is None or ("," not in spec and comm.size == 1 and not _splits(spec)):
        return [get_device(spec)]
    return resolve_devices(spec)


def _splits(spec: str) -> bool:
    """Whether a single spec names several sub-devices (a split such as cpu/2, not one part of it)."""
    from ..selection import parse_split

    _, n, part = parse_split(spec.strip())
    return n is not None and part is None


def _parallel_where(devs: list, comm) -> str:
    here = ", ".join(d.label for d in devs)
    if comm.size == 1:
        return f"data-parallel on {len(devs)} devices: {here}"
    return f"data-parallel on {comm.size} MPI ranks (rank 0: {here})"


def _announce(recipe: TrainingRecipe, model, optimizer, train_set, test_set, dev, start: dict, resumed: bool,
              renamed: str | None, checkpoint: str, on: str | None = None) -> None:
    lr, epochs = optimizer.param_groups[0]["lr"], recipe.epochs
    where = getattr(train_set, "files", None)
    source = f" from {where[0].parent}" if where else ""  # which of the places looked at it came from
    data = recipe.dataset if recipe.data_folder is None else f"the images in {recipe.data_folder['path']}"
    print(f"training {recipe.model} ({_count(model):,} parameters) on {data} ({len(train_set)} train / "
          f"{len(test_set) if test_set is not None else 'no'} test images{source}) {on or 'on ' + dev.label}: "
          f"{recipe.optimizer} lr {lr:g} "
          f"({recipe.lr_schedule}), batch {recipe.batch_size}, {epochs} epoch{'s' if epochs != 1 else ''}, "
          f"seed {recipe.seed}"
          + (f", resuming at epoch {start['start_epoch'] + 1} step {start['start_step']}" if resumed else ""),
          flush=True)
    if renamed:
        print(f"hetero: {renamed} is another run's checkpoint and is kept; this run's goes to {checkpoint} "
              "(or pass --checkpoint PATH)", file=sys.stderr)


def _train(args: argparse.Namespace, recipe: TrainingRecipe, model, optimizer, scheduler, loaders, start: dict,
           checkpoint: str, parallel: dict | None = None) -> int:
    """Run fit with the progress line, the JSON log and Ctrl-C / SIGTERM handling; the exit status."""
    from .. import recipe as R
    from .. import train as T

    train_loader, test_loader = loaders
    control = T.TrainingControl()
    progress = Progress(recipe.epochs, len(train_loader), recipe.batch_size, recipe.max_steps)
    notes = _CheckpointNotes()
    root = parallel is None or parallel["comm"].rank == 0
    log = JsonLog(args.json_log) if args.json_log and root else None
    callbacks = [progress, notes] + ([log] if log is not None else [])
    signals = _Signals()
    try:
        with _ctrl_c_stops(control, sys.stderr, signals):
            kwargs = dict(epochs=recipe.epochs, callbacks=callbacks, control=control, max_steps=recipe.max_steps,
                          scheduler=scheduler, scheduler_interval=R.SCHEDULER_INTERVAL, checkpoint=checkpoint,
                          checkpoint_epochs=args.checkpoint is not None, recipe=recipe, **start)
            if parallel is None:
                history = T.fit(model, optimizer, train_loader, test_loader, **kwargs)
            else:
                from ..parallel import fit_parallel

                history = fit_parallel(model, optimizer, parallel["devices"], train_loader, test_loader,
                                       balance=args.balance, comm=parallel["comm"], **kwargs)
    except KeyboardInterrupt:
        progress.clear()
        if notes.interrupt_saved:
            print(f"hetero: interrupted; checkpoint written to {checkpoint}; resume with --resume {checkpoint}",
                  file=sys.stderr)
        else:
            print("hetero: interrupted; no checkpoint written", file=sys.stderr)
        return signals.exit_status
    finally:
        if log is not None:
            log.close()
    return _finish(args, history, checkpoint, notes, signals)


def run(args: argparse.Namespace) -> int:
    """Train as the arguments say; the exit status (2: bad arguments, 1: an error, 130/143: stopped by signal)."""
    from .. import recipe as R
    from ..checkpoint import load_training
    from ..parallel.comm import world

    for option, path in (("--checkpoint", args.checkpoint), ("--json-log", args.json_log)):
        problem = None if path is None else output_problem(path)
        if problem:
            return _usage_error(f"{option} {path}: {problem}")
    if args.data is not None and not Path(args.data).expanduser().is_dir():
        return _usage_error(f"--data {args.data}: no such folder; name the folder that holds the IDX files")
    problem = _folder_problem(args)
    if problem:
        return _usage_error(problem)
    resume = load_training(args.resume) if args.resume else None
    folder_sets = _load_folder(args) if args.data_folder and resume is None else None
    if isinstance(folder_sets, int):
        return folder_sets
    try:
        saved, recipe = _recipe(args, resume, folder_sets[0].spec.to_dict() if folder_sets else None)
    except R.RecipeError as e:
        where = f"{args.resume}: " if resume is not None and not str(e).startswith(str(args.resume)) else ""
        print(f"hetero: error: {where}{e}", file=sys.stderr)
        return 1
    paths = _output_paths(args, recipe)
    if isinstance(paths, str):
        return _usage_error(paths)
    checkpoint, renamed = paths
    why = _nothing_left(args, resume, recipe) if resume is not None else None
    if why:
        return _usage_error(why)

    comm = world()
    devs = _devices(args.device, comm)
    dev = devs[0]
    parallel = len(devs) > 1 or comm.size > 1
    if folder_sets is not None:  # decoded above, before the recipe that records them
        train_set, test_set = folder_sets
    else:
        train_set, test_set = R.build_datasets(recipe, args.data)
    try:
        model = R.build_model(recipe, dev)
    except R.RecipeError as e:
        print(f"hetero: error: {args.resume + ': ' if resume is not None else ''}{e}", file=sys.stderr)
        return 1
    optimizer = R.build_optimizer(recipe, model.parameters())
    # a data-parallel step splits each batch on the host; the test set runs on the first device
    loaders = R.build_loaders(recipe, None if parallel else dev, train_set, test_set)
    if parallel:
        loaders = (loaders[0], R.build_loaders(recipe, dev, None, test_set)[1])
    scheduler = R.build_scheduler(recipe, optimizer, len(loaders[0]))
    start = {"start_epoch": 0, "start_step": 0}
    if resume is not None:
        start = _restore(args, resume, recipe, model, optimizer, scheduler)
        if start is None:
            return 1
        changes = _changes(args, saved, recipe)
        if changes:
            print(f"hetero: resuming with changed settings: {changes}", file=sys.stderr)
    if comm.rank != 0:  # rank 0 speaks for the run; the others say only their errors
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (the process ends with the run)
    where = _parallel_where(devs, comm) if parallel else None
    _announce(recipe, model, optimizer, train_set, test_set, dev, start, resume is not None, renamed, checkpoint,
              where)
    if not parallel:
        return _train(args, recipe, model, optimizer, scheduler, loaders, start, checkpoint)
    try:
        return _train(args, recipe, model, optimizer, scheduler, loaders, start, checkpoint,
                      parallel={"devices": devs, "comm": comm})
    except HeteroError as e:
        if comm.size == 1:
            raise
        comm.abort(str(e))  # every rank stops now, not at its next collective's deadline
        raise
