"""`hetero train --data-folder`: training on a tiny folder of PNGs, what the checkpoint records, eval and resume
from it, and the refusals (bad options, a model that cannot take the images, unusable files)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hetero.checkpoint import load_training
from hetero.cli import main

CLASSES = ("circle", "dot", "line")


def write_shapes(folder: Path, per_class: int = 12, size: int = 28, seed: int = 0, mode: str = "L") -> Path:
    """folder/<class>/*.png: class c is a bright square at one of three places on noise, learnable in a few steps."""
    rng = np.random.default_rng(seed)
    for c, name in enumerate(CLASSES):
        (folder / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = rng.integers(0, 40, (size, size), dtype=np.uint8)
            top = 2 + c * (size // 3)
            pixels[top:top + size // 4, size // 3:size // 3 + size // 4] = 255
            image = Image.fromarray(pixels, "L")
            image.convert(mode).save(folder / name / f"{i:03d}.png")
    return folder


def _train(dev, folder: Path, ck: Path, *extra: str) -> int:
    return main(["train", "--data-folder", str(folder), "--device", dev.id, "--batch-size", "12", "--lr", "0.01",
                 "--checkpoint", str(ck), *extra])


def test_train_on_a_folder_records_it_then_eval_and_resume(dev, tmp_path, capsys):
    folder, ck = write_shapes(tmp_path / "shapes"), tmp_path / "ck.safetensors"
    assert _train(dev, folder, ck, "--epochs", "2", "--test-fraction", "0.25") == 0
    out = capsys.readouterr().out
    assert f"on the images in {folder} (27 train / 9 test images)" in out  # 3 of each class's 12 held out
    accuracy = float(out.split("test accuracy ")[1].split("%")[0])
    assert accuracy >= 66.0  # a learnable task: well above the 33% of guessing

    recipe = load_training(ck)["recipe"]
    assert recipe["dataset"] == "folder" and recipe["model_kwargs"] == {"num_classes": 3}
    spec = recipe["data_folder"]
    assert (spec["path"], spec["classes"], spec["channels"], spec["image_size"]) == (str(folder), list(CLASSES), 1,
                                                                                      [28, 28])
    assert spec["test_fraction"] == 0.25 and spec["split_seed"] == 0 and len(spec["mean"]) == 1

    assert main(["eval", "--checkpoint", str(ck), "--device", dev.id]) == 0  # the same 9 held-out images
    assert f"test accuracy: {accuracy:.2f}%" in capsys.readouterr().out

    moved = folder.rename(tmp_path / "moved")  # resume reads the folder again, wherever it is now
    assert main(["train", "--resume", str(ck), "--epochs", "3", "--device", dev.id]) == 1
    assert f"{folder}: no such folder" in capsys.readouterr().err
    resumed = tmp_path / "resumed.safetensors"
    assert main(["train", "--resume", str(ck), "--epochs", "3", "--device", dev.id, "--data-folder", str(moved),
                 "--checkpoint", str(resumed)]) == 0
    out = capsys.readouterr().out
    assert "epoch 3/3" in out and f"the images in {moved} (27 train / 9 test images)" in out
    assert load_training(resumed)["recipe"]["data_folder"] == {**spec, "path": str(moved)}


def test_resize_convert_and_no_test_split(dev, tmp_path, capsys):
    folder, ck = write_shapes(tmp_path / "big", per_class=4, size=40, mode="RGB"), tmp_path / "ck.safetensors"
    assert _train(dev, folder, ck, "--epochs", "1") == 2  # lenet5 cannot take 3-channel 40x40 images
    err = capsys.readouterr().err
    assert "lenet5 takes 1-channel 28x28 images, but these are 3-channel 40x40" in err and "Traceback" not in err
    assert _train(dev, folder, ck, "--epochs", "1", "--image-size", "28", "28", "--channels", "1",
                  "--test-fraction", "0") == 0
    out = capsys.readouterr().out
    assert "(12 train / no test images)" in out
    spec = load_training(ck)["recipe"]["data_folder"]
    assert spec["image_size"] == [28, 28] and spec["channels"] == 1 and spec["test_fraction"] == 0


def test_bad_images_are_named_or_skipped(dev, tmp_path, capsys):
    folder, ck = write_shapes(tmp_path / "shapes", per_class=4), tmp_path / "ck.safetensors"
    bad = folder / "dot" / "zz-broken.png"
    bad.write_bytes(b"not a png at all")
    (folder / "dot" / "README.txt").write_text("notes")
    assert _train(dev, folder, ck, "--epochs", "1") == 1
    err = capsys.readouterr().err
    assert f"hetero: error: {bad}: not an image Pillow can read" in err and "--skip-bad" in err
    assert "Traceback" not in err
    assert _train(dev, folder, ck, "--epochs", "1", "--skip-bad") == 0
    err = capsys.readouterr().err
    assert f"skipped 1 unusable image (--skip-bad), e.g. {bad}" in err
    assert "ignored 1 file(s) that are not image files" in err
    assert load_training(ck)["recipe"]["data_folder"]["skip_bad"] is True


@pytest.mark.parametrize("args, words", [
    (["--image-size", "28", "28"], ["--image-size go(es) with --data-folder"]),
    (["--data-folder", "{missing}"], ["no such folder", "one subfolder per class"]),
    (["--data-folder", "{folder}", "--dataset", "mnist"], ["leave out --dataset and --data"]),
    (["--data-folder", "{folder}", "--test-fraction", "1"], ["--test-fraction", "between 0 and 0.99"]),
    (["--data-folder", "{folder}", "--channels", "2"], ["--channels", "invalid choice"]),
])
def test_folder_options_are_checked_first(tmp_path, capsys, args, words):
    folder = write_shapes(tmp_path / "shapes", per_class=1)
    argv = [a.format(folder=folder, missing=tmp_path / "nope") for a in args]
    try:
        rc = main(["train", *argv])
    except SystemExit as e:  # argparse's own usage errors
        rc = e.code
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err
    for w in words:
        assert w in err
