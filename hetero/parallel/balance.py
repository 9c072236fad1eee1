"""How a global batch is split across data-parallel workers: in proportion to each one's measured throughput,
re-balanced when the measurements drift far enough to pay."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from .. import validate

MODES = ("throughput", "equal")

_OP = "Balancer"
_STATE_KEYS = ("workers", "mode", "granularity", "every", "tolerance", "smoothing", "shares", "rates", "steps",
               "batch")


def _as_list(op: str, name: str, values: Any) -> list:
    if isinstance(values, (str, bytes, Mapping)) or not hasattr(values, "__len__"):
        raise ValueError(f"{op}: {name} must be a sequence, got {values!r}")
    return list(values)


def _apportion(total: int, shares: Sequence[float], minimum: int) -> list[int]:
    """total split by largest remainders of shares[i] * total, each part >= minimum (total >= minimum * parts).
    Ties go to the larger share, then the lower index, so the result depends on the shares alone."""
    quotas = [s * total for s in shares]
    parts = [max(minimum, math.floor(q)) for q in quotas]
    order = range(len(parts))
    while sum(parts) < total:
        i = max(order, key=lambda k: (quotas[k] - parts[k], shares[k], -k))
        parts[i] += 1
    while sum(parts) > total:  # only after minimums raised some parts; take back from the slowest that has spare
        i = max((k for k in order if parts[k] > minimum), key=lambda k: (parts[k] - quotas[k], -shares[k], k))
        parts[i] -= 1
    return parts


class Balancer:
    """Shares of the global batch, one per worker (a device, possibly on another MPI rank), kept in proportion to
    the workers' smoothed images/s; mode "equal" keeps equal shares whatever is measured."""

    def __init__(self, workers: int, mode: str = "throughput", granularity: int = 1, every: int = 10,
                 tolerance: float = 0.05, smoothing: float = 0.3, weights: Sequence[float] | None = None):
        self.workers = validate.positive_int(_OP, "workers", workers)
        if mode not in MODES:
            raise ValueError(f"{_OP}: mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.mode = mode
        self.granularity = validate.positive_int(_OP, "granularity", granularity)
        self.every = validate.positive_int(_OP, "every", every)
        self.tolerance = validate.finite(_OP, "tolerance", tolerance)
        if not 0.0 <= self.tolerance < 1.0:
            raise ValueError(f"{_OP}: tolerance (the relative step-time gain a new split must bring) must be in "
                             f"[0, 1), got {tolerance!r}")
        self.smoothing = validate.finite(_OP, "smoothing", smoothing)
        if not 0.0 < self.smoothing <= 1.0:
            raise ValueError(f"{_OP}: smoothing (the weight of the newest rate measurement) must be in (0, 1], "
                             f"got {smoothing!r}")
        if weights is None:
            self._shares = (1.0 / self.workers,) * self.workers
        else:
            if mode == "equal":
                raise ValueError(f"{_OP}: weights set shares, which mode 'equal' never uses; leave weights out or "
                                 "use mode 'throughput'")
            self._shares = self._normalise(weights)
        self._rates: list[float | None] = [None] * self.workers
        self._steps = 0  # observed steps since the last proposal
        self._batch = 0  # the largest batch observed: the normal one, that proposals are judged on

    def _normalise(self, weights: Any) -> tuple[float, ...]:
        values = _as_list(_OP, "weights", weights)
        if len(values) != self.workers:
            raise ValueError(f"{_OP}: weights must have one entry per worker ({self.workers}), got {len(values)}")
        floats = [validate.finite(_OP, f"weights[{i}]", v) for i, v in enumerate(values)]
        bad = [f"weights[{i}]={v!r}" for i, v in enumerate(floats) if v <= 0]
        if bad:
            raise ValueError(f"{_OP}: weights must be > 0 (a worker with no share gets no gradient), got "
                             f"{', '.join(bad)}")
        total = sum(floats)
        return tuple(v / total for v in floats)

    @property
    def shares(self) -> tuple[float, ...]:
        """The current fraction of a batch each worker gets, summing to 1."""
        return self._shares

    @property
    def rates(self) -> tuple[float | None, ...]:
        """Each worker's smoothed images/s, None until it has been measured."""
        return tuple(self._rates)

    def _fastest(self, shares: Sequence[float]) -> int:
        return max(range(self.workers), key=lambda k: (shares[k], -k))

    def _split(self, batch: int, shares: Sequence[float]) -> list[int]:
        units, rest = divmod(batch, self.granularity)
        if units >= self.workers:
            sizes = [u * self.granularity for u in _apportion(units, shares, 1)]
            sizes[self._fastest(shares)] += rest
            return sizes
        # too few whole units for every worker: granularity gives way to "everyone gets an image"
        return _apportion(batch, shares, 1 if batch >= self.workers else 0)

    def split(self, batch: int) -> list[int]:
        """Shard sizes summing to batch, from the shares alone (every rank computes the same): multiples of
        granularity but the fastest's, which takes the remainder; >= 1 each, but 0 for some when batch < workers."""
        return self._split(validate.positive_int(f"{_OP}.split", "batch", batch), self._shares)

    def _step_time(self, batch: int, shares: Sequence[float]) -> float:
        sizes = self._split(batch, shares)
        return max(n / r for n, r in zip(sizes, self._rates))

    def observe(self, sizes: Sequence[int], seconds: Sequence[float]) -> bool:
        """Record one step: the images each worker ran and the seconds they took (a 0-image or <= 0-second
        entry is skipped). Returns True when this step adopted new shares."""
        op = f"{_OP}.observe"
        sizes = _as_list(op, "sizes", sizes)
        seconds = _as_list(op, "seconds", seconds)
        for name, values in (("sizes", sizes), ("seconds", seconds)):
            if len(values) != self.workers:
                raise ValueError(f"{op}: {name} must have one entry per worker ({self.workers}), got {len(values)}")
        counts = [validate.int_at_least(op, f"sizes[{i}]", n, 0) for i, n in enumerate(sizes)]
        times = [validate.finite(op, f"seconds[{i}]", t) for i, t in enumerate(seconds)]
        measured = False
        for i, (n, t) in enumerate(zip(counts, times)):
            if n == 0 or t <= 0.0:
                continue
            rate, old = n / t, self._rates[i]
            self._rates[i] = rate if old is None else (1.0 - self.smoothing) * old + self.smoothing * rate
            measured = True
        if not measured:
            return False
        self._steps += 1
        self._batch = max(self._batch, sum(counts))
        if self.mode == "equal" or self._steps < self.every or any(r is None for r in self._rates):
            return False
        self._steps = 0
        total = sum(self._rates)
        proposal = tuple(r / total for r in self._rates)
        current = self._step_time(self._batch, self._shares)
        # adopt only a clear gain, so measurement noise does not make the split (and the shard shapes) oscillate
        if (current - self._step_time(self._batch, proposal)) / current <= self.tolerance:
            return False
        self._shares = proposal
        return True

    def state(self) -> dict:
        """The settings, shares and measurements as JSON-able values, for from_state on a resumed run."""
        return {"workers": self.workers, "mode": self.mode, "granularity": self.granularity, "every": self.every,
                "tolerance": self.tolerance, "smoothing": self.smoothing, "shares": list(self._shares),
                "rates": list(self._rates), "steps": self._steps, "batch": self._batch}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Balancer:
        """A Balancer that continues where the one whose state() this is stopped."""
        op = f"{_OP}.from_state"
        if not isinstance(state, Mapping):
            raise ValueError(f"{op}: state must be a dict from Balancer.state(), got {type(state).__name__}")
        missing = [k for k in _STATE_KEYS if k not in state]
        if missing:
            raise ValueError(f"{op}: state lacks {', '.join(missing)}")
        equal = state["mode"] == "equal"
        out = cls(state["workers"], state["mode"], state["granularity"], state["every"], state["tolerance"],
                  state["smoothing"], weights=None if equal else state["shares"])
        rates = _as_list(op, "rates", state["rates"])
        if len(rates) != out.workers:
            raise ValueError(f"{op}: rates must have one entry per worker ({out.workers}), got {len(rates)}")
        for i, r in enumerate(rates):
            if r is not None and not validate.finite(op, f"rates[{i}]", r) > 0:
                raise ValueError(f"{op}: rates[{i}] must be None or > 0, got {r!r}")
        out._rates = [None if r is None else float(r) for r in rates]
        out._steps = validate.int_at_least(op, "steps", state["steps"], 0)
        out._batch = validate.int_at_least(op, "batch", state["batch"], 0)
        return out

    def __repr__(self) -> str:
        shares = ", ".join(f"{s:.3f}" for s in self._shares)
        return f"Balancer(workers={self.workers}, mode={self.mode!r}, shares=({shares}))"
