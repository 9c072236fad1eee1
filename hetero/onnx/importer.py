"""hetero.onnx.load: an ONNX model as a hetero Module whose forward runs the graph's nodes with hetero ops.

At load every node is checked against the registry (hetero/onnx/ops.py) and refused with an
UnsupportedModelError if its op, schema version, attributes or data types are not imported. Values are of
three kinds: constants (initializers, Constant nodes and everything folded from them at load), host values
(shape arithmetic on the static shapes of device tensors, computed with numpy at each forward) and device
tensors (float32). Float32 initializers that device ops read become parameters named as the initializers
(so the model trains, and state_dict keys are the initializer names); BatchNormalization's running stats
become buffers; other constants that device ops read are uploaded once, as non-persistent buffers.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import defs, helper, numpy_helper, shape_inference

from ..device import Device
from ..device import device as get_device
from ..nn.module import Module, Parameter
from ..tensor import Tensor, tensor
from .ops import OPS, Node, Unsupported, UnsupportedModelError

MIN_OPSET = 6  # the oldest opset imported (PyTorch's oldest exporter target, the model zoo's CNNs)
_FLOAT = onnx.TensorProto.FLOAT


def max_opset() -> int:
    """The newest opset the installed onnx knows (each op's schema versions are checked against the registry)."""
    return defs.onnx_opset_version()


class _StaticShape:
    """Stands for a device tensor whose shape shape inference knows, where a fold reads only its shape."""

    def __init__(self, shape: tuple[int, ...]):
        self.shape = shape


class _Holder(Module):
    """A level of the dotted initializer names ("features" of "features.0.weight"): holds, never runs."""


@dataclass
class _Step:
    node: Node
    run: Callable[[list], list]
    inputs: list[tuple[str, str]]  # (value name or "", "host" | "device") per node input
    free: list[str] = field(default_factory=list)  # device values last read here


@dataclass
class _Graph:
    """Everything forward needs, kept off the Module's attribute namespace (initializer names live there)."""

    device: Device
    opset: int
    inputs: list[tuple[str, str, tuple]]  # (name, "host" | "device", declared shape, None where free)
    outputs: list[str]
    consts: dict[str, np.ndarray]
    slots: dict[str, tuple[Module, str, str]]  # value -> (owner, "_parameters" | "_buffers", attribute)
    steps: list[_Step]
    onnx_names: dict[str, str]  # state_dict key -> initializer name, where the two differ


def _refuse(node: str, op: str, opset: int, problem: str, supported: str) -> UnsupportedModelError:
    return UnsupportedModelError(f"ONNX node {node!r} ({op}, opset {opset}): {problem}. Supported: {supported}")


def _elem_name(elem: int) -> str:
    try:
        return onnx.TensorProto.DataType.Name(elem)
    except ValueError:
        return f"type {elem}"


def _declared_shape(vi: onnx.ValueInfoProto) -> tuple | None:
    t = vi.type.tensor_type
    if not vi.type.HasField("tensor_type") or not t.HasField("shape"):
        return None
    return tuple(d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim)


class OnnxModule(Module):
    """An imported ONNX graph. forward(*inputs) takes the graph inputs in order (float32 Tensors or arrays; an
    input used only as shapes or bounds takes a numpy array) and returns one Tensor or a tuple of them."""

    def __init__(self, model: onnx.ModelProto, device: str | int | Device | None = None):
        super().__init__()
        object.__setattr__(self, "_onnx", None)
        graph = _Builder(self, model, get_device(device)).build()
        object.__setattr__(self, "_onnx", graph)
        self.eval()  # ONNX graphs are inference graphs: running stats, no dropout, until train() is called

    @property
    def input_names(self) -> list[str]:
        return [name for name, _, _ in self._onnx.inputs]

    @property
    def output_names(self) -> list[str]:
        return list(self._onnx.outputs)

    @property
    def opset(self) -> int:
        return self._onnx.opset

    @property
    def onnx_names(self) -> dict[str, str]:
        """state_dict key -> initializer name for the initializers whose names could not be kept as keys."""
        return dict(self._onnx.onnx_names)

    def to(self, device: str | int | Device | None = None) -> OnnxModule:
        super().to(device)
        self._onnx.device = get_device(device)
        return self

    def extra_repr(self) -> str:
        g = self._onnx
        return f"opset={g.opset}, nodes={len(g.steps)}, inputs={self.input_names}, outputs={self.output_names}"

    def evaluate(self, *inputs) -> list[Tensor | np.ndarray]:
        """Run the graph: one Tensor per device output, one numpy array per output computed on the host."""
        g = self._onnx
        if len(inputs) != len(g.inputs):
            raise ValueError(f"ONNX model: expected {len(g.inputs)} inputs ({', '.join(self.input_names)}), "
                             f"got {len(inputs)}")
        host: dict[str, Any] = dict(g.consts)
        dev: dict[str, Tensor] = {}
        for (name, form, declared), x in zip(g.inputs, inputs):
            if form == "host":
                host[name] = np.asarray(x.numpy() if isinstance(x, Tensor) else x)
            else:
                dev[name] = self._input_tensor(name, x, declared)
        for step in g.steps:
            args = [None if not name else host[name] if form == "host" else self._device_value(name, dev, host)
                    for name, form in step.inputs]
            try:
                outs = step.run(args)
            except (ValueError, Unsupported) as e:
                n = step.node
                raise ValueError(f"ONNX node {n.name!r} ({n.op}, opset {n.opset}): {e}") from e
            for name, v in zip(step.node.outputs, outs):
                if name:
                    (dev if isinstance(v, Tensor) else host)[name] = v
            for name in step.free:
                dev.pop(name, None)
        return [dev[n] if n in dev else self._slot(n) if n in g.slots else host[n] for n in g.outputs]

    def forward(self, *inputs) -> Tensor | tuple[Tensor, ...]:
        outs = [v if isinstance(v, Tensor) else self._host_tensor(v) for v in self.evaluate(*inputs)]
        return outs[0] if len(outs) == 1 else tuple(outs)

    # ---- values ---------------------------------------------------------------------------------

    def _slot(self, name: str) -> Tensor:
        owner, store, attr = self._onnx.slots[name]
        return getattr(owner, store)[attr]

    def _device_value(self, name: str, dev: dict, host: dict) -> Tensor:
        if name in dev:
            return dev[name]
        if name in self._onnx.slots:
            return self._slot(name)
        value = np.asarray(host[name])
        if value.dtype.kind != "f":
            raise ValueError(f"ONNX value {name!r} ({value.dtype}) is computed on the host but a device op reads "
                             "it; hetero's device tensors are float32")
        return tensor(value.astype(np.float32), device=self._onnx.device)

    def _host_tensor(self, value: np.ndarray) -> Tensor:
        value = np.asarray(value)
        dtype = np.float32 if value.dtype.kind == "f" else np.int32
        return tensor(value.astype(dtype), device=self._onnx.device)

    def _input_tensor(self, name: str, x: Any, declared: tuple | None) -> Tensor:
        if isinstance(x, Tensor):
            if x.dtype != np.float32:
                raise ValueError(f"ONNX input {name!r}: expected a float32 tensor, got {x.dtype}")
        else:
            arr = np.asarray(x)
            if arr.dtype.kind != "f":
                raise ValueError(f"ONNX input {name!r}: expected float data, got {arr.dtype}")
            x = tensor(arr.astype(np.float32, copy=False), device=self._onnx.device)
        if declared is not None and (len(declared) != x.ndim or
                                     any(d is not None and d != s for d, s in zip(declared, x.shape))):
            shown = tuple("?" if d is None else d for d in declared)
            raise ValueError(f"ONNX input {name!r} has shape {x.shape} but the model declares {shown}")
        return x


class _Builder:
    """One pass over the graph in its (topological) order: kinds, folds, converters, then the tensors."""

    def __init__(self, module: OnnxModule, model: onnx.ModelProto, dev: Device):
        self.module, self.model, self.device = module, model, dev
        self.graph = model.graph
        self.consts: dict[str, np.ndarray] = {}
        self.kind: dict[str, str] = {}  # value -> "const" | "host" | "device"
        self.roles: dict[str, str] = {}  # const value read on the device -> "parameter" | "buffer" | "constant"
        self.claimed: dict[str, np.ndarray] = {}  # synthetic names of converters' own device constants
        self.steps: list[_Step] = []
        self.shapes: dict[str, tuple] = {}
        self.initializers: set[str] = set()

    # ---- the pass -------------------------------------------------------------------------------

    def build(self) -> _Graph:
        self.opset = self._opset()
        self._infer_shapes()
        for init in self.graph.initializer:
            self.consts[init.name] = numpy_helper.to_array(init)
            self.kind[init.name] = "const"
            self.initializers.add(init.name)
        inputs = self._graph_inputs()
        # outputs nothing reads (Dropout's mask, a training graph's BatchNormalization stats) are not computed
        self.read = {n for node in self.graph.node for n in node.input} | {o.name for o in self.graph.output}
        for index, proto in enumerate(self.graph.node):
            self._node(index, proto)
        outputs = [o.name for o in self.graph.output]
        slots, names = self._tensors()
        self._plan_frees(outputs)
        used_consts = {name for step in self.steps for name, form in step.inputs if form == "host" and name}
        return _Graph(
            device=self.device, opset=self.opset, inputs=inputs, outputs=outputs,
            consts={n: v for n, v in self.consts.items() if n in used_consts or n in outputs},
            slots=slots, steps=self.steps,
            onnx_names=names)

    def _opset(self) -> int:
        versions = [o.version for o in self.model.opset_import if o.domain in ("", "ai.onnx")]
        newest = max_opset()
        if not versions:
            raise UnsupportedModelError(f"ONNX model imports no opset of the default domain; hetero imports opsets "
                                        f"{MIN_OPSET} to {newest}")
        opset = int(versions[0])
        if not MIN_OPSET <= opset <= newest:
            raise UnsupportedModelError(f"ONNX model has opset {opset}; hetero imports opsets {MIN_OPSET} to {newest} "
                                        "(convert older models with onnx.version_converter.convert_version)")
        return opset

    def _infer_shapes(self) -> None:
        """Shapes of every value ONNX's shape inference can tell (ranks checked at load, Shape folded)."""
        try:
            inferred = shape_inference.infer_shapes(self.model).graph
        except Exception:  # inference is a help at load, never a requirement
            inferred = self.graph
        for vi in list(inferred.input) + list(inferred.value_info) + list(inferred.output):
            shape = _declared_shape(vi)
            if shape is not None:
                self.shapes[vi.name] = shape

    def _graph_inputs(self) -> list[tuple[str, str, tuple]]:
        """The non-initializer inputs: "host" if every consumer reads them as host values, else "device"."""
        device_use: set[str] = set()
        for proto in self.graph.node:
            spec = OPS.get(proto.op_type)
            for i, name in enumerate(proto.input):
                if spec is not None and spec.convert is not None and i not in spec.host_inputs \
                        and i not in spec.shape_inputs:  # an unknown op is refused at its node, not here
                    device_use.add(name)
        inputs = []
        for vi in self.graph.input:
            if vi.name in self.initializers:
                continue
            elem = vi.type.tensor_type.elem_type if vi.type.HasField("tensor_type") else 0
            form = "device" if vi.name in device_use else "host"
            if form == "device" and elem != _FLOAT:
                raise UnsupportedModelError(
                    f"ONNX input {vi.name!r} has data type {_elem_name(elem)} and device ops read it; hetero's "
                    "device tensors are float32 (other types only as shapes and indices folded on the host). "
                    "Supported: FLOAT inputs")
            self.kind[vi.name] = "device" if form == "device" else "host"
            declared = _declared_shape(vi)
            if declared is not None and form == "device":
                self.shapes.setdefault(vi.name, declared)
            inputs.append((vi.name, form, declared if form == "device" else None))
        return inputs

    def _node(self, index: int, proto: onnx.NodeProto) -> None:
        name, op = proto.name or f"{proto.op_type}_{index}", proto.op_type
        supported_ops = ", ".join(sorted(OPS))
        if proto.domain not in ("", "ai.onnx"):
            raise _refuse(name, op, self.opset, f"domain {proto.domain!r} is not imported", f"the default domain's "
                          f"{supported_ops}")
        spec = OPS.get(op)
        if spec is None:
            raise _refuse(name, op, self.opset, f"op {op} is not imported", supported_ops)
        try:
            version = defs.get_schema(op, self.opset, "").since_version
        except defs.SchemaError:
            raise _refuse(name, op, self.opset, f"onnx has no schema of {op} at this opset",
                          f"{op} versions {spec.versions}") from None
        if version not in spec.versions:
            raise _refuse(name, op, self.opset, f"{op} version {version} (the schema opset {self.opset} selects) is "
                          "not imported", f"{op} versions {', '.join(map(str, spec.versions))}")
        attrs = {a.name: helper.get_attribute_value(a) for a in proto.attribute}
        unknown = sorted(set(attrs) - spec.attributes)
        if unknown:
            raise _refuse(name, op, self.opset, f"attribute {', '.join(unknown)} is not imported",
                          f"{op} attributes {', '.join(sorted(spec.attributes)) or '(none)'}")
        inputs = list(proto.input)
        outputs = [n if n in self.read else "" for n in proto.output]
        node = Node(name, op, version, self.opset, attrs, inputs, outputs,
                    [self.consts.get(n) if n else None for n in inputs], [n in self.initializers for n in inputs],
                    [self.shapes.get(n) if n else None for n in inputs], self.module)
        kinds = [self.kind.get(n, "") if n else "" for n in inputs]
        missing = [n for n, k in zip(inputs, kinds) if n and not k]
        if missing:
            raise _refuse(name, op, self.opset, f"input {missing[0]!r} is produced by no earlier node, initializer "
                          "or graph input", "graphs whose nodes are in topological order")
        host_ok = spec.fold is not None and all(
            k in ("", "const", "host") or i in spec.shape_inputs for i, k in enumerate(kinds))
        try:
            if host_ok:
                self._host_node(node, spec, kinds)
            else:
                self._device_node(node, spec, kinds)
        except Unsupported as e:
            raise _refuse(name, op, self.opset, str(e), f"{op} as {spec.how or op}") from None

    def _host_node(self, node: Node, spec, kinds: list[str]) -> None:
        """A fold: now, if every input is a constant (or a device tensor of static shape that only its shape is
        read of), else at each forward."""
        args: list[Any] = []
        for i, (n, k) in enumerate(zip(node.inputs, kinds)):
            if k == "const":
                args.append(self.consts[n])
            elif k == "device" and i in spec.shape_inputs and node.shapes[i] is not None \
                    and None not in node.shapes[i]:
                args.append(_StaticShape(node.shapes[i]))
            elif k:
                args = None
                break
            else:
                args.append(None)
        if args is not None:
            try:
                with np.errstate(all="ignore"):
                    outs = spec.fold(node, args)
            except ValueError as e:
                raise Unsupported(f"folding it at load failed: {e}") from None
            for n, v in zip(node.outputs, outs):
                if n:
                    self.consts[n] = np.asarray(v)
                    self.kind[n] = "const"
            return
        for i, n in enumerate(node.inputs):
            if n in self.initializers and self.consts[n].dtype.kind == "f" and i not in spec.shape_inputs:
                raise Unsupported(f"{node.op} of initializer {n!r} with inputs known only at run time (an embedding "
                                  "lookup) would run on the host, outside autograd, so the initializer would not "
                                  f"train; hetero imports {node.op} on the host only for shape arithmetic")
        forms = [(n, "device" if k == "device" else "host") for n, k in zip(node.inputs, kinds)]
        self.steps.append(_Step(node, lambda a, node=node, fold=spec.fold: fold(node, a), forms))
        for n in node.outputs:
            if n:
                self.kind[n] = "host"

    def _device_node(self, node: Node, spec, kinds: list[str]) -> None:
        if spec.convert is None:
            on_device = next(n for i, (n, k) in enumerate(zip(node.inputs, kinds)) if k == "device")
            raise Unsupported(f"{node.op} is imported only where it computes on constants or shapes (folded on the "
                              f"host), but its input {on_device!r} is device data")
        for i in sorted(spec.host_inputs):
            if i < len(kinds) and kinds[i] == "device":
                raise Unsupported(f"input {i} ({node.inputs[i]!r}) must be known on the host (a constant, an "
                                  "initializer or shape arithmetic), but it is computed on the device")
        run = spec.convert(node)
        claims = node.claims
        forms = []
        for i, (n, k) in enumerate(zip(node.inputs, kinds)):
            if not n:
                forms.append(("", "host"))
            elif i in claims:
                synthetic = f"{node.name}:input{i}"
                self.claimed[synthetic] = claims[i]
                self.roles[synthetic] = "constant"
                forms.append((synthetic, "device"))
            elif i in spec.host_inputs:
                forms.append((n, "host"))
            else:
                if k == "const":
                    value = self.consts[n]
                    if value.dtype != np.float32:
                        raise Unsupported(f"input {n!r} has data type {value.dtype} and is read on the device; "
                                          "hetero's device tensors are float32")
                    role = "constant"
                    if n in self.initializers:
                        role = "buffer" if i in spec.buffer_inputs else "parameter"
                    if self.roles.get(n) != "parameter":  # read as a parameter anywhere: a parameter
                        self.roles[n] = role
                forms.append((n, "device"))
        self.steps.append(_Step(node, run, forms))
        for n in node.outputs:
            if n:
                self.kind[n] = "device"

    # ---- tensors --------------------------------------------------------------------------------

    def _tensors(self) -> tuple[dict[str, tuple[Module, str, str]], dict[str, str]]:
        """Upload every constant the device reads: parameters and buffers under the initializer names."""
        root, dev = self.module, self.device
        slots: dict[str, tuple[Module, str, str]] = {}
        renamed: dict[str, str] = {}
        constants = None
        for name, role in self.roles.items():
            value = self.claimed[name] if name in self.claimed else self.consts[name]
            t = tensor(np.ascontiguousarray(value, np.float32), device=dev)
            if role == "constant":
                if constants is None:
                    constants = _Holder()
                    root.add_module(self._free_name(root, "onnx_constants"), constants)
                attr = f"c{len(constants._buffers)}"
                constants.register_buffer(attr, t, persistent=False)
                slots[name] = (constants, "_buffers", attr)
                continue
            owner, attr = self._place(root, name)
            if owner is root and attr != name:
                renamed[attr] = name
            if role == "parameter":
                owner.register_parameter(attr, Parameter(t))
                slots[name] = (owner, "_parameters", attr)
            else:
                owner.register_buffer(attr, t)
                slots[name] = (owner, "_buffers", attr)
        return slots, renamed

    @staticmethod
    def _taken(m: Module, name: str) -> bool:
        return name in m._parameters or name in m._buffers or name in m._modules or name in m.__dict__ \
            or hasattr(type(m), name)

    def _free_name(self, m: Module, base: str) -> str:
        name, k = base, 1
        while self._taken(m, name):
            name, k = f"{base}_{k}", k + 1
        return name

    def _place(self, root: Module, name: str) -> tuple[Module, str]:
        """(owner, attribute) so the state_dict key is `name`: one holder module per dotted level; where that
        cannot be (an empty level, a clash), a flat name on the root with '.' made '_'."""
        parts = name.split(".")
        if all(parts):
            owner = root
            for p in parts[:-1]:
                child = owner._modules.get(p)
                if child is None:
                    if self._taken(owner, p):
                        break
                    child = _Holder()
                    owner.add_module(p, child)
                elif not isinstance(child, _Holder):
                    break
                owner = child
            else:
                if not self._taken(owner, parts[-1]):
                    return owner, parts[-1]
        return root, self._free_name(root, name.replace(".", "_") or "initializer")

    def _plan_frees(self, outputs: Sequence[str]) -> None:
        """Drop each device value after the step that reads it last (graph outputs stay)."""
        last: dict[str, int] = {}
        for i, step in enumerate(self.steps):
            for name, form in step.inputs:
                if name and form == "device":
                    last[name] = i
        keep = set(outputs)
        for name, i in last.items():
            if name not in keep:
                self.steps[i].free.append(name)


def load(model: str | os.PathLike | bytes | onnx.ModelProto, device: str | int | Device | None = None) -> OnnxModule:
    """Import an ONNX model (a path, its bytes or a ModelProto) as a hetero Module on `device` (default: the
    default device), in eval mode; raises UnsupportedModelError naming the first node hetero cannot run."""
    if isinstance(model, onnx.ModelProto):
        proto = model
    elif isinstance(model, bytes):
        proto = onnx.load_from_string(model)
    elif isinstance(model, (str, os.PathLike)):
        proto = onnx.load(os.fspath(model))
    else:
        raise TypeError(f"hetero.onnx.load: expected a path, bytes or an onnx.ModelProto, got {type(model).__name__}")
    return OnnxModule(proto, device)
