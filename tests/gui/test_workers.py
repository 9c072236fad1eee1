"""The Train view's worker: it reacts to fit's typed events, and builds the same run as `hetero train`."""

from __future__ import annotations

import time

import numpy as np
import pytest
from hetero.gui.workers import TrainConfig, TrainWorker, run_training

import hetero
from hetero.cli import main
from hetero.train import DoneEvent, LogEvent, PausedEvent, StepEvent, TrainingControl


def test_a_save_waits_for_the_paused_event_not_for_log_text(qtbot, tmp_path):
    saves: list[str] = []
    seen = {}

    def runner(worker):
        step = 0
        while not worker.control.stopped and step < 2000:
            step += 1
            worker.on_event(StepEvent(step, 0, step - 1, 2000, 1.0, 0.5, 100.0, 0.01 * step))
            if worker.control.paused:
                worker.on_event(LogEvent("info", f"paused at step {step}"))  # words alone do nothing
                seen["saves_after_log_text"] = len(saves)
                worker.on_event(PausedEvent(step, 0))
                seen["paused_at"] = step
                worker.control.wait_while_paused()
            time.sleep(0.002)
        worker.on_event(DoneEvent("stopped", "", step, 0, 0.1))

    worker = TrainWorker("k", "0:0", TrainConfig(), runner=runner, control=TrainingControl())
    worker.model = object()  # save_now is replaced below: anything but None says "built"
    worker.save_now = lambda path: saves.append(path)
    worker.start()
    qtbot.waitUntil(lambda: worker.last_step >= 3, timeout=10000)
    worker.request_save(str(tmp_path / "a.safetensors"))
    qtbot.waitUntil(lambda: len(saves) == 1, timeout=10000)
    assert seen["saves_after_log_text"] == 0
    at = seen["paused_at"]
    qtbot.waitUntil(lambda: worker.last_step > at + 2, timeout=10000)  # it resumed by itself
    assert not worker.control.paused
    worker.stop()
    assert worker.wait(10000)
    assert saves == [str(tmp_path / "a.safetensors")]


class _Built(Exception):
    """Raised by the stand-in for fit once it has seen what a front end built."""


def _built(model, optimizer, train_loader, test_loader=None, **kw) -> dict:
    sched = kw["scheduler"]
    return {
        "weights": {k: v.numpy() for k, v in model.state_dict().items()},
        "optimizer": type(optimizer).__name__,
        "groups": [{k: v for k, v in g.items() if k != "params"} for g in optimizer.param_groups],
        "scheduler": None if sched is None else (type(sched).__name__, sched.state_dict()),
        "run": (kw["epochs"], kw["max_steps"], kw["scheduler_interval"], train_loader.batch_size, len(train_loader),
                test_loader.batch_size),
        "recipe": kw["recipe"],
    }


def test_the_cli_and_the_app_build_the_same_run_from_one_recipe(qtbot, usable_device, tiny_data, monkeypatch):
    built: list[dict] = []

    def fit(*a, **kw):
        built.append(_built(*a, **kw))
        raise _Built

    monkeypatch.setattr(hetero.train, "fit", fit)
    dev = usable_device
    with pytest.raises(_Built):
        main(["train", "--device", dev.id, "--data", str(tiny_data), "--optimizer", "sgd", "--lr", "0.03",
              "--momentum", "0.8", "--batch-size", "16", "--seed", "5", "--epochs", "3", "--max-steps", "10"])
    recipe = built[0]["recipe"]
    worker = TrainWorker("k", dev.id, TrainConfig(recipe, data_dir=str(tiny_data)))
    with pytest.raises(_Built):
        run_training(worker)
    cli, app = built
    assert app["recipe"] == cli["recipe"]
    # the schedule spans the 3 epochs of 6 batches; max_steps only stops the run
    assert cli["scheduler"][0] == "CosineAnnealingLR" and cli["scheduler"][1]["T_max"] == 18
    for what in ("optimizer", "groups", "scheduler", "run"):
        assert app[what] == cli[what], what
    assert app["weights"].keys() == cli["weights"].keys()
    for k in cli["weights"]:
        assert np.array_equal(app["weights"][k], cli["weights"][k]), k


def test_a_loaded_checkpoint_fills_the_form_with_its_recipe(qtbot, usable_device, tiny_data, tmp_path):
    from hetero.gui.log_panel import LogPanel
    from hetero.gui.train_view import TrainView

    from hetero.checkpoint import load_training
    from hetero.recipe import TrainingRecipe

    path = tmp_path / "cli.safetensors"
    assert main(["train", "--device", usable_device.id, "--data", str(tiny_data), "--optimizer", "rmsprop",
                 "--lr", "0.004", "--momentum", "0.5", "--seed", "4", "--batch-size", "8", "--epochs", "3",
                 "--max-steps", "2", "--checkpoint", str(path)]) == 0
    view = TrainView(LogPanel())
    qtbot.addWidget(view)
    assert view.schedule_box.currentText() == "constant"  # the app's own default
    assert view.load_checkpoint(str(path))
    stored = TrainingRecipe.from_dict(load_training(path)["recipe"])
    assert view.schedule_box.currentText() == "cosine" and view.optimizer_box.currentText() == "rmsprop"
    assert view.read_form().recipe == stored  # the momentum too, which the form does not show
