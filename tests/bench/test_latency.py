"""hetero.bench.latency: single-call timing and the profile of a compiled plan. Structure only; no speed asserted."""

from __future__ import annotations

import math

import numpy as np

import hetero
from hetero import models
from hetero.bench.latency import latencies, latency_figures, percentile, profile_plan
from hetero.bench.timing import Settings


def test_latencies_and_percentiles():
    seen = []
    times = latencies(lambda: seen.append(1), 5, warmup_seconds=0.0, warmup_calls=3)
    assert len(times) == 5 and len(seen) == 8 and all(t >= 0 for t in times)
    assert percentile([1.0, 2.0, 3.0], 50) == 2.0


def test_latency_figures():
    out = latency_figures(lambda: None, Settings(repeats=2, min_time=0.0))
    assert set(out) == {"latency p50", "latency p99"}
    (p50, spread), (p99, none) = out["latency p50"], out["latency p99"]
    assert 0 < p50 <= p99 and none is None and math.isfinite(spread) and spread >= 0


def test_profile_plan(dev):
    model = models.lenet5(device=dev).eval()
    run = hetero.compile(model)
    x = np.zeros((1, 1, 28, 28), np.float32)
    want = run(x).numpy()
    (plan,) = run.plans()
    prof = profile_plan(plan, repeats=2)
    assert [t.kernel for t in prof.launches] == [k.function_name for k, _, _ in plan.launch_sizes()]
    assert all(t.run_us >= 0 and t.gap_us >= 0 for t in prof.launches)
    assert prof.wall_us > 0 and prof.run_us > 0
    assert sum(n for _, n, _, _ in prof.by_kernel()) == len(plan.launches)
    assert f"{len(plan.launches)} launches" in prof.table()
    np.testing.assert_array_equal(run(x).numpy(), want)  # profiling leaves the plan as it was
