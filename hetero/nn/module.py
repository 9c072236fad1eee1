"""Module and Parameter: PyTorch's layer container with dotted names, state_dict and train/eval.

Attributes are registered explicitly: assigning a `Parameter` registers a parameter, assigning a
`Module` registers a child, and buffers go through `register_buffer`. Nothing is discovered by
scanning attributes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

import numpy as np

from ..device import Device
from ..device import device as get_device
from ..tensor import Tensor, fill_


class Parameter(Tensor):
    """A Tensor that a Module registers as a trainable parameter (shares `data`'s storage)."""

    def __init__(self, data: Tensor, requires_grad: bool = True):
        if not isinstance(data, Tensor):
            raise TypeError(f"Parameter: expected a hetero.Tensor, got {type(data).__name__}")
        super().__init__(data.storage, data.shape, data.dtype, data.device, requires_grad=requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class IncompatibleKeys(NamedTuple):
    """What load_state_dict(strict=False) tolerated, as torch returns it."""

    missing_keys: list[str]
    unexpected_keys: list[str]


class RemovableHandle:
    """Returned by register_forward_hook; remove() takes the hook out again."""

    _next_id = 0

    def __init__(self, hooks: dict) -> None:
        self._hooks = hooks
        self.id = RemovableHandle._next_id
        RemovableHandle._next_id += 1

    def remove(self) -> None:
        self._hooks.pop(self.id, None)

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


class StateDictError(ValueError):
    """load_state_dict found missing or unexpected keys or shape mismatches; nothing was copied."""


def _check_name(kind: str, name: str) -> None:
    if not isinstance(name, str):
        raise TypeError(f"{kind} name must be a string, got {type(name).__name__}")
    if not name or "." in name:
        raise KeyError(f"{kind} name {name!r} must be non-empty and contain no '.'")


class Module:
    """Base class of layers and models: holds parameters, buffers and child modules by name."""

    training: bool

    def __init__(self) -> None:
        # object.__setattr__: our own __setattr__ needs these dicts to exist already
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_forward_hooks", {})
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "training", True)

    # ---- registration -------------------------------------------------------------------------

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Add a parameter (or a None placeholder, as `bias=False` layers have)."""
        self._require_init()
        _check_name("parameter", name)
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"cannot register {type(param).__name__} as parameter {name!r} "
                            "(hetero.nn.Parameter or None expected)")
        if name in self.__dict__ or name in self._buffers or name in self._modules:
            raise KeyError(f"attribute {name!r} already exists")
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """Add a non-trainable tensor (running statistics); persistent ones go into state_dict."""
        self._require_init()
        _check_name("buffer", name)
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"cannot register {type(tensor).__name__} as buffer {name!r} (Tensor or None expected)")
        if name in self.__dict__ or name in self._parameters or name in self._modules:
            raise KeyError(f"attribute {name!r} already exists")
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent.discard(name)
        else:
            self._non_persistent.add(name)

    def add_module(self, name: str, module: Module | None) -> None:
        """Add a child module under `name`."""
        self._require_init()
        _check_name("module", name)
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        if name in self._parameters or name in self._buffers:
            raise KeyError(f"attribute {name!r} already exists")
        self.__dict__.pop(name, None)
        self._modules[name] = module

    def _require_init(self) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}: call Module.__init__() before assigning "
                                 "parameters, buffers or submodules")

    def __setattr__(self, name: str, value: Any) -> None:
        params = self.__dict__.get("_parameters")
        if isinstance(value, Parameter):
            self._require_init()
            self._forget(name)
            params[name] = value
        elif params is not None and name in params:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} as parameter {name!r} "
                                "(hetero.nn.Parameter or None expected)")
            params[name] = None
        elif isinstance(value, Module):
            self._require_init()
            self._forget(name)
            self._modules[name] = value
        elif params is not None and name in self._modules:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} as child module {name!r} "
                                "(Module or None expected)")
            self._modules[name] = None
        elif params is not None and name in self._buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign {type(value).__name__} as buffer {name!r} (Tensor or None expected)")
            self._buffers[name] = value
        else:
            object.__setattr__(self, name, value)

    def _forget(self, name: str) -> None:
        self.__dict__.pop(name, None)
        self._parameters.pop(name, None)
        self._buffers.pop(name, None)
        self._non_persistent.discard(name)
        self._modules.pop(name, None)

    def __getattr__(self, name: str) -> Any:
        # only called when normal lookup fails: parameters, buffers and children live in their dicts
        d = self.__dict__
        for store in ("_parameters", "_buffers", "_modules"):
            if store in d and name in d[store]:
                return d[store][name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __delattr__(self, name: str) -> None:
        for store in (self._parameters, self._buffers, self._modules):
            if name in store:
                del store[name]
                self._non_persistent.discard(name)
                return
        object.__delattr__(self, name)

    # ---- forward ------------------------------------------------------------------------------

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args, **kwargs):
        out = self.forward(*args, **kwargs)
        if self._forward_hooks:
            for hook in list(self._forward_hooks.values()):
                result = hook(self, args, out)
                if result is not None:
                    out = result
        return out

    def register_forward_hook(self, hook: Callable[[Module, tuple, Any], Any]) -> RemovableHandle:
        """Call hook(module, inputs, output) after each forward (as torch); a non-None result replaces
        the output. Returns a handle whose remove() unregisters it."""
        handle = RemovableHandle(self._forward_hooks)
        self._forward_hooks[handle.id] = hook
        return handle

    # ---- traversal ----------------------------------------------------------------------------

    def named_children(self) -> Iterator[tuple[str, Module]]:
        seen: set[int] = set()
        for name, m in self._modules.items():
            if m is not None and id(m) not in seen:
                seen.add(id(m))
                yield name, m

    def children(self) -> Iterator[Module]:
        for _, m in self.named_children():
            yield m

    def named_modules(self, memo: set[int] | None = None, prefix: str = "",
                      remove_duplicate: bool = True) -> Iterator[tuple[str, Module]]:
        """This module and all below it, depth first in registration order, with dotted names."""
        if memo is None:
            memo = set()
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, m in self._modules.items():
            if m is None:
                continue
            yield from m.named_modules(memo, prefix + ("." if prefix else "") + name, remove_duplicate)

    def modules(self) -> Iterator[Module]:
        for _, m in self.named_modules():
            yield m

    def _named_members(self, store: str, prefix: str, recurse: bool,
                       remove_duplicate: bool = True) -> Iterator[tuple[str, Tensor]]:
        seen: set[int] = set()
        mods = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse else [(prefix, self)]
        for mod_prefix, m in mods:
            for name, t in getattr(m, store).items():
                if t is None or (remove_duplicate and id(t) in seen):
                    continue
                seen.add(id(t))
                yield mod_prefix + ("." if mod_prefix else "") + name, t

    def named_parameters(self, prefix: str = "", recurse: bool = True,
                         remove_duplicate: bool = True) -> Iterator[tuple[str, Parameter]]:
        """(dotted name, parameter) pairs in registration order, each shared parameter once."""
        yield from self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True,
                      remove_duplicate: bool = True) -> Iterator[tuple[str, Tensor]]:
        yield from self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def apply(self, fn: Callable[[Module], None]) -> Module:
        """Call fn on every child (recursively) and then on self, as torch does; returns self."""
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    # ---- state --------------------------------------------------------------------------------

    def _state_items(self, prefix: str = "") -> Iterator[tuple[str, Tensor]]:
        """torch's state_dict order: each module's parameters, then its persistent buffers, then children."""
        for name, p in self._parameters.items():
            if p is not None:
                yield prefix + name, p
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent:
                yield prefix + name, b
        for name, m in self._modules.items():
            if m is not None:
                yield from m._state_items(prefix + name + ".")

    def state_dict(self, prefix: str = "", keep_vars: bool = False) -> dict[str, Tensor]:
        """Parameters and persistent buffers by dotted name; values share storage with the module."""
        out: dict[str, Tensor] = {}
        for key, t in self._state_items(prefix):
            out[key] = t if keep_vars else t.detach()
        return out

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True) -> IncompatibleKeys:
        """Copy values (Tensors or numpy arrays) into this module's tensors in place.

        Everything is checked before anything is copied, so on an error the module is unchanged.
        Shape mismatches always raise; missing and unexpected keys raise only when `strict`.
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"load_state_dict: expected a mapping, got {type(state_dict).__name__}")
        targets = dict(self._state_items())
        missing = [k for k in targets if k not in state_dict]
        unexpected = [k for k in state_dict if k not in targets]
        problems: list[str] = []
        host: dict[str, np.ndarray] = {}
        for key, target in targets.items():
            if key not in state_dict:
                continue
            arr, why = _host_value(state_dict[key], target)
            if why:
                problems.append(f"{key}: {why}")
            else:
                host[key] = arr
        if strict:
            if missing:
                problems.insert(0, "missing key(s): " + ", ".join(missing))
            if unexpected:
                problems.insert(1 if missing else 0, "unexpected key(s): " + ", ".join(unexpected))
        if problems:
            raise StateDictError(f"error(s) loading state_dict into {type(self).__name__} "
                                 "(nothing was copied):\n  " + "\n  ".join(problems))
        for key, arr in host.items():
            _copy_into(targets[key], arr)
        return IncompatibleKeys(missing, unexpected)

    # ---- modes, grads, devices ----------------------------------------------------------------

    def train(self, mode: bool = True) -> Module:
        """Set training mode on this module and every module below it; returns self."""
        if not isinstance(mode, bool):
            raise ValueError(f"train(): mode must be a bool, got {mode!r}")
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self) -> Module:
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        for p in self.parameters():
            p.requires_grad = requires_grad
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drop every parameter's .grad (or fill it with zeros on the device)."""
        for p in self.parameters():
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                fill_(p.grad, 0.0)

    def to(self, device: str | int | Device | None = None) -> Module:
        """Move parameters (with their grads) and buffers to `device`, in place; returns self."""
        dev = get_device(device)
        for m in self.modules():
            for name, p in m._parameters.items():
                if p is None or p.device is dev:
                    continue
                moved = Parameter(p.to(dev), requires_grad=p.requires_grad)
                if p.grad is not None:
                    moved.grad = p.grad.to(dev)
                m._parameters[name] = moved
            for name, b in m._buffers.items():
                if b is not None and b.device is not dev:
                    m._buffers[name] = b.to(dev)
        return self

    # ---- printing -----------------------------------------------------------------------------

    def extra_repr(self) -> str:
        """The hyperparameters shown inside Name(...); layers override it."""
        return ""

    def __repr__(self) -> str:
        extra = self.extra_repr()
        lines = extra.split("\n") if extra else []
        for name, m in self._modules.items():
            body = repr(m).replace("\n", "\n  ")
            lines.append(f"({name}): {body}")
        if not lines:
            return f"{type(self).__name__}()"
        if len(lines) == 1 and not self._modules:
            return f"{type(self).__name__}({lines[0]})"
        return f"{type(self).__name__}(\n  " + "\n  ".join(lines) + "\n)"

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers) | set(self._modules))


