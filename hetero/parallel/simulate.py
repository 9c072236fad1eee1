"""Data parallelism past this machine, by simulation: one training step's time on a set of devices of given speeds
and links, split by the Balancer's proportional shares and by equal shares.

The model of one step (host-staged, as `hetero.parallel` reduces today):
- worker i computes its shard in n_i / speed_i seconds, speed_i = sustained FLOP/s / training FLOPs per image;
- it sends its float32 gradient to its host over its own link (latency + bytes / bandwidth); with `overlap` f,
  the upload starts once 1 - f of the backward (2/3 of the compute) is done, as bucketed DDP sends the last
  layers' gradients first, but it cannot end before the backward does;
- each host sums what its workers sent, on one core (workers * bytes / sum bandwidth: each is scaled and added);
- hosts all-reduce over the inter-host link with a ring: 2 (H - 1) / H * bytes / bandwidth + 2 (H - 1) latencies;
- each worker receives the sum back over its link; the step ends when the last has it.
Not modelled: kernel-launch overhead (so LeNet-5's GPU figures are compute-ideal, far above what its launch-bound
step reaches), the host's own work slowing a CPU worker, shared power or memory bandwidth between a CPU and its
integrated GPU, and contention between links into one host (each is taken to have its own root port).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace

from .. import validate
from .balance import Balancer

_OP = "simulate"


@dataclass(frozen=True)
class Link:
    """A copy path: bytes/s achieved on large copies, and seconds per copy however small."""

    bandwidth: float
    latency: float

    def seconds(self, nbytes: float) -> float:
        return self.latency + nbytes / self.bandwidth


@dataclass(frozen=True)
class Device:
    """One worker: its sustained training GFLOP/s, the host it sits in and its link to that host's memory."""

    name: str
    gflops: float
    host: int
    link: Link


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    devices: tuple[Device, ...]
    inter_host: Link | None = None
    # gradient bytes/s one host core scales and adds (np.multiply into a scratch, then +=, as trainer.py sums):
    # memory-bound, a few GB/s
    sum_bandwidth: float = 4e9


@dataclass(frozen=True)
class Model:
    """A model's float32 parameter count and training FLOPs per 28x28 image (3x the forward: forward + the two
    backward products), counted from its layer shapes as hetero.models builds it for 1-channel 28x28 input."""

    name: str
    parameters: int
    train_flops: float
    batch: int  # the default global batch of a simulated step

    @property
    def gradient_bytes(self) -> int:
        return 4 * self.parameters


MODELS = {
    # 416,520 multiply-adds forward: conv 5x5 6 (pad 2), conv 5x5 16, fc 400-120-84-10
    "lenet5": Model("lenet5", 61_706, 6 * 416_520, 64),
    # torchvision's BasicBlock ResNet-18, 3x3/1 stem without max pool (small_input=True), 1 channel, 10 classes;
    # 455,800,832 multiply-adds forward at 28x28
    "resnet18": Model("resnet18", 11_172_810, 6 * 455_800_832, 128),
}

# Links. Bandwidths are what large copies achieve, below the line rate; latencies are one small copy's
# enqueue-to-completion, an order of magnitude rather than a measurement.
_MEMCPY = Link(20e9, 5e-6)  # a CPU device's buffers are host memory: a memcpy, ~20 GB/s on dual-channel DDR4/5
_SHARED = Link(20e9, 10e-6)  # an integrated GPU's copies run through the same DRAM, plus a GPU queue round trip
_PCIE4_X8 = Link(12e9, 10e-6)  # PCIe 4.0 x8 (a common laptop GPU link): 16 GB/s raw, ~12 GB/s effective
_PCIE4_X16 = Link(25e9, 10e-6)  # PCIe 4.0 x16: 32 GB/s raw, ~25 GB/s effective
_PCIE3_X16 = Link(12e9, 10e-6)  # PCIe 3.0 x16: 16 GB/s raw, ~12 GB/s effective
_ETH_25G = Link(2.8e9, 25e-6)  # 25 GbE: 3.125 GB/s line rate, ~2.8 GB/s through TCP/MPI, ~25 us per message

