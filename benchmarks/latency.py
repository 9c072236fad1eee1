"""Batch-1 latency (p50 / p99) and batch-32 throughput: hetero's compiled forward against ONNX Runtime (CPU) and
torch eager, the three in one process, interleaved round by round.

    python benchmarks/latency.py [--device SPEC] [--models lenet5,resnet18,onnx:lenet5] [--rounds 7]
                                 [--seconds 0.5] [--batch 32] [--profile] [--json FILE]

A call is what a user pays for one answer: the host input uploaded, the model run, the output read back.
Models: hetero's own (`lenet5`, `resnet18`: 28x28, one channel, as hetero bench builds them), with ONNX Runtime
running torch's twin of the same network exported to ONNX; `onnx:NAME` is that torch twin exported to ONNX and
loaded by all three sides (hetero through hetero.onnx.load, so the three share weights and the outputs are
compared); `onnx:FILE.onnx` is a file of yours (no torch side). Each round runs every side for about
--seconds at batch 1 and again at --batch, the order rotating between rounds, a pause between blocks (thread
pools keep spinning a while after a call); each ratio is the median over the rounds of that round's ratio.
--profile adds, per model, where hetero's batch-1 call goes: the device time of every launch of the compiled
plan and the gaps between them, the pyopencl calls one inference makes, and the Python side's cProfile.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

import hetero
from hetero.bench.latency import count_calls, percentile, profile_plan, timed_calls
from hetero.bench.models import MODEL_KWARGS, NUM_CLASSES
from hetero.models import get_model

_PAUSE = 0.2  # OpenMP, ONNX Runtime and PoCL threads keep spinning a while after a call
_WARMUP_CALLS = 20


def _export(torch, model, path: str) -> None:
    """torch's model to an ONNX file with a free batch dimension."""
    x = torch.zeros(1, 1, 28, 28)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notices
        torch.onnx.export(model, (x,), path, input_names=["input"], output_names=["output"], opset_version=17,
                          dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}}, dynamo=False)


def _ort_session(path: str):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = os.cpu_count() or 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x})


def _hetero_call(compiled):
    def call(x):
        out = compiled(x)
        return [t.numpy() for t in out] if isinstance(out, tuple) else [out.numpy()]
    return call


class Case:
    """One model on every side: a call function per side, the batch-1 and throughput inputs."""

    def __init__(self, spec: str, dev, torch, folder: str, batch: int):
        from hetero.bench.references import _torch_model

        self.spec = spec
        self.sides: dict = {}
        self.shape = (1, 28, 28)
        one = 1
        twin = None
        if spec.startswith("onnx:") and spec.endswith(".onnx"):
            from hetero.bench.onnx import inspect

            path = spec[len("onnx:"):]
            info = inspect(path)
            self.shape = info.sample_shape
            one, batch = info.latency_batch(), info.throughput_batch(batch)  # a fixed batch is kept
            self.name = Path(path).name
        elif spec.startswith("onnx:"):
            base = spec[len("onnx:"):]
            torch.manual_seed(0)
            twin = _torch_model(torch, base).eval()
            path = os.path.join(folder, f"{base}.onnx")
            _export(torch, twin, path)
            self.name = f"{base} (ONNX)"
        else:
            torch.manual_seed(0)
            twin = _torch_model(torch, spec).eval()
            path = os.path.join(folder, f"{spec}.onnx")
            _export(torch, twin, path)
            self.name = spec
        if spec.startswith("onnx:"):
            from hetero.onnx import load

            model = load(path, device=dev)
        else:
            model = get_model(spec, num_classes=NUM_CLASSES, device=dev, **MODEL_KWARGS[spec]).eval()
        self.compiled = hetero.compile(model)
        self.sides["hetero"] = _hetero_call(self.compiled)
        self.sides["onnxruntime"] = _ort_session(path)
        if twin is not None:
            def eager(x, twin=twin):
                with torch.inference_mode():
                    return twin(torch.from_numpy(x)).numpy()
            self.sides["torch"] = eager
        rng = np.random.default_rng(0)
        self.x1 = rng.standard_normal((one, *self.shape), dtype=np.float32)
        self.xb = rng.standard_normal((batch, *self.shape), dtype=np.float32)
        self.batch1, self.batch = one, batch
        self.agreement = None
        if spec.startswith("onnx:"):  # the same weights everywhere: the answers must agree
            ours = self.sides["hetero"](self.x1)[0]
            theirs = self.sides["onnxruntime"](self.x1)[0]
            self.agreement = float(np.abs(ours - theirs).max())


def _calls_for(fn, seconds: float) -> int:
    for _ in range(3):
        fn()
    t0 = time.perf_counter()
    fn()
    return max(3, int(seconds / max(time.perf_counter() - t0, 1e-7)))


def measure(case: Case, rounds: int, seconds: float, throughput: bool) -> dict:
    """Per side: every batch-1 call time and, per round, the p50, p99 and the batch throughput (img/s)."""
    batch = case.batch
    one = {s: (lambda f=f: f(case.x1)) for s, f in case.sides.items()}
    big = {s: (lambda f=f: f(case.xb)) for s, f in case.sides.items()}
    calls1 = {s: _calls_for(f, seconds) for s, f in one.items()}
    callsb = {s: _calls_for(f, seconds) for s, f in big.items()} if throughput else {}
    res = {s: {"times": [], "p50": [], "p99": [], "img/s": []} for s in case.sides}
    names = list(case.sides)
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for side in order:
            time.sleep(_PAUSE)
            for _ in range(_WARMUP_CALLS):
                one[side]()
            ts = timed_calls(one[side], calls1[side])
            res[side]["times"] += ts
            res[side]["p50"].append(statistics.median(ts))
            res[side]["p99"].append(percentile(ts, 99))
            if throughput:
                time.sleep(_PAUSE)
                big[side]()
                t0 = time.perf_counter()
                for _ in range(callsb[side]):
                    big[side]()
                res[side]["img/s"].append(batch * callsb[side] / (time.perf_counter() - t0))
    return res


