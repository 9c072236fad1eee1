"""GEMM throughput: hetero's launch_gemm vs numpy's float32 matmul (OpenBLAS), square sizes.

    python benchmarks/gemm.py [--devices SPEC] [--sizes 256,512,1024,2048] [--repeats N]

Prints GFLOP/s (median of repeats after a warm-up, timed around dev.synchronize()) and the ratio
to numpy measured in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import hetero
from hetero.ops.gemm import gemm_config, launch_gemm


def _median_seconds(fn, sync, repeats: int, min_time: float = 0.2) -> float:
    """Median of `repeats` timings, each of enough back-to-back calls to last about min_time."""
    fn()
    sync()
    t0 = time.perf_counter()
    fn()
    sync()
    once = max(time.perf_counter() - t0, 1e-6)
    inner = max(1, int(min_time / once))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        sync()
        times.append((time.perf_counter() - t0) / inner)
    return statistics.median(times)


def bench_numpy(n: int, repeats: int) -> float:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    out = np.empty((n, n), np.float32)
    return 2 * n**3 / _median_seconds(lambda: np.matmul(a, b, out=out), lambda: None, repeats) / 1e9


def bench_device(dev: hetero.Device, n: int, repeats: int, trans_a: bool = False, trans_b: bool = False) -> float:
    rng = np.random.default_rng(0)
    a = hetero.tensor(rng.standard_normal((n, n), dtype=np.float32), dev)
    b = hetero.tensor(rng.standard_normal((n, n), dtype=np.float32), dev)
    c = hetero.empty((n, n), np.float32, dev)

    def run():
        launch_gemm(dev, n, n, n, a, 0, n, trans_a, b, 0, n, trans_b, c, 0, n)

    seconds = _median_seconds(run, dev.synchronize, repeats)
    # correctness spot check so a fast wrong kernel cannot look good
    ha, hb = a.numpy().astype(np.float64), b.numpy().astype(np.float64)
    want = (ha.T if trans_a else ha) @ (hb.T if trans_b else hb)
    err = float(np.abs(c.numpy() - want).max() / np.abs(want).max())
    if err > 1e-4:
        raise RuntimeError(f"gemm on {dev.label} at n={n} is wrong: relative error {err:.3g}")
    return 2 * n**3 / seconds / 1e9


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", default="all", help="device specs for hetero.select_devices (default: all)")
    parser.add_argument("--sizes", default="256,512,1024,2048", help="comma-separated square sizes")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats per size (median reported)")
    parser.add_argument("--trans", default="nn", help="transpose combos to time, e.g. nn,tn,nt (default nn)")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    combos = [c.strip().lower() for c in args.trans.split(",") if c.strip()]
    devs = hetero.select_devices(args.devices)
    ref = {n: bench_numpy(n, args.repeats) for n in sizes}
    print(f"{'device':<40} {'op':>3} {'size':>6} {'variant':>8} {'GFLOP/s':>9} {'numpy':>9} {'ratio':>6}")
    for dev in devs:
        for combo in combos:
            ta, tb = combo[0] == "t", combo[1] == "t"
            for n in sizes:
                gf = bench_device(dev, n, args.repeats, ta, tb)
                variant = gemm_config(dev, n, n, n, ta, tb)["variant"]
                print(f"{dev.label[:40]:<40} {combo:>3} {n:>6} {variant:>8} {gf:>9.1f} {ref[n]:>9.1f} "
                      f"{gf / ref[n]:>6.2f}", flush=True)


if __name__ == "__main__":
    main()