# Device speeds are sustained fp32 GFLOP/s on training convolutions and GEMMs: a fraction of the vendor's peak
# (the peak figures are public spec-sheet numbers; the fractions are typical of an OpenCL runtime, not measured).
SCENARIOS = {s.name: s for s in (
    Scenario("cpu+igpu+dgpu", "a laptop: its CPU, the integrated GPU sharing its memory, a discrete PCIe GPU", (
        Device("cpu", 100.0, 0, _MEMCPY),  # 8 cores AVX2 FMA ~3 GHz: ~770 GFLOP/s peak, ~15% through PoCL
        Device("igpu", 500.0, 0, _SHARED),  # a 96-EU Iris Xe-class iGPU: ~2.1 TFLOP/s peak, ~25%
        Device("dgpu", 3000.0, 0, _PCIE4_X8),  # an RTX 3060 Laptop-class GPU: ~11 TFLOP/s peak, ~30%
    )),
    Scenario("8gpu-2hosts", "8 GPUs in 2 hosts: 4 fast on PCIe 4.0, 4 of an older generation on PCIe 3.0, 25 GbE",
             tuple(Device("fast gpu", 8000.0, 0, _PCIE4_X16) for _ in range(4))  # A100-class: 19.5 TFLOP/s, ~40%
             + tuple(Device("slow gpu", 3200.0, 1, _PCIE3_X16) for _ in range(4)),  # T4-class: 8.1 TFLOP/s, ~40%
             inter_host=_ETH_25G),
    Scenario("cpu/2", "one CPU as two equal sub-devices (OpenCL device fission), copies at memory speed", (
        Device("cpu half", 50.0, 0, _MEMCPY),  # each half of the laptop CPU above
        Device("cpu half", 50.0, 0, _MEMCPY),
    )),
)}


@dataclass(frozen=True)
class Row:
    """One scenario, model and batch: the shard sizes and the step's compute and total seconds for the
    proportional and the equal split."""

    scenario: str
    model: str
    batch: int
    devices: tuple[str, ...]
    proportional: tuple[int, ...]
    equal: tuple[int, ...]
    compute_proportional: float
    compute_equal: float
    step_proportional: float
    step_equal: float
    fastest_alone: float  # the whole batch on the fastest device, which needs no reduction

    @property
    def speedup(self) -> float:
        """How many times faster the proportional step is than the equal one."""
        return self.step_equal / self.step_proportional

    @property
    def reduce_proportional(self) -> float:
        """Seconds of the proportional step spent after the slowest shard's compute: the reduction not hidden."""
        return self.step_proportional - self.compute_proportional


def step_seconds(scenario: Scenario, model: Model, sizes: Sequence[int], overlap: float = 0.0) -> tuple[float, float]:
    """(the slowest shard's compute, the whole step) in seconds for these shard sizes, per the module's model."""
    nbytes = model.gradient_bytes
    compute = [n * model.train_flops / (d.gflops * 1e9) for n, d in zip(sizes, scenario.devices)]
    hosts = sorted({d.host for d in scenario.devices})
    summed = []
    for h in hosts:
        members = [i for i, d in enumerate(scenario.devices) if d.host == h]
        sent = []
        for i in members:
            start = compute[i] - overlap * (2.0 / 3.0) * compute[i]
            sent.append(max(compute[i], start + scenario.devices[i].link.seconds(nbytes)))
        summed.append(max(sent) + len(members) * nbytes / scenario.sum_bandwidth)
    ready = max(summed)
    if len(hosts) > 1:
        if scenario.inter_host is None:
            raise ValueError(f"{_OP}: scenario {scenario.name!r} spans {len(hosts)} hosts but has no inter_host link")
        k = len(hosts)
        ready += 2 * (k - 1) / k * nbytes / scenario.inter_host.bandwidth + 2 * (k - 1) * scenario.inter_host.latency
    back = max(d.link.seconds(nbytes) for d in scenario.devices)
    return max(compute), ready + back


def _names(kind: str, value: str | Sequence[str] | None, table: dict) -> list[str]:
    names = list(table) if value is None else [value] if isinstance(value, str) else list(value)
    unknown = [n for n in names if n not in table]
    if unknown:
        raise ValueError(f"{_OP}: unknown {kind} {', '.join(map(repr, unknown))}; choose from {', '.join(table)}")
    return names


