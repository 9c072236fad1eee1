"""DataParallel: one model trained on several devices (and MPI ranks), each step's batch split by throughput.

Every step: each device runs forward and backward on its shard (in its own thread, so the devices work at
once) and stages its gradient on the host; the gradients are summed, weighted by shard size, in a fixed
order (then all-reduced across MPI ranks); every device writes the sum and applies the same optimizer step.
All devices start from the primary's weights and optimizer state, so they stay identical; `check()`
verifies it by checksum and re-synchronises from the primary if float rounding on different OpenCL
implementations made them drift. Batch norm normalises with each device's own batch statistics and
keeps the primary's running statistics (PyTorch DDP's default, broadcast_buffers=True).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from .. import random as hrandom
from ..device import Device, select_devices
from ..errors import HeteroError
from ..nn import functional as F
from ..nn.module import Module, model_device
from ..optim import Optimizer
from ..selection import parse_split
from ..tensor import Tensor
from .balance import Balancer
from .comm import Comm
from .replica import Replica, clone_model, clone_optimizer

# Shard sizes select traced plans (and shapes kernels are built for): shares move in steps of this
# fraction of the batch, so a run meets only a few shard sizes per device.
GRANULARITY_FRACTION = 1 / 32
# Seconds a rank waits for the others at a collective that may follow work only some ranks do at length:
# the first step and the first after new shard sizes (kernel builds, which differ by device), and the
# first after an epoch's end (rank 0 alone writes the checkpoint). Other collectives wait comm.timeout.
SLOW_COLLECTIVE_TIMEOUT = 600.0


class DataParallelError(HeteroError, RuntimeError):
    """A data-parallel run that cannot go on; the message names the device (and rank) and what to do."""


@dataclass(frozen=True)
class StepResult:
    """One data-parallel step, summed over every device of every rank."""

    loss: float  # the batch's mean loss
    correct: int
    images: int
    sizes: tuple[int, ...]  # images per device, all ranks, in device order
    seconds: tuple[float, ...]  # each device's forward + backward + staging time
    stop: bool  # some rank asked to stop after this step


def check_devices(devices: Sequence[Device]) -> None:
    """Refuse a device list that names one device twice or a device together with a part of it."""
    seen: dict[str, Device] = {}
    for d in devices:
        if d.id in seen:
            raise DataParallelError(f"data parallel: device {d.id} is listed twice; name each device once")
        seen[d.id] = d
    for d in devices:
        parent = d.info.parent
        if parent is not None and parent in seen:
            raise DataParallelError(f"data parallel: {d.id} is part of {parent}, which is also listed: their "
                                    f"compute units overlap; list either {parent} or its parts")
        if parent is not None:
            split = parse_split(d.id)[1]
            for other in devices:
                if other.info.parent == parent and parse_split(other.id)[1] != split:
                    raise DataParallelError(f"data parallel: {d.id} and {other.id} split {parent} in different "
                                            f"ways and overlap; use one split, e.g. {parent}/2")


def resolve_devices(spec: str) -> list[Device]:
    """The devices of a comma-separated spec list ("0:0,1:0", "cpu/2"), refused if any is named twice or
    overlaps another; unknown specs raise DeviceNotFoundError listing the devices there are."""
    devs: list[Device] = []
    for part in spec.split(","):
        if not part.strip():
            raise DataParallelError(f"device list {spec!r} has an empty entry; separate device specs with one comma")
        for d in select_devices([part.strip()]):
            if d in devs:
                raise DataParallelError(f"device list {spec!r} names {d.id} twice; name each device once")
            devs.append(d)
    check_devices(devs)
    return devs


class DataParallel:
    """`model` (on the first device) and `optimizer` trained data-parallel over `devices`; step(x, y) runs one
    global batch. With an MPI `comm`, every rank passes its own local devices and the same global batch."""

    def __init__(self, model: Module, optimizer: Optimizer, devices: Sequence[Device | str | int],
                 loss_fn: Callable[[Tensor, Tensor], Tensor] = F.cross_entropy, balance: str = "throughput",
                 comm: Comm | None = None, batch_size: int | None = None, rebalance_every: int = 10,
                 shares: Sequence[float] | None = None):
        devs = [d if isinstance(d, Device) else select_devices([d])[0] for d in devices]
        if not devs:
            raise DataParallelError("data parallel: no devices given")
        check_devices(devs)
        primary = model_device(model, "data parallel")
        if devs[0] is not primary:
            raise DataParallelError(f"data parallel: the model is on {primary.id}; build it on the first device "
                                    f"listed ({devs[0].id})")
        self.comm = comm if comm is not None else Comm()
        self._timeout = self.comm.timeout
        self.slow_next = True  # the next collective may wait SLOW_COLLECTIVE_TIMEOUT (see expect_slow)
        self._last_sizes: tuple[int, ...] = ()
        self.comm.timeout = max(self._timeout, SLOW_COLLECTIVE_TIMEOUT)
        self.replicas = [Replica(devs[0], model, optimizer, loss_fn)]
        for dev in devs[1:]:
            clone = clone_model(model, dev)
            self.replicas.append(Replica(dev, clone, clone_optimizer(optimizer, model, clone), loss_fn))
        gathered = self.comm.allgather([(d.id, d.info.name) for d in devs])
        # every rank's devices in rank order: "0:0/2.0", or "rank 1 0:0" across processes
        self.ids = [f"rank {r} {i}" if self.comm.size > 1 else i for r, names in enumerate(gathered)
                    for i, _ in names]
        self.labels = [f"{i} {name}" for i, (_, name) in zip(self.ids, (n for names in gathered for n in names))]
        self.first = sum(len(names) for names in gathered[:self.comm.rank])  # this rank's first worker
        granularity = 1 if batch_size is None else max(1, int(batch_size * GRANULARITY_FRACTION))
        self.balancer = Balancer(len(self.labels), mode=balance, granularity=granularity,
                                 every=rebalance_every, weights=shares)
        self.grad_size = int(self.replicas[0].offsets[-1])
        # [gradient | loss * images, correct, stop votes | seconds of every worker]; two, so the buffer the
        # devices still copy from is never the one being summed into
        extra = 3 + len(self.labels)
        self._flat = [np.zeros(self.grad_size + extra, np.float32) for _ in range(2)]
        self._tmp = np.zeros(self.grad_size, np.float32)
        self._turn = 0
        self.steps = 0
        self._pool = ThreadPoolExecutor(len(self.replicas), "hetero-data-parallel") if len(self.replicas) > 1 \
            else None
        self.stop_requested = False  # set by the caller (Ctrl-C); every rank stops after the same step
        if self.comm.size > 1:
            self.broadcast_from_root()
        self._separate_random_streams()

    def _separate_random_streams(self) -> None:
        """Give each device its own dropout stream: the primary's key with the counter's high word moved by
        the device's place among all devices (the primary keeps its stream, so a checkpoint resumes it)."""
        base = hrandom.get_rng_state(self.replicas[0].device)
        for i, rep in enumerate(self.replicas):
            worker = self.first + i
            if worker:
                state = base.copy()
                state[3] = (int(state[3]) + worker) % 2**32
                hrandom.set_rng_state(rep.device, state)

    # -- the step --

    @property
    def model(self) -> Module:
        return self.replicas[0].model

    @property
    def optimizer(self) -> Optimizer:
        return self.replicas[0].optimizer

    @property
    def devices(self) -> list[Device]:
        return [r.device for r in self.replicas]

    def _shard(self, i: int, rep: Replica, x: np.ndarray, y: np.ndarray) -> None:
        t0 = time.perf_counter()
        try:
            rep.gradients(x, y)
        except ValueError:
            raise  # bad input (a label out of range): the user's error, not the device's
        except Exception as e:
            where = f"rank {self.comm.rank}: " if self.comm.size > 1 else ""
            raise DataParallelError(f"data parallel: {where}{rep.device.label} failed at step {self.steps + 1} "
                                    f"({type(e).__name__}: {e}); the run stops. Leave it out of --device, or "
                                    f"check it with `hetero devices`") from e
        rep.seconds = time.perf_counter() - t0

    def step(self, x: np.ndarray, y: np.ndarray) -> StepResult:
        """Train one global batch (host arrays; every rank passes the same one)."""
        x, y = np.asarray(x), np.asarray(y)
        n = len(x)
        sizes = self.balancer.split(n)
        if tuple(sizes) != self._last_sizes:  # a shard shape not traced yet somewhere (an epoch's last batch)
            self.slow_next = True
            self._last_sizes = tuple(sizes)
        bounds = np.cumsum([0] + sizes)
        local = [(i, rep, int(bounds[self.first + i]), int(bounds[self.first + i + 1]))
                 for i, rep in enumerate(self.replicas)]
        busy = [(i, rep, a, b) for i, rep, a, b in local if b > a]
        for _, rep, a, b in local:
            rep.seconds = 0.0
            if b == a:  # no shard (a batch smaller than the device count): its last update must be done
                rep.device.synchronize()  # before the buffer it copies from is summed into again
        if self._pool is None or len(busy) == 1:
            for i, rep, a, b in busy:
                self._shard(i, rep, x[a:b], y[a:b])
        else:
            for f in [self._pool.submit(self._shard, i, rep, x[a:b], y[a:b]) for i, rep, a, b in busy]:
                f.result()
        flat = self._flat[self._turn]
        self._turn ^= 1
        g = flat[:self.grad_size]
        extras = flat[self.grad_size:]
        g[:] = 0.0
        extras[:] = 0.0
        for i, rep, a, b in busy:  # a fixed order: every run sums the same way
            np.multiply(rep.host_grad, np.float32((b - a) / n), out=self._tmp)
            g += self._tmp
            extras[0] += float(rep.loss) * (b - a)
            extras[1] += np.count_nonzero(np.argmax(rep.output.reshape(b - a, -1), axis=1) == y[a:b].reshape(-1))
            extras[3 + self.first + i] = rep.seconds
        extras[2] = 1.0 if self.stop_requested else 0.0
        self.comm.timeout = max(self._timeout, SLOW_COLLECTIVE_TIMEOUT) if self.slow_next else self._timeout
        self.comm.allreduce_sum(flat)
        self.slow_next = False
        primary = self.optimizer
        for rep in self.replicas:
            if rep is not self.replicas[0]:
                rep.sync_hyperparameters_from(primary)
            rep.update(g)
        self.steps += 1
        seconds = tuple(float(s) for s in extras[3:])
        self.balancer.observe(sizes, seconds)
        return StepResult(float(extras[0]) / n if n else float("nan"), int(round(float(extras[1]))), n,
                          tuple(sizes), seconds, bool(extras[2] > 0))

    # -- staying identical --

    def expect_slow(self) -> None:
        """Let the next step's collective wait long: some ranks are about to do lengthy work of their own."""
        self.slow_next = True
        self.comm.timeout = max(self._timeout, SLOW_COLLECTIVE_TIMEOUT)

    def sync_buffers(self) -> None:
        """Give every device the primary's buffers (batch-norm running statistics) before evaluation or saving."""
        for rep in self.replicas[1:]:
            rep.copy_buffers_from(self.replicas[0])

    def check(self) -> str | None:
        """Compare every device's weights with the primary's (and every rank's with rank 0's); re-synchronise
        any that differ. Returns what was found and done, or None when all were identical."""
        sums = [rep.checksum() for rep in self.replicas]
        found = []
        for rep, s in zip(self.replicas[1:], sums[1:]):
            if s != sums[0]:
                diff = float(np.max(np.abs(np.concatenate([a.numpy().ravel() - b.numpy().ravel()
                                                           for a, b in zip(rep.params, self.replicas[0].params)]))))
                found.append(f"{rep.device.id} differed from {self.replicas[0].device.id} by up to {diff:.3g}")
                rep.copy_from(self.replicas[0])
        if self.comm.size > 1:
            ranks = self.comm.allgather(sums[0])
            odd = [r for r, s in enumerate(ranks) if s != ranks[0]]
            if odd:
                found.append(f"rank(s) {', '.join(map(str, odd))} differed from rank 0")
                self.broadcast_from_root()
        if not found:
            return None
        return ("weights drifted apart (float rounding differs between OpenCL implementations): "
                + "; ".join(found) + "; re-synchronised from the primary")

    def broadcast_from_root(self) -> None:
        """Every rank takes rank 0's weights, buffers and optimizer state (at start, and after a drift)."""
        primary = self.replicas[0]
        state = self.comm.bcast(({k: v.numpy() for k, v in primary.model.state_dict().items()},
                                 primary.optimizer.state_dict()) if self.comm.rank == 0 else None)
        if self.comm.rank != 0:
            primary.model.load_state_dict(state[0])
            primary.optimizer.load_state_dict(state[1])
        for rep in self.replicas[1:]:
            rep.copy_from(primary)

    def laggard(self, result: StepResult) -> str | None:
        """Which device holds every step back even with the smallest shard it can get (its fixed cost per step
        is more than twice the others' whole step), in words; None when none does."""
        if len(result.sizes) < 2:
            return None
        for i, (n, sec) in enumerate(zip(result.sizes, result.seconds)):
            others = max(s for j, s in enumerate(result.seconds) if j != i)
            if 0 < n <= self.balancer.granularity and sec > 2 * others > 0:
                return (f"{self.ids[i]} holds every step back: its {n}-image shard takes {1e3 * sec:.0f} ms while "
                        f"the other devices finish theirs in {1e3 * others:.0f} ms; the run would be faster "
                        f"without it")
        return None

    def shares(self) -> list[dict]:
        """Each device's share of the batch and its measured images/s, for progress lines and logs."""
        rates = self.balancer.rates
        return [{"device": i, "share": round(share, 4), "images_per_s": None if rate is None else round(rate, 1)}
                for i, share, rate in zip(self.ids, self.balancer.shares, rates)]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
