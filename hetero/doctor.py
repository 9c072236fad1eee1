"""`hetero doctor`: every op family at small shapes on one device against the float64 numpy references.

    rows = hetero.doctor("0:0")          # one Row per check: error, tolerance, verdict, seconds
    print(format_rows(rows))

A check runs the public op (the algorithm the device's tables pick, forward and gradients) and compares
each output with hetero/reference/ as the ops tests do: |got - ref| <= atol + rtol * max(max|ref|, 1).
A check that raises is a failed row carrying the exception's message. The device's random generator is left
as found.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from . import random as hrandom
from .autograd import set_grad_enabled
from .device import Device, device
from .ops.activation import elu, leaky_relu, prelu, relu, selu, sigmoid, tanh
from .ops.batch_norm import batch_norm
from .ops.conv2d import conv2d
from .ops.dropout import dropout
from .ops.elementwise import add, mul
from .ops.gemm import gemm
from .ops.linear import linear
from .ops.local_response_norm import local_response_norm
from .ops.matmul import matmul
from .ops.pool2d import adaptive_avg_pool2d, avg_pool2d, max_pool2d
from .ops.softmax import cross_entropy, log_softmax, nll_loss, softmax
from .optim import SGD, Adam
from .reference import activation as ref_act
from .reference import batch_norm as ref_bn
from .reference import conv2d as ref_conv
from .reference import dropout as ref_dropout
from .reference import elementwise as ref_elem
from .reference import linear as ref_linear
from .reference import local_response_norm as ref_lrn
from .reference import matmul as ref_matmul
from .reference import optim as ref_optim
from .reference import pool2d as ref_pool
from .reference import softmax as ref_softmax
from .tensor import Tensor, tensor

# The ops tests' float32-against-float64 bound (tests/ops/test_conv2d.py, test_batch_norm.py, ...).
RTOL, ATOL = 1e-4, 1e-5
# Optimizer steps: a few float32 roundings per step, as tests/ops/test_optim.py allows.
OPTIM_RTOL, OPTIM_ATOL = 2e-5, 1e-6
# Dropout's keep fraction may stray this many standard deviations from 1 - p before it counts as wrong
# (a correct generator fails it once in ~1.7 million runs; the mask itself is compared bit for bit).
DROPOUT_SIGMAS = 5.0
SEED = 1234
_MESSAGE_CHARS = 300  # a failed row's message, on one line


@dataclass(frozen=True)
class Piece:
    """One output of a check: what it is, the device's result and the reference (tolerances: the check's,
    unless given)."""

    what: str
    got: np.ndarray
    expected: np.ndarray
    rtol: float | None = None
    atol: float | None = None


@dataclass(frozen=True)
class Check:
    """A named check: run(dev, rng) runs the op on dev and returns its outputs beside the references."""

    name: str
    run: Callable[[Device, np.random.Generator], list[Piece]]
    rtol: float = RTOL
    atol: float = ATOL


@dataclass
class Row:
    """One check's verdict on one device. max_abs/max_rel/bound describe its worst output (`worst`)."""

    device: str
    op: str
    passed: bool
    seconds: float
    max_abs: float | None = None
    max_rel: float | None = None  # max_abs / max|reference|
    bound: float | None = None  # the tolerance max_abs had to stay within
    worst: str = ""
    error: str = ""  # why it failed: an exception, a shape mismatch, the output out of tolerance

    def to_dict(self) -> dict:
        """The fields, with an infinite error (a NaN or a shape mismatch) as None: strict JSON has no inf."""
        return {k: None if isinstance(v, float) and not np.isfinite(v) else v for k, v in asdict(self).items()}


def _host(t) -> np.ndarray:
    return t.numpy() if isinstance(t, Tensor) else np.asarray(t)


