"""Connect methods to Qt signals without passing the signal's arguments and without returning a value.

A slot that returns a value (a bool from `start()`, say) can crash PySide6 at exit with "bool_dealloc":
it mis-counts references to the returned object. `slot(f, *args)` calls f(*args), ignores whatever the
signal sends (e.g. `clicked(checked)`) and returns None.
"""

from __future__ import annotations

from collections.abc import Callable


def slot(fn: Callable, *args) -> Callable[..., None]:
    def run(*_signal_args) -> None:
        fn(*args)

    return run
