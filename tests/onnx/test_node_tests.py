"""onnx's own backend test suite (onnx.backend.test.BackendTest) against hetero: the node tests and the model
tests shipped in the onnx wheel that node_tests.txt lists under [run ...]; every other node test of an imported op
is listed under an [exclude: reason] section, which test_the_list_sorts_every_node_test_of_the_imported_ops checks."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest

pytest.importorskip("onnx")

import onnx.backend.test  # noqa: E402
from onnx.backend.test.loader import load_model_tests  # noqa: E402

import hetero  # noqa: E402
from hetero.onnx import OPS  # noqa: E402
from hetero.onnx.backend import HeteroBackend  # noqa: E402

LIST = Path(__file__).with_name("node_tests.txt")
MODEL_KINDS = ("real", "simple", "pytorch-converted", "pytorch-operator")  # the wheel's onnx/backend/test/data


def read_list(path: Path = LIST) -> tuple[list[str], dict[str, str]]:
    """(tests to run, excluded test -> reason) from node_tests.txt's [run ...] and [exclude: reason] sections."""
    run: list[str] = []
    excluded: dict[str, str] = {}
    section = None
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("["):
            m = re.fullmatch(r"\[(run)[^\]]*\]|\[exclude: ([^\]]+)\]", line)
            if not m:
                raise ValueError(f"{path.name}:{number}: a section is [run ...] or [exclude: reason], got {line!r}")
            section = "run" if m.group(1) else m.group(2).strip()
            continue
        if section is None:
            raise ValueError(f"{path.name}:{number}: test {line!r} before any section")
        if line in excluded or line in run:
            raise ValueError(f"{path.name}:{number}: {line} is listed twice")
        if section == "run":
            run.append(line)
        else:
            excluded[line] = section
    return run, excluded


RUN, EXCLUDED = read_list()


def _device_or_none():
    try:
        return hetero.device()
    except hetero.HeteroError:
        return None


pytestmark = pytest.mark.skipif(_device_or_none() is None, reason="no usable OpenCL device")

with warnings.catch_warnings():  # onnx's test generators divide by zero on purpose, at import
    warnings.simplefilter("ignore", RuntimeWarning)
    _suite = onnx.backend.test.BackendTest(HeteroBackend, __name__)
for _name in RUN:
    _suite.include(f"^{re.escape(_name)}_cpu$")


def _listed_cases(suite) -> dict:
    """The suite's TestCase classes holding only the listed tests: the ~3800 others (and every _cuda twin) would
    each be collected and skipped. (test_cases is a property that builds new classes: this takes them once.)"""
    wanted = {f"{n}_cpu" for n in RUN}
    cases = suite.test_cases
    for case in cases.values():
        for attr in [a for a in vars(case) if a.startswith("test_") and a not in wanted]:
            delattr(case, attr)
    return cases


CASES = _listed_cases(_suite)
globals().update(CASES)  # pytest collects unittest classes by their module-level names


@pytest.fixture(autouse=True)
def _onnx_home(tmp_path_factory, monkeypatch):
    """The runner writes the real models' dummy inputs under $ONNX_HOME: keep them out of the home folder."""
    monkeypatch.setenv("ONNX_HOME", str(tmp_path_factory.getbasetemp() / "onnx_home"))


def _base(name: str) -> str:
    return re.sub(r"_expanded(_ver\d+)?$", "", name)


def test_the_list_sorts_every_node_test_of_the_imported_ops():
    """Each single-node test of an op in OPS (and each _expanded twin) is run or excluded with a reason, once."""
    cases = {c.name: c for c in load_model_tests(kind="node")}
    expected = set()
    for name in cases:
        base = cases.get(_base(name))
        ops = [n.op_type for n in base.model.graph.node] if base is not None else []
        if len(ops) == 1 and ops[0] in OPS:
            expected.add(name)
    listed = set(RUN) | set(EXCLUDED)
    assert not expected - listed, f"node tests of imported ops missing from {LIST.name}: {sorted(expected - listed)}"


def test_every_listed_test_exists_and_every_shipped_model_test_is_listed():
    known = {c.name for c in load_model_tests(kind="node")}
    shipped = {c.name for kind in MODEL_KINDS for c in load_model_tests(kind=kind)}
    listed = set(RUN) | set(EXCLUDED)
    unknown = sorted(listed - known - shipped)
    assert not unknown, f"{LIST.name} lists tests onnx does not have: {unknown}"
    assert not shipped - listed, f"model tests shipped in the onnx wheel missing from {LIST.name}: " \
                                 f"{sorted(shipped - listed)}"


def test_the_runner_collects_exactly_the_listed_tests():
    collected = {a[:-4] for case in CASES.values() for a in vars(case) if a.startswith("test_")}
    assert collected == set(RUN)
