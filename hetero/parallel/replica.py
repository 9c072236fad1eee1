"""One device's copy of a model in a data-parallel run: its optimizer, its compiled gradient and update steps,
and the host staging of its gradients and weights."""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable

import numpy as np

from ..device import Device
from ..graph import CompiledGradients, CompiledUpdate
from ..nn.module import Module, Parameter
from ..optim import Optimizer
from ..tensor import Tensor, empty, raise_failed_checks


def clone_model(model: Module, dev: Device) -> Module:
    """A copy of `model` on `dev`: the same modules, with every parameter and buffer copied to `dev`."""
    memo: dict[int, object] = {}
    for p in model.parameters():
        memo[id(p)] = Parameter(p.to(dev), requires_grad=p.requires_grad)
    for b in model.buffers():
        memo[id(b)] = b.to(dev)
    clone = copy.deepcopy(model, memo)
    stray = [name for name, t in clone.state_dict().items() if t.device is not dev]
    if stray:
        raise ValueError(f"data parallel: cannot copy the model to {dev.id}: {', '.join(stray)} stayed behind")
    return clone


def clone_optimizer(optimizer: Optimizer, model: Module, clone: Module) -> Optimizer:
    """An optimizer of the same class and groups over `clone`'s parameters, with `optimizer`'s state."""
    index = {id(p): i for i, p in enumerate(model.parameters())}
    params = list(clone.parameters())
    groups = []
    for g in optimizer.param_groups:
        missing = [p for p in g["params"] if id(p) not in index]
        if missing:
            raise ValueError(f"data parallel: the optimizer holds {len(missing)} tensor(s) that are not the "
                             "model's parameters; give it model.parameters()")
        groups.append({**{k: v for k, v in g.items() if k != "params"},
                       "params": [params[index[id(p)]] for p in g["params"]]})
    out = type(optimizer)(groups)
    out.load_state_dict(optimizer.state_dict())
    return out


def _flat_size(params: list[Tensor]) -> int:
    return sum(p.size for p in params)


class Replica:
    """A device's model and optimizer; `gradients` runs its shard and stages its gradient on the host, `update`
    takes the reduced gradient and applies the optimizer's step."""

    def __init__(self, dev: Device, model: Module, optimizer: Optimizer,
                 loss_fn: Callable[[Tensor, Tensor], Tensor]):
        self.device = dev
        self.model, self.optimizer = model, optimizer
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.offsets = np.cumsum([0] + [p.size for p in self.params])
        self.grad_fn = CompiledGradients(model, loss_fn)
        self.update_fn = CompiledUpdate(model, optimizer)
        # the gradients the update reads: fixed buffers, written from the host every step
        self.slots = [empty(p.shape, np.float32, dev) for p in self.params]
        self.host_grad = np.zeros(int(self.offsets[-1]), np.float32)
        self.loss = np.zeros((), np.float32)
        self.output: np.ndarray | None = None
        self.seconds = 0.0

    def gradients(self, x: np.ndarray, y: np.ndarray) -> None:
        """Forward and backward of one shard; waits until its loss, output and gradient are on the host."""
        loss, out, grads = self.grad_fn(x, y)
        self.output = np.empty(out.shape, np.float32)
        events = [self.device.read_async(loss, self.loss), self.device.read_async(out, self.output)]
        for i, g in enumerate(grads):
            view = self.host_grad[self.offsets[i]:self.offsets[i + 1]]
            if g is None:
                view[:] = 0.0  # a parameter the loss does not depend on
            else:
                events.append(self.device.read_async(g, view))
        checks = loss.checks
        flags = [np.empty(c.flag.shape, c.flag.dtype) for c in checks]
        events += [self.device.read_async(c.flag, f) for c, f in zip(checks, flags)]
        for e in events:
            e.wait()
        raise_failed_checks(checks, flags)
        for p, slot in zip(self.params, self.slots):
            p.grad = slot  # tracing a new shard shape left the plan's own gradients there

    def update(self, reduced: np.ndarray) -> None:
        """Write the reduced gradient (owned by the caller until the next step's wait) and queue the update."""
        for i, slot in enumerate(self.slots):
            self.device.write(slot, reduced[self.offsets[i]:self.offsets[i + 1]], snapshot=False)
        self.update_fn()

    # -- keeping replicas identical --

    def checksum(self) -> str:
        """A digest of the weights' bits (parameters only: batch-norm statistics are each device's own)."""
        h = hashlib.sha256()
        for p in self.params:
            h.update(p.numpy().tobytes())
        return h.hexdigest()[:16]

    def copy_from(self, other: Replica) -> None:
        """Take `other`'s weights, buffers and optimizer state (all host-staged)."""
        self.model.load_state_dict({k: v.numpy() for k, v in other.model.state_dict().items()})
        self.optimizer.load_state_dict(other.optimizer.state_dict())

    def copy_buffers_from(self, other: Replica) -> None:
        """Take `other`'s buffers (batch-norm running statistics), as DDP's broadcast_buffers does."""
        mine = dict(self.model.named_buffers())
        for name, b in other.model.named_buffers():
            self.device.write(mine[name], b.numpy(), blocking=True)

    def sync_hyperparameters_from(self, primary: Optimizer) -> None:
        """Take the primary optimizer's hyperparameters (a scheduler changes only the primary's lr)."""
        for mine, theirs in zip(self.optimizer.param_groups, primary.param_groups):
            for k, v in theirs.items():
                if k != "params":
                    mine[k] = v