def _compare(piece: Piece, rtol: float, atol: float) -> tuple[float, float, float, str]:
    """(max_abs, max_rel, bound, problem) of one output; problem is '' when it is within the bound."""
    rtol = rtol if piece.rtol is None else piece.rtol
    atol = atol if piece.atol is None else piece.atol
    if piece.got is None:
        return np.inf, np.inf, 0.0, f"{piece.what}: missing (the op produced none)"
    got = _host(piece.got)
    want = np.asarray(piece.expected, np.float64)
    if got.shape != want.shape:
        return np.inf, np.inf, 0.0, f"{piece.what}: shape {got.shape}, expected {want.shape}"
    scale = float(np.max(np.abs(want))) if want.size else 0.0
    bound = atol + rtol * max(scale, 1.0)
    err = np.abs(got.astype(np.float64) - want)
    worst = float(np.max(err)) if err.size else 0.0
    if np.isnan(worst) or (err.size and np.isnan(err).any()):
        worst = np.inf  # a NaN where the reference has a number
    rel = worst / scale if scale else (0.0 if worst == 0 else np.inf)
    problem = "" if worst <= bound else f"{piece.what}: max abs error {worst:.3g} > {bound:.3g}"
    return worst, rel, bound, problem


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    if len(text) > _MESSAGE_CHARS:
        text = text[:_MESSAGE_CHARS - 3] + "..."
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def run_check(dev: Device, check: Check, seed: int = SEED) -> Row:
    """One check on dev: its worst output against its bound, or the exception it raised, and its wall time
    (the op, its reads and the reference)."""
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    try:
        with set_grad_enabled(True):
            pieces = check.run(dev, rng)
            dev.synchronize()
        compared = [(piece, _compare(piece, check.rtol, check.atol)) for piece in pieces]
    except Exception as e:  # a broken op is a failed row, never a traceback
        return Row(dev.id, check.name, False, time.perf_counter() - t0, error=_one_line(e))
    row = Row(dev.id, check.name, True, time.perf_counter() - t0)
    worst_ratio = -1.0
    problems = []
    for piece, (max_abs, max_rel, bound, problem) in compared:
        if problem:
            problems.append(problem)
        ratio = max_abs / bound if bound else (0.0 if max_abs == 0 else np.inf)
        if ratio > worst_ratio:
            worst_ratio = ratio
            row.max_abs, row.max_rel, row.bound, row.worst = max_abs, max_rel, bound, piece.what
    if problems:
        row.passed = False
        row.error = "; ".join(problems)
    return row


# ---- the checks ----------------------------------------------------------------------------------------------

def _f32(rng: np.random.Generator, shape, scale: float = 1.0) -> np.ndarray:
    return (scale * rng.standard_normal(shape)).astype(np.float32)


def _gemm(m: int, n: int, k: int, trans_a: bool, trans_b: bool):
    def run(dev: Device, rng: np.random.Generator) -> list[Piece]:
        a = _f32(rng, (k, m) if trans_a else (m, k))
        b = _f32(rng, (n, k) if trans_b else (k, n))
        bias = _f32(rng, (n,))
        c = gemm(tensor(a, dev), tensor(b, dev), trans_a, trans_b, tensor(bias, dev))
        want = ref_matmul.matmul_forward(a.T if trans_a else a, b.T if trans_b else b) + bias
        return [Piece("c", c, want)]

    return run


def _matmul(dev: Device, rng: np.random.Generator) -> list[Piece]:
    a, b = _f32(rng, (3, 17, 9)), _f32(rng, (9, 11))
    ta, tb = tensor(a, dev, requires_grad=True), tensor(b, dev, requires_grad=True)
    y = matmul(ta, tb)
    g = _f32(rng, (3, 17, 11))
    y.backward(tensor(g, dev))
    ga, gb = ref_matmul.matmul_backward(g, a, b)
    return [Piece("forward", y, ref_matmul.matmul_forward(a, b)), Piece("grad a", ta.grad, ga),
            Piece("grad b", tb.grad, gb)]


