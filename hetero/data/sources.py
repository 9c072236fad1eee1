"""Where a data set's IDX files are found, and their download from public mirrors (md5-checked, atomic).

Lookup order: an explicit root (and only there: a folder named on purpose that lacks the files is an error,
not a reason to train on other files), else $HETERO_DATA_DIR, ~/.cache/hetero/datasets, /usr/share/datasets,
the copy of MNIST a source checkout carries in data/mnist/ (md5-checked like a download), then a download into
~/.cache/hetero/datasets/<name>/. Inside a root the files may lie in root/<name>/raw/, root/<name>/
(torchvision's layout, e.g. root/MNIST/raw/) or directly in root.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import sys
import urllib.request
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..atomic import atomic_write
from ..errors import HeteroError

ENV_VAR = "HETERO_DATA_DIR"
SYSTEM_DIR = Path("/usr/share/datasets")  # where Debian's dataset packages put them
# A source checkout's data/ (beside hetero/): MNIST ships with the repository so that the first demo runs
# offline; an installed wheel has no such folder (its pyproject.toml marker is what tells a checkout apart).
_CHECKOUT = Path(__file__).resolve().parents[2]
BUNDLED_DIR = _CHECKOUT / "data" if (_CHECKOUT / "pyproject.toml").is_file() else None
TIMEOUT_S = 30.0
CHUNK = 1 << 16  # bytes read per progress report

Progress = Callable[[str, int, "int | None"], None]  # (file name, bytes done, total bytes or None)


class DatasetNotFoundError(HeteroError):
    """A data set's files are in none of the places looked at and could not be downloaded."""


@dataclass(frozen=True)
class Source:
    """One data set's identity: its name, the folder names it may live in, its mirrors and md5 sums."""

    name: str
    dirnames: tuple[str, ...]
    mirrors: tuple[str, ...]
    md5: dict[str, str]  # .gz file name -> md5 of that file (torchvision's values)
    # uncompressed file name -> md5 of the IDX data: the same data recompressed gives another .gz md5
    idx_md5: dict[str, str] = field(default_factory=dict)


SOURCES: dict[str, Source] = {
    "mnist": Source(
        "mnist", ("mnist", "MNIST"),
        ("https://ossci-datasets.s3.amazonaws.com/mnist/", "https://storage.googleapis.com/cvdf-datasets/mnist/"),
        {
            "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
            "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
            "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
        },
        {
            "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
            "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
            "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
            "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
        },
    ),
    "fashion-mnist": Source(
        "fashion-mnist", ("fashion-mnist", "FashionMNIST", "fashion_mnist"),
        ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        {
            "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
            "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
            "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
        },
    ),
}


def split_files(train: bool) -> tuple[str, str]:
    """The (images, labels) file names of a split, without the optional .gz."""
    prefix = "train" if train else "t10k"
    return f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"


def cache_dir() -> Path:
    """~/.cache/hetero/datasets: where downloads go (one folder per data set)."""
    return Path.home() / ".cache" / "hetero" / "datasets"


def _places(root: str | os.PathLike | None) -> list[tuple[str, Path | None, bool]]:
    """(label, base folder or None when unset, whether files may lie directly in it) in lookup order."""
    if root is not None:
        return [("root argument", Path(root).expanduser(), True)]
    env = os.environ.get(ENV_VAR)
    places: list[tuple[str, Path | None, bool]] = []
    places.append((f"${ENV_VAR}", Path(env).expanduser() if env else None, True))
    places.append(("cache", cache_dir(), False))
    places.append(("system", SYSTEM_DIR, False))
    places.append(("the checkout's data/", BUNDLED_DIR, False))
    return places


def _folders(source: Source, base: Path, direct: bool) -> list[Path]:
    """The folders of one place that may hold the files: base/<name>/raw, base/<name>, maybe base."""
    folders = [d for name in source.dirnames for d in (base / name / "raw", base / name)]
    return folders + [base] if direct else folders


def _find(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):  # the uncompressed file reads faster
        path = folder / name
        try:
            if path.is_file():
                return path
        except OSError as e:  # e.g. a folder without search permission
            raise DatasetNotFoundError(f"cannot look into {folder} ({e.strerror or e}); make it readable "
                                       "(chmod u+rx) or point --data / $HETERO_DATA_DIR elsewhere") from None
    return None


def _verified(source: Source, found: tuple[Path, Path]) -> tuple[Path, Path] | None:
    """The bundled files if each matches its md5 sum, of the .gz as a download must or of the IDX data in it
    (the well-known sums of the uncompressed files), else None."""
    for path in found:
        if _md5(path) == source.md5.get(path.name):
            continue
        stem = path.name[:-3] if path.name.endswith(".gz") else path.name
        expected = source.idx_md5.get(stem)
        if expected is None or _md5(path, unzip=path.name.endswith(".gz")) != expected:
            return None
    return found


_md5_memo: dict[tuple, str] = {}  # (path, size, mtime, unzip) -> md5: a run reads each file's sum once


def _md5(path: Path, unzip: bool = False) -> str:
    """The md5 of a file (of its decompressed content when unzip)."""
    try:
        st = path.stat()
    except OSError:
        return ""
    key = (str(path), st.st_size, st.st_mtime_ns, unzip)
    if key not in _md5_memo:
        digest = hashlib.md5(usedforsecurity=False)
        try:
            with (gzip.open(path, "rb") if unzip else open(path, "rb")) as f:
                for chunk in iter(lambda: f.read(CHUNK * 16), b""):
                    digest.update(chunk)
        except (OSError, EOFError, zlib.error):
            return ""
        _md5_memo[key] = digest.hexdigest()
    return _md5_memo[key]


