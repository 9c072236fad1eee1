"""Batch-1 latency as a user sees it (upload, run, read back, one call at a time) and the profile of a compiled
plan that says where such a call's time goes: per launch on the device, the gaps between launches, the host.

`latencies(fn, ...)` times single calls; `profile_plan(plan)` replays a plan on a profiling queue of its context;
`count_calls()` counts what one inference asks of pyopencl (launches, argument setting, copies, waits).
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import pyopencl as cl

from .timing import Settings

# a warm-up shorter than this leaves PoCL's and the references' thread pools, caches and branch predictors cold
MIN_WARMUP_SECONDS = 0.2
MIN_WARMUP_CALLS = 20


def latencies(fn: Callable[[], object], calls: int, warmup_seconds: float = MIN_WARMUP_SECONDS,
              warmup_calls: int = MIN_WARMUP_CALLS) -> list[float]:
    """Seconds of each of `calls` single calls of fn (fn waits for its own result), after a warm-up."""
    end = time.perf_counter() + warmup_seconds
    done = 0
    while done < warmup_calls or time.perf_counter() < end:
        fn()
        done += 1
    return timed_calls(fn, calls)


def timed_calls(fn: Callable[[], object], calls: int) -> list[float]:
    """Seconds of each of `calls` single calls of fn, no warm-up."""
    out = []
    clock = time.perf_counter
    for _ in range(max(1, calls)):
        t0 = clock()
        fn()
        out.append(clock() - t0)
    return out


def percentile(seconds: list[float], q: float) -> float:
    """The q-th percentile (0-100) of the call times, linear between neighbours."""
    return float(np.percentile(np.asarray(seconds), q))


def latency_figures(fn: Callable[[], object], settings: Settings) -> dict[str, tuple[float, float | None]]:
    """{"latency p50": (us, spread), "latency p99": (us, None)} over settings.repeats blocks of single calls,
    each block lasting about settings.min_time; the spread is that of the blocks' medians."""
    t0 = time.perf_counter()
    fn()
    once = max(time.perf_counter() - t0, 1e-7)
    calls = max(1, min(100_000, int(settings.min_time / once)))
    blocks = [latencies(fn, calls, warmup_seconds=0.0 if i else MIN_WARMUP_SECONDS,
                        warmup_calls=0 if i else MIN_WARMUP_CALLS) for i in range(max(1, settings.repeats))]
    every = [s for b in blocks for s in b]
    medians = [statistics.median(b) for b in blocks]
    p50 = statistics.median(every)
    spread = (max(medians) - min(medians)) / p50 if p50 else 0.0
    return {"latency p50": (p50 * 1e6, spread), "latency p99": (percentile(every, 99) * 1e6, None)}


# ---- where a plan's time goes ---------------------------------------------------------------------------------

@dataclass
class LaunchTime:
    """One launch of a plan: its kernel, sizes, median run time on the device and median gap before it (us)."""

    kernel: str
    global_size: tuple
    local_size: tuple | None
    run_us: float
    gap_us: float


@dataclass
class PlanProfile:
    """A plan replayed on a profiling queue: every launch, and the wall time of one replay with its wait."""

    launches: list[LaunchTime] = field(default_factory=list)
    wall_us: float = 0.0  # enqueue all launches and wait for them, median over the repeats

    @property
    def run_us(self) -> float:
        return sum(t.run_us for t in self.launches)

    @property
    def gap_us(self) -> float:
        return sum(t.gap_us for t in self.launches)

    def by_kernel(self) -> list[tuple[str, int, float, float]]:
        """(kernel, launches, run us, gap us) per kernel name, most run time first."""
        rows: dict[str, list] = {}
        for t in self.launches:
            row = rows.setdefault(t.kernel, [0, 0.0, 0.0])
            row[0] += 1
            row[1] += t.run_us
            row[2] += t.gap_us
        return sorted(((k, n, r, g) for k, (n, r, g) in rows.items()), key=lambda r: -r[2])

    def table(self, top: int = 12) -> str:
        """The per-kernel summary as text lines."""
        lines = [f"  {'kernel':<28} {'launches':>8} {'run us':>9} {'gaps us':>8}"]
        for name, n, run, gap in self.by_kernel()[:top]:
            lines.append(f"  {name:<28} {n:>8} {run:>9.1f} {gap:>8.1f}")
        lines.append(f"  {len(self.launches)} launches: {self.run_us:.0f} us running, {self.gap_us:.0f} us between "
                     f"launches; enqueue all + wait {self.wall_us:.0f} us")
        return "\n".join(lines)


def profile_plan(plan, repeats: int = 20) -> PlanProfile:
    """Replay a compiled plan (hetero.graph.Plan) `repeats` times on a profiling queue of its device's context;
    per launch the median device run time and the median gap since the previous launch ended."""
    dev = plan.device
    queue = cl.CommandQueue(dev.context, dev.cl_device, properties=cl.command_queue_properties.PROFILING_ENABLE)
    dev.synchronize()
    runs: list[list[tuple[int, int]]] = []
    walls = []
    try:
        for _ in range(max(1, repeats) + 1):  # the first replay on a new queue is not counted
            t0 = time.perf_counter()
            events = plan.replay_on(queue)
            queue.finish()
            walls.append(time.perf_counter() - t0)
            runs.append([(e.profile.start, e.profile.end) for e in events])
    finally:
        queue.finish()
    runs, walls = runs[1:], walls[1:]
    profile = PlanProfile(wall_us=statistics.median(walls) * 1e6)
    for i, (kernel, gsize, lsize) in enumerate(plan.launch_sizes()):
        run = statistics.median((r[i][1] - r[i][0]) / 1e3 for r in runs)
        gap = statistics.median((r[i][0] - r[i - 1][1]) / 1e3 for r in runs) if i else 0.0
        profile.launches.append(LaunchTime(kernel.function_name, gsize, lsize, run, max(gap, 0.0)))
    return profile


_COUNTED = (("enqueue_nd_range_kernel", cl, "enqueue_nd_range_kernel"),
            ("enqueue_copy", cl, "enqueue_copy"),
            ("write", cl._cl, "_enqueue_write_buffer"),
            ("read", cl._cl, "_enqueue_read_buffer"),
            ("set_args", cl.Kernel, "set_args"),
            ("set_arg", cl.Kernel, "set_arg"),
            ("finish", cl.CommandQueue, "finish"),
            ("wait", cl.Event, "wait"))


@contextlib.contextmanager
def count_calls() -> Iterator[Counter]:
    """Count, for the duration, the pyopencl calls that cost per inference: kernel enqueues, argument setting,
    host copies (write / read / enqueue_copy), queue finishes and event waits. Only for measuring: it wraps
    pyopencl's module and class attributes, so calls made through references taken earlier are not seen."""
    counts: Counter = Counter()
    saved = []
    for label, owner, attr in _COUNTED:
        original = getattr(owner, attr, None)
        if original is None:
            continue

        def wrapper(*args, _original=original, _label=label, **kwargs):
            counts[_label] += 1
            return _original(*args, **kwargs)

        saved.append((owner, attr, original))
        setattr(owner, attr, wrapper)
    try:
        yield counts
    finally:
        for owner, attr, original in saved:
            setattr(owner, attr, original)
