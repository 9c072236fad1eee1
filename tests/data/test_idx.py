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


def _header(code: int, dims) -> bytes:
    return bytes([0, 0, code, len(dims)]) + b"".join(int(d).to_bytes(4, "big") for d in dims)


@pytest.mark.parametrize("dims", [(2**16,) * 4, (2**32 - 1,) * 3, (2**32 - 1,) * 255, (0, 2**32 - 1, 2**32 - 1, 5),
                                  (2**8,) * 8])
@pytest.mark.parametrize("payload", [0, 64])
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_a_header_claiming_huge_sizes_neither_allocates_nor_wraps(tmp_path, dims, payload, suffix):
    """IDX files are untrusted: (2^16)^4 elements once wrapped to 0 in int64, so a bare header passed the
    length check and numpy's reshape raised a ValueError."""
    import tracemalloc

    data = _header(0x0D, dims) + bytes(payload)  # float32
    path = tmp_path / f"huge{suffix}"
    path.write_bytes(gzip.compress(data) if suffix else data)
    tracemalloc.start()
    try:
        with pytest.raises(IDXError, match="huge(.gz)?: (truncated|has trailing bytes|the header claims)"):
            # (0, 2^32 - 1, ...) holds no values, yet numpy cannot make an array of that shape
            read_idx(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20


def test_an_empty_array_of_a_sane_shape_reads(tmp_path):
    back = read_idx(write_idx(tmp_path / "none", np.zeros((0, 28, 28), np.uint8)))
    assert back.shape == (0, 28, 28)


def test_a_gzip_file_holding_less_than_it_claims_allocates_what_it_holds(tmp_path):
    import tracemalloc

    path = tmp_path / "short.gz"  # claims 1 GiB of uint8, holds 1 MiB
    path.write_bytes(gzip.compress(_header(0x08, (2**30,)) + bytes(1 << 20)))
    tracemalloc.start()
    try:
        with pytest.raises(IDXError, match=r"short.gz: truncated: shape \(1073741824,\) of uint8 needs 1073741832 "
                                           r"bytes, the file has 1048584"):
            read_idx(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20


def test_gzip_trailing_payload(tmp_path):
    path = tmp_path / "long.gz"
    path.write_bytes(gzip.compress(_idx_bytes(tmp_path, np.zeros(3, np.uint8)) + b"\0\0"))
    with pytest.raises(IDXError, match=r"long.gz: has trailing bytes: .* needs 11 bytes, the file has more than 11"):
        read_idx(path)


def test_an_unreadable_file_or_a_folder_is_an_idx_error(tmp_path, monkeypatch):
    from hetero.data import idx as idx_mod

    with pytest.raises(IDXError, match="cannot read the file .*this is a folder"):
        read_idx(tmp_path)
    path = write_idx(tmp_path / "locked", np.zeros(3, np.uint8))

    def refuse(p, *a, **k):
        raise PermissionError(13, "Permission denied", str(p))

    monkeypatch.setattr(idx_mod, "open", refuse, raising=False)  # chmod 000 does not stop root
    with pytest.raises(IDXError, match=r"locked: cannot read the file \(Permission denied\); make it readable"):
        read_idx(path)


def test_an_unreadable_file_really_locked(tmp_path):
    import os

    if os.name == "nt" or os.geteuid() == 0:
        pytest.skip("root (and Windows) can read a chmod 000 file")
    path = write_idx(tmp_path / "locked", np.zeros(3, np.uint8))
    path.chmod(0)
    try:
        with pytest.raises(IDXError, match="locked: cannot read the file"):
            read_idx(path)
    finally:
        path.chmod(0o644)


def test_uint8_payloads_are_returned_without_a_second_copy(tmp_path):
    back = read_idx(write_idx(tmp_path / "u8", np.arange(10, dtype=np.uint8)))
    assert back.flags.writeable and back.dtype == np.uint8
    back[0] = 7  # writable, and it is its own buffer
    assert back[0] == 7
