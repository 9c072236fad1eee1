"""`hetero.summary(model, input_shape)`: layers, output shapes, parameters, FLOPs and memory of a model, and the
algorithms each convolution runs on the model's device."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from . import validate
from .autograd import no_grad
from .graph import compile_step
from .nn import (
    ELU,
    SELU,
    AdaptiveAvgPool2d,
    AvgPool2d,
    BatchNorm2d,
    Conv2d,
    LeakyReLU,
    Linear,
    LocalResponseNorm,
    LogSoftmax,
    MaxPool2d,
    Module,
    PReLU,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
)
from .nn.module import model_device
from .ops.conv2d import Algorithms, choose, conv2d_geometry
from .ops.softmax import cross_entropy
from .optim import SGD
from .tensor import Tensor, zeros


@dataclass
class LayerRow:
    """One leaf module: its dotted name, type, output shape, own parameters and forward FLOPs; for a Conv2d, the
    algorithms its forward, input gradient and weight gradient run (hetero.ops.conv2d.choose)."""

    name: str
    kind: str
    output_shape: tuple[int, ...]
    params: int
    flops: int
    output_bytes: int
    algorithms: Algorithms | None = None


@dataclass
class ModelSummary:
    """What `summary` measured; str() gives the printed table."""

    model: str
    input_shape: tuple[int, ...]
    rows: list[LayerRow] = field(default_factory=list)
    total_params: int = 0
    trainable_params: int = 0
    param_bytes: int = 0
    buffer_bytes: int = 0
    forward_flops: int = 0
    activation_bytes: int = 0
    train_step_bytes: int | None = None  # planned device memory of one compiled training step
    train_step_note: str = ""
    train_batch_size: int = 0

    def __str__(self) -> str:
        head: tuple[str, ...] = ("layer", "type", "output shape", "params", "MFLOPs")
        body = [(r.name, r.kind, "x".join(map(str, r.output_shape)), f"{r.params:,}", f"{r.flops / 1e6:,.2f}")
                for r in self.rows]
        if any(r.algorithms is not None for r in self.rows):
            head += ("conv algorithms: forward / input grad / weight grad",)
            body = [(*b, " / ".join(r.algorithms) if r.algorithms is not None else "")
                    for b, r in zip(body, self.rows)]
        widths = [max(len(x[i]) for x in [head, *body]) for i in range(len(head))]
        line = "-" * (sum(widths) + 2 * (len(widths) - 1))

        def fmt(r: Sequence[str]) -> str:
            return "  ".join(c.rjust(w) if i in (3, 4) else c.ljust(w)
                             for i, (c, w) in enumerate(zip(r, widths))).rstrip()

        shape = "x".join(map(str, self.input_shape))
        out = [f"{self.model}, input {shape}", line, fmt(head), line, *(fmt(r) for r in body), line,
               f"parameters: {self.total_params:,} ({self.trainable_params:,} trainable), "
               f"{_mb(self.param_bytes)} + buffers {_mb(self.buffer_bytes)}",
               f"forward: {self.forward_flops / 1e6:,.2f} MFLOPs; layer outputs {_mb(self.activation_bytes)}"]
        if self.train_step_bytes is not None:
            out.append(f"training step (batch {self.train_batch_size}, SGD momentum, cross-entropy), "
                       f"planned device memory: "
                       f"{_mb(self.train_step_bytes)}")
        elif self.train_step_note:
            out.append(f"training step: {self.train_step_note}")
        return "\n".join(out)


def _mb(n: int) -> str:
    return f"{n / 2**20:,.2f} MB"


def _conv_flops(m: Conv2d, inp: Tensor, out: Tensor) -> int:
    kh, kw = m.kernel_size
    macs = out.size * (m.in_channels // m.groups) * kh * kw
    return 2 * macs + (out.size if m.bias is not None else 0)


def conv_algorithms(m: Conv2d, inp: Tensor) -> Algorithms:
    """The algorithms hetero.ops.conv2d runs for this layer and input on the input's device."""
    geo = conv2d_geometry(inp.shape, m.weight.shape, m.stride, getattr(m, "_pad", m.padding), m.dilation, m.groups)
    return choose(inp.device, geo, weight_grad=m.weight.requires_grad)


def _linear_flops(m: Linear, inp: Tensor, out: Tensor) -> int:
    return 2 * out.size * m.in_features + (out.size if m.bias is not None else 0)


def _pool_flops(m: MaxPool2d | AvgPool2d, inp: Tensor, out: Tensor) -> int:
    kh, kw = validate.pair(type(m).__name__, "kernel_size", m.kernel_size, minimum=1)
    return out.size * kh * kw


