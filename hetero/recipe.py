"""The training recipe: how a run is trained, as one typed, versioned value that checkpoints store.

`hetero train`, `hetero eval`, the desktop app and checkpoints all describe a run with a `TrainingRecipe`,
and the builders here turn one into the model, optimizer, learning-rate schedule and data loaders, so every
front end builds the same run from the same recipe. `recipe_from_checkpoint` also reads checkpoints written
before recipes existed (their settings lie loose in the checkpoint's `extra` dict).
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, ClassVar

from .data.datasets import DATASETS
from .data.folder import FolderError, FolderSpec
from .errors import HeteroError
from .models import SMALL_IMAGE_MODELS, get_model, small_image_kwargs

if TYPE_CHECKING:
    from .data import DataLoader
    from .data.datasets import ArrayDataset
    from .nn.module import Module
    from .optim import LRScheduler, Optimizer

RECIPE_VERSION = 1
MODEL_NAMES = tuple(SMALL_IMAGE_MODELS)
DATASET_NAMES = tuple(DATASETS)
FOLDER_DATASET = "folder"  # an image folder; the recipe's data_folder (a FolderSpec dict) says how it was read
# LeNet-5 and the MNIST AlexNet have fixed-size classifiers: they take only 1-channel 28x28 images.
FIXED_INPUT_MODELS = {"lenet5": (1, 28, 28), "alexnet_mnist": (1, 28, 28)}
OPTIMIZER_NAMES = ("sgd", "adam", "adamw", "adagrad", "rmsprop")
LR_SCHEDULES = ("cosine", "constant")
# The cosine schedule moves every step rather than every epoch: the lr falls smoothly within an epoch, and a
# run resumed mid-epoch continues the schedule exactly where it stopped.
SCHEDULER_INTERVAL = "step"
# Seeds fit an int64: the device generators take uint64 keys, and every JSON reader of a recipe an int64.
MAX_SEED = 2**63 - 1
_MAX_KWARG = 65536  # model arguments are class and channel counts, sizes and rates

# Learning rates that train each model well with the default cosine schedule and batch 64 (chosen on MNIST).
_SGD_LR = {"lenet5": 0.02, "alexnet_mnist": 0.01, "resnet18": 0.05, "preact_resnet18": 0.05, "mobilenet_v1": 0.05}
_ADAM_LR = {"lenet5": 2e-3}
_OTHER_LR = {"adam": 1e-3, "adamw": 1e-3, "adagrad": 1e-2, "rmsprop": 1e-3}


class RecipeError(HeteroError, ValueError):
    """A training recipe that cannot be used; the message names the field and the values it may take."""


def seed_everything(seed: int) -> None:
    """Seed the device random generators (dropout) and the weight initialisers; give loaders the same seed."""
    from . import random as hrandom
    from .nn import init

    hrandom.manual_seed(seed)
    init.manual_seed(seed)


def model_kwargs(name: str, num_classes: int = 10, in_channels: int = 1) -> dict:
    """The keyword arguments that build hetero.models.get_model(name) for small single-channel images."""
    return small_image_kwargs(name, num_classes, in_channels)


def default_lr(model: str, optimizer: str = "adam") -> float:
    """A learning rate that trains `model` well with `optimizer` (SGD with momentum 0.9 for "sgd")."""
    if optimizer == "sgd":
        return _SGD_LR.get(model, 0.01)
    if optimizer in ("adam", "adamw"):
        return _ADAM_LR.get(model, _OTHER_LR[optimizer])
    return _OTHER_LR[optimizer]


def make_optimizer(name: str, params: Iterable, lr: float, momentum: float = 0.9,
                   weight_decay: float = 0.0) -> Optimizer:
    """An optimizer by name; momentum applies to SGD and RMSprop."""
    from . import optim

    if name == "sgd":
        return optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "adam":
        return optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    if name == "adagrad":
        return optim.Adagrad(params, lr=lr, weight_decay=weight_decay)
    if name == "rmsprop":
        return optim.RMSprop(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZER_NAMES)}")


# ----- the recipe -----


@dataclass(frozen=True)
class TrainingRecipe:
    """Model, data set, optimizer, schedule and run length of a training run; checked when made, and
    complete: lr=None and model_kwargs=None are filled in from the model, optimizer and data set."""

    version: ClassVar[int] = RECIPE_VERSION
    model: str = "lenet5"
    dataset: str = "mnist"
    model_kwargs: Mapping[str, Any] | None = None
    optimizer: str = "adam"
    lr: float | None = None
    momentum: float = 0.9  # SGD and RMSprop
    weight_decay: float = 0.0
    lr_schedule: str = "cosine"  # one of LR_SCHEDULES
    epochs: int = 2
    max_steps: int | None = None  # optimizer steps in total, resumed runs included
    batch_size: int = 64
    eval_batch_size: int = 500
    seed: int = 0  # weights, dropout and the data order
    devices: str | None = None  # the device spec(s) it ran on (None: the default device)
    data_folder: Mapping[str, Any] | None = None  # dataset "folder": FolderSpec.to_dict() (to_dict omits None)

    def __post_init__(self) -> None:
        _choice("model", self.model, MODEL_NAMES)
        _choice("dataset", self.dataset, DATASET_NAMES + (FOLDER_DATASET,))
        folder = _folder(self.dataset, self.data_folder)
        _choice("optimizer", self.optimizer, OPTIMIZER_NAMES)
        _choice("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        for name, low in (("epochs", 1), ("batch_size", 1), ("eval_batch_size", 1), ("seed", 0)):
            _integer(name, getattr(self, name), low)
        if self.seed > MAX_SEED:
            raise RecipeError(f"training recipe: seed must be at most 2**63-1, got {self.seed}")
        if self.max_steps is not None:
            _integer("max_steps", self.max_steps, 0)
        if self.devices is not None and not isinstance(self.devices, str):
            raise RecipeError(f"training recipe: devices must be a device spec string or None, got "
                              f"{type(self.devices).__name__} {self.devices!r}")
        lr = default_lr(self.model, self.optimizer) if self.lr is None else self.lr
        # frozen: the derived values are set once, here, before anyone can see the recipe
        object.__setattr__(self, "lr", _number("lr", lr))
        object.__setattr__(self, "momentum", _number("momentum", self.momentum))
        object.__setattr__(self, "weight_decay", _number("weight_decay", self.weight_decay))
        kwargs = self.model_kwargs
        if folder is not None:
            object.__setattr__(self, "data_folder", folder.to_dict())
            if kwargs is None:
                kwargs = small_image_kwargs(self.model, len(folder.classes), in_channels=folder.channels)
            _check_folder_model(self.model, _kwargs(kwargs), folder)
        elif kwargs is None:
            kwargs = small_image_kwargs(self.model, len(DATASETS[self.dataset].CLASSES), in_channels=1)
        object.__setattr__(self, "model_kwargs", _kwargs(kwargs))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict with every field and "version"; from_dict reads it back."""
        out: dict[str, Any] = {"version": self.version}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "data_folder" and value is None:
                continue  # recipes of the IDX data sets stay readable by hetero versions before image folders
            out[f.name] = dict(value) if f.name in ("model_kwargs", "data_folder") else value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainingRecipe:
        """The recipe to_dict() wrote; RecipeError naming the field for a bad version, name, key or type."""
        if not isinstance(data, Mapping):
            raise RecipeError(f"a training recipe is a dict, got {type(data).__name__}")
        version = data.get("version")
        if version is None:
            raise RecipeError(f"training recipe: 'version' is missing (this hetero reads version {RECIPE_VERSION})")
        if isinstance(version, bool) or version != RECIPE_VERSION:
            raise RecipeError(f"training recipe: version {version!r} is not supported; this hetero reads version "
                              f"{RECIPE_VERSION}")
        known = [f.name for f in fields(cls)]
        unknown = sorted(str(k) for k in data if k != "version" and k not in known)
        if unknown:
            raise RecipeError(f"training recipe: unknown field(s) {', '.join(unknown)}; the fields are "
                              f"{', '.join(known)}")
        return cls(**{k: v for k, v in data.items() if k != "version"})

    def replace(self, **changes: Any) -> TrainingRecipe:
        """A copy with `changes`; lr and model_kwargs follow a new model, optimizer or data set unless given."""
        def changed(names: Iterable[str]) -> bool:
            return any(n in changes and changes[n] != getattr(self, n) for n in names)

        if "lr" not in changes and changed(("model", "optimizer")):
            changes["lr"] = None
        if "model_kwargs" not in changes and changed(("model", "dataset", "data_folder")):
            changes["model_kwargs"] = None
        if "data_folder" not in changes and changes.get("dataset", FOLDER_DATASET) != FOLDER_DATASET:
            changes["data_folder"] = None  # an IDX data set reads no folder
        return dataclasses.replace(self, **changes)

    @property
    def folder(self) -> FolderSpec | None:
        """The image folder the run trains on (dataset "folder"), else None."""
        return None if self.data_folder is None else FolderSpec.from_dict(self.data_folder)

    def total_steps(self, steps_per_epoch: int) -> int:
        """Optimizer steps the whole run takes: every epoch, cut at max_steps."""
        total = self.epochs * int(steps_per_epoch)
        return min(total, self.max_steps) if self.max_steps else total

    def schedule_steps(self, steps_per_epoch: int) -> int:
        """The length of the lr schedule: every epoch. max_steps only stops the run, so a run stopped there
        and resumed with a larger max_steps follows the same schedule as one that ran straight through."""
        return max(1, self.epochs * int(steps_per_epoch))

    def legacy_extra(self) -> dict[str, Any]:
        """The settings in the loose `extra` layout, so hetero versions from before recipes read new checkpoints."""
        return {"model": self.model, "model_kwargs": dict(self.model_kwargs), "dataset": self.dataset,
                "optimizer": self.optimizer, "lr": self.lr, "batch_size": self.batch_size, "seed": self.seed,
                "epochs": self.epochs, "lr_schedule": self.lr_schedule}


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if not isinstance(value, str) or value not in allowed:
        raise RecipeError(f"training recipe: {name} {value!r} is unknown; choose one of {', '.join(allowed)}")


