"""The IDX file format of MNIST and Fashion-MNIST: read (validated) and write, raw or gzip-compressed.

An IDX file is a 4-byte magic number (two zero bytes, a dtype code, the number of dimensions), one
big-endian uint32 per dimension, then the values, big-endian, in C order. MNIST's images are 0x0803
(uint8, 3 dimensions: N x 28 x 28) and its labels 0x0801 (uint8, N).
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path
from typing import BinaryIO

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


CHUNK = 1 << 20  # payloads are read in pieces, so memory follows what a file holds, not what it claims
# What a compressed file may claim to hold: its header cannot be checked against a size before it is
# decompressed, so a damaged or hostile header stops here rather than at the memory limit.
MAX_GZIP_PAYLOAD = 1 << 32
_GZIP_DAMAGE = (gzip.BadGzipFile, EOFError, zlib.error)


def _unreadable(path: Path, e: OSError) -> IDXError:
    hint = ""
    if isinstance(e, PermissionError):
        hint = "; make it readable (chmod u+r) or point --data / $HETERO_DATA_DIR elsewhere"
    elif isinstance(e, IsADirectoryError):
        hint = "; this is a folder, not an IDX file"
    return IDXError(f"{path}: cannot read the file ({e.strerror or e}){hint}")


class _Reader:
    """The bytes of an IDX file, raw or gzip-compressed, read in order with every error as an IDXError."""

    def __init__(self, path: Path, f: BinaryIO):
        self.path, self.raw = path, f
        self.compressed = path.suffix == ".gz" or self._peek(2) == _GZIP_MAGIC
        self.stream: BinaryIO = gzip.GzipFile(fileobj=f, mode="rb") if self.compressed else f
        self.size = None if self.compressed else os.fstat(f.fileno()).st_size  # bytes a raw file holds

    def _peek(self, n: int) -> bytes:
        try:
            head = self.raw.read(n)
            self.raw.seek(0)
        except OSError as e:
            raise _unreadable(self.path, e) from e
        return head

    def read(self, n: int) -> bytearray:
        """Up to n bytes (fewer at the end of the data), taken CHUNK at a time."""
        out = bytearray()
        try:
            while len(out) < n:
                part = self.stream.read(min(n - len(out), CHUNK))
                if not part:
                    break
                out += part
        except _GZIP_DAMAGE as e:
            raise IDXError(f"{self.path}: corrupt gzip data ({e}); the file is damaged or was cut short, "
                           "download it again") from e
        except OSError as e:
            raise _unreadable(self.path, e) from e
        return out


def read_idx(path: str | os.PathLike, magic: int | None = None) -> np.ndarray:
    """Read an IDX file (gzip-compressed when it is); `magic` (e.g. 0x0803) requires that kind of file.

    Raises IDXError naming the file on a bad magic number, dtype, dimension or payload length.
    """
    # the file is untrusted: its header's sizes are checked against what it holds before memory is taken
    path = Path(path)
    try:
        f = open(path, "rb")
    except OSError as e:
        raise _unreadable(path, e) from e
    with f:
        return _read(path, _Reader(path, f), magic)


def _read(path: Path, reader: _Reader, magic: int | None) -> np.ndarray:
    data = reader.read(4)
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
    dims = reader.read(4 * ndim)
    if len(dims) < 4 * ndim:
        raise IDXError(f"{path}: truncated header: {ndim} dimensions need {header} bytes, the file has "
                       f"{4 + len(dims)}")
    shape = tuple(int.from_bytes(dims[4 * i: 4 * i + 4], "big") for i in range(ndim))
    payload = math.prod(shape) * dtype.itemsize  # Python ints: 2^32 x 2^32 x 2^32 cannot wrap around
    expected = header + payload
    if math.prod(d for d in shape if d) * dtype.itemsize > np.iinfo(np.intp).max:  # numpy refuses even if 0 long
        raise IDXError(f"{path}: the header claims shape {shape}, too large for any array; the file is damaged "
                       "or not an IDX file")

    def mismatch(have: int | None) -> IDXError:  # None: more than expected, of a compressed file
        what = "truncated" if have is not None and have < expected else "has trailing bytes"
        holds = f"more than {expected}" if have is None else have
        return IDXError(f"{path}: {what}: shape {shape} of {dtype.newbyteorder('=').name} needs "
                        f"{expected} bytes, the file has {holds}; the file is damaged, get it again")

    if reader.size is not None and reader.size != expected:
        raise mismatch(reader.size)
    if reader.compressed and payload > MAX_GZIP_PAYLOAD:
        raise IDXError(f"{path}: the header claims shape {shape} of {dtype.newbyteorder('=').name}, "
                       f"{payload} bytes, more than the {MAX_GZIP_PAYLOAD} this reader takes from a compressed "
                       "file; the file is damaged or not an IDX file")
    body = reader.read(payload)
    if len(body) < payload:
        raise mismatch(header + len(body))
    if reader.read(1):
        raise mismatch(None)
    values = np.frombuffer(body, dtype=dtype).reshape(shape)  # writable: body is a bytearray
    return values.astype(dtype.newbyteorder("="), copy=False)  # native-endian (a copy only for 2+ byte types)


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
