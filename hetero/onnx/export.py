"""hetero.onnx.export: a hetero Module as an ONNX model with eval-mode semantics that onnx's checker accepts.

The module tree is walked explicitly: EXPORTERS maps each layer class to the function that emits its nodes, and
a module whose class has no entry is refused, naming its path. A module with a forward of its own (a ResNet
block, a model) has its own exporter that mirrors that forward. Parameters and buffers become initializers named
by their state_dict keys, so hetero.onnx.load of the file gives a model with the same keys. Shapes are tracked
while the graph is built (dim 0 is the batch, named "N" and left free), so a layer that does not fit its input
is refused at export with the module's path rather than by a runtime that reads the file later.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .._version import __version__
from ..atomic import atomic_write
from ..errors import HeteroError
from ..models.alexnet import AlexNet, AlexNetMNIST
from ..models.lenet import LeNet5
from ..models.mobilenet import DepthwiseSeparable, MobileNetV1
from ..models.resnet import BasicBlock, PreActBlock, PreActResNet, ResNet
from ..nn.activation import ELU, SELU, LeakyReLU, LogSoftmax, PReLU, ReLU, Sigmoid, Softmax, Tanh
from ..nn.container import Sequential
from ..nn.conv import Conv2d
from ..nn.dropout import Dropout
from ..nn.linear import Flatten, Identity, Linear
from ..nn.module import Module
from ..nn.normalization import BatchNorm2d
from ..nn.pooling import AdaptiveAvgPool2d, AvgPool2d, LocalResponseNorm, MaxPool2d
from ..ops.pool2d import output_size as pool_output_size
from ..tensor import Tensor

OPSET = 17  # every op used has its current form here (Softmax over one axis, Pad's pads as an input)
IR_VERSION = 8  # the IR of opset 17's onnx release (1.12): onnxruntime 1.17 reads up to IR 9
BATCH = "N"
INPUT, OUTPUT = "input", "output"
_PROTOBUF_LIMIT = 2**31 - 1  # a ModelProto over 2 GiB cannot be serialised in one piece

Dim = int | str | None  # a static size, BATCH, or None: a size that depends on the batch but is not it


class ExportError(HeteroError):
    """hetero.onnx.export refused a model: a module without an exporter, or a setting ONNX cannot express."""


@dataclass(frozen=True)
class Value:
    """A tensor of the graph being built: its ONNX name and its shape (dim 0 the batch)."""

    name: str
    shape: tuple[Dim, ...]

    @property
    def rank(self) -> int:
        return len(self.shape)


Exporter = Callable[["GraphBuilder", Any, str, Value], Value]

# layer class -> the function that emits its nodes: (builder, module, its dotted path, input) -> output
EXPORTERS: dict[type[Module], Exporter] = {}


def register_exporter(cls: type[Module]) -> Callable[[Exporter], Exporter]:
    """Decorator: export modules of exactly this class (not subclasses, whose forward may differ) with fn."""
    def register(fn: Exporter) -> Exporter:
        EXPORTERS[cls] = fn
        return fn

    return register


def _where(path: str, m: Any) -> str:
    return f"module {path!r} ({type(m).__name__})" if path else f"the model ({type(m).__name__})"


def _shape_text(shape: Sequence[Dim]) -> str:
    return "(" + ", ".join("?" if d is None else str(d) for d in shape) + ")"


class GraphBuilder:
    """Collects nodes and initializers while exporters walk the module tree; names are kept unique."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._names: set[str] = {INPUT, OUTPUT}
        self._weights: dict[int, str] = {}  # id(tensor) -> initializer, so a shared parameter is stored once

    def unique(self, base: str) -> str:
        name, i = base, 1
        while name in self._names:
            name, i = f"{base}_{i}", i + 1
        self._names.add(name)
        return name

    def refuse(self, path: str, m: Any, why: str) -> ExportError:
        return ExportError(f"hetero.onnx.export: {_where(path, m)}: {why}")

    # ---- initializers

    def weight(self, path: str, attr: str, t: Tensor) -> str:
        """A parameter or buffer as an initializer named by its state_dict key."""
        if id(t) not in self._weights:
            name = self.unique(f"{path}.{attr}" if path else attr)
            self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(t.numpy(), np.float32), name))
            self._weights[id(t)] = name
        return self._weights[id(t)]

    def constant(self, path: str, what: str, array: np.ndarray) -> str:
        """A constant of the exporter's own (a shape, pads, an averaging matrix)."""
        name = self.unique(f"{path}/{what}" if path else what)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    # ---- nodes

    def node(self, op: str, inputs: Sequence[str], shape: Sequence[Dim], path: str, **attrs: Any) -> Value:
        """Append one node; its name and its output's are the module path ("path/Op" where that is taken)."""
        base = path or op
        name = self.unique(base if base not in self._names else f"{base}/{op}")
        self.nodes.append(helper.make_node(op, list(inputs), [name], name=name, **attrs))
        return Value(name, tuple(shape))

    def add(self, path: str, a: Value, b: Value) -> Value:
        if a.shape != b.shape:
            raise ExportError(f"hetero.onnx.export: {path!r}: adding {_shape_text(a.shape)} and "
                              f"{_shape_text(b.shape)}, which differ")
        return self.node("Add", [a.name, b.name], a.shape, f"{path}/Add" if path else "Add")

    def flatten(self, path: str, x: Value, start: int = 1, end: int = -1) -> Value:
        """torch.flatten(x, start, end): ONNX Flatten where that is the same, else a Reshape."""
        rank = x.rank
        if not (-rank <= start < rank and -rank <= end < rank) or start % rank > end % rank:
            raise ExportError(f"hetero.onnx.export: {path!r}: flatten({start}, {end}) of {_shape_text(x.shape)}")
        s, e = start % rank, end % rank
        if s == e:
            return x
        merged = x.shape[s:e + 1]
        size = math.prod(merged) if all(isinstance(d, int) for d in merged) else None
        shape = x.shape[:s] + (size,) + x.shape[e + 1:]
        where = f"{path}/Flatten" if path else "Flatten"
        if s == 1 and e == rank - 1:
            return self.node("Flatten", [x.name], shape, where, axis=1)
        # Reshape's 0 copies a dim (the free batch among them) and -1 takes the merged one
        target = [0] * s + [-1] + [int(d) for d in x.shape[e + 1:]]
        spec = self.constant(where, "shape", np.array(target, np.int64))
        return self.node("Reshape", [x.name, spec], shape, where)

    # ---- modules

    def module(self, m: Module | None, path: str, x: Value) -> Value:
        """Emit module m (at dotted path) applied to x, through its class's exporter."""
        fn = EXPORTERS.get(type(m))
        if fn is None:
            supported = ", ".join(sorted(cls.__name__ for cls in EXPORTERS))
            raise ExportError(f"hetero.onnx.export: {_where(path, m)} has no ONNX exporter. Supported classes: "
                              f"{supported}. A module class with a forward of its own needs its own exporter: "
                              "hetero.onnx.register_exporter(cls)")
        return fn(self, m, path, x)

    def children(self, parent: Module, path: str, x: Value, *names: str) -> Value:
        """The named children of parent applied one after the other, as a forward that chains them does."""
        for name in names:
            x = self.module(getattr(parent, name), f"{path}.{name}" if path else name, x)
        return x


