"""Classify one image on one device: `hetero run`'s model loading, preprocessing and top classes, plus the
latency, for callers that are not the command line (the app's Inference tab).

Everything here goes through hetero/commands/run.py's helpers, so an image is prepared exactly as `hetero run`
prepares it: a checkpoint's recipe (or an ONNX model's declared input) gives the channels, size, mean and std.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .commands import run as _run
from .commands.run import Preprocessing, probabilities, top_classes
from .errors import HeteroError

__all__ = ["InferenceError", "LoadedModel", "Prediction", "Preprocessing", "canvas_pixels", "classify",
           "frame_like_mnist", "image_pixels", "is_onnx", "load", "model_input", "onnx_missing", "probabilities",
           "top_classes"]

ONNX_INSTALL = "pip install 'hetero[onnx]'"


class InferenceError(HeteroError):
    """A model, image or input that cannot be used; the message says why in words."""


@dataclass
class LoadedModel:
    """A model placed on one device (eval mode) with the preprocessing its inputs need."""

    path: str
    kind: str  # "checkpoint" or "onnx"
    device: object  # hetero Device
    model: object
    prep: Preprocessing

    def describe(self) -> str:
        """One line: the file's kind, input form and classes, e.g. 'checkpoint (LeNet5), input 1x28x28, 10 classes'."""
        h, w = self.prep.image_size
        what = f"{self.kind} ({type(self.model).__name__})" if self.kind == "checkpoint" else "ONNX model"
        classes = f", {len(self.prep.classes)} classes" if self.prep.classes else ""
        return f"{what}, input {self.prep.channels}x{h}x{w}{classes}"


@dataclass
class Prediction:
    """One input classified on one device: the top classes and the forward latency."""

    device_id: str
    top: list[tuple[int, str, float]]  # (class index, name, probability), most probable first
    probabilities: np.ndarray  # every class, float64
    latency_ms: float  # median of the timed runs: upload, forward, read back
    first_ms: float  # the first run, which builds the kernels a device has not built before
    runs: int


def is_onnx(path: str | os.PathLike) -> bool:
    """True for an .onnx file; anything else is read as a training checkpoint, as `hetero run` does."""
    return Path(path).suffix.lower() == ".onnx"


def onnx_missing() -> str | None:
    """None when ONNX files can be read, else how to make them readable."""
    if importlib.util.find_spec("onnx") is None:
        return f"Opening ONNX files needs the onnx package: {ONNX_INSTALL} (or pip install onnx)."
    return None


def load(path: str | os.PathLike, device) -> LoadedModel:
    """The model of a checkpoint or .onnx file on `device` (a hetero Device); InferenceError saying why not."""
    path = Path(path).expanduser()
    if not path.exists():
        raise InferenceError(f"{path}: no such file")
    if path.is_dir():
        raise InferenceError(f"{path} is a folder; open a checkpoint (.safetensors) or an .onnx file")
    try:
        if is_onnx(path):
            # no overrides: the input form comes from the model, as `hetero run` without its ONNX options
            no_options = argparse.Namespace(channels=None, image_size=None, mean=None, std=None, classes=None)
            model, prep = _run._load_onnx(path, device, no_options)
            kind = "onnx"
        else:
            model, prep = _run._load_checkpoint(path, device)
            kind = "checkpoint"
    except (_run.UsageError, _run.RunError) as e:
        raise InferenceError(_without_cli_options(str(e))) from None
    return LoadedModel(os.fspath(path), kind, device, model, prep)


def _without_cli_options(message: str) -> str:
    """run.py's messages name its command-line options; outside the command line, say what to do instead."""
    if "--image-size" in message:
        head = message.split(";")[0]
        return (f"{head}; export it with a fixed input shape (N, C, H, W), or classify with "
                "`hetero run MODEL --image-size H W --channels 1|3`")
    return message.replace("MODEL must be", "the model must be")


