"""The graph executor: trace one training (or inference) step into a static list of kernel launches,
then replay it. Replays only enqueue kernels: no Python op dispatch, no allocation, no host sync.

Tracing runs the step eagerly once inside `Device.tracing()`. Every launch is captured with its
arguments, and no buffer is reused during the trace. Then the memory plan: buffers still owned at the
end (parameters, gradients, optimizer state, the loss) are pinned; intermediates (freed during the
trace) are packed by lifetime, so that those whose launches do not overlap share one buffer, and the
recorded arguments are rewritten to match. A new input shape traces again.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyopencl as cl

from .autograd import no_grad
from .device import Device
from .limits import check_launch
from .nn.module import Module, model_device
from .optim import Optimizer
from .tensor import Tensor, empty
from .trace import Trace


class Plan:
    """One traced step: its input tensors, the recorded launches, the output and the memory it holds."""

    def __init__(self, dev: Device, inputs: list[Tensor]):
        self.device = dev
        self.inputs = inputs
        self.launches: list[tuple] = []
        self.host_written: set[int] = set()  # buffers the host wrote during the trace (never shared)
        self.output: Tensor | tuple[Tensor, ...] | None = None
        self._storages: list = []  # live owners of persistent buffers (params, grads, state), kept alive
        self._temps: list[cl.Buffer] = []  # physical buffers of the intermediates, owned by the plan
        self.unshared_bytes = 0  # what the intermediates would take without sharing
        # (kernel, global size, local size) per launch, each kernel its own object with its arguments set once
        # (see _bind); None until the first replay
        self._bound: list[tuple] | None = None
        self._reset: dict[int, tuple] = {}  # launch index -> args, for launches whose args are set at each replay

    def finish(self, trace: Trace) -> None:
        """Take the trace's launches, pin the persistent buffers and pack the intermediates (freed during the
        trace) by lifetime: two share memory when the launches using one all come before those using the other."""
        self.launches, self.host_written, freed = trace.launches, trace.host_written, trace.freed
        pool = self.device.pool
        first: dict[int, int] = {}
        last: dict[int, int] = {}
        for i, (_, _, _, args) in enumerate(self.launches):
            for a in args:
                if isinstance(a, cl.Buffer):
                    first.setdefault(a.int_ptr, i)
                    last[a.int_ptr] = i
        freed_ptrs = {b.int_ptr for b in freed}
        for ptr in first:
            owner = pool.owners.get(ptr) if ptr not in freed_ptrs else None
            if owner is not None:
                self._storages.append(owner)
        self.unshared_bytes = sum(b.size for b in freed if b.int_ptr in first)
        physical: list[list] = []  # [buffer, index of its last use so far]
        mapping: dict[int, cl.Buffer] = {}
        for b in sorted((b for b in freed if b.int_ptr in first), key=lambda b: first[b.int_ptr]):
            start, end = first[b.int_ptr], last[b.int_ptr]
            if b.int_ptr in self.host_written:
                physical.append([b, len(self.launches)])  # its contents come from the host: keep it whole
                continue
            fits = [p for p in physical if p[0].size >= b.size and p[1] < start]
            if fits:
                slot = min(fits, key=lambda p: p[0].size)
                slot[1] = end
                mapping[b.int_ptr] = slot[0]
                pool.free(b)
            else:
                physical.append([b, end])
        for b in freed:
            if b.int_ptr not in first:
                pool.free(b)  # freed during the trace and never used by a launch
        self._temps = [p[0] for p in physical]
        if mapping:
            self.launches = [(k, g, ls, tuple(mapping.get(a.int_ptr, a) if isinstance(a, cl.Buffer) else a
                                              for a in args)) for k, g, ls, args in self.launches]

    def _bind(self) -> list[tuple]:
        """Give every launch a kernel object of its own with its arguments set once, so a replay only
        enqueues (setting a launch's arguments through pyopencl costs more than the enqueue itself). Each launch
        is checked against the launch limits here, once, so replays pay nothing for them."""
        dev = self.device
        bound = []
        reset = {}
        for kernel, gsize, lsize, args in self.launches:
            if dev.check_limits:
                check_launch(dev, kernel, gsize, lsize, "compiled plan (Plan._bind)", strict=dev.strict_limits)
            # sizes as tuples made once: pyopencl converts any sequence at every enqueue
            gsize = tuple(gsize)
            lsize = None if lsize is None else tuple(lsize)
            own = cl.Kernel(kernel.program, kernel.function_name)
            try:
                own.set_args(*args)
            except (cl.LogicError, TypeError):  # an untyped Python scalar: keep setting it at each replay
                own = kernel
                reset[len(bound)] = args
            bound.append((own, gsize, lsize))
        self._reset = reset
        self._bound = bound
        return bound

    def replay(self) -> None:
        """Enqueue every launch on the device's queue; nothing waits for them."""
        bound = self._bound
        if bound is None:
            bound = self._bind()
        queue = self.device.queue
        enqueue = cl.enqueue_nd_range_kernel
        if self._reset:
            self._replay_resetting(queue)
            return
        for kernel, gsize, lsize in bound:
            enqueue(queue, kernel, gsize, lsize)

    def _replay_resetting(self, queue: cl.CommandQueue) -> None:
        """replay() for a plan with launches whose arguments are set again each time (the shared kernel objects
        of dev.run, which other launches change between replays)."""
        resets = self._reset
        for i, (kernel, gsize, lsize) in enumerate(self._bound):
            if i in resets:
                kernel.set_args(*resets[i])
            cl.enqueue_nd_range_kernel(queue, kernel, gsize, lsize)

    def replay_on(self, queue: cl.CommandQueue) -> list[cl.Event]:
        """Enqueue every launch on another queue of the device's context (a profiling one) and return their
        events, in launch order; for measuring where a replay's time goes."""
        if self._bound is None:
            self._bind()
        resets = self._reset
        events = []
        for i, (kernel, gsize, lsize) in enumerate(self._bound):
            if i in resets:
                kernel.set_args(*resets[i])
            events.append(cl.enqueue_nd_range_kernel(queue, kernel, gsize, lsize))
        return events

    def launch_sizes(self) -> list[tuple[cl.Kernel, tuple, tuple | None]]:
        """(kernel, global size, local size) of every launch, in the order replay() enqueues them."""
        return list(self._bound if self._bound is not None else self._bind())

    @property
    def persistent_bytes(self) -> int:
        """Device memory of the buffers that outlive a step (inputs, parameters, gradients, state)."""
        return sum(st.buffer.size for st in self._storages)

    @property
    def temp_bytes(self) -> int:
        """Device memory the plan holds for intermediates, after sharing."""
        return sum(b.size for b in self._temps)

    def __del__(self):
        try:
            for b in self._temps:
                self.device.pool.free(b)
        except Exception:  # interpreter shutdown
            pass


def _as_input(dev: Device, x: np.ndarray | Tensor, what: str) -> np.ndarray | Tensor:
    if isinstance(x, Tensor):
        if x.device is not dev:
            raise ValueError(f"compiled step: {what} is on {x.device.id} but the model is on {dev.id}")
        return x
    arr = np.asarray(x)
    if arr.dtype.kind == "f":
        return np.ascontiguousarray(arr, dtype=np.float32)
    if arr.dtype.kind in "iu":
        return np.ascontiguousarray(arr, dtype=np.int32)
    raise ValueError(f"compiled step: {what} has unsupported dtype {arr.dtype}")


def _copy_in(dst: Tensor, src: np.ndarray | Tensor) -> None:
    if isinstance(src, Tensor):
        dst.device.copy(dst, src, dst.nbytes)
    else:
        dst.device.write(dst, src)  # a snapshot: the caller may reuse its array at once


class _Traced:
    """Shared machinery: plans keyed by input shapes and dtypes, traced on first use."""

    def __init__(self, model):
        self.model = model
        self.device = model_device(model, "compile")
        self._plans: dict[tuple, Plan] = {}

    def _plan(self, arrays: list, body: Callable[[list[Tensor]], Tensor]) -> tuple[Plan, bool]:
        """The plan for these input shapes with the inputs copied in, and whether it was just traced
        (a trace has already run the step once; a known plan still has to be replayed)."""
        key = tuple([(a.shape, a.dtype.str) for a in arrays]) + (self.model.training,)
        plan = self._plans.get(key)
        if plan is not None:
            for t, a in zip(plan.inputs, arrays):
                _copy_in(t, a)
            return plan, False
        dev = self.device
        inputs = [empty(a.shape, a.dtype, dev) for a in arrays]
        for t, a in zip(inputs, arrays):
            _copy_in(t, a)
        plan = Plan(dev, inputs)
        with dev.tracing() as trace:
            plan.output = body(inputs)
        plan.finish(trace)
        self._plans[key] = plan
        return plan, True

    @property
    def num_plans(self) -> int:
        return len(self._plans)

    def plans(self) -> list[Plan]:
        return list(self._plans.values())


class CompiledStep(_Traced):
    """step(x, y) -> loss tensor: forward, backward and optimizer update as one recorded launch list."""

    def __init__(self, model, loss_fn: Callable[[Tensor, Tensor], Tensor], optimizer):
        super().__init__(model)
        self.loss_fn = loss_fn
        self.optimizer = optimizer

    def _body(self, inputs: list[Tensor]) -> Tensor:
        x, y = inputs
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.loss_fn(self.model(x), y)
        if loss.size != 1:
            raise ValueError(f"compiled step: the loss must have one element, got shape {loss.shape}")
        loss.backward()
        self.optimizer.step()
        return loss.detach()

    def __call__(self, x, y) -> Tensor:
        """Run one step; returns the loss as a device tensor (overwritten by the next call)."""
        arrays = [_as_input(self.device, x, "input"), _as_input(self.device, y, "target")]
        plan, traced = self._plan(arrays, self._body)
        if not traced:
            self.optimizer.sync_hyperparameters()  # a scheduler may have changed lr since the last step
            plan.replay()
        return plan.output


class CompiledGradients(_Traced):
    """grads(x, y) -> (loss, output): forward and backward only, leaving each parameter's gradient in a buffer
    of the plan (`gradients()`), for a data-parallel step to reduce before the update."""

    def __init__(self, model, loss_fn: Callable[[Tensor, Tensor], Tensor]):
        super().__init__(model)
        self.loss_fn = loss_fn
        self.params = [p for p in model.parameters() if p.requires_grad]
        self._grads: dict[int, list[Tensor | None]] = {}  # id(plan) -> its gradient tensors, in params order
        self._outputs: dict[int, Tensor] = {}

    def _body(self, inputs: list[Tensor]) -> Tensor:
        x, y = inputs
        for p in self.params:
            p.grad = None
        out = self.model(x)
        loss = self.loss_fn(out, y)
        if loss.size != 1:
            raise ValueError(f"compiled gradients: the loss must have one element, got shape {loss.shape}")
        loss.backward()
        self._last_output = out.detach()
        return loss.detach()

    def __call__(self, x, y) -> tuple[Tensor, Tensor, list[Tensor | None]]:
        """Run forward and backward; (loss, output, one gradient per parameter or None), all device tensors
        overwritten by the next call with the same shapes."""
        arrays = [_as_input(self.device, x, "input"), _as_input(self.device, y, "target")]
        plan, traced = self._plan(arrays, self._body)
        if traced:
            self._grads[id(plan)] = [p.grad for p in self.params]
            self._outputs[id(plan)] = self._last_output
            del self._last_output
        else:
            plan.replay()
        return plan.output, self._outputs[id(plan)], self._grads[id(plan)]


class CompiledUpdate(_Traced):
    """update() -> None: the optimizer's step as a recorded launch list, reading the gradients that are the
    parameters' .grad when it is first called (a data-parallel step writes the reduced sums there)."""

    def __init__(self, model, optimizer):
        super().__init__(model)
        self.optimizer = optimizer

    def _body(self, inputs: list[Tensor]) -> None:
        with no_grad():
            self.optimizer.step()

    def __call__(self) -> None:
        plan, traced = self._plan([], self._body)
        if not traced:
            self.optimizer.sync_hyperparameters()
            plan.replay()


class CompiledModel(_Traced):
    """model(x) for inference as a recorded launch list (no autograd graph)."""

    def _body(self, inputs: list[Tensor]) -> Tensor | tuple[Tensor, ...]:
        with no_grad():
            out = self.model(inputs[0])
        if isinstance(out, tuple):  # several outputs (an imported ONNX graph may have them)
            return tuple(t.detach() for t in out)
        return out.detach()

    def __call__(self, x) -> Tensor | tuple[Tensor, ...]:
        """Forward x; returns the output as a device tensor, or a tuple of them for a model with several outputs
        (overwritten by the next call)."""
        plan, traced = self._plan([_as_input(self.device, x, "input")], self._body)
        if not traced:
            plan.replay()
        return plan.output


def compile_step(model: Module, loss_fn: Callable[[Tensor, Tensor], Tensor], optimizer: Optimizer) -> CompiledStep:
    """A training step compiled to a static graph: `loss = step(x, y)` runs forward, backward, update."""
    return CompiledStep(model, loss_fn, optimizer)


def compile(model: Module) -> CompiledModel:
    """The model's forward compiled to a static graph for inference: `out = compiled(x)`."""
    return CompiledModel(model)
