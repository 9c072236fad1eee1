"""hetero.validate (the argument checks ops, layers and data share) and hetero.atomic (the one file writer)."""

import os

import numpy as np
import pytest

import hetero
from hetero import validate
from hetero.atomic import atomic_write, write_cache


def test_is_int_and_is_number_refuse_bools():
    assert validate.is_int(3) and validate.is_int(np.int64(3))
    assert not validate.is_int(True) and not validate.is_int(3.0)
    assert validate.is_number(2.5) and validate.is_number(np.float32(1)) and validate.is_number(4)
    assert not validate.is_number(False) and not validate.is_number("1")


def test_pair():
    assert validate.pair("op", "k", 3) == (3, 3)
    assert validate.pair("op", "k", (2, np.int32(5))) == (2, 5)
    assert validate.pair("op", "k", [4]) == (4, 4)
    with pytest.raises(ValueError, match=r"op: k must be an int or a pair of ints, got \(1, 2, 3\) \(input x\)"):
        validate.pair("op", "k", (1, 2, 3), " (input x)")
    with pytest.raises(ValueError, match="op: k must be an int or an .h, w. pair of ints, got 1.5"):
        validate.pair("op", "k", 1.5, noun="an (h, w) pair of ints")
    with pytest.raises(ValueError, match=r"op: k must be >= 1, got \(0, 0\)"):
        validate.pair("op", "k", 0, minimum=1)


def test_scalar_checks():
    assert validate.positive_int("op", "n", np.int64(2)) == 2
    with pytest.raises(ValueError, match=r"op: n must be a positive int, got 0 \(input y\)"):
        validate.positive_int("op", "n", 0, " (input y)")
    assert validate.int_at_least("op", "seed", 0, 0) == 0
    with pytest.raises(ValueError, match="op: seed must be an int >= 0, got -1"):
        validate.int_at_least("op", "seed", -1, 0)
    assert validate.finite("op", "alpha", 2) == 2.0 and isinstance(validate.finite("op", "alpha", 2), float)
    for bad in (float("nan"), float("inf"), True, "1"):
        with pytest.raises(ValueError, match="op: alpha must be a finite number"):
            validate.finite("op", "alpha", bad)
    assert validate.int32_range("op", "n", 2**31 - 1) == 2**31 - 1
    with pytest.raises(ValueError, match="out of range"):
        validate.int32_range("op", "n", 2**31)


def test_tensor_checks(dev):
    x = hetero.zeros((2, 3), device=dev)
    labels = hetero.tensor(np.zeros(2, np.int32), device=dev)
    assert validate.float_input("op", x) is x
    with pytest.raises(ValueError, match="op: expected a Tensor, got ndarray"):
        validate.float_input("op", np.zeros(3))
    with pytest.raises(ValueError, match=r"op: expected a float32 tensor, got int32 \(2,\)"):
        validate.float_input("op", labels)
    assert validate.tensor_arg("op", "input", x, ndim=(2, 4)) is x
    assert validate.tensor_arg("op", "bias", None, optional=True) is None
    with pytest.raises(ValueError, match=r"op: input must be 3-D or 4-D, got shape \(2, 3\)"):
        validate.tensor_arg("op", "input", x, ndim=(3, 4))
    with pytest.raises(ValueError, match=r"op: target \(2,\) must be float32, got int32"):
        validate.tensor_arg("op", "target", labels)
    validate.same_device("op", "input", x, target=labels, weight=None)


def test_atomic_write_replaces_whole_files_only(tmp_path):
    path = tmp_path / "f.bin"
    with atomic_write(path) as f:
        f.write(b"one")
    with pytest.raises(RuntimeError):
        with atomic_write(path) as f:
            f.write(b"half")
            raise RuntimeError("crash")
    assert path.read_bytes() == b"one"
    assert os.listdir(tmp_path) == ["f.bin"], "the temporary file of the failed write is removed"


def test_write_cache_creates_folders_and_swallows_os_errors(tmp_path):
    path = tmp_path / "a" / "b" / "entry.bin"
    assert write_cache(path, b"data") and path.read_bytes() == b"data"
    assert not write_cache(tmp_path / "empty.bin", b"") and not (tmp_path / "empty.bin").exists()
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    assert not write_cache(blocker / "entry.bin", b"data")  # a file where the folder should be: no raise
