"""Shared fixtures: `dev` runs a test once per usable OpenCL device (HETERO_TEST_DEVICES narrows it);
`isolated` gives a data-set lookup with no network and no real files."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest


def _test_devices():
    import hetero

    spec = os.environ.get("HETERO_TEST_DEVICES")
    try:
        if spec:
            return hetero.select_devices(spec)
        return hetero.select_devices("all")
    except hetero.HeteroError as e:
        if os.environ.get("CI"):
            raise  # CI installs PoCL: no device there is a broken setup, not a reason to skip
        print(f"no usable OpenCL device, device tests are skipped: {e}")
        return []


def pytest_generate_tests(metafunc):
    if "dev" in metafunc.fixturenames:
        devs = _test_devices()
        metafunc.parametrize("dev", devs, ids=[d.id for d in devs], scope="session")


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded generator, fresh per test, so tests are deterministic and independent."""
    return np.random.default_rng(1234)


@pytest.fixture
def isolated(tmp_path, monkeypatch) -> Path:
    """HOME, the system folder and every mirror point into tmp_path; $HETERO_DATA_DIR is unset.

    Returns tmp_path. Mirrors are file:// URLs of tmp_path/mirror (empty until a test fills it), so
    nothing here can reach the network.
    """
    from hetero.data import sources  # here, not at the top: conftest must import without hetero's deps

    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv(sources.ENV_VAR, raising=False)
    monkeypatch.setattr(sources, "SYSTEM_DIR", tmp_path / "system")
    monkeypatch.setattr(sources, "BUNDLED_DIR", tmp_path / "bundled", raising=False)  # the checkout's data/mnist
    mirror = (tmp_path / "mirror").as_uri() + "/"
    for name, source in list(sources.SOURCES.items()):
        monkeypatch.setitem(sources.SOURCES, name, dataclasses.replace(source, mirrors=(mirror,)))
    return tmp_path
