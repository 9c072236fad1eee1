"""The app's run history: every training run's recipe, curves and result in a small SQLite file that outlives
the window (and a crash).

No Qt: the Train view records through RunRecorder, the Runs view reads through RunStore, both from the GUI
thread. Every write is one transaction in WAL mode, so a reader (this app after a crash, or a second window)
sees the last committed state and never half of one.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
import sqlite3
import sys
import time
import uuid
import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from hetero.errors import HeteroError

from .history import MAX_SAVED_STEPS, SAVED_EPOCH, SAVED_SERIES, RunHistory

SCHEMA_VERSION = 1
DB_NAME = "runs.sqlite3"
# A run that says "running" but whose writer has not touched it for this long is read as interrupted (a writer
# on another machine, which this one cannot ask about); the app writes a running run every RECORD_SECONDS.
RECORD_SECONDS = 5.0
STALE_SECONDS = 120.0
STATUSES = ("running", "finished", "stopped", "failed", "interrupted")

_SCHEMA = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        started REAL NOT NULL, ended REAL, updated REAL NOT NULL,
        status TEXT NOT NULL, message TEXT NOT NULL DEFAULT '',
        devices TEXT NOT NULL, device_label TEXT NOT NULL,
        recipe TEXT NOT NULL, resumed_from TEXT,
        steps INTEGER NOT NULL DEFAULT 0, epochs_done INTEGER NOT NULL DEFAULT 0,
        best_test_accuracy REAL, best_epoch INTEGER,
        owner_host TEXT NOT NULL, owner_pid INTEGER NOT NULL, owner_token TEXT NOT NULL)""",
    """CREATE TABLE epochs (
        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE, epoch INTEGER NOT NULL,
        train_loss REAL, train_accuracy REAL, test_loss REAL, test_accuracy REAL, seconds REAL,
        step INTEGER NOT NULL, at REAL, PRIMARY KEY (run_id, epoch)) WITHOUT ROWID""",
    """CREATE TABLE points (
        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE, idx INTEGER NOT NULL,
        step INTEGER NOT NULL, seconds REAL, loss REAL, accuracy REAL, images_per_s REAL,
        PRIMARY KEY (run_id, idx)) WITHOUT ROWID""",
)
_HOST = socket.gethostname()
_LIVE: weakref.WeakValueDictionary[str, RunStore] = weakref.WeakValueDictionary()  # this process's open stores


class RunStoreError(HeteroError):
    """The run history file cannot be used (damaged, not ours, or from a newer hetero); says what to do."""


def default_path(environ: dict | None = None, platform: str | None = None) -> str:
    """$HETERO_RUNS_DB, else runs.sqlite3 in the user's data folder: $XDG_DATA_HOME/hetero (~/.local/share/hetero)
    on Linux, ~/Library/Application Support/hetero on macOS, %LOCALAPPDATA%\\hetero on Windows."""
    env = os.environ if environ is None else environ
    platform = sys.platform if platform is None else platform
    if env.get("HETERO_RUNS_DB"):
        return os.path.expanduser(env["HETERO_RUNS_DB"])
    home = os.path.expanduser("~")
    if platform == "win32":
        base = env.get("LOCALAPPDATA") or env.get("APPDATA") or os.path.join(home, "AppData", "Local")
    elif platform == "darwin":
        base = os.path.join(home, "Library", "Application Support")
    else:
        base = env.get("XDG_DATA_HOME") or os.path.join(home, ".local", "share")
    return os.path.join(base, "hetero", DB_NAME)


def session_path(demo: bool, environ: dict | None = None) -> str:
    """Where this session keeps its history: --demo / --screenshot (and tests) keep it in memory unless
    $HETERO_RUNS_DB names a file, so they never write to the user's history."""
    env = os.environ if environ is None else environ
    if demo and not env.get("HETERO_RUNS_DB"):
        return ":memory:"
    return default_path(env)


def store_status(state: str) -> str:
    """The stored status of a RunHistory state: starting, running and paused runs are all "running"."""
    return state if state in ("finished", "stopped", "failed") else "running"


def read_status(status: str, owner_alive: bool | None, updated: float, now: float) -> str:
    """What a stored status means now: "running" whose writer has gone (or, unknown, fell silent for
    STALE_SECONDS) was cut short by a crash: "interrupted"."""
    if status != "running":
        return status
    if owner_alive is False or (owner_alive is None and now - updated > STALE_SECONDS):
        return "interrupted"
    return status


