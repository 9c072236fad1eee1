"""Seeded, reproducible device random numbers: one Philox4x32-10 generator per device.

A generator's state lives in a four-word DEVICE buffer, [key_lo, key_hi, counter_lo, counter_hi]: the key is
the 64-bit seed, the counter the number of 128-bit Philox blocks drawn so far. Kernels read the state, and a
one-work-item kernel advances the counter after each draw, so a recorded graph replays with fresh numbers.
"""

from __future__ import annotations

import threading

import numpy as np

from . import validate
from .device import Device, device
from .tensor import Tensor, empty

DEFAULT_SEED = 67280421310721  # PyTorch's default seed
_UINT64 = 2**64

_lock = threading.Lock()
_seed = DEFAULT_SEED
_generators: dict[Device, Generator] = {}


def _check_seed(seed) -> int:
    if not validate.is_int(seed):
        raise ValueError(f"manual_seed: seed must be an int, got {type(seed).__name__} {seed!r}")
    seed = int(seed)
    if not -(2**63) <= seed < _UINT64:
        raise ValueError(f"manual_seed: seed {seed} is outside [-2**63, 2**64)")
    return seed % _UINT64  # negative seeds wrap, as PyTorch's do


def seed_state(seed: int) -> np.ndarray:
    """The state [key_lo, key_hi, 0, 0] a generator seeded with `seed` starts from."""
    seed = _check_seed(seed)
    return np.array([seed & 0xFFFFFFFF, seed >> 32, 0, 0], dtype=np.uint32)


class Generator:
    """A device's Philox stream; `state` is the int32[4] device tensor that kernels read (bits as uint)."""

    def __init__(self, dev: Device, seed: int):
        self.device = dev
        self.state: Tensor = empty((4,), np.int32, dev)
        self.set_state(seed_state(seed))

    def get_state(self) -> np.ndarray:
        """A host copy of [key_lo, key_hi, counter_lo, counter_hi] (waits for queued work)."""
        return self.state.numpy().view(np.uint32).copy()

    def set_state(self, state) -> None:
        host = _check_state(state)
        # the same buffer is overwritten, never replaced: recorded launches keep pointing at it
        self.device.write(self.state, host.view(np.int32), blocking=True)

    def advance(self, blocks: int) -> None:
        """Enqueue counter += blocks on the device (a launch, so graph replays repeat it)."""
        self.device.run("dropout.cl", "philox_advance", None, (1,), None, self.state, np.uint64(blocks))


def _check_state(state) -> np.ndarray:
    arr = np.asarray(state)
    if arr.shape != (4,) or arr.dtype.kind not in "iu":
        raise ValueError(f"set_rng_state: state must be 4 integers [key_lo, key_hi, counter_lo, counter_hi], "
                         f"got {arr.dtype} {arr.shape}")
    if arr.size and (int(arr.min()) < 0 or int(arr.max()) > 0xFFFFFFFF):
        raise ValueError(f"set_rng_state: state words must be in [0, 2**32), got {arr.tolist()}")
    return arr.astype(np.uint32)


def default_generator(dev: str | int | Device | None = None) -> Generator:
    """The generator of a device, created on first use from the last manual_seed (or DEFAULT_SEED)."""
    dev = device(dev)
    with _lock:
        gen = _generators.get(dev)
        if gen is None:
            gen = Generator(dev, _seed)
            _generators[dev] = gen
        return gen


def manual_seed(seed: int) -> None:
    """Seed every device's generator (those already used, and those created later); counters restart at 0."""
    global _seed
    state = seed_state(seed)
    with _lock:
        _seed = _check_seed(seed)
        gens = list(_generators.values())
    for gen in gens:
        gen.set_state(state)


def initial_seed() -> int:
    """The seed of the last manual_seed (DEFAULT_SEED if none)."""
    return _seed


def get_rng_state(dev: str | int | Device | None = None) -> np.ndarray:
    """uint32 [key_lo, key_hi, counter_lo, counter_hi] of a device's generator, e.g. for a checkpoint."""
    return default_generator(dev).get_state()


def set_rng_state(dev: str | int | Device | None, state) -> None:
    """Restore a device's generator from get_rng_state's array."""
    default_generator(dev).set_state(state)
