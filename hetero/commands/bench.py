"""`hetero bench`: device, op and model figures per OpenCL device beside numpy and torch-cpu; with --onnx, a model
file's batch-1 latency and batch-32 throughput beside ONNX Runtime."""

from __future__ import annotations

import argparse
import shutil
import sys

from . import output_problem


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="measure and compare devices: bandwidth, GEMM, ops and models",
                       description="Measure each OpenCL device (memory bandwidth, transfers, launch latency, GEMM, "
                       "per-op and per-model figures) beside numpy and torch-cpu, and print one table; with "
                       "--onnx, an ONNX model's batch-1 latency and batch-32 throughput beside ONNX Runtime.")
    p.add_argument("--devices", default="all",
                   help="comma-separated device specs; 'all' is every usable device (sub-devices only when "
                   "named, e.g. 'all,cpu/2'); default: all")
    p.add_argument("--models", default="lenet5,alexnet_mnist,resnet18",
                   help="comma-separated models, or 'none' (default: lenet5,alexnet_mnist,resnet18)")
    p.add_argument("--batch-size", type=int, default=None, help="batch size for every model (default: per model)")
    p.add_argument("--quick", action="store_true", help="few repeats and small sizes (about a minute a device)")
    p.add_argument("--references", default="numpy,torch-cpu,onnxruntime",
                   help="comma-separated reference columns, or 'none'; each shows in the categories it can "
                        "measure (default: numpy,torch-cpu,onnxruntime)")
    p.add_argument("--onnx", metavar="MODEL.onnx",
                   help="measure this ONNX model: batch-1 latency (p50, p99; upload, run, read back per call) and "
                        "batch-32 throughput per device, beside ONNX Runtime on the CPU; alone unless --only says more")
    p.add_argument("--only", default=None,
                   help="comma-separated categories to measure; 'parallel' trains each model data-parallel over "
                        "all the benchmarked devices together, when there are two or more; 'onnx' is --onnx's "
                        "(default: device,op,model,parallel, or onnx with --onnx)")
    p.add_argument("--json", metavar="FILE", help="write the results as JSON")
    p.add_argument("--csv", metavar="FILE", help="write the results as CSV")
    p.add_argument("--compare", metavar="BASELINE.json", help="also print the change against a saved run")
    p.set_defaults(func=run)


def _names(text: str) -> list[str]:
    items = [s.strip() for s in text.split(",") if s.strip()]
    return [] if items == ["none"] else items


class _Progress:
    """One status line on stderr, rewritten with \\r when the stream is a terminal (else one line each)."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.width = 0

    def __call__(self, message: str, fraction: float) -> None:
        line = f"bench [{fraction * 100:3.0f}%] {message}"
        if self.tty:
            cols = shutil.get_terminal_size().columns - 1
            line = line[:cols]
            self.stream.write("\r" + line.ljust(self.width))
            self.width = len(line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty and self.width:
            self.stream.write("\r" + " " * self.width + "\r")
            self.stream.flush()


def _usage_error(message: str) -> int:
    print(f"hetero bench: error: {message}", file=sys.stderr)
    return 2


def _check_names(option: str, names: list[str], allowed, none_ok: bool = True) -> str | None:
    bad = [n for n in names if n not in allowed]
    if bad:
        return (f"{option}: unknown {', '.join(repr(b) for b in bad)}; choose from {', '.join(allowed)}"
                + (" or 'none'" if none_ok else ""))
    return None


def run(args: argparse.Namespace) -> int:
    """Check every argument (devices included) before measuring anything, then run and print the table."""
    from ..bench import CATEGORIES, DEFAULT_CATEGORIES, BenchReport
    from ..bench import run as bench_run
    from ..bench.models import MODEL_KWARGS
    from ..bench.onnx import inspect
    from ..bench.report import REFERENCES
    from ..device import select_devices
    from ..errors import HeteroError

    if args.batch_size is not None and args.batch_size <= 0:
        return _usage_error(f"--batch-size must be positive, got {args.batch_size}")
    if args.only is None:
        only = ["onnx"] if args.onnx else list(DEFAULT_CATEGORIES)
    else:
        only = _names(args.only)
    problems = [_check_names("--models", _names(args.models), tuple(MODEL_KWARGS)),
                _check_names("--references", _names(args.references), REFERENCES),
                _check_names("--only", only, CATEGORIES, none_ok=False)]
    if not only:
        problems.append(f"--only: name at least one of {', '.join(CATEGORIES)}")
    if "onnx" in only and not args.onnx:
        problems.append("--only onnx measures a model file: name it with --onnx MODEL.onnx")
    if args.onnx:
        try:
            inspect(args.onnx)
        except ValueError as e:
            problems.append(f"--onnx {args.onnx}: {e}")
        if "onnx" not in only:
            only.append("onnx")
    for option, path in (("--json", args.json), ("--csv", args.csv)):
        problem = None if path is None else output_problem(path)
        if problem:
            problems.append(f"{option} {path}: {problem}")
    problems = [p for p in problems if p]
    if problems:
        return _usage_error("\n  ".join(problems))
    try:
        baseline = BenchReport.load(args.compare) if args.compare else None  # fail before measuring, not after
    except ValueError as e:
        return _usage_error(f"--compare {e}")
    specs = [s.strip() for s in args.devices.split(",") if s.strip()]
    if not specs:
        return _usage_error("--devices is empty; name device specs (see `hetero devices`) or 'all'")
    try:
        devices = select_devices(specs)
    except (HeteroError, ValueError) as e:
        return _usage_error(f"--devices {args.devices}: {e}")
    if not devices:
        return _usage_error(f"--devices {args.devices} matched no usable device (see `hetero devices`)")
    progress = _Progress()
    try:
        report = bench_run(devices=devices, models=_names(args.models), batch_size=args.batch_size,
                           quick=args.quick, references=_names(args.references), progress=progress,
                           categories=only, onnx=args.onnx)
    finally:
        progress.close()
    print(report.table())
    if baseline is not None:
        print()
        print(f"change against {args.compare}:")
        print(report.compare(baseline))
    if args.json:
        report.to_json(args.json)
        print(f"\nwrote {args.json}")
    if args.csv:
        report.to_csv(args.csv)
        print(f"wrote {args.csv}" if args.json else f"\nwrote {args.csv}")
    errors = sum(r.status == "error" for r in report.results)
    if errors:
        print(f"hetero bench: {errors} figure(s) failed; see the reasons under the table", file=sys.stderr)
    return 0