def _integer(name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RecipeError(f"training recipe: {name} must be an integer, got {type(value).__name__} {value!r}")
    if value < low:
        raise RecipeError(f"training recipe: {name} must be at least {low}, got {value}")


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RecipeError(f"training recipe: {name} must be a number, got {type(value).__name__} {value!r}")
    if not (value >= 0 and math.isfinite(value)):  # also rejects NaN
        raise RecipeError(f"training recipe: {name} must be a finite non-negative number, got {value}")
    return float(value)


def _folder(dataset: str, data_folder: Any) -> FolderSpec | None:
    if dataset != FOLDER_DATASET:
        if data_folder is not None:
            raise RecipeError(f"training recipe: data_folder is only for dataset {FOLDER_DATASET!r}, not {dataset!r}")
        return None
    if data_folder is None:
        raise RecipeError(f"training recipe: dataset {FOLDER_DATASET!r} needs data_folder (how the folder is read: "
                          "hetero.data.FolderSpec(...).to_dict())")
    try:
        return data_folder if isinstance(data_folder, FolderSpec) else FolderSpec.from_dict(data_folder)
    except (FolderError, TypeError) as e:
        raise RecipeError(f"training recipe: data_folder: {e}") from None


def check_model_input(model: str, channels: int, image_size: tuple[int, int]) -> None:
    """RecipeError unless `model` takes images of `channels` x image_size (the fixed-size models do not all)."""
    fixed = FIXED_INPUT_MODELS.get(model)
    if fixed is not None and (channels, *image_size) != fixed:
        c, h, w = fixed
        others = ", ".join(m for m in MODEL_NAMES if m not in FIXED_INPUT_MODELS)
        raise RecipeError(f"{model} takes {c}-channel {h}x{w} images, but these are {channels}-channel "
                          f"{image_size[0]}x{image_size[1]}; convert them (--channels {c} --image-size {h} {w}) "
                          f"or choose a model that takes any size and channel count ({others})")


def _check_folder_model(model: str, kwargs: Mapping[str, Any], folder: FolderSpec) -> None:
    check_model_input(model, folder.channels, folder.image_size)
    if kwargs.get("num_classes", len(folder.classes)) != len(folder.classes):
        raise RecipeError(f"training recipe: model_kwargs num_classes {kwargs['num_classes']} but the data folder "
                          f"has {len(folder.classes)} classes")
    if kwargs.get("in_channels", folder.channels) != folder.channels:
        raise RecipeError(f"training recipe: model_kwargs in_channels {kwargs['in_channels']} but the data folder's "
                          f"images have {folder.channels}")


def _kwargs(value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise RecipeError(f"training recipe: model_kwargs must be a dict, got {type(value).__name__}")
    for k, v in value.items():
        if not isinstance(k, str) or k == "device":
            raise RecipeError(f"training recipe: model_kwargs key {k!r} is not allowed (string names of the "
                              "model's arguments; the device is not part of a recipe)")
        if v is not None and not isinstance(v, (bool, int, float, str)):
            raise RecipeError(f"training recipe: model_kwargs[{k!r}] must be a number, string, bool or None, "
                              f"got {type(v).__name__}")
        # recipes come from files: a huge class or channel count would allocate before anything fails
        if isinstance(v, (int, float)) and not isinstance(v, bool) and not abs(v) <= _MAX_KWARG:
            raise RecipeError(f"training recipe: model_kwargs[{k!r}] = {v} is out of range (at most "
                              f"{_MAX_KWARG} in magnitude)")
    return dict(value)


# ----- reading checkpoints -----

_LEGACY_KEYS = ("model", "dataset", "model_kwargs", "optimizer", "lr", "batch_size", "seed", "epochs", "lr_schedule")
_LEGACY_SCHEDULES = {"none": "constant"}  # the app wrote "none" for a constant learning rate


def recipe_from_checkpoint(ck: Mapping[str, Any]) -> TrainingRecipe:
    """The recipe of a hetero.checkpoint.load_training() result: its stored one, else read from its extra."""
    if ck.get("recipe") is not None:
        return TrainingRecipe.from_dict(ck["recipe"])
    return recipe_from_extra(ck.get("extra") or {}, ck.get("optimizer"))


def recipe_from_extra(extra: Mapping[str, Any], optimizer_state: Mapping | None = None) -> TrainingRecipe:
    """A recipe from the loose settings `hetero train` and the app kept in `extra` before recipes; what extra
    lacks comes from the optimizer state (lr, momentum, weight decay), else the defaults."""
    if "model" not in extra:
        raise RecipeError("the checkpoint does not say which model it holds (not written by hetero train or the app)")
    found = {k: extra[k] for k in _LEGACY_KEYS if extra.get(k) is not None}
    if "lr_schedule" in found:
        found["lr_schedule"] = _LEGACY_SCHEDULES.get(found["lr_schedule"], found["lr_schedule"])
    if isinstance(extra.get("device"), str):
        found["devices"] = extra["device"]
    groups = (optimizer_state or {}).get("param_groups") or [{}]
    group = groups[0]
    if "lr" not in found and ("initial_lr" in group or "lr" in group):
        found["lr"] = group.get("initial_lr", group.get("lr"))  # initial_lr: the schedule's starting point
    for name in ("momentum", "weight_decay"):
        if name in group:
            found[name] = group[name]
    return TrainingRecipe(**found)


# ----- builders -----


def build_model(recipe: TrainingRecipe, device) -> Module:
    """The recipe's model on `device`, its weights drawn from the recipe's seed (which also seeds dropout)."""
    seed_everything(recipe.seed)
    try:
        return get_model(recipe.model, device=device, **recipe.model_kwargs)
    except (TypeError, ValueError) as e:  # model_kwargs come from files: a bad one is the file's fault
        raise RecipeError(f"training recipe: model_kwargs {dict(recipe.model_kwargs)} do not build a "
                          f"{recipe.model}: {e}") from None


def build_optimizer(recipe: TrainingRecipe, params: Iterable) -> Optimizer:
    """The recipe's optimizer over `params`, with its lr, momentum and weight decay."""
    return make_optimizer(recipe.optimizer, params, recipe.lr, recipe.momentum, recipe.weight_decay)


def build_scheduler(recipe: TrainingRecipe, optimizer: Optimizer, steps_per_epoch: int) -> LRScheduler | None:
    """The recipe's lr schedule (None for "constant"); fit steps it every SCHEDULER_INTERVAL."""
    from .optim import CosineAnnealingLR

    if recipe.lr_schedule == "constant":
        return None
    return CosineAnnealingLR(optimizer, T_max=recipe.schedule_steps(steps_per_epoch))


def continue_run(recipe: TrainingRecipe, optimizer: Optimizer, scheduler: LRScheduler | None, step: int,
                 epoch: int = 0) -> None:
    """Set a restored optimizer's hyperparameters from `recipe` and put `scheduler` (built from `recipe`) at
    `step`: a resumed run trains with the recipe's lr, momentum and weight decay on the recipe's schedule,
    which is what a run started with that recipe would use at that step."""
    for group in optimizer.param_groups:
        group["lr"] = recipe.lr
        if scheduler is not None:  # the schedule's starting point, which only a scheduler sets
            group["initial_lr"] = recipe.lr
        else:
            group.pop("initial_lr", None)
        if "momentum" in group and recipe.optimizer in ("sgd", "rmsprop"):
            group["momentum"] = recipe.momentum
        if "weight_decay" in group:
            group["weight_decay"] = recipe.weight_decay
    if scheduler is None:
        return
    scheduler.base_lrs = [recipe.lr] * len(optimizer.param_groups)
    # step() advances last_epoch by one and sets each group's lr from the closed form, exactly as the
    # straight run's step() did when it reached this position
    scheduler.last_epoch = (step if SCHEDULER_INTERVAL == "step" else epoch) - 1
    scheduler.step()


def build_dataset(recipe: TrainingRecipe, data_dir: str | os.PathLike | None = None,
                  train: bool = True) -> ArrayDataset:
    """The recipe's training (or test) data set, looked for in data_dir first (hetero.data.get_dataset); an
    image folder is read again as its recipe says, from data_dir when given (the folder moved)."""
    from .data import get_dataset
    from .data.folder import DecodeProgress, load_folder_split

    if recipe.folder is not None:
        return load_folder_split(recipe.folder, train, root=data_dir, progress=DecodeProgress())
    return get_dataset(recipe.dataset, root=data_dir, train=train)


def build_datasets(recipe: TrainingRecipe, data_dir: str | os.PathLike | None = None
                   ) -> tuple[ArrayDataset, ArrayDataset | None]:
    """(training set, test set) as build_dataset makes them; the test set is None for an image folder that
    held none out (test fraction 0)."""
    folder = recipe.folder
    held_out = folder is None or folder.layout == "folders" or folder.test_fraction > 0
    train = build_dataset(recipe, data_dir, train=True)
    return train, build_dataset(recipe, data_dir, train=False) if held_out else None


def build_loaders(recipe: TrainingRecipe, device, train_set: ArrayDataset | None = None,
                  test_set: ArrayDataset | None = None) -> tuple[DataLoader | None, DataLoader | None]:
    """(training loader, test loader), None for a set not given; the training one shuffles with the seed."""
    from .data import DataLoader

    train = None if train_set is None else DataLoader(train_set, recipe.batch_size, shuffle=True,
                                                      seed=recipe.seed, device=device)
    test = None if test_set is None else DataLoader(test_set, recipe.eval_batch_size, device=device)
    return train, test


__all__ = [
    "DATASET_NAMES",
    "FIXED_INPUT_MODELS",
    "FOLDER_DATASET",
    "LR_SCHEDULES",
    "MAX_SEED",
    "MODEL_NAMES",
    "OPTIMIZER_NAMES",
    "RECIPE_VERSION",
    "SCHEDULER_INTERVAL",
    "RecipeError",
    "TrainingRecipe",
    "build_dataset",
    "build_datasets",
    "build_loaders",
    "build_model",
    "build_optimizer",
    "build_scheduler",
    "check_model_input",
    "continue_run",
    "default_lr",
    "make_optimizer",
    "model_kwargs",
    "recipe_from_checkpoint",
    "recipe_from_extra",
    "seed_everything",
]
