"""ONNX import: `hetero.onnx.load(path, device=None)` gives a hetero Module that runs the graph eagerly, under
`hetero.compile` and in training. Needs the `onnx` package (`pip install 'hetero[onnx]'`)."""

try:
    import onnx  # noqa: F401  (the importer and the backend are built on it)
except ImportError as e:  # say which extra brings it rather than failing deep inside
    raise ImportError("hetero.onnx needs the onnx package: pip install 'hetero[onnx]' (or pip install onnx)") from e

from .importer import MIN_OPSET, OnnxModule, load, max_opset
from .ops import OPS, OpSpec, UnsupportedModelError

__all__ = ["MIN_OPSET", "OPS", "OnnxModule", "OpSpec", "UnsupportedModelError", "load", "max_opset"]
