"""Test helpers: compare device results with the float64 numpy reference."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import numpy as np
import pytest


def oclgrind() -> bool:
    """True when tests use their reduced shapes: under `make oclgrind` (the simulator is ~1000x slower), or with
    HETERO_TEST_REDUCED=1 on a slow driver (scripts/gpu_flavour_tests.sh on Mesa's rusticl)."""
    return os.environ.get("HETERO_OCLGRIND") == "1" or os.environ.get("HETERO_TEST_REDUCED") == "1"


# Tests that force the CPU flavour's register-tiled kernels (gemm_cpu*, the direct and implicit convolutions)
# onto whatever device runs them. A GPU-flavour device never chooses those kernels, and Mesa's llvmpipe takes
# 25-75 s to compile each of them cold, so the rusticl stage of scripts/gpu_flavour_tests.sh deselects these
# (-m "not cpu_kernels"); PoCL runs them in both flavours.
cpu_kernels = pytest.mark.cpu_kernels


def shapes(full: list, reduced: list) -> list:
    """The full shape list normally; the reduced one under Oclgrind (or HETERO_TEST_REDUCED=1)."""
    return reduced if oclgrind() else full


def assert_close(actual, expected, rtol: float = 1e-4, atol: float = 1e-5, what: str = "") -> None:
    """float32 device result vs float64 reference: |a - e| <= atol + rtol * max|e| elementwise."""
    a = actual.numpy() if hasattr(actual, "numpy") else np.asarray(actual)
    e = np.asarray(expected)
    assert a.shape == e.shape, f"{what}: shape {a.shape} != expected {e.shape}"
    scale = float(np.max(np.abs(e))) if e.size else 0.0
    err = np.abs(a.astype(np.float64) - e)
    bound = atol + rtol * max(scale, 1.0)
    worst = float(err.max()) if err.size else 0.0
    assert worst <= bound, f"{what}: max abs error {worst:.3g} > {bound:.3g} (max |expected| {scale:.3g})"


def numeric_grad(f, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central finite differences of scalar f at float64 x."""
    x = x.astype(np.float64).copy()
    g = np.zeros_like(x)
    flat, gflat = x.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        fp = f(x)
        flat[i] = old - eps
        fm = f(x)
        flat[i] = old
        gflat[i] = (fp - fm) / (2 * eps)
    return g


@contextlib.contextmanager
def recorded_launches(dev) -> Iterator[list]:
    """dev.tracing() for tests that replay launches by hand: yields the list the block's launches go to;
    the buffers freed while tracing go back to the pool afterwards (no plan takes them over)."""
    trace = None
    try:
        with dev.tracing() as trace:
            yield trace.launches
    finally:
        if trace is not None:
            for buf in trace.freed:
                dev.pool.free(buf)
