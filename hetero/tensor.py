"""Device tensors: a shape, a dtype (float32, or int32 for labels) and a pooled OpenCL buffer."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
import pyopencl as cl

from .device import Device, device

DTYPES = (np.dtype(np.float32), np.dtype(np.int32))


def _unregistered(*args, **kwargs):
    raise RuntimeError("this Tensor method is defined by hetero.autograd / hetero.ops.elementwise; import hetero")


class TensorMethods:
    """The Tensor methods whose work lives in the layers above this module (autograd and the ops import
    tensor, so tensor cannot import them): each of those modules registers its function here when imported."""

    __slots__ = ("backward", "reshape", "flatten", "add", "mul")

    def __init__(self) -> None:
        self.backward: Callable = _unregistered  # hetero.autograd.backward
        self.reshape: Callable = _unregistered  # hetero.ops.elementwise.reshape
        self.flatten: Callable = _unregistered  # hetero.ops.elementwise.flatten
        self.add: Callable = _unregistered  # hetero.ops.elementwise.add
        self.mul: Callable = _unregistered  # hetero.ops.elementwise.mul


methods = TensorMethods()


class Storage:
    """Owns one pooled buffer; gives it back to the pool when the last tensor using it dies."""

    __slots__ = ("buffer", "pool", "__weakref__")

    def __init__(self, dev: Device, nbytes: int):
        self.pool = dev.pool
        self.buffer = dev.pool.alloc(nbytes)
        self.pool.owners[self.buffer.int_ptr] = self

    def __del__(self):
        try:
            self.pool.free(self.buffer)
        except Exception:  # interpreter shutdown: the driver frees everything anyway
            pass


class DeferredCheck(NamedTuple):
    """An error a kernel records in `flag` (an int32 tensor), raised when the value it guards is read back:
    `explain(flag's host copy)` gives the message, or None when all was well."""
    # kernels cannot raise, and an op may not read the device inside a compiled step (architecture rule 3),
    # so the check travels with the value to where the host reads it: Tensor.numpy() and Readback

    flag: Tensor
    explain: Callable[[np.ndarray], str | None]


def raise_failed_checks(checks: Sequence[DeferredCheck], flags: Sequence[np.ndarray]) -> None:
    """Raise ValueError with the first message that the host copies `flags` of `checks` explain."""
    for check, flag in zip(checks, flags):
        message = check.explain(flag)
        if message:
            raise ValueError(message)


class Tensor:
    """A contiguous array on one device. Work on it is queued; .numpy() waits for what it needs."""

    def __init__(self, storage: Storage, shape: Sequence[int], dtype: np.dtype, dev: Device,
                 requires_grad: bool = False):
        self.storage = storage
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        self.device = dev
        self.requires_grad = requires_grad
        self.grad: Tensor | None = None
        self.grad_fn = None  # the autograd node that produced this tensor, if any
        # checks of the kernels this value came from, raised when it is read back (see DeferredCheck);
        # ops pass their inputs' checks on to their outputs (autograd.Function.apply)
        self.checks: tuple[DeferredCheck, ...] = ()

    @property
    def buffer(self) -> cl.Buffer:
        return self.storage.buffer

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def numel(self) -> int:
        return self.size

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    def numpy(self) -> np.ndarray:
        """A host copy; waits for the queued work that writes this tensor. Raises ValueError when a kernel
        it came from recorded an error (a class id out of range makes a loss NaN and records which)."""
        out = self.device.read(self, np.empty(self.shape, self.dtype))
        if self.checks and out.dtype.kind == "f" and not np.isfinite(out).all():  # such errors give NaN
            raise_failed_checks(self.checks, [c.flag.numpy() for c in self.checks])
        return out

    def item(self) -> float | int:
        if self.size != 1:
            raise ValueError(f"item() needs a tensor of one element, this one has shape {self.shape}")
        return self.numpy().reshape(()).item()

    def to(self, dev: str | int | Device) -> Tensor:
        """This tensor on another device (a copy through the host), or itself if already there."""
        target = device(dev)
        if target is self.device:
            return self
        return tensor(self.numpy(), device=target, requires_grad=self.requires_grad)

    def backward(self, grad: Tensor | None = None, retain_graph: bool | None = None) -> None:
        """Accumulate the gradient of this tensor into .grad of the leaves it was computed from (the graph is
        released afterwards unless retain_graph)."""
        methods.backward(self, grad, retain_graph)

    def detach(self) -> Tensor:
        """The same storage without autograd history (its deferred checks stay with it)."""
        out = Tensor(self.storage, self.shape, self.dtype, self.device)
        out.checks = self.checks
        return out

    def reshape(self, *shape) -> Tensor:
        """The same data with a new shape, given as ints or one sequence (one dim may be -1)."""
        return methods.reshape(self, shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape)

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        return methods.flatten(self, start_dim, end_dim)

    def __add__(self, other) -> Tensor:
        return methods.add(self, other)

    __radd__ = __add__

    def __mul__(self, other) -> Tensor:
        return methods.mul(self, other)

    __rmul__ = __mul__

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __repr__(self) -> str:
        grad = ", requires_grad=True" if self.requires_grad else ""
        return f"Tensor(shape={self.shape}, dtype={self.dtype.name}, device={self.device.id}{grad})"


def _host_array(array: npt.ArrayLike, dtype: npt.DTypeLike | None) -> np.ndarray:
    try:
        arr = np.asarray(array)
    except (ValueError, TypeError) as e:  # ragged nested lists, objects numpy cannot hold
        raise ValueError(f"hetero.tensor: cannot make an array of this data ({e}); give a numpy array or "
                         "nested lists of equal lengths") from None
    if dtype is None:
        if arr.dtype.kind in "iub":
            dtype = np.int32
        elif arr.dtype.kind == "f":
            dtype = np.float32
        else:
            raise ValueError(f"hetero.tensor: unsupported dtype {arr.dtype}; use float32 data or int32 labels")
    dtype = np.dtype(dtype)
    if dtype not in DTYPES:
        raise ValueError(f"hetero.tensor: dtype {dtype} is not supported; use float32 or int32")
    if dtype.kind == "i" and arr.dtype.kind in "iu" and arr.size:
        lo, hi = int(arr.min()), int(arr.max())
        if lo < -(2**31) or hi >= 2**31:
            raise ValueError(f"hetero.tensor: integer values {lo}..{hi} do not fit in int32")
    return np.require(arr, dtype=dtype, requirements="C")  # keeps 0-d shapes, unlike ascontiguousarray


def tensor(array: npt.ArrayLike, device: str | int | Device | None = None, requires_grad: bool = False,
           dtype: npt.DTypeLike | None = None) -> Tensor:
    """Copy a host array (or nested lists) to a device: floats become float32, integers int32."""
    host = _host_array(array, dtype)
    dev = _device_of(device)
    t = empty(host.shape, host.dtype, dev)
    t.requires_grad = requires_grad
    # the copy runs later: snapshot only an array the caller may still change
    dev.write(t, host, snapshot=np.shares_memory(host, np.asarray(array)))
    return t


def as_shape(op: str, shape: Sequence[int] | int) -> tuple[int, ...]:
    """shape as a tuple of ints, from an int or a sequence of ints (numpy integers too); refuses bools,
    floats and anything else (int() would silently make 2.5 a 2)."""
    dims = (shape,) if _is_dim(shape) else shape
    if isinstance(dims, (str, bytes)) or not isinstance(dims, (Sequence, np.ndarray)):
        raise ValueError(f"{op}: shape must be a sequence of ints, got {shape!r}")
    bad = [d for d in dims if not _is_dim(d)]
    if bad:
        raise ValueError(f"{op}: shape must be a sequence of ints, got {tuple(dims)!r} ({bad[0]!r} is a "
                         f"{type(bad[0]).__name__})")
    return tuple(int(d) for d in dims)


def _is_dim(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def empty(shape: Sequence[int] | int, dtype: npt.DTypeLike = np.float32,
          device: str | int | Device | None = None) -> Tensor:
    """An uninitialised tensor from the device's memory pool."""
    shape = as_shape("hetero.empty", shape)
    if any(s < 0 for s in shape):
        raise ValueError(f"hetero.empty: negative dimension in shape {shape}")
    dev = _device_of(device)
    dtype = np.dtype(dtype)
    if dtype not in DTYPES:
        raise ValueError(f"hetero.empty: dtype {dtype} is not supported; use float32 or int32")
    nbytes = math.prod(shape) * dtype.itemsize
    return Tensor(Storage(dev, nbytes), shape, dtype, dev)