def _owner_alive(host: str, pid: int, token: str) -> bool | None:
    """Whether the store that wrote a run is still open: known in this process and for other processes of this
    machine (None: another machine, or Windows, where os.kill would end the process)."""
    if host != _HOST or sys.platform == "win32":
        return None
    if pid == os.getpid():
        return token in _LIVE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process of that number
    except OSError:
        return None
    return True


def _float(v) -> float:
    return math.nan if v is None else float(v)  # SQLite stores NaN as NULL


def _stored(v) -> float | None:
    return None if v is None else float(v)


@dataclass
class StoredRun:
    """One run as the store holds it (its curves and epochs come from RunStore.curves / .epochs)."""

    id: int
    started: float
    ended: float | None
    updated: float
    status: str
    message: str
    devices: str
    device_label: str
    recipe: dict = field(repr=False)
    resumed_from: str | None
    steps: int
    epochs_done: int
    best_test_accuracy: float | None
    best_epoch: int | None

    @property
    def duration(self) -> float:
        """Seconds from Start to the end (or to the last write of a run still going or cut short)."""
        return max((self.ended if self.ended is not None else self.updated) - self.started, 0.0)

    def get(self, name: str, default: Any = None) -> Any:
        """A recipe field ("model", "batch_size", "lr", ...)."""
        return self.recipe.get(name, default)