def _image(g: GraphBuilder, m: Module, path: str, x: Value, channels: int | None = None) -> tuple[Dim, ...]:
    """(N, C, H, W) of a 4-D input, checked against the channels the layer expects."""
    if x.rank != 4:
        raise g.refuse(path, m, f"expects (N, C, H, W) input, got {_shape_text(x.shape)}")
    if channels is not None and x.shape[1] != channels:
        plural = "" if x.shape[1] == 1 else "s"
        raise g.refuse(path, m, f"input {_shape_text(x.shape)} has {x.shape[1]} channel{plural}, the layer "
                                f"expects {channels}")
    return x.shape


def _pair(v: int | Sequence[int]) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, (int, np.integer)) else (int(v[0]), int(v[1]))


# ---------------------------------------------------------------- layers

@register_exporter(Conv2d)
def _conv2d(g: GraphBuilder, m: Conv2d, path: str, x: Value) -> Value:
    n, _, h, w = _image(g, m, path, x, m.in_channels)
    pad = m._pad  # padding resolved to ints ("same" / "valid" included), what forward passes to conv2d
    sizes = []
    for size, k, s, p, d in zip((h, w), m.kernel_size, m.stride, pad, m.dilation):
        out = (size + 2 * p - d * (k - 1) - 1) // s + 1
        if out < 1:
            raise g.refuse(path, m, f"the kernel {m.kernel_size} (dilation {m.dilation}) is larger than the padded "
                                    f"input {_shape_text(x.shape)}")
        sizes.append(out)
    inputs = [x.name, g.weight(path, "weight", m.weight)]
    if m.bias is not None:
        inputs.append(g.weight(path, "bias", m.bias))
    return g.node("Conv", inputs, (n, m.out_channels, *sizes), path, kernel_shape=list(m.kernel_size),
                  strides=list(m.stride), pads=[pad[0], pad[1], pad[0], pad[1]], dilations=list(m.dilation),
                  group=m.groups)


