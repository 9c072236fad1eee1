"""The Inference tab: a lenet5 checkpoint and a tiny ONNX model classify a drawing and image files on the PoCL
device, each top-5 checked against an independent forward (torch, numpy); bad files and inputs give messages."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from hetero.gui.device_panel import DevicePanel
from hetero.gui.inference_view import DrawingCanvas, InferenceView
from hetero.gui.log_panel import LogPanel
from PIL import Image
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

import hetero
from hetero import infer
from hetero import recipe as R
from hetero.selection import DeviceInfo
from hetero.train import save_checkpoint

MEAN, STD = 0.1307, 0.3081  # MNIST's, which the checkpoint's recipe names
WAIT = 120000  # ms: a cold PoCL builds lenet5's kernels in tens of seconds on a loaded machine


@pytest.fixture(scope="module")
def checkpoint(usable_device, tmp_path_factory) -> Path:
    """A lenet5 checkpoint (seeded weights; the last layer scaled so the probabilities are far from uniform)."""
    recipe = R.TrainingRecipe(model="lenet5", dataset="mnist", seed=7)
    model = R.build_model(recipe, usable_device)
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    state["classifier.4.weight"] = state["classifier.4.weight"] * 40
    model.load_state_dict(state)
    path = tmp_path_factory.mktemp("infer") / "lenet5.safetensors"
    save_checkpoint(path, model, None, 0, 0, recipe=recipe)
    return path


def torch_lenet(path: Path):
    """The checkpoint's weights in torch's own LeNet-5, float64: the reference forward."""
    import torch

    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 6, 5, padding=2), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(6, 16, 5), torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Flatten(),
        torch.nn.Linear(400, 120), torch.nn.ReLU(), torch.nn.Linear(120, 84), torch.nn.ReLU(),
        torch.nn.Linear(84, 10)).double()
    names = {"features.0": "0", "features.3": "3", "classifier.0": "7", "classifier.2": "9", "classifier.4": "11"}
    weights = hetero.checkpoint.load_training(path)["model"]
    net.load_state_dict({f"{names[k.rsplit('.', 1)[0]]}.{k.rsplit('.', 1)[1]}": torch.from_numpy(v.astype(np.float64))
                         for k, v in weights.items()})
    return net


def reference(path: Path, gray28: np.ndarray) -> np.ndarray:
    """Softmax of torch's forward of a 28x28 uint8 picture normalised with MNIST's mean and std."""
    import torch

    x = (gray28.astype(np.float64) / 255 - MEAN) / STD
    with torch.no_grad():
        logits = torch_lenet(path)(torch.from_numpy(x[None, None])).numpy()[0]
    e = np.exp(logits - logits.max())
    return e / e.sum()


def resized(gray: np.ndarray, side: int = 28) -> np.ndarray:
    """What the model's preprocessing should make of a picture: Pillow's bilinear resize to side x side."""
    return np.asarray(Image.fromarray(gray, "L").resize((side, side), Image.Resampling.BILINEAR))


def make_view(qtbot, dev, infos=None) -> InferenceView:
    view = InferenceView(LogPanel(), DevicePanel(infos, split=False))
    qtbot.addWidget(view)
    view.resize(1100, 600)
    view.show()
    view.devices.select([dev.id])
    return view


def open_model(qtbot, view: InferenceView, path) -> None:
    with qtbot.waitSignal(view.sigFinished, timeout=WAIT):
        assert view.open_model(str(path))


def run(qtbot, view: InferenceView) -> None:
    with qtbot.waitSignal(view.sigFinished, timeout=WAIT):
        assert view.run()


def draw_digit(canvas: DrawingCanvas, seed: int) -> None:
    """A seeded wobbly '7'-like stroke."""
    rng = np.random.default_rng(seed)
    points = [(70, 60), (210, 60), (140, 230)]
    canvas.draw_stroke([(x + rng.uniform(-15, 15), y + rng.uniform(-15, 15)) for x, y in points])


def check_top5(view: InferenceView, device_id: str, expected: np.ndarray) -> None:
    rows = view.table_rows(device_id)
    assert len(rows) == 5
    indices = [i for i, _ in rows]
    probs = np.array([p for _, p in rows])
    assert indices == np.argsort(-expected, kind="stable")[:5].tolist()
    assert np.all(np.diff(probs) <= 0) and probs.sum() <= 1 + 1e-9
    np.testing.assert_allclose(probs, expected[indices], rtol=0, atol=1e-5)
    assert view.results[device_id].latency_ms > 0
    latency = view.table.item(0, 4).data(Qt.ItemDataRole.UserRole)
    assert latency > 0 and view.table.item(0, 4).text().endswith(" ms")


def test_a_checkpoint_classifies_a_drawing(qtbot, usable_device, checkpoint):
    view = make_view(qtbot, usable_device)
    view.auto_box.setChecked(False)
    assert not view.run() and "Open a model first" in view.message.text()
    open_model(qtbot, view, checkpoint)
    assert view.model is not None and not view.message.isVisible()
    assert "checkpoint (LeNet5), input 1x28x28, 10 classes" in view.model_label.text()
    assert not view.run() and "drawing is empty" in view.message.text()
    draw_digit(view.canvas, seed=0)
    assert view.frame_box.isChecked()  # framed as MNIST's digits, then resized as an image file would be
    run(qtbot, view)
    assert view.device_errors == {} and view.table.rowCount() == 5, view.device_errors
    assert view.seen_caption.text() == "model input: 1x28x28"
    check_top5(view, usable_device.id, reference(checkpoint, resized(infer.frame_like_mnist(view.canvas.pixels()))))
    first = view.results[usable_device.id]
    view.clear_drawing()
    assert view.canvas.is_blank()
    draw_digit(view.canvas, seed=1)
    view.frame_box.setChecked(False)  # the square as drawn, only resized
    run(qtbot, view)  # the model stays loaded: no second load
    assert len(view.cache) == 1
    second = view.results[usable_device.id]
    assert not np.allclose(first.probabilities, second.probabilities)
    check_top5(view, usable_device.id, reference(checkpoint, resized(view.canvas.pixels())))


def test_dropping_a_checkpoint_and_images_classifies_them(qtbot, usable_device, checkpoint, tmp_path):
    rng = np.random.default_rng(3)
    digit = np.zeros((40, 40, 3), np.uint8)  # a colour image of another size: made gray and 28x28
    digit[8:32, 18:23] = rng.integers(150, 256, (24, 5, 3), dtype=np.uint8)
    png = tmp_path / "one.png"
    Image.fromarray(digit, "RGB").save(png)
    view = make_view(qtbot, usable_device)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(checkpoint)), QUrl.fromLocalFile(str(png))])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    view.dropEvent(event)  # opens the model, then runs on the image once it is in (auto-run)
    qtbot.waitUntil(lambda: usable_device.id in view.results and not view.is_running(), timeout=WAIT)
    assert view.input_box.currentText() == "one.png" and view.canvas.preview is not None
    gray = np.asarray(Image.open(png).convert("L"))
    check_top5(view, usable_device.id, reference(checkpoint, resized(gray)))

    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a png")
    with qtbot.waitSignal(view.sigFinished, timeout=WAIT):
        view.add_images([str(bad)])
    assert "not an image Pillow can read" in view.message.text() and view.table.rowCount() == 0
    assert "Traceback" not in view.message.text()
    view.input_box.setCurrentIndex(1)  # the good image again, chosen in the box
    run(qtbot, view)
    assert not view.message.isVisible() and len(view.table_rows(usable_device.id)) == 5


def test_bad_model_files_give_messages(qtbot, usable_device, tmp_path):
    view = make_view(qtbot, usable_device)
    junk = tmp_path / "junk.safetensors"
    junk.write_text("hello")
    weights = tmp_path / "weights.safetensors"
    hetero.save({"w": np.zeros(3, np.float32)}, weights)
    for path, words in ((junk, "must be a training checkpoint"), (weights, "not a hetero training checkpoint"),
                        (tmp_path / "missing.onnx", "no such file")):
        open_model(qtbot, view, path)
        text = view.message.text()
        assert view.message.isVisible() and words in text and "Traceback" not in text, text
        assert view.model is None and "could not be loaded" in view.model_label.text()
    assert not view.run() and "did not load" in view.message.text()
    assert view.log.count("error") == 3


def test_a_failing_device_gets_its_row_and_the_others_run(qtbot, usable_device, checkpoint):
    ghost = DeviceInfo(id="9:0", platform="Nowhere", name="Ghost GPU", vendor="X", type="gpu", compute_units=1)
    view = make_view(qtbot, usable_device, infos=[*hetero.devices(), ghost])
    view.devices.select([usable_device.id, "9:0"])
    view.auto_box.setChecked(False)
    open_model(qtbot, view, checkpoint)
    draw_digit(view.canvas, seed=2)
    run(qtbot, view)
    assert len(view.table_rows(usable_device.id)) == 5 and view.table.rowCount() == 6
    assert "9:0" in view.device_errors and "not available" in view.device_errors["9:0"]
    assert view.table.item(5, 0).text() == "9:0" and "9:0" in view.table.item(5, 1).text()


def test_the_canvas_draws_with_the_mouse_and_clears(qtbot):
    canvas = DrawingCanvas()
    qtbot.addWidget(canvas)
    canvas.resize(280, 280)
    canvas.show()
    assert canvas.is_blank() and not canvas.pixels().any()
    r = canvas.square()
    centre = QPoint(int(r.x() + r.width() / 2), int(r.y() + r.height() / 2))
    with qtbot.waitSignal(canvas.sigStroke, timeout=2000):
        qtbot.mousePress(canvas, Qt.MouseButton.LeftButton, pos=centre)
        qtbot.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=centre)
    pixels = canvas.pixels()
    assert pixels.shape == (280, 280) and pixels[140, 140] > 200 and pixels[0, 0] == 0
    canvas.clear()
    assert canvas.is_blank() and not canvas.pixels().any()


def test_a_drawing_is_framed_as_mnist_frames_its_digits():
    gray = np.zeros((280, 280), np.uint8)
    gray[10:50, 200:270] = 255  # a 40 x 70 blob in a corner
    framed = infer.frame_like_mnist(gray)
    ys, xs = np.nonzero(framed)
    assert max(ys.max() - ys.min() + 1, xs.max() - xs.min() + 1) == 200  # 20/28 of the side, aspect kept
    assert abs((ys.max() - ys.min() + 1) - 200 * 40 / 70) <= 1
    mass = framed.astype(np.float64)
    cy = (mass.sum(axis=1) * np.arange(280)).sum() / mass.sum() + 0.5
    cx = (mass.sum(axis=0) * np.arange(280)).sum() / mass.sum() + 0.5
    assert abs(cy - 140) <= 1 and abs(cx - 140) <= 1
    blank = np.zeros((280, 280), np.uint8)
    assert not infer.frame_like_mnist(blank).any()


# ----- ONNX -----


def tiny_onnx(path: Path, shape: list, weight: np.ndarray, bias: np.ndarray) -> None:
    """Flatten then Gemm: logits = x.flatten() @ weight.T + bias."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node("Flatten", ["x"], ["flat"], axis=1),
         helper.make_node("Gemm", ["flat", "w", "b"], ["logits"], transB=1)],
        "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", len(bias)])],
        [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(bias, "b")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)


