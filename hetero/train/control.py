"""TrainingControl: pause, resume and stop a running fit() from another thread."""

from __future__ import annotations

import threading


class TrainingControl:
    """Pause, resume and stop a running fit() from any thread; fit checks it between steps."""

    def __init__(self) -> None:
        self._running = threading.Event()
        self._running.set()
        self._stop = threading.Event()

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def stop(self) -> None:
        self._stop.set()
        self._running.set()  # wake a paused loop so that it can stop

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def wait_while_paused(self, timeout: float = 0.2) -> None:
        """Return once resumed or stopped (waits in short slices, so Ctrl-C still reaches the main thread)."""
        while not self._running.wait(timeout):
            pass
