"""OpenCL devices: listing with a one-time probe, selection by spec, and the per-device runtime."""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import threading
import warnings
from collections import deque
from collections.abc import Iterator, Sequence
from typing import Protocol

import numpy as np
import pyopencl as cl

from . import limits as launch_limits
from . import program as programs
from .atomic import write_cache
from .errors import DeviceNotFoundError, HeteroError, NoPlatformError
from .memory import MemoryPool
from .selection import DeviceInfo, choose, describe
from .trace import Trace

NO_PLATFORM_HELP = (
    "no OpenCL platform found. Install an OpenCL driver: on Debian/Ubuntu `apt-get install "
    "pocl-opencl-icd` gives a CPU device; with conda, `conda install -c conda-forge pocl`; for a GPU, "
    "install the vendor driver (NVIDIA's driver ships libnvidia-opencl, AMD's ROCm or Mesa rusticl, "
    "Intel's compute-runtime). An ICD file must be in /etc/OpenCL/vendors or named by OCL_ICD_VENDORS."
)
_TYPES = {
    cl.device_type.GPU: "gpu",
    cl.device_type.CPU: "cpu",
    cl.device_type.ACCELERATOR: "accelerator",
}
# Which kernels a device gets: "cpu" (work-items that loop, PoCL-style vectorised work-groups) or "gpu"
# (many small work-items, local-memory tiles). By default CPUs get "cpu" and every other type "gpu";
# HETERO_KERNEL_FLAVOUR forces one for every device, e.g. to run the GPU kernels at full size on a CPU.
FLAVOUR_ENV = "HETERO_KERNEL_FLAVOUR"
FLAVOURS = ("cpu", "gpu")


def kernel_flavour(device_type: str, env: str | None = None) -> str:
    """The kernel flavour of a device of this OpenCL type: $HETERO_KERNEL_FLAVOUR if set, else by type."""
    forced = (os.environ.get(FLAVOUR_ENV, "") if env is None else env).strip().lower()
    if forced:
        if forced not in FLAVOURS:
            raise HeteroError(f"{FLAVOUR_ENV}={forced!r}: use one of {', '.join(FLAVOURS)} (or unset it to choose "
                              "by device type)")
        return forced
    return "cpu" if device_type == "cpu" else "gpu"


_PROBE_SRC = "__kernel void probe(__global float *a) { int i = get_global_id(0); a[i] = a[i] * 2.0f + 1.0f; }"


class HasBuffer(Protocol):
    """A Tensor, or anything else that holds a device buffer."""

    @property
    def buffer(self) -> cl.Buffer: ...


Memory = cl.Buffer | HasBuffer  # what the copy doors take as a source or destination

# pyopencl's enqueue_copy finds out what kind of copy it was asked for on every call (object types, the memory
# object's type from the driver); for host <-> buffer copies that costs more than the enqueue itself, so the
# copy doors call the two functions it ends in when this pyopencl has them. Looked up through the module at
# each call, so a profiler that wraps them sees every copy.
_DIRECT_COPIES = hasattr(cl._cl, "_enqueue_write_buffer") and hasattr(cl._cl, "_enqueue_read_buffer")


def _write_buffer(queue: cl.CommandQueue, buf: cl.Buffer, host: np.ndarray, blocking: bool) -> cl.Event:
    if _DIRECT_COPIES:
        return cl._cl._enqueue_write_buffer(queue, buf, host, 0, None, blocking)
    return cl.enqueue_copy(queue, buf, host, is_blocking=blocking)


def _read_buffer(queue: cl.CommandQueue, buf: cl.Buffer, host: np.ndarray, blocking: bool) -> cl.Event:
    if _DIRECT_COPIES:
        return cl._cl._enqueue_read_buffer(queue, buf, host, 0, None, blocking)
    return cl.enqueue_copy(queue, host, buf, is_blocking=blocking)


_lock = threading.RLock()
_listing: list[tuple[DeviceInfo, cl.Device]] | None = None
_open: dict[str, Device] = {}


def _platforms() -> list[cl.Platform]:
    try:
        platforms = cl.get_platforms()
    except cl.Error:
        platforms = []
    if not platforms:
        raise NoPlatformError(NO_PLATFORM_HELP)
    return platforms


def _type_name(dev: cl.Device) -> str:
    for bit, name in _TYPES.items():
        if dev.type & bit:
            return name
    return "other"


