"""The run history file: round trip, incremental and thinned curves, atomic writes, crashes, refused files."""

from __future__ import annotations

import gc
import math
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap

import pytest
from hetero.gui import run_store as S
from hetero.gui.history import RunHistory
from hetero.gui.run_store import RunStore, RunStoreError

from hetero.recipe import TrainingRecipe
from hetero.train.events import DoneEvent, EpochEndEvent, StepEvent

RECIPE = TrainingRecipe(model="lenet5", batch_size=32, optimizer="sgd", lr=0.05, epochs=3, seed=7).to_dict()


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, t: float = 1_000_000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


def steps(history: RunHistory, first: int, last: int, epoch: int = 0) -> None:
    """Feed steps first..last (loss 1/step, accuracy step/1000, images/s 100*step, 0.5 s a step)."""
    for s in range(first, last + 1):
        history.add(StepEvent(s, epoch, s - 1, 100, 1.0 / s, s / 1000.0, 100.0 * s, 0.5 * s))


def epoch_end(history: RunHistory, epoch: int, test_accuracy: float) -> None:
    history.add(EpochEndEvent(epoch, 0.5 - epoch / 10, 0.8 + epoch / 100, 0.4, test_accuracy, 12.5))


def count(path, table: str, run_id: int) -> int:
    with sqlite3.connect(path) as c:
        return c.execute(f"SELECT count(*) FROM {table} WHERE run_id = ?", (run_id,)).fetchone()[0]


def test_where_the_history_lives():
    home = os.path.expanduser("~")
    assert S.default_path({"HETERO_RUNS_DB": "/x/r.db", "XDG_DATA_HOME": "/d"}) == "/x/r.db"
    assert S.default_path({"XDG_DATA_HOME": "/d"}, "linux") == "/d/hetero/runs.sqlite3"
    assert S.default_path({}, "linux") == os.path.join(home, ".local", "share", "hetero", "runs.sqlite3")
    assert S.default_path({}, "darwin") == os.path.join(home, "Library", "Application Support", "hetero",
                                                        "runs.sqlite3")
    assert S.default_path({"LOCALAPPDATA": "C:/Users/u/AppData/Local"}, "win32") == os.path.join(
        "C:/Users/u/AppData/Local", "hetero", "runs.sqlite3")
    # --demo / --screenshot keep nothing unless a file is named
    assert S.session_path(True, {"XDG_DATA_HOME": "/d"}) == ":memory:"
    assert S.session_path(True, {"HETERO_RUNS_DB": "/x/r.db"}) == "/x/r.db"
    assert S.session_path(False, {"XDG_DATA_HOME": "/d"}) == "/d/hetero/runs.sqlite3"


def test_a_run_reads_back_whole(tmp_path):
    path = tmp_path / "sub" / "runs.sqlite3"  # the folder is made
    clock = Clock()
    store = RunStore(str(path), clock)
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    rec = store.start_run(RECIPE, "0:0", "Intel CPU (PoCL)", "ck.safetensors")
    h = RunHistory("0:0", "cpu", "#000000", 3)
    steps(h, 1, 40)
    epoch_end(h, 0, 0.91)
    clock.t += 30
    rec.write(h)
    steps(h, 41, 80, epoch=1)
    h.add(StepEvent(81, 1, 80, 100, float("nan"), 0.5, 10.0, 40.5))  # a diverged step: NaN survives the trip
    epoch_end(h, 1, 0.95)
    h.add(DoneEvent("finished", "", 81, 1, 40.5))
    clock.t += 60
    rec.write(h)
    store.close()

    again = RunStore(str(path), clock)
    (run,) = again.runs()
    assert (run.status, run.devices, run.device_label, run.resumed_from) == ("finished", "0:0", "Intel CPU (PoCL)",
                                                                             "ck.safetensors")
    assert run.recipe == RECIPE and run.get("batch_size") == 32 and run.get("lr") == 0.05
    assert (run.steps, run.epochs_done, run.best_test_accuracy, run.best_epoch) == (81, 2, 0.95, 2)
    assert run.duration == 90.0 and run.ended == run.started + 90
    curves = again.curves(run.id)
    assert curves["steps"] == list(range(1, 82))
    assert curves["loss"][:80] == [1.0 / s for s in range(1, 81)] and math.isnan(curves["loss"][80])
    assert curves["images_per_s"][:3] == [100.0, 200.0, 300.0] and curves["seconds"][-1] == 40.5
    epochs = again.epochs(run.id)
    assert [(e["epoch"], e["test_accuracy"], e["step"]) for e in epochs] == [(0, 0.91, 40), (1, 0.95, 81)]
    back = again.history(run, "#d62728")
    assert back.steps == h.steps and back.best() == (2, 0.95) and back.state == "finished"
    assert back.test_points("steps")[0].tolist() == [40.0, 81.0]
    assert back.short_label == f"#{run.id} lenet5"


