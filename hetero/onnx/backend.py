"""HeteroBackend: the onnx.backend.base.Backend interface over hetero.onnx.load, so onnx's own backend test
suite (onnx.backend.test.BackendTest) runs against hetero.

ONNX's device names (CPU, CUDA) do not name OpenCL devices: the backend reports only "CPU" and runs on
hetero's default device (hetero.device()), or on the one `prepare(..., hetero_device=...)` names.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import helper
from onnx.backend.base import Backend, BackendRep, namedtupledict

from ..autograd import no_grad
from ..tensor import Tensor
from .importer import OnnxModule, load


class HeteroRep(BackendRep):
    """A prepared model: run(inputs) evaluates it eagerly, without autograd, and returns numpy arrays."""

    def __init__(self, module: OnnxModule, output_types: list[int]):
        self.module = module
        self.output_types = output_types

    def run(self, inputs: Any, **kwargs: Any) -> tuple[Any, ...]:
        if isinstance(inputs, dict):
            inputs = [inputs[name] for name in self.module.input_names]
        elif not isinstance(inputs, (list, tuple)):
            inputs = [inputs]
        with no_grad():
            values = self.module.evaluate(*inputs)
        outs = []
        for value, elem in zip(values, self.output_types):
            if isinstance(value, Tensor):
                outs.append(value.numpy())
            else:  # computed on the host (shape arithmetic): in the type the graph declares
                dtype = helper.tensor_dtype_to_np_dtype(elem) if elem else np.asarray(value).dtype
                outs.append(np.asarray(value).astype(dtype))
        return namedtupledict("Outputs", self.module.output_names)(*outs)


class HeteroBackend(Backend):
    """onnx's Backend interface: prepare(model) -> HeteroRep; run_model and run_node build on it."""

    @classmethod
    def prepare(cls, model: onnx.ModelProto, device: str = "CPU", **kwargs: Any) -> HeteroRep:
        super().prepare(model, device, **kwargs)  # onnx.checker.check_model
        module = load(model, kwargs.get("hetero_device"))
        return HeteroRep(module, [o.type.tensor_type.elem_type for o in model.graph.output])

    @classmethod
    def run_node(cls, node: onnx.NodeProto, inputs: Any, device: str = "CPU", outputs_info: Any = None,
                 **kwargs: Any) -> tuple[Any, ...]:
        """One node as a one-node model over the given arrays (the default opset unless opset_version)."""
        super().run_node(node, inputs, device, outputs_info, **kwargs)
        arrays = [np.asarray(v) for v in inputs]
        graph = helper.make_graph(
            [node], "run_node",
            [helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)
             for name, a in zip(node.input, arrays)],
            [helper.make_empty_tensor_value_info(name) for name in node.output])
        opset = kwargs.get("opset_version", onnx.defs.onnx_opset_version())
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
        module = load(model, kwargs.get("hetero_device"))
        with no_grad():
            values = module.evaluate(*arrays)
        return tuple(v.numpy() if isinstance(v, Tensor) else np.asarray(v) for v in values)

    @classmethod
    def supports_device(cls, device: str) -> bool:
        return device == "CPU"