def test_an_onnx_model_classifies_a_drawing(qtbot, usable_device, tmp_path):
    pytest.importorskip("onnx")
    rng = np.random.default_rng(11)
    weight = rng.normal(0, 0.5, (7, 3 * 8 * 8)).astype(np.float32)  # 3 x 8 x 8 RGB input -> 7 classes
    bias = rng.normal(0, 0.1, 7).astype(np.float32)
    path = tmp_path / "tiny.onnx"
    tiny_onnx(path, ["N", 3, 8, 8], weight, bias)
    view = make_view(qtbot, usable_device)
    view.auto_box.setChecked(False)
    view.frame_box.setChecked(False)
    open_model(qtbot, view, path)
    assert "ONNX model, input 3x8x8" in view.model_label.text()
    draw_digit(view.canvas, seed=4)
    run(qtbot, view)
    gray = resized(view.canvas.pixels(), 8).astype(np.float64) / 255  # no mean or std: pixels in 0-1
    logits = np.repeat(gray[None], 3, axis=0).reshape(-1) @ weight.T.astype(np.float64) + bias
    expected = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    check_top5(view, usable_device.id, expected)
    assert view.table.item(0, 2).text() == str(int(np.argmax(expected)))  # no class names: the index


def test_onnx_models_that_cannot_run_say_why(qtbot, usable_device, tmp_path):
    pytest.importorskip("onnx")
    rng = np.random.default_rng(12)
    free = tmp_path / "free.onnx"
    tiny_onnx(free, ["N", 1, "H", "W"], rng.normal(0, 1, (5, 64)).astype(np.float32), np.zeros(5, np.float32))
    wrong = tmp_path / "wrong.onnx"  # declares 1x4x4 input, but its Gemm wants 64 features
    tiny_onnx(wrong, ["N", 1, 4, 4], rng.normal(0, 1, (5, 64)).astype(np.float32), np.zeros(5, np.float32))
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"onnx?")
    view = make_view(qtbot, usable_device)
    view.auto_box.setChecked(False)
    open_model(qtbot, view, free)
    assert "does not say the size of its input images" in view.message.text()
    assert "export it with a fixed input shape" in view.message.text()
    open_model(qtbot, view, junk)
    assert "cannot be read as an ONNX model" in view.message.text()
    open_model(qtbot, view, wrong)
    assert view.model is not None
    draw_digit(view.canvas, seed=5)
    run(qtbot, view)
    shown = view.message.text() + " ".join(view.device_errors.values())
    assert "1x4x4" in shown or "64" in shown, shown
    assert "Traceback" not in shown and not view.results


def test_without_the_onnx_package_the_tab_says_how_to_install_it(qtbot, usable_device, tmp_path, monkeypatch):
    path = tmp_path / "m.onnx"
    path.write_bytes(b"onnx?")
    monkeypatch.setitem(sys.modules, "onnx", None)  # `import onnx` fails as if it were not installed
    monkeypatch.delitem(sys.modules, "hetero.onnx", raising=False)
    monkeypatch.delattr(hetero, "onnx", raising=False)
    view = make_view(qtbot, usable_device)
    assert view.onnx_label.isVisible() and "pip install 'hetero[onnx]'" in view.onnx_label.text()
    assert not view.open_model(str(path)) and "pip install 'hetero[onnx]'" in view.message.text()
    with pytest.raises(infer.InferenceError, match=r"pip install 'hetero\[onnx\]'"):
        infer.load(path, usable_device)  # the same words from the loader itself (hetero run's path)