def test_curves_are_thinned_as_they_grow_and_keep_the_ends(tmp_path):
    store = RunStore(str(tmp_path / "r.sqlite3"))
    rec = S.RunRecorder(store, store.start_run(RECIPE, "0:0", "cpu").run_id, most=10)
    h = RunHistory("0:0", "cpu", "#000000", 3)
    last = 0
    for chunk in (3, 4, 7, 9, 30, 47):
        steps(h, last + 1, last + chunk)
        last += chunk
        rec.write(h)
        stored = store.curves(rec.run_id)["steps"]
        assert len(stored) <= 10 and stored[0] == 1 and stored[-1] == last
        assert stored == sorted(set(stored))
    # 100 steps in at most 10 points: every 16th index and the last
    assert store.curves(rec.run_id)["steps"] == [1, 17, 33, 49, 65, 81, 97, 100]
    assert rec.stride == 16


def test_a_failed_write_changes_nothing(tmp_path):
    path = str(tmp_path / "r.sqlite3")
    store = RunStore(path)
    rec = store.start_run(RECIPE, "0:0", "cpu")
    h = RunHistory("0:0", "cpu", "#000000", 3)
    steps(h, 1, 10)
    rec.write(h)
    steps(h, 11, 20)
    # the run's row is written last: failing there, the write has already added its points
    store.conn.execute("CREATE TEMP TRIGGER fail BEFORE UPDATE ON runs WHEN NEW.steps > 10 "
                       "BEGIN SELECT RAISE(ABORT, 'disk trouble'); END")
    with pytest.raises(RunStoreError, match="could not write to the run history .*disk trouble"):
        rec.write(h)
    reader = RunStore(path)
    assert reader.curves(rec.run_id)["steps"] == list(range(1, 11)) and reader.runs()[0].steps == 10
    store.conn.execute("DROP TRIGGER fail")
    rec.write(h)  # the recorder was left where the file is: nothing missing, nothing twice
    assert reader.curves(rec.run_id)["steps"] == list(range(1, 21))


CHILD = textwrap.dedent("""
    import sys
    from hetero.gui.history import RunHistory
    from hetero.gui.run_store import RunStore
    from hetero.train.events import StepEvent, EpochEndEvent
    store = RunStore(sys.argv[1])
    rec = store.start_run({"model": "lenet5", "epochs": 2}, "0:0", "cpu")
    h = RunHistory("0:0", "cpu", "#000000", 2)
    for s in range(1, 51):
        h.add(StepEvent(s, 0, s - 1, 100, 1.0 / s, 0.5, 100.0, 0.1 * s))
    h.add(EpochEndEvent(0, 0.3, 0.9, 0.25, 0.93, 5.0))
    rec.write(h)
    # a write that the kill cuts short: begun, never committed
    store.conn.execute("BEGIN IMMEDIATE")
    store.conn.executemany("INSERT INTO points VALUES (?, ?, ?, 0, 0, 0, 0)",
                           [(rec.run_id, i, i + 1) for i in range(50, 5000)])
    store.conn.execute("UPDATE runs SET steps = 5000")
    print("written", flush=True)
    sys.stdin.readline()
""")


def test_a_killed_writer_leaves_its_committed_curves_and_an_interrupted_run(tmp_path):
    path = str(tmp_path / "r.sqlite3")
    child = subprocess.Popen([sys.executable, "-c", CHILD, path], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True)
    try:
        assert child.stdout.readline().strip() == "written"
        (alive,) = RunStore(path).runs()  # its writer is still there
        assert alive.status == "running" and alive.steps == 50
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(30)
        child.stdin.close()
        child.stdout.close()
    store = RunStore(path)
    (run,) = store.runs()
    assert run.status == "interrupted" and run.steps == 50 and run.best_test_accuracy == 0.93
    curves = store.curves(run.id)
    assert curves["steps"] == list(range(1, 51)) and curves["loss"][-1] == 1.0 / 50
    assert [e["test_accuracy"] for e in store.epochs(run.id)] == [0.93]


