"""Device tensors: a shape, a dtype (float32, or int32 for labels) and a pooled OpenCL buffer."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

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
        """A host copy; waits for the queued work that writes this tensor."""
        return self.device.read(self, np.empty(self.shape, self.dtype))

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

    def backward(self, grad: Tensor | None = None) -> None:
        """Accumulate the gradient of this tensor into .grad of the leaves it was computed from."""
        methods.backward(self, grad)

    def detach(self) -> Tensor:
        """The same storage without autograd history."""
        return Tensor(self.storage, self.shape, self.dtype, self.device)

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
    arr = np.asarray(array)
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


def empty(shape: Sequence[int], dtype: npt.DTypeLike = np.float32, device: str | int | Device | None = None) -> Tensor:
    """An uninitialised tensor from the device's memory pool."""
    dev = _device_of(device)
    shape = tuple(int(s) for s in shape)
    if any(s < 0 for s in shape):
        raise ValueError(f"hetero.empty: negative dimension in shape {shape}")
    dtype = np.dtype(dtype)
    if dtype not in DTYPES:
        raise ValueError(f"hetero.empty: dtype {dtype} is not supported; use float32 or int32")
    nbytes = math.prod(shape) * dtype.itemsize
    return Tensor(Storage(dev, nbytes), shape, dtype, dev)


def full(shape: Sequence[int], value: float, dtype: npt.DTypeLike = np.float32,
         device: str | int | Device | None = None) -> Tensor:
    """A tensor filled with one value, filled on the device."""
    t = empty(shape, dtype, device)
    fill_(t, value)
    return t


def zeros(shape: Sequence[int], dtype: npt.DTypeLike = np.float32, device: str | int | Device | None = None) -> Tensor:
    return full(shape, 0, dtype, device)


def ones(shape: Sequence[int], dtype: npt.DTypeLike = np.float32, device: str | int | Device | None = None) -> Tensor:
    return full(shape, 1, dtype, device)


def fill_(t: Tensor, value: float) -> Tensor:
    """Set every element of t to value in place (a kernel, so graph capture records it)."""
    n = t.size
    if n:
        name = "fill_f32" if t.dtype == np.float32 else "fill_i32"
        t.device.run("fill.cl", name, None, (n,), None, t.buffer, t.dtype.type(value), np.int32(n))
    return t


def _device_of(spec: str | int | Device | None) -> Device:
    return spec if isinstance(spec, Device) else device(spec)