@register_exporter(Linear)
def _linear(g: GraphBuilder, m: Linear, path: str, x: Value) -> Value:
    if x.rank < 1 or x.shape[-1] != m.in_features:
        raise g.refuse(path, m, f"input {_shape_text(x.shape)} does not end in in_features={m.in_features}")
    shape = x.shape[:-1] + (m.out_features,)
    weight = g.weight(path, "weight", m.weight)
    bias = [] if m.bias is None else [g.weight(path, "bias", m.bias)]
    if x.rank == 2:
        return g.node("Gemm", [x.name, weight, *bias], shape, path, transB=1)
    # Gemm takes matrices only: other ranks multiply by the transposed weight (initializer kept as stored)
    wt = g.node("Transpose", [weight], (m.in_features, m.out_features), f"{path}/Transpose", perm=[1, 0])
    y = g.node("MatMul", [x.name, wt.name], shape, path)
    return g.node("Add", [y.name, *bias], shape, f"{path}/Add") if bias else y


@register_exporter(BatchNorm2d)
def _batch_norm2d(g: GraphBuilder, m: BatchNorm2d, path: str, x: Value) -> Value:
    _image(g, m, path, x, m.num_features)
    if m.running_mean is None:
        raise g.refuse(path, m, "has no running statistics (track_running_stats=False), so even in eval mode it "
                                "normalises with each batch's statistics, which ONNX's BatchNormalization (running "
                                "statistics) does not express")
    c = m.num_features
    scale = (g.weight(path, "weight", m.weight) if m.weight is not None
             else g.constant(path, "scale", np.ones(c, np.float32)))
    bias = g.weight(path, "bias", m.bias) if m.bias is not None else g.constant(path, "B", np.zeros(c, np.float32))
    inputs = [x.name, scale, bias, g.weight(path, "running_mean", m.running_mean),
              g.weight(path, "running_var", m.running_var)]
    return g.node("BatchNormalization", inputs, x.shape, path, epsilon=float(m.eps))


@register_exporter(ReLU)
def _relu(g: GraphBuilder, m: ReLU, path: str, x: Value) -> Value:
    return g.node("Relu", [x.name], x.shape, path)


@register_exporter(LeakyReLU)
def _leaky_relu(g: GraphBuilder, m: LeakyReLU, path: str, x: Value) -> Value:
    return g.node("LeakyRelu", [x.name], x.shape, path, alpha=float(m.negative_slope))


@register_exporter(ELU)
def _elu(g: GraphBuilder, m: ELU, path: str, x: Value) -> Value:
    return g.node("Elu", [x.name], x.shape, path, alpha=float(m.alpha))


@register_exporter(SELU)
def _selu(g: GraphBuilder, m: SELU, path: str, x: Value) -> Value:
    return g.node("Selu", [x.name], x.shape, path)  # ONNX's default alpha and gamma are torch's constants


@register_exporter(Sigmoid)
def _sigmoid(g: GraphBuilder, m: Sigmoid, path: str, x: Value) -> Value:
    return g.node("Sigmoid", [x.name], x.shape, path)


@register_exporter(Tanh)
def _tanh(g: GraphBuilder, m: Tanh, path: str, x: Value) -> Value:
    return g.node("Tanh", [x.name], x.shape, path)


@register_exporter(PReLU)
def _prelu(g: GraphBuilder, m: PReLU, path: str, x: Value) -> Value:
    slope = g.weight(path, "weight", m.weight)
    if m.num_parameters > 1:
        if x.rank < 2 or x.shape[1] != m.num_parameters:
            raise g.refuse(path, m, f"input {_shape_text(x.shape)} does not have num_parameters={m.num_parameters} "
                                    "channels in dim 1")
        if x.rank > 2:  # ONNX broadcasts the slope from the last dim; hetero's is per channel (dim 1)
            target = np.array([m.num_parameters] + [1] * (x.rank - 2), np.int64)
            slope = g.node("Reshape", [slope, g.constant(path, "slope_shape", target)], tuple(target),
                           f"{path}/Reshape").name
    return g.node("PRelu", [x.name, slope], x.shape, path)


