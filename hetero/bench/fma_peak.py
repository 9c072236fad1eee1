"""The device's float32 multiply-add peak: independent chains of vector multiply-adds on every compute unit.

    peak = FmaPeak.fastest(dev)            # the chain count that runs fastest here, built once
    gflops, spread = measure(dev)          # median GFLOP/s over repeats and its spread

kernels_cl/fma_peak.cl runs CHAINS chains of W-wide multiply-adds per work-item (W: the width of the
device's registers, hetero.ops.gemm.config.cpu_traits), so that latency is hidden and only the FMA units
bound the rate; a multiply-add counts 2 flops per lane, as a GEMM's do. `fma_peak(dev, settings, out)` has
the signature of hetero/bench/device_figures.py's figures.
"""

from __future__ import annotations

import numpy as np

from ..device import Device
from ..ops.gemm.config import cpu_traits
from ..tensor import empty, tensor
from .timing import Settings, block, calls_for, rate, sample

# Chain counts tried (those whose chains and two operands fit the registers): an FMA unit takes a new
# multiply-add every cycle and returns it a few cycles later, so each unit needs several chains in flight.
CHAINS = (8, 12, 16, 24)
ITERS = 20_000  # multiply-add steps per chain and launch: launch costs vanish beside them
ITEMS_PER_CU = {"cpu": 8, "gpu": 2048}  # work-items per compute unit: every core (or SIMD lane) busy
GPU_LOCAL = 64
METRIC = "fp32 fma peak"


class FmaPeak:
    """The peak kernel for one device and chain count: built on creation, one launch per call."""

    def __init__(self, dev: Device, chains: int):
        self.dev = dev
        self.chains = chains
        self.width = cpu_traits(dev).vector_width if dev.flavour == "cpu" else 1
        self.defines = {"W": self.width, "CHAINS": chains}
        items = max(1, dev.info.compute_units) * ITEMS_PER_CU[dev.flavour]
        if dev.flavour == "cpu":
            self.local: tuple[int, ...] | None = (1,)
        else:
            most = dev.local_size_limit("fma_peak.cl", "fma_peak", self.defines)
            self.local = (min(GPU_LOCAL, 1 << (max(most, 1).bit_length() - 1)),)
            items = -(-items // self.local[0]) * self.local[0]
        self.items = items
        rng = np.random.default_rng(0)
        self.start = tensor(rng.uniform(0.5, 1.0, chains * self.width).astype(np.float32), dev)
        self.out = empty((items * self.width,), np.float32, dev)
        self.gflop = 2.0 * self.width * chains * ITERS * items / 1e9

    def __call__(self) -> None:
        # x * 0.999 + 0.0005 stays near 0.5: no overflow, no denormals
        self.dev.run("fma_peak.cl", "fma_peak", self.defines, (self.items,), self.local, self.start, self.out,
                     np.float32(0.999), np.float32(0.0005), np.int32(ITERS))

    @staticmethod
    def fastest(dev: Device, min_time: float = 0.05) -> FmaPeak:
        """The CHAINS count that runs fastest on dev (of those whose chains fit its registers)."""
        registers = cpu_traits(dev).registers if dev.flavour == "cpu" else max(CHAINS) + 2
        kernels = [FmaPeak(dev, c) for c in CHAINS if c + 2 <= registers]
        best, best_rate = kernels[0], 0.0
        for kern in kernels:
            calls = calls_for(kern, dev.synchronize, min_time)
            speed = kern.gflop / block(kern, dev.synchronize, calls)
            if speed > best_rate:
                best, best_rate = kern, speed
        return best


def measure(dev: Device, settings: Settings | None = None) -> tuple[float, float]:
    """(GFLOP/s, spread): the median over settings.repeats of the fastest chain count's rate."""
    settings = settings or Settings()
    kern = FmaPeak.fastest(dev)
    return rate(kern.gflop, sample(kern, dev.synchronize, settings))


def fma_peak(dev: Device, settings: Settings, out: dict) -> None:
    """device_figures-style: out[METRIC] = (GFLOP/s, spread)."""
    out[METRIC] = measure(dev, settings)
