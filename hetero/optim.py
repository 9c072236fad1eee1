"""Optimizers (SGD, Adam, AdamW, Adagrad, RMSprop) and LR schedulers (StepLR, CosineAnnealingLR), as torch.optim.

How step() runs on the device (kernels_cl/optim.cl):
- step() only enqueues work and never reads device memory: one update launch per parameter that has a
  .grad, then one `count_steps` launch per param group. Parameters whose .grad is None are skipped,
  as in torch; that is a host decision taken when step() runs.
- The graph executor records one step's launches and replays them, so whatever changes from step to
  step lives in device memory that the kernels read:
  * step counts (Adam's bias correction, Adagrad's lr decay, SGD's first momentum step): an int32
    buffer per param group, one slot per parameter; updates read t = count + 1 and `count_steps`
    increments the counts of the parameters just updated, on the device.
  * hyperparameters (lr, betas, eps, ...): a float32 buffer per param group. Schedulers and users change
    `param_groups[i]["lr"]` on the host as in torch; step() and sync_hyperparameters() compare each
    group's values with the ones last written and only when they differ rewrite the buffer with a
    non-blocking copy. A graph executor that replays step() calls sync_hyperparameters() before each
    replay. Changing a structural option (SGD/RMSprop momentum on or off, nesterov, centered, amsgrad)
    selects another kernel, so a recorded step must then be recorded again.
- State (momentum buffers, exp_avg, ...) is created on a parameter's first update with non-blocking
  host copies, not kernels, so a replayed step never re-initialises it. state_dict() reads it back to the host
  (a blocking read, fine outside the training step) in torch's layout:
  {"state": {index: {"step": 0-d float32 array, "exp_avg": ndarray, ...}}, "param_groups": [...]}.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import numpy as np

from . import validate
from .autograd import set_grad_enabled
from .device import Device
from .tensor import Tensor, empty, fill_

_KERNELS = "optim.cl"
_SGD, _ADAM, _ADAGRAD, _RMSPROP = 1, 2, 3, 4  # OPTIM ids in optim.cl


class _GroupBuffers:
    """Device side of one param group: its hyperparameters, step counts and the slots last updated."""

    __slots__ = ("hyper", "written", "steps", "slots", "slots_key")

    def __init__(self, hyper: Tensor, steps: Tensor):
        self.hyper = hyper
        self.written: tuple[float, ...] | None = None  # values in `hyper`, None until first written
        self.steps = steps
        self.slots: Tensor | None = None
        self.slots_key: tuple[int, ...] = ()


class Optimizer:
    """Base class: param_groups, per-parameter state on the device, step() as queued kernel launches.

    Subclasses define _check (validate a group), _hyper (the group's hyperparameter buffer values),
    _state_names (state tensors a parameter needs) and _update (launch one parameter's update).
    """

    _has_step = True  # whether state_dict() reports a "step" per parameter (torch's SGD keeps none)

    def __init__(self, params: Iterable[Tensor] | Iterable[dict], defaults: dict):
        self.defaults = dict(defaults)
        self.param_groups: list[dict] = []
        self.state: dict[Tensor, dict[str, Tensor]] = {}
        self.device: Device | None = None
        self._buffers: list[_GroupBuffers] = []
        if isinstance(params, (Tensor, dict)):
            raise ValueError(f"{self._name}: params must be an iterable of Tensors or of dicts, got one "
                             f"{type(params).__name__}")
        groups = list(params)
        if not groups:
            raise ValueError(f"{self._name}: optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    @property
    def _name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        lines = [f"{self._name} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {v}" for k, v in sorted(group.items()) if k != "params"]
        return "\n".join(lines) + "\n)"

    def add_param_group(self, param_group: dict) -> None:
        """Add a group of parameters with its own hyperparameters (missing ones come from the defaults)."""
        if not isinstance(param_group, dict):
            raise ValueError(f"{self._name}: a param group must be a dict, got {type(param_group).__name__}")
        group = dict(param_group)
        params = group.get("params")
        if params is None:
            raise ValueError(f"{self._name}: a param group needs a 'params' entry")
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise ValueError(f"{self._name}: parameters must be an ordered sequence, not a set")
        params = list(params)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        device = self.device
        for p in params:
            if not isinstance(p, Tensor) or p.dtype != np.float32:
                what = f"a {p.dtype} Tensor {p.shape}" if isinstance(p, Tensor) else type(p).__name__
                raise ValueError(f"{self._name}: parameters must be float32 Tensors, got {what}")
            if p.grad_fn is not None:
                raise ValueError(f"{self._name}: can't optimize a non-leaf Tensor {p.shape}")
            if device is not None and p.device is not device:
                raise ValueError(f"{self._name}: parameters are on different devices ({device.id} and "
                                 f"{p.device.id}); use one optimizer per device")
            device = p.device
            if id(p) in seen:
                raise ValueError(f"{self._name}: a parameter {p.shape} appears more than once in the param groups")
            seen.add(id(p))
        group["params"] = params
        for k, v in self.defaults.items():
            group.setdefault(k, v)
        self._check(group)
        if device is None:  # only empty groups so far: nothing to keep on a device yet
            raise ValueError(f"{self._name}: the first param group has no parameters")
        self.device = device
        hyper = empty((len(self._hyper(group)),), np.float32, self.device)
        steps = empty((len(params),), np.int32, self.device)
        self._write(steps, np.zeros(len(params), np.int32))
        self.param_groups.append(group)
        self._buffers.append(_GroupBuffers(hyper, steps))

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drop the gradients (set_to_none) or zero them in place with a kernel."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    fill_(p.grad, 0.0)

    def step(self, closure: Callable[[], object] | None = None):
        """Update every parameter that has a .grad: queued kernel launches only, no host read."""
        loss = None
        if closure is not None:
            with set_grad_enabled(True):
                loss = closure()
        for group in self.param_groups:  # validate everything before the first launch
            self._check(group)
            for p in group["params"]:
                if p.grad is not None:
                    self._check_grad(p)
        for group, bufs in zip(self.param_groups, self._buffers):
            self._sync(group, bufs)
            slots = []
            for slot, p in enumerate(group["params"]):
                if p.grad is not None:
                    self._update(p, self._state_of(p, group, bufs, slot), group, bufs, slot)
                    slots.append(slot)
            if slots:
                self._count_steps(group, bufs, tuple(slots))
        return loss

    def sync_hyperparameters(self) -> None:
        """Write changed hyperparameters (lr after a scheduler step, ...) to the device buffers.

        step() does this itself; a graph executor replaying recorded step() launches calls it first.
        """
        for group in self.param_groups:
            self._check(group)
        for group, bufs in zip(self.param_groups, self._buffers):
            self._sync(group, bufs)

    def state_dict(self) -> dict:
        """State and hyperparameters as host arrays, in torch's layout (parameters numbered in group order)."""
        state: dict[int, dict[str, np.ndarray]] = {}
        groups = []
        index = 0
        for group, bufs in zip(self.param_groups, self._buffers):
            counts = bufs.steps.numpy()
            ids = []
            for slot, p in enumerate(group["params"]):
                st = self.state.get(p)
                if st:
                    entry = {}
                    if self._has_step:
                        entry["step"] = np.array(float(counts[slot]), np.float32)
                    entry.update({name: t.numpy() for name, t in st.items()})
                    state[index] = entry
                ids.append(index)
                index += 1
            saved = {k: v for k, v in group.items() if k != "params"}
            saved["params"] = ids
            groups.append(saved)
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore state_dict() output (or torch's, as numpy arrays); checks everything before changing anything."""
        try:
            saved_groups = list(state_dict["param_groups"])
            saved_state = dict(state_dict["state"])
        except (KeyError, TypeError):
            raise ValueError(f"{self._name}.load_state_dict: expected a dict with 'state' and 'param_groups'") from None
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"{self._name}.load_state_dict: {len(saved_groups)} param groups saved, "
                             f"this optimizer has {len(self.param_groups)}")
        new_groups = []
        new_state: dict[Tensor, dict[str, np.ndarray]] = {}
        new_counts = []
        for gi, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            new, counts = self._loaded_group(gi, saved, group, saved_state, new_state)
            new_groups.append(new)
            new_counts.append(counts)
        # everything checked: apply
        for group, bufs, new, counts in zip(self.param_groups, self._buffers, new_groups, new_counts):
            group.clear()
            group.update(new)
            bufs.written = None
            self._write(bufs.steps, counts)
        self.state = {}
        for p, arrays in new_state.items():
            self.state[p] = {}
            for name, arr in arrays.items():
                self.state[p][name] = empty(arr.shape, np.float32, p.device)
                self._write(self.state[p][name], arr)

    def _loaded_group(self, gi: int, saved: dict, group: dict, saved_state: dict,
                      new_state: dict[Tensor, dict[str, np.ndarray]]) -> tuple[dict, np.ndarray]:
        """Saved param group gi checked against this optimizer's: (its new settings, its step counts);
        its parameters' state arrays go into new_state."""
        ids = list(saved.get("params", ()))
        if len(ids) != len(group["params"]):
            raise ValueError(f"{self._name}.load_state_dict: param group {gi} has {len(ids)} parameters saved, "
                             f"this optimizer's has {len(group['params'])}")
        new = {k: self._restore_type(k, v) for k, v in saved.items() if k != "params"}
        new["params"] = group["params"]
        for flag in ("amsgrad", "maximize"):
            if new.get(flag) and flag not in self.defaults:
                raise ValueError(f"{self._name}.load_state_dict: {flag}=True is not supported")
        self._check(new)
        counts = np.zeros(len(ids), np.int32)
        for slot, (pid, p) in enumerate(zip(ids, group["params"])):
            entry = saved_state.get(pid, saved_state.get(str(pid)))
            if entry:
                new_state[p], counts[slot] = self._parse_entry(entry, p, pid)
        return new, counts

    # ----- helpers shared by the optimizers -----

    def _restore_type(self, key: str, value):
        # JSON (training checkpoints) turns tuples such as betas into lists
        if isinstance(value, list) and isinstance(self.defaults.get(key), tuple):
            return tuple(value)
        return value

    def _parse_entry(self, entry: dict, p: Tensor, pid) -> tuple[dict[str, np.ndarray], int]:
        """A saved per-parameter state: its arrays (shape-checked) and its step count."""
        known = set(self._all_state_names())
        arrays = {}
        count = None
        for name, value in entry.items():
            if value is None:
                continue
            if name == "step":
                count = int(round(float(np.asarray(value).reshape(()))))
                continue
            if name not in known:
                raise ValueError(f"{self._name}.load_state_dict: unexpected state {name!r} for parameter {pid}")
            arr = np.asarray(value, dtype=np.float32)
            if arr.shape != p.shape:
                raise ValueError(f"{self._name}.load_state_dict: state {name!r} of parameter {pid} has shape "
                                 f"{arr.shape}, the parameter has shape {p.shape}")
            # a copy (0-d shapes kept): the upload is asynchronous and the caller's array may change before it
            # runs; torch's optimizers update their state tensors, whose .numpy() views these are, in place
            arrays[name] = np.array(arr, dtype=np.float32, order="C", copy=True)
        if count is None:
            count = 1 if arrays else 0  # torch's SGD keeps no step: a momentum buffer means it has stepped
        return arrays, count

    def _check_grad(self, p: Tensor) -> None:
        g = p.grad
        if not isinstance(g, Tensor):
            raise ValueError(f"{self._name}.step: parameter {p.shape} has a .grad of type {type(g).__name__}, "
                             "not a Tensor")
        if g.shape != p.shape or g.dtype != np.float32 or g.device is not p.device:
            raise ValueError(f"{self._name}.step: parameter {p.shape} on {p.device.id} has a gradient of shape "
                             f"{g.shape}, dtype {g.dtype}, on {g.device.id}")

    def _state_of(self, p: Tensor, group: dict, bufs: _GroupBuffers, slot: int) -> dict[str, Tensor]:
        """The parameter's state tensors, creating the missing ones (initialised by copies, not kernels)."""
        state = self.state.setdefault(p, {})
        for name in self._state_names(group):
            if name not in state:
                state[name] = empty(p.shape, np.float32, p.device)
                self._write(state[name], np.full(p.shape, self._state_init(name, group), np.float32))
                self._new_state(p, group, bufs)
        return state

    def _new_state(self, p: Tensor, group: dict, bufs: _GroupBuffers) -> None:
        """Hook: state tensors were just created for parameter p, which is about to be updated."""

    def _sync(self, group: dict, bufs: _GroupBuffers) -> None:
        values = self._hyper(group)
        if values != bufs.written:
            self._write(bufs.hyper, np.array(values, np.float32))
            bufs.written = values

    def _write(self, t: Tensor, host: np.ndarray) -> None:
        """Non-blocking host->device copy of an array the optimizer owns; not a kernel, so a recorded step
        never repeats it."""
        t.device.write(t, host, snapshot=False)

    def _count_steps(self, group: dict, bufs: _GroupBuffers, slots: tuple[int, ...]) -> None:
        if slots != bufs.slots_key:  # the set of parameters with gradients changed: new slot table
            bufs.slots = empty((len(slots),), np.int32, self.device)
            self._write(bufs.slots, np.array(slots, np.int32))
            bufs.slots_key = slots
        self.device.run(_KERNELS, "count_steps", self._defines(group), (len(slots),), None, bufs.steps, bufs.slots,
                        np.int32(len(slots)))

    def _launch(self, name: str, group: dict, p: Tensor, *args) -> None:
        p.device.run(_KERNELS, name, self._defines(group), (p.size,), None, *args, np.int32(p.size))

    # ----- what each optimizer defines -----

    def _check(self, group: dict) -> None:
        raise NotImplementedError

    def _hyper(self, group: dict) -> tuple[float, ...]:
        raise NotImplementedError

    def _defines(self, group: dict) -> dict[str, int]:
        raise NotImplementedError

    def _state_names(self, group: dict) -> tuple[str, ...]:
        raise NotImplementedError

    def _all_state_names(self) -> tuple[str, ...]:
        raise NotImplementedError

    def _state_init(self, name: str, group: dict) -> float:
        return 0.0

    def _update(self, p: Tensor, state: dict[str, Tensor], group: dict, bufs: _GroupBuffers, slot: int) -> None:
        raise NotImplementedError

    def _require(self, ok: bool, what: str, value) -> None:
        if not ok:
            raise ValueError(f"{self._name}: invalid {what}: {value}")


def _log(beta: float) -> float:
    return math.log(beta) if beta > 0 else -math.inf  # -inf makes the kernel's 1 - beta^t exactly 1


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum, dampening and L2 weight decay."""

    _has_step = False

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0, dampening: float = 0,
                 weight_decay: float = 0, nesterov: bool = False):
        self._stepped: set[Tensor] = set()  # parameters updated at least once (a host record)
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov))

    def _check(self, g: dict) -> None:
        self._require(g["lr"] >= 0, "learning rate", g["lr"])
        self._require(g["momentum"] >= 0, "momentum value", g["momentum"])
        self._require(g["weight_decay"] >= 0, "weight_decay value", g["weight_decay"])
        if g["nesterov"] and (g["momentum"] <= 0 or g["dampening"] != 0):
            raise ValueError(f"{self._name}: Nesterov momentum requires a momentum and zero dampening "
                             f"(momentum={g['momentum']}, dampening={g['dampening']})")

    def _hyper(self, g: dict) -> tuple[float, ...]:
        return (float(g["lr"]), float(g["momentum"]), 1.0 - float(g["dampening"]), float(g["weight_decay"]))

    def _defines(self, g: dict) -> dict[str, int]:
        return {"OPTIM": _SGD, "MOMENTUM": int(g["momentum"] != 0), "NESTEROV": int(bool(g["nesterov"]))}

    def _state_names(self, g: dict) -> tuple[str, ...]:
        return ("momentum_buffer",) if g["momentum"] != 0 else ()

    def _all_state_names(self) -> tuple[str, ...]:
        return ("momentum_buffer",)

    def _new_state(self, p: Tensor, group: dict, bufs: _GroupBuffers) -> None:
        # SGD's count only tells the kernel whether the momentum buffer has started (0: it starts as the
        # gradient). A buffer created after plain steps (momentum switched on later) needs its count back
        # at 0. The whole group's counts are rewritten, 1 for started buffers: Oclgrind 21.10 mis-tracks
        # partial writes at an offset.
        if p in self._stepped:
            started = [int(q is not p and q in self._stepped and "momentum_buffer" in self.state.get(q, {}))
                       for q in group["params"]]
            self._write(bufs.steps, np.array(started, np.int32))

    def _update(self, p, state, group, bufs, slot) -> None:
        buf = state.get("momentum_buffer", p)  # p stands in when there is no buffer (the kernel ignores it)
        self._launch("sgd_step", group, p, p, p.grad, buf, bufs.hyper, bufs.steps, np.int32(slot))
        self._stepped.add(p)

    def load_state_dict(self, state_dict: dict) -> None:
        super().load_state_dict(state_dict)
        self._stepped = set(self.state)  # loaded momentum buffers have started; other counts are 0


class Adam(Optimizer):
    """Adam (L2 weight decay added to the gradient); amsgrad keeps the running maximum of exp_avg_sq."""

    _decoupled = False

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, amsgrad: bool = False):
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      amsgrad=amsgrad))

    def _check(self, g: dict) -> None:
        self._require(g["lr"] >= 0, "learning rate", g["lr"])
        self._require(g["eps"] >= 0, "epsilon value", g["eps"])
        betas = g["betas"]
        self._require(len(betas) == 2, "betas (need two)", betas)
        self._require(0 <= betas[0] < 1, "beta parameter at index 0", betas[0])
        self._require(0 <= betas[1] < 1, "beta parameter at index 1", betas[1])
        self._require(g["weight_decay"] >= 0, "weight_decay value", g["weight_decay"])
        # torch's state_dict says which of Adam / AdamW it came from
        if bool(g.get("decoupled_weight_decay", self._decoupled)) != self._decoupled:
            raise ValueError(f"{self._name}: decoupled_weight_decay={g['decoupled_weight_decay']} belongs to "
                             f"{'Adam' if self._decoupled else 'AdamW'}")

    def _hyper(self, g: dict) -> tuple[float, ...]:
        lr, wd = float(g["lr"]), float(g["weight_decay"])
        b1, b2 = (float(b) for b in g["betas"])
        return (lr, b1, b2, 1.0 - b1, 1.0 - b2, _log(b1), _log(b2), float(g["eps"]), wd, 1.0 - lr * wd)

    def _defines(self, g: dict) -> dict[str, int]:
        return {"OPTIM": _ADAM, "DECOUPLED_WD": int(self._decoupled), "AMSGRAD": int(bool(g["amsgrad"]))}

    def _state_names(self, g: dict) -> tuple[str, ...]:
        return ("exp_avg", "exp_avg_sq", "max_exp_avg_sq") if g["amsgrad"] else ("exp_avg", "exp_avg_sq")

    def _all_state_names(self) -> tuple[str, ...]:
        return ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")

    def _update(self, p, state, group, bufs, slot) -> None:
        vmax = state.get("max_exp_avg_sq", p)
        self._launch("adam_step", group, p, p, p.grad, state["exp_avg"], state["exp_avg_sq"], vmax,
                     bufs.hyper, bufs.steps, np.int32(slot))


class AdamW(Adam):
    """Adam with decoupled weight decay: the parameter shrinks by lr * weight_decay before the Adam step."""

    _decoupled = True

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad)


class Adagrad(Optimizer):
    """Adagrad: per-element steps scaled by the root of the summed squared gradients; lr decays with t."""

    def __init__(self, params, lr: float = 1e-2, lr_decay: float = 0, weight_decay: float = 0,
                 initial_accumulator_value: float = 0, eps: float = 1e-10):
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value, eps=eps))

    def add_param_group(self, param_group: dict) -> None:
        super().add_param_group(param_group)
        group, bufs = self.param_groups[-1], self._buffers[-1]
        for slot, p in enumerate(group["params"]):  # torch creates Adagrad's state up front
            self._state_of(p, group, bufs, slot)

    def _check(self, g: dict) -> None:
        self._require(g["lr"] >= 0, "learning rate", g["lr"])
        self._require(g["lr_decay"] >= 0, "lr_decay value", g["lr_decay"])
        self._require(g["weight_decay"] >= 0, "weight_decay value", g["weight_decay"])
        self._require(g["initial_accumulator_value"] >= 0, "initial_accumulator_value value",
                      g["initial_accumulator_value"])
        self._require(g["eps"] >= 0, "epsilon value", g["eps"])

    def _hyper(self, g: dict) -> tuple[float, ...]:
        return (float(g["lr"]), float(g["lr_decay"]), float(g["weight_decay"]), float(g["eps"]))

    def _defines(self, g: dict) -> dict[str, int]:
        return {"OPTIM": _ADAGRAD}

    def _state_names(self, g: dict) -> tuple[str, ...]:
        return ("sum",)

    def _all_state_names(self) -> tuple[str, ...]:
        return ("sum",)

    def _state_init(self, name: str, g: dict) -> float:
        return float(g["initial_accumulator_value"])

    def _update(self, p, state, group, bufs, slot) -> None:
        self._launch("adagrad_step", group, p, p, p.grad, state["sum"], bufs.hyper, bufs.steps, np.int32(slot))


class RMSprop(Optimizer):
    """RMSprop: steps scaled by a running RMS of the gradient (centered: its variance); optional momentum."""

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8, weight_decay: float = 0,
                 momentum: float = 0, centered: bool = False):
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered))

    def _check(self, g: dict) -> None:
        self._require(g["lr"] >= 0, "learning rate", g["lr"])
        self._require(g["eps"] >= 0, "epsilon value", g["eps"])
        self._require(g["momentum"] >= 0, "momentum value", g["momentum"])
        self._require(g["weight_decay"] >= 0, "weight_decay value", g["weight_decay"])
        self._require(g["alpha"] >= 0, "alpha value", g["alpha"])

    def _hyper(self, g: dict) -> tuple[float, ...]:
        alpha = float(g["alpha"])
        return (float(g["lr"]), alpha, 1.0 - alpha, float(g["eps"]), float(g["weight_decay"]), float(g["momentum"]))

    def _defines(self, g: dict) -> dict[str, int]:
        return {"OPTIM": _RMSPROP, "MOMENTUM": int(g["momentum"] > 0), "CENTERED": int(bool(g["centered"]))}

    def _state_names(self, g: dict) -> tuple[str, ...]:
        names = ("square_avg",)
        if g["momentum"] > 0:
            names += ("momentum_buffer",)
        if g["centered"]:
            names += ("grad_avg",)
        return names

    def _all_state_names(self) -> tuple[str, ...]:
        return ("square_avg", "momentum_buffer", "grad_avg")

    def _update(self, p, state, group, bufs, slot) -> None:
        self._launch("rmsprop_step", group, p, p, p.grad, state["square_avg"], state.get("grad_avg", p),
                     state.get("momentum_buffer", p), bufs.hyper)


class LRScheduler:
    """Base of the schedulers: sets each group's 'lr' from a closed form of the epoch count, as torch does.

    The optimizer notices the new lr at its next step() and rewrites its device hyperparameter buffer.
    """

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1):
        if not isinstance(optimizer, Optimizer):
            raise ValueError(f"{type(self).__name__}: expected a hetero.optim.Optimizer, got "
                             f"{type(optimizer).__name__}")
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise ValueError(f"{type(self).__name__}: param 'initial_lr' is not specified in "
                                     f"param_groups[{i}] when resuming (last_epoch={last_epoch})")
        self.base_lrs: list[float] = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._step_count = 0
        self.step()

    def get_lr(self) -> list[float]:
        """The learning rate of every group at self.last_epoch."""
        raise NotImplementedError

    def get_last_lr(self) -> list[float]:
        """The learning rates the last step() set."""
        return list(self._last_lr)

    def step(self) -> None:
        """Advance one epoch and set every group's lr."""
        self._step_count += 1
        self.last_epoch += 1
        for group, lr in zip(self.optimizer.param_groups, self.get_lr()):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self) -> dict:
        """Everything but the optimizer (plain Python values, JSON-serialisable)."""
        return {k: v for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state_dict: dict) -> None:
        self.__dict__.update(state_dict)


class StepLR(LRScheduler):
    """lr = initial_lr * gamma ** (epoch // step_size)."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1):
        if not validate.is_int(step_size) or step_size <= 0:
            raise ValueError(f"StepLR: step_size must be a positive integer, got {step_size!r}")
        self.step_size = int(step_size)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        return [base * self.gamma ** (self.last_epoch // self.step_size) for base in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    """lr = eta_min + (initial_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2 (periodic past T_max)."""

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1):
        if not validate.is_int(T_max) or T_max <= 0:
            raise ValueError(f"CosineAnnealingLR: T_max must be a positive integer, got {T_max!r}")
        self.T_max = int(T_max)
        self.eta_min = eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        c = (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
        return [self.eta_min + (base - self.eta_min) * c for base in self.base_lrs]


__all__ = ["Adagrad", "Adam", "AdamW", "CosineAnnealingLR", "LRScheduler", "Optimizer", "RMSprop", "SGD", "StepLR"]
