"""`hetero run`: top classes of new images from a `hetero train` checkpoint with the preprocessing its recipe
recorded, --json, an ONNX model through hetero.onnx (a stand-in here), and the refusals."""

from __future__ import annotations

import argparse
import json
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import hetero
from hetero import recipe as R
from hetero.checkpoint import load_training
from hetero.cli import main
from hetero.commands import run as run_command

from .test_cli_folder import CLASSES, write_shapes


def hetero_run(argv: list[str]) -> int:
    """`hetero run ARGS` through the command's own parser (as hetero.cli registers it)."""
    parser = argparse.ArgumentParser(prog="hetero")
    run_command.add_parser(parser.add_subparsers())
    args = parser.parse_args(["run", *argv])
    return args.func(args)


@pytest.fixture(scope="module")
def trained(dev, tmp_path_factory) -> tuple[Path, Path]:
    """(a lenet5 checkpoint trained on a shapes folder, that folder)."""
    tmp = tmp_path_factory.mktemp("run")
    folder, ck = write_shapes(tmp / "shapes", per_class=8), tmp / "ck.safetensors"
    assert main(["train", "--data-folder", str(folder), "--device", dev.id, "--epochs", "3", "--batch-size", "8",
                 "--lr", "0.01", "--checkpoint", str(ck), "--test-fraction", "0.25"]) == 0
    return ck, folder


def _reference(ck: Path, dev, paths: list[Path]) -> np.ndarray:
    """Softmax of the checkpoint's model over `paths`, prepared by the training data path (loader and decoder)."""
    from hetero.data import DataLoader
    from hetero.data.folder import decode_image

    recipe = R.recipe_from_checkpoint(load_training(ck))
    model = R.build_model(recipe, dev)
    model.load_state_dict(load_training(ck)["model"])
    model.eval()
    spec = recipe.folder
    images = np.stack([decode_image(p, spec.channels, spec.image_size) for p in paths])
    data = hetero.data.ArrayDataset(images, np.zeros(len(paths), np.int64), mean=list(spec.mean), std=list(spec.std))
    x, _ = DataLoader(data, len(paths), prefetch=False).host_batch(np.arange(len(paths)))
    with hetero.no_grad():
        logits = model(hetero.tensor(x, dev)).numpy().astype(np.float64)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_top_classes_of_a_folder_as_json_match_the_model(dev, trained, capsys):
    ck, folder = trained
    assert hetero_run([str(ck), "--input", str(folder), "--device", dev.id, "--json", "--top", "9"]) == 0
    results = json.loads(capsys.readouterr().out)
    files = sorted(folder.rglob("*.png"))
    assert [r["file"] for r in results] == [p.relative_to(folder).as_posix() for p in files]
    probs = _reference(ck, dev, files)
    for r, expected in zip(results, probs):
        top = r["top"]
        assert len(top) == 3  # --top 9 shows every one of the 3 classes
        assert [t["class"] for t in top] == [CLASSES[t["index"]] for t in top]
        got = np.array([t["probability"] for t in top])
        assert np.all(np.diff(got) <= 0) and got.sum() == pytest.approx(1.0)
        np.testing.assert_allclose(got, expected[[t["index"] for t in top]], rtol=1e-5, atol=1e-6)
    right = sum(r["top"][0]["class"] == f.parent.name for r, f in zip(results, files))
    assert right >= 16  # of 24: the model learnt the shapes


def test_one_file_as_text(dev, trained, tmp_path, capsys):
    ck, folder = trained
    image = folder / "line" / "000.png"
    big = tmp_path / "big.jpg"  # another size and format: resized and converted as the recipe says
    Image.open(image).resize((56, 56)).convert("RGB").save(big, quality=98)
    assert hetero_run([str(ck), "--input", str(image), "--device", dev.id, "--top", "2"]) == 0
    line = capsys.readouterr().out.strip()
    name, rest = line.split(": ")
    assert name == str(image) and len(rest.split(", ")) == 2
    first, second = (part.rsplit(" ", 1) for part in rest.split(", "))
    p = _reference(ck, dev, [image])[0]
    order = np.argsort(-p)
    assert [first[0], second[0]] == [CLASSES[order[0]], CLASSES[order[1]]]
    assert first[1] == f"{100 * p[order[0]]:.2f}%"
    assert hetero_run([str(ck), "--input", str(big), "--device", dev.id, "--top", "1"]) == 0
    assert capsys.readouterr().out.startswith(f"{big}: ")


