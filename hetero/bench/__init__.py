"""`hetero bench`: device, op and model figures for each OpenCL device beside numpy and torch-cpu, and an ONNX
model's batch-1 latency and batch-32 throughput beside ONNX Runtime.

    report = hetero.bench.run(devices="all", quick=True)
    print(report.table())
    report.to_json("bench.json")
    hetero.bench.run(onnx="model.onnx").table()      # only the "onnx" category, unless categories= says more

run() measures one figure group (a task) at a time: every device's tasks, then each reference's. A task
that raises is recorded with status "error" and the exception as reason, and the run goes on; after
MAX_DEVICE_ERRORS errors in a row a device's remaining tasks are skipped. `progress(message, fraction)`
is called before each task; `cancel` (a threading.Event) is checked between tasks, and what did not run
is recorded as "skipped". Safe to call from a worker thread (the GUI does), one run at a time: the
model figures point HETERO_CACHE_DIR at a temporary folder while they take the cold first step.
"""

from __future__ import annotations

import datetime
import os
import platform
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .._version import __version__
from ..device import Device, select_devices
from . import device_figures, ops
from . import models as model_figures
from . import onnx as onnx_figures
from . import parallel as parallel_figures
from . import references as refs
from .device_figures import Unsupported
from .report import REFERENCES, BenchReport, Result
from .timing import Settings

DEFAULT_MODELS = ("lenet5", "alexnet_mnist", "resnet18")
# "parallel": one model trained data-parallel over the benchmarked devices together (two or more);
# "onnx": a model file's latency and throughput (run(onnx=PATH)), the only category measured by default then
DEFAULT_CATEGORIES = ("device", "op", "model", "parallel")
CATEGORIES = (*DEFAULT_CATEGORIES, "onnx")
# which categories each reference column can measure
REFERENCE_CATEGORIES = {"numpy": ("device", "op", "model"), "torch-cpu": ("device", "op", "model"),
                        onnx_figures.REFERENCE: ("onnx",)}
MAX_DEVICE_ERRORS = 3
# between columns: OpenBLAS and OpenMP threads keep spinning a while after a call and would share the
# cores with the next column's threads
PAUSE_BETWEEN_COLUMNS = 0.5

__all__ = ["BenchReport", "Result", "Settings", "run", "DEFAULT_MODELS", "CATEGORIES", "DEFAULT_CATEGORIES"]


@dataclass
class _Task:
    device: str
    category: str
    test: str
    metrics: list[tuple[str, str]]
    fn: Callable[[dict], None]  # fills metric -> (value, spread)


