"""Eager reverse-mode autograd: ops are Function subclasses; backward walks the graph in reverse.

A Function's forward(ctx, *args) computes with device kernels and may save tensors on ctx;
backward(ctx, grad) returns one gradient (or None) per positional argument of forward.
Gradients of a tensor used twice are summed (as a residual branch needs).
"""

from __future__ import annotations

import contextlib
import threading

import numpy as np

from .ops.accumulate import accumulate
from .tensor import Tensor, methods, ones

_state = threading.local()


def is_grad_enabled() -> bool:
    return getattr(_state, "enabled", True)


@contextlib.contextmanager
def set_grad_enabled(mode: bool):
    prev = is_grad_enabled()
    _state.enabled = bool(mode)
    try:
        yield
    finally:
        _state.enabled = prev


def no_grad():
    """Context manager: ops inside record no graph (inference, optimizer updates)."""
    return set_grad_enabled(False)


_FREED = ("Trying to backward through the graph a second time (or directly access saved tensors after they "
          "have already been freed). Saved intermediate values of the graph are freed when you call .backward(). "
          "Specify retain_graph=True if you need to backward through the graph a second time or if you need to "
          "access saved tensors after calling backward.")


class Context:
    """What a Function's forward keeps for its backward."""

    def __init__(self):
        self._saved: tuple | None = ()
        self.inputs: tuple = ()
        self.needs_input_grad: tuple[bool, ...] = ()

    def save_for_backward(self, *tensors) -> None:
        self._saved = tensors

    @property
    def saved_tensors(self) -> tuple:
        if self._saved is None:
            raise RuntimeError(_FREED)
        return self._saved

    @property
    def freed(self) -> bool:
        """Whether a backward without retain_graph has released the saved tensors."""
        return self._saved is None

    def free(self) -> None:
        """Release the saved tensors (their memory returns to the pool); a node that saved none stays
        usable, as in PyTorch, since its backward needs nothing that was released."""
        if self._saved:
            self._saved = None


class Function:
    """Base of differentiable ops. Subclasses define static forward(ctx, ...) and backward(ctx, grad)."""

    @staticmethod
    def forward(ctx: Context, *args, **kwargs):
        raise NotImplementedError

    @staticmethod
    def backward(ctx: Context, grad: Tensor):
        raise NotImplementedError

    @classmethod
    def apply(cls, *args, **kwargs):
        ctx = Context()
        needs = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        track = is_grad_enabled() and any(needs)
        with set_grad_enabled(False):
            out = cls.forward(ctx, *args, **kwargs)
        checks: tuple = ()
        for a in args:  # a plain loop: this runs for every op, and almost never finds a check
            if isinstance(a, Tensor) and a.checks:
                checks += tuple(c for c in a.checks if c not in checks)  # loss + loss: each check once
        if checks:  # a value computed from a checked one (loss * 2, a reshaped loss) raises the same way
            for t in out if isinstance(out, tuple) else (out,):
                if isinstance(t, Tensor):
                    t.checks = t.checks + tuple(c for c in checks if c not in t.checks)
        if track:
            ctx.inputs = args
            ctx.needs_input_grad = needs
            node = Node(cls, ctx)
            for t in out if isinstance(out, tuple) else (out,):
                if isinstance(t, Tensor) and t.dtype == np.float32:
                    t.requires_grad = True
                    t.grad_fn = node
                    break  # the first float output carries the gradient; others are side outputs
        return out


class Node:
    """One recorded op in the graph: its Function, context and input tensors."""

    __slots__ = ("fn", "ctx")

    def __init__(self, fn: type[Function], ctx: Context):
        self.fn = fn
        self.ctx = ctx

    def __repr__(self) -> str:
        return f"<{self.fn.__name__} backward>"


def backward(root: Tensor, grad: Tensor | None = None, retain_graph: bool | None = None) -> None:
    """Accumulate d(root)/d(leaf) into .grad of every leaf that requires grad; the graph's saved tensors
    are released afterwards unless retain_graph, so a second backward through it raises."""
    if not root.requires_grad:
        raise RuntimeError("backward() on a tensor that does not require grad (no graph was recorded)")
    if grad is None:
        if root.size != 1:
            raise RuntimeError(f"backward() without a gradient needs a one-element tensor, got shape {root.shape}")
        grad = ones(root.shape, device=root.device)
    else:
        _check_grad(root, grad)

    order = _topological(root)
    # refuse before any .grad changes, so a failed call leaves every leaf as it was
    if any(t.grad_fn is not None and t.grad_fn.ctx.freed for t in order):
        raise RuntimeError(_FREED)
    grads: dict[int, Tensor] = {id(root): grad}
    with set_grad_enabled(False):
        for t in reversed(order):
            g = grads.pop(id(t), None)
            if g is None:
                continue
            if t.grad_fn is None:
                t.grad = g if t.grad is None else accumulate(t.grad, g)
                continue
            ctx = t.grad_fn.ctx
            in_grads = t.grad_fn.fn.backward(ctx, g)
            if not isinstance(in_grads, tuple):
                in_grads = (in_grads,)
            for inp, need, ig in zip(ctx.inputs, ctx.needs_input_grad, in_grads):
                if not need or ig is None:
                    continue
                if ig.shape != inp.shape:
                    raise RuntimeError(f"{t.grad_fn.fn.__name__}.backward gave a gradient of shape "
                                       f"{ig.shape} for an input of shape {inp.shape}")
                prev = grads.get(id(inp))
                grads[id(inp)] = ig if prev is None else accumulate(prev, ig)
            if not retain_graph:
                ctx.free()


def _check_grad(root: Tensor, grad) -> None:
    """The gradient given to backward() must be a float32 tensor of root's shape on root's device: a
    kernel would read another dtype's bits as floats and another device's buffer not at all."""
    if not isinstance(grad, Tensor):
        raise ValueError(f"backward(): gradient must be a hetero Tensor, got {type(grad).__name__}")
    if grad.dtype != np.float32:
        raise ValueError(f"backward(): gradient dtype {grad.dtype} does not match tensor dtype {root.dtype} "
                         "(gradients are float32)")
    if grad.device is not root.device:
        raise ValueError(f"backward(): gradient is on {grad.device.id} but the tensor is on {root.device.id}")
    if grad.shape != root.shape:
        raise ValueError(f"backward(): gradient shape {grad.shape} does not match tensor shape {root.shape}")


methods.backward = backward  # Tensor.backward


def _topological(root: Tensor) -> list[Tensor]:
    """Tensors reachable from root, each after all tensors it was computed from."""
    order: list[Tensor] = []
    seen: set[int] = set()
    stack = [(root, False)]
    while stack:
        t, done = stack.pop()
        if done:
            order.append(t)
            continue
        if id(t) in seen:
            continue
        seen.add(id(t))
        stack.append((t, True))
        if t.grad_fn is not None:
            for inp, need in zip(t.grad_fn.ctx.inputs, t.grad_fn.ctx.needs_input_grad):
                if need and id(inp) not in seen:
                    stack.append((inp, False))
    return order
