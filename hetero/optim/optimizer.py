"""The optimizer base class: param groups, per-parameter state on the device, step() as queued launches.

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

from collections.abc import Callable, Iterable

import numpy as np

from ..autograd import set_grad_enabled
from ..device import Device
from ..tensor import Tensor, empty, fill_

_KERNELS = "optim.cl"
SGD_ID, ADAM_ID, ADAGRAD_ID, RMSPROP_ID = 1, 2, 3, 4  # OPTIM ids in optim.cl


class GroupBuffers:
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
        self._buffers: list[GroupBuffers] = []
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
        self._buffers.append(GroupBuffers(hyper, steps))

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
        if not isinstance(saved, dict):
            raise ValueError(f"{self._name}.load_state_dict: param group {gi} must be a dict, got "
                             f"{type(saved).__name__}")
        missing = sorted(k for k in group if k != "params" and k not in saved)
        if missing:
            raise ValueError(f"{self._name}.load_state_dict: param group {gi} lacks {', '.join(missing)} "
                             "(a state_dict of another optimizer?)")
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

    def _state_of(self, p: Tensor, group: dict, bufs: GroupBuffers, slot: int) -> dict[str, Tensor]:
        """The parameter's state tensors, creating the missing ones (initialised by copies, not kernels)."""
        state = self.state.setdefault(p, {})
        for name in self._state_names(group):
            if name not in state:
                state[name] = empty(p.shape, np.float32, p.device)
                self._write(state[name], np.full(p.shape, self._state_init(name, group), np.float32))
                self._new_state(p, group, bufs)
        return state

    def _new_state(self, p: Tensor, group: dict, bufs: GroupBuffers) -> None:
        """Hook: state tensors were just created for parameter p, which is about to be updated."""

    def _sync(self, group: dict, bufs: GroupBuffers) -> None:
        values = self._hyper(group)
        if values != bufs.written:
            self._write(bufs.hyper, np.array(values, np.float32))
            bufs.written = values

    def _write(self, t: Tensor, host: np.ndarray) -> None:
        """Non-blocking host->device copy of an array the optimizer owns; not a kernel, so a recorded step
        never repeats it."""
        t.device.write(t, host, snapshot=False)

    def _count_steps(self, group: dict, bufs: GroupBuffers, slots: tuple[int, ...]) -> None:
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

    def _update(self, p: Tensor, state: dict[str, Tensor], group: dict, bufs: GroupBuffers, slot: int) -> None:
        raise NotImplementedError

    def _require(self, ok: bool, what: str, value) -> None:
        if not ok:
            raise ValueError(f"{self._name}: invalid {what}: {value}")