def full(shape: Sequence[int] | int, value: float, dtype: npt.DTypeLike = np.float32,
         device: str | int | Device | None = None) -> Tensor:
    """A tensor filled with one value, filled on the device."""
    if not isinstance(value, (int, float, np.integer, np.floating)) or isinstance(value, bool):
        raise ValueError(f"hetero.full: the fill value must be a number, got {value!r}")
    t = empty(as_shape("hetero.full", shape), dtype, device)
    fill_(t, value)
    return t


def zeros(shape: Sequence[int] | int, dtype: npt.DTypeLike = np.float32,
          device: str | int | Device | None = None) -> Tensor:
    return full(as_shape("hetero.zeros", shape), 0, dtype, device)


def ones(shape: Sequence[int] | int, dtype: npt.DTypeLike = np.float32,
         device: str | int | Device | None = None) -> Tensor:
    return full(as_shape("hetero.ones", shape), 1, dtype, device)


def fill_(t: Tensor, value: float) -> Tensor:
    """Set every element of t to value in place (a kernel, so graph capture records it)."""
    n = t.size
    if n:
        name = "fill_f32" if t.dtype == np.float32 else "fill_i32"
        t.device.run("fill.cl", name, None, (n,), None, t.buffer, t.dtype.type(value), np.int32(n))
    return t


def _device_of(spec: str | int | Device | None) -> Device:
    return spec if isinstance(spec, Device) else device(spec)