def _describe_cl(pid: int, did: int, plat: cl.Platform, dev: cl.Device) -> DeviceInfo:
    ext = tuple(dev.extensions.split())
    try:
        subs = dev.partition_max_sub_devices
        equally = cl.device_partition_property.EQUALLY in (dev.partition_properties or [])
    except cl.Error:
        subs, equally = 0, False
    return DeviceInfo(
        id=f"{pid}:{did}",
        platform=plat.name.strip(),
        name=dev.name.strip(),
        vendor=dev.vendor.strip(),
        type=_type_name(dev),
        driver_version=dev.driver_version.strip(),
        opencl_c_version=dev.get_info(cl.device_info.OPENCL_C_VERSION).strip(),
        compute_units=dev.max_compute_units,
        clock_mhz=dev.max_clock_frequency,
        global_mem_bytes=dev.global_mem_size,
        local_mem_bytes=dev.local_mem_size,
        max_work_group_size=dev.max_work_group_size,
        fp16="cl_khr_fp16" in ext,
        fp64="cl_khr_fp64" in ext or bool(dev.double_fp_config),
        max_sub_devices=subs if equally else 0,
        extensions=ext,
    )


def _probe(dev: cl.Device) -> str:
    """Build and run a tiny kernel; '' when it works, else why not (the build log's first lines)."""
    try:
        ctx = cl.Context(devices=[dev])
        queue = cl.CommandQueue(ctx)
        prg = cl.Program(ctx, _PROBE_SRC)
        try:
            with warnings.catch_warnings():  # compiler remarks are not the user's business (as in program.py)
                warnings.simplefilter("ignore", cl.CompilerWarning)
                prg.build()
        except cl.RuntimeError as e:
            log = prg.get_build_info(dev, cl.program_build_info.LOG).strip() or str(e)
            return "kernel build fails: " + " ".join(log.split())[:300]
        host = np.arange(16, dtype=np.float32)
        buf = cl.Buffer(ctx, cl.mem_flags.READ_WRITE | cl.mem_flags.COPY_HOST_PTR, hostbuf=host)
        prg.probe(queue, (16,), None, buf)
        out = np.empty_like(host)
        cl.enqueue_copy(queue, out, buf)
        if not np.array_equal(out, host * 2 + 1):
            return "probe kernel gave wrong results"
        return ""
    except Exception as e:  # any driver failure makes the device unusable, never a crash
        return f"probe failed: {type(e).__name__}: {' '.join(str(e).split())[:300]}"


def _probe_cache_path():
    return programs.cache_dir() / "probe.json"


def _probe_all(found: list[tuple[DeviceInfo, cl.Device]]) -> list[tuple[DeviceInfo, cl.Device]]:
    """Attach a usable verdict to each device, probing only devices+drivers not seen before."""
    path = _probe_cache_path()
    cache = _read_probe_cache(path)
    changed = False
    out = []
    for info, dev in found:
        key = f"{info.platform}|{info.name}|{info.driver_version}|{info.opencl_c_version}"
        if key not in cache:
            cache[key] = _probe(dev)
            changed = True
        reason = cache[key]
        out.append((DeviceInfo(**{**info.__dict__, "usable": not reason, "reason": reason}), dev))
    if changed:
        write_cache(path, json.dumps(cache, indent=1).encode())
    return out


def _read_probe_cache(path) -> dict[str, str]:
    """The cached verdicts ({device key: '' or why unusable}); anything else on disk (unreadable, not JSON,
    another shape, written by a damaged or other version) is a stale cache: {} makes every device re-probe."""
    try:
        cache = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, ValueError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return {}
    if not isinstance(cache, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in cache.items()):
        return {}
    return cache


def _list() -> list[tuple[DeviceInfo, cl.Device]]:
    global _listing
    with _lock:
        if _listing is None:
            found = []
            for pid, plat in enumerate(_platforms()):
                try:
                    devs = plat.get_devices()
                except cl.Error:
                    devs = []
                for did, dev in enumerate(devs):
                    found.append(_describe_cl(pid, did, plat, dev))
                    found[-1] = (found[-1], dev)
            _listing = _probe_all(found)
        return _listing


def devices() -> list[DeviceInfo]:
    """Every OpenCL device on every platform, each probed once (verdict cached per device+driver)."""
    return [info for info, _ in _list()]