def locate(name: str, train: bool = True, root: str | os.PathLike | None = None, download: bool = True,
           progress: Progress | None = None) -> tuple[Path, Path]:
    """The (images, labels) files of a split: found in the lookup order, else downloaded; else a
    DatasetNotFoundError listing every place looked at and how to provide the files."""
    source = get_source(name)
    stems = split_files(train)
    notes: list[str] = []
    for label, base, direct in _places(root):
        if base is None:
            notes.append(f"  {label}: not set")
            continue
        folders = _folders(source, base, direct)
        partial = []
        for folder in folders:
            found = [_find(folder, stem) for stem in stems]
            if found[0] is not None and found[1] is not None:
                if base != BUNDLED_DIR:
                    return found[0], found[1]
                if _verified(source, (found[0], found[1])):
                    return found[0], found[1]
                partial.append(f"\n    {folder} holds files whose md5 sums do not match; they were not used")
                continue
            for path, other in zip(found, reversed(stems)):
                if path is not None:
                    partial.append(f"\n    {path} is there but {other}[.gz] is missing")
        subs = ", ".join(str(f.relative_to(base)) for f in folders if f != base)
        where = f"{base} itself and {subs}" if direct else f"{base}: {subs}"
        notes.append(f"  {label}: {where}" + "".join(partial))
    if root is not None:
        notes.append("  (an explicit root is the only place looked at; without it hetero looks in "
                     f"${ENV_VAR}, the cache, {SYSTEM_DIR} and downloads)")
    elif download:
        try:
            return fetch_split(source, train, progress)
        except DownloadError as e:
            notes.append(f"  download into {cache_dir() / source.name} failed:\n{e}")
    else:
        notes.append("  download: not attempted (download=False)")
    files = " and ".join(f"{s}.gz" for s in stems)
    raise DatasetNotFoundError(
        f"{source.name} {'training' if train else 'test'} files ({files}) not found. Looked in:\n"
        + "\n".join(notes)
        + f"\nTo fix: download {files} (e.g. from {source.mirrors[0]}) into a folder DIR, then pass "
        f"--data DIR (root=DIR in Python) or set {ENV_VAR}=DIR; uncompressed files work too."
    )


def get_source(name: str) -> Source:
    """The Source of a data set name ("mnist" or "fashion-mnist"); ValueError for another name."""
    key = str(name).lower().replace("_", "-")
    key = {"fashionmnist": "fashion-mnist"}.get(key, key)
    if key not in SOURCES:
        raise ValueError(f"dataset name {name!r} is unknown; choose one of {', '.join(SOURCES)}")
    return SOURCES[key]


class DownloadError(HeteroError):
    """No mirror delivered a file with the right md5 sum; the message lists each attempt."""


def fetch_split(source: Source, train: bool, progress: Progress | None = None) -> tuple[Path, Path]:
    """Download a split's two .gz files into the cache (files already there are kept)."""
    dest = cache_dir() / source.name
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DownloadError(f"    cannot create {dest}: {e.strerror or e}") from e
    paths = []
    for stem in split_files(train):
        target = dest / (stem + ".gz")
        if not target.is_file():
            _fetch_any(source, target, progress)
        paths.append(target)
    return paths[0], paths[1]


def _fetch_any(source: Source, target: Path, progress: Progress | None) -> None:
    failures = []
    for mirror in source.mirrors:
        url = mirror.rstrip("/") + "/" + target.name
        try:
            fetch(url, target, source.md5[target.name], progress)
            return
        except (OSError, ValueError, HeteroError) as e:  # URLError and HTTPError are OSErrors
            failures.append(f"    {url}: {e}")
    raise DownloadError("\n".join(failures))


def fetch(url: str, target: Path, md5: str, progress: Progress | None = None) -> None:
    """Download url to target atomically (temp file, fsync, rename) if its md5 matches, else HeteroError."""
    report = print_progress if progress is None else progress
    digest = hashlib.md5(usedforsecurity=False)
    with atomic_write(target) as out, urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        done = 0
        report(target.name, done, total)
        while True:
            chunk = response.read(CHUNK)
            if not chunk:
                break
            out.write(chunk)
            digest.update(chunk)
            done += len(chunk)
            report(target.name, done, total)
        if digest.hexdigest() != md5:  # raised inside: the temporary file is removed, target untouched
            raise HeteroError(f"md5 {digest.hexdigest()} but {md5} was expected (a damaged or changed file); "
                              "it was not kept")


def print_progress(filename: str, done: int, total: int | None) -> None:
    """The default progress report: one updating line per file on stderr."""
    mib = done / 2**20
    if total:
        step = max(total // 50, 1)
        if done not in (0, total) and done // step == (done - CHUNK) // step:
            return  # about 50 updates per file
        line = f"downloading {filename}: {100 * done // total:3d}% ({mib:.1f} of {total / 2**20:.1f} MiB)"
    else:
        line = f"downloading {filename}: {mib:.1f} MiB"
    end = "\n" if total and done >= total else ""
    print(f"\r{line}", end=end, file=sys.stderr, flush=True)
