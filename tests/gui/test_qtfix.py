"""The PySide6 check: the installed version passes, a version that loses references is refused clearly."""

import sys

import pytest
from hetero.gui import qtfix


def test_installed_pyside_keeps_references(qapp):
    assert not qtfix.emit_loses_references()


def test_broken_pyside_is_refused(monkeypatch, qapp):
    if sys.version_info >= (3, 12):
        pytest.skip("True is immortal from CPython 3.12: the check does not apply")
    monkeypatch.setattr(qtfix, "_checked", False)
    monkeypatch.setattr(qtfix, "emit_loses_references", lambda: True)
    with pytest.raises(qtfix.BrokenQtError, match=r"PySide6-Essentials>=6.5,!=6.12.0"):
        qtfix.apply()