def _resolve(spec: str | int | None) -> list[DeviceInfo]:
    if spec is None:
        spec = os.environ.get("HETERO_DEVICE") or None
    return choose(devices(), spec)


def device(spec: str | int | Device | None = None) -> Device:
    """The device a spec names (see hetero.selection); None means $HETERO_DEVICE, else the best one."""
    if isinstance(spec, Device):
        return spec
    infos = _resolve(spec)
    if len(infos) > 1:
        ids = ", ".join(f"{spec}.{k}" for k in range(len(infos)))
        raise HeteroError(f"device spec {spec!r} names {len(infos)} sub-devices; pick one ({ids}) "
                          "or use hetero.select_devices() for all of them")
    return _open_device(infos[0])


def select_devices(specs: str | Sequence[str | int]) -> list[Device]:
    """Devices for a comma-separated list of specs; "all" is every usable device, "cpu/2" two halves."""
    if isinstance(specs, str):
        specs = [s for s in specs.split(",") if s.strip()]
    if not specs:
        raise DeviceNotFoundError(f"no device spec given: name one or more, comma-separated, or 'all'; "
                                  f"{describe(devices())}")
    out: list[Device] = []
    for spec in specs:
        if isinstance(spec, str) and spec.strip().lower() == "all":
            infos = [d for d in devices() if d.usable]
            if not infos:
                raise DeviceNotFoundError(f"'all' names no usable device; {describe(devices())}")
        else:
            infos = _resolve(spec)
        for info in infos:
            dev = _open_device(info)
            if dev not in out:
                out.append(dev)
    return out


def _open_device(info: DeviceInfo) -> Device:
    with _lock:
        dev = _open.get(info.id)
        if dev is None:
            dev = Device(info, _cl_device(info))
            _open[info.id] = dev
        return dev


