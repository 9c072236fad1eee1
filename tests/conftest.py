"""Shared fixtures: `dev` runs a test once per usable OpenCL device (HETERO_TEST_DEVICES narrows it)."""

from __future__ import annotations

import os

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