def test_an_mnist_checkpoint_names_digits(dev, data_dir, tmp_path, capsys):
    ck = tmp_path / "mnist.safetensors"
    assert main(["train", "--device", dev.id, "--epochs", "1", "--batch-size", "32", "--checkpoint", str(ck)]) == 0
    digit = tmp_path / "digit.png"
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(digit)
    capsys.readouterr()
    assert hetero_run([str(ck), "--input", str(digit), "--device", dev.id, "--json", "--top", "10"]) == 0
    top = json.loads(capsys.readouterr().out)[0]["top"]
    assert sorted(t["class"] for t in top) == [str(i) for i in range(10)]
    assert sum(t["probability"] for t in top) == pytest.approx(1.0)


def test_bad_inputs_are_clear_errors(dev, trained, tmp_path, capsys):
    ck, folder = trained
    text = tmp_path / "notes.png"
    text.write_text("hello")
    weights = tmp_path / "weights.safetensors"
    hetero.save({"w": np.zeros(3, np.float32)}, weights)
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    Image.open(folder / "dot" / "000.png").save(mixed / "a.png")
    (mixed / "b.png").write_bytes(b"broken")
    empty = tmp_path / "empty"
    empty.mkdir()
    (tmp_path / "m.onnx").write_bytes(b"onnx?")
    cases = [
        ([str(tmp_path / "none.safetensors"), "--input", str(folder)], 2, "no such file"),
        ([str(ck), "--input", str(tmp_path / "none.png")], 2, "--input"),
        ([str(ck), "--input", str(text)], 1, f"{text}: not an image Pillow can read; name a PNG, JPEG"),
        ([str(ck), "--input", str(mixed)], 1, f"{mixed / 'b.png'}: not an image Pillow can read; pass --skip-bad"),
        ([str(ck), "--input", str(empty)], 1, "holds no images"),
        ([str(weights), "--input", str(folder)], 1, "not a hetero training checkpoint"),
        ([str(folder / "dot" / "000.png"), "--input", str(folder)], 1, "MODEL must be a training checkpoint"),
        ([str(ck), "--input", str(folder), "--channels", "3"], 2, "only for ONNX models"),
    ]
    if _real_onnx() is None:
        cases.append(([str(tmp_path / "m.onnx"), "--input", str(folder)], 2, "ONNX models are not supported yet"))
    else:
        cases.append(([str(tmp_path / "m.onnx"), "--input", str(folder)], 1, "cannot be read as an ONNX model"))
    for argv, status, words in cases:
        assert hetero_run([*argv, "--device", dev.id]) == status, argv
        err = capsys.readouterr().err
        assert words in err and "Traceback" not in err, (argv, err)

    assert hetero_run([str(ck), "--input", str(mixed), "--device", dev.id, "--skip-bad"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("a.png: dot ") and "skipped 1 file(s)" in err


def _real_onnx():
    """hetero.onnx where this hetero has it (and the onnx package it needs), else None."""
    try:
        import hetero.onnx as honnx
    except ImportError:
        return None
    return honnx if hasattr(honnx, "load") else None


def test_a_real_onnx_model(dev, tmp_path, capsys):
    if _real_onnx() is None:
        pytest.skip("hetero.onnx (or the onnx package) is not installed")
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(5)
    weight = rng.normal(0, 1, (3, 12)).astype(np.float32)  # 1 x 3 x 4 images -> 3 classes
    bias = np.array([0.1, -0.2, 0.3], np.float32)
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["x"], ["flat"], axis=1),
         helper.make_node("Gemm", ["flat", "w", "b"], ["logits"], transB=1)],
        "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 3, 4])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3])],
        [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(bias, "b")])
    path = tmp_path / "tiny.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    images = tmp_path / "images"
    images.mkdir()
    pixels = rng.integers(0, 256, (2, 3, 4), dtype=np.uint8)
    for i, p in enumerate(pixels):
        Image.fromarray(p, "L").save(images / f"{i}.png")
    assert hetero_run([str(path), "--input", str(images), "--device", dev.id, "--json", "--top", "3"]) == 0
    results = json.loads(capsys.readouterr().out)
    logits = pixels.reshape(2, -1) / 255 @ weight.T.astype(np.float64) + bias  # its declared 1x3x4 input, 0-1
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert [r["file"] for r in results] == ["0.png", "1.png"]
    for r, p in zip(results, expected):
        assert [t["index"] for t in r["top"]] == np.argsort(-p).tolist()
        np.testing.assert_allclose([t["probability"] for t in r["top"]], np.sort(p)[::-1], rtol=1e-4)