def _linear(dev: Device, rng: np.random.Generator) -> list[Piece]:
    x, w, b = _f32(rng, (5, 7, 33)), _f32(rng, (20, 33), 0.2), _f32(rng, (20,))
    tx, tw, tb = (tensor(v, dev, requires_grad=True) for v in (x, w, b))
    y = linear(tx, tw, tb)
    g = _f32(rng, (5, 7, 20))
    y.backward(tensor(g, dev))
    gx, gw, gb = ref_linear.linear_backward(g, x, w)
    return [Piece("forward", y, ref_linear.linear_forward(x, w, b)), Piece("grad input", tx.grad, gx),
            Piece("grad weight", tw.grad, gw), Piece("grad bias", tb.grad, gb)]


def _conv(xs, ws, stride=1, padding=0, dilation=1, groups=1, bias=True):
    def run(dev: Device, rng: np.random.Generator) -> list[Piece]:
        x = _f32(rng, xs)
        w = _f32(rng, ws, 1.0 / np.sqrt(np.prod(ws[1:])))
        b = _f32(rng, (ws[0],)) if bias else None
        tx, tw = tensor(x, dev, requires_grad=True), tensor(w, dev, requires_grad=True)
        tb = tensor(b, dev, requires_grad=True) if bias else None
        y = conv2d(tx, tw, tb, stride, padding, dilation, groups)
        want = ref_conv.conv2d_forward(x, w, b, stride, padding, dilation, groups)
        g = _f32(rng, want.shape)
        y.backward(tensor(g, dev))
        dx, dw, db = ref_conv.conv2d_backward(g, x, w, stride, padding, dilation, groups)
        pieces = [Piece("forward", y, want), Piece("grad input", tx.grad, dx), Piece("grad weight", tw.grad, dw)]
        return pieces + ([Piece("grad bias", tb.grad, db)] if bias else [])

    return run


def _max_pool(xs, kernel, stride=None, padding=0):
    def run(dev: Device, rng: np.random.Generator) -> list[Piece]:
        x = _f32(rng, xs)
        tx = tensor(x, dev, requires_grad=True)
        y = max_pool2d(tx, kernel, stride, padding)
        want, idx = ref_pool.max_pool2d(x, kernel, stride, padding)
        g = _f32(rng, want.shape)
        y.backward(tensor(g, dev))
        return [Piece("forward", y, want), Piece("grad input", tx.grad, ref_pool.max_pool2d_backward(g, idx, xs))]

    return run


def _avg_pool(xs, kernel, stride=None, padding=0, count_include_pad=True):
    def run(dev: Device, rng: np.random.Generator) -> list[Piece]:
        x = _f32(rng, xs)
        tx = tensor(x, dev, requires_grad=True)
        y = avg_pool2d(tx, kernel, stride, padding, count_include_pad=count_include_pad)
        want = ref_pool.avg_pool2d(x, kernel, stride, padding, count_include_pad=count_include_pad)
        g = _f32(rng, want.shape)
        y.backward(tensor(g, dev))
        gx = ref_pool.avg_pool2d_backward(g, xs, kernel, stride, padding, count_include_pad=count_include_pad)
        return [Piece("forward", y, want), Piece("grad input", tx.grad, gx)]

    return run


def _adaptive_pool(xs, out):
    def run(dev: Device, rng: np.random.Generator) -> list[Piece]:
        x = _f32(rng, xs)
        tx = tensor(x, dev, requires_grad=True)
        y = adaptive_avg_pool2d(tx, out)
        want = ref_pool.adaptive_avg_pool2d(x, out)
        g = _f32(rng, want.shape)
        y.backward(tensor(g, dev))
        return [Piece("forward", y, want), Piece("grad input", tx.grad, ref_pool.adaptive_avg_pool2d_backward(g, xs))]

    return run


