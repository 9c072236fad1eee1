"""Cold and warm start: seconds from a fresh process to the end of its first compiled training step.

    python benchmarks/cold_start.py [--model resnet18] [--batch-size 32] [--device SPEC] [--runs 2]

Cold: a child process whose kernel caches are all new, empty folders (hetero's HETERO_CACHE_DIR, PoCL's
POCL_CACHE_DIR, NVIDIA's CUDA_CACHE_PATH), so every program is compiled. Warm: further child processes
with those same folders, as a user's second run. Each child reports its import, device-opening and
first-step times, how many programs it built and the seconds they took.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

_CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import hetero
from hetero import program
from hetero.bench.models import HeteroModelRunner
builds = []
_build = program.build
def timed(*args):
    t = time.perf_counter()
    try:
        return _build(*args)
    finally:
        builds.append(time.perf_counter() - t)
program.build = timed
dev = hetero.device(sys.argv[1] or None)
t1 = time.perf_counter()
runner = HeteroModelRunner(dev, sys.argv[2], int(sys.argv[3]))
runner.train()
runner.sync()
t2 = time.perf_counter()
print(json.dumps({"import_and_device": t1 - t0, "first_step": t2 - t1, "builds": len(builds),
                  "build_seconds": sum(builds)}))
"""


def run_child(env: dict, device: str, model: str, batch: int) -> dict:
    """One fresh process; its own timings plus the wall time from spawning it to its exit."""
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _CHILD, device, model, str(batch)], env=env,
                          capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"cold_start: the child process failed:\n{done.stderr.strip()}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["wall"] = wall
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet18", help="a hetero bench model (default resnet18)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", default="", help="device spec (default: $HETERO_DEVICE or the best)")
    parser.add_argument("--runs", type=int, default=2, help="warm runs after the cold one")
    args = parser.parse_args(argv)
    root = tempfile.mkdtemp(prefix="hetero-cold-start-")
    env = dict(os.environ)
    for name in ("HETERO_CACHE_DIR", "POCL_CACHE_DIR", "CUDA_CACHE_PATH"):
        env[name] = os.path.join(root, name.lower())
        os.makedirs(env[name])
    try:
        print(f"{args.model} b{args.batch_size}: process start to the end of the first training step")
        print(f"{'run':<6} {'total s':>8} {'import+device':>14} {'first step':>11} {'builds':>7} {'build s':>8}")
        for i in range(1 + args.runs):
            r = run_child(env, args.device, args.model, args.batch_size)
            label = "cold" if i == 0 else f"warm{i}"
            print(f"{label:<6} {r['wall']:>8.2f} {r['import_and_device']:>14.2f} {r['first_step']:>11.2f} "
                  f"{r['builds']:>7} {r['build_seconds']:>8.2f}", flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
