"""Hostile-input harness: a catalogue of bad inputs to the CLI, checkpoints, data loading and the API, each run
with a timeout and classified as a clear error, a raw traceback or a silent acceptance; then kill -9 during
checkpoint writes, counting the tries and the data lost.

    python scripts/hostile_inputs.py            # everything, and 25 kill -9 tries
    python scripts/hostile_inputs.py --quick    # every 4th case and 5 kill -9 tries
    python scripts/hostile_inputs.py --json out.json

A clear error: an exception hetero raised on purpose (a HeteroError, ValueError, TypeError, KeyError,
IndexError or RuntimeError from a `raise` in hetero's own code, or argparse's usage error), or a CLI exit
status other than 0 with a message and no traceback. A raw traceback: any other exception (or "Traceback"
on a subprocess's stderr). A silent acceptance: the call returned normally (exit status 0), or returned a
wrong result, or a failed restore left the model changed. Exit status 1 when anything is not a clear error
or data was lost.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HETERO_CACHE_DIR", str(Path(tempfile.gettempdir()) / "hetero-hostile-cache"))

import hetero  # noqa: E402
from hetero.checkpoint import load_training, save_training  # noqa: E402
from hetero.cli import main as cli_main  # noqa: E402
from hetero.data import write_idx  # noqa: E402
from hetero.errors import HeteroError  # noqa: E402

CLEAR, TRACEBACK, SILENT, TIMEOUT = "clear", "traceback", "silent", "timeout"
# RuntimeError: what autograd raises on purpose, as torch does (HeteroError is one too)
DELIBERATE = (HeteroError, ValueError, TypeError, KeyError, IndexError, RuntimeError)
HETERO_DIR = str(ROOT / "hetero")
CASE_TIMEOUT_S = 60


@dataclass
class Case:
    """One bad input: `run()` raises or returns; `area` groups the report; `owner` names the code it tests."""

    area: str
    name: str
    run: Callable[[], object]
    kind: str = "api"  # "cli": run returns an exit status; "api": should raise; "proc": returns (rc, stderr)
    check: Callable[[object], str | None] | None = None  # for a run that returned: why the result is wrong
    owner: str = ""


@dataclass
class Outcome:
    case: Case
    verdict: str
    detail: str = ""
    seconds: float = 0.0


@dataclass
class Catalogue:
    cases: list[Case] = field(default_factory=list)

    def add(self, area: str, name: str, run: Callable[[], object], kind: str = "api", check=None,
            owner: str = "") -> None:
        self.cases.append(Case(area, name, run, kind, check, owner))


class _Timeout(BaseException):
    """Raised in the main thread by SIGALRM: not an Exception, so no handler in hetero catches it."""


def _alarm(signum, frame):
    raise _Timeout


def _deliberate(exc: BaseException) -> bool:
    """Whether hetero (or argparse) raised `exc` on purpose: the innermost frame is a raise in their code."""
    if not isinstance(exc, DELIBERATE):
        return False
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return True
    last = frames[-1]
    in_ours = last.filename.startswith(HETERO_DIR) or last.filename.startswith(str(ROOT / "gui"))
    return in_ours and (last.line or "").lstrip().startswith("raise")


def _first_line(text: str) -> str:
    lines = [s for s in text.strip().splitlines() if s.strip()]
    return lines[-1][:200] if lines else ""


def classify(case: Case) -> Outcome:
    """Run one case in-process (stdout/stderr captured, SIGALRM as the timeout) and classify what it did."""
    out, err = io.StringIO(), io.StringIO()
    t0 = time.perf_counter()
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(CASE_TIMEOUT_S)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            result = case.run()
    except _Timeout:
        return Outcome(case, TIMEOUT, f"no answer in {CASE_TIMEOUT_S} s", time.perf_counter() - t0)
    except SystemExit as e:
        signal.alarm(0)
        text = err.getvalue() + (e.code if isinstance(e.code, str) else "")
        code = e.code if isinstance(e.code, int) else (1 if e.code else 0)
        if code != 0 and text.strip() and "Traceback" not in text:
            return Outcome(case, CLEAR, _first_line(text), time.perf_counter() - t0)
        return Outcome(case, SILENT if code == 0 else TRACEBACK, f"SystemExit({e.code!r}) {_first_line(text)}",
                       time.perf_counter() - t0)
    except BaseException as e:  # noqa: BLE001 - classifying every exception is the point
        signal.alarm(0)
        verdict = CLEAR if _deliberate(e) else TRACEBACK
        where = traceback.extract_tb(e.__traceback__)[-1] if e.__traceback__ else None
        at = f" at {Path(where.filename).name}:{where.lineno}" if where else ""
        return Outcome(case, verdict, f"{type(e).__name__}: {' '.join(str(e).split())[:160]}{at}",
                       time.perf_counter() - t0)
    finally:
        signal.alarm(0)
    seconds = time.perf_counter() - t0
    if case.kind == "cli":
        text = err.getvalue()
        if result != 0 and text.strip() and "Traceback" not in text:
            return Outcome(case, CLEAR, _first_line(text), seconds)
        if result == 0:
            return Outcome(case, SILENT, f"exit 0: {_first_line(out.getvalue())}", seconds)
        return Outcome(case, TRACEBACK, f"exit {result}: {_first_line(text)}", seconds)
    if case.kind == "proc":
        rc, text = result
        if "Traceback" in text:
            return Outcome(case, TRACEBACK, f"exit {rc}: {_first_line(text)}", seconds)
        if rc != 0 and text.strip():
            return Outcome(case, CLEAR, _first_line(text), seconds)
        return Outcome(case, SILENT, f"exit {rc}: {_first_line(text)}", seconds)
    if case.check is not None:
        why = case.check(result)
        if why is None:
            return Outcome(case, CLEAR, "a correct result", seconds)
        return Outcome(case, SILENT, why, seconds)
    return Outcome(case, SILENT, f"returned {type(result).__name__}", seconds)


# ----- fixtures: tiny data, a good checkpoint -----


def tiny_mnist(folder: Path, n_train: int = 48, n_test: int = 16, size: int = 28) -> Path:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, size, size), dtype=np.uint8))
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", rng.integers(0, 10, n).astype(np.uint8))
    return folder


def _cli(*argv: str) -> Callable[[], int]:
    return lambda: cli_main(list(argv))


def _proc(argv: list[str], timeout: float = 60, env: dict | None = None, interrupt_after: float | None = None):
    """A case run as the `hetero` console script runs (hetero_cli.py, its entry point), stderr read back."""
    def run():
        full_env = {**os.environ, **(env or {})}
        p = subprocess.Popen([sys.executable, str(ROOT / "hetero_cli.py"), *argv], cwd=ROOT, env=full_env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if interrupt_after is not None:
            time.sleep(interrupt_after)
            p.send_signal(signal.SIGINT)
        try:
            _, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            _, err = p.communicate()
            return -9, "timeout\n" + err
        return p.returncode, err
    return run


# ----- the catalogue -----


def cli_cases(cat: Catalogue, work: Path, data: Path, good: Path) -> None:
    missing = str(work / "nonexistent_dir" / "x")
    base = ["train", "--data", str(data), "--batch-size", "16", "--max-steps", "1"]
    numbers = {
        "--lr": ["nan", "-1", "inf", "-inf", "x", "", "1e400"],
        "--momentum": ["-1", "nan", "inf", "x"],
        "--weight-decay": ["-1", "nan", "inf", "x"],
        "--seed": ["-1", "99999999999999999999", "1.5", "x", ""],
        "--max-steps": ["-5", "0", "1.5", "x", "99999999999999999999999999999"],
        "--epochs": ["0", "-1", "x", "2.5"],
        "--batch-size": ["0", "-3", "x"],
        "--eval-batch-size": ["0", "-1", "x"],
    }
    for option, values in numbers.items():
        for v in values:
            args = [a for a in base if a != option]
            if option in ("--max-steps", "--batch-size"):  # drop the option and its value from base
                i = base.index(option)
                args = base[:i] + base[i + 2:]
            cat.add("cli train", f"{option} {v!r}", _cli(*args, option, v), "cli", owner="hetero/commands/train.py")
    for option, value in (("--model", "nonsense"), ("--dataset", "cifar"), ("--optimizer", "lamb"),
                          ("--lr-schedule", "linear"), ("--device", "nonsense"), ("--device", "99:99"),
                          ("--device", "cpu/0"), ("--device", "0:0,0:0"), ("--device", "0:0,0:0/2.0"),
                          ("--device", "0:0,,0:0"), ("--device", "0:0,99:99"), ("--device", "0:0/2.0,0:0/3.1"),
                          ("--balance", "fastest"), ("--data", str(work / "nope")), ("--data", str(good)),
                          ("--resume", str(work / "nope.st")), ("--resume", str(work)),
                          ("--resume", str(data / "train-images-idx3-ubyte.gz")),
                          ("--checkpoint", missing), ("--checkpoint", str(work)), ("--checkpoint", ""),
                          ("--json-log", missing), ("--json-log", str(work)), ("--unknown-flag", "1")):
        cat.add("cli train", f"{option} {value!r}", _cli(*base, option, value), "cli",
                owner="hetero/commands/train.py")
    cat.add("cli train", "--resume with another --model", _cli(*base, "--resume", str(good), "--model", "resnet18"),
            "cli", owner="hetero/commands/train.py")
    cat.add("cli train", "--resume with another --optimizer",
            _cli(*base, "--resume", str(good), "--optimizer", "sgd"), "cli", owner="hetero/commands/train.py")
    cat.add("cli train", "--resume a finished run", _cli("train", "--data", str(data), "--resume", str(good),
                                                         "--epochs", "1", "--checkpoint", str(work / "r.st")),
            "cli", owner="hetero/commands/train.py")
    cat.add("cli train", "--resume --max-steps below its step",
            _cli("train", "--data", str(data), "--resume", str(good), "--max-steps", "1",
                 "--checkpoint", str(work / "r2.st")), "cli", owner="hetero/commands/train.py")
    cat.add("cli", "no command", _cli(), "cli", owner="hetero/cli.py")
    cat.add("cli", "unknown command", _cli("frobnicate"), "cli", owner="hetero/cli.py")

    ev = ["eval", "--data", str(data)]
    for name, path in (("missing file", work / "none.st"), ("a directory", work), ("an IDX file",
                       data / "t10k-labels-idx1-ubyte.gz"), ("empty path", "")):
        cat.add("cli eval", f"--checkpoint {name}", _cli(*ev, "--checkpoint", str(path)), "cli",
                owner="hetero/commands/evaluate.py")
    for option, value in (("--batch-size", "0"), ("--batch-size", "-1"), ("--batch-size", "x"),
                          ("--dataset", "cifar"), ("--device", "nonsense"), ("--data", str(work / "nope"))):
        cat.add("cli eval", f"{option} {value!r}", _cli(*ev, "--checkpoint", str(good), option, value), "cli",
                owner="hetero/commands/evaluate.py")
    cat.add("cli eval", "no --checkpoint", _cli("eval"), "cli", owner="hetero/commands/evaluate.py")

    bench = ["bench", "--quick", "--only", "device", "--models", "none", "--references", "none"]
    for option, value in (("--devices", "nonsense"), ("--devices", ""), ("--devices", ",,"), ("--devices", "99:0"),
                          ("--models", "nonsense"), ("--models", "lenet5,nonsense"), ("--only", "nonsense"),
                          ("--only", "none"), ("--only", ""), ("--references", "nonsense"),
                          ("--references", "numpy,bogus"), ("--compare", "/nonexistent.json"),
                          ("--compare", str(work)), ("--compare", str(good)), ("--json", missing),
                          ("--json", str(work)), ("--csv", missing), ("--batch-size", "0"),
                          ("--batch-size", "-4"), ("--batch-size", "x")):
        args = list(bench)
        if option in args:
            i = args.index(option)
            args = args[:i] + args[i + 2:]
        cat.add("cli bench", f"{option} {value!r}", _cli(*args, option, value), "cli",
                owner="hetero/commands/bench.py")
    (work / "bad.json").write_text('{"format_version": 1, "results": 5}')
    (work / "list.json").write_text("[1, 2]")
    for name in ("bad.json", "list.json"):
        cat.add("cli bench", f"--compare {name}", _cli(*bench, "--compare", str(work / name)), "cli",
                owner="hetero/commands/bench.py")

    for args in (["nonsense"], ["lenet5", "--batch-size", "0"], ["lenet5", "--batch-size", "-1"],
                 ["lenet5", "--batch-size", "x"], ["lenet5", "--device", "nonsense"], []):
        cat.add("cli summary", " ".join(args) or "no model", _cli("summary", *args), "cli",
                owner="hetero/commands/summary.py")
    for args in (["--json", "extra"], ["--bogus"]):
        cat.add("cli devices", " ".join(args), _cli("devices", *args), "cli", owner="hetero/commands/devices.py")
    for args in (["--epochs", "x"], ["--epochs", "0"], ["--after", "x"], ["--after", "-1"], ["--bogus"],
                 ["--screenshot", missing], ["--screenshot", str(work)], ["--data", str(work / "nope")]):
        cat.add("cli gui", " ".join(args), _cli("gui", *args), "cli", owner="gui/app.py")

    # as a user runs them: a separate process, stderr read for "Traceback"
    for argv in (["train", "--lr", "nan"], ["train", "--data", str(data), "--max-steps", "3", "--checkpoint",
                                             missing], ["eval", "--checkpoint", str(work / "none.st")],
                 ["bench", "--devices", "nonsense"]):
        cat.add("process", " ".join(argv[:3]), _proc(argv), "proc", owner="hetero/cli.py")
    for delay in (0.1, 0.3):
        cat.add("process", f"Ctrl-C {delay} s into start-up", _proc(["devices"], interrupt_after=delay), "proc",
                owner="hetero_cli.py (the console script's entry point)")


def _damaged(work: Path, good: Path) -> dict[str, Path]:
    """Variants of a good training checkpoint: truncated, flipped, wrong shapes, garbage metadata."""
    raw = good.read_bytes()
    folder = work / "damaged"
    folder.mkdir()
    out: dict[str, Path] = {}

    def put(name: str, data: bytes) -> None:
        out[name] = folder / f"{name}.st"
        out[name].write_bytes(data)

    n = int.from_bytes(raw[:8], "little")
    for cut in (0, 4, 8, 9, 8 + n // 2, 8 + n, 8 + n + 1, len(raw) // 2, len(raw) - 1):
        put(f"truncated at {cut}", raw[:cut])
    put("header length 2**63", (2**63).to_bytes(8, "little") + raw[8:])
    put("header length 0", (0).to_bytes(8, "little") + raw[8:])
    rng = random.Random(0)
    for _ in range(6):
        data = bytearray(raw)
        i = rng.randrange(8, 8 + n)
        data[i] ^= 0xFF
        put(f"header byte {i} flipped", bytes(data))
    put("trailing garbage", raw + b"garbage")
    put("zeros", b"\0" * len(raw))
    put("text", b"hello world\n" * 100)
    ck = load_training(good)
    meta = hetero.checkpoint.read_metadata(good)
    tensors = hetero.checkpoint.load(good)

    def with_meta(name: str, **changes: str | None) -> None:
        m = {k: v for k, v in {**meta, **changes}.items() if v is not None}
        path = folder / f"{name}.st"
        hetero.checkpoint.save(tensors, path, m)
        out[name] = path

    recipe = json.loads(meta["recipe"])
    for name, value in (("model nonsense", {**recipe, "model": "nonsense"}),
                        ("version 99", {**recipe, "version": 99}), ("epochs -1", {**recipe, "epochs": -1}),
                        ("lr NaN", {**recipe, "lr": float("nan")}), ("lr string", {**recipe, "lr": "x"}),
                        ("seed 2**70", {**recipe, "seed": 2**70}), ("batch 0", {**recipe, "batch_size": 0}),
                        ("unknown field", {**recipe, "colour": 1}), ("kwargs huge", {**recipe, "model_kwargs":
                                                                                       {"num_classes": 10**12}}),
                        ("kwargs bogus", {**recipe, "model_kwargs": {"bogus": 3}}),
                        ("kwargs 3 classes", {**recipe, "model_kwargs": {"num_classes": 3}}),
                        ("recipe a list", [1, 2]), ("recipe a number", 3)):
        with_meta(f"recipe {name}", recipe=json.dumps(value))
    with_meta("recipe not JSON", recipe="{not json")
    with_meta("recipe deeply nested", recipe="[" * 100000 + "]" * 100000)
    for key, value in (("epoch", "x"), ("step", "-1"), ("epoch", "1e9999"), ("step", None), ("format", "other"),
                       ("format", None), ("optimizer", "{}"), ("optimizer", '{"class": "Adam", "param_groups": 3}'),
                       ("optimizer", '{"class": "Adam", "param_groups": [{"lr": "x", "params": [0]}]}'),
                       ("optimizer", "not json"), ("scheduler", '{"T_max": "x"}'), ("scheduler", "[1]"),
                       ("rng_state", "[1, 2]"), ("rng_state", '"abc"'), ("rng_state", "[-1, 0, 0, 0]"),
                       ("extra", "5"), ("extra", "not json")):
        with_meta(f"metadata {key}={value!r:.30}", **{key: value})
    # tensors of the wrong shape or dtype, a missing or an extra one
    name0 = sorted(k for k, v in ck["model"].items() if v.ndim >= 2)[0]  # reshaping it changes its shape
    for label, change in (("a weight reshaped", lambda t: {**t, name0: t[name0].reshape(-1)}),
                          ("a weight as int32", lambda t: {**t, name0: t[name0].astype(np.int32)}),
                          ("a weight missing", lambda t: {k: v for k, v in t.items() if k != name0}),
                          ("an extra weight", lambda t: {**t, "extra.weight": np.zeros(3, np.float32)}),
                          ("optimizer state reshaped", lambda t: {k: (v.reshape(-1)[:1] if k.startswith(
                              "optimizer.state.") else v) for k, v in t.items()}),
                          ("optimizer state index 99", lambda t: {**{k: v for k, v in t.items()},
                                                                  "optimizer.state.99.exp_avg": np.zeros(2)}),
                          ("optimizer state index x", lambda t: {**t, "optimizer.state.x.exp_avg": np.zeros(2)}),
                          ("weights of a NaN", lambda t: {**t, name0: np.full_like(t[name0], np.nan)})):
        path = folder / f"tensors {label}.st"
        hetero.checkpoint.save(change(dict(tensors)), path, meta)
        out[f"tensors {label}"] = path
    return out


def checkpoint_cases(cat: Catalogue, work: Path, data: Path, good: Path) -> None:
    from hetero import recipe as R
    from hetero.train import load_checkpoint

    damaged = _damaged(work, good)
    dev = hetero.device()
    rec = R.recipe_from_checkpoint(load_training(good))
    model = R.build_model(rec, dev)
    opt = R.build_optimizer(rec, model.parameters())
    sched = R.build_scheduler(rec, opt, 3)

    def restore(path: Path):
        def run():
            before = {k: v.numpy().copy() for k, v in model.state_dict().items()}
            lr = [g["lr"] for g in opt.param_groups]
            try:
                return load_checkpoint(path, model, opt, sched, recipe=rec)
            except BaseException:
                after = model.state_dict()
                changed = [k for k, v in before.items() if not np.array_equal(v, after[k].numpy(), equal_nan=True)]
                if changed or lr != [g["lr"] for g in opt.param_groups]:
                    raise _PartialRestore(f"a failed restore changed {changed[:3]} / lr") from None
                raise
        return run

    for name, path in damaged.items():
        if name == "tensors weights of a NaN":
            # loads (a NaN weight is a valid number); hetero eval then reports a NaN loss: not an input error
            continue
        # load_checkpoint restores into the caller's model with the caller's recipe: the stored recipe's
        # model_kwargs matter to hetero eval and --resume, which rebuild the model from them (cases above)
        api_too = name not in ("recipe kwargs bogus", "recipe kwargs 3 classes")
        cat.add("checkpoint: hetero eval", name, _cli("eval", "--data", str(data), "--checkpoint", str(path)), "cli",
                owner="hetero/checkpoint.py, hetero/commands/evaluate.py")
        cat.add("checkpoint: train --resume", name, _cli("train", "--data", str(data), "--resume", str(path),
                                                          "--max-steps", "50", "--checkpoint", str(work / "o.st")),
                "cli", owner="hetero/checkpoint.py, hetero/commands/train.py")
        if api_too:
            cat.add("checkpoint: load_checkpoint", name, restore(path), owner="hetero/train/checkpoints.py")


class _PartialRestore(Exception):
    """A failed load_checkpoint left the model or optimizer changed: counted as a silent (wrong) outcome."""


def _bad_folders(work: Path) -> dict[str, Path]:
    root = work / "bad-data"
    out: dict[str, Path] = {}
    rng = np.random.default_rng(1)

    def split(name: str, images=None, labels=None, raw_images: bytes | None = None,
              raw_labels: bytes | None = None, test=True) -> None:
        folder = root / name
        folder.mkdir(parents=True)
        n = 8
        imgs = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8) if images is None else images
        labs = rng.integers(0, 10, len(imgs)).astype(np.uint8) if labels is None else labels
        for prefix in (("train", "t10k") if test else ("train",)):
            if raw_images is not None:
                (folder / f"{prefix}-images-idx3-ubyte").write_bytes(raw_images)
            else:
                write_idx(folder / f"{prefix}-images-idx3-ubyte", imgs)
            if raw_labels is not None:
                (folder / f"{prefix}-labels-idx1-ubyte").write_bytes(raw_labels)
            else:
                write_idx(folder / f"{prefix}-labels-idx1-ubyte", labs)
        out[name] = folder

    good_images = bytes([0, 0, 8, 3]) + (8).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2 + bytes(8 * 784)
    split("32x32 images", images=np.zeros((8, 32, 32), np.uint8))
    split("0 images", images=np.zeros((0, 28, 28), np.uint8), labels=np.zeros(0, np.uint8))
    split("label 10", labels=np.full(8, 10, np.uint8))
    split("label 255", labels=np.full(8, 255, np.uint8))
    split("8 images 7 labels", labels=np.zeros(7, np.uint8))
    split("images as int32", images=np.zeros((8, 28, 28), np.int32))
    split("images as float32", images=np.zeros((8, 28, 28), np.float32))
    split("images 2-D", images=np.zeros((8, 784), np.uint8))
    split("images 4-D", images=np.zeros((8, 1, 28, 28), np.uint8))
    split("labels 2-D", labels=np.zeros((8, 1), np.uint8))
    split("truncated images", raw_images=good_images[:-100])
    split("trailing bytes", raw_images=good_images + b"x")
    split("empty images file", raw_images=b"")
    split("3-byte images file", raw_images=b"\0\0\x08")
    split("bad magic", raw_images=b"\x12\x34" + good_images[2:])
    split("dtype code 0x07", raw_images=good_images[:2] + b"\x07" + good_images[3:])
    split("0 dimensions", raw_images=good_images[:3] + b"\0" + good_images[4:])
    split("dims 2**31", raw_images=bytes([0, 0, 8, 3]) + (2**31).to_bytes(4, "big") * 3 + bytes(100))
    split("header cut", raw_images=bytes([0, 0, 8, 3, 0, 0]))
    split("corrupt gzip", raw_images=b"\x1f\x8b" + b"\0" * 50)
    split("labels file twice", raw_images=bytes([0, 0, 8, 1]) + (8).to_bytes(4, "big") + bytes(8))
    split("no test split", test=False)
    folder = root / "images is a folder"
    (folder / "train-images-idx3-ubyte").mkdir(parents=True)
    write_idx(folder / "train-labels-idx1-ubyte", np.zeros(8, np.uint8))
    out["images is a folder"] = folder
    folder = root / "only labels"
    folder.mkdir()
    write_idx(folder / "train-labels-idx1-ubyte", np.zeros(8, np.uint8))
    out["only labels"] = folder
    (root / "empty").mkdir()
    out["empty folder"] = root / "empty"
    (root / "a-file").write_text("x")
    out["a file, not a folder"] = root / "a-file"
    return out


# files that are not valid IDX at all (the others are valid IDX of the wrong content, for MNIST to refuse)
_IDX_DAMAGE = {"truncated images", "trailing bytes", "empty images file", "3-byte images file", "bad magic",
               "dtype code 0x07", "0 dimensions", "dims 2**31", "header cut", "corrupt gzip", "labels file twice",
               "images as int32", "images as float32", "images 2-D", "images 4-D"}


def data_cases(cat: Catalogue, work: Path, data: Path) -> None:
    from hetero.data import MNIST, read_idx

    folders = _bad_folders(work)
    for name, folder in folders.items():
        if name != "no test split":  # the training split alone is a fine MNIST(train=True)
            cat.add("data: MNIST(root=)", name, lambda f=folder: MNIST(root=f, download=False),
                    owner="hetero/data/datasets.py, hetero/data/idx.py")
        cat.add("data: hetero train --data", name, _cli("train", "--data", str(folder), "--max-steps", "1",
                                                        "--checkpoint", str(work / "d.st")), "cli",
                owner="hetero/data/datasets.py, hetero/data/idx.py")
        images = folder / "train-images-idx3-ubyte"
        if images.is_file() and name in _IDX_DAMAGE:
            cat.add("data: read_idx", name, lambda p=images: read_idx(p, 0x0803), owner="hetero/data/idx.py")
    # an explicit --data that lacks the files, while $HETERO_DATA_DIR holds them
    def explicit_root():
        os.environ["HETERO_DATA_DIR"] = str(data)
        try:
            return MNIST(root=folders["empty folder"], download=False)
        finally:
            del os.environ["HETERO_DATA_DIR"]
    cat.add("data: MNIST(root=)", "explicit empty root, $HETERO_DATA_DIR set", explicit_root,
            owner="hetero/data/sources.py")


def api_cases(cat: Catalogue) -> None:
    import hetero.nn.functional as F
    from hetero import nn, optim

    dev = hetero.device()
    t = lambda *shape: hetero.tensor(np.ones(shape, np.float32), device=dev)  # noqa: E731

    def add(name, fn, owner="", check=None):
        cat.add("api", name, fn, check=check, owner=owner)

    T, OPS, AG = "hetero/tensor.py", "hetero/ops/", "hetero/autograd.py"
    add("zeros((2.5, 3))", lambda: hetero.zeros((2.5, 3), device=dev), T)
    add("zeros((-1, 3))", lambda: hetero.zeros((-1, 3), device=dev), T)
    add("zeros(('a',))", lambda: hetero.zeros(("a",), device=dev), T)
    add("zeros dtype object", lambda: hetero.zeros((2,), dtype=object, device=dev), T)
    add("zeros((2**40, 2**20))", lambda: hetero.zeros((2**40, 2**20), device=dev), T)
    add("tensor of strings", lambda: hetero.tensor(np.array(["a", "b"]), device=dev), T)
    add("tensor of objects", lambda: hetero.tensor([object()], device=dev), T)
    add("tensor of complex", lambda: hetero.tensor(np.ones(2, np.complex64), device=dev), T)
    add("tensor ragged list", lambda: hetero.tensor([[1, 2], [3]], device=dev), T)
    add("full fill 'x'", lambda: hetero.full((2,), "x", device=dev), T)
    add("reshape 6 -> 4", lambda: t(2, 3).reshape(4), T)
    add("reshape -1, -1", lambda: t(2, 3).reshape(-1, -1), T)
    add("flatten start_dim 5", lambda: t(2, 3).flatten(5), T)
    add("item of 2 values", lambda: t(2).item(), T)
    add("to('nonsense')", lambda: t(2).to("nonsense"), T)
    add("device('nonsense')", lambda: hetero.device("nonsense"), "hetero/device.py")
    add("device(99)", lambda: hetero.device(99), "hetero/device.py")
    add("select_devices('')", lambda: hetero.select_devices(""), "hetero/device.py",
        check=lambda r: None if r else "an empty list for an empty spec")
    add("add (2,3)+(4,)", lambda: F.add(t(2, 3), t(4)), OPS)
    add("mul (2,3)*(3,2)", lambda: F.mul(t(2, 3), t(3, 2)), OPS)
    add("matmul (2,3)@(4,5)", lambda: F.matmul(t(2, 3), t(4, 5)), OPS)
    add("matmul 0-d", lambda: F.matmul(hetero.tensor(np.float32(2), device=dev), t(2)), OPS)
    add("linear in-features mismatch", lambda: F.linear(t(2, 3), t(4, 5)), OPS)
    add("linear bias mismatch", lambda: F.linear(t(2, 3), t(4, 3), t(5)), OPS)
    add("linear 1-d weight", lambda: F.linear(t(2, 3), t(3)), OPS)
    conv = [("conv2d 3-d input", lambda: F.conv2d(t(1, 5, 5), t(2, 1, 3, 3))),
            ("conv2d channel mismatch", lambda: F.conv2d(t(1, 2, 5, 5), t(2, 1, 3, 3))),
            ("conv2d kernel > input", lambda: F.conv2d(t(1, 1, 2, 2), t(2, 1, 3, 3))),
            ("conv2d stride 0", lambda: F.conv2d(t(1, 1, 5, 5), t(2, 1, 3, 3), stride=0)),
            ("conv2d stride -1", lambda: F.conv2d(t(1, 1, 5, 5), t(2, 1, 3, 3), stride=-1)),
            ("conv2d padding -1", lambda: F.conv2d(t(1, 1, 5, 5), t(2, 1, 3, 3), padding=-1)),
            ("conv2d dilation 0", lambda: F.conv2d(t(1, 1, 5, 5), t(2, 1, 3, 3), dilation=0)),
            ("conv2d groups 0", lambda: F.conv2d(t(1, 2, 5, 5), t(2, 1, 3, 3), groups=0)),
            ("conv2d groups 3 of 4 channels", lambda: F.conv2d(t(1, 4, 5, 5), t(3, 1, 3, 3), groups=3)),
            ("conv2d stride 2.5", lambda: F.conv2d(t(1, 1, 5, 5), t(2, 1, 3, 3), stride=2.5)),
            ("conv2d padding 'bogus'", lambda: F.conv2d(t(1, 1, 5, 5), t(2, 1, 3, 3), padding="bogus")),
            ("conv2d bias mismatch", lambda: F.conv2d(t(1, 1, 5, 5), t(2, 1, 3, 3), t(3))),
            ("conv2d stride (1, 2, 3)", lambda: F.conv2d(t(1, 1, 5, 5), t(2, 1, 3, 3), stride=(1, 2, 3)))]
    for name, fn in conv:
        add(name, fn, "hetero/ops/conv2d/")
    pool = [("max_pool2d kernel 0", lambda: F.max_pool2d(t(1, 1, 4, 4), 0)),
            ("max_pool2d kernel > input", lambda: F.max_pool2d(t(1, 1, 2, 2), 3)),
            ("max_pool2d stride 0", lambda: F.max_pool2d(t(1, 1, 4, 4), 2, stride=0)),
            ("max_pool2d padding > kernel/2", lambda: F.max_pool2d(t(1, 1, 4, 4), 2, padding=2)),
            ("max_pool2d 2-d input", lambda: F.max_pool2d(t(4, 4), 2)),
            ("avg_pool2d kernel -1", lambda: F.avg_pool2d(t(1, 1, 4, 4), -1)),
            ("avg_pool2d padding -1", lambda: F.avg_pool2d(t(1, 1, 4, 4), 2, padding=-1)),
            ("adaptive_avg_pool2d 0", lambda: F.adaptive_avg_pool2d(t(1, 1, 4, 4), 0))]
    for name, fn in pool:
        add(name, fn, "hetero/ops/pool2d.py")
    labels = lambda *v: hetero.tensor(np.array(v, np.int32), device=dev)  # noqa: E731
    soft = [("softmax dim 5", lambda: F.softmax(t(2, 3), dim=5)),
            ("log_softmax dim -3", lambda: F.log_softmax(t(2, 3), dim=-3)),
            # the loss is queued, not read, at the call: a bad label raises when the loss is read
            ("cross_entropy label 7 of 3 classes", lambda: F.cross_entropy(t(2, 3), labels(0, 7)).item()),
            ("cross_entropy label -5", lambda: F.cross_entropy(t(2, 3), labels(0, -5)).item()),
            ("cross_entropy 3 labels for 2 rows", lambda: F.cross_entropy(t(2, 3), labels(0, 1, 2))),
            ("cross_entropy float labels", lambda: F.cross_entropy(t(2, 3), t(2))),
            ("cross_entropy reduction 'avg'", lambda: F.cross_entropy(t(2, 3), labels(0, 1), reduction="avg")),
            ("nll_loss 1-d input", lambda: F.nll_loss(t(3), labels(0)))]
    for name, fn in soft:
        add(name, fn, "hetero/ops/softmax.py")
    add("dropout p 1.5", lambda: F.dropout(t(4), 1.5), "hetero/ops/dropout.py")
    add("dropout p -0.1", lambda: F.dropout(t(4), -0.1), "hetero/ops/dropout.py")
    add("leaky_relu slope 'x'", lambda: F.leaky_relu(t(4), "x"), "hetero/ops/activation.py")
    add("batch_norm running stats of 3 for 2 channels",
        lambda: F.batch_norm(t(2, 2, 3, 3), t(3), t(3), training=False), "hetero/ops/batch_norm.py")
    add("local_response_norm size 0", lambda: F.local_response_norm(t(1, 3, 4, 4), 0),
        "hetero/ops/local_response_norm.py")

    def backward_twice():
        x = hetero.tensor(np.ones(3, np.float32), device=dev, requires_grad=True)
        y = F.mul(x, x)
        loss = F.reshape(F.matmul(F.reshape(y, (1, 3)), F.reshape(x, (3, 1))), ())
        loss.backward()
        loss.backward()
    add("backward twice", backward_twice, AG)

    def backward_non_scalar():
        x = hetero.tensor(np.ones(3, np.float32), device=dev, requires_grad=True)
        F.mul(x, x).backward()
    add("backward of a non-scalar", backward_non_scalar, AG)

    def backward_no_grad():
        t(3).backward()
    add("backward without requires_grad", backward_no_grad, AG)

    add("Linear(0, 3)", lambda: nn.Linear(0, 3, device=dev), "hetero/nn/linear.py")
    add("Linear(-1, 3)", lambda: nn.Linear(-1, 3, device=dev), "hetero/nn/linear.py")
    add("Conv2d(1, 2, 0)", lambda: nn.Conv2d(1, 2, 0, device=dev), "hetero/nn/conv.py")
    add("Conv2d groups 3 of 4", lambda: nn.Conv2d(4, 6, 3, groups=3, device=dev), "hetero/nn/conv.py")
    add("Dropout(2)", lambda: nn.Dropout(2), "hetero/nn/dropout.py")
    add("Linear forward of wrong width", lambda: nn.Linear(3, 2, device=dev)(t(2, 4)), "hetero/nn/linear.py")

    def bad_state(change):
        def run():
            m = nn.Linear(3, 2, device=dev)
            before = m.weight.numpy().copy()
            state = {k: v.numpy() for k, v in m.state_dict().items()}
            try:
                m.load_state_dict(change(state))
            except BaseException:
                if not np.array_equal(before, m.weight.numpy()):
                    raise _PartialRestore("a failed load_state_dict changed the weights") from None
                raise
        return run
    for name, change in (("wrong shape", lambda s: {**s, "weight": np.zeros((3, 3), np.float32)}),
                         ("missing key", lambda s: {"weight": s["weight"]}),
                         ("extra key", lambda s: {**s, "x": np.zeros(2, np.float32)}),
                         ("string value", lambda s: {**s, "bias": "abc"}),
                         ("not a dict", lambda s: [1, 2])):
        add(f"load_state_dict {name}", bad_state(change), "hetero/nn/module.py")
    params = lambda: nn.Linear(3, 2, device=dev).parameters()  # noqa: E731
    for name, fn in (("SGD lr -1", lambda: optim.SGD(params(), lr=-1)),
                     ("SGD lr nan", lambda: optim.SGD(params(), lr=float("nan"))),
                     ("SGD momentum -1", lambda: optim.SGD(params(), lr=0.1, momentum=-1)),
                     ("SGD no parameters", lambda: optim.SGD([], lr=0.1)),
                     ("Adam betas (2, 0.9)", lambda: optim.Adam(params(), betas=(2, 0.9))),
                     ("Adam eps -1", lambda: optim.Adam(params(), eps=-1)),
                     ("CosineAnnealingLR T_max 0", lambda: optim.CosineAnnealingLR(optim.SGD(params(), lr=0.1), 0)),
                     ("StepLR step_size 0", lambda: optim.StepLR(optim.SGD(params(), lr=0.1), 0)),
                     ("optimizer load_state_dict garbage", lambda: optim.SGD(params(), lr=0.1).load_state_dict(
                         {"state": {}, "param_groups": "x"}))):
        add(name, fn, "hetero/optim.py")
    from hetero.data import ArrayDataset, DataLoader
    ds = ArrayDataset(np.zeros((4, 28, 28), np.uint8), np.zeros(4, np.int64))
    for name, fn in (("DataLoader batch 0", lambda: DataLoader(ds, 0)),
                     ("DataLoader batch -1", lambda: DataLoader(ds, -1)),
                     ("DataLoader seed 'x'", lambda: DataLoader(ds, 2, seed="x")),
                     ("ArrayDataset 2-d images", lambda: ArrayDataset(np.zeros((4, 28)), np.zeros(4, np.int64))),
                     ("ArrayDataset labels -1", lambda: ArrayDataset(np.zeros((2, 2, 2), np.uint8),
                                                                     np.array([0, -1]))),
                     ("ArrayDataset 3 images 2 labels", lambda: ArrayDataset(np.zeros((3, 2, 2), np.uint8),
                                                                             np.zeros(2, np.int64)))):
        add(name, fn, "hetero/data/loader.py, hetero/data/datasets.py")
    from hetero import recipe as R
    for name, kw in (("lr -1", {"lr": -1}), ("model x", {"model": "x"}), ("epochs 0", {"epochs": 0}),
                     ("seed 2**64", {"seed": 2**64}), ("model_kwargs huge", {"model_kwargs": {"num_classes": 10**9}}),
                     ("batch True", {"batch_size": True}), ("devices 3", {"devices": 3})):
        add(f"TrainingRecipe {name}", lambda kw=kw: R.TrainingRecipe(**kw), "hetero/recipe.py")
    for name, arg in (("None", None), ("a list", [1]), ("version 2", {"version": 2}), ("no version", {})):
        add(f"TrainingRecipe.from_dict {name}", lambda a=arg: R.TrainingRecipe.from_dict(a), "hetero/recipe.py")
    add("get_dataset('cifar')", lambda: hetero.data.get_dataset("cifar"), "hetero/data/sources.py")
    add("models.get_model('x')", lambda: hetero.models.get_model("x"), "hetero/models/")
    add("hetero.load(missing)", lambda: hetero.load("/nonexistent/x.safetensors"), "hetero/checkpoint.py")
    add("hetero.save object dtype", lambda: hetero.save({"w": np.array([object()])}, "/tmp/hostile-x.st"),
        "hetero/checkpoint.py")
    add("hetero.save to a missing folder", lambda: hetero.save({"w": np.zeros(2)}, "/nonexistent/x.st"),
        "hetero/checkpoint.py, hetero/atomic.py")


# ----- kill -9 during checkpoint writes -----

_WRITER = r"""
import sys
import hetero
from hetero.checkpoint import save_training
path = sys.argv[1]
model = hetero.models.get_model("alexnet_mnist", device=hetero.device(), num_classes=10)
state = {k: v.numpy() for k, v in model.state_dict().items()}  # the real layout and size (45 MB)
first = next(iter(state))
n = 0
print("ready", flush=True)
while True:
    n += 1
    state[first].reshape(-1)[0] = n  # each version's first value is its number
    save_training(path, state, None, 0, n, extra={"n": n, "key": first})