def simulate(scenario: str | Sequence[str] | None = None, model: str | Sequence[str] | None = None,
             batch: int | None = None, *, overlap: float = 0.0, granularity: int = 1,
             sum_bandwidth: float | None = None) -> list[Row]:
    """One Row per scenario and model named (None: all of them), at `batch` (None: each model's default);
    sum_bandwidth (bytes/s) replaces the scenarios' host summing speed."""
    scenarios = _names("scenario", scenario, SCENARIOS)
    models = _names("model", model, MODELS)
    if batch is not None:
        batch = validate.positive_int(_OP, "batch", batch)
    overlap = validate.finite(_OP, "overlap", overlap)
    if not 0.0 <= overlap <= 1.0:
        raise ValueError(f"{_OP}: overlap (the fraction of the backward the upload runs under) must be in [0, 1], "
                         f"got {overlap!r}")
    if sum_bandwidth is not None and not validate.finite(_OP, "sum_bandwidth", sum_bandwidth) > 0:
        raise ValueError(f"{_OP}: sum_bandwidth must be > 0 bytes/s, got {sum_bandwidth!r}")
    rows = []
    for s in scenarios:
        sc = SCENARIOS[s] if sum_bandwidth is None else replace(SCENARIOS[s], sum_bandwidth=float(sum_bandwidth))
        speeds = [d.gflops for d in sc.devices]  # images/s are proportional to GFLOP/s for one model
        for m in models:
            md = MODELS[m]
            b = md.batch if batch is None else batch
            prop = Balancer(len(speeds), granularity=granularity, weights=speeds).split(b)
            equal = Balancer(len(speeds), mode="equal", granularity=granularity).split(b)
            cp, sp = step_seconds(sc, md, prop, overlap)
            ce, se = step_seconds(sc, md, equal, overlap)
            alone = b * md.train_flops / (max(speeds) * 1e9)
            rows.append(Row(s, m, b, tuple(d.name for d in sc.devices), tuple(prop), tuple(equal), cp, ce, sp, se,
                            alone))
    return rows


def _sizes(devices: Sequence[str], sizes: Sequence[int]) -> str:
    """Shard sizes by device name, runs of one name and size merged: "fast gpu 47, fast gpu 45 (x3)"."""
    runs: list[list] = []
    for name, n in zip(devices, sizes):
        if runs and runs[-1][:2] == [name, n]:
            runs[-1][2] += 1
        else:
            runs.append([name, n, 1])
    return ", ".join(f"{name} {n}" + (f" (x{k})" if k > 1 else "") for name, n, k in runs)


_HEADER = ("scenario", "model", "batch", "proportional split", "equal split", "step, proportional (ms)",
           "step, equal (ms)", "speed-up", "reduction (ms)", "fastest alone (ms)")


def format_table(rows: Sequence[Row], markdown: bool = True) -> str:
    """The rows as a markdown table (or, markdown=False, columns aligned with spaces)."""
    cells = [_HEADER] + [
        (r.scenario, r.model, str(r.batch), _sizes(r.devices, r.proportional), _sizes(r.devices, r.equal),
         f"{r.step_proportional * 1e3:.3f}", f"{r.step_equal * 1e3:.3f}", f"{r.speedup:.2f}x",
         f"{r.reduce_proportional * 1e3:.3f}", f"{r.fastest_alone * 1e3:.3f}")
        for r in rows]
    numeric = range(5, len(_HEADER))
    widths = [max(len(row[c]) for row in cells) for c in range(len(_HEADER))]
    lines = []
    for k, row in enumerate(cells):
        padded = [v.rjust(w) if c in numeric else v.ljust(w) for c, (v, w) in enumerate(zip(row, widths))]
        lines.append("| " + " | ".join(padded) + " |" if markdown else "  ".join(padded).rstrip())
        if k == 0:
            rule = [("-" * (w - 1) + ":") if c in numeric else "-" * w for c, w in enumerate(widths)]
            lines.append("| " + " | ".join(rule) + " |" if markdown else "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive int, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0.0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1], got {text!r}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """python -m hetero.parallel.simulate: print the simulated steps of the named scenarios and models."""
    parser = argparse.ArgumentParser(prog="python -m hetero.parallel.simulate",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", action="append", choices=list(SCENARIOS), metavar="NAME",
                        help=f"one of {', '.join(SCENARIOS)} (repeatable; default: all)")
    parser.add_argument("--model", action="append", choices=list(MODELS), metavar="NAME",
                        help=f"one of {', '.join(MODELS)} (repeatable; default: all)")
    parser.add_argument("--batch", action="append", type=_positive_int, metavar="B",
                        help="global batch (repeatable; default: " +
                             ", ".join(f"{m.batch} for {m.name}" for m in MODELS.values()) + ")")
    parser.add_argument("--overlap", type=_fraction, default=0.0, metavar="F",
                        help="fraction of the backward the gradient upload runs under (default 0: none)")
    parser.add_argument("--granularity", type=_positive_int, default=1, metavar="G",
                        help="shard sizes are multiples of G but for the fastest device's (default 1)")
    parser.add_argument("--sum-gbs", type=_positive_float, metavar="GB/S",
                        help="host summing speed in GB/s of gradient (default: 4)")
    parser.add_argument("--markdown", action="store_true", help="print a markdown table")
    args = parser.parse_args(argv)
    rows = []
    for b in args.batch or [None]:
        rows += simulate(args.scenario, args.model, b, overlap=args.overlap, granularity=args.granularity,
                         sum_bandwidth=None if args.sum_gbs is None else args.sum_gbs * 1e9)
    print(format_table(rows, markdown=args.markdown))
    return 0


if __name__ == "__main__":
    sys.exit(main())
