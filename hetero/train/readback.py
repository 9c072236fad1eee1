"""Reading a step's results back to the host without making the device wait for the host."""

from __future__ import annotations

from collections import deque

import numpy as np

from ..tensor import Tensor, raise_failed_checks


class Readback:
    """Non-blocking device->host copies of a step's loss, output and targets, read `lag` steps later so
    the device always has work queued while the host waits for an older copy."""

    def __init__(self, lag: int):
        self.lag = max(0, int(lag))
        self.pending: deque = deque()

    def push(self, meta, loss: Tensor | None, output: Tensor, target: Tensor | np.ndarray) -> None:
        dev = output.device
        events = []
        hosts = []
        for t in (loss, output, target):
            if isinstance(t, Tensor):
                host = np.empty(t.shape, t.dtype)
                events.append(dev.read_async(t, host))
                hosts.append(host)
            else:
                hosts.append(None if t is None else np.asarray(t))
        # the loss's deferred checks (a class id out of range): their flags are rewritten by the next
        # replay, so they are copied now, with the loss
        checks = loss.checks if isinstance(loss, Tensor) else ()
        flags = [np.empty(c.flag.shape, c.flag.dtype) for c in checks]
        events += [dev.read_async(c.flag, f) for c, f in zip(checks, flags)]
        self.pending.append((meta, events, hosts, checks, flags))

    def ready(self, drain: bool = False):
        """Yield (meta, loss, output, target) host values of the steps old enough (all when drain); raises
        the ValueError of a failed deferred check of the loss (see tensor.DeferredCheck)."""
        while self.pending and (drain or len(self.pending) > self.lag):
            meta, events, hosts, checks, flags = self.pending.popleft()
            for e in events:
                e.wait()
            raise_failed_checks(checks, flags)
            yield meta, hosts[0], hosts[1], hosts[2]

    def clear(self) -> None:
        for _, events, *_ in self.pending:
            for e in events:
                e.wait()
        self.pending.clear()


def correct(output: np.ndarray, target: np.ndarray) -> tuple[int, np.ndarray]:
    """(how many rows of output have their argmax at target, the predicted classes)."""
    pred = np.argmax(output.reshape(len(target), -1), axis=1).astype(np.int32)
    return int(np.count_nonzero(pred == target.reshape(-1))), pred
