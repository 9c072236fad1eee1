"""A per-device pool of OpenCL buffers that reuses freed ones of the same size class."""

from __future__ import annotations

import threading
import weakref

import pyopencl as cl

from .errors import OutOfMemoryError
from .trace import Trace

_ALIGN = 256


def size_class(nbytes: int) -> int:
    """Round a request up so that near sizes share buffers: 256 B steps, then 1/8 of a power of two."""
    n = max(int(nbytes), 1)
    if n <= 1 << 16:
        return -(-n // _ALIGN) * _ALIGN
    step = 1 << (n.bit_length() - 4)
    return -(-n // step) * step


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


class MemoryPool:
    """Allocates buffers for one context; freed buffers wait in per-size lists for reuse."""

    def __init__(self, context: cl.Context, device_label: str, capacity: int, max_alloc: int,
                 debug: bool = False):
        self.context = context
        # debug: exact sizes and no reuse, so a memory checker (Oclgrind) sees every out-of-bounds access.
        # Freed buffers are kept, never released: Oclgrind 21.10 hands a released buffer's id to the next
        # allocation with stale shadow state, which reports false uninitialised reads.
        self.debug = debug
        self._retired: list[cl.Buffer] = []
        # buffer handle -> the Storage that owns it now, so the graph executor can pin a step's buffers
        self.owners: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
        # while a step is traced (Device.tracing), freed buffers go to the trace instead of being reused
        self.trace: Trace | None = None
        self.device_label = device_label
        self.capacity = capacity
        self.max_alloc = max_alloc
        self._free: dict[int, list[cl.Buffer]] = {}
        # re-entrant: a Storage.__del__ run by the cycle collector inside alloc() calls free()
        self._lock = threading.RLock()
        self.in_use = 0
        self.cached = 0
        self.peak = 0
        self.allocations = 0

    def alloc(self, nbytes: int) -> cl.Buffer:
        size = max(int(nbytes), 4) if self.debug else size_class(nbytes)
        with self._lock:
            bucket = self._free.get(size)
            if bucket:
                buf = bucket.pop()
                self.cached -= size
            else:
                buf = self._new(size, nbytes)
            self.in_use += size
            self.peak = max(self.peak, self.in_use)
            return buf

    def _new(self, size: int, asked: int) -> cl.Buffer:
        if size > self.max_alloc or self.in_use + size > self.capacity:
            self._release_cached()
        if size > self.max_alloc or self.in_use + size > self.capacity:
            self._raise(asked)
        try:
            buf = cl.Buffer(self.context, cl.mem_flags.READ_WRITE, size)
        except cl.Error as e:  # drivers report exhaustion in several ways
            self._release_cached()
            try:
                buf = cl.Buffer(self.context, cl.mem_flags.READ_WRITE, size)
            except cl.Error:
                self._raise(asked, str(e))
        self.allocations += 1
        return buf

    def _raise(self, asked: int, detail: str = "") -> None:
        raise OutOfMemoryError(
            f"out of memory on {self.device_label}: asked for {_mib(asked)} with {_mib(self.in_use)} "
            f"in use of {_mib(self.capacity)} (largest single buffer {_mib(self.max_alloc)}). "
            "Use a smaller batch size or model, or free tensors you no longer need."
            + (f" Driver said: {detail}" if detail else "")
        )

    def free(self, buf: cl.Buffer) -> None:
        size = buf.size
        with self._lock:
            if self.trace is not None:
                self.trace.freed.append(buf)
                return
            if self.debug:
                self.in_use -= size
                self._retired.append(buf)
                return
            self._free.setdefault(size, []).append(buf)
            self.in_use -= size
            self.cached += size

    def _release_cached(self) -> None:
        for bucket in self._free.values():
            for buf in bucket:
                buf.release()
        self._free.clear()
        self.cached = 0

    def empty_cache(self) -> None:
        """Give every cached (unused) buffer back to the driver."""
        with self._lock:
            self._release_cached()

    def stats(self) -> dict:
        return {
            "device": self.device_label,
            "bytes_in_use": self.in_use,
            "bytes_cached": self.cached,
            "peak_bytes_in_use": self.peak,
            "capacity_bytes": self.capacity,
            "allocations": self.allocations,
        }
