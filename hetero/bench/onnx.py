"""`hetero bench --onnx MODEL.onnx`: a model file's batch-1 latency (p50 / p99) and batch-32 throughput on each
device through hetero.onnx.load + hetero.compile, beside ONNX Runtime on the CPU as the reference column.

Every call is what a user pays for one answer: the host input uploaded, the plan run, every output read back
into host memory. ONNX Runtime runs the same file with the CPUExecutionProvider on every core. `inspect(path)`
checks the file first and raises ValueError with a one-line reason (missing, not ONNX, a shape it cannot fill).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..device import Device
from ..graph import compile as compile_model
from .device_figures import Unsupported
from .latency import latency_figures
from .timing import Settings, rate, sample

REFERENCE = "onnxruntime"
THROUGHPUT_BATCH = 32
LATENCY_METRICS = [("latency p50", "us"), ("latency p99", "us")]
THROUGHPUT_METRICS = [("throughput", "img/s")]
ONNX_HELP = "pip install 'hetero[onnx]' (or pip install onnx)"
ORT_HELP = "pip install 'hetero[onnxruntime]' (or pip install onnxruntime)"


def import_onnx() -> Any:
    """The onnx package, or ValueError saying how to install it."""
    try:
        import onnx
    except Exception as e:  # ImportError, or a broken install
        raise ValueError(f"needs the onnx package ({type(e).__name__}: {e}); {ONNX_HELP}") from None
    return onnx


def import_ort() -> tuple[Any, str]:
    """onnxruntime, or None with the reason it does not import."""
    try:
        import onnxruntime
    except Exception as e:  # ImportError, or a broken install
        return None, f"onnxruntime does not import ({type(e).__name__}: {e}); {ORT_HELP}"
    return onnxruntime, ""


@dataclass(frozen=True)
class OnnxCase:
    """A checked model file: its one float input, the shape of one sample and its batch dimension."""

    path: str
    input_name: str
    sample_shape: tuple[int, ...]  # the input's shape without its first (batch) dimension
    fixed_batch: int | None  # None: the batch dimension is free

    @property
    def name(self) -> str:
        return Path(self.path).name

    def latency_batch(self) -> int:
        return self.fixed_batch or 1

    def throughput_batch(self, wanted: int | None = None) -> int:
        return self.fixed_batch or wanted or THROUGHPUT_BATCH

    def data(self, batch: int, seed: int = 0) -> np.ndarray:
        """A random float32 input of `batch` samples."""
        return np.random.default_rng(seed).standard_normal((batch, *self.sample_shape), dtype=np.float32)


def inspect(path: str | os.PathLike) -> OnnxCase:
    """Check an ONNX file for the bench: readable, a valid model, one float input whose dimensions past the first
    are fixed. ValueError with a one-line reason otherwise."""
    p = Path(path).expanduser()
    if not p.exists():
        raise ValueError("no such file")
    if p.is_dir():
        raise ValueError("is a folder, not an ONNX file")
    onnx = import_onnx()
    try:
        model = onnx.load(str(p))
    except Exception as e:  # protobuf's DecodeError, OSError, anything else onnx raises on a foreign file
        raise ValueError(f"not an ONNX model (it does not parse as one: {_first_line(e)})") from None
    if not model.graph.node:
        raise ValueError("not an ONNX model (no graph nodes)")
    try:
        onnx.checker.check_model(model)
    except Exception as e:  # onnx.checker.ValidationError and the C++ checker's other errors
        raise ValueError(f"not a valid ONNX model: {_first_line(e)}") from None
    initializers = {t.name for t in model.graph.initializer}
    inputs = [vi for vi in model.graph.input if vi.name not in initializers]
    if len(inputs) != 1:
        names = ", ".join(vi.name for vi in inputs) or "none"
        raise ValueError(f"has {len(inputs)} inputs ({names}); the bench measures models with one input")
    vi = inputs[0]
    tensor_type = vi.type.tensor_type
    if not vi.type.HasField("tensor_type"):
        raise ValueError(f"input {vi.name!r} is not a tensor")
    if tensor_type.elem_type != onnx.TensorProto.FLOAT:
        kind = onnx.TensorProto.DataType.Name(tensor_type.elem_type) if tensor_type.elem_type else "untyped"
        raise ValueError(f"input {vi.name!r} is {kind}; the bench feeds float32 inputs")
    if not tensor_type.HasField("shape"):
        raise ValueError(f"input {vi.name!r} declares no shape; export the model with a fixed input size")
    dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in tensor_type.shape.dim]
    shown = "(" + ", ".join(_dim_text(d) for d in tensor_type.shape.dim) + ")"
    if not dims:
        raise ValueError(f"input {vi.name!r} is a scalar; the bench needs a batch dimension first")
    free = [i for i, d in enumerate(dims) if d is None and i > 0]
    if free:
        raise ValueError(f"input {vi.name!r} has shape {shown}: only the first (batch) dimension may be dynamic; "
                         "export the model with a fixed input size")
    return OnnxCase(str(p), vi.name, tuple(int(d) for d in dims[1:]), dims[0])


def _dim_text(d) -> str:
    if d.HasField("dim_value"):
        return str(d.dim_value)
    return d.dim_param or "?"


def _first_line(e: Exception) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text[:200]


def describe_reference() -> dict:
    """The devices-list entry of the onnxruntime column."""
    ort, why = import_ort()
    if ort is None:
        return {"id": REFERENCE, "kind": "reference", "available": False, "name": REFERENCE, "reason": why}
    return {"id": REFERENCE, "kind": "reference", "available": True,
            "name": f"onnxruntime {ort.__version__} CPUExecutionProvider ({os.cpu_count()} threads)"}


# ---- runners ----------------------------------------------------------------------------------------------

class HeteroOnnxRunner:
    """The model on one device, compiled: calling it uploads the input, runs the plan and reads every output."""

    def __init__(self, dev: Device, case: OnnxCase):
        from .. import onnx as honnx  # needs the onnx package, which only this figure does

        self.module = honnx.load(case.path, device=dev)
        self.compiled = compile_model(self.module)

    def __call__(self, x: np.ndarray) -> list[np.ndarray]:
        out = self.compiled(x)
        return [t.numpy() for t in out] if isinstance(out, tuple) else [out.numpy()]


class OrtRunner:
    """The same file in ONNX Runtime's CPU provider, one intra-op thread per core."""

    def __init__(self, case: OnnxCase):
        ort, why = import_ort()
        if ort is None:
            raise Unsupported(why)
        options = ort.SessionOptions()
        options.intra_op_num_threads = os.cpu_count() or 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self.session = ort.InferenceSession(case.path, options, providers=["CPUExecutionProvider"])
        self.input_name = case.input_name

    def __call__(self, x: np.ndarray) -> list[np.ndarray]:
        return self.session.run(None, {self.input_name: x})


# ---- figures ----------------------------------------------------------------------------------------------

def _latency(runner, case: OnnxCase, settings: Settings, out: dict) -> None:
    x = case.data(case.latency_batch())
    out.update(latency_figures(lambda: runner(x), settings))


def _throughput(runner, case: OnnxCase, batch: int, settings: Settings, out: dict) -> None:
    x = case.data(batch)
    out["throughput"] = rate(batch, sample(lambda: runner(x), None, settings))


def hetero_latency(dev: Device, case: OnnxCase, settings: Settings, out: dict) -> None:
    _latency(HeteroOnnxRunner(dev, case), case, settings, out)


def hetero_throughput(dev: Device, case: OnnxCase, batch: int, settings: Settings, out: dict) -> None:
    _throughput(HeteroOnnxRunner(dev, case), case, batch, settings, out)


def ort_latency(case: OnnxCase, settings: Settings, out: dict) -> None:
    _latency(OrtRunner(case), case, settings, out)


def ort_throughput(case: OnnxCase, batch: int, settings: Settings, out: dict) -> None:
    _throughput(OrtRunner(case), case, batch, settings, out)