def _cl_device(info: DeviceInfo) -> cl.Device:
    parent_id = info.parent or info.id
    base = next((d for i, d in _list() if i.id == parent_id), None)
    if base is None:
        raise HeteroError(f"device {info.id} disappeared; {describe(devices())}")
    if info.parent is None:
        return base
    n, i = (int(x) for x in info.id.rsplit("/", 1)[1].split("."))
    subs = base.create_sub_devices([cl.device_partition_property.EQUALLY, base.max_compute_units // n])
    return subs[i]


def open_devices() -> list[Device]:
    """The devices this process has opened so far."""
    with _lock:
        return list(_open.values())


@atexit.register
def _drain_queues() -> None:
    # Work is queued without waiting; a process that exits while the driver still runs it tears buffers
    # down under running kernels (seen as an occasional segfault at exit on PoCL). Finish it first.
    for dev in open_devices():
        try:
            dev.queue.finish()
        except Exception:  # a failed device must not turn an exit into a traceback
            pass


class Device:
    """One opened device: its context, in-order queue, memory pool and built programs."""

    def __init__(self, info: DeviceInfo, cl_device: cl.Device):
        self.info = info
        self.cl_device = cl_device
        self.flavour = kernel_flavour(info.type)  # "cpu" or "gpu": which kernels and work shapes it gets
        self.context = cl.Context(devices=[cl_device])
        self.queue = cl.CommandQueue(self.context)
        self.pool = MemoryPool(
            self.context, self.label, info.global_mem_bytes, cl_device.max_mem_alloc_size,
            debug=os.environ.get("HETERO_DEBUG_MEMORY") == "1",
        )
        self._programs: dict[tuple[str, str], programs.Program] = {}
        self._kernels: dict[tuple, cl.Kernel] = {}  # run()'s typed kernels
        self._work_groups: dict[tuple, int] = {}  # work_group_size()'s and local_size_limit()'s answers
        # extra compiler options for every program, e.g. -cl-opt-disable under the Oclgrind simulator
        self.extra_options = tuple(os.environ.get("HETERO_BUILD_OPTIONS", "").split())
        self._lock = threading.Lock()
        self._pending: deque[cl.Event] = deque()
        self.trace: Trace | None = None  # the step being traced, set only by tracing()
        # Every launch is checked against the device's and the kernel's limits (hetero.limits), and against the
        # strict limits of common GPUs under HETERO_STRICT_LIMITS=1, read once here. check_limits=False only
        # exists to measure what checking costs.
        self.strict_limits = launch_limits.strict_mode()
        self.check_limits = True
        self.limits = launch_limits.device_limits(cl_device)

    @property
    def id(self) -> str:
        return self.info.id

    @property
    def type(self) -> str:
        return self.info.type

    @property
    def label(self) -> str:
        return f"{self.info.id} {self.info.name}"

    def program(self, file: str, defines: programs.Defines | None = None) -> programs.Program:
        """kernels_cl/<file> built with these defines, memoised per device."""
        options = programs.format_options(defines, self.extra_options)
        key = (file, options)
        prg = self._programs.get(key)
        if prg is None:
            with self._lock:
                prg = self._programs.get(key)
                if prg is None:
                    prg = programs.build(self.context, self.cl_device, file, options, self.label)
                    self._programs[key] = prg
        return prg

    def kernel(self, file: str, name: str, defines: programs.Defines | None = None) -> cl.Kernel:
        """The untyped kernel object `name` of kernels_cl/<file> (for queries; run is the launch door)."""
        return self.program(file, defines).kernel(name)

    def run(self, file: str, name: str, defines: programs.Defines | None, global_size: Sequence[int],
            local_size: Sequence[int] | None, *args) -> None:
        """Launch kernel `name` of kernels_cl/<file>, built once per (defines, scalar argument types).

        The lookup key is the defines in insertion order (no option formatting per launch), and the
        scalar types are declared to pyopencl once: its untyped set_args converts each numpy scalar anew.
        """
        types = tuple(type(a) if isinstance(a, np.generic) else None for a in args)
        key = (file, name, types, *defines.items()) if defines else (file, name, types)
        kern = self._kernels.get(key)
        if kern is None:
            # a kernel object of its own: the scalar types are a property of the object
            kern = self.program(file, defines).new_kernel(name)
            kern.set_scalar_arg_dtypes(list(types))
            self._kernels[key] = kern
        self.launch(kern, global_size, local_size, *args)

    def work_group_size(self, file: str, name: str, defines: programs.Defines, cap: int = 256,
                        define: str = "WG") -> int:
        """The work-group size kernel `name` is built with (-D<define>=<size>) and launched with (1-D): the largest
        power of two <= cap that the device and the kernel so built allow (register-hungry kernels allow less)."""
        key = (file, name, define, cap, self.strict_limits, *defines.items())
        wg = self._work_groups.get(key)
        if wg is None:
            wg = _pow2_floor(min(cap, self._max_group_items()))
            while wg > 1:
                kern = self.kernel(file, name, {**defines, define: wg})
                allowed = launch_limits.kernel_limits(self, kern).work_group_size
                if allowed >= wg:
                    break
                wg = _pow2_floor(allowed)
            self._work_groups[key] = wg
        return wg

    def local_size_limit(self, file: str, name: str, defines: programs.Defines | None = None) -> int:
        """The most work-items a 1-D work-group of kernel `name` (built with these defines) may have here: its
        CL_KERNEL_WORK_GROUP_SIZE, the device's dim-0 work-item size and, under HETERO_STRICT_LIMITS=1, 256."""
        key = ("local_size_limit", file, name, self.strict_limits, *(defines or {}).items())
        most = self._work_groups.get(key)
        if most is None:
            kern = self.kernel(file, name, defines)
            most = min(launch_limits.kernel_limits(self, kern).work_group_size, self._max_group_items())
            self._work_groups[key] = most
        return most

    def _max_group_items(self) -> int:
        """The most work-items of a 1-D work-group on this device, whatever the kernel (strict limits included)."""
        most = min(self.limits.max_work_group_size, self.limits.max_work_item_sizes[0])
        if self.strict_limits:
            most = min(most, launch_limits.STRICT.max_work_group_size, launch_limits.STRICT.max_work_item_sizes[0])
        return most

    def kernel_origin(self, kernel: cl.Kernel) -> tuple[str, str] | None:
        """(file, build options) of a kernel this device built, for error messages; None if it built none such."""
        ptr = kernel.program.int_ptr
        for prg in list(self._programs.values()):
            if prg.program.int_ptr == ptr:
                return prg.file, prg.options
        return None

    def launch(self, kernel: cl.Kernel, global_size: Sequence[int], local_size: Sequence[int] | None,
               *args) -> None:
        """Enqueue one kernel. Args are cl.Buffer / Tensor / numpy scalars; nothing waits for it. A launch outside
        the device's or the kernel's limits raises LaunchLimitError naming the kernel (hetero.limits)."""
        args = tuple(a.buffer if hasattr(a, "buffer") else a for a in args)
        if any(g == 0 for g in global_size):
            return
        if self.check_limits:
            where = "Device.launch" if self.trace is None else "Device.launch (tracing a compiled step)"
            launch_limits.check_launch(self, kernel, global_size, local_size, where, strict=self.strict_limits)
        kernel.set_args(*args)
        cl.enqueue_nd_range_kernel(self.queue, kernel, tuple(global_size),
                                   None if local_size is None else tuple(local_size))
        if self.trace is not None:
            self.trace.launches.append((kernel, tuple(global_size), local_size, args))

    @contextlib.contextmanager
    def tracing(self) -> Iterator[Trace]:
        """Record the block's launches, host writes and freed buffers into a Trace (the graph executor's
        capture); tracing stops on exit, and when the block raises the buffers it freed go back to the pool."""
        if self.trace is not None:
            raise HeteroError(f"compile: {self.id} is already recording a step (nested compiled calls)")
        trace = Trace()
        self.trace = self.pool.trace = trace
        try:
            yield trace
        except BaseException:
            self.trace = self.pool.trace = None
            freed, trace.freed = trace.freed, []
            for buf in freed:
                self.pool.free(buf)
            raise
        finally:
            self.trace = self.pool.trace = None

    def write(self, dst: Memory, host: np.ndarray, *, blocking: bool = False, snapshot: bool = True) -> None:
        """Copy a host array into dst (a Tensor or cl.Buffer). Non-blocking copies run later, so the array is
        snapshot first unless the caller owns it (snapshot=False: nobody else changes it until the copy)."""
        buf = dst.buffer if hasattr(dst, "buffer") else dst
        if host.size == 0:
            return
        if blocking:
            _write_buffer(self.queue, buf, host, True)
        else:
            self.keep(_write_buffer(self.queue, buf, host.copy() if snapshot else host, False))
        if self.trace is not None:
            self.trace.host_written.add(buf.int_ptr)

    def read(self, src: Memory, out: np.ndarray) -> np.ndarray:
        """Copy src (a Tensor or cl.Buffer) into the host array out, waiting for it; returns out."""
        if self.trace is not None:
            raise HeteroError(
                "a host read (.numpy()/.item()) inside a step being compiled: ops and models must not read "
                "device data on the host; compute on the device instead"
            )
        if out.size:
            _read_buffer(self.queue, src.buffer if hasattr(src, "buffer") else src, out, True)
        return out

    def read_async(self, src: Memory, out: np.ndarray) -> cl.Event:
        """Queue a copy of src into out without waiting; out is valid once the returned event completes."""
        return _read_buffer(self.queue, src.buffer if hasattr(src, "buffer") else src, out, False)

    def copy(self, dst: Memory, src: Memory, nbytes: int) -> None:
        """Queue a device-to-device copy of nbytes from src to dst (Tensors or cl.Buffers)."""
        if nbytes:
            cl.enqueue_copy(self.queue, dst.buffer if hasattr(dst, "buffer") else dst,
                            src.buffer if hasattr(src, "buffer") else src, byte_count=nbytes)

    def keep(self, event: cl.Event) -> None:
        """Hold a host-copy event until it completes (pyopencl waits for a copy whose event is dropped).
        The queue is in order, so finished events leave from the front only, never by a scan of all."""
        done = cl.command_execution_status.COMPLETE
        pending = self._pending
        while pending and pending[0].command_execution_status == done:
            pending.popleft()
        pending.append(event)

    def synchronize(self) -> None:
        self.queue.finish()
        self._pending.clear()

    def memory_stats(self) -> dict:
        return self.pool.stats()

    def __repr__(self) -> str:
        return f"<hetero.Device {self.label} ({self.info.type})>"


def _pow2_floor(n: int) -> int:
    return 1 << (max(int(n), 1).bit_length() - 1)


def synchronize(dev: str | Device | None = None) -> None:
    """Wait for all work queued on a device (all opened devices when None)."""
    targets = open_devices() if dev is None else [device(dev)]
    for d in targets:
        d.synchronize()


def memory_stats(dev: str | Device | None = None) -> dict:
    """Bytes in use and cached by hetero's memory pool on a device."""
    return device(dev).memory_stats()
