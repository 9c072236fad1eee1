"""The ONNX op registry: OPS maps each imported op type to its OpSpec (the schema versions it implements, the
attributes it reads, its device converter and its host fold), and nothing else is imported.

A converter runs once per node at load: it checks what it can and returns `run(args) -> outputs`, called at
each forward with one entry per node input (None for an absent optional one): a numpy array for the inputs
in `host_inputs` (shapes, axes, bounds), a float32 Tensor for the others. A fold computes a node whose
inputs are all known on the host with numpy: at load when they are constants, else at each forward (shape
arithmetic on the static shapes of device tensors; a compiled plan runs it once, when it traces).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import HeteroError
from ..nn import functional as F
from ..ops.pool2d import output_size as hetero_pool_size
from ..tensor import Tensor, tensor

# ONNX's default Selu constants (float32), for which hetero's selu is exact
SELU_ALPHA = 1.67326319217681884765625
SELU_GAMMA = 1.05070102214813232421875
_FLOAT32_MAX = float(np.finfo(np.float32).max)


class UnsupportedModelError(HeteroError):
    """hetero.onnx.load refused a model: an op, opset, attribute or data type it does not import."""


class Unsupported(Exception):
    """A converter's refusal at load: what in this node hetero cannot run (the importer names the node)."""


@dataclass
class Node:
    """What a converter sees of one ONNX node at load."""

    name: str
    op: str
    version: int  # the schema version the model's opset selects (its since_version)
    opset: int
    attrs: dict[str, Any]
    inputs: list[str]  # "" for an absent optional input
    outputs: list[str]
    consts: list[np.ndarray | None]  # input values known at load
    initializers: list[bool]  # whether each input is an initializer (a parameter, where the device reads it)
    shapes: list[tuple | None]  # input shapes from ONNX shape inference (None dims where symbolic)
    module: Any  # the OnnxModule being built: its training flag at forward
    claims: dict[int, np.ndarray] = field(default_factory=dict)  # see claim_constant

    def claim_constant(self, index: int, value: np.ndarray) -> None:
        """At load: upload `value` once and pass it at forward in place of constant input `index`."""
        with np.errstate(divide="ignore"):
            self.claims[index] = np.asarray(value, np.float32)

    def attr(self, name: str, default: Any = None) -> Any:
        return self.attrs.get(name, default)

    def rank(self, i: int) -> int | None:
        shape = self.shapes[i] if i < len(self.shapes) else None
        return None if shape is None else len(shape)


Run = Callable[[list], list]


@dataclass(frozen=True)
class OpSpec:
    """One registry entry. versions: the ONNX schema versions (since_version) implemented, from the one opset 6
    selects to the newest onnx knows; attributes: those the op may carry (any other is refused)."""

    versions: tuple[int, ...]
    attributes: frozenset[str]
    convert: Callable[[Node], Run] | None = None  # the device implementation (None: host fold only)
    fold: Callable[[Node, list], list] | None = None  # numpy, when every input is known on the host
    host_inputs: frozenset[int] = frozenset()  # inputs the device implementation needs as host values
    shape_inputs: frozenset[int] = frozenset()  # inputs the fold reads only the shape of (may be on the device)
    buffer_inputs: frozenset[int] = frozenset()  # initializers there are buffers (running stats), not parameters
    how: str = ""  # how hetero runs it, where that is a composition


# ---------------------------------------------------------------- helpers

def _ints(v: Any) -> list[int]:
    return [int(i) for i in np.asarray(v).reshape(-1)]


def _scalar(v: Any, what: str) -> float:
    arr = np.asarray(v)
    if arr.size != 1:
        raise ValueError(f"{what} must be a scalar, got shape {arr.shape}")
    return float(arr.reshape(()))


def _torch_pad(before: Sequence[int], after: Sequence[int]) -> list[int]:
    """torch.nn.functional.pad's tuple (last dim first) for the trailing dims' (before, after) pads."""
    out: list[int] = []
    for b, a in zip(reversed(list(before)), reversed(list(after))):
        out += [int(b), int(a)]
    return out


def _norm_axis(axis: int, rank: int, what: str) -> int:
    if not -rank <= axis < max(rank, 1):
        raise ValueError(f"{what} {axis} is out of range for rank {rank}")
    return axis % max(rank, 1)


def _auto_pad(node: Node) -> str:
    auto = node.attr("auto_pad", "NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if auto not in ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"):
        raise Unsupported(f"auto_pad {auto!r}; supported: NOTSET, SAME_UPPER, SAME_LOWER, VALID")
    return auto