def _batch_norm(training: bool, xs=(4, 6, 5, 5)):
    def run(dev: Device, rng: np.random.Generator) -> list[Piece]:
        c = xs[1]
        x = (0.5 + 2.0 * rng.standard_normal(xs)).astype(np.float32)
        w = rng.uniform(0.5, 1.5, c).astype(np.float32)
        b = _f32(rng, (c,))
        rm, rv = _f32(rng, (c,)), rng.uniform(0.5, 2.0, c).astype(np.float32)
        tx, tw, tb = (tensor(v, dev, requires_grad=True) for v in (x, w, b))
        trm, trv = tensor(rm, dev), tensor(rv, dev)
        y = batch_norm(tx, trm, trv, tw, tb, training, 0.1, 1e-5)
        want, mean, invstd, new_rm, new_rv = ref_bn.batch_norm_forward(x, rm, rv, w, b, training, 0.1, 1e-5)
        g = _f32(rng, xs)
        y.backward(tensor(g, dev))
        dx, dw, db = ref_bn.batch_norm_backward(g, x, None, w, mean, invstd, training)
        return [Piece("forward", y, want), Piece("running mean", trm, new_rm), Piece("running var", trv, new_rv),
                Piece("grad input", tx.grad, dx), Piece("grad weight", tw.grad, dw), Piece("grad bias", tb.grad, db)]

    return run


def _softmax(log: bool, dim: int):
    def run(dev: Device, rng: np.random.Generator) -> list[Piece]:
        x = _f32(rng, (6, 10, 3), 3.0)
        tx = tensor(x, dev, requires_grad=True)
        y = (log_softmax if log else softmax)(tx, dim)
        want = (ref_softmax.log_softmax if log else ref_softmax.softmax)(x.astype(np.float64), dim)
        g = _f32(rng, x.shape)
        y.backward(tensor(g, dev))
        back = ref_softmax.log_softmax_backward if log else ref_softmax.softmax_backward
        return [Piece("forward", y, want), Piece("grad input", tx.grad, back(g.astype(np.float64), want, dim))]

    return run


def _loss(name: str):
    def run(dev: Device, rng: np.random.Generator) -> list[Piece]:
        n, c = 9, 7
        x = _f32(rng, (n, c), 2.0)
        if name == "nll_loss":
            x = ref_softmax.log_softmax(x.astype(np.float64), 1).astype(np.float32)
        target = rng.integers(0, c, n).astype(np.int32)
        target[3] = -100  # an ignored row
        weight = rng.uniform(0.5, 2.0, c).astype(np.float32)
        tx = tensor(x, dev, requires_grad=True)
        fn = cross_entropy if name == "cross_entropy" else nll_loss
        loss = fn(tx, tensor(target, dev), tensor(weight, dev))
        loss.backward()
        ref, ref_back = ((ref_softmax.cross_entropy, ref_softmax.cross_entropy_backward) if name == "cross_entropy"
                         else (ref_softmax.nll_loss, ref_softmax.nll_loss_backward))
        x64, t64, w64 = x.astype(np.float64), target.astype(np.int64), weight.astype(np.float64)
        return [Piece("loss", loss, ref(x64, t64, w64)),
                Piece("grad input", tx.grad, ref_back(np.float64(1.0), x64, t64, w64))]

    return run


# name -> (hetero op, reference forward, reference backward, alpha or None)
_ACTIVATIONS = {
    "relu": (relu, ref_act.relu, ref_act.relu_backward, None),
    "leaky_relu": (leaky_relu, ref_act.leaky_relu, ref_act.leaky_relu_backward, 0.1),
    "elu": (elu, ref_act.elu, ref_act.elu_backward, 0.7),
    "selu": (selu, ref_act.selu, ref_act.selu_backward, None),
    "sigmoid": (sigmoid, ref_act.sigmoid, ref_act.sigmoid_backward, None),
    "tanh": (tanh, ref_act.tanh, ref_act.tanh_backward, None),
}


