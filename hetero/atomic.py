"""Durable atomic file writes: a crash leaves the old file or the new one, never half of one."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

# A temporary is named .NAME.<pid>-<host>.<random>.tmp so that the next save can tell whether its writer
# is still alive; the host tag keeps a PID from another machine sharing the folder from being judged here.
_HOST = hashlib.sha1(socket.gethostname().encode(), usedforsecurity=False).hexdigest()[:8]
# mkstemp's random part: 8 characters of [a-z0-9_]
_TEMP_TAIL = re.compile(r"(?:(?P<pid>\d+)-(?P<host>[0-9a-f]{8})\.)?[a-z0-9_]{8}")
# Temporaries whose writer cannot be checked (another host, a name without a PID) are removed only
# when nothing has written to them for this long: no save stalls between writes for that long.
STALE_AFTER_S = 3600.0


@contextlib.contextmanager
def atomic_write(path: Path) -> Iterator[BinaryIO]:
    """Yield a temporary file in path's folder; on a clean exit it is flushed, fsynced, made 0644 and
    renamed over path, then the folder is fsynced. On an exception the temporary file is removed."""
    folder = path.parent
    remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.{os.getpid()}-{_HOST}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; these are ordinary files
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(folder)


def remove_stale_temporaries(path: Path, now: float | None = None) -> list[Path]:
    """Remove the temporaries that killed atomic_writes of path left behind, and return them: names of our
    own pattern for path whose writer (a PID on this host) has exited or that are untouched for STALE_AFTER_S."""
    # errors (a folder we may not list, a file gone meanwhile) only cost the clean-up, never the save
    prefix, now = f".{path.name}.", time.time() if now is None else now
    removed = []
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return removed
    for entry in entries:
        name = entry.name
        if not (name.startswith(prefix) and name.endswith(".tmp")):
            continue
        m = _TEMP_TAIL.fullmatch(name[len(prefix):-len(".tmp")])
        if m is None:
            continue  # not ours: e.g. the temporary of another file whose name starts like this one's
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        writer_gone = m["pid"] is not None and m["host"] == _HOST and not _alive(int(m["pid"]))
        if writer_gone or now - st.st_mtime > STALE_AFTER_S:
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
    return removed


def _alive(pid: int) -> bool:
    """Whether a process with this PID exists (a PID reused since only delays the clean-up to the age rule)."""
    if pid == os.getpid():
        return True
    if os.name == "nt":  # os.kill would terminate the process there: leave it to the age rule
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # another user's process (or a PID we cannot ask about): assume it is writing
    return True


def _fsync_dir(folder: Path) -> None:
    """Make the rename durable; folders cannot be opened for fsync on some systems (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_cache(path: Path, data: bytes) -> bool:
    """atomic_write for caches: creates the folder, and an OSError (a read-only or full disk) only costs the
    entry, so it is swallowed. Returns whether the entry was written; empty data writes nothing."""
    if not data:
        return False
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path) as f:
            f.write(data)
    except OSError:
        return False
    return True
