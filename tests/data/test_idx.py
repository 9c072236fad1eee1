"""IDX reader and writer: round trips, and every kind of damage gives an IDXError naming the file."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from hetero.data import IDXError, read_idx, write_idx

IMAGES = 0x0803
LABELS = 0x0801


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_round_trip(tmp_path, rng, suffix, dtype):
    array = (rng.standard_normal((3, 4, 5)) * 100).astype(dtype)
    path = write_idx(tmp_path / f"a{suffix}", array)
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype) and back.dtype.isnative
    np.testing.assert_array_equal(back, array)
    assert back.flags.writeable


def test_header_bytes_are_big_endian(tmp_path):
    path = write_idx(tmp_path / "labels", np.array([1, 2, 3], np.uint8))
    assert path.read_bytes() == bytes([0, 0, 8, 1, 0, 0, 0, 3, 1, 2, 3])
    path = write_idx(tmp_path / "ints", np.array([258], np.int32))
    assert path.read_bytes()[-4:] == bytes([0, 0, 1, 2])


def test_gzip_detected_by_content(tmp_path):
    raw = write_idx(tmp_path / "x", np.arange(6, dtype=np.uint8).reshape(2, 3))
    hidden = tmp_path / "y"  # gzip data under a name without .gz
    hidden.write_bytes(gzip.compress(raw.read_bytes()))
    np.testing.assert_array_equal(read_idx(hidden), np.arange(6).reshape(2, 3))


def test_expected_magic(tmp_path):
    path = write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(4, np.uint8))
    assert read_idx(path, LABELS).shape == (4,)
    with pytest.raises(IDXError, match=r"train-labels-idx1-ubyte: magic number 0x00000801 but 0x00000803"):
        read_idx(path, IMAGES)


def _idx_bytes(tmp_path, array) -> bytes:
    return write_idx(tmp_path / "source", array).read_bytes()


def test_truncated_payload(tmp_path):
    data = _idx_bytes(tmp_path, np.zeros((2, 4, 4), np.uint8))
    path = tmp_path / "cut"
    path.write_bytes(data[:-5])
    with pytest.raises(IDXError, match=r"cut: truncated: shape \(2, 4, 4\) of uint8 needs 48 bytes, the file has 43"):
        read_idx(path)


def test_trailing_bytes(tmp_path):
    path = tmp_path / "long"
    path.write_bytes(_idx_bytes(tmp_path, np.zeros(3, np.uint8)) + b"\0")
    with pytest.raises(IDXError, match="long: has trailing bytes"):
        read_idx(path)


def test_truncated_header(tmp_path):
    path = tmp_path / "head"
    path.write_bytes(bytes([0, 0, 8, 3, 0, 0, 0, 2]))  # 3 dimensions announced, one given
    with pytest.raises(IDXError, match="head: truncated header: 3 dimensions need 16 bytes, the file has 8"):
        read_idx(path)


@pytest.mark.parametrize("content", [b"", b"\0\0", b"PK\x03\x04rest", bytes([0, 0, 0x42, 1, 0, 0, 0, 0]),
                                     bytes([0, 0, 8, 0])])
def test_not_idx(tmp_path, content):
    path = tmp_path / "junk"
    path.write_bytes(content)
    with pytest.raises(IDXError, match="junk: .*(too short|not an IDX file)"):
        read_idx(path)


def test_corrupt_gzip(tmp_path):
    good = gzip.compress(_idx_bytes(tmp_path, np.arange(200, dtype=np.uint8)))
    cut = tmp_path / "cut.gz"
    cut.write_bytes(good[: len(good) // 2])
    with pytest.raises(IDXError, match="cut.gz: corrupt gzip data"):
        read_idx(cut)
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0xFF
    bad = tmp_path / "bad.gz"
    bad.write_bytes(bytes(flipped))
    with pytest.raises(IDXError, match="bad.gz: corrupt gzip data"):
        read_idx(bad)
    plain = tmp_path / "plain.gz"  # named .gz, not compressed
    plain.write_bytes(_idx_bytes(tmp_path, np.zeros(2, np.uint8)))
    with pytest.raises(IDXError, match="plain.gz: corrupt gzip data"):
        read_idx(plain)


def test_missing_file(tmp_path):
    with pytest.raises(IDXError, match="nothere: cannot read the file"):
        read_idx(tmp_path / "nothere")


def test_write_rejects_unsupported(tmp_path):
    with pytest.raises(ValueError, match="dtype int64 has no IDX code"):
        write_idx(tmp_path / "x", np.zeros(2, np.int64))
    with pytest.raises(ValueError, match="1 to 255 dimensions"):
        write_idx(tmp_path / "x", np.uint8(3))