def _activation(name: str):
    def run(dev: Device, rng: np.random.Generator) -> list[Piece]:
        op, fwd, bwd, alpha = _ACTIVATIONS[name]
        x = _f32(rng, (3, 5, 7), 2.0)
        x[x == 0] = 0.5  # the gradient's convention at 0 is tested in tests/ops, not here
        tx = tensor(x, dev, requires_grad=True)
        y = op(tx) if alpha is None else op(tx, alpha)
        g = _f32(rng, x.shape)
        y.backward(tensor(g, dev))
        x64, g64 = x.astype(np.float64), g.astype(np.float64)
        extra = () if alpha is None else (alpha,)
        return [Piece("forward", y, fwd(x64, *extra)), Piece("grad input", tx.grad, bwd(g64, x64, *extra))]

    return run


def _prelu(dev: Device, rng: np.random.Generator) -> list[Piece]:
    x, w = _f32(rng, (4, 6, 5, 3)), rng.uniform(0.05, 0.5, 6).astype(np.float32)
    tx, tw = tensor(x, dev, requires_grad=True), tensor(w, dev, requires_grad=True)
    y = prelu(tx, tw)
    g = _f32(rng, x.shape)
    y.backward(tensor(g, dev))
    gx, gw = ref_act.prelu_backward(g.astype(np.float64), x.astype(np.float64), w.astype(np.float64))
    return [Piece("forward", y, ref_act.prelu(x.astype(np.float64), w.astype(np.float64))),
            Piece("grad input", tx.grad, gx), Piece("grad weight", tw.grad, gw)]


def _elementwise(name: str, a_shape, b_shape):
    def run(dev: Device, rng: np.random.Generator) -> list[Piece]:
        a, b = _f32(rng, a_shape), _f32(rng, b_shape)
        ta, tb = tensor(a, dev, requires_grad=True), tensor(b, dev, requires_grad=True)
        y = (add if name == "add" else mul)(ta, tb)
        a64, b64 = a.astype(np.float64), b.astype(np.float64)
        want = ref_elem.add(a64, b64) if name == "add" else ref_elem.mul(a64, b64)
        g = _f32(rng, want.shape)
        y.backward(tensor(g, dev))
        g64 = g.astype(np.float64)
        ga, gb = ref_elem.add_backward(g64, a_shape, b_shape) if name == "add" else ref_elem.mul_backward(g64, a64, b64)
        return [Piece("forward", y, want), Piece("grad a", ta.grad, ga), Piece("grad b", tb.grad, gb)]

    return run


def _dropout(dev: Device, rng: np.random.Generator) -> list[Piece]:
    """Mask and scaling against the Philox reference bit for bit, and the keep fraction against 1 - p."""
    p, shape = 0.3, (64, 1031)  # an odd size: the last Philox block is partly used
    saved = hrandom.get_rng_state(dev)
    try:
        hrandom.set_rng_state(dev, [0x2545F491, 0x9E3779B9, 0xFFFFFF00, 3])
        state = hrandom.get_rng_state(dev)
        x = (rng.uniform(0.5, 1.5, shape) * rng.choice([-1.0, 1.0], shape)).astype(np.float32)  # no zeros
        tx = tensor(x, dev, requires_grad=True)
        y = dropout(tx, p)
        g = _f32(rng, shape)
        y.backward(tensor(g, dev))
        got = y.numpy()
    finally:
        hrandom.set_rng_state(dev, saved)
    want, mask = ref_dropout.dropout(x.astype(np.float64), p, state)
    sigma = np.sqrt(p * (1 - p) / mask.size)
    return [Piece("mask", (got != 0).astype(np.float64), mask.astype(np.float64), 0.0, 0.0),
            Piece("forward", got, want, 1e-6, 0.0),
            Piece("grad input", tx.grad, ref_dropout.dropout_backward(g.astype(np.float64), mask, p), 1e-6, 0.0),
            Piece("keep fraction", np.array([(got != 0).mean()]), np.array([1.0 - p]), 0.0, DROPOUT_SIGMAS * sigma)]


