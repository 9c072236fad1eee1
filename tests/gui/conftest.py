"""GUI tests run headless: Qt's offscreen platform, chosen before anything imports Qt."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402

from tests.train.tiny_idx import write_tiny_mnist  # noqa: E402


@pytest.fixture(autouse=True)
def runs_db(tmp_path, monkeypatch):
    """Every test's run history is a file of its own under tmp_path: no test writes to the user's data folder."""
    path = tmp_path / "runs.sqlite3"
    monkeypatch.setenv("HETERO_RUNS_DB", str(path))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    return path


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """MNIST-named IDX files: 96 training and 40 test images, learnable in a few steps."""
    return write_tiny_mnist(tmp_path_factory.mktemp("tiny-mnist"))


@pytest.fixture(scope="session")
def usable_device():
    import hetero

    try:
        return hetero.device()
    except hetero.HeteroError as e:
        pytest.skip(f"no usable OpenCL device: {e}")
