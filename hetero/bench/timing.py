"""Timing: a warm-up, then repeats that each run enough back-to-back calls to last a minimum time.

A figure is the median over the repeats; its spread is (max - min) / median of the per-repeat figures,
so 0.05 means the repeats stayed within 5% of each other.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

_MAX_CALLS = 100_000


@dataclass(frozen=True)
class Settings:
    """How long and how large the measurements are. `quick()` and `full()` are the two presets."""

    repeats: int = 7
    min_time: float = 0.2  # seconds each repeat lasts at least
    copy_bytes: int = 64 << 20  # memory copy and transfer size
    gemm_n: int = 1024
    op_batch: int = 16
    model_batch: int | None = None  # None: each model's default (hetero.bench.models.DEFAULT_BATCH)

    @staticmethod
    def full(batch_size: int | None = None) -> Settings:
        return Settings(model_batch=batch_size)

    @staticmethod
    def quick(batch_size: int | None = None) -> Settings:
        return Settings(repeats=3, min_time=0.05, copy_bytes=16 << 20, op_batch=4, model_batch=batch_size or 8)


def _nothing() -> None:
    pass


def calls_for(fn: Callable[[], object], sync: Callable[[], None] | None, min_time: float) -> int:
    """Warm up (one call), then how many back-to-back calls last about min_time (at least one)."""
    sync = sync or _nothing
    fn()
    sync()
    t0 = time.perf_counter()
    fn()
    sync()
    once = time.perf_counter() - t0
    return max(1, min(_MAX_CALLS, int(min_time / max(once, 1e-9))))


def block(fn: Callable[[], object], sync: Callable[[], None] | None, calls: int) -> float:
    """Seconds per call over `calls` back-to-back calls ended by one sync."""
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    (sync or _nothing)()
    return (time.perf_counter() - t0) / calls


def sample(fn: Callable[[], object], sync: Callable[[], None] | None, settings: Settings) -> list[float]:
    """Seconds per call of fn, one entry per repeat, after a warm-up call; sync ends each timed block."""
    calls = calls_for(fn, sync, settings.min_time)
    return [block(fn, sync, calls) for _ in range(max(1, settings.repeats))]


def summarise(values: list[float]) -> tuple[float, float]:
    """(median, (max - min) / median) of per-repeat figures."""
    med = statistics.median(values)
    spread = (max(values) - min(values)) / med if med else 0.0
    return float(med), float(spread)


def rate(work: float, seconds: list[float]) -> tuple[float, float]:
    """work per second (e.g. GFLOP/s with work in GFLOP), median and spread over the repeats."""
    return summarise([work / s for s in seconds])


def duration(seconds: list[float], scale: float = 1.0) -> tuple[float, float]:
    """A time per call in the figure's unit (scale 1e6 for microseconds), median and spread."""
    return summarise([s * scale for s in seconds])
