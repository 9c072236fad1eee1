"""What tracing one step records (see Device.tracing and hetero.graph): one object the device and its pool fill."""

from __future__ import annotations

import pyopencl as cl


class Trace:
    """A traced step: its kernel launches, the buffers the host wrote, and the buffers freed (never reused)."""

    __slots__ = ("launches", "host_written", "freed")

    def __init__(self) -> None:
        self.launches: list[tuple] = []  # (kernel, global size, local size, args) in launch order
        self.host_written: set[int] = set()  # int_ptr of every buffer a host copy wrote
        self.freed: list[cl.Buffer] = []  # still counted in use: the plan built from the trace decides their fate