class _FakeOnnxModel:
    """What hetero.onnx.load gives, as far as hetero run uses it: a callable with an input shape."""

    input_shape = (1, 1, 4, 4)

    def __init__(self, dev):
        self.dev, self.seen = dev, []

    def eval(self):
        return self

    def __call__(self, x):
        data = x.numpy()
        self.seen.append(data)
        probs = np.tile(np.array([0.1, 0.7, 0.2], np.float32), (len(data), 1))  # ends in softmax
        return [hetero.tensor(probs, self.dev)]


def test_an_onnx_model_through_hetero_onnx(dev, tmp_path, monkeypatch, capsys):
    made = []
    fake = types.ModuleType("hetero.onnx")
    fake.load = lambda path, device: made.append(_FakeOnnxModel(device)) or made[-1]
    monkeypatch.setitem(sys.modules, "hetero.onnx", fake)
    monkeypatch.setattr(hetero, "onnx", fake, raising=False)
    model = tmp_path / "m.onnx"
    model.write_bytes(b"stand-in")
    image = tmp_path / "x.png"
    Image.fromarray(np.full((8, 8), 255, np.uint8)).save(image)
    names = tmp_path / "classes.txt"
    names.write_text("cat\ndog\nemu\n")
    argv = [str(model), "--input", str(image), "--device", dev.id, "--classes", str(names), "--top", "2"]
    assert hetero_run([*argv, "--mean", "0.5", "--std", "0.25"]) == 0
    assert capsys.readouterr().out.strip() == f"{image}: dog 70.00%, emu 20.00%"  # probabilities pass unchanged
    x = made[-1].seen[0]
    assert x.shape == (1, 1, 4, 4) and np.allclose(x, (1.0 - 0.5) / 0.25)  # the model's size, the given mean/std
    assert hetero_run([*argv, "--image-size", "2", "3", "--channels", "3"]) == 0
    assert made[-1].seen[0].shape == (1, 3, 2, 3) and np.allclose(made[-1].seen[0], 1.0)
    capsys.readouterr()
    assert hetero_run([*argv, "--mean", "0.1", "0.2"]) == 2
    assert "--mean: give 1 value for the model's 1-channel input, got 2" in capsys.readouterr().err


def test_probabilities_and_top_classes():
    p = run_command.probabilities(np.array([[0.0, np.log(3.0)], [5.0, 5.0]]))
    np.testing.assert_allclose(p, [[0.25, 0.75], [0.5, 0.5]])
    assert run_command.probabilities(np.array([[0.2, 0.8]])).tolist() == [[0.2, 0.8]]
    top = run_command.top_classes(p, ["a"], 2)
    assert top == [[(1, "1", 0.75), (0, "a", 0.25)], [(0, "a", 0.5), (1, "1", 0.5)]]  # ties: lower index first
