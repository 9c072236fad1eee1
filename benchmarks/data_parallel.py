"""Images/s of data-parallel training beside each device alone, on the same random batches.

    python benchmarks/data_parallel.py [--model lenet5] [--batch-size 64] [--steps 200]
        [--config SPEC ...]      # device lists; default: the first device, its halves (cpu/2), and, with
                                 # RUSTICL_ENABLE=llvmpipe, the first device + rusticl
        [--mpi N]                # also N MPI ranks, each on the first device (needs hetero[mpi])

Every configuration trains the same model from the same weights with SGD + momentum for --steps steps
after a warm-up (kernel builds, tracing, the balancer settling); the figure is images per second of the
timed steps, with each device's final share of the batch.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import hetero
from hetero.bench.models import MODEL_KWARGS, NUM_CLASSES, batch_data
from hetero.parallel import DataParallel, world
from hetero.parallel.comm import mpiexec_command

WARMUP = 40


def measure(spec: str, model_name: str, batch: int, steps: int, comm=None) -> dict:
    """{"config", "images_per_s", "shares"} for one device list (a single device runs fit's compiled step)."""
    devs = hetero.parallel.resolve_devices(spec)
    hetero.train.seed_everything(0)
    model = hetero.models.get_model(model_name, num_classes=NUM_CLASSES, device=devs[0], **MODEL_KWARGS[model_name])
    opt = hetero.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = batch_data(batch)
    parallel = len(devs) > 1 or (comm is not None and comm.size > 1)
    if parallel:
        dp = DataParallel(model, opt, devs, batch_size=batch, comm=comm)
        step = lambda: dp.step(x, y)  # noqa: E731
        finish = lambda: None  # noqa: E731 (a data-parallel step ends with the gradients on the host)
    else:
        compiled = hetero.compile_step(model, hetero.nn.functional.cross_entropy, opt)
        step = lambda: compiled(x, y)  # noqa: E731
        finish = devs[0].synchronize
    for _ in range(WARMUP):
        step()
    finish()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    finish()
    seconds = time.perf_counter() - t0
    shares = dp.shares() if parallel else [{"device": devs[0].id, "share": 1.0}]
    if parallel:
        dp.close()
    return {"config": spec, "images_per_s": batch * steps / seconds, "shares": shares}


def _mpi_child(args: argparse.Namespace) -> None:
    comm = world()
    result = measure(args.config[0], args.model, args.batch_size, args.steps, comm=comm)
    if comm.rank == 0:
        print(json.dumps(result))
    comm.close()


def _mpi(n: int, args: argparse.Namespace, spec: str) -> dict:
    cmd = mpiexec_command(n) + [sys.executable, __file__, "--mpi-child", "--config", spec, "--model", args.model,
                                "--batch-size", str(args.batch_size), "--steps", str(args.steps)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=1800).stdout
    result = json.loads(out.strip().splitlines()[-1])
    result["config"] = f"{n} MPI ranks x {spec}"
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", choices=tuple(MODEL_KWARGS), default="lenet5")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--config", action="append", default=None, metavar="SPEC[,SPEC...]")
    p.add_argument("--mpi", type=int, default=0, metavar="N")
    p.add_argument("--mpi-child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.mpi_child:
        _mpi_child(args)
        return 0
    infos = [d for d in hetero.devices() if d.usable]
    first = infos[0]
    configs = args.config or [first.id] + ([f"{first.id}/2"] if first.max_sub_devices >= 2 else []) + [
        f"{first.id},{d.id}" for d in infos[1:2]]
    rows = [measure(c, args.model, args.batch_size, args.steps) for c in configs]
    if args.mpi:
        rows.append(_mpi(args.mpi, args, first.id))
    alone = rows[0]["images_per_s"]
    print(f"{args.model} batch {args.batch_size}, {args.steps} timed steps; ratio against {rows[0]['config']} alone")
    print(f"| configuration | images/s | vs {rows[0]['config']} | shares |")
    print("|---|--:|--:|---|")
    for r in rows:
        shares = ", ".join(f"{s['device']} {100 * s['share']:.0f}%" for s in r["shares"])
        print(f"| {r['config']} | {r['images_per_s']:,.0f} | {r['images_per_s'] / alone:.2f}x | {shares} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
