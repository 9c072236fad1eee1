"""Training checkpoints: everything that resumes a run bit-identically, and the recipe that rebuilds it."""

from __future__ import annotations

import copy
import math
import os

import numpy as np

from .. import random as hrandom
from ..checkpoint import CheckpointError, load_training, save_training
from ..nn.module import model_device
from ..recipe import TrainingRecipe, continue_run


def save_checkpoint(path: str | os.PathLike, model, optimizer, epoch: int, step: int, scheduler=None,
                    extra: dict | None = None, recipe: TrainingRecipe | None = None) -> None:
    """Write weights, optimizer, device RNG and scheduler state, the epoch to continue at and the steps done,
    with `recipe` (how to rebuild the run) and `extra` (JSON-like values)."""
    rng = hrandom.get_rng_state(model_device(model, "checkpoint"))
    stored = dict(extra or {})
    if recipe is not None:
        stored = {**recipe.legacy_extra(), **stored}  # hetero versions before recipes read these keys
    save_training(path, model, optimizer, epoch, step, rng_state=rng, extra=stored, scheduler=scheduler,
                  recipe=None if recipe is None else recipe.to_dict())


def load_checkpoint(path: str | os.PathLike, model, optimizer=None, scheduler=None,
                    recipe: TrainingRecipe | None = None) -> dict:
    """Restore save_checkpoint's file into model (and optimizer, scheduler, device RNG), all or nothing; returns
    {"start_epoch", "start_step" (pass both to fit), "extra", "recipe" (a TrainingRecipe, or None in older files)}.

    With `recipe` (the run's, built into optimizer and scheduler) the optimizer takes the recipe's hyperparameters
    and the scheduler is put at the checkpoint's step, not given the file's schedule (recipe.continue_run).
    """
    return restore_checkpoint(path, load_training(path), model, optimizer, scheduler, recipe)


def restore_checkpoint(path: str | os.PathLike, ck: dict, model, optimizer=None, scheduler=None,
                       recipe: TrainingRecipe | None = None) -> dict:
    """load_checkpoint for a file already read with hetero.checkpoint.load_training (`ck`); `path` names it
    in errors."""
    epoch, step = ck["epoch"], ck["step"]
    stored = TrainingRecipe.from_dict(ck["recipe"]) if ck.get("recipe") is not None else None
    check_state(path, model, ck)
    if optimizer is not None and ck["optimizer"] is not None:
        _check_groups(path, optimizer, ck["optimizer"]["param_groups"])
    if scheduler is not None and recipe is None and ck["scheduler"] is not None:
        _check_scheduler_state(path, scheduler, ck["scheduler"])
    dev = model_device(model, "checkpoint")
    rng = None if ck["rng_state"] is None else _check_rng_state(path, ck["rng_state"])
    # Each load_state_dict checks everything before it changes anything, but a later one can still refuse
    # after an earlier one succeeded: keep what was there and put it back on any failure.
    before_model = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    before_opt = optimizer.state_dict() if optimizer is not None else None
    before_sched = dict(scheduler.state_dict()) if scheduler is not None else None
    before_rng = hrandom.get_rng_state(dev)
    try:
        model.load_state_dict(ck["model"])
        if optimizer is not None and ck["optimizer"] is not None:
            optimizer.load_state_dict(ck["optimizer"])
        if recipe is not None and optimizer is not None:
            continue_run(recipe, optimizer, scheduler, step, epoch)
        elif scheduler is not None and ck["scheduler"] is not None:
            scheduler.load_state_dict(ck["scheduler"])
        if rng is not None:
            hrandom.set_rng_state(dev, rng)
    except BaseException:
        model.load_state_dict(before_model)
        if optimizer is not None:
            optimizer.load_state_dict(before_opt)
        if scheduler is not None:
            scheduler.load_state_dict(before_sched)
        hrandom.set_rng_state(dev, before_rng)
        raise
    return {"start_epoch": epoch, "start_step": step, "extra": ck["extra"] or {}, "recipe": stored}


