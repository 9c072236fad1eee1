"""hetero's compiled step against PyTorch on the CPU: images/s for training and inference, same models.

    python benchmarks/vs_torch.py [--device SPEC] [--models lenet5:64,alexnet_mnist:64,resnet18:32]
                                  [--repeats N] [--min-time S] [--warmup S]

Models as hetero.bench runs them (28x28, one channel, 10 classes; SGD with momentum, cross_entropy):
hetero's `compile_step` / `compile` on the OpenCL device, torch eager on all CPU threads. Both run in this
process, alternating block by block (ours, torch, ours, torch, ...) with a pause between blocks, so that
a change in the machine's load hits both; each figure is the median over the repeats, with the spread
(max - min) / median. On a CPU OpenCL device both use the same cores.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import hetero
from hetero.bench.models import HeteroModelRunner
from hetero.bench.references import TorchModelRunner, torch_threads
from hetero.bench.timing import block, calls_for, summarise

_PAUSE = 0.3  # OpenMP and PoCL threads keep spinning a while after a call


def compare(ours, theirs, mode: str, batch: int, repeats: int, min_time: float, warmup: float = 1.0):
    """(ours (img/s, spread), torch (img/s, spread)) for mode "train" or "infer", blocks alternating after
    `warmup` seconds of each side (the first model of a run otherwise measured well below its later runs)."""
    fa, fb = getattr(ours, mode), getattr(theirs, mode)
    calls_a = calls_for(fa, ours.sync, min_time)
    time.sleep(_PAUSE)
    calls_b = calls_for(fb, theirs.sync, min_time)
    for f, sync, calls in ((fa, ours.sync, calls_a), (fb, theirs.sync, calls_b)):
        end = time.perf_counter() + warmup
        while time.perf_counter() < end:
            block(f, sync, calls)
    ta, tb = [], []
    for _ in range(repeats):
        time.sleep(_PAUSE)
        ta.append(block(fa, ours.sync, calls_a))
        time.sleep(_PAUSE)
        tb.append(block(fb, theirs.sync, calls_b))
    return summarise([batch / t for t in ta]), summarise([batch / t for t in tb])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None, help="device spec (default: $HETERO_DEVICE or the best)")
    parser.add_argument("--models", default="lenet5:64,alexnet_mnist:64,resnet18:32",
                        help="comma-separated name:batch pairs")
    parser.add_argument("--repeats", type=int, default=5, help="timed blocks per side (median reported)")
    parser.add_argument("--min-time", type=float, default=0.5, help="seconds each block lasts at least")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds each side runs before the timed blocks")
    args = parser.parse_args(argv)
    dev = hetero.device(args.device)
    with torch_threads() as torch:
        if torch is None:
            raise SystemExit("vs_torch: torch does not import; install the torch extra")
        print(f"hetero {hetero.__version__} on {dev.label}; torch {torch.__version__} CPU, "
              f"{torch.get_num_threads()} of {os.cpu_count()} threads")
        print(f"{'model':<14} {'batch':>5} {'mode':>9} {'hetero img/s':>16} {'torch img/s':>16} {'ratio':>6}")
        ratios = []
        for item in args.models.split(","):
            name, _, batch = item.strip().partition(":")
            batch = int(batch or 32)
            ours = HeteroModelRunner(dev, name, batch)
            theirs = TorchModelRunner(name, batch)
            for mode, label in (("train", "training"), ("infer", "inference")):
                (a, sa), (b, sb) = compare(ours, theirs, mode, batch, args.repeats, args.min_time, args.warmup)
                ratios.append(a / b)
                print(f"{name:<14} {batch:>5} {label:>9} {a:>10.1f} ±{sa * 50:>3.0f}% {b:>10.1f} ±{sb * 50:>3.0f}% "
                      f"{a / b:>6.2f}", flush=True)
            del ours, theirs
        print(f"geometric mean ratio (hetero / torch): {statistics.geometric_mean(ratios):.2f}")


if __name__ == "__main__":
    main()
