"""fit_parallel(): fit() for one model trained data-parallel over several devices (and MPI ranks)."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace

import numpy as np

from ..device import Device
from ..nn import functional as F
from ..recipe import TrainingRecipe
from ..tensor import Tensor
from ..train.control import TrainingControl
from ..train.events import Callback, StepEvent
from ..train.loop import FitOptions, History, _Fit
from .comm import Comm
from .trainer import DataParallel, StepResult

# steps between checks for a device too slow to help (the balancer has settled by then)
LAGGARD_CHECK_EVERY = 50


def _host(a) -> np.ndarray:
    return a.numpy() if isinstance(a, Tensor) else np.asarray(a)


class _ParallelFit(_Fit):
    """fit's loop with each step run by a DataParallel. Steps end with a host wait (the gradient reduction),
    so their results are known at once; rank 0 alone reports and saves."""

    def __init__(self, dp: DataParallel, scheduler, train_loader, test_loader, callbacks: Iterable[Callback],
                 control: TrainingControl | None, options: FitOptions):
        self.dp = dp
        self.comm = dp.comm
        root = self.comm.rank == 0
        if not root:
            callbacks, options = (), replace(options, checkpoint=None)
        self.user_control = control if control is not None else TrainingControl()
        # Under MPI a stop must happen at the same step on every rank: a local request is a vote carried by
        # the next step's reduction, and the loop sees it only once every rank has it.
        loop_control = self.user_control if self.comm.size == 1 else TrainingControl()
        super().__init__(dp.model, dp.optimizer, scheduler, train_loader, test_loader, callbacks, loop_control,
                         options)
        self.results: list[tuple[tuple[int, int, int], StepResult]] = []
        self.warned_laggard = False

    def run_step(self, x, y) -> None:
        if self.comm.size > 1 and self.user_control.stopped:
            self.dp.stop_requested = True
        self.in_step = True
        result = self.dp.step(_host(x), _host(y))
        self.in_step = False
        self.step += 1
        self.epoch_steps += 1
        self.rate.append((time.perf_counter(), result.images))
        self.results.append(((self.step, self.epoch, self.batch), result))
        if result.stop and not self.control.stopped:
            self.control.stop()
        if self.scheduler_per_step:
            self.scheduler.step()

    def consume(self, drain: bool = False) -> None:
        for (step, epoch, batch), r in self.results:
            if self.diverged is not None:
                continue
            if not math.isfinite(r.loss):
                lrs = ", ".join(f"{g['lr']:g}" for g in self.optimizer.param_groups)
                self.diverged = (f"the loss became {r.loss} at step {step} (epoch {epoch + 1}, batch {batch + 1} "
                                 f"of {self.batches}); training stopped. Try a lower learning rate (lr is now "
                                 f"{lrs}).")
                continue
            if not self.warned_laggard and step % LAGGARD_CHECK_EVERY == 0:
                advice = self.dp.laggard(r)
                if advice:
                    self.log(advice, "warning")
                    self.warned_laggard = True
            self.sums[0] += r.loss * r.images
            self.sums[1] += r.correct
            self.sums[2] += r.images
            if step % self.log_every == 0 or batch == self.batches - 1:
                self.emit(StepEvent(step, epoch, batch, self.batches, r.loss,
                                    r.correct / r.images if r.images else 0.0, self.images_per_s(),
                                    time.perf_counter() - self.t0, devices=self.dp.shares()))
        self.results.clear()

    def images_per_s(self) -> float:
        if len(self.rate) < 2:
            return 0.0
        span = self.rate[-1][0] - self.rate[0][0]
        return sum(n for _, n in list(self.rate)[1:]) / span if span > 0 else 0.0

    def end_epoch(self, seconds_from: float) -> None:
        self.dp.expect_slow()  # evaluation, then rank 0 alone saves
        self.dp.sync_buffers()
        drift = self.dp.check()
        if drift:
            self.log(drift, "warning")
        super().end_epoch(seconds_from)

    def save(self, reason: str) -> None:
        self.dp.expect_slow()
        self.dp.sync_buffers()
        extra = dict(self.options.checkpoint_extra or {})
        extra["data_parallel"] = {"devices": self.dp.labels, "shares": list(self.dp.balancer.shares)}
        self.options = replace(self.options, checkpoint_extra=extra)
        super().save(reason)


def fit_parallel(model, optimizer, devices: Sequence[Device | str | int] | DataParallel, train_loader,
                 test_loader=None, epochs: int = 1,
                 loss_fn: Callable[[Tensor, Tensor], Tensor] = F.cross_entropy, callbacks: Iterable[Callback] = (),
                 control: TrainingControl | None = None, max_steps: int | None = None, start_epoch: int = 0,
                 start_step: int = 0, scheduler=None, scheduler_interval: str = "epoch",
                 checkpoint: str | os.PathLike | None = None, checkpoint_extra: dict | None = None,
                 checkpoint_epochs: bool = True, log_every: int = 1, recipe: TrainingRecipe | None = None,
                 balance: str = "throughput", comm: Comm | None = None,
                 shares: Sequence[float] | None = None) -> History:
    """fit() over several devices: `model` and `optimizer` are on the first device and are copied to the
    others (or pass a DataParallel as `devices`); the loaders yield global batches as host arrays.

    balance: "throughput" (shares follow each device's measured images/s) or "equal"; comm: an MPI
    communicator from hetero.parallel.world() to train across processes. Returns fit's History."""
    options = FitOptions(epochs=epochs, loss_fn=loss_fn, max_steps=max_steps, start_epoch=start_epoch,
                         start_step=start_step, scheduler_interval=scheduler_interval, checkpoint=checkpoint,
                         checkpoint_extra=checkpoint_extra, checkpoint_epochs=checkpoint_epochs, recipe=recipe,
                         log_every=log_every, readback_lag=0)
    own = not isinstance(devices, DataParallel)
    dp = DataParallel(model, optimizer, devices, loss_fn=loss_fn, balance=balance, comm=comm,
                      batch_size=getattr(train_loader, "batch_size", None), shares=shares) if own else devices
    try:
        return _ParallelFit(dp, scheduler, train_loader, test_loader, callbacks, control, options).run()
    finally:
        if own:
            dp.close()
