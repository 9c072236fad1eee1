"""Shared by the fuzz targets: where hetero lives, how a target's seeds are made, what counts as a finding."""

from __future__ import annotations

import os
import sys
import tempfile
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HETERO_DIR = str(ROOT / "hetero")
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("HETERO_CACHE_DIR", str(Path(tempfile.gettempdir()) / "hetero-fuzz-cache"))


def deliberate(exc: BaseException, types: tuple[type[BaseException], ...]) -> bool:
    """Whether `exc` is one of the documented error types, raised on purpose by a `raise` in hetero's code."""
    if not isinstance(exc, types):
        return False
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return True
    last = frames[-1]
    return last.filename.startswith(HETERO_DIR) and (last.line or "").lstrip().startswith("raise")


def scratch_file(suffix: str) -> Path:
    """One file per process for the inputs (in /dev/shm when there is one: the fuzzer writes it every run)."""
    base = "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()
    fd, name = tempfile.mkstemp(suffix=suffix, dir=base, prefix="hetero-fuzz-")
    os.close(fd)
    return Path(name)


def corpus_args(argv: list[str], seeds: dict[str, bytes]) -> list[str]:
    """argv with a corpus folder holding `seeds` appended when none was given (a libFuzzer positional)."""
    if any(not a.startswith("-") for a in argv[1:]):
        return argv
    folder = Path(tempfile.mkdtemp(prefix="hetero-fuzz-corpus-"))
    for name, data in seeds.items():
        (folder / name).write_bytes(data)
    return [*argv, str(folder)]
