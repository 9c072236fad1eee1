"""Fixture `isolated`: a data lookup with no network and no real files (HOME, mirrors in tmp_path)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from hetero.data import sources


@pytest.fixture
def isolated(tmp_path, monkeypatch) -> Path:
    """HOME, the system folder and every mirror point into tmp_path; $HETERO_DATA_DIR is unset.

    Returns tmp_path. Mirrors are file:// URLs of tmp_path/mirror (empty until a test fills it), so
    nothing here can reach the network.
    """
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv(sources.ENV_VAR, raising=False)
    monkeypatch.setattr(sources, "SYSTEM_DIR", tmp_path / "system")
    mirror = (tmp_path / "mirror").as_uri() + "/"
    for name, source in list(sources.SOURCES.items()):
        monkeypatch.setitem(sources.SOURCES, name, dataclasses.replace(source, mirrors=(mirror,)))
    return tmp_path