def _softmax_axis(g: GraphBuilder, m: Softmax | LogSoftmax, path: str, x: Value) -> int:
    # torch's legacy rule for dim=None, as the layers' forward applies it
    axis = m.dim if m.dim is not None else (0 if x.rank in (0, 1, 3) else 1)
    if not -x.rank <= axis < max(x.rank, 1):
        raise g.refuse(path, m, f"dim {axis} is out of range for input {_shape_text(x.shape)}")
    return int(axis)


@register_exporter(Softmax)
def _softmax(g: GraphBuilder, m: Softmax, path: str, x: Value) -> Value:
    return g.node("Softmax", [x.name], x.shape, path, axis=_softmax_axis(g, m, path, x))


@register_exporter(LogSoftmax)
def _log_softmax(g: GraphBuilder, m: LogSoftmax, path: str, x: Value) -> Value:
    return g.node("LogSoftmax", [x.name], x.shape, path, axis=_softmax_axis(g, m, path, x))


@register_exporter(Identity)
def _identity(g: GraphBuilder, m: Identity, path: str, x: Value) -> Value:
    return x


@register_exporter(Dropout)
def _dropout(g: GraphBuilder, m: Dropout, path: str, x: Value) -> Value:
    return x  # the export is an inference graph: dropout is the identity in eval mode


@register_exporter(Flatten)
def _flatten(g: GraphBuilder, m: Flatten, path: str, x: Value) -> Value:
    return g.flatten(path, x, m.start_dim, m.end_dim)


@register_exporter(Sequential)
def _sequential(g: GraphBuilder, m: Sequential, path: str, x: Value) -> Value:
    return g.children(m, path, x, *m._modules)  # every entry in order, as forward: a module listed twice runs twice


def _pool_windows(g: GraphBuilder, m: MaxPool2d | AvgPool2d, path: str, x: Value,
                  dilation: tuple[int, int]) -> tuple[list[int], list[int], list[int], list[int], list[int]]:
    """(kernel, stride, pads before, pads after, output sizes) with torch's output size (ceil_mode included)
    reached by floor division over explicit pads, so no runtime's reading of ONNX's ceil_mode matters."""
    _, _, h, w = _image(g, m, path, x)
    kernel, stride, pad = _pair(m.kernel_size), _pair(m.stride), _pair(m.padding)
    after, out = [], []
    for size, k, s, p, d in zip((h, w), kernel, stride, pad, dilation):
        o = pool_output_size(size, k, s, p, d, m.ceil_mode)
        if o < 1:
            raise g.refuse(path, m, f"the window {kernel} is larger than the padded input {_shape_text(x.shape)}")
        out.append(o)
        after.append(max(p, (o - 1) * s + d * (k - 1) + 1 - size - p))  # more than p only for a ceil window
    return list(kernel), list(stride), list(pad), after, out


@register_exporter(MaxPool2d)
def _max_pool2d(g: GraphBuilder, m: MaxPool2d, path: str, x: Value) -> Value:
    if m.return_indices:
        raise g.refuse(path, m, "return_indices=True: the export has one output, the pooled values")
    dilation = _pair(m.dilation)
    kernel, stride, before, after, out = _pool_windows(g, m, path, x, dilation)
    return g.node("MaxPool", [x.name], x.shape[:2] + tuple(out), path, kernel_shape=kernel, strides=stride,
                  pads=before + after, dilations=list(dilation))


