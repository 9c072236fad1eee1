"""The IDX file format of MNIST and Fashion-MNIST: read (validated) and write, raw or gzip-compressed.

An IDX file is a 4-byte magic number (two zero bytes, a dtype code, the number of dimensions), one
big-endian uint32 per dimension, then the values, big-endian, in C order. MNIST's images are 0x0803
(uint8, 3 dimensions: N x 28 x 28) and its labels 0x0801 (uint8, N).
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

from ..errors import HeteroError

# IDX dtype codes -> big-endian numpy dtypes
DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {dt.newbyteorder("="): code for code, dt in DTYPES.items()}
_GZIP_MAGIC = b"\x1f\x8b"


class IDXError(HeteroError):
    """An IDX file is truncated, corrupt, of the wrong kind, or does not match its companion file."""


def _raw_bytes(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise IDXError(f"{path}: cannot read the file ({e.strerror or e})") from e
    if path.suffix == ".gz" or data[:2] == _GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as e:
            raise IDXError(f"{path}: corrupt gzip data ({e}); the file is damaged or was cut short, "
                           "download it again") from e
    return data


def read_idx(path: str | os.PathLike, magic: int | None = None) -> np.ndarray:
    """Read an IDX file (gzip-compressed when it is); `magic` (e.g. 0x0803) requires that kind of file.

    Raises IDXError naming the file on a bad magic number, dtype, dimension or payload length.
    """
    path = Path(path)
    data = _raw_bytes(path)
    if len(data) < 4:
        raise IDXError(f"{path}: {len(data)} bytes is too short for an IDX header (4-byte magic number)")
    found = int.from_bytes(data[:4], "big")
    if data[0] != 0 or data[1] != 0 or data[2] not in DTYPES or data[3] == 0:
        raise IDXError(f"{path}: not an IDX file (magic number 0x{found:08X}; IDX files start with two "
                       "zero bytes, a dtype code 0x08-0x0E and the number of dimensions)")
    if magic is not None and found != magic:
        raise IDXError(f"{path}: magic number 0x{found:08X} but 0x{magic:08X} was expected "
                       f"({_describe(magic)}); is this the right file?")
    dtype, ndim = DTYPES[data[2]], data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IDXError(f"{path}: truncated header: {ndim} dimensions need {header} bytes, the file has "
                       f"{len(data)}")
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "has trailing bytes"
        raise IDXError(f"{path}: {what}: shape {shape} of {dtype.newbyteorder('=').name} needs "
                       f"{expected} bytes, the file has {len(data)}; the file is damaged, get it again")
    values = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return values.astype(dtype.newbyteorder("="))  # a writable, native-endian copy


def _describe(magic: int) -> str:
    code, ndim = (magic >> 8) & 0xFF, magic & 0xFF
    name = DTYPES[code].newbyteorder("=").name if code in DTYPES else f"dtype 0x{code:02X}"
    return f"{name}, {ndim} dimension{'s' if ndim != 1 else ''}"


def write_idx(path: str | os.PathLike, array) -> Path:
    """Write an array as an IDX file, gzip-compressed when the name ends in .gz; returns the path."""
    path = Path(path)
    arr = np.asarray(array)
    code = _CODES.get(arr.dtype.newbyteorder("="))
    if code is None:
        raise ValueError(f"write_idx: dtype {arr.dtype} has no IDX code; use uint8, int8, int16, int32, "
                         "float32 or float64")
    if not 1 <= arr.ndim <= 255:
        raise ValueError(f"write_idx: an IDX array needs 1 to 255 dimensions, got shape {arr.shape}")
    header = bytes([0, 0, code, arr.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in arr.shape)
    payload = header + np.ascontiguousarray(arr, dtype=DTYPES[code]).tobytes()
    if path.suffix == ".gz":
        payload = gzip.compress(payload, mtime=0)
    path.write_bytes(payload)
    return path