# Forward FLOPs per leaf layer type; a multiply-add counts 2. Types not listed count 0 (reshapes, dropout).
FLOP_RULES: dict[type, Callable[[Module, Tensor, Tensor], int]] = {
    Conv2d: _conv_flops,
    Linear: _linear_flops,
    MaxPool2d: _pool_flops,
    AvgPool2d: _pool_flops,
    AdaptiveAvgPool2d: lambda m, i, o: i.size,
    LocalResponseNorm: lambda m, i, o: o.size * (m.size + 3),
    BatchNorm2d: lambda m, i, o: 2 * o.size,
    ReLU: lambda m, i, o: o.size,
    LeakyReLU: lambda m, i, o: o.size,
    PReLU: lambda m, i, o: o.size,
    ELU: lambda m, i, o: o.size,
    SELU: lambda m, i, o: o.size,
    Sigmoid: lambda m, i, o: o.size,
    Tanh: lambda m, i, o: o.size,
    Softmax: lambda m, i, o: 3 * o.size,
    LogSoftmax: lambda m, i, o: 3 * o.size,
}


def summary(model: Module, input_shape: Sequence[int], train_step: bool = True, print_out: bool = True,
            name: str | None = None, train_batch_size: int | None = None) -> ModelSummary:
    """Run one forward on zeros of `input_shape` (N, C, H, W; a 3-tuple means N=1) and report each leaf
    layer; with train_step, also trace a compiled training step (batch `train_batch_size`, default N but at
    least 2, as batch norm needs) to report its planned device memory."""
    shape = tuple(int(s) for s in input_shape)
    if len(shape) == 3:
        shape = (1, *shape)
    if len(shape) != 4 or min(shape) <= 0:
        raise ValueError(f"summary: input_shape must be (N, C, H, W) or (C, H, W) of positive sizes, got "
                         f"{tuple(input_shape)}")
    dev = model_device(model, "summary")
    params = list(model.parameters())
    s = ModelSummary(model=name or type(model).__name__, input_shape=shape)
    s.total_params = sum(p.size for p in params)
    s.trainable_params = sum(p.size for p in params if p.requires_grad)
    s.param_bytes = sum(p.nbytes for p in params)
    s.buffer_bytes = sum(b.nbytes for _, b in model.named_buffers())

    leaves = [(n, m) for n, m in model.named_modules() if not any(True for _ in m.children())]
    handles = []
    for lname, m in leaves:
        def hook(mod, args, out, lname=lname):
            inp = args[0] if args and isinstance(args[0], Tensor) else out
            rule = FLOP_RULES.get(type(mod))
            flops = rule(mod, inp, out) if rule is not None else 0
            own = sum(p.size for p in mod.parameters())
            algos = conv_algorithms(mod, inp) if isinstance(mod, Conv2d) else None
            s.rows.append(LayerRow(lname or s.model, type(mod).__name__, out.shape, own, flops, out.nbytes, algos))
        handles.append(m.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            out_shape = model(zeros(shape, np.float32, dev)).shape
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    s.forward_flops = sum(r.flops for r in s.rows)
    s.activation_bytes = sum(r.output_bytes for r in s.rows)
    if train_step:
        batch = train_batch_size if train_batch_size is not None else max(shape[0], 2)
        s.train_batch_size = batch
        s.train_step_bytes, s.train_step_note = _train_step_bytes(model, (batch, *shape[1:]), out_shape, dev)
    if print_out:
        print(s)
    return s


def _train_step_bytes(model: Module, shape: tuple[int, ...], out_shape: tuple[int, ...],
                      dev) -> tuple[int | None, str]:
    """Trace one SGD step (out_shape: the forward's output, for the loss) and restore the weights after:
    params, grads, momentum, buffers and the packed intermediates the plan holds."""
    if not model.training:
        return None, "skipped: the model is in eval mode"
    if len(out_shape) != 2:
        return None, f"skipped: output shape {out_shape} is not (N, classes)"
    saved = {k: v.numpy() for k, v in model.state_dict().items()}
    try:
        opt = SGD(model.parameters(), lr=0.0, momentum=0.9)
        step = compile_step(model, cross_entropy, opt)
        step(np.zeros(shape, np.float32), np.zeros(shape[0], np.int32))
        plan = step.plans()[0]
        dev.synchronize()
        return plan.persistent_bytes + plan.temp_bytes, ""
    finally:
        model.load_state_dict(saved)
        model.zero_grad(set_to_none=True)