def _lrn(dev: Device, rng: np.random.Generator) -> list[Piece]:
    x = _f32(rng, (2, 9, 5, 4), 2.0)
    size, alpha, beta, k = 5, 1e-2, 0.75, 2.0
    tx = tensor(x, dev, requires_grad=True)
    y = local_response_norm(tx, size, alpha, beta, k)
    g = _f32(rng, x.shape)
    y.backward(tensor(g, dev))
    return [Piece("forward", y, ref_lrn.local_response_norm(x, size, alpha, beta, k)),
            Piece("grad input", tx.grad, ref_lrn.local_response_norm_backward(g, x, size, alpha, beta, k))]


def _optimizer(name: str):
    def run(dev: Device, rng: np.random.Generator) -> list[Piece]:
        shapes = [(7,), (3, 5), (2, 3, 4, 5)]
        host = [rng.standard_normal(s).astype(np.float32) for s in shapes]
        params = [tensor(h, dev, requires_grad=True) for h in host]
        if name == "sgd":
            kw = dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)
            opt, ref = SGD(params, **kw), ref_optim.sgd
        else:
            kw = dict(lr=0.01, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1)
            opt, ref = Adam(params, **kw), ref_optim.adam
        want = [h.astype(np.float64) for h in host]
        states: list[dict] = [{} for _ in host]
        for _ in range(3):
            for i, p in enumerate(params):
                g = rng.standard_normal(p.shape).astype(np.float32)
                p.grad = tensor(g, dev)
                want[i], states[i] = ref(want[i], g.astype(np.float64), states[i], **kw)
            opt.step()
        return [Piece(f"param {tuple(p.shape)}", p, w) for p, w in zip(params, want)]

    return run


# The checks, in the order they print: one or more per op family, shapes small, odd and past one tile.
CHECKS: tuple[Check, ...] = (
    Check("gemm 67x45x39", _gemm(67, 45, 39, False, False)),
    Check("gemm 130x70x96 a^T", _gemm(130, 70, 96, True, False)),
    Check("gemm 96x130x70 b^T", _gemm(96, 130, 70, False, True)),
    Check("gemm 20x150x33 a^T b^T", _gemm(20, 150, 33, True, True)),
    Check("gemm 8x24x4096 (long k)", _gemm(8, 24, 4096, False, False)),
    Check("matmul batched + grads", _matmul),
    Check("linear + grads", _linear),
    Check("conv2d 3x3 pad 1 + grads", _conv((2, 8, 10, 10), (16, 8, 3, 3), 1, 1)),
    Check("conv2d 3x3 stride 2 pad 1 + grads", _conv((2, 6, 9, 11), (8, 6, 3, 3), 2, 1)),
    Check("conv2d 3x3 64 ch + grads", _conv((2, 64, 6, 6), (64, 64, 3, 3), 1, 1, bias=False)),
    Check("conv2d 1x1 + grads", _conv((2, 16, 6, 6), (24, 16, 1, 1))),
    Check("conv2d 5x5 pad 2 + grads", _conv((2, 3, 12, 12), (6, 3, 5, 5), 1, 2)),
    Check("conv2d grouped dilated + grads", _conv((2, 8, 9, 9), (8, 4, 3, 3), 1, 2, 2, 2)),
    Check("conv2d depthwise 3x3 + grads", _conv((2, 8, 8, 8), (8, 1, 3, 3), 1, 1, 1, 8)),
    Check("conv2d depthwise 3x3 stride 2 + grads", _conv((2, 6, 9, 9), (12, 1, 3, 3), 2, 1, 1, 6)),
    Check("max_pool2d 2x2 + grad", _max_pool((2, 3, 8, 8), 2)),
    Check("max_pool2d 3x3 stride 2 pad 1 + grad", _max_pool((2, 3, 9, 9), 3, 2, 1)),
    Check("avg_pool2d 3x3 stride 2 pad 1 + grad", _avg_pool((2, 3, 9, 9), 3, 2, 1)),
    Check("avg_pool2d 2x2 pad 1 excl. pad + grad", _avg_pool((2, 3, 7, 7), 2, 2, 1, count_include_pad=False)),
    Check("global avg pool + grad", _adaptive_pool((2, 8, 7, 7), 1)),
    Check("adaptive avg pool 3x3 + grad", _adaptive_pool((2, 4, 8, 7), 3)),
    Check("batch_norm train + grads", _batch_norm(True)),
    Check("batch_norm eval + grads", _batch_norm(False)),
    Check("softmax + grad", _softmax(False, 1)),
    Check("log_softmax + grad", _softmax(True, 2)),
    Check("cross_entropy + grad", _loss("cross_entropy")),
    Check("nll_loss + grad", _loss("nll_loss")),
    *(Check(f"{name} + grad", _activation(name)) for name in _ACTIVATIONS),
    Check("prelu + grads", _prelu),
    Check("add broadcast + grads", _elementwise("add", (2, 3, 4, 5), (3, 1, 5))),
    Check("mul broadcast + grads", _elementwise("mul", (2, 3, 4, 5), (1, 4, 1))),
    Check("dropout mask + stats + grad", _dropout),
    Check("local_response_norm + grad", _lrn),
    Check("sgd nesterov 3 steps", _optimizer("sgd"), OPTIM_RTOL, OPTIM_ATOL),
    Check("adam 3 steps", _optimizer("adam"), OPTIM_RTOL, OPTIM_ATOL),
)