def test_a_store_dropped_without_closing_leaves_an_interrupted_run(tmp_path):
    path = str(tmp_path / "r.sqlite3")
    store = RunStore(path)
    rec = store.start_run(RECIPE, "0:0", "cpu")
    h = RunHistory("0:0", "cpu", "#000000", 3)
    steps(h, 1, 5)
    rec.write(h)
    reader = RunStore(path)
    assert reader.runs()[0].status == "running"  # its writer is open in this process
    del store, rec
    gc.collect()
    (run,) = reader.runs()
    assert run.status == "interrupted" and reader.curves(run.id)["steps"] == [1, 2, 3, 4, 5]


def test_running_reads_as_interrupted_only_once_its_writer_is_gone_or_silent():
    now = 10_000.0
    assert S.read_status("running", True, now - 5 * S.STALE_SECONDS, now) == "running"
    assert S.read_status("running", False, now, now) == "interrupted"
    # a writer on another machine: known only by its last write
    assert S.read_status("running", None, now - S.STALE_SECONDS + 1, now) == "running"
    assert S.read_status("running", None, now - S.STALE_SECONDS - 1, now) == "interrupted"
    assert S.read_status("finished", False, 0.0, now) == "finished"
    assert [S.store_status(s) for s in ("starting", "running", "paused", "finished", "stopped", "failed")] == [
        "running", "running", "running", "finished", "stopped", "failed"]


def test_a_damaged_or_foreign_file_is_refused_and_left_alone(tmp_path):
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"this is no database, " * 300)
    with pytest.raises(RunStoreError, match="damaged or not a run history.*move it away.*HETERO_RUNS_DB"):
        RunStore(str(junk))
    assert junk.read_bytes() == b"this is no database, " * 300

    other = tmp_path / "other.sqlite3"
    with sqlite3.connect(other) as c:
        c.execute("CREATE TABLE notes (text TEXT)")
    with pytest.raises(RunStoreError, match="an SQLite file but not a hetero run history"):
        RunStore(str(other))

    cut = tmp_path / "cut.sqlite3"
    store = RunStore(str(cut))
    for _ in range(20):
        rec = store.start_run(RECIPE, "0:0", "cpu")
        h = RunHistory("0:0", "cpu", "#000000", 3)
        steps(h, 1, 300)
        rec.write(h, "finished")
    store.close()  # a clean close folds the log back into the file
    size = cut.stat().st_size
    whole = cut.read_bytes()
    with open(cut, "r+b") as f:  # two pages of curves overwritten: the file's header and tables still read
        f.seek(size // 2)
        f.write(b"\xff" * 8192)
    with sqlite3.connect(cut) as c:
        assert c.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] > 0
    with pytest.raises(RunStoreError, match="is damaged or not a run history.*malformed"):
        RunStore(str(cut))
    cut.write_bytes(whole[: size // 2])  # cut short
    with pytest.raises(RunStoreError, match="is damaged or not a run history"):
        RunStore(str(cut))


def test_a_newer_or_unknown_schema_is_refused(tmp_path):
    path = tmp_path / "r.sqlite3"
    RunStore(str(path)).close()
    with sqlite3.connect(path) as c:
        assert c.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (str(S.SCHEMA_VERSION),)
        c.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(S.SCHEMA_VERSION + 1),))
    with pytest.raises(RunStoreError, match=f"newer hetero.*version {S.SCHEMA_VERSION + 1}.*upgrade hetero"):
        RunStore(str(path))
    with sqlite3.connect(path) as c:
        c.execute("DELETE FROM meta WHERE key = 'schema_version'")
    with pytest.raises(RunStoreError, match="says no schema version"):
        RunStore(str(path))


def test_delete_takes_the_curves_along(tmp_path):
    path = tmp_path / "r.sqlite3"
    store = RunStore(str(path))
    recs = [store.start_run(RECIPE, f"0:{k}", "cpu") for k in range(3)]
    for rec in recs:
        h = RunHistory("0:0", "cpu", "#000000", 3)
        steps(h, 1, 12)
        epoch_end(h, 0, 0.5)
        rec.write(h, "stopped")
    assert store.delete([recs[1].run_id, 999]) == 1
    assert sorted(r.id for r in store.runs()) == [recs[0].run_id, recs[2].run_id]
    assert count(path, "points", recs[1].run_id) == 0 and count(path, "epochs", recs[1].run_id) == 0
    assert count(path, "points", recs[0].run_id) == 12
