"""A guard against PySide6's reference-count bug on CPython before 3.12.

PySide6 6.12 (seen with CPython 3.11) drops one reference to the value `SignalInstance.emit()` returns
(True or False) on every call, and pyqtgraph emits signals on every setData(). A live training view
emits thousands a minute, so after a few seconds the interpreter frees True itself and aborts with
"Fatal Python error: bool_dealloc". CPython 3.12 made True, False and None immortal (PEP 683), which
hides the bug. `apply()` measures whether emit() loses references here and, only then, gives those
objects the same protection: a reference count so large that the lost references can never bring it
to zero.
"""

from __future__ import annotations

import ctypes
import sys

_applied = False
_PAD = 1 << 40  # ~10^12 references: at a million lost per second, thirteen days of headroom


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
    probe.deleteLater()
    return lost >= 8


def _noop() -> None:
    pass


def apply() -> bool:
    """Protect True, False and None when this PySide6 loses references to them; True when applied."""
    global _applied
    if _applied:
        return True
    if sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return False  # immortal already, or another object layout
    if not emit_loses_references():
        return False
    for obj in (True, False, None):
        ctypes.c_ssize_t.from_address(id(obj)).value += _PAD  # ob_refcnt is a PyObject's first field
    _applied = True
    return True