def doctor(dev: str | int | Device | None = None, checks: Sequence[Check] | None = None,
           progress: Callable[[Row], None] | None = None, cancel: threading.Event | None = None) -> list[Row]:
    """Run every check (default CHECKS) on one device (a spec as hetero.device takes): one Row each, in order;
    a set `cancel` stops between checks."""
    d = device(dev)
    rows = []
    for check in CHECKS if checks is None else checks:
        if cancel is not None and cancel.is_set():
            break
        row = run_check(d, check)
        rows.append(row)
        if progress is not None:
            progress(row)
    return rows


def failures(rows: Sequence[Row]) -> list[Row]:
    return [r for r in rows if not r.passed]


def verdict(rows: Sequence[Row]) -> str:
    """A short verdict for a device list: 'doctor ok' or 'doctor: 2 ops wrong'."""
    bad = len(failures(rows))
    if not rows:
        return "doctor: no checks ran"
    return "doctor ok" if not bad else f"doctor: {bad} op{'s' if bad != 1 else ''} wrong"


def _num(v: float | None) -> str:
    if v is None:
        return "-"
    return "inf" if not np.isfinite(v) else f"{v:.1e}"


HEADER = f"  {'op':<40} {'max abs':>8} {'rel':>8} {'bound':>8}  {'':<4} {'ms':>7}"


def format_row(row: Row) -> str:
    """One line: name, max abs and relative error, the bound, ok/FAIL and the time (then why it failed)."""
    line = (f"  {row.op:<40} {_num(row.max_abs):>8} {_num(row.max_rel):>8} {_num(row.bound):>8}  "
            f"{'ok' if row.passed else 'FAIL':<4} {row.seconds * 1e3:>7.1f}")
    return line if row.passed else f"{line}  {row.error}"


def summary(rows: Sequence[Row]) -> str:
    bad = len(failures(rows))
    return f"{len(rows) - bad} passed / {bad} failed in {sum(r.seconds for r in rows):.2f} s"


def tolerance_note() -> str:
    return (f"bound = atol + rtol * max(max|reference|, 1); rtol {RTOL:g}, atol {ATOL:g} (optimizers {OPTIM_RTOL:g}, "
            f"{OPTIM_ATOL:g}; dropout: mask exact, keep fraction within {DROPOUT_SIGMAS:g} sigma)")
