"""Exceptions raised by hetero; each message says what went wrong and what to do."""


class HeteroError(RuntimeError):
    """Base class of hetero's runtime errors."""


class NoPlatformError(HeteroError):
    """No OpenCL platform (ICD) is installed."""


class DeviceNotFoundError(HeteroError):
    """A device spec matched no usable device."""


class BuildError(HeteroError):
    """An OpenCL program failed to build; carries the device, options and build log."""

    def __init__(self, file: str, device: str, options: str, log: str):
        self.file, self.device, self.options, self.log = file, device, options, log
        super().__init__(
            f"building kernels_cl/{file} for {device} failed\n  options: {options}\n  build log:\n{log}"
        )


class OutOfMemoryError(HeteroError):
    """A device allocation exceeded the device's memory."""