def image_pixels(path: str | os.PathLike, prep: Preprocessing) -> np.ndarray:
    """An image file as uint8 (C, H, W) of the model's input form (Pillow, as `hetero run` decodes)."""
    from .data.folder import BadImageError, decode_image

    try:
        return decode_image(Path(path).expanduser(), prep.channels, prep.image_size)
    except BadImageError as e:
        raise InferenceError(f"{e}; open a PNG, JPEG or other image file Pillow reads") from None


def canvas_pixels(pixels: np.ndarray, prep: Preprocessing) -> np.ndarray:
    """A drawn uint8 (H, W) grayscale picture as uint8 (C, H, W) of the model's input form (resized, channels
    converted by the same code as an image file)."""
    from PIL import Image

    from .data.folder import convert_image

    gray = np.ascontiguousarray(pixels, dtype=np.uint8)
    if gray.ndim != 2:
        raise InferenceError(f"a drawing is one grayscale plane (H, W), got shape {gray.shape}")
    return convert_image(Image.fromarray(gray, "L"), prep.channels, prep.image_size)


def frame_like_mnist(pixels: np.ndarray, fraction: float = 20 / 28) -> np.ndarray:
    """A drawing reframed as MNIST frames its digits: the ink's bounding box scaled (aspect kept) to `fraction`
    of the side, its centre of mass put at the centre. uint8 (H, W) in and out; a blank drawing is unchanged."""
    from PIL import Image

    gray = np.ascontiguousarray(pixels, dtype=np.uint8)
    ys, xs = np.nonzero(gray)
    if len(ys) == 0:
        return gray.copy()
    crop = gray[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1]
    height, width = gray.shape
    scale = fraction * min(height, width) / max(crop.shape)
    h, w = max(1, round(crop.shape[0] * scale)), max(1, round(crop.shape[1] * scale))
    bilinear = getattr(Image, "Resampling", Image).BILINEAR
    small = np.asarray(Image.fromarray(crop, "L").resize((w, h), bilinear))
    mass = small.astype(np.float64)
    total = mass.sum()
    if total == 0:  # ink too faint to survive the resize: centre the box instead
        cy, cx = h / 2, w / 2
    else:
        cy = (mass.sum(axis=1) * np.arange(h)).sum() / total + 0.5
        cx = (mass.sum(axis=0) * np.arange(w)).sum() / total + 0.5
    top = int(np.clip(round(height / 2 - cy), 0, height - h))
    left = int(np.clip(round(width / 2 - cx), 0, width - w))
    out = np.zeros_like(gray)
    out[top: top + h, left: left + w] = small
    return out


def model_input(pixels: np.ndarray, prep: Preprocessing) -> np.ndarray:
    """float32 (1, C, H, W) model input of uint8 (C, H, W) pixels, normalised as `hetero run` does."""
    return _run._inputs(np.asarray(pixels, np.uint8)[None], prep)


def classify(loaded: LoadedModel, x: np.ndarray, top: int = 5, runs: int = 5) -> Prediction:
    """Forward x (1, C, H, W) `runs` + 1 times: the first builds and warms up, the median of the others is the
    latency; each run is timed from upload to read back, what one image costs a caller."""
    times = []
    out = None
    for _ in range(runs + 1):
        start = time.perf_counter()
        try:
            out = _run._forward(loaded.model, x, loaded.device)
        except _run.RunError as e:
            raise InferenceError(str(e)) from None
        times.append(1000.0 * (time.perf_counter() - start))
    probs = probabilities(out)
    if probs.shape[0] != 1:
        raise InferenceError(f"the model gave {probs.shape[0]} rows of outputs for one image (output shape "
                             f"{tuple(np.shape(out))}); it does not classify one image at a time")
    device_id = getattr(loaded.device, "id", str(loaded.device))
    return Prediction(device_id, top_classes(probs, loaded.prep.classes, top)[0], probs[0],
                      float(np.median(times[1:])) if runs else times[0], times[0], runs)