def _ratio(res: dict, a: str, b: str, key: str) -> tuple[float, float, float] | None:
    if a not in res or b not in res or not res[a][key]:
        return None
    rs = [x / y for x, y in zip(res[a][key], res[b][key])]
    return statistics.median(rs), min(rs), max(rs)


def report(case: Case, res: dict) -> list[str]:
    batch = case.batch
    lines = [f"{case.name}" + ("" if case.agreement is None else f"   (max |hetero - onnxruntime| "
                                                                  f"{case.agreement:.2g})")]
    one = f"b{case.batch1}"
    lines.append(f"  {'side':<12} {one + ' p50 us':>10} {one + ' p99 us':>10} {f'b{batch} img/s':>11}")
    for side, r in res.items():
        ts = r["times"]
        thr = f"{statistics.median(r['img/s']):>11,.0f}" if r["img/s"] else f"{'-':>11}"
        lines.append(f"  {side:<12} {statistics.median(ts) * 1e6:>10.0f} {percentile(ts, 99) * 1e6:>10.0f} {thr}")
    for peer in ("onnxruntime", "torch"):
        p50, p99 = _ratio(res, "hetero", peer, "p50"), _ratio(res, "hetero", peer, "p99")
        thr = _ratio(res, "hetero", peer, "img/s")
        if p50 is None:
            continue
        text = (f"  hetero/{peer}: {one} latency p50 {p50[0]:.2f}x ({p50[1]:.2f}-{p50[2]:.2f}), "
                f"p99 {p99[0]:.2f}x; lower is better")
        if thr is not None:
            text += f"; b{batch} throughput {thr[0]:.2f}x ({thr[1]:.2f}-{thr[2]:.2f}), higher is better"
        lines.append(text)
    return lines


def profile(case: Case, calls: int = 300) -> list[str]:
    """Where hetero's batch-1 call goes: per-launch device times, pyopencl calls per inference, cProfile."""
    call = case.sides["hetero"]
    for _ in range(_WARMUP_CALLS):
        call(case.x1)
    lines = [f"{case.name}: profile of hetero's batch-1 call"]
    with count_calls() as counts:
        for _ in range(calls):
            call(case.x1)
    per = ", ".join(f"{k} {v / calls:g}" for k, v in sorted(counts.items()))
    lines.append(f"  pyopencl calls per inference: {per or 'none seen'}")
    for plan in case.compiled.plans():  # batch 1, and the throughput batch when it was measured
        if hasattr(plan, "replay_on"):
            lines.append(f"  device time of one replay at batch {plan.inputs[0].shape[0]}:")
            lines.append(profile_plan(plan).table())
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(calls):
        call(case.x1)
    prof.disable()
    text = io.StringIO()
    pstats.Stats(prof, stream=text).sort_stats("tottime").print_stats(8)
    body = [ln for ln in text.getvalue().splitlines() if ln.strip()]
    start = next((i for i, ln in enumerate(body) if ln.lstrip().startswith("ncalls")), 0)
    lines.append(f"  cProfile, {calls} calls (tottime s):")
    lines += ["    " + ln for ln in body[start:]]
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None, help="device spec (default: $HETERO_DEVICE or the best)")
    parser.add_argument("--models", default="lenet5,resnet18,onnx:lenet5",
                        help="comma-separated: hetero model names, onnx:NAME (torch's NAME exported to ONNX) or "
                             "onnx:FILE.onnx")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds (median ratio reported)")
    parser.add_argument("--seconds", type=float, default=0.5, help="seconds per side per block")
    parser.add_argument("--batch", type=int, default=32, help="batch of the throughput figure")
    parser.add_argument("--no-throughput", action="store_true", help="batch-1 latency only")
    parser.add_argument("--profile", action="store_true", help="also profile hetero's batch-1 call")
    parser.add_argument("--json", metavar="FILE", help="write every figure as JSON")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    dev = hetero.device(args.device)
    import onnxruntime

    print(f"hetero {hetero.__version__} on {dev.label}; onnxruntime {onnxruntime.__version__} CPU and torch "
          f"{torch.__version__}, {os.cpu_count()} threads each")
    saved = {}
    with tempfile.TemporaryDirectory(prefix="hetero-latency-") as folder:
        for spec in [s.strip() for s in args.models.split(",") if s.strip()]:
            case = Case(spec, dev, torch, folder, args.batch)
            res = measure(case, args.rounds, args.seconds, not args.no_throughput)
            print("\n".join(report(case, res)), flush=True)
            if args.profile:
                print("\n".join(profile(case)), flush=True)
            saved[case.name] = {side: {k: v for k, v in r.items() if k != "times"} | {
                "all p50": statistics.median(r["times"]), "all p99": percentile(r["times"], 99)}
                for side, r in res.items()}
            del case
    if args.json:
        Path(args.json).write_text(json.dumps(saved, indent=1) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