@register_exporter(AvgPool2d)
def _avg_pool2d(g: GraphBuilder, m: AvgPool2d, path: str, x: Value) -> Value:
    kernel, stride, before, after, out = _pool_windows(g, m, path, x, (1, 1))
    shape = x.shape[:2] + tuple(out)
    ceil_windows = after != before
    if m.divisor_override is not None:
        if ceil_windows:
            raise g.refuse(path, m, "divisor_override with ceil_mode windows that run past the padding: the window "
                                    "sums are not one ONNX op")
        # every window lies inside the padded input, so its sum is the pad-counting mean times its area
        mean = g.node("AveragePool", [x.name], shape, f"{path}/AveragePool", kernel_shape=kernel, strides=stride,
                      pads=before + after, count_include_pad=1)
        factor = g.constant(path, "divisor", np.array(math.prod(kernel) / m.divisor_override, np.float32))
        return g.node("Mul", [mean.name, factor], shape, path)
    if not (m.count_include_pad and ceil_windows and any(before)):
        # ONNX's divisor is torch's here: the padded window (all inside the padding), or the real elements only;
        # a ceil window past unpadded input counts its real elements in torch too
        include = int(m.count_include_pad and not ceil_windows)
        return g.node("AveragePool", [x.name], shape, path, kernel_shape=kernel, strides=stride,
                      pads=before + after, count_include_pad=include)
    # torch counts the padding but not a ceil window's overhang past it: pad with zeros as real elements first
    ph, pw = before
    pads = g.constant(path, "pads", np.array([0, 0, ph, pw, 0, 0, ph, pw], np.int64))
    padded_shape = x.shape[:2] + tuple(d + 2 * p for d, p in zip(x.shape[2:], before))
    padded = g.node("Pad", [x.name, pads], padded_shape, f"{path}/Pad")
    return g.node("AveragePool", [padded.name], shape, path, kernel_shape=kernel, strides=stride,
                  pads=[0, 0] + [a - b for a, b in zip(after, before)], count_include_pad=0)


def _bin_matrix(size: int, out: int) -> np.ndarray:
    """(out, size) averaging matrix of torch's adaptive bins [floor(i*size/out), ceil((i+1)*size/out))."""
    a = np.zeros((out, size), np.float32)
    for i in range(out):
        lo, hi = i * size // out, -(-(i + 1) * size // out)
        a[i, lo:hi] = 1.0 / (hi - lo)
    return a