def check_state(path, model, ck: dict) -> None:
    """CheckpointError unless every stored weight has the shape and dtype of `model`'s (nothing is cast or
    reshaped), every optimizer state array the shape of its parameter and the device RNG and lr schedule states
    their form; checked before anything is loaded."""
    if ck.get("rng_state") is not None:
        _check_rng_state(path, ck["rng_state"])
    sched = ck.get("scheduler")
    if sched is not None and not (isinstance(sched, dict) and all(
            v is None or _number(v) or isinstance(v, bool) or (isinstance(v, list) and all(_number(x) for x in v))
            for v in sched.values())):  # the state of every hetero scheduler is numbers, flags and their lists
        raise CheckpointError(f"{path}: damaged training checkpoint: the lr schedule state {sched!r:.80} is not "
                              "a dict of numbers")
    own = model.state_dict()
    for name, value in ck["model"].items():
        mine = own.get(name)
        if mine is None:
            continue  # missing and unexpected keys: load_state_dict names them all
        if tuple(value.shape) != tuple(mine.shape) or np.dtype(value.dtype) != np.dtype(mine.dtype):
            raise CheckpointError(f"{path}: {name!r} is {value.dtype} {tuple(value.shape)} in the file, but the "
                                  f"{type(model).__name__} has {np.dtype(mine.dtype)} {tuple(mine.shape)}: the "
                                  "checkpoint holds another model (or another size of it)")
    opt = ck.get("optimizer")
    if opt is None:
        return
    params = list(model.parameters())
    order = [i for g in opt["param_groups"] for i in g.get("params", [])]
    if len(order) != len(params):
        return  # another layout of groups: the optimizer's load_state_dict checks it
    where = {index: params[k] for k, index in enumerate(order)}
    for index, entry in opt["state"].items():
        p = where.get(index)
        for name, value in entry.items():
            if p is None or name == "step" or np.ndim(value) == 0:
                continue
            if tuple(np.shape(value)) != tuple(p.shape):
                raise CheckpointError(f"{path}: optimizer state {index}.{name} is {tuple(np.shape(value))}, its "
                                      f"parameter {tuple(p.shape)}: a damaged checkpoint")


def _check_groups(path, optimizer, groups: list) -> None:
    """Each stored param group must carry every hyperparameter of the optimizer's, as numbers where it has them."""
    if len(groups) != len(optimizer.param_groups):
        return  # the optimizer's load_state_dict says how many it has
    for i, (saved, own) in enumerate(zip(groups, optimizer.param_groups)):
        missing = sorted(set(own) - set(saved) - {"initial_lr", "params"})
        if missing:
            raise CheckpointError(f"{path}: the stored optimizer's param group {i} lacks {', '.join(missing)}: "
                                  f"not a {type(optimizer).__name__}'s state, or a damaged one")
        for k, v in own.items():
            if k != "params" and _number(v) and k in saved and not _number(saved[k]):
                raise CheckpointError(f"{path}: the stored optimizer's {k} is {saved[k]!r:.40}, not a number")


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _same_kind(mine, stored) -> bool:
    if _number(mine):
        return _number(stored)
    if isinstance(mine, list):
        return isinstance(stored, list) and len(stored) == len(mine) and all(
            _same_kind(a, b) for a, b in zip(mine, stored))
    return isinstance(stored, type(mine))


def _check_scheduler_state(path, scheduler, state) -> None:
    """A stored scheduler state must have the fields of `scheduler`'s, with values of the same kinds."""
    own = scheduler.state_dict()
    if not isinstance(state, dict) or set(state) != set(own):
        keys = sorted(state) if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(f"{path}: the stored lr schedule ({keys}) is not a {type(scheduler).__name__}'s "
                              f"({sorted(own)})")
    for k, v in own.items():
        if not _same_kind(v, state[k]):
            raise CheckpointError(f"{path}: the stored lr schedule's {k!r} is {state[k]!r}, not like {v!r}")
    # values of the right kind can still make no schedule (T_max 0, an infinite lr): try them on a copy
    trial = copy.copy(scheduler)
    trial.__dict__ = {**scheduler.__dict__, **copy.deepcopy(state)}
    try:
        lrs = trial.get_lr()
    except (ArithmeticError, ValueError, TypeError) as e:
        raise CheckpointError(f"{path}: the stored lr schedule makes no learning rate ({type(e).__name__}: {e})"
                              ) from None
    if not all(_number(lr) and math.isfinite(lr) and lr >= 0 for lr in lrs):
        raise CheckpointError(f"{path}: the stored lr schedule gives learning rates {lrs!r:.80}")


def _check_rng_state(path, state) -> np.ndarray:
    arr = np.asarray(state)
    if arr.shape != (4,) or arr.dtype.kind not in "iu" or arr.min() < 0 or arr.max() >= 2**32:
        raise CheckpointError(f"{path}: damaged training checkpoint (rng_state {arr.tolist()!r:.60}; a device "
                              "generator state is 4 uint32 values)")
    return arr.astype(np.uint32)
