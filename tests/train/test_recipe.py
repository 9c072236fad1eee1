"""hetero.recipe: the training recipe's round trip, validation, the reader of older checkpoints, the builders."""

from __future__ import annotations

import json

import numpy as np
import pytest

import hetero
from hetero import recipe as R
from hetero.checkpoint import load_training
from hetero.cli import main
from hetero.recipe import RecipeError, TrainingRecipe

from .tiny_idx import write_tiny_mnist


def test_defaults_are_filled_in_and_round_trip():
    r = TrainingRecipe()
    assert r.model == "lenet5" and r.optimizer == "adam" and r.lr == R.default_lr("lenet5", "adam")
    assert r.model_kwargs == {"num_classes": 10} and r.lr_schedule == "cosine"
    d = r.to_dict()
    assert d["version"] == R.RECIPE_VERSION
    assert TrainingRecipe.from_dict(json.loads(json.dumps(d))) == r

    other = TrainingRecipe(model="resnet18", dataset="fashion-mnist", optimizer="sgd", momentum=0.8,
                           weight_decay=5e-4, lr_schedule="constant", epochs=3, max_steps=100, batch_size=32,
                           eval_batch_size=250, seed=7, devices="cpu/2")
    assert other.model_kwargs == {"num_classes": 10, "in_channels": 1, "small_input": True}
    assert other.lr == R.default_lr("resnet18", "sgd")
    assert TrainingRecipe.from_dict(json.loads(json.dumps(other.to_dict()))) == other


def test_replace_follows_a_new_model_or_optimizer_unless_told():
    r = TrainingRecipe()
    sgd = r.replace(optimizer="sgd")
    assert sgd.lr == R.default_lr("lenet5", "sgd")
    assert r.replace(optimizer="sgd", lr=0.5).lr == 0.5
    assert r.replace(seed=3).lr == r.lr  # nothing that sets the lr changed
    res = r.replace(model="resnet18")
    assert res.model_kwargs["small_input"] is True
    assert r.replace(model="resnet18", model_kwargs={"num_classes": 4}).model_kwargs == {"num_classes": 4}


@pytest.mark.parametrize("change, words", [
    ({"version": 2}, ["version 2", "reads version 1"]),
    ({"version": None}, ["'version' is missing"]),
    ({"model": "vgg"}, ["model 'vgg'", "lenet5", "mobilenet_v1"]),
    ({"dataset": "cifar10"}, ["dataset 'cifar10'", "mnist", "fashion-mnist"]),
    ({"optimizer": "lamb"}, ["optimizer 'lamb'", "sgd", "rmsprop"]),
    ({"lr_schedule": "none"}, ["lr_schedule 'none'", "cosine", "constant"]),
    ({"epochs": "2"}, ["epochs must be an integer", "str"]),
    ({"epochs": 0}, ["epochs must be at least 1"]),
    ({"batch_size": True}, ["batch_size must be an integer"]),
    ({"lr": "fast"}, ["lr must be a number"]),
    ({"lr": float("nan")}, ["lr must be a finite non-negative number"]),
    ({"lr": float("inf")}, ["lr must be a finite non-negative number"]),
    ({"seed": 2**64}, ["seed must be at most 2**63-1"]),
    ({"model_kwargs": {"num_classes": 10**9}}, ["out of range"]),
    ({"model_kwargs": [1, 2]}, ["model_kwargs must be a dict"]),
    ({"model_kwargs": {"device": "cpu"}}, ["model_kwargs key 'device'"]),
    ({"devices": 3}, ["devices must be a device spec"]),
    ({"colour": "red"}, ["unknown field(s) colour", "batch_size"]),
])
def test_from_dict_names_the_bad_field(change, words):
    d = TrainingRecipe().to_dict()
    d.update(change)
    if change.get("version", 1) is None:
        del d["version"]
    with pytest.raises(RecipeError) as e:
        TrainingRecipe.from_dict(d)
    for w in words:
        assert w in str(e.value)
    assert isinstance(e.value, ValueError) and isinstance(e.value, hetero.HeteroError)


def test_from_dict_rejects_what_is_not_a_dict():
    with pytest.raises(RecipeError, match="is a dict"):
        TrainingRecipe.from_dict(["lenet5"])


def test_older_checkpoints_extra_is_read_as_a_recipe():
    # what `hetero train` stored before recipes: its lr lives only in the optimizer state
    cli = {"model": "lenet5", "model_kwargs": {"num_classes": 10}, "dataset": "mnist", "optimizer": "sgd",
           "batch_size": 16, "seed": 3, "lr_schedule": "cosine", "batch": 2}
    state = {"param_groups": [{"lr": 0.0, "initial_lr": 0.02, "momentum": 0.8, "weight_decay": 1e-4}]}
    r = R.recipe_from_extra(cli, state)
    assert (r.model, r.optimizer, r.batch_size, r.seed, r.lr_schedule) == ("lenet5", "sgd", 16, 3, "cosine")
    assert r.lr == 0.02 and r.momentum == 0.8 and r.weight_decay == 1e-4 and r.epochs == 2
    # what the app stored: "none" meant a constant learning rate
    app = {"model": "resnet18", "dataset": "fashion-mnist", "data_dir": "/data", "epochs": 4, "batch_size": 8,
           "optimizer": "adam", "lr": 5e-4, "seed": 1, "lr_schedule": "none", "device": "0:0",
           "model_kwargs": {"num_classes": 10, "in_channels": 1, "small_input": True}}
    r = R.recipe_from_extra(app)
    assert r.lr_schedule == "constant" and r.lr == 5e-4 and r.epochs == 4 and r.devices == "0:0"
    assert r.model_kwargs["small_input"] is True
    with pytest.raises(RecipeError, match="does not say which model"):
        R.recipe_from_extra({"note": "hand-made"})
    # a stored recipe wins over the loose keys beside it
    stored = TrainingRecipe(seed=9).to_dict()
    assert R.recipe_from_checkpoint({"recipe": stored, "extra": cli}).seed == 9
    assert R.recipe_from_checkpoint({"recipe": None, "extra": cli, "optimizer": state}).seed == 3


