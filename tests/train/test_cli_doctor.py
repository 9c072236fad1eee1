"""`hetero doctor`: every check passes on every device, one line each and a summary; --json; a failing or
raising op gives exit status 1 and its message, never a traceback; the device's generator is left as found."""

from __future__ import annotations

import importlib
import json

import numpy as np
import pytest

from hetero import random as hrandom
from hetero.cli import main

# the module, also once hetero/__init__ exports the function hetero.doctor under the same name
D = importlib.import_module("hetero.doctor")


def test_every_check_passes_on_the_device(dev, capsys):
    state = hrandom.get_rng_state(dev)
    rc = main(["doctor", "--device", dev.id])
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].startswith(f"{dev.id} ") and f"({dev.flavour} kernels)" in lines[0]
    rows = [line for line in lines if line.startswith("  ") and (" ok " in line or " FAIL " in line)]
    assert len(rows) == len(D.CHECKS), out
    failed = [line for line in lines if " FAIL " in line]
    assert rc == 0 and not failed, "\n".join(failed) + err
    assert f"  {dev.id}: {len(D.CHECKS)} passed / 0 failed in " in out
    assert "bound = atol + rtol * max(max|reference|, 1)" in out
    assert np.array_equal(hrandom.get_rng_state(dev), state)  # the dropout check restored the generator


def _wrong(dev, rng):
    return [D.Piece("forward", np.zeros(3), np.ones(3))]


def _raises(dev, rng):
    raise RuntimeError("clBuildProgram failed: out of resources")


@pytest.fixture
def few_checks(monkeypatch):
    """Two real checks, a wrong one and one that raises."""
    monkeypatch.setattr(D, "CHECKS", (D.CHECKS[0], D.Check("wrong op", _wrong), D.Check("raising op", _raises),
                                      D.CHECKS[-1]))


def test_a_wrong_or_raising_op_fails_with_its_message(dev, few_checks, capsys):
    rc = main(["doctor", "--device", dev.id])
    out, err = capsys.readouterr()
    assert rc == 1
    assert "Traceback" not in out + err
    wrong = next(line for line in out.splitlines() if "wrong op" in line)
    assert " FAIL " in wrong and wrong.endswith("forward: max abs error 1 > 0.00011")
    raising = next(line for line in out.splitlines() if "raising op" in line)
    assert " FAIL " in raising and raising.endswith("RuntimeError: clBuildProgram failed: out of resources")
    assert f"  {dev.id}: 2 passed / 2 failed in " in out
    assert "2 check(s) failed" in err


def test_json(dev, few_checks, capsys):
    rc = main(["doctor", "--device", dev.id, "--json"])
    out, _ = capsys.readouterr()
    data = json.loads(out)  # nothing but the JSON on stdout
    assert rc == 1 and data["passed"] == 2 and data["failed"] == 2
    (block,) = data["devices"]
    assert block["id"] == dev.id and block["flavour"] == dev.flavour
    assert [r["op"] for r in block["rows"]] == [D.CHECKS[0].name, "wrong op", "raising op", D.CHECKS[-1].name]
    first, wrong, raising = block["rows"][:3]
    assert first["passed"] and 0 <= first["max_abs"] <= first["bound"] and first["seconds"] > 0
    assert not wrong["passed"] and wrong["max_abs"] == 1.0 and wrong["worst"] == "forward"
    assert not raising["passed"] and raising["max_abs"] is None and raising["error"].startswith("RuntimeError")


def test_all_devices_one_block_each(dev, monkeypatch, capsys):
    monkeypatch.setattr(D, "CHECKS", D.CHECKS[:2])
    rc = main(["doctor", "--device", "all"])
    out, _ = capsys.readouterr()
    assert rc == 0
    assert f"  {dev.id}: 2 passed / 0 failed in " in out
    blocks = out.count(" passed / 0 failed in ")
    assert blocks >= 1 and (blocks == 1 or f"all devices: {2 * blocks} passed / 0 failed" in out)


def test_an_unknown_device_is_an_error_not_a_traceback(capsys):
    rc = main(["doctor", "--device", "7:7"])
    _, err = capsys.readouterr()
    assert rc == 1 and err.startswith("hetero: error: ") and "Traceback" not in err