@register_exporter(AdaptiveAvgPool2d)
def _adaptive_avg_pool2d(g: GraphBuilder, m: AdaptiveAvgPool2d, path: str, x: Value) -> Value:
    _, _, h, w = _image(g, m, path, x)
    requested = (m.output_size, m.output_size) if isinstance(m.output_size, int) else tuple(m.output_size)
    oh, ow = (h if requested[0] is None else int(requested[0]), w if requested[1] is None else int(requested[1]))
    shape = x.shape[:2] + (oh, ow)
    if (oh, ow) == (h, w):
        return x
    if (oh, ow) == (1, 1):
        return g.node("GlobalAveragePool", [x.name], shape, path)
    if h % oh == 0 and w % ow == 0:  # equal bins: one average pool
        kernel = [h // oh, w // ow]
        return g.node("AveragePool", [x.name], shape, path, kernel_shape=kernel, strides=kernel)
    # bins of unequal sizes (or overlapping ones): rows and columns averaged by constant matrices, exactly torch's
    cols = g.constant(path, "columns", _bin_matrix(w, ow).T.copy())
    y = g.node("MatMul", [x.name, cols], x.shape[:3] + (ow,), f"{path}/columns")
    rows = g.constant(path, "rows", _bin_matrix(h, oh))
    return g.node("MatMul", [rows, y.name], shape, path)


@register_exporter(LocalResponseNorm)
def _local_response_norm(g: GraphBuilder, m: LocalResponseNorm, path: str, x: Value) -> Value:
    _image(g, m, path, x)
    if m.size % 2 == 0:
        raise g.refuse(path, m, f"an even size ({m.size}): ONNX's LRN window is c - {m.size // 2 - 1} .. "
                                f"c + {m.size // 2}, hetero's (PyTorch's) c - {m.size // 2} .. c + {m.size // 2 - 1}")
    return g.node("LRN", [x.name], x.shape, path, size=m.size, alpha=float(m.alpha), beta=float(m.beta),
                  bias=float(m.k))


# ---------------------------------------------------------------- blocks and models: each mirrors its forward

@register_exporter(BasicBlock)
def _basic_block(g: GraphBuilder, m: BasicBlock, path: str, x: Value) -> Value:
    out = g.children(m, path, x, "conv1", "bn1", "relu", "conv2", "bn2")
    identity = x if m.downsample is None else g.children(m, path, x, "downsample")
    return g.children(m, path, g.add(path, out, identity), "relu")


@register_exporter(PreActBlock)
def _preact_block(g: GraphBuilder, m: PreActBlock, path: str, x: Value) -> Value:
    out = g.children(m, path, x, "bn1", "relu")
    shortcut = x if m.downsample is None else g.children(m, path, out, "downsample")
    out = g.children(m, path, out, "conv1", "bn2", "relu", "conv2")
    return g.add(path, out, shortcut)


@register_exporter(ResNet)
def _resnet(g: GraphBuilder, m: ResNet, path: str, x: Value) -> Value:
    x = g.children(m, path, x, "conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool")
    return g.children(m, path, g.flatten(path, x), "fc")


@register_exporter(PreActResNet)
def _preact_resnet(g: GraphBuilder, m: PreActResNet, path: str, x: Value) -> Value:
    x = g.children(m, path, x, "conv1", "maxpool", "layer1", "layer2", "layer3", "layer4", "bn", "relu", "avgpool")
    return g.children(m, path, g.flatten(path, x), "fc")


@register_exporter(DepthwiseSeparable)
def _depthwise_separable(g: GraphBuilder, m: DepthwiseSeparable, path: str, x: Value) -> Value:
    return g.children(m, path, x, "dw", "pw")


@register_exporter(MobileNetV1)
def _mobilenet_v1(g: GraphBuilder, m: MobileNetV1, path: str, x: Value) -> Value:
    x = g.children(m, path, x, "features", "avgpool")
    return g.children(m, path, g.flatten(path, x), "fc")


@register_exporter(LeNet5)
@register_exporter(AlexNetMNIST)
def _features_classifier(g: GraphBuilder, m: LeNet5 | AlexNetMNIST, path: str, x: Value) -> Value:
    x = g.children(m, path, x, "features")
    return g.children(m, path, g.flatten(path, x), "classifier")


@register_exporter(AlexNet)
def _alexnet(g: GraphBuilder, m: AlexNet, path: str, x: Value) -> Value:
    x = g.children(m, path, x, "features", "avgpool")
    return g.children(m, path, g.flatten(path, x), "classifier")


# ---------------------------------------------------------------- the model

def _dims(shape: Sequence[Dim]) -> list[int | str | None]:
    return [d if isinstance(d, (int, str)) else None for d in shape]


def _input_shape(input_shape: Sequence[int]) -> tuple[int, ...]:
    if isinstance(input_shape, (int, np.integer)):
        input_shape = (int(input_shape),)
    try:
        dims = tuple(input_shape)
    except TypeError:
        raise ExportError(f"hetero.onnx.export: input_shape must be a sequence of positive ints (the input's shape "
                          f"without the batch dim, e.g. (3, 224, 224)), got {input_shape!r}") from None
    if not dims or any(isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d <= 0 for d in dims):
        raise ExportError(f"hetero.onnx.export: input_shape must be positive ints (the input's shape without the "
                          f"batch dim, e.g. (3, 224, 224)), got {input_shape!r}")
    return tuple(int(d) for d in dims)


def to_onnx(model: Module, input_shape: Sequence[int]) -> onnx.ModelProto:
    """The ONNX model of `model` in eval mode for input (N, *input_shape), N free; checked by onnx's checker."""
    if not isinstance(model, Module):
        raise ExportError(f"hetero.onnx.export: expected a hetero.nn.Module, got {type(model).__name__}")
    shape = (BATCH, *_input_shape(input_shape))
    g = GraphBuilder()
    y = g.module(model, "", Value(INPUT, shape))
    if y.name == INPUT or y.name in {t.name for t in g.initializers}:
        g.nodes.append(helper.make_node("Identity", [y.name], [OUTPUT], name=OUTPUT))  # a model that passes x on
    else:  # the last value becomes "output" wherever it is read or written
        for node in g.nodes:
            node.input[:] = [OUTPUT if v == y.name else v for v in node.input]
            node.output[:] = [OUTPUT if v == y.name else v for v in node.output]
    graph = helper.make_graph(
        g.nodes, type(model).__name__,
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, _dims(shape))],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, _dims(y.shape))],
        g.initializers)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION,
                              producer_name="hetero", producer_version=__version__)
    if proto.ByteSize() > _PROTOBUF_LIMIT:
        raise ExportError(f"hetero.onnx.export: the model's {proto.ByteSize() / 2**30:.1f} GiB exceed the 2 GiB a "
                          "single ONNX file holds")
    onnx.checker.check_model(proto, full_check=True)  # a failure here is an exporter bug, caught before writing
    return proto


def export(model: Module, path: str | os.PathLike, input_shape: Sequence[int]) -> onnx.ModelProto:
    """Write `model` (eval-mode semantics) to an ONNX file at path for input (N, *input_shape), atomically;
    input "input", output "output", opset OPSET. Returns the ModelProto written."""
    proto = to_onnx(model, input_shape)
    with atomic_write(Path(path)) as f:
        f.write(proto.SerializeToString())
    return proto