def window(node: Node, sizes: Sequence[int], kernel: Sequence[int], strides: Sequence[int],
           dilations: Sequence[int], ceil_mode: bool) -> tuple[list[int], list[int], list[int]]:
    """(output sizes, pads before, pads after) of a conv / pool window over `sizes`, by ONNX's rules
    (auto_pad SAME_* pads to ceil(size / stride) outputs; ceil_mode keeps the last window's start inside)."""
    auto = _auto_pad(node)
    nd = len(sizes)
    spans = [(k - 1) * d + 1 for k, d in zip(kernel, dilations)]
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        out = [-(-n // s) for n, s in zip(sizes, strides)]
        total = [max((o - 1) * s + sp - n, 0) for o, s, sp, n in zip(out, strides, spans, sizes)]
        small = [t // 2 for t in total]
        big = [t - h for t, h in zip(total, small)]
        return (out, small, big) if auto == "SAME_UPPER" else (out, big, small)
    if auto == "VALID":
        before = after = [0] * nd
    else:
        pads = _ints(node.attr("pads", [0] * 2 * nd))
        if len(pads) != 2 * nd:
            raise ValueError(f"pads {pads} must have 2 x {nd} entries")
        before, after = pads[:nd], pads[nd:]
    out = []
    for n, s, sp, b, a in zip(sizes, strides, spans, before, after):
        room = n + b + a - sp
        o = (-(-room // s) if ceil_mode else room // s) + 1
        if ceil_mode and (o - 1) * s >= n + b:  # the last window must start inside the input or the front pad
            o -= 1
        out.append(o)
    if min(out) < 1:
        raise ValueError(f"the window (kernel {tuple(kernel)}, dilations {tuple(dilations)}) is larger than the "
                         f"padded input {tuple(sizes)} (pads {before} / {after})")
    return out, list(before), list(after)


def _spatial(node: Node, name: str, nd: int, default: int) -> list[int]:
    v = node.attr(name)
    vals = [default] * nd if v is None or len(v) == 0 else _ints(v)
    if len(vals) != nd:
        raise ValueError(f"{name} {vals} must have {nd} entries (one per spatial dim)")
    return vals


def _to_2d(x: Tensor) -> Tensor:
    """A 1-D signal (N, C, L) as the image (N, C, 1, L), for the 2-D convolution and pooling kernels."""
    return F.reshape(x, (x.shape[0], x.shape[1], 1, x.shape[2]))


def _device_tensor(values: np.ndarray, like: Tensor) -> Tensor:
    return tensor(np.asarray(values, np.float32), device=like.device)


def _same_rank_or_refuse(node: Node, i: int, ranks: tuple[int, ...], what: str) -> None:
    r = node.rank(i)
    if r is not None and r not in ranks:
        raise Unsupported(what.format(rank=r, nd=r - 2))


# ---------------------------------------------------------------- convolution and pooling

def convert_conv(node: Node) -> Run:
    group = int(node.attr("group", 1))
    _auto_pad(node)
    _same_rank_or_refuse(node, 0, (3, 4), "{nd}-D convolution (input rank {rank}); hetero convolves 1-D and 2-D inputs")
    _same_rank_or_refuse(node, 1, (3, 4), "{nd}-D convolution (weight rank {rank}); hetero convolves 1-D and 2-D "
                                          "inputs")

    def run(args: list) -> list:
        x, w, b = args[0], args[1], args[2] if len(args) > 2 else None
        if x.ndim not in (3, 4) or w.ndim != x.ndim:
            raise ValueError(f"input {x.shape} and weight {w.shape}: hetero convolves 1-D and 2-D inputs "
                             "(ranks 3 and 4, weight of the same rank)")
        one_d = x.ndim == 3
        if one_d:
            x, w = _to_2d(x), _to_2d(w)
        nd = 1 if one_d else 2
        kernel = list(w.shape[-nd:])
        if node.attr("kernel_shape") is not None and _ints(node.attr("kernel_shape")) != kernel:
            raise ValueError(f"kernel_shape {_ints(node.attr('kernel_shape'))} does not match weight {w.shape}")
        strides, dilations = _spatial(node, "strides", nd, 1), _spatial(node, "dilations", nd, 1)
        _, before, after = window(node, x.shape[-nd:], kernel, strides, dilations, False)
        if one_d:
            strides, dilations, before, after = [1] + strides, [1] + dilations, [0] + before, [0] + after
        if before != after:  # hetero's conv2d pads symmetrically: pad the odd extra explicitly
            x = F.pad(x, _torch_pad(before, after))
            before = [0, 0]
        y = F.conv2d(x, w, b, tuple(strides), tuple(before), tuple(dilations), group)
        return [F.reshape(y, y.shape[:2] + (y.shape[3],)) if one_d else y]

    return run


def _pool_attrs(node: Node, kind: str) -> tuple[list[int], list[int], list[int], bool]:
    kernel = node.attr("kernel_shape")
    if kernel is None:
        raise Unsupported("a pool without kernel_shape")
    kernel = _ints(kernel)
    nd = len(kernel)
    if nd not in (1, 2):
        raise Unsupported(f"{nd}-D pooling; hetero pools 1-D and 2-D inputs")
    _auto_pad(node)
    strides, dilations = _spatial(node, "strides", nd, 1), _spatial(node, "dilations", nd, 1)
    if kind == "avg" and any(d != 1 for d in dilations):
        raise Unsupported(f"dilated average pooling (dilations {dilations}); hetero's average pooling has none")
    if kind == "max" and len(node.outputs) > 1 and node.outputs[1]:
        raise Unsupported("the Indices output of MaxPool (hetero's argmax is per plane and int32)")
    return kernel, strides, dilations, bool(node.attr("ceil_mode", 0))


def _average_factor(out: list[int], kernel: list[int], strides: list[int], before: list[int], after: list[int],
                    sizes: Sequence[int], include_pad: bool) -> np.ndarray:
    """Window size / ONNX's divisor for each output position, for an average taken over the whole window."""
    counts = []
    for o, k, s, b, a, n in zip(out, kernel, strides, before, after, sizes):
        lo, hi = (-b, n + a) if include_pad else (0, n)
        starts = np.arange(o) * s - b
        counts.append(np.clip(np.minimum(starts + k, hi) - np.maximum(starts, lo), 1, None))
    return math.prod(kernel) / np.multiply.outer(counts[0], counts[1])


# Max pooling's window is a compile-time define that PoCL unrolls: windows of more taps than this are pooled one
# axis at a time (max is separable), so a 60x80 window builds 140 taps, not 4800 (PoCL took 400 s for those).
MAX_POOL_TAPS = 64


def _max_pool2d(x: Tensor, kernel, stride, padding, dilation, ceil_mode: bool = False) -> Tensor:
    """max_pool2d, as a row pass then a column pass where the window has more than MAX_POOL_TAPS taps."""
    kh, kw = kernel
    if kh * kw <= MAX_POOL_TAPS or min(kh, kw) == 1:
        return F.max_pool2d(x, (kh, kw), tuple(stride), tuple(padding), tuple(dilation), ceil_mode)
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    rows = F.max_pool2d(x, (1, kw), (1, sw), (0, pw), (1, dw), ceil_mode)
    return F.max_pool2d(rows, (kh, 1), (sh, 1), (ph, 0), (dh, 1), ceil_mode)


def convert_pool(kind: str) -> Callable[[Node], Run]:
    def convert(node: Node) -> Run:
        kernel, strides, dilations, ceil_mode = _pool_attrs(node, kind)
        include_pad = bool(node.attr("count_include_pad", 0))
        factors: dict[tuple, Tensor] = {}  # (device, input size) -> the divisor correction of the general path

        def run(args: list) -> list:
            x = args[0]
            nd = len(kernel)
            if x.ndim != nd + 2:
                raise ValueError(f"input {x.shape} does not have the {nd} spatial dims of kernel_shape {kernel}")
            one_d = nd == 1
            if one_d:
                x = _to_2d(x)
            sizes = list(x.shape[2:])
            k, s, d = ([1] + kernel, [1] + strides, [1] + dilations) if one_d else (kernel, strides, dilations)
            out, before, after = window(node, x.shape[-nd:], kernel, strides, dilations, ceil_mode)
            if one_d:
                out, before, after = [1] + out, [0] + before, [0] + after
            native = before == after and all(p <= kk // 2 for p, kk in zip(before, k)) and all(
                hetero_pool_size(n, kk, ss, p, dd, ceil_mode) == o for n, kk, ss, p, dd, o in
                zip(sizes, k, s, before, d, out))
            if native:
                if kind == "max":
                    y = _max_pool2d(x, k, s, before, d, ceil_mode)
                else:
                    y = F.avg_pool2d(x, tuple(k), tuple(s), tuple(before), ceil_mode, include_pad)
            else:  # pad explicitly to exactly the windows ONNX takes, then pool without padding
                need = [(o - 1) * ss + (kk - 1) * dd + 1 for o, ss, kk, dd in zip(out, s, k, d)]
                tail = [nn - n - b for nn, n, b in zip(need, sizes, before)]
                fill = float("-inf") if kind == "max" else 0.0
                xp = F.pad(x, _torch_pad(before, tail), value=fill)
                if kind == "max":
                    y = _max_pool2d(xp, k, s, (0, 0), d)
                else:
                    y = F.avg_pool2d(xp, tuple(k), tuple(s), 0, False, True)
                    key = (x.device.id, tuple(sizes))
                    if key not in factors:
                        factors[key] = _device_tensor(
                            _average_factor(out, k, s, before, after, sizes, include_pad), x)
                    y = F.mul(y, factors[key])
            return [F.reshape(y, y.shape[:2] + (y.shape[3],)) if one_d else y]

        return run

    return convert


def convert_global_pool(kind: str) -> Callable[[Node], Run]:
    def convert(node: Node) -> Run:
        def run(args: list) -> list:
            x = args[0]
            if x.ndim < 3:
                raise ValueError(f"input {x.shape} must be [N, C, spatial...]")
            n, c, spatial = x.shape[0], x.shape[1], x.shape[2:]
            plane = (n, c, 1, math.prod(spatial)) if x.ndim != 4 else x.shape
            v = F.reshape(x, plane) if x.ndim != 4 else x
            if kind == "avg":
                y = F.adaptive_avg_pool2d(v, 1)
            else:  # one window over the whole plane
                y = _max_pool2d(v, v.shape[2:], (1, 1), (0, 0), (1, 1))
            return [F.reshape(y, (n, c) + (1,) * len(spatial))]

        return run

    return convert


def convert_lrn(node: Node) -> Run:
    size = node.attr("size")
    if size is None:
        raise Unsupported("LRN without size")
    size = int(size)
    if size % 2 == 0:
        raise Unsupported(f"an even LRN size ({size}): ONNX's window is c - {size // 2 - 1} .. c + {size // 2}, "
                          f"hetero's (PyTorch's) c - {size // 2} .. c + {size // 2 - 1}; odd sizes agree")
    alpha, beta, bias = float(node.attr("alpha", 1e-4)), float(node.attr("beta", 0.75)), float(node.attr("bias", 1.0))
    return lambda args: [F.local_response_norm(args[0], size, alpha, beta, bias)]


# ---------------------------------------------------------------- matrix products

def convert_gemm(node: Node) -> Run:
    alpha, beta = float(node.attr("alpha", 1.0)), float(node.attr("beta", 1.0))
    trans_a, trans_b = bool(node.attr("transA", 0)), bool(node.attr("transB", 0))

    def run(args: list) -> list:
        a, b, c = args[0], args[1], args[2] if len(args) > 2 else None
        if a.ndim != 2 or b.ndim != 2:
            raise ValueError(f"A {a.shape} and B {b.shape} must be matrices")
        if trans_a:
            a = F.permute(a, (1, 0))
        n = b.shape[0] if trans_b else b.shape[1]
        fuse = c is not None and alpha == 1.0 and beta == 1.0 and trans_b and c.size == n and 1 <= c.ndim <= 2 \
            and c.shape[-1] == n
        if trans_b:  # y = a @ b^T: the linear layer's GEMM, bias fused when it is a row vector
            y = F.linear(a, b, F.reshape(c, (n,)) if fuse else None)
        else:
            y = F.matmul(a, b)
        if alpha != 1.0:
            y = F.mul(y, alpha)
        if c is not None and not fuse and beta != 0.0:
            y = F.add(y, c if beta == 1.0 else F.mul(c, beta))
        return [y]

    return run


def _expand(t: Tensor, shape: tuple[int, ...]) -> Tensor:
    """t broadcast to shape (same rank) as copies along each broadcast dim; the gradient sums them back."""
    for d, (have, want) in enumerate(zip(t.shape, shape)):
        if have == 1 and want != 1:
            t = F.cat([t] * want, d)
    return t


def convert_matmul(node: Node) -> Run:
    def run(args: list) -> list:
        a, b = args
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError(f"operands {a.shape} and {b.shape} must have at least one dim")
        vec_a, vec_b = a.ndim == 1, b.ndim == 1
        if vec_a:
            a = F.reshape(a, (1, a.shape[0]))
        if vec_b:
            b = F.reshape(b, (b.shape[0], 1))
        (m, k), n = a.shape[-2:], b.shape[-1]
        batch_a, batch_b = a.shape[:-2], b.shape[:-2]
        try:
            batch = tuple(np.broadcast_shapes(batch_a, batch_b))
        except ValueError:
            raise ValueError(f"batch dims of {a.shape} and {b.shape} do not broadcast") from None
        if not batch:
            y = F.matmul(a, b)
        elif not batch_b:  # every matrix of a times one b: one tall GEMM
            y = F.reshape(F.matmul(F.reshape(a, (math.prod(batch_a) * m, k)), b), batch + (m, n))
        else:
            sizes = []
            operands = []
            for t in (a, b):
                dims = t.shape[:-2]
                padded = (1,) * (len(batch) - len(dims)) + tuple(dims)
                if padded != batch and math.prod(dims) != 1:  # a partial broadcast: copy to the full batch
                    t = _expand(F.reshape(t, padded + t.shape[-2:]), batch + t.shape[-2:])
                    dims = batch
                sizes.append(math.prod(dims))
                operands.append(t)
            a, b = operands
            a3 = F.reshape(a, (sizes[0], m, k)) if a.ndim != 2 else a
            y = F.reshape(F.matmul(a3, F.reshape(b, (sizes[1], k, n))), batch + (m, n))
        if vec_a or vec_b:
            shape = y.shape[:-2] + ((m,) if not vec_a else ()) + ((n,) if not vec_b else ())
            y = F.reshape(y, shape)
        return [y]

    return run


# ---------------------------------------------------------------- elementwise

def _legacy_broadcast(node: Node, a_shape: tuple, b: Any) -> Any:
    """Opsets before 7: `broadcast=1` aligns b with a from `axis` (default: a's trailing dims)."""
    if node.version >= 7:
        return b
    b_shape = tuple(b.shape)
    if not node.attr("broadcast", 0):
        if b_shape != tuple(a_shape):
            raise ValueError(f"shapes {tuple(a_shape)} and {b_shape} differ and broadcast=0")
        return b
    axis = node.attr("axis")
    if axis is None:
        return b
    axis = _norm_axis(int(axis), len(a_shape), "axis")
    shape = b_shape + (1,) * (len(a_shape) - axis - len(b_shape))
    return F.reshape(b, shape) if isinstance(b, Tensor) else np.reshape(b, shape)


def convert_binary(kind: str) -> Callable[[Node], Run]:
    def convert(node: Node) -> Run:
        # a constant divisor or subtrahend becomes its reciprocal / negation once, at load (not an initializer:
        # that is a parameter, which training changes)
        const_b = None if node.initializers[1] else node.consts[1]
        if kind in ("Sub", "Div") and const_b is not None and const_b.dtype.kind == "f":
            with np.errstate(divide="ignore"):
                node.claim_constant(1, -const_b if kind == "Sub" else 1.0 / const_b)

        def run(args: list) -> list:
            a, b = args
            b = _legacy_broadcast(node, a.shape, b)
            if kind == "Add":
                return [F.add(a, b)]
            if kind == "Mul":
                return [F.mul(a, b)]
            if kind == "Sub":
                return [F.add(a, b if const_b is not None else F.mul(b, -1.0))]
            return [F.mul(a, b if const_b is not None else F.reciprocal(b))]

        return run

    return convert


def fold_binary(kind: str) -> Callable[[Node, list], list]:
    def fold(node: Node, args: list) -> list:
        a, b = (np.asarray(v) for v in args)
        b = _legacy_broadcast(node, a.shape, b)
        if kind == "Add":
            out = a + b
        elif kind == "Sub":
            out = a - b
        elif kind == "Mul":
            out = a * b
        elif a.dtype.kind in "iu" and b.dtype.kind in "iu":  # ONNX integer division truncates toward zero
            out = np.sign(a) * np.sign(b) * (np.abs(a) // np.abs(b))
        else:
            out = a / b
        return [np.asarray(out, dtype=np.result_type(a, b))]

    return fold


def convert_sum(node: Node) -> Run:
    def run(args: list) -> list:
        out = args[0]
        for t in args[1:]:
            out = F.add(out, t)
        return [out]

    return run


def fold_sum(node: Node, args: list) -> list:
    out = np.asarray(args[0])
    for v in args[1:]:
        out = out + np.asarray(v)
    return [out]


def convert_unary(fn: Callable[[Tensor], Tensor]) -> Callable[[Node], Run]:
    return lambda node: (lambda args: [fn(args[0])])


def convert_leaky_relu(node: Node) -> Run:
    alpha = float(node.attr("alpha", 0.01))
    return lambda args: [F.leaky_relu(args[0], alpha)]


def convert_elu(node: Node) -> Run:
    alpha = float(node.attr("alpha", 1.0))
    return lambda args: [F.elu(args[0], alpha)]


def convert_selu(node: Node) -> Run:
    alpha, gamma = float(node.attr("alpha", SELU_ALPHA)), float(node.attr("gamma", SELU_GAMMA))
    if np.float32(alpha) == np.float32(SELU_ALPHA) and np.float32(gamma) == np.float32(SELU_GAMMA):
        return lambda args: [F.selu(args[0])]
    return lambda args: [F.mul(F.elu(args[0], alpha), gamma)]  # gamma * elu(x, alpha)


def convert_prelu(node: Node) -> Run:
    def run(args: list) -> list:
        x, slope = args
        channels = x.shape[1] if x.ndim >= 2 else 1
        per_channel = slope.shape in ((channels,) + (1,) * (x.ndim - 2), (1, channels) + (1,) * (x.ndim - 2))
        per_channel = per_channel or (node.version < 7 and slope.size == channels)  # before 7: one per channel
        if slope.size == 1 or (per_channel and x.ndim >= 2 and slope.ndim <= x.ndim):
            return [F.prelu(x, F.reshape(slope, (slope.size,)))]
        # any other broadcast: relu(x) + slope * min(x, 0), with min(x, 0) = x - relu(x)
        pos = F.relu(x)
        return [F.add(pos, F.mul(slope, F.add(x, F.mul(pos, -1.0))))]

    return run


def _clip_bounds(node: Node, args: list) -> tuple[float | None, float | None]:
    if node.version < 11:
        lo, hi = node.attr("min", -_FLOAT32_MAX), node.attr("max", _FLOAT32_MAX)
        return float(lo), float(hi)
    lo = _scalar(args[1], "min") if len(args) > 1 and args[1] is not None else None
    hi = _scalar(args[2], "max") if len(args) > 2 and args[2] is not None else None
    return lo, hi


def convert_clip(node: Node) -> Run:
    def run(args: list) -> list:
        lo, hi = _clip_bounds(node, args)
        return [args[0] if lo is None and hi is None else F.clamp(args[0], lo, hi)]

    return run


def fold_clip(node: Node, args: list) -> list:
    lo, hi = _clip_bounds(node, args)
    x = np.asarray(args[0])
    return [np.clip(x, -np.inf if lo is None else lo, np.inf if hi is None else hi).astype(x.dtype)]


def convert_softmax(log: bool) -> Callable[[Node], Run]:
    def convert(node: Node) -> Run:
        coerce = node.version < 13  # before 13 the input is flattened to 2-D at axis, and normalised per row
        axis = int(node.attr("axis", 1 if coerce else -1))
        fn = F.log_softmax if log else F.softmax

        def run(args: list) -> list:
            x = args[0]
            ax = _norm_axis(axis, x.ndim, "axis")
            if not coerce:
                return [fn(x, ax)]
            rows = F.reshape(x, (math.prod(x.shape[:ax]), math.prod(x.shape[ax:])))
            return [F.reshape(fn(rows, 1), x.shape)]

        return run

    return convert


# ---------------------------------------------------------------- normalisation and dropout

def convert_batch_norm(node: Node) -> Run:
    if node.attr("training_mode", 0):
        raise Unsupported("training_mode=1 (its running-stat outputs); load the inference graph and call "
                          "module.train() to train with batch statistics")
    if not node.attr("spatial", 1):
        raise Unsupported("spatial=0 (statistics per element); hetero normalises per channel")
    if any(node.outputs[1:]):
        raise Unsupported("the mean / variance outputs of a training graph; hetero returns Y only")
    eps = float(node.attr("epsilon", 1e-5))
    momentum = 1.0 - float(node.attr("momentum", 0.9))  # ONNX weighs the running value, PyTorch the batch

    def run(args: list) -> list:
        x, scale, bias, mean, var = args
        return [F.batch_norm(x, mean, var, scale, bias, node.module.training, momentum, eps)]

    return run


def convert_dropout(node: Node) -> Run:
    if len(node.outputs) > 1 and node.outputs[1]:
        raise Unsupported("the mask output of Dropout")

    def run(args: list) -> list:
        ratio = float(node.attr("ratio", 0.5))
        training = node.module.training
        if node.version >= 12:
            if len(args) > 1 and args[1] is not None:
                ratio = _scalar(args[1], "ratio")
            if len(args) > 2 and args[2] is not None:
                training = training or bool(_scalar(args[2], "training_mode"))
        return [F.dropout(args[0], ratio, training) if training else args[0]]

    return run


# ---------------------------------------------------------------- shapes and layouts

def _flatten_shape(node: Node, shape: tuple) -> tuple[int, int]:
    axis, rank = int(node.attr("axis", 1)), len(shape)
    if not -rank <= axis <= rank:  # Flatten's axis may be the rank itself: everything in the first dim
        raise ValueError(f"axis {axis} is out of range for rank {rank}")
    axis = axis + rank if axis < 0 else axis
    return math.prod(shape[:axis]), math.prod(shape[axis:])


def _reshape_target(node: Node, shape: tuple, spec: Any) -> tuple[int, ...]:
    dims = _ints(spec)
    allow_zero = bool(node.attr("allowzero", 0))
    out = [shape[i] if d == 0 and not allow_zero and i < len(shape) else d for i, d in enumerate(dims)]
    if out.count(-1) == 1:
        rest = math.prod(d for d in out if d != -1)
        out[out.index(-1)] = math.prod(shape) // rest if rest else 0
    if math.prod(out) != math.prod(shape) or any(d < 0 for d in out):
        raise ValueError(f"cannot reshape {tuple(shape)} into {tuple(dims)}")
    return tuple(out)


def _squeeze_shape(node: Node, shape: tuple, args: list) -> tuple[int, ...]:
    axes = node.attr("axes") if node.version < 13 else (args[1] if len(args) > 1 else None)
    if axes is None:
        return tuple(d for d in shape if d != 1)
    axes = {_norm_axis(a, len(shape), "axis") for a in _ints(axes)}
    bad = [a for a in axes if shape[a] != 1]
    if bad:
        raise ValueError(f"cannot squeeze dim {bad[0]} of shape {tuple(shape)}: its size is not 1")
    return tuple(d for i, d in enumerate(shape) if i not in axes)


def _unsqueeze_shape(node: Node, shape: tuple, args: list) -> tuple[int, ...]:
    axes = node.attr("axes") if node.version < 13 else (args[1] if len(args) > 1 else None)
    if axes is None:
        raise ValueError("Unsqueeze needs axes")
    rank = len(shape) + len(_ints(axes))
    axes = sorted(_norm_axis(a, rank, "axis") for a in _ints(axes))
    out = list(shape)
    for a in axes:
        out.insert(a, 1)
    return tuple(out)


def convert_reshape_like(target: Callable[[Node, tuple, list], tuple]) -> Callable[[Node], Run]:
    return lambda node: (lambda args: [F.reshape(args[0], target(node, args[0].shape, args))])


def fold_reshape_like(target: Callable[[Node, tuple, list], tuple]) -> Callable[[Node, list], list]:
    return lambda node, args: [np.reshape(np.asarray(args[0]), target(node, np.shape(args[0]), args))]


def _flatten_target(node: Node, shape: tuple, args: list) -> tuple:
    return _flatten_shape(node, shape)


def _reshape_args_target(node: Node, shape: tuple, args: list) -> tuple:
    return _reshape_target(node, shape, args[1])


def _perm(node: Node, rank: int) -> tuple[int, ...]:
    perm = node.attr("perm")
    return tuple(range(rank))[::-1] if perm is None else tuple(_ints(perm))


def convert_transpose(node: Node) -> Run:
    return lambda args: [F.permute(args[0], _perm(node, args[0].ndim))]


def fold_transpose(node: Node, args: list) -> list:
    x = np.asarray(args[0])
    return [np.transpose(x, _perm(node, x.ndim))]


def convert_concat(node: Node) -> Run:
    axis = int(node.attr("axis", 1 if node.version < 4 else 0))

    def run(args: list) -> list:
        parts = [t for t in args if t is not None]
        ax = _norm_axis(axis, parts[0].ndim, "axis")
        return [parts[0] if len(parts) == 1 else F.cat(parts, ax)]

    return run


def fold_concat(node: Node, args: list) -> list:
    parts = [np.asarray(v) for v in args if v is not None]
    return [np.concatenate(parts, axis=_norm_axis(int(node.attr("axis", 0)), parts[0].ndim, "axis"))]


def _onnx_slice(start: int, end: int, step: int, n: int) -> slice:
    """ONNX's clamping of one axis' start / end (it differs from Python's for negative steps)."""
    if step == 0:
        raise ValueError("slice step 0")
    if n == 0:
        return slice(0, 0, 1)
    start, end = start + n if start < 0 else start, end + n if end < 0 else end
    if step > 0:
        return slice(min(max(start, 0), n), min(max(end, 0), n), step)
    start, end = min(max(start, 0), n - 1), min(max(end, -1), n - 1)
    return slice(start, None if end == -1 else end, step)  # end -1: up to and including element 0


def _slices(node: Node, shape: tuple, args: list) -> tuple[slice, ...]:
    if node.version < 10:
        starts, ends, axes, steps = node.attr("starts"), node.attr("ends"), node.attr("axes"), None
    else:
        starts, ends = args[1], args[2]
        axes = args[3] if len(args) > 3 else None
        steps = args[4] if len(args) > 4 else None
    starts, ends = _ints(starts), _ints(ends)
    axes = list(range(len(starts))) if axes is None else [_norm_axis(a, len(shape), "axis") for a in _ints(axes)]
    steps = [1] * len(starts) if steps is None else _ints(steps)
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise ValueError(f"starts {starts}, ends {ends}, axes {axes} and steps {steps} differ in length")
    out = [slice(None)] * len(shape)
    for s, e, a, k in zip(starts, ends, axes, steps):
        out[a] = _onnx_slice(s, e, k, shape[a])
    return tuple(out)


def convert_slice(node: Node) -> Run:
    return lambda args: [F.strided_slice(args[0], _slices(node, args[0].shape, args))]


def fold_slice(node: Node, args: list) -> list:
    x = np.asarray(args[0])
    return [x[_slices(node, x.shape, args)]]


_PAD_MODES = {"constant": "constant", "reflect": "reflect", "edge": "replicate"}


def _pad_widths(node: Node, rank: int, args: list) -> tuple[list[int], list[int], str, float]:
    """(before, after) per dim, the mode and the constant value."""
    mode = node.attr("mode", "constant")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    if mode not in _PAD_MODES:
        raise ValueError(f"pad mode {mode!r}; hetero pads in modes {', '.join(_PAD_MODES)}")
    if node.version < 11:
        pads, value = _ints(node.attr("pads")), float(node.attr("value", 0.0))
        axes = list(range(rank))
    else:
        pads = _ints(args[1])
        value = _scalar(args[2], "constant_value") if len(args) > 2 and args[2] is not None else 0.0
        axes = list(range(rank)) if len(args) < 4 or args[3] is None else \
            [_norm_axis(a, rank, "axis") for a in _ints(args[3])]
    if len(pads) != 2 * len(axes):
        raise ValueError(f"pads {pads} must have 2 x {len(axes)} entries")
    before, after = [0] * rank, [0] * rank
    for i, a in enumerate(axes):
        before[a], after[a] = pads[i], pads[len(axes) + i]
    return before, after, mode, value


def check_pad_mode(node: Node) -> None:
    mode = node.attr("mode", "constant")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    if mode not in _PAD_MODES:
        raise Unsupported(f"pad mode {mode!r}; hetero pads in modes {', '.join(_PAD_MODES)}")


def convert_pad(node: Node) -> Run:
    check_pad_mode(node)

    def run(args: list) -> list:
        x = args[0]
        before, after, mode, value = _pad_widths(node, x.ndim, args)
        return [F.pad(x, _torch_pad(before, after), _PAD_MODES[mode], value)]

    return run


def fold_pad(node: Node, args: list) -> list:
    check_pad_mode(node)
    x = np.asarray(args[0])
    before, after, mode, value = _pad_widths(node, x.ndim, args)
    crop = tuple(slice(max(-b, 0), n - max(-a, 0)) for n, b, a in zip(x.shape, before, after))
    widths = [(max(b, 0), max(a, 0)) for b, a in zip(before, after)]
    if mode == "constant":
        return [np.pad(x[crop], widths, mode="constant", constant_values=value)]
    return [np.pad(x[crop], widths, mode=mode)]


def convert_identity(node: Node) -> Run:
    return lambda args: [args[0]]


def fold_identity(node: Node, args: list) -> list:
    return [args[0]]


def check_constant(node: Node) -> None:
    for name in ("sparse_value", "value_string", "value_strings"):
        if name in node.attrs:
            raise Unsupported(f"a Constant given as {name}; hetero folds tensors, floats and ints")


def fold_constant(node: Node, args: list) -> list:
    check_constant(node)
    from onnx import numpy_helper  # here: ops.py imports without onnx for the registry's tests

    a = node.attrs
    if "value" in a:
        return [numpy_helper.to_array(a["value"])]
    if "value_float" in a:
        return [np.array(a["value_float"], np.float32)]
    if "value_floats" in a:
        return [np.array(a["value_floats"], np.float32)]
    if "value_int" in a:
        return [np.array(a["value_int"], np.int64)]
    if "value_ints" in a:
        return [np.array(a["value_ints"], np.int64)]
    raise ValueError("a Constant without a value")


def fold_constant_of_shape(node: Node, args: list) -> list:
    from onnx import numpy_helper

    shape = _ints(args[0])
    value = node.attr("value")
    v = np.zeros(1, np.float32) if value is None else numpy_helper.to_array(value).reshape(-1)
    return [np.full(shape, v[0], dtype=v.dtype)]


def fold_shape(node: Node, args: list) -> list:
    shape = tuple(args[0].shape)
    start, end = int(node.attr("start", 0)), node.attr("end")
    return [np.array(shape[slice(start, None if end is None else int(end))], np.int64)]


def fold_gather(node: Node, args: list) -> list:
    data, indices = np.asarray(args[0]), np.asarray(args[1])
    axis = _norm_axis(int(node.attr("axis", 0)), data.ndim, "axis")
    return [np.take(data, indices.astype(np.int64), axis=axis)]


def _cast_dtype(node: Node) -> np.dtype:
    from onnx import helper

    return np.dtype(helper.tensor_dtype_to_np_dtype(int(node.attr("to"))))


def convert_cast(node: Node) -> Run:
    if _cast_dtype(node) != np.float32:
        raise Unsupported(f"Cast of device data to {_cast_dtype(node)}; hetero's device tensors are float32 "
                          "(other types only in shape arithmetic folded on the host)")
    return lambda args: [args[0]]


def fold_cast(node: Node, args: list) -> list:
    return [np.asarray(args[0]).astype(_cast_dtype(node))]


def convert_neg(node: Node) -> Run:
    return lambda args: [F.mul(args[0], -1.0)]


def fold_neg(node: Node, args: list) -> list:
    return [-np.asarray(args[0])]


def _split_slices(node: Node, shape: tuple, args: list) -> list[tuple[slice, ...]]:
    """One index per output of Split: the given sizes, else num_outputs (18+) or the outputs' count as equal
    parts (the last one smaller when the dim does not divide)."""
    axis = _norm_axis(int(node.attr("axis", 0)), len(shape), "axis")
    sizes = node.attr("split") if node.version < 13 else (args[1] if len(args) > 1 else None)
    n = shape[axis]
    if sizes is not None and len(_ints(sizes)):
        sizes = _ints(sizes)
    else:
        parts = int(node.attr("num_outputs", len(node.outputs)))
        step = -(-n // parts)
        sizes = [min(step, n - i * step) for i in range(parts)]
    if sum(sizes) != n or min(sizes) < 0:
        raise ValueError(f"split sizes {sizes} do not add up to dim {axis} of shape {tuple(shape)}")
    out, start = [], 0
    for size in sizes:
        index = [slice(None)] * len(shape)
        index[axis] = slice(start, start + size)
        out.append(tuple(index))
        start += size
    return out


def convert_split(node: Node) -> Run:
    def run(args: list) -> list:
        return [F.strided_slice(args[0], index) if name else None
                for index, name in zip(_split_slices(node, args[0].shape, args), node.outputs)]

    return run


def fold_split(node: Node, args: list) -> list:
    x = np.asarray(args[0])
    return [x[index] for index in _split_slices(node, x.shape, args)]


def _expanded_shape(shape: tuple, target: Any) -> tuple[int, ...]:
    target = tuple(_ints(target))
    try:
        return tuple(np.broadcast_shapes(tuple(shape), target))
    except ValueError:
        raise ValueError(f"shape {tuple(shape)} does not broadcast to {target}") from None


def convert_expand(node: Node) -> Run:
    def run(args: list) -> list:
        x = args[0]
        out = _expanded_shape(x.shape, args[1])
        x = F.reshape(x, (1,) * (len(out) - x.ndim) + x.shape)
        return [_expand(x, out)]

    return run


def fold_expand(node: Node, args: list) -> list:
    x = np.asarray(args[0])
    return [np.broadcast_to(x, _expanded_shape(x.shape, args[1])).copy()]


# ---------------------------------------------------------------- the registry

_POOL = frozenset({"auto_pad", "ceil_mode", "kernel_shape", "pads", "strides"})
_LEGACY_BROADCAST = frozenset({"broadcast", "axis"})
_ACTIVATION = "relu, leaky_relu, elu, selu, sigmoid, tanh: hetero.ops.activation"

OPS: dict[str, OpSpec] = {
    "Conv": OpSpec((1, 11, 22), frozenset({"auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"}),
                   convert_conv, how="conv2d; 1-D as a 2-D image of height 1; asymmetric pads as an explicit pad"),
    "MaxPool": OpSpec((1, 8, 10, 11, 12, 22), _POOL | {"dilations", "storage_order"}, convert_pool("max"),
                      how="max_pool2d (windows over 64 taps as a row pass and a column pass); pads it cannot take "
                          "(asymmetric, over half the kernel, ceil windows) as an explicit -inf pad"),
    "AveragePool": OpSpec((1, 7, 10, 11, 19, 22), _POOL | {"count_include_pad", "dilations"}, convert_pool("avg"),
                          how="avg_pool2d; other pads as an explicit zero pad and a constant divisor correction"),
    "GlobalAveragePool": OpSpec((1, 22), frozenset(), convert_global_pool("avg"), how="adaptive_avg_pool2d to 1x1"),
    "GlobalMaxPool": OpSpec((1, 22), frozenset(), convert_global_pool("max"),
                            how="max_pool2d with one whole-plane window (a row pass and a column pass)"),
    "LRN": OpSpec((1, 13), frozenset({"alpha", "beta", "bias", "size"}), convert_lrn, how="local_response_norm"),
    "Gemm": OpSpec((6, 7, 9, 11, 13), frozenset({"alpha", "beta", "transA", "transB", "broadcast"}), convert_gemm,
                   how="linear (transB) or matmul, then alpha / beta * C as mul and add"),
    "MatMul": OpSpec((1, 9, 13), frozenset(), convert_matmul, how="matmul, batch dims folded into 3-D"),
    "Add": OpSpec((6, 7, 13, 14), _LEGACY_BROADCAST, convert_binary("Add"), fold_binary("Add")),
    "Sub": OpSpec((6, 7, 13, 14), _LEGACY_BROADCAST, convert_binary("Sub"), fold_binary("Sub"),
                  how="add of the negated operand"),
    "Mul": OpSpec((6, 7, 13, 14), _LEGACY_BROADCAST, convert_binary("Mul"), fold_binary("Mul")),
    "Div": OpSpec((6, 7, 13, 14), _LEGACY_BROADCAST, convert_binary("Div"), fold_binary("Div"),
                  how="mul by the reciprocal"),
    "Sum": OpSpec((6, 8, 13), frozenset(), convert_sum, fold_sum, how="a chain of adds"),
    "Relu": OpSpec((6, 13, 14), frozenset(), convert_unary(F.relu), how=_ACTIVATION),
    "LeakyRelu": OpSpec((6, 16), frozenset({"alpha"}), convert_leaky_relu, how=_ACTIVATION),
    "Elu": OpSpec((6, 22), frozenset({"alpha"}), convert_elu, how=_ACTIVATION),
    "Selu": OpSpec((6, 22), frozenset({"alpha", "gamma"}), convert_selu,
                   how="selu; other alpha / gamma as gamma * elu(x, alpha)"),
    "PRelu": OpSpec((6, 7, 9, 16), frozenset(), convert_prelu,
                    how="prelu for a scalar or per-channel slope; other broadcasts as relu(x) + slope * min(x, 0)"),
    "Sigmoid": OpSpec((6, 13), frozenset(), convert_unary(F.sigmoid), how=_ACTIVATION),
    "Tanh": OpSpec((6, 13), frozenset(), convert_unary(F.tanh), how=_ACTIVATION),
    "Clip": OpSpec((6, 11, 12, 13), frozenset({"min", "max"}), convert_clip, fold_clip, host_inputs=frozenset({1, 2}),
                   how="clamp with scalar bounds"),
    "Softmax": OpSpec((1, 11, 13), frozenset({"axis"}), convert_softmax(False),
                      how="softmax; before opset 13 over the input flattened to 2-D at axis"),
    "LogSoftmax": OpSpec((1, 11, 13), frozenset({"axis"}), convert_softmax(True),
                         how="log_softmax; before opset 13 over the input flattened to 2-D at axis"),
    "BatchNormalization": OpSpec((6, 7, 9, 14, 15), frozenset({"epsilon", "momentum", "spatial", "is_test",
                                                               "training_mode"}),
                                 convert_batch_norm, buffer_inputs=frozenset({3, 4}),
                                 how="batch_norm: running stats in eval mode, batch stats after module.train()"),
    "Dropout": OpSpec((6, 7, 10, 12, 13, 22), frozenset({"ratio", "is_test", "seed"}), convert_dropout,
                      host_inputs=frozenset({1, 2}), how="identity, dropout after module.train()"),
    "Flatten": OpSpec((1, 9, 11, 13, 21, 23, 24, 25), frozenset({"axis"}), convert_reshape_like(_flatten_target),
                      fold_reshape_like(_flatten_target), how="reshape"),
    "Reshape": OpSpec((5, 13, 14, 19, 21, 23, 24, 25), frozenset({"allowzero"}),
                      convert_reshape_like(_reshape_args_target), fold_reshape_like(_reshape_args_target),
                      host_inputs=frozenset({1}), how="reshape"),
    "Transpose": OpSpec((1, 13, 21, 23, 24, 25), frozenset({"perm"}), convert_transpose, fold_transpose,
                        how="permute"),
    "Concat": OpSpec((4, 11, 13), frozenset({"axis"}), convert_concat, fold_concat, how="cat"),
    "Squeeze": OpSpec((1, 11, 13, 21, 23, 24, 25), frozenset({"axes"}), convert_reshape_like(_squeeze_shape),
                      fold_reshape_like(_squeeze_shape), host_inputs=frozenset({1}), how="reshape"),
    "Unsqueeze": OpSpec((1, 11, 13, 21, 23, 24, 25), frozenset({"axes"}), convert_reshape_like(_unsqueeze_shape),
                        fold_reshape_like(_unsqueeze_shape), host_inputs=frozenset({1}), how="reshape"),
    "Pad": OpSpec((2, 11, 13, 18, 19, 21, 23, 24, 25), frozenset({"mode", "pads", "value"}), convert_pad, fold_pad,
                  host_inputs=frozenset({1, 2, 3}), how="pad (modes constant, reflect, edge)"),
    "Neg": OpSpec((6, 13), frozenset(), convert_neg, fold_neg, how="mul by -1"),
    "Split": OpSpec((2, 11, 13, 18), frozenset({"axis", "split", "num_outputs"}), convert_split, fold_split,
                    host_inputs=frozenset({1}), how="one strided_slice per output"),
    "Expand": OpSpec((8, 13), frozenset(), convert_expand, fold_expand, host_inputs=frozenset({1}),
                     how="cat of copies along each broadcast dim"),
    "Identity": OpSpec((1, 13, 14, 16, 19, 21, 23, 24, 25), frozenset(), convert_identity, fold_identity),
    "Constant": OpSpec((1, 9, 11, 12, 13, 19, 21, 23, 24, 25),
                       frozenset({"value", "value_float", "value_floats", "value_int", "value_ints", "sparse_value",
                                  "value_string", "value_strings"}), None, fold_constant, how="folded at load"),
    "ConstantOfShape": OpSpec((9, 20, 21, 23, 24, 25), frozenset({"value"}), None, fold_constant_of_shape,
                              how="folded on the host"),
    "Shape": OpSpec((1, 13, 15, 19, 21, 23, 24, 25), frozenset({"start", "end"}), None, fold_shape,
                    shape_inputs=frozenset({0}), how="folded on the host from the static shape"),
    "Gather": OpSpec((1, 11, 13), frozenset({"axis"}), None, fold_gather, how="folded on the host (shape arithmetic)"),
    "Cast": OpSpec((6, 9, 13, 19, 21, 23, 24, 25, 28), frozenset({"to", "saturate", "round_mode"}), convert_cast,
                   fold_cast, how="folded on the host; to float32 on the device it is the identity"),
    "Slice": OpSpec((1, 10, 11, 13), frozenset({"starts", "ends", "axes"}), convert_slice, fold_slice,
                    host_inputs=frozenset({1, 2, 3, 4}), how="strided_slice"),
}