class RunStore:
    """The run history file at `path` (":memory:" for a session that keeps nothing). RunStoreError when the file
    is damaged, not a run history, or written by a newer hetero; the file is then left as it is."""

    def __init__(self, path: str, clock: Callable[[], float] = time.time):
        self.path = path
        self.clock = clock
        self.token = uuid.uuid4().hex
        if path != ":memory:":
            folder = os.path.dirname(os.path.abspath(path))
            try:
                os.makedirs(folder, exist_ok=True)
            except OSError as e:
                raise RunStoreError(f"cannot create the folder of the run history {path}: {e.strerror or e}; "
                                    f"set HETERO_RUNS_DB to a file in a folder you can write") from e
        try:
            # autocommit: every write is an explicit BEGIN IMMEDIATE ... COMMIT (self._write)
            self.conn = sqlite3.connect(path, timeout=5.0, isolation_level=None)
        except sqlite3.Error as e:
            raise RunStoreError(f"cannot open the run history {path}: {e}; set HETERO_RUNS_DB to a file you can "
                                f"write") from e
        try:
            self._open()
        except sqlite3.DatabaseError as e:
            self.conn.close()
            raise RunStoreError(f"{path} is damaged or not a run history ({e}): move it away (the app then starts a "
                                f"new one) or set HETERO_RUNS_DB to another file") from e
        except RunStoreError:
            self.conn.close()
            raise
        _LIVE[self.token] = self

    def _open(self) -> None:
        c = self.conn
        c.execute("PRAGMA foreign_keys = ON")
        tables = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        # WAL: a commit is one append to the log, and a reader after a crash sees every committed write;
        # NORMAL sync keeps that against a crash of the app (only a power cut may lose the last seconds)
        c.execute("PRAGMA journal_mode = WAL")
        c.execute("PRAGMA synchronous = NORMAL")
        if not tables:
            with self._write():
                for statement in _SCHEMA:
                    c.execute(statement)
                c.execute("INSERT INTO meta VALUES ('schema_version', ?), ('app', 'hetero')", (str(SCHEMA_VERSION),))
            return
        if "meta" not in tables:
            raise RunStoreError(f"{self.path} is an SQLite file but not a hetero run history: set HETERO_RUNS_DB "
                                f"to another file")
        row = c.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        version = row[0] if row else None
        if version is None or not str(version).isdigit():
            raise RunStoreError(f"{self.path} says no schema version (damaged?): move it away (the app then starts "
                                f"a new one) or set HETERO_RUNS_DB to another file")
        if int(version) > SCHEMA_VERSION:
            raise RunStoreError(f"{self.path} was written by a newer hetero (run history version {version}; this one "
                                f"reads version {SCHEMA_VERSION}): upgrade hetero, or set HETERO_RUNS_DB to another "
                                f"file")
        if int(version) < SCHEMA_VERSION or not {"runs", "epochs", "points"} <= tables:
            raise RunStoreError(f"{self.path} is a run history of unknown version {version} (damaged?): move it away "
                                f"or set HETERO_RUNS_DB to another file")
        # a damaged file is refused here, at the start, rather than mid-run
        problems = [r[0] for r in c.execute("PRAGMA quick_check(3)")]
        if problems != ["ok"]:
            lines = [line for p in problems for line in str(p).splitlines() if line and not line.startswith("***")]
            raise sqlite3.DatabaseError(f"database disk image is malformed: {lines[0] if lines else problems[0]}")

    def close(self) -> None:
        _LIVE.pop(self.token, None)
        self.conn.close()

    # ----- writing -----

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One transaction: all of it is committed, or (an exception, a crash) none of it."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def _guard(self, what: str, action: Callable[[], Any]) -> Any:
        try:
            return action()
        except sqlite3.Error as e:
            raise RunStoreError(f"could not {what} the run history {self.path}: {e}") from e

    def start_run(self, recipe: dict, devices: str, device_label: str, resumed_from: str | None = None
                  ) -> RunRecorder:
        """A new "running" run; its recorder writes the curves as they come."""
        now = self.clock()

        def insert() -> int:
            with self._write() as c:
                cur = c.execute(
                    "INSERT INTO runs (started, updated, status, devices, device_label, recipe, resumed_from, "
                    "owner_host, owner_pid, owner_token) VALUES (?, ?, 'running', ?, ?, ?, ?, ?, ?, ?)",
                    (now, now, devices, device_label, json.dumps(recipe), resumed_from, _HOST, os.getpid(),
                     self.token))
                return int(cur.lastrowid)

        return RunRecorder(self, self._guard("add a run to", insert))

    def delete(self, ids: Iterable[int]) -> int:
        """Delete runs with their curves; how many there were."""
        ids = [int(i) for i in ids]

        def delete() -> int:
            with self._write() as c:
                return sum(c.execute("DELETE FROM runs WHERE id = ?", (i,)).rowcount for i in ids)

        return self._guard("delete from", delete)

    # ----- reading -----

    def runs(self) -> list[StoredRun]:
        """Every run, newest first, with the status it has now (a crashed run's "running" reads "interrupted")."""
        def read() -> list[StoredRun]:
            rows = self.conn.execute(
                "SELECT id, started, ended, updated, status, message, devices, device_label, recipe, resumed_from, "
                "steps, epochs_done, best_test_accuracy, best_epoch, owner_host, owner_pid, owner_token FROM runs "
                "ORDER BY started DESC, id DESC").fetchall()
            return [self._run(row) for row in rows]

        return self._guard("read", read)

    def run(self, run_id: int) -> StoredRun | None:
        return next((r for r in self.runs() if r.id == run_id), None)

    def _run(self, row: tuple) -> StoredRun:
        (rid, started, ended, updated, status, message, devices, label, recipe, resumed, steps, epochs_done, best,
         best_epoch, host, pid, token) = row
        try:
            recipe = json.loads(recipe)
        except ValueError:
            recipe = {}
        if not isinstance(recipe, dict):
            recipe = {}
        status = read_status(status, _owner_alive(host, pid, token) if status == "running" else None, updated,
                             self.clock())
        return StoredRun(rid, started, ended, updated, status, message, devices, label, recipe, resumed, steps,
                         epochs_done, best, best_epoch)

    def curves(self, run_id: int) -> dict[str, list]:
        """The stored step series of a run ("steps", "seconds", "loss", "accuracy", "images_per_s")."""
        rows = self._guard("read", lambda: self.conn.execute(
            "SELECT step, seconds, loss, accuracy, images_per_s FROM points WHERE run_id = ? ORDER BY idx",
            (run_id,)).fetchall())
        out: dict[str, list] = {name: [] for name in SAVED_SERIES}
        for row in rows:
            out["steps"].append(int(row[0]))
            for name, v in zip(SAVED_SERIES[1:], row[1:]):
                out[name].append(_float(v))
        return out

    def epochs(self, run_id: int) -> list[dict]:
        """The figures of each finished epoch (SAVED_EPOCH; "epoch" counted from 0), in order."""
        rows = self._guard("read", lambda: self.conn.execute(
            f"SELECT {', '.join(SAVED_EPOCH)} FROM epochs WHERE run_id = ? ORDER BY epoch", (run_id,)).fetchall())
        return [dict(zip(SAVED_EPOCH, row)) for row in rows]

    def history(self, run: StoredRun, colour: str) -> RunHistory:
        """A stored run as a RunHistory, which TrainPlots draws (its legend: "#id model")."""
        from hetero.train.events import EpochEndEvent

        h = RunHistory(str(run.id), f"#{run.id} {run.get('model', '?')}", colour, run.get("epochs", 1) or 1)
        h.short_label = h.label
        for name, values in self.curves(run.id).items():
            setattr(h, name, values)
        for e in self.epochs(run.id):
            h.epoch_ends.append(EpochEndEvent(int(e["epoch"]), _float(e["train_loss"]), _float(e["train_accuracy"]),
                                              _stored(e["test_loss"]), _stored(e["test_accuracy"]),
                                              _float(e["seconds"])))
            h.epoch_x.append((int(e["step"]), _float(e["at"])))
        h.state = run.status
        return h