def _host() -> dict:
    info = {"platform": platform.platform(), "machine": platform.machine(), "processor": platform.processor(),
            "cpu_count": os.cpu_count(), "python": sys.version.split()[0], "numpy": np.__version__,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    try:
        import pyopencl

        info["pyopencl"] = pyopencl.VERSION_TEXT
    except Exception:  # pragma: no cover - pyopencl is a dependency
        pass
    torch, _ = refs.import_torch()
    if torch is not None:
        info["torch"] = torch.__version__
    return info


def _resolve(devices) -> tuple[list[Device], list[Result]]:
    """Devices for the specs; a spec that fails to open becomes an error result, not a failed run."""
    if isinstance(devices, str):
        specs: list = [s.strip() for s in devices.split(",") if s.strip()]
    elif isinstance(devices, Device):
        specs = [devices]
    else:
        specs = list(devices or [])
    out: list[Device] = []
    errors: list[Result] = []
    for spec in specs:
        if isinstance(spec, Device):
            found = [spec]
        else:
            try:
                found = select_devices([spec])
            except Exception as e:
                errors.append(Result(str(spec), "device", "open", "open", "", status="error",
                                     reason=f"{type(e).__name__}: {e}"))
                continue
        out += [d for d in found if d not in out]
    return out, errors


def _device_tasks(dev: Device, settings: Settings, categories, model_names) -> list[_Task]:
    tasks = []
    if "device" in categories:
        for test, metrics, fn in device_figures.figures(settings):
            tasks.append(_Task(dev.id, "device", test, metrics, lambda out, fn=fn: fn(dev, settings, out)))
    if "op" in categories:
        for spec in ops.specs(settings):
            tasks.append(_Task(dev.id, "op", spec.test(), [("forward", spec.unit), ("backward", spec.unit)],
                               lambda out, s=spec: ops.measure_hetero(dev, s, settings, out)))
    if "model" in categories:
        for name in model_names:
            test = f"{name} b{model_figures.batch_size_for(name, settings)}"
            tasks.append(_Task(dev.id, "model", test, model_figures.METRICS,
                               lambda out, n=name: model_figures.measure_hetero(dev, n, settings, out)))
    return tasks


def _onnx_tasks(column: str, case: onnx_figures.OnnxCase, batch: int | None, settings: Settings,
                dev: Device | None = None) -> list[_Task]:
    """The latency and throughput tasks of an ONNX file on a device, or on ONNX Runtime when dev is None."""
    lat = f"{case.name} b{case.latency_batch()}"
    big = case.throughput_batch(batch)
    thr = f"{case.name} b{big}"
    if dev is None:
        return [_Task(column, "onnx", lat, onnx_figures.LATENCY_METRICS,
                      lambda out: onnx_figures.ort_latency(case, settings, out)),
                _Task(column, "onnx", thr, onnx_figures.THROUGHPUT_METRICS,
                      lambda out: onnx_figures.ort_throughput(case, big, settings, out))]
    return [_Task(column, "onnx", lat, onnx_figures.LATENCY_METRICS,
                  lambda out: onnx_figures.hetero_latency(dev, case, settings, out)),
            _Task(column, "onnx", thr, onnx_figures.THROUGHPUT_METRICS,
                  lambda out: onnx_figures.hetero_throughput(dev, case, big, settings, out))]


def _parallel_tasks(devs: list[Device], settings: Settings, model_names) -> list[_Task]:
    if len(devs) < 2:
        return []  # nothing to train on together
    together, why = parallel_figures.usable_set(devs)
    tasks = []
    for name in model_names:
        test = f"{name} b{model_figures.batch_size_for(name, settings)}"
        if not together:
            def refuse(out: dict, why: str = why) -> None:
                raise Unsupported(why)

            tasks.append(_Task(parallel_figures.set_name(devs), "parallel", test, [("train", "img/s")], refuse))
            continue
        tasks.append(_Task(parallel_figures.set_name(together), "parallel", test, parallel_figures.metrics(together),
                           lambda out, n=name: parallel_figures.measure(together, n, settings, out)))
    return tasks


def _reference_tasks(ref: str, settings: Settings, categories, model_names) -> list[_Task]:
    numpy_side = ref == "numpy"
    r = refs
    tasks = []
    if "device" in categories:
        figs = device_figures.figures(settings)
        memory, gemm = figs[0], figs[3]
        fns = ((memory, r.numpy_memory if numpy_side else r.torch_memory),
               (gemm, r.numpy_gemm if numpy_side else r.torch_gemm),
               (figs[4], r.numpy_gemm_fp16 if numpy_side else r.torch_gemm_fp16))
        for (test, metrics, _), fn in fns:
            tasks.append(_Task(ref, "device", test, metrics, lambda out, fn=fn: fn(settings, out)))
    if "op" in categories:
        op_fn = r.numpy_op if numpy_side else r.torch_op
        for spec in ops.specs(settings):
            tasks.append(_Task(ref, "op", spec.test(), [("forward", spec.unit), ("backward", spec.unit)],
                               lambda out, s=spec: op_fn(s, settings, out)))
    if "model" in categories:
        model_fn = r.numpy_model if numpy_side else r.torch_model
        for name in model_names:
            tasks.append(_Task(ref, "model", f"{name} b{model_figures.batch_size_for(name, settings)}",
                               model_figures.REFERENCE_METRICS, lambda out, n=name: model_fn(n, settings, out)))
    return tasks


def _results(task: _Task, out: dict, status: str = "ok", reason: str = "") -> list[Result]:
    res = []
    for metric, unit in task.metrics:
        if metric in out:
            value, spread = out[metric]
            res.append(Result(task.device, task.category, task.test, metric, unit, float(value),
                              None if spread is None else float(spread)))
        else:
            res.append(Result(task.device, task.category, task.test, metric, unit,
                              status=status if status != "ok" else "skipped", reason=reason or "not measured"))
    return res


def run(devices: str | Sequence[str | Device] | Device = "all", models: Iterable[str] = DEFAULT_MODELS,
        batch_size: int | None = None, quick: bool = False, references: Iterable[str] = REFERENCES,
        progress: Callable[[str, float], None] | None = None, cancel: threading.Event | None = None, *,
        categories: Iterable[str] | None = None, settings: Settings | None = None,
        onnx: str | os.PathLike | None = None) -> BenchReport:
    """Measure every device spec (a comma-separated string, a list of specs or Devices; "all" is every
    usable device, sub-devices only when named, e.g. "all,cpu/2") and each reference ("numpy",
    "torch-cpu", "onnxruntime"; each only in the categories it can measure). `settings` overrides the
    quick/full preset (batch_size still applies to the models). `onnx`: a model file measured in the "onnx"
    category, which is then the default; ValueError with the reason when the file cannot be measured."""
    model_names = [m for m in models]
    for name in model_names:
        model_figures.check_model(name)
    if categories is None:
        categories = ("onnx",) if onnx is not None else DEFAULT_CATEGORIES
    categories = tuple(categories)
    bad = [c for c in categories if c not in CATEGORIES]
    if bad:
        raise ValueError(f"bench: unknown categories {bad}; choose from {', '.join(CATEGORIES)}")
    case = None
    if onnx is not None:
        try:
            case = onnx_figures.inspect(onnx)
        except ValueError as e:
            raise ValueError(f"bench: {onnx}: {e}") from None
        if "onnx" not in categories:
            categories += ("onnx",)
    elif "onnx" in categories:
        raise ValueError("bench: the onnx category measures a model file; pass onnx=PATH")
    ref_names = list(references)
    unknown = [r for r in ref_names if r not in REFERENCE_CATEGORIES]
    if unknown:
        raise ValueError(f"bench: unknown references {unknown}; choose from {', '.join(REFERENCES)}")
    if settings is None:
        settings = Settings.quick(batch_size) if quick else Settings.full(batch_size)
    elif batch_size is not None:
        settings = Settings(**{**asdict(settings), "model_batch": batch_size})
    report = BenchReport(hetero_version=__version__, host=_host(),
                         settings={**asdict(settings), "quick": bool(quick), "categories": list(categories)})
    if case is not None:
        report.settings["onnx"] = str(Path(case.path).resolve())
    devs, open_errors = _resolve(devices)
    report.results += open_errors
    for d in devs:
        report.devices.append({**d.info.to_dict(), "kind": "opencl"})
    tasks: list[_Task] = []
    for d in devs:
        tasks += _device_tasks(d, settings, categories, model_names)
        if case is not None:
            tasks += _onnx_tasks(d.id, case, batch_size, settings, d)
    if "parallel" in categories:
        together = _parallel_tasks(devs, settings, model_names)
        for name in dict.fromkeys(t.device for t in together):
            report.devices.append({"id": name, "name": f"one model data-parallel over {name.replace('+', ', ')}",
                                   "kind": "set"})
        tasks += together
    for ref in ref_names:
        served = [c for c in REFERENCE_CATEGORIES[ref] if c in categories]
        if not served:
            continue  # a column with nothing to show
        if ref == onnx_figures.REFERENCE:
            entry = onnx_figures.describe_reference()
            report.devices.append(entry)
            ort_tasks = _onnx_tasks(ref, case, batch_size, settings)
            if entry["available"]:
                tasks += ort_tasks
            else:  # the column stays, saying why it is empty
                for task in ort_tasks:
                    report.results += _results(task, {}, "unsupported", entry["reason"])
            continue
        entry = refs.describe(ref)
        report.devices.append(entry)
        if entry["available"]:
            tasks += _reference_tasks(ref, settings, categories, model_names)
    _execute(tasks, report, progress, cancel)
    return report


def _execute(tasks: list[_Task], report: BenchReport, progress, cancel) -> None:
    errors_in_row: dict[str, int] = {}
    failed: dict[str, str] = {}
    column = None
    for i, task in enumerate(tasks):
        if cancel is not None and cancel.is_set():
            report.results += _results(task, {}, "skipped", "cancelled")
            continue
        if task.device in failed:
            report.results += _results(task, {}, "skipped", f"device failed earlier: {failed[task.device]}")
            continue
        if column is not None and task.device != column:
            time.sleep(PAUSE_BETWEEN_COLUMNS)
        column = task.device
        if progress is not None:
            progress(f"{task.device}: {task.category} {task.test}", i / max(len(tasks), 1))
        out: dict = {}
        try:
            task.fn(out)
        except Unsupported as e:
            report.results += _results(task, out, "unsupported", str(e))
            continue
        except Exception as e:  # one failing figure is recorded and the run goes on
            reason = f"{type(e).__name__}: {' '.join(str(e).split())[:500]}"
            report.results += _results(task, out, "error", reason)
            errors_in_row[task.device] = errors_in_row.get(task.device, 0) + 1
            if errors_in_row[task.device] >= MAX_DEVICE_ERRORS:
                failed[task.device] = reason
            continue
        errors_in_row[task.device] = 0
        report.results += _results(task, out)
    if progress is not None:
        progress("done", 1.0)
