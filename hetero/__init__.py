"""hetero: a vendor-neutral OpenCL deep-learning runtime. Importing it touches no OpenCL device."""

from . import data, models, nn, optim, train
from ._version import __version__
from .autograd import no_grad
from .checkpoint import CheckpointError, load, save
from .device import Device, device, devices, memory_stats, select_devices, synchronize
from .doctor import doctor
from .errors import BuildError, DeviceNotFoundError, HeteroError, NoPlatformError, OutOfMemoryError
from .graph import compile, compile_step
from .selection import DeviceInfo
from .summary import summary
from .tensor import Tensor, empty, full, ones, tensor, zeros

__all__ = [
    "__version__",
    "BuildError",
    "CheckpointError",
    "Device",
    "DeviceInfo",
    "DeviceNotFoundError",
    "HeteroError",
    "NoPlatformError",
    "OutOfMemoryError",
    "Tensor",
    "compile",
    "compile_step",
    "data",
    "device",
    "devices",
    "empty",
    "full",
    "load",
    "memory_stats",
    "models",
    "nn",
    "no_grad",
    "ones",
    "optim",
    "save",
    "select_devices",
    "summary",
    "doctor",
    "synchronize",
    "tensor",
    "train",
    "zeros",
]
