"""Per-model figures on hetero's compiled graphs, and the model runner benchmarks/vs_torch.py reuses.

Training: `hetero.compile_step` (SGD with momentum, cross_entropy); inference: `hetero.compile` in eval
mode; 28x28 single-channel input, 10 classes. The first-step times are taken on fresh Device objects
(own context, empty in-process memo) with HETERO_CACHE_DIR pointed at a new temporary folder: first
with that folder empty (cold), then once it holds the binaries (warm, as a second process would see).
Driver-level caches are outside hetero's control and stay as they are; on drivers that cache builds
themselves (hetero.program.driver_caches_builds: PoCL, NVIDIA) hetero keeps no binaries, so there both
figures show the driver's cache. benchmarks/cold_start.py measures a start with every cache empty.
"""

from __future__ import annotations

import contextlib
import gc
import os
import shutil
import tempfile
import time

import numpy as np

from .. import optim
from ..device import Device
from ..graph import compile, compile_step
from ..models import get_model, small_image_kwargs
from ..nn import functional as F
from .timing import Settings, rate, sample

NUM_CLASSES = 10
DEFAULT_BATCH = {"lenet5": 64, "alexnet_mnist": 64, "resnet18": 32}
# hetero.models' small-image registry says how each is built; num_classes is passed on its own
MODEL_KWARGS = {name: {k: v for k, v in small_image_kwargs(name, NUM_CLASSES).items() if k != "num_classes"}
                for name in DEFAULT_BATCH}


def batch_size_for(name: str, settings: Settings) -> int:
    return settings.model_batch or DEFAULT_BATCH.get(name, 32)


def check_model(name: str) -> None:
    if name not in MODEL_KWARGS:
        raise ValueError(f"bench: unknown model {name!r}; available: {', '.join(MODEL_KWARGS)}")


def batch_data(batch: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A random (batch, 1, 28, 28) float32 input and int32 labels."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((batch, 1, 28, 28), dtype=np.float32),
            rng.integers(0, NUM_CLASSES, batch).astype(np.int32))


class HeteroModelRunner:
    """One model on one device: train() runs a compiled training step, infer() a compiled forward."""

    def __init__(self, dev: Device, name: str, batch: int):
        check_model(name)
        self.device = dev
        self.batch = batch
        self.model = get_model(name, num_classes=NUM_CLASSES, device=dev, **MODEL_KWARGS[name])
        self.optimizer = optim.SGD(self.model.parameters(), lr=0.01, momentum=0.9)
        self.step = compile_step(self.model, F.cross_entropy, self.optimizer)
        self.forward = compile(self.model)
        self.x, self.y = batch_data(batch)

    def train(self) -> None:
        if not self.model.training:
            self.model.train()
        self.step(self.x, self.y)

    def infer(self) -> None:
        if self.model.training:
            self.model.eval()
        self.forward(self.x)

    def sync(self) -> None:
        self.device.synchronize()


@contextlib.contextmanager
def _fresh_program_cache():
    """HETERO_CACHE_DIR set to a new empty folder for the duration (process-wide), then restored."""
    old = os.environ.get("HETERO_CACHE_DIR")
    folder = tempfile.mkdtemp(prefix="hetero-bench-cache-")
    os.environ["HETERO_CACHE_DIR"] = folder
    try:
        yield folder
    finally:
        if old is None:
            os.environ.pop("HETERO_CACHE_DIR", None)
        else:
            os.environ["HETERO_CACHE_DIR"] = old
        shutil.rmtree(folder, ignore_errors=True)


def _fresh_device(dev: Device) -> Device:
    """Another Device object on the same OpenCL device: a new context and nothing built yet."""
    return Device(dev.info, dev.cl_device)


def _first_step(dev: Device, name: str, batch: int) -> tuple[float, HeteroModelRunner]:
    runner = HeteroModelRunner(dev, name, batch)
    t0 = time.perf_counter()
    runner.train()
    runner.sync()
    return time.perf_counter() - t0, runner


def measure_hetero(dev: Device, name: str, settings: Settings, out: dict) -> None:
    batch = batch_size_for(name, settings)
    cold_dev = warm_dev = None
    try:
        with _fresh_program_cache():
            cold_dev = _fresh_device(dev)
            cold, runner = _first_step(cold_dev, name, batch)
            del runner
            cold_dev.pool.empty_cache()
            out["first step cold"] = (cold, None)
            warm_dev = _fresh_device(dev)
            warm, runner = _first_step(warm_dev, name, batch)
            out["first step warm"] = (warm, None)
            out["train"] = rate(batch, sample(runner.train, runner.sync, settings))
            out["peak memory"] = (warm_dev.pool.peak / 2**20, None)
            out["inference"] = rate(batch, sample(runner.infer, runner.sync, settings))
            del runner
    finally:
        gc.collect()  # plans and parameters in reference cycles give their buffers back to the pools first
        for d in (cold_dev, warm_dev):
            if d is not None:
                d.synchronize()
                d.pool.empty_cache()


METRICS = [("train", "img/s"), ("inference", "img/s"), ("peak memory", "MiB"), ("first step cold", "s"),
           ("first step warm", "s")]
REFERENCE_METRICS = METRICS[:2]
