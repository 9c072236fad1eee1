"""CLBlast's SGEMM on the same OpenCL device as hetero's GEMM: the bench's peer figure.

CLBlast runs on the device's own context and queue, so its figure belongs to the device (metric
"fp32 CLBlast" beside hetero's "fp32" under "gemm N"), not to a host reference column. It is called through
pyclblast (`pip install 'hetero[clblast]'`, which builds against the system's CLBlast), else straight from
libclblast's C API with ctypes (the library named by $HETERO_CLBLAST_LIB, else the one the linker finds), so
a machine that cannot build pyclblast still gets the figure; with neither, the figure is unsupported.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

import numpy as np
import pyopencl.array as cl_array

from ..device import Device
from .timing import Settings, rate, sample

METRIC = "fp32 CLBlast"
LIB_ENV = "HETERO_CLBLAST_LIB"
INSTALL_HINT = ("pip install 'hetero[clblast]' (pyclblast builds from source against the system CLBlast: on "
                "Debian/Ubuntu apt-get install libclblast-dev, with conda conda install -c conda-forge clblast), "
                f"or point {LIB_ENV} at a libclblast.so")
# clblast_c.h's enum values and its success code
_ROW_MAJOR, _NO_TRANSPOSE, _SUCCESS = 101, 111, 0


class NotInstalled(Exception):
    """Neither pyclblast nor libclblast is usable here; the message says why and how to install it."""


def import_pyclblast():
    """pyclblast, or None with the reason it does not import."""
    try:
        import pyclblast
    except Exception as e:  # ImportError, or a build linked against a missing libclblast.so
        return None, f"pyclblast does not import ({type(e).__name__}: {e})"
    return pyclblast, ""


def load_library():
    """libclblast's CLBlastSgemm through ctypes, or None with the reason."""
    path = os.environ.get(LIB_ENV) or ctypes.util.find_library("clblast")
    if not path:
        return None, f"no libclblast found (${LIB_ENV} is unset and the linker knows none)"
    try:
        fn = ctypes.CDLL(path).CLBlastSgemm
    except (OSError, AttributeError) as e:
        return None, f"{path} does not load as CLBlast ({e})"
    size, mem = ctypes.c_size_t, ctypes.c_void_p
    fn.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, size, size, size, ctypes.c_float, mem, size, size,
                   mem, size, size, ctypes.c_float, mem, size, size, ctypes.POINTER(ctypes.c_void_p),
                   ctypes.POINTER(ctypes.c_void_p)]
    fn.restype = ctypes.c_int
    return fn, ""


def sgemm(dev: Device):
    """A function (n, a, b, c) running C = A @ B (n x n, row-major pyopencl arrays) with CLBlast on dev's
    queue, and the binding's name; NotInstalled when there is no CLBlast."""
    pyclblast, why = import_pyclblast()
    if pyclblast is not None:
        def run(n, a, b, c):
            pyclblast.gemm(dev.queue, n, n, n, a, b, c, a_ld=n, b_ld=n, c_ld=n)

        return run, "pyclblast"
    fn, why_lib = load_library()
    if fn is None:
        raise NotInstalled(f"{why}; {why_lib}; {INSTALL_HINT}")
    queue = ctypes.c_void_p(dev.queue.int_ptr)

    def run_c(n, a, b, c):
        status = fn(_ROW_MAJOR, _NO_TRANSPOSE, _NO_TRANSPOSE, n, n, n, 1.0, a.data.int_ptr, 0, n, b.data.int_ptr, 0,
                    n, 0.0, c.data.int_ptr, 0, n, ctypes.byref(queue), None)
        if status != _SUCCESS:
            raise RuntimeError(f"CLBlastSgemm on {dev.label} returned status {status} (clblast_c.h lists them)")

    return run_c, "libclblast"


def gemm_fp32(dev: Device, settings: Settings, out: dict) -> None:
    """CLBlast's n x n x n row-major SGEMM on dev's queue, checked against numpy first, as hetero's is."""
    run_gemm, _ = sgemm(dev)
    n = settings.gemm_n
    rng = np.random.default_rng(0)
    ha = rng.standard_normal((n, n), dtype=np.float32)
    hb = rng.standard_normal((n, n), dtype=np.float32)
    a = cl_array.to_device(dev.queue, ha)
    b = cl_array.to_device(dev.queue, hb)
    c = cl_array.empty(dev.queue, (n, n), np.float32)

    def run():
        run_gemm(n, a, b, c)

    try:
        run()  # the first call builds CLBlast's kernels for this device
        want = ha @ hb
        err = float(np.abs(c.get() - want).max() / np.abs(want).max())
        if err > 1e-3:
            raise RuntimeError(f"CLBlast gemm {n} on {dev.label} is wrong: relative error {err:.3g}")
        out[METRIC] = rate(2 * n**3 / 1e9, sample(run, dev.queue.finish, settings))
    finally:
        dev.queue.finish()
        for arr in (a, b, c):
            arr.data.release()