def test_builders(dev):
    r = TrainingRecipe(optimizer="sgd", lr=0.05, momentum=0.5, epochs=3, max_steps=10, batch_size=4,
                       eval_batch_size=6, seed=2)
    a, b = R.build_model(r, dev), R.build_model(r, dev)
    for (k, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert np.array_equal(x.numpy(), y.numpy()), k  # the recipe's seed fixes the weights
    opt = R.build_optimizer(r, a.parameters())
    assert type(opt).__name__ == "SGD" and opt.param_groups[0]["lr"] == 0.05
    assert opt.param_groups[0]["momentum"] == 0.5
    sched = R.build_scheduler(r, opt, steps_per_epoch=5)
    assert type(sched).__name__ == "CosineAnnealingLR" and sched.T_max == 15  # every epoch: max_steps only stops
    assert R.build_scheduler(r.replace(lr_schedule="constant"), opt, 5) is None
    data = hetero.data.ArrayDataset((np.arange(10 * 28 * 28).reshape(10, 28, 28) % 256).astype(np.uint8),
                                    np.arange(10))
    train, test = R.build_loaders(r, dev, data, data)
    assert (train.batch_size, test.batch_size, len(train)) == (4, 6, 3)
    assert R.build_loaders(r, dev, None, data)[0] is None


def _capture_fit(monkeypatch, seen: list):
    real_fit = hetero.train.fit

    def fit(model, optimizer, *a, **kw):
        seen.append({"recipe": kw["recipe"], "optimizer": type(optimizer).__name__,
                     "scheduler": kw["scheduler"], "train_loader": a[0]})
        return real_fit(model, optimizer, *a, **kw)

    monkeypatch.setattr(hetero.train, "fit", fit)


def test_resume_rebuilds_from_the_stored_recipe(dev, tmp_path, monkeypatch, capsys):
    data = write_tiny_mnist(tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    ck = tmp_path / "ck.safetensors"
    assert main(["train", "--device", dev.id, "--data", str(data), "--optimizer", "sgd", "--lr", "0.03",
                 "--lr-schedule", "constant", "--batch-size", "16", "--seed", "3", "--epochs", "3",
                 "--momentum", "0.7", "--max-steps", "2", "--checkpoint", str(ck)]) == 0
    saved = load_training(ck)
    stored = TrainingRecipe.from_dict(saved["recipe"])
    assert (stored.optimizer, stored.lr, stored.lr_schedule, stored.batch_size, stored.seed, stored.epochs,
            stored.momentum, stored.max_steps, stored.devices) == ("sgd", 0.03, "constant", 16, 3, 3, 0.7, 2, dev.id)

    seen: list = []
    _capture_fit(monkeypatch, seen)
    capsys.readouterr()
    assert main(["train", "--device", dev.id, "--data", str(data), "--resume", str(ck), "--max-steps", "4"]) == 0
    (run,) = seen
    assert run["recipe"] == stored.replace(max_steps=4)  # everything else from the checkpoint
    assert run["optimizer"] == "SGD" and run["scheduler"] is None and run["train_loader"].batch_size == 16
    assert "sgd lr 0.03 (constant), batch 16, 3 epochs, seed 3, resuming at epoch 1 step 2" in capsys.readouterr().out

    assert main(["train", "--device", dev.id, "--data", str(data), "--resume", str(ck), "--model", "resnet18"]) == 1
    assert "holds a lenet5, not a resnet18" in capsys.readouterr().err


def test_eval_reads_a_checkpoint_without_a_recipe(dev, tmp_path, capsys):
    """A checkpoint as `hetero train` wrote it before recipes (settings only in extra) still evaluates."""
    data = write_tiny_mnist(tmp_path / "data")
    hetero.train.seed_everything(0)
    model = hetero.models.lenet5(device=dev)
    opt = hetero.optim.Adam(model.parameters(), lr=1e-3)
    ck = tmp_path / "old.safetensors"
    hetero.train.save_checkpoint(ck, model, opt, 1, 6, extra={"model": "lenet5", "model_kwargs": {"num_classes": 10},
                                                              "dataset": "mnist", "optimizer": "adam"})
    assert load_training(ck)["recipe"] is None
    assert main(["eval", "--checkpoint", str(ck), "--device", dev.id, "--data", str(data), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["model"] == "lenet5" and result["images"] == 40
