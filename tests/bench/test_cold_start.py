"""benchmarks/cold_start.py: a cold child process builds every program, a warm one finds them cached."""

import importlib.util
from pathlib import Path

import pytest

_SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "cold_start.py"


@pytest.fixture(scope="module")
def cold_start():
    spec = importlib.util.spec_from_file_location("cold_start", _SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cold_then_warm_lenet5(cold_start, capsys, dev):
    cold_start.main(["--model", "lenet5", "--batch-size", "2", "--runs", "1", "--device", dev.id])
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("lenet5 b2:")
    rows = {line.split()[0]: [float(v) for v in line.split()[1:]] for line in lines[2:]}
    assert set(rows) == {"cold", "warm1"}
    for total, start, first_step, builds, build_s in rows.values():
        assert total > start + first_step > 0 and builds >= 5 and 0 < build_s < first_step
    assert rows["cold"][3] == rows["warm1"][3]  # the same programs, built or found in a cache
    assert rows["warm1"][4] < rows["cold"][4]  # found in a cache: a fraction of the build time


def test_a_failing_child_is_reported(cold_start):
    with pytest.raises(SystemExit, match="child process failed"):
        cold_start.main(["--model", "no_such_model", "--runs", "0"])
