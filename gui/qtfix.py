"""Refuse to run on a PySide6 that loses references on every signal emit.

PySide6-Essentials 6.12.0 with CPython 3.11 drops one reference to True on every `SignalInstance.emit()`
(1000 emits of a bare signal abort the interpreter with "Fatal Python error: bool_dealloc"; 6.11.3 loses
none). pyqtgraph emits on every setData(), so a live training view would crash within seconds. The
package requires `PySide6-Essentials!=6.12.0`; this check turns an install that bypassed that into a
clear error instead of a crash. CPython 3.12 made True immortal (PEP 683), which hides the bug there.
"""

from __future__ import annotations

import sys

from hetero.errors import HeteroError

_checked = False


class BrokenQtError(HeteroError):
    """The installed PySide6 is known to crash the app."""


def emit_loses_references() -> bool:
    """Emit a connected signal a few times and see whether True's reference count falls."""
    from PySide6.QtCore import QObject, Signal

    class _Probe(QObject):
        sigProbe = Signal()

    probe = _Probe()
    probe.sigProbe.connect(_noop)
    before = sys.getrefcount(True)
    for _ in range(8):
        probe.sigProbe.emit()
    lost = before - sys.getrefcount(True)
    probe.sigProbe.disconnect(_noop)
    return lost >= 8


def _noop() -> None:
    pass


def apply() -> None:
    """Raise BrokenQtError when this PySide6 loses references on emit (checked once per process)."""
    global _checked
    if _checked or sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return
    if emit_loses_references():
        import PySide6

        raise BrokenQtError(
            f"PySide6 {PySide6.__version__} loses a reference on every signal emit under Python "
            f"{sys.version_info.major}.{sys.version_info.minor} and would crash the app; install another "
            "version: pip install 'PySide6-Essentials>=6.5,!=6.12.0'")
    _checked = True