def _host_value(value: Any, target: Tensor) -> tuple[np.ndarray | None, str]:
    """value as a host array of target's dtype, or the reason it cannot be loaded."""
    try:
        arr = value.numpy() if isinstance(value, Tensor) else np.asarray(value)
    except Exception as e:  # e.g. a torch tensor that still requires grad
        return None, f"cannot convert {type(value).__name__} to an array ({e})"
    if arr.dtype.kind not in "biuf":
        return None, f"unsupported dtype {arr.dtype}"
    if tuple(arr.shape) != target.shape:
        return None, f"size mismatch: expected shape {target.shape}, got {tuple(arr.shape)}"
    if target.dtype.kind == "i":
        if arr.dtype.kind == "f" and arr.size and not np.all(arr == np.round(arr)):
            return None, f"expected integer values for an {target.dtype} buffer, got {arr.dtype}"
        if arr.size and (arr.min() < -(2**31) or arr.max() >= 2**31):
            return None, f"values {arr.min()}..{arr.max()} do not fit in {target.dtype}"
    return np.ascontiguousarray(arr, dtype=target.dtype), ""


def _copy_into(target: Tensor, host: np.ndarray) -> None:
    """Overwrite target's data in place, so optimizers holding the tensor see the new values."""
    target.device.write(target, host, blocking=True)


def model_device(model: Module, op: str) -> Device:
    """The one device holding all of model's parameters; ValueError naming op if none or several."""
    params = list(model.parameters())
    if not params:
        raise ValueError(f"{op}: the model has no parameters to tell its device; call model.to(device)")
    dev = params[0].device
    for p in params:
        if p.device is not dev:
            raise ValueError(f"{op}: parameters are on several devices ({dev.id}, {p.device.id})")
    return dev


def resolve_device(device: str | int | Device | None) -> Device:
    """A layer constructor's `device` argument: None means hetero.device() (the default device)."""
    return get_device(device)
