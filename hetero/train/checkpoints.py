"""Training checkpoints: everything that resumes a run bit-identically, and the recipe that rebuilds it."""

from __future__ import annotations

import os

from .. import random as hrandom
from ..checkpoint import load_training, save_training
from ..nn.module import model_device
from ..recipe import TrainingRecipe


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


def load_checkpoint(path: str | os.PathLike, model, optimizer=None, scheduler=None) -> dict:
    """Restore save_checkpoint's file into model (and optimizer, scheduler, device RNG); returns {"start_epoch",
    "start_step" (pass both to fit), "extra", "recipe" (a TrainingRecipe, or None in older files)}."""
    ck = load_training(path)
    model.load_state_dict(ck["model"])
    if optimizer is not None and ck["optimizer"] is not None:
        optimizer.load_state_dict(ck["optimizer"])
    if scheduler is not None and ck["scheduler"] is not None:
        scheduler.load_state_dict(ck["scheduler"])
    if ck["rng_state"] is not None:
        hrandom.set_rng_state(model_device(model, "checkpoint"), ck["rng_state"])
    recipe = TrainingRecipe.from_dict(ck["recipe"]) if ck.get("recipe") is not None else None
    return {"start_epoch": ck["epoch"], "start_step": ck["step"], "extra": ck["extra"] or {}, "recipe": recipe}
