"""The data-parallel figure: one model trained over the whole set of benchmarked devices.

Measured with hetero.parallel.DataParallel on the same random batches as the per-device model figures
(SGD with momentum), after enough steps for the throughput balancer to settle; each device's share of
the batch is reported beside the set's images/s, so it reads against each device's own train figure.
"""

from __future__ import annotations

from collections.abc import Sequence

from .. import optim
from ..device import Device
from ..models import get_model
from ..parallel import DataParallel, DataParallelError, check_devices
from .models import MODEL_KWARGS, NUM_CLASSES, batch_data, batch_size_for
from .timing import Settings, rate, sample

# steps run before timing: the balancer re-splits every REBALANCE_EVERY steps, until the split pays no more
SETTLE_STEPS = 30
REBALANCE_EVERY = 5


def set_name(devs: Sequence[Device]) -> str:
    """The report's column for the set: its device ids joined by '+'."""
    return "+".join(d.id for d in devs)


def usable_set(devs: Sequence[Device]) -> tuple[list[Device], str]:
    """(the devices to train on together, why not when empty): two or more that do not overlap."""
    if len(devs) < 2:
        return [], "needs two or more devices"
    try:
        check_devices(devs)
    except DataParallelError as e:
        return [], str(e)
    return list(devs), ""


def metrics(devs: Sequence[Device]) -> list[tuple[str, str]]:
    return [("train", "img/s")] + [(f"share {d.id}", "%") for d in devs]


def measure(devs: Sequence[Device], name: str, settings: Settings, out: dict) -> None:
    """Fill out["train"] (images/s of the set) and out["share <id>"] (percent of each batch per device)."""
    batch = batch_size_for(name, settings)
    model = get_model(name, num_classes=NUM_CLASSES, device=devs[0], **MODEL_KWARGS[name])
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    dp = DataParallel(model, opt, devs, batch_size=batch, rebalance_every=REBALANCE_EVERY)
    x, y = batch_data(batch)
    try:
        for _ in range(SETTLE_STEPS):
            dp.step(x, y)
        out["train"] = rate(batch, sample(lambda: dp.step(x, y), None, settings))
        for d, share in zip(devs, dp.balancer.shares):
            out[f"share {d.id}"] = (100.0 * share, None)
    finally:
        dp.close()
