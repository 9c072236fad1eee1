"""hetero.doctor without a device: how a check's outputs become a row (bound, worst output, failures, errors),
the row's text and JSON form, and that the check list covers every op family."""

from __future__ import annotations

import importlib
import json
import threading

import numpy as np
import pytest

# the module, also once hetero/__init__ exports the function hetero.doctor under the same name
D = importlib.import_module("hetero.doctor")


class FakeDevice:
    id = "9:9"

    def __init__(self):
        self.synced = 0

    def synchronize(self) -> None:
        self.synced += 1


def _check(pieces, **kw) -> D.Check:
    return D.Check("fake op", lambda dev, rng: pieces, **kw)


def test_a_row_reports_its_worst_output_against_the_bound():
    want = np.array([[2.0, -4.0], [1.0, 0.5]])
    got = (want + np.array([[1e-5, 0], [0, 0]])).astype(np.float32)
    near = want.copy()
    dev = FakeDevice()
    row = D.run_check(dev, _check([D.Piece("forward", near, want), D.Piece("grad", got, want)]))
    assert row.passed and row.error == "" and row.device == "9:9" and dev.synced == 1
    assert row.worst == "grad"
    assert row.bound == pytest.approx(D.ATOL + D.RTOL * 4.0)  # max|reference| is 4
    assert row.max_abs == pytest.approx(abs(float(np.float32(2.00001)) - 2.0))
    assert row.max_rel == pytest.approx(row.max_abs / 4.0)
    assert row.seconds >= 0


def test_out_of_tolerance_nan_and_shape_mismatch_fail_with_the_output_named():
    want = np.ones((3,))
    row = D.run_check(FakeDevice(), _check([D.Piece("forward", want, want),
                                            D.Piece("grad weight", want + 0.01, want)]))
    assert not row.passed and row.worst == "grad weight"
    assert row.error == f"grad weight: max abs error 0.01 > {D.ATOL + D.RTOL:.3g}"
    nan = D.run_check(FakeDevice(), _check([D.Piece("forward", np.array([1.0, np.nan, 1.0]), want)]))
    assert not nan.passed and nan.max_abs == np.inf and "forward: max abs error inf" in nan.error
    shape = D.run_check(FakeDevice(), _check([D.Piece("grad input", np.ones((2, 2)), want)]))
    assert not shape.passed and shape.error == "grad input: shape (2, 2), expected (3,)"


def test_a_piece_may_carry_its_own_tolerance():
    row = D.run_check(FakeDevice(), _check([D.Piece("mask", np.array([1.0, 0.0]), np.array([1.0, 0.0]), 0.0, 0.0),
                                            D.Piece("fraction", np.array([0.69]), np.array([0.7]), 0.0, 0.02)]))
    assert row.passed and row.worst == "fraction" and row.bound == pytest.approx(0.02)
    exact = D.run_check(FakeDevice(), _check([D.Piece("mask", np.array([1.0, 1.0]), np.array([1.0, 0.0]), 0.0, 0.0)]))
    assert not exact.passed and exact.error == "mask: max abs error 1 > 0"


def test_a_check_that_raises_is_a_failed_row_with_its_message_on_one_line():
    def broken(dev, rng):
        raise ValueError("conv2d: input (2, 3, 8, 8) has 3 channels\n  but weight expects 5")

    row = D.run_check(FakeDevice(), D.Check("conv2d", broken))
    assert not row.passed and row.max_abs is None
    assert row.error == "ValueError: conv2d: input (2, 3, 8, 8) has 3 channels but weight expects 5"
    long = D.run_check(FakeDevice(), D.Check("x", lambda dev, rng: (_ for _ in ()).throw(RuntimeError("y" * 1000))))
    assert len(long.error) <= len("RuntimeError: ") + D._MESSAGE_CHARS and long.error.endswith("...")


def test_a_missing_gradient_or_a_failing_read_is_a_failed_row():
    row = D.run_check(FakeDevice(), _check([D.Piece("grad input", None, np.ones(2))]))
    assert not row.passed and row.error == "grad input: missing (the op produced none)"

    class Unreadable:
        def __array__(self, dtype=None, copy=None):
            raise RuntimeError("clEnqueueReadBuffer failed: OUT_OF_RESOURCES")

    row = D.run_check(FakeDevice(), _check([D.Piece("forward", Unreadable(), np.ones(2))]))
    assert not row.passed and row.error == "RuntimeError: clEnqueueReadBuffer failed: OUT_OF_RESOURCES"


def test_checks_are_seeded():
    seen = []
    check = D.Check("seeded", lambda dev, rng: seen.append(rng.standard_normal(3)) or [])
    D.run_check(FakeDevice(), check)
    D.run_check(FakeDevice(), check)
    assert np.array_equal(seen[0], seen[1])


def test_text_json_and_verdict():
    ok = D.Row("0:0", "gemm 67x45x39", True, 0.0123, 5.1e-6, 2.1e-7, 2.4e-3, "c")
    bad = D.Row("0:0", "conv2d 3x3", False, 0.5, np.inf, np.inf, 0.0, "forward", "forward: shape (1,), expected (2,)")
    line = D.format_row(ok)
    assert line.split() == ["gemm", "67x45x39", "5.1e-06", "2.1e-07", "2.4e-03", "ok", "12.3"]
    failed = D.format_row(bad)
    assert failed.split()[:6] == ["conv2d", "3x3", "inf", "inf", "0.0e+00", "FAIL"]
    assert failed.endswith("500.0  forward: shape (1,), expected (2,)")
    assert D.summary([ok, bad]) == "1 passed / 1 failed in 0.51 s"
    assert D.verdict([ok]) == "doctor ok" and D.verdict([ok, bad]) == "doctor: 1 op wrong"
    assert D.verdict([bad, bad]) == "doctor: 2 ops wrong" and D.verdict([]) == "doctor: no checks ran"
    assert json.loads(json.dumps(bad.to_dict(), allow_nan=False))["max_abs"] is None


def test_doctor_stops_between_checks_when_cancelled(monkeypatch):
    dev = FakeDevice()
    monkeypatch.setattr(D, "device", lambda spec: dev)
    cancel = threading.Event()
    ran = []

    def first(d, rng):
        ran.append(1)
        cancel.set()
        return []

    checks = [D.Check("a", first), D.Check("b", lambda d, rng: ran.append(2) or [])]
    rows = D.doctor("9:9", checks, progress=lambda r: ran.append(r.op), cancel=cancel)
    assert [r.op for r in rows] == ["a"] and ran == [1, "a"]


def test_the_checks_cover_every_op_family():
    names = [c.name for c in D.CHECKS]
    assert len(names) == len(set(names))
    text = " | ".join(names)
    for family in ("gemm", "matmul", "linear", "conv2d 3x3 pad 1", "stride 2", "depthwise", "max_pool2d", "avg_pool2d",
                   "global avg pool", "batch_norm train", "batch_norm eval", "softmax", "log_softmax",
                   "cross_entropy", "nll_loss", "relu", "leaky_relu", "elu", "selu", "sigmoid", "tanh", "prelu",
                   "add broadcast", "mul broadcast", "dropout", "local_response_norm", "sgd", "adam"):
        assert family in text, family
    assert all(c.rtol > 0 and c.atol > 0 for c in D.CHECKS)
