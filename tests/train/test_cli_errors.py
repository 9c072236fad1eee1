"""Issue 15: `hetero train` / `hetero eval` refuse bad input before running, with a clear message, and every
stopped run is recoverable (tiny generated IDX files, a few steps each)."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest

import hetero.train
from hetero.checkpoint import load_training, save_training
from hetero.cli import main

TINY = ["--batch-size", "16"]  # 96 training images: 6 steps an epoch


def _weights_equal(a: Path, b: Path) -> list[str]:
    """Names of the tensors (weights and optimizer state) that differ between two training checkpoints."""
    x, y = load_training(a), load_training(b)
    differ = [k for k in x["model"] if not np.array_equal(x["model"][k], y["model"][k])]
    for i, entry in x["optimizer"]["state"].items():
        differ += [f"opt {i}.{n}" for n, v in entry.items() if not np.array_equal(v, y["optimizer"]["state"][i][n])]
    return differ


# ----- 1, 3: arguments and output paths are checked before anything runs -----


@pytest.mark.parametrize("option, value, says", [
    ("--checkpoint", "missing_dir/x.safetensors", "does not exist; create it"),
    ("--checkpoint", ".", "is a folder; name a file in it"),
    ("--json-log", "missing_dir/log.jsonl", "does not exist; create it"),
])
def test_unusable_output_paths_are_refused_before_training(dev, data_dir, capsys, option, value, says):
    assert main(["train", "--device", dev.id, "--max-steps", "3", *TINY, option, value]) == 2
    out, err = capsys.readouterr()
    assert says in err and "training" not in out and "Traceback" not in err


def test_a_read_only_folder_is_refused(dev, data_dir, capsys, monkeypatch):
    import tempfile

    def refuse(*a, **kw):  # what a read-only folder does (chmod is no test as root)
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "TemporaryFile", refuse)
    assert main(["train", "--device", dev.id, "--max-steps", "3", "--checkpoint", "x.safetensors"]) == 2
    assert "cannot write in" in capsys.readouterr().err


@pytest.mark.parametrize("args", [
    ["--lr", "nan"], ["--lr", "-1"], ["--lr", "inf"], ["--momentum", "-1"], ["--momentum", "nan"],
    ["--weight-decay", "-1"], ["--weight-decay", "nan"], ["--seed", "-1"], ["--seed", "99999999999999999999"],
    ["--max-steps", "-5"], ["--max-steps", "0"], ["--epochs", "0"], ["--batch-size", "x"],
])
def test_bad_numbers_are_usage_errors(capsys, args):
    with pytest.raises(SystemExit) as info:
        main(["train", *args])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {args[0]}" in err and "Traceback" not in err


# ----- 2: resuming after --max-steps continues the same schedule, bit for bit -----


@pytest.mark.parametrize("schedule", ["cosine", "constant"])
def test_resume_after_max_steps_is_bit_identical(dev, data_dir, tmp_path, capsys, schedule):
    base = ["train", "--device", dev.id, *TINY, "--lr-schedule", schedule]
    straight, first, resumed = tmp_path / "s.st", tmp_path / "a.st", tmp_path / "b.st"
    assert main(base + ["--max-steps", "8", "--checkpoint", str(straight)]) == 0
    assert main(base + ["--max-steps", "4", "--checkpoint", str(first)]) == 0
    assert main(["train", "--device", dev.id, "--resume", str(first), "--max-steps", "8",
                 "--checkpoint", str(resumed)]) == 0
    assert load_training(resumed)["step"] == 8
    assert _weights_equal(straight, resumed) == []
    groups = load_training(resumed)["optimizer"]["param_groups"]
    assert groups == load_training(straight)["optimizer"]["param_groups"]
    assert groups[0]["lr"] > 0  # the resumed run never trains at lr 0


def test_resume_of_a_cosine_run_with_a_constant_schedule_trains_at_the_lr(dev, data_dir, tmp_path, capsys):
    first, resumed = tmp_path / "a.st", tmp_path / "b.st"
    assert main(["train", "--device", dev.id, *TINY, "--epochs", "1", "--max-steps", "5",
                 "--checkpoint", str(first)]) == 0
    assert load_training(first)["optimizer"]["param_groups"][0]["lr"] < 0.002 * 0.1  # near the cosine's end
    assert main(["train", "--device", dev.id, "--resume", str(first), "--epochs", "2", "--max-steps", "6",
                 "--lr-schedule", "constant", "--checkpoint", str(resumed)]) == 0
    group = load_training(resumed)["optimizer"]["param_groups"][0]
    assert group["lr"] == 0.002 and "initial_lr" not in group  # lenet5's Adam lr, not the cosine's last value


def test_resume_applies_lr_and_weight_decay_and_keeps_the_epochs(dev, data_dir, tmp_path, capsys):
    first, resumed = tmp_path / "a.st", tmp_path / "b.st"
    assert main(["train", "--device", dev.id, *TINY, "--epochs", "3", "--max-steps", "2",
                 "--lr-schedule", "constant", "--checkpoint", str(first)]) == 0
    capsys.readouterr()
    assert main(["train", "--device", dev.id, "--resume", str(first), "--lr", "0.005", "--weight-decay", "0.01",
                 "--max-steps", "3", "--checkpoint", str(resumed)]) == 0
    err = capsys.readouterr().err
    assert "resuming with changed settings" in err and "lr" in err and "weight_decay" in err
    saved = load_training(resumed)
    group = saved["optimizer"]["param_groups"][0]
    assert (group["lr"], group["weight_decay"]) == (0.005, 0.01)
    assert saved["recipe"]["epochs"] == 3  # the checkpoint's, not the default 2


# ----- 4: hetero eval with a bad checkpoint -----


def _bad_checkpoints(tmp_path: Path, dev) -> dict[str, Path]:
    folder = tmp_path / "bad"
    folder.mkdir()
    other = hetero.models.lenet5(num_classes=3, device=dev)  # a LeNet-5 of another shape
    recipe = {"version": 1, "model": "lenet5", "dataset": "mnist"}
    save_training(folder / "shape.st", other, None, 0, 0, extra={}, recipe=recipe)
    save_training(folder / "model.st", other, None, 0, 0, extra={}, recipe={**recipe, "model": "nonsense"})
    save_training(folder / "legacy.st", other, None, 0, 0, extra={"model": "nonsense"})
    save_training(folder / "kwargs.st", other, None, 0, 0, extra={"model": "lenet5",
                                                                  "model_kwargs": {"bogus": 1}})
    return {"missing": folder / "none.st", "folder": folder, "shape": folder / "shape.st",
            "model": folder / "model.st", "legacy": folder / "legacy.st", "kwargs": folder / "kwargs.st"}


@pytest.mark.parametrize("case, says", [
    ("missing", "no such file"), ("folder", "is a folder"), ("shape", "do not fit"),
    ("model", "model 'nonsense' is unknown"), ("legacy", "model 'nonsense' is unknown"),
    ("kwargs", "do not build a lenet5"),
])
def test_eval_explains_a_bad_checkpoint(dev, data_dir, tmp_path, capsys, case, says):
    path = _bad_checkpoints(tmp_path, dev)[case]
    assert main(["eval", "--checkpoint", str(path), "--device", dev.id]) == 1
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err


def test_eval_explains_an_unreadable_checkpoint(dev, data_dir, tmp_path, capsys, monkeypatch):
    path = tmp_path / "x.st"
    path.write_bytes(b"0" * 16)
    monkeypatch.setattr(Path, "read_bytes", lambda self: (_ for _ in ()).throw(PermissionError(13, "denied")))
    assert main(["eval", "--checkpoint", str(path)]) == 1
    assert "permission denied" in capsys.readouterr().err


@pytest.mark.parametrize("case", ["model", "legacy"])
def test_resume_explains_an_unknown_model(dev, data_dir, tmp_path, capsys, case):
    path = _bad_checkpoints(tmp_path, dev)[case]
    assert main(["train", "--device", dev.id, "--resume", str(path)]) == 1
    assert "model 'nonsense' is unknown" in capsys.readouterr().err


# ----- 6: the default checkpoint never replaces another run's; SIGTERM saves like Ctrl-C -----


def _stop_at(step: int, how):
    real_fit = hetero.train.fit

    def fit(*a, **kw):
        def stop(e):
            if e.event == "step" and e.step == step:
                how()
        kw["callbacks"] = list(kw["callbacks"]) + [stop]
        return real_fit(*a, **kw)

    return fit


def _interrupt():
    raise KeyboardInterrupt


def test_ctrl_c_keeps_another_runs_default_checkpoint(dev, data_dir, capsys, monkeypatch):
    earlier = Path("hetero-lenet5-mnist.safetensors")
    assert main(["train", "--device", dev.id, *TINY, "--max-steps", "2", "--checkpoint", str(earlier)]) == 0
    before = earlier.read_bytes()
    monkeypatch.setattr(hetero.train, "fit", _stop_at(3, _interrupt))
    assert main(["train", "--device", dev.id, *TINY]) == 130
    err = capsys.readouterr().err
    assert earlier.read_bytes() == before  # the finished run is kept
    second = Path("hetero-lenet5-mnist-2.safetensors")
    assert f"checkpoint written to {second}" in err and f"{earlier} is another run's checkpoint" in err
    assert load_training(second)["step"] == 5


def test_sigterm_writes_a_checkpoint(dev, data_dir, capsys, monkeypatch):
    monkeypatch.setattr(hetero.train, "fit", _stop_at(3, lambda: os.kill(os.getpid(), signal.SIGTERM)))
    assert main(["train", "--device", dev.id, *TINY]) == 143
    err = capsys.readouterr().err
    default = Path("hetero-lenet5-mnist.safetensors")
    assert "SIGTERM" in err and f"checkpoint written to {default}" in err
    assert load_training(default)["step"] >= 3


# ----- 8: data -----


def test_an_explicit_data_folder_without_the_files_is_an_error(dev, data_dir, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["train", "--device", dev.id, "--data", str(tmp_path / "empty"), "--max-steps", "1"]) == 1
    err = capsys.readouterr().err
    assert "not found" in err and str(data_dir) not in err  # $HETERO_DATA_DIR was not used instead
    assert main(["train", "--device", dev.id, "--data", str(tmp_path / "none"), "--max-steps", "1"]) == 2
    assert "no such folder" in capsys.readouterr().err


def test_images_of_another_size_are_refused_before_training(dev, tmp_path, capsys, monkeypatch):
    from hetero.data import write_idx

    monkeypatch.chdir(tmp_path)
    for prefix, n in (("train", 8), ("t10k", 4)):
        write_idx(tmp_path / f"{prefix}-images-idx3-ubyte", np.zeros((n, 32, 32), np.uint8))
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte", np.zeros(n, np.uint8))
    assert main(["train", "--device", dev.id, "--data", str(tmp_path), "--max-steps", "1"]) == 1
    assert "32x32 pixels, but mnist images are 28x28" in capsys.readouterr().err


# ----- 11: resuming a run with nothing left to train -----


def test_resuming_with_nothing_left_says_so_and_writes_nothing(dev, data_dir, tmp_path, capsys):
    done, other = tmp_path / "done.st", tmp_path / "other.st"
    assert main(["train", "--device", dev.id, *TINY, "--epochs", "1", "--checkpoint", str(done)]) == 0
    capsys.readouterr()
    assert main(["train", "--device", dev.id, "--resume", str(done), "--checkpoint", str(other)]) == 2
    assert "has finished its 1 epoch" in capsys.readouterr().err
    assert main(["train", "--device", dev.id, "--resume", str(done), "--max-steps", "1",
                 "--checkpoint", str(other)]) == 2
    assert "nothing to train" in capsys.readouterr().err
    assert not other.exists()


def test_fit_on_a_finished_run_does_not_claim_to_have_trained(dev, tiny):
    model, opt, train, _ = tiny(dev)
    history = hetero.train.fit(model, opt, train, epochs=1, start_epoch=1, start_step=3)
    assert history.reason == "finished" and "nothing to train" in history.done.message


def test_json_log_is_written(dev, data_dir, tmp_path):
    log = tmp_path / "log.jsonl"
    assert main(["train", "--device", dev.id, *TINY, "--max-steps", "1", "--json-log", str(log)]) == 0
    assert json.loads(log.read_text().splitlines()[-1])["event"] == "done"
