"""atomic_write cleans up the temporaries of killed writers, and only those."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from hetero import atomic
from hetero.atomic import atomic_write, remove_stale_temporaries


def _temps(folder, name):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(f".{name}.") and p.name.endswith(".tmp"))


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


@pytest.mark.skipif(os.name == "nt", reason="kill -9 and PID checks are POSIX")
def test_kill_9_during_a_save_leaves_nothing_after_the_next_save(tmp_path):
    target = tmp_path / "model.ckpt"
    code = ("import sys, time; from pathlib import Path; from hetero.atomic import atomic_write\n"
            "with atomic_write(Path(sys.argv[1])) as f:\n"
            "    f.write(b'x' * 1000); f.flush(); print('writing', flush=True); time.sleep(60)\n")
    for _ in range(3):
        p = subprocess.Popen([sys.executable, "-c", code, str(target)], stdout=subprocess.PIPE)
        assert p.stdout.readline().strip() == b"writing"
        p.send_signal(signal.SIGKILL)
        p.wait()
    assert len(_temps(tmp_path, target.name)) == 1  # each save removed the one its killed predecessor left
    with atomic_write(target) as f:
        f.write(b"new")
    assert target.read_bytes() == b"new"
    assert _temps(tmp_path, target.name) == []


def test_only_stale_temporaries_of_our_own_pattern_go(tmp_path):
    target = tmp_path / "w.bin"
    dead, host = _dead_pid(), atomic._HOST
    stale_pid = tmp_path / f".w.bin.{dead}-{host}.abcd1234.tmp"  # its writer has exited
    stale_old = tmp_path / ".w.bin.zyxw9876.tmp"  # no PID (the old naming), untouched for hours
    live = tmp_path / f".w.bin.{os.getpid()}-{host}.live0000.tmp"  # a concurrent writer in this process
    fresh_other_host = tmp_path / f".w.bin.{dead}-00000000.fresh000.tmp"  # PID of another machine
    fresh_old = tmp_path / ".w.bin.fresh111.tmp"  # no PID, written to just now
    other_file = tmp_path / f".w.binx.{dead}-{host}.abcd1234.tmp"  # another target's temporary
    not_ours = tmp_path / ".w.bin.notes.tmp"  # a name of someone else's making
    for p in (stale_pid, stale_old, live, fresh_other_host, fresh_old, other_file, not_ours):
        p.write_bytes(b"partial")
    hours_ago = time.time() - 3 * atomic.STALE_AFTER_S
    os.utime(stale_old, (hours_ago, hours_ago))
    os.utime(not_ours, (hours_ago, hours_ago))
    with atomic_write(target) as f:
        f.write(b"data")
    gone = {stale_pid, stale_old} if os.name != "nt" else {stale_old}
    for p in (stale_pid, stale_old, live, fresh_other_host, fresh_old, other_file, not_ours):
        assert p.exists() == (p not in gone), p.name
    assert target.read_bytes() == b"data"
    # the age rule also covers a writer on another host once it has stopped writing
    later = time.time() + 2 * atomic.STALE_AFTER_S
    removed = {p.name for p in remove_stale_temporaries(target, now=later)}
    assert removed == {fresh_other_host.name, fresh_old.name, live.name}


def test_a_concurrent_writer_keeps_its_temporary(tmp_path):
    target = tmp_path / "c.bin"
    with atomic_write(target) as outer:
        outer.write(b"outer")
        with atomic_write(target) as inner:  # a second save of the same file while the first is open
            inner.write(b"inner")
        assert len(_temps(tmp_path, target.name)) == 1  # the outer one's temporary survived
    assert target.read_bytes() == b"outer"
    assert _temps(tmp_path, target.name) == []
