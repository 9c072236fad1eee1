"""Device figures in the manner of clpeak: memory bandwidth, host transfers, launch latency, GEMM GFLOP/s.

Each function fills `out` with metric -> (value, spread) for one device; a figure the device cannot give
raises Unsupported.
"""

from __future__ import annotations

import numpy as np
import pyopencl as cl

from ..device import Device
from ..ops.gemm import Operand, Output, launch_gemm
from ..tensor import empty, tensor
from . import clblast
from .timing import Settings, duration, rate, sample


class Unsupported(Exception):
    """The figure cannot be measured on this device or reference; the message says why."""


def _gb(nbytes: int) -> float:
    return nbytes / 1e9


def memory_bandwidth(dev: Device, settings: Settings, out: dict) -> None:
    """Buffer-to-buffer copy on the device (Device.copy); bytes read plus bytes written per second."""
    n = settings.copy_bytes
    src = cl.Buffer(dev.context, cl.mem_flags.READ_WRITE, n)
    dst = cl.Buffer(dev.context, cl.mem_flags.READ_WRITE, n)
    try:
        cl.enqueue_fill_buffer(dev.queue, src, np.float32(1), 0, n)
        out["copy"] = rate(_gb(2 * n), sample(lambda: dev.copy(dst, src, n), dev.queue.finish, settings))
    finally:
        dev.queue.finish()
        src.release()
        dst.release()


def transfer(dev: Device, settings: Settings, out: dict) -> None:
    """Blocking copies of pageable host memory to the device and back."""
    n = settings.copy_bytes
    host = np.ones(n // 4, np.float32)
    buf = cl.Buffer(dev.context, cl.mem_flags.READ_WRITE, n)
    try:
        out["host->device"] = rate(_gb(n), sample(lambda: dev.write(buf, host, blocking=True), dev.queue.finish,
                                                  settings))
        out["device->host"] = rate(_gb(n), sample(lambda: dev.read(buf, host), dev.queue.finish, settings))
    finally:
        dev.queue.finish()
        buf.release()


def launch_latency(dev: Device, settings: Settings, out: dict) -> None:
    """A one-work-item kernel (fill.cl): launch-and-wait round trip, and back-to-back launches."""
    # a private kernel object, so declaring its scalar types leaves the memoised one untouched
    kern = cl.Kernel(dev.program("fill.cl").program, "fill_f32")
    kern.set_scalar_arg_dtypes([None, np.float32, np.int32])
    buf = cl.Buffer(dev.context, cl.mem_flags.READ_WRITE, 4)
    kern.set_args(buf, 0.0, 1)

    def launch():
        cl.enqueue_nd_range_kernel(dev.queue, kern, (1,), None)

    def round_trip():
        launch()
        dev.queue.finish()

    try:
        out["round trip"] = duration(sample(round_trip, None, settings), 1e6)
        out["queued"] = duration(sample(launch, dev.queue.finish, settings), 1e6)
    finally:
        dev.queue.finish()
        buf.release()


def gemm_fp32(dev: Device, settings: Settings, out: dict) -> None:
    """hetero's GEMM, n x n x n float32, checked against numpy first (a fast wrong kernel must not look good)."""
    n = settings.gemm_n
    rng = np.random.default_rng(0)
    ha = rng.standard_normal((n, n), dtype=np.float32)
    hb = rng.standard_normal((n, n), dtype=np.float32)
    a, b = tensor(ha, dev), tensor(hb, dev)
    c = empty((n, n), np.float32, dev)

    def run():
        launch_gemm(dev, n, n, n, Operand(a, 0, n), Operand(b, 0, n), Output(c, 0, n))

    run()
    want = ha @ hb
    err = float(np.abs(c.numpy() - want).max() / np.abs(want).max())
    if err > 1e-3:
        raise RuntimeError(f"gemm {n} on {dev.label} is wrong: relative error {err:.3g}")
    out["fp32"] = rate(2 * n**3 / 1e9, sample(run, dev.synchronize, settings))


def gemm_fp16(dev: Device, settings: Settings, out: dict) -> None:
    if not dev.info.fp16:
        raise Unsupported(f"{dev.id} has no cl_khr_fp16")
    raise Unsupported("hetero's GEMM kernels are float32 only (no fp16 variant yet)")


def gemm_fp32_clblast(dev: Device, settings: Settings, out: dict) -> None:
    """CLBlast's SGEMM on the same device and queue (hetero/bench/clblast.py); unsupported without pyclblast."""
    try:
        clblast.gemm_fp32(dev, settings, out)
    except clblast.NotInstalled as e:
        raise Unsupported(str(e)) from None


# (test, metrics [(metric, unit)], function); the test name takes the settings for its sizes. The CLBlast
# peer comes last: hetero.bench's reference tasks pick the entries before it by position.
def figures(settings: Settings) -> list[tuple[str, list[tuple[str, str]], object]]:
    mib = settings.copy_bytes >> 20
    n = settings.gemm_n
    return [
        (f"memory copy {mib} MiB", [("copy", "GB/s")], memory_bandwidth),
        (f"transfer {mib} MiB", [("host->device", "GB/s"), ("device->host", "GB/s")], transfer),
        ("kernel launch", [("round trip", "us"), ("queued", "us")], launch_latency),
        (f"gemm {n}", [("fp32", "GFLOP/s")], gemm_fp32),
        (f"gemm {n}", [("fp16", "GFLOP/s")], gemm_fp16),
        (f"gemm {n}", [(clblast.METRIC, "GFLOP/s")], gemm_fp32_clblast),
    ]