"""


def kill9(work: Path, tries: int) -> dict:
    """Kill a process writing alexnet_mnist checkpoints at random moments; the file must load every time."""
    path = work / "kill9.safetensors"
    lost, versions, left_behind = 0, [], set()
    rng = random.Random(0)
    for _ in range(tries):
        p = subprocess.Popen([sys.executable, "-c", _WRITER, str(path)], cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        p.stdout.readline()
        time.sleep(rng.uniform(0.3, 2.5))
        p.kill()
        p.wait()
        if not path.exists():
            if versions:  # an earlier try left a file: losing it is data lost
                lost += 1
            continue
        try:
            ck = load_training(path)
            n = int(ck["extra"]["n"])
            if ck["model"][ck["extra"]["key"]].reshape(-1)[0] != n:  # the weights of another version
                lost += 1
            versions.append(n)
        except Exception:  # noqa: BLE001 - any failure to load is data lost
            lost += 1
        left = {f.name for f in work.iterdir() if f.name.startswith(".kill9") and f.name.endswith(".tmp")}
        left_behind |= left
    # the next save removes the temporaries the killed writers left (hetero/atomic.py)
    if path.exists():
        ck = load_training(path)
        save_training(path, ck["model"], None, 0, int(ck["extra"]["n"]), extra=ck["extra"])
    after = sum(1 for f in work.iterdir() if f.name.startswith(".kill9") and f.name.endswith(".tmp"))
    return {"tries": tries, "data_lost": lost, "tmp_left_by_kills": len(left_behind),
            "tmp_after_next_save": after, "versions_seen": len(set(versions))}


# ----- main -----


def build(work: Path) -> Catalogue:
    data = tiny_mnist(work / "tiny")
    good = work / "good.safetensors"
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        rc = cli_main(["train", "--data", str(data), "--batch-size", "16", "--epochs", "2", "--max-steps", "4",
                       "--checkpoint", str(good)])
    if rc != 0:
        raise SystemExit(f"hostile_inputs: could not train the good checkpoint (exit {rc})")
    cat = Catalogue()
    cli_cases(cat, work, data, good)
    checkpoint_cases(cat, work, data, good)
    data_cases(cat, work, data)
    api_cases(cat)
    return cat


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="every 4th case and 5 kill -9 tries")
    p.add_argument("--kill-tries", type=int, default=None, help="kill -9 tries (default 25, 5 with --quick)")
    p.add_argument("--json", metavar="FILE", help="write every outcome as JSON")
    p.add_argument("--only", metavar="AREA", help="only the cases whose area contains this text")
    args = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="hetero-hostile-"))
    old_cwd = os.getcwd()
    os.chdir(work)  # default checkpoints land here
    os.environ.pop("HETERO_DATA_DIR", None)
    try:
        cat = build(work)
        cases = cat.cases[::4] if args.quick else cat.cases
        if args.only:
            cases = [c for c in cases if args.only in c.area]
        outcomes = []
        t0 = time.perf_counter()
        for case in cases:
            outcomes.append(classify(case))
        kills = kill9(work, args.kill_tries if args.kill_tries is not None else (5 if args.quick else 25))
    finally:
        os.chdir(old_cwd)
    counts = {v: sum(o.verdict == v for o in outcomes) for v in (CLEAR, TRACEBACK, SILENT, TIMEOUT)}
    print(f"bad inputs tried: {len(outcomes)}  clear errors: {counts[CLEAR]}  raw tracebacks: {counts[TRACEBACK]}  "
          f"silent acceptances: {counts[SILENT]}  timeouts: {counts[TIMEOUT]}  ({time.perf_counter() - t0:.0f} s)")
    print(f"kill -9 during checkpoint writes: {kills['tries']} tries, data lost {kills['data_lost']}, "
          f"temporaries left by the kills {kills['tmp_left_by_kills']}, left after the next save "
          f"{kills['tmp_after_next_save']}, {kills['versions_seen']} distinct versions read back")
    areas = sorted({o.case.area for o in outcomes})
    for area in areas:
        mine = [o for o in outcomes if o.case.area == area]
        print(f"  {area:28s} {len(mine):4d} tried, {sum(o.verdict == CLEAR for o in mine):4d} clear")
    bad = [o for o in outcomes if o.verdict != CLEAR]
    if bad:
        print("\nnot a clear error:")
        for o in bad:
            print(f"  [{o.verdict}] {o.case.area}: {o.case.name} -> {o.detail}  ({o.case.owner})")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "counts": {"tried": len(outcomes), **counts}, "kill9": kills,
            "outcomes": [{"area": o.case.area, "name": o.case.name, "verdict": o.verdict, "detail": o.detail,
                          "owner": o.case.owner, "seconds": round(o.seconds, 3)} for o in outcomes]}, indent=1))
    return 1 if bad or kills["data_lost"] or kills["tmp_after_next_save"] else 0


if __name__ == "__main__":
    sys.exit(main())
