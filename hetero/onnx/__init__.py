"""ONNX import and export: `hetero.onnx.load(path, device=None)` gives a hetero Module that runs the graph eagerly,
under `hetero.compile` and in training; `hetero.onnx.export(model, path, input_shape)` writes a hetero model as
ONNX. Needs the `onnx` package (`pip install 'hetero[onnx]'`)."""

try:
    import onnx  # noqa: F401  (the importer, the exporter and the backend are built on it)
except ImportError as e:  # say which extra brings it rather than failing deep inside
    raise ImportError("hetero.onnx needs the onnx package: pip install 'hetero[onnx]' (or pip install onnx)") from e

from .export import EXPORTERS, OPSET, ExportError, export, register_exporter, to_onnx
from .importer import MIN_OPSET, OnnxModule, load, max_opset
from .ops import OPS, OpSpec, UnsupportedModelError

__all__ = ["EXPORTERS", "MIN_OPSET", "OPS", "OPSET", "ExportError", "OnnxModule", "OpSpec", "UnsupportedModelError",
           "export", "load", "max_opset", "register_exporter", "to_onnx"]