class RunRecorder:
    """Writes one run as it goes: each write() adds the steps and epochs since the last, in one transaction.

    The stored curve keeps every `stride`-th step and the latest one; the stride doubles (dropping every other
    stored point) whenever the run outgrows MAX_SAVED_STEPS points, so a write never rewrites the whole curve."""

    def __init__(self, store: RunStore, run_id: int, most: int = MAX_SAVED_STEPS):
        self.store = store
        self.run_id = run_id
        self.most = max(int(most), 2)
        self.stride = 1
        self.written = 0            # history indices looked at so far
        self.tail: int | None = None  # the latest point, stored off the stride (replaced by the next write)
        self.epochs_written = 0
        self.finished = False
        self.last_write = store.clock()

    def write(self, history: RunHistory, status: str | None = None, message: str = "") -> None:
        """Store what `history` has gained and its status (store_status of its state unless given); a status
        other than "running" also sets the end time."""
        status = status or store_status(history.state)
        now = self.store.clock()
        self.store._guard("write to", lambda: self._write(history, status, message, now))
        self.last_write = now
        self.finished = status != "running"

    def due(self) -> bool:
        """Whether RECORD_SECONDS have passed since the last write."""
        return self.store.clock() - self.last_write >= RECORD_SECONDS

    def _write(self, history: RunHistory, status: str, message: str, now: float) -> None:
        n = len(history.steps)
        stride = self.stride
        while (n + stride - 1) // stride + 1 > self.most:
            stride *= 2
        keep = [i for i in range(self.written, n) if i % stride == 0]
        tail = n - 1 if n and (n - 1) % stride else None
        if tail is not None:
            keep.append(tail)
        ends = list(zip(history.epoch_ends, history.epoch_x))
        best = history.best()
        rid = self.run_id
        with self.store._write() as c:
            if stride != self.stride:
                c.execute("DELETE FROM points WHERE run_id = ? AND idx % ? != 0", (rid, stride))
            elif self.tail is not None:
                c.execute("DELETE FROM points WHERE run_id = ? AND idx = ?", (rid, self.tail))
            c.executemany("INSERT OR REPLACE INTO points VALUES (?, ?, ?, ?, ?, ?, ?)",
                          [(rid, i, int(history.steps[i]), history.seconds[i], _stored(history.loss[i]),
                            _stored(history.accuracy[i]), _stored(history.images_per_s[i])) for i in keep])
            c.executemany("INSERT OR REPLACE INTO epochs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                          [(rid, int(ev.epoch), _stored(ev.train_loss), _stored(ev.train_accuracy),
                            _stored(ev.test_loss), _stored(ev.test_accuracy), _stored(ev.seconds), int(step),
                            _stored(at)) for ev, (step, at) in ends[self.epochs_written:]])
            c.execute("UPDATE runs SET updated = ?, status = ?, message = ?, steps = ?, epochs_done = ?, "
                      "best_test_accuracy = ?, best_epoch = ?, ended = ? WHERE id = ?",
                      (now, status, message, history.steps[-1] if history.steps else 0, len(ends),
                       best[1] if best else None, best[0] if best else None, None if status == "running" else now,
                       rid))
        # only once committed: a write that failed leaves the recorder where the file is
        self.stride, self.tail, self.written, self.epochs_written = stride, tail, n, len(ends)
