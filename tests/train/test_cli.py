"""`hetero train` and `hetero eval` on tiny generated IDX files (and LeNet-5 on real MNIST when present)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

import hetero.train
from hetero.checkpoint import load_training
from hetero.cli import main


def _events(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_train_writes_json_log_and_checkpoint_then_eval(dev, data_dir, tmp_path, capsys):
    log, ck = tmp_path / "log.jsonl", tmp_path / "ck.safetensors"
    rc = main(["train", "--device", dev.id, "--epochs", "2", "--batch-size", "32", "--lr", "0.02",
               "--json-log", str(log), "--checkpoint", str(ck)])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "epoch 1/2" in out and "epoch 2/2" in out and "test" in out  # a summary per epoch
    assert "img/s" in err and "ETA" in err  # progress (periodic lines: stderr is not a terminal here)
    events = _events(log)
    assert [e["event"] for e in events] == ["step"] * 3 + ["epoch_end"] + ["step"] * 3 + ["epoch_end", "done"]
    assert [e["step"] for e in events if e["event"] == "step"] == [1, 2, 3, 4, 5, 6]
    for e in events:
        if e["event"] == "step":
            assert {"step", "epoch", "loss", "images_per_s"} <= e.keys()
        if e["event"] == "epoch_end":
            assert {"epoch", "train_loss", "test_loss", "test_accuracy", "seconds"} <= e.keys()
    assert events[-1]["reason"] == "finished" and events[-1]["steps"] == 6
    saved = load_training(ck)
    assert saved["epoch"] == 2 and saved["step"] == 6
    assert saved["extra"]["model"] == "lenet5" and saved["extra"]["model_kwargs"] == {"num_classes": 10}
    assert saved["optimizer_class"] == "Adam"

    assert main(["eval", "--checkpoint", str(ck), "--device", dev.id]) == 0
    out = capsys.readouterr().out
    accuracy = events[-2]["test_accuracy"]
    assert f"test accuracy: {100 * accuracy:.2f}%" in out
    assert "confusion matrix" in out and "recall" in out
    rows = [line.split() for line in out.splitlines()]
    matrix = np.array([[int(v) for v in r[1:11]] for r in rows if len(r) == 12])  # class, 10 counts, recall
    assert matrix.shape == (10, 10) and matrix.sum() == 40 and np.trace(matrix) == round(accuracy * 40)

    assert main(["eval", "--checkpoint", str(ck), "--device", dev.id, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["test_accuracy"] == accuracy and np.array_equal(result["confusion"], matrix)


def test_ctrl_c_writes_checkpoint_and_resume_matches(dev, data_dir, tmp_path, capsys, monkeypatch):
    straight = tmp_path / "straight.safetensors"
    args = ["train", "--device", dev.id, "--epochs", "2", "--batch-size", "16", "--lr", "0.02"]
    assert main(args + ["--checkpoint", str(straight)]) == 0

    real_fit = hetero.train.fit

    def interrupted_fit(*a, **kw):  # Ctrl-C arriving during training, as a callback raising KeyboardInterrupt
        def ctrl_c(e):
            if e.event == "step" and e.step == 3:
                raise KeyboardInterrupt
        kw["callbacks"] = list(kw["callbacks"]) + [ctrl_c]
        return real_fit(*a, **kw)

    monkeypatch.setattr(hetero.train, "fit", interrupted_fit)
    capsys.readouterr()
    assert main(args) == 130  # no --checkpoint: it goes to the default path, named in the message
    err = capsys.readouterr().err
    default = Path("hetero-lenet5-mnist.safetensors")
    assert f"checkpoint written to {default}" in err and f"--resume {default}" in err
    saved = load_training(default)
    assert saved["epoch"] == 0 and saved["step"] == 5  # steps 4 and 5 were queued when step 3 was read back
    monkeypatch.setattr(hetero.train, "fit", real_fit)

    log = tmp_path / "resumed.jsonl"
    resumed = tmp_path / "resumed.safetensors"
    assert main(["train", "--device", dev.id, "--epochs", "2", "--resume", str(default), "--json-log", str(log),
                 "--checkpoint", str(resumed)]) == 0
    assert [e["step"] for e in _events(log) if e["event"] == "step"][0] == 6
    a, b = load_training(straight), load_training(resumed)
    for k in a["model"]:
        assert np.array_equal(a["model"][k], b["model"][k]), k


def test_max_steps_and_bad_resume(dev, data_dir, tmp_path, capsys):
    log = tmp_path / "log.jsonl"
    assert main(["train", "--device", dev.id, "--max-steps", "2", "--batch-size", "16", "--json-log", str(log)]) == 0
    events = _events(log)
    assert events[-1]["event"] == "done" and events[-1]["reason"] == "max_steps" and events[-1]["steps"] == 2
    assert events[-2]["event"] == "epoch_end" and events[-2]["test_accuracy"] is not None
    ck = tmp_path / "plain.safetensors"
    hetero.save({"w": np.zeros(3, np.float32)}, ck)
    assert main(["eval", "--checkpoint", str(ck)]) == 1
    assert "not a hetero training checkpoint" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("HETERO_DATA_DIR"), reason="set HETERO_DATA_DIR to the real MNIST files")
def test_lenet5_learns_real_mnist(tmp_path):
    """300 steps of LeNet-5 on the real MNIST training set: above 90% on the whole test set."""
    from hetero.data import DataLoader, get_dataset

    dev = hetero.device()
    train_set = get_dataset("mnist", download=False)
    test_set = get_dataset("mnist", train=False, download=False)
    if len(train_set) < 60000:
        pytest.skip(f"HETERO_DATA_DIR holds {len(train_set)} training images, not the real MNIST files")
    hetero.train.seed_everything(0)
    model = hetero.models.lenet5(device=dev)
    opt = hetero.train.make_optimizer("adam", model.parameters(), lr=hetero.train.default_lr("lenet5"))
    history = hetero.train.fit(model, opt, DataLoader(train_set, 64, shuffle=True, device=dev),
                               DataLoader(test_set, 1000, device=dev), epochs=1, max_steps=300)
    assert history.reason == "max_steps"
    assert history.epochs[-1].test_accuracy > 0.90


@pytest.mark.parametrize("events, written", [
    ([("checkpoint", "interrupted")], True),
    ([("checkpoint", "epoch")], False),  # older than the interrupted state
    ([("log", "checkpoint written to x (step 3)")], False),  # text alone says nothing
])
def test_ctrl_c_message_follows_the_checkpoint_events(dev, data_dir, capsys, monkeypatch, events, written):
    from hetero.train import CheckpointEvent, LogEvent

    def fit(*a, **kw):
        for kind, what in events:
            e = CheckpointEvent(kw["checkpoint"], 3, 0, what) if kind == "checkpoint" else LogEvent("info", what)
            for cb in kw["callbacks"]:
                cb(e)
        raise KeyboardInterrupt

    monkeypatch.setattr(hetero.train, "fit", fit)
    assert main(["train", "--device", dev.id, "--batch-size", "16"]) == 130
    err = capsys.readouterr().err
    assert ("interrupted; checkpoint written to" in err) == written
    assert ("no checkpoint written" in err) == (not written)
