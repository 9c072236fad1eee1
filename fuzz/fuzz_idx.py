"""Coverage-guided fuzzing of the IDX reader (hetero.data.read_idx and the MNIST split checks) with atheris.

    python fuzz/fuzz_idx.py -max_total_time=60      # or -runs=N; a corpus folder may follow
Any exception other than IDXError (raised on purpose by hetero) is a finding: atheris prints it and the input,
and exits non-zero.
"""

from __future__ import annotations

import gzip
import sys

import atheris
import numpy as np
from _common import corpus_args, deliberate, scratch_file

with atheris.instrument_imports(include=["hetero.data.idx", "hetero.data.datasets"]):
    from hetero.data import idx
    from hetero.data.datasets import IMAGES_MAGIC, LABELS_MAGIC, load_idx_pair

RAW = scratch_file("")
GZ = scratch_file(".gz")
LABELS = scratch_file("")
EXPECTED = (idx.IDXError,)


def _idx(array: np.ndarray) -> bytes:
    code = {np.dtype(">u1"): 8, np.dtype(">i1"): 9, np.dtype(">i2"): 11, np.dtype(">i4"): 12,
            np.dtype(">f4"): 13, np.dtype(">f8"): 14}[array.dtype]
    return bytes([0, 0, code, array.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in array.shape) + \
        array.tobytes()


def seeds() -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 28, 28)).astype(">u1")
    labels = np.array([1, 7, 3], ">u1")
    return {"images": _idx(images), "labels": _idx(labels), "images.gz": gzip.compress(_idx(images), mtime=0),
            "int16": _idx(np.arange(6, dtype=">i2").reshape(2, 3)), "float": _idx(np.ones(4, ">f4")),
            "empty": _idx(np.zeros((0, 28, 28), ">u1"))}


def test_one_input(data: bytes) -> None:
    for path in (RAW, GZ):
        payload = gzip.compress(data, mtime=0) if path is GZ and data[:2] != b"\x1f\x8b" else data
        path.write_bytes(payload)
        for magic in (None, IMAGES_MAGIC, LABELS_MAGIC):
            try:
                out = idx.read_idx(path, magic)
            except Exception as e:
                if not deliberate(e, EXPECTED):
                    raise
                continue
            if not isinstance(out, np.ndarray) or not out.flags.writeable:
                raise AssertionError(f"read_idx returned {type(out).__name__}, not a writable ndarray")
    # the pair check of a split: these images with one label per image (or a wrong count)
    LABELS.write_bytes(_idx(np.zeros(max(1, len(data) % 5), ">u1")))
    try:
        load_idx_pair(RAW, LABELS, 10)
    except Exception as e:
        if not deliberate(e, EXPECTED):
            raise


def main() -> None:
    argv = corpus_args(sys.argv, seeds())
    atheris.Setup(argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
