"""GEMM throughput: hetero's launch_gemm vs numpy's float32 matmul (OpenBLAS) and the device's FMA peak.

    python benchmarks/gemm.py [--devices SPEC] [--sizes 256,512,1024,2048] [--repeats N] [--trans nn,tn,nt,tt]
                              [--flavour cpu|gpu] [--kernel auto|xgemm|tiled] [--shapes MxNxK,...] [--no-peak]

For each device and size: GFLOP/s of ours, of numpy and of the device's multiply-add peak
(hetero/bench/fma_peak.py), then ours / numpy and ours / peak. Each repeat times, in turn, enough
back-to-back calls of numpy, of ours (ending with dev.synchronize()) and of the peak kernel to last ~0.2 s
each, so the three share whatever else the machine runs at that moment: numpy's block between pauses (none
pays for another's threads still spinning), ours and the peak's back to back, alternating which goes first.
Figures are medians over the repeats, the ratios medians of the per-repeat ratios.
--flavour sets HETERO_KERNEL_FLAVOUR (gpu: the GPU kernels on any device, e.g. PoCL's CPU); --kernel tiled
runs the previous GPU kernel (gemm_tiled) where the table picks gemm_xgemm; --shapes adds non-square
problems (e.g. 1000x1000x1000 for the edge handling, 6x25x50176 for split-k).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

import hetero
from hetero.bench.fma_peak import FmaPeak
from hetero.ops.gemm import Operand, Output, config, launch_gemm

_MIN_TIME = 0.2
_PAUSE = 0.5


def _calls_for(fn, sync) -> int:
    """Warm up, then how many back-to-back calls last about _MIN_TIME."""
    fn()
    sync()
    t0 = time.perf_counter()
    fn()
    sync()
    return max(1, int(_MIN_TIME / max(time.perf_counter() - t0, 1e-6)))


def _seconds_per_call(fn, sync, calls: int) -> float:
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    sync()
    return (time.perf_counter() - t0) / calls


def use_kernel(kernel: str) -> None:
    """Make gemm_config give the previous GPU kernel (gemm_tiled) where it would give gemm_xgemm ("tiled"), or
    leave it as it is ("auto", "xgemm")."""
    if kernel != "tiled":
        return
    table = config.gemm_config

    def tiled(dev, m, n, k, trans_a, trans_b, implicit_b=False):
        cfg = table(dev, m, n, k, trans_a, trans_b, implicit_b)
        return config.tiled_config(m, n) if cfg["variant"] == "xgemm" else cfg

    config.gemm_config = tiled


def bench(dev: hetero.Device, shape: tuple[int, int, int], repeats: int, trans_a: bool, trans_b: bool,
          peak: FmaPeak | None) -> dict[str, float]:
    """Medians of our, numpy's and the peak kernel's GFLOP/s ("ours", "numpy", "peak") and of the per-repeat
    ratios ("vs_numpy", "vs_peak") for C[m, n] = op(A) @ op(B), float32; no peak figures without a kernel."""
    m, n, k = shape
    rng = np.random.default_rng(0)
    ha = rng.standard_normal((k, m) if trans_a else (m, k), dtype=np.float32)
    hb = rng.standard_normal((n, k) if trans_b else (k, n), dtype=np.float32)
    a, b = hetero.tensor(ha, dev), hetero.tensor(hb, dev)
    c = hetero.empty((m, n), np.float32, dev)
    opa, opb = (ha.T if trans_a else ha), (hb.T if trans_b else hb)
    out = np.empty((m, n), np.float32)

    def ours():
        launch_gemm(dev, m, n, k, Operand(a, 0, ha.shape[1], trans_a), Operand(b, 0, hb.shape[1], trans_b),
                    Output(c, 0, n))

    def theirs():
        np.matmul(opa, opb, out=out)

    def nothing():
        pass

    flop = 2 * m * n * k / 1e9
    # (function, sync, work per call in GFLOP). numpy's block follows a pause and is followed by one: OpenBLAS's
    # threads keep spinning for a while after a call, and PoCL's threads would have to share the cores with them.
    # Ours and the peak kernel run back to back, in alternating order, so their ratio sees the same load.
    blocks = {"numpy": (theirs, nothing, flop), "ours": (ours, dev.synchronize, flop)}
    if peak is not None:
        blocks["peak"] = (peak, dev.synchronize, peak.gflop)
    calls = {}
    for name, (fn, sync, _) in blocks.items():
        calls[name] = _calls_for(fn, sync)
        time.sleep(_PAUSE)
    rates: dict[str, list[float]] = {name: [] for name in blocks}

    def timed(name: str) -> None:
        fn, sync, work = blocks[name]
        rates[name].append(work / _seconds_per_call(fn, sync, calls[name]))

    pocl = [name for name in blocks if name != "numpy"]
    for r in range(repeats):
        timed("numpy")
        time.sleep(_PAUSE)
        for name in pocl if r % 2 == 0 else pocl[::-1]:
            timed(name)
        time.sleep(_PAUSE)
    # a fast wrong kernel must not look good
    want = opa.astype(np.float64) @ opb.astype(np.float64)
    err = float(np.abs(c.numpy() - want).max() / np.abs(want).max())
    if err > 1e-4:
        raise RuntimeError(f"gemm on {dev.label} at {m}x{n}x{k} is wrong: relative error {err:.3g}")
    result = {name: statistics.median(values) for name, values in rates.items()}
    result["vs_numpy"] = statistics.median(o / t for o, t in zip(rates["ours"], rates["numpy"]))
    if peak is not None:
        result["vs_peak"] = statistics.median(o / p for o, p in zip(rates["ours"], rates["peak"]))
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", default="all", help="device specs for hetero.select_devices (default: all)")
    parser.add_argument("--sizes", default="256,512,1024,2048", help="comma-separated square sizes")
    parser.add_argument("--repeats", type=int, default=7, help="timed repeats per size (median reported)")
    parser.add_argument("--trans", default="nn", help="transpose combos to time, e.g. nn,tn,nt,tt (default nn)")
    parser.add_argument("--flavour", choices=("cpu", "gpu"), help="force the kernel flavour of every device")
    parser.add_argument("--kernel", choices=("auto", "xgemm", "tiled"), default="auto",
                        help="GPU kernel: the table's (auto, xgemm) or the previous gemm_tiled")
    parser.add_argument("--shapes", default="", help="extra comma-separated MxNxK problems")
    parser.add_argument("--no-peak", action="store_true", help="skip the FMA peak kernel and its ratio")
    args = parser.parse_args(argv)
    if args.flavour:
        os.environ["HETERO_KERNEL_FLAVOUR"] = args.flavour  # read when a device opens
    use_kernel(args.kernel)
    shapes = [(int(s), int(s), int(s)) for s in args.sizes.split(",") if s.strip()]
    shapes += [tuple(int(v) for v in s.lower().split("x")) for s in args.shapes.split(",") if s.strip()]
    combos = [c.strip().lower() for c in args.trans.split(",") if c.strip()]
    print(f"{'device':<34} {'op':>3} {'m x n x k':>17} {'variant':>8} {'tile':>7} {'splits':>6} {'GFLOP/s':>9} "
          f"{'numpy':>9} {'peak':>9} {'/numpy':>6} {'/peak':>6}")
    for dev in hetero.select_devices(args.devices):
        peak = None if args.no_peak else FmaPeak.fastest(dev)
        for combo in combos:
            ta, tb = combo[0] == "t", combo[1] == "t"
            for shape in shapes:
                r = bench(dev, shape, args.repeats, ta, tb, peak)
                splits = config.k_splits(dev, *shape)
                sliced = (shape[0], shape[1], shape[2] // splits)
                cfg = config.gemm_config(dev, *sliced, ta, tb)
                tile = "-"
                if cfg["variant"] == "cpu":  # a second block needs packed B panels (cpu.launch_cpu)
                    blocks = cfg["PANELS"] if cfg["pack_b"] or cfg["strip"] else 1
                    tile = f"{cfg['MR']}x{cfg['NR'] * blocks}"
                peak_gflops = f"{r['peak']:>9.1f}" if peak is not None else f"{'-':>9}"
                vs_peak = f"{r['vs_peak']:>6.2f}" if peak is not None else f"{'-':>6}"
                print(f"{dev.label[:34]:<34} {combo:>3} {'x'.join(map(str, shape)):>17} {cfg['variant']:>8} "
                      f"{tile:>7} {splits:>6} {r['ours']:>9.1f} {r['numpy']:>9.1f} {peak_gflops} "
                      f"{r['vs_numpy']:>6.2f} {vs_peak}", flush=True)


if __name__ == "__main__":
    main()
