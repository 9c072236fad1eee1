"""`hetero run`: classify images with a trained model, printing each image's top classes and probabilities.

A training checkpoint carries its preprocessing in its recipe (an image folder's channels, size, per-channel
mean/std and class names; MNIST's for the IDX data sets), so new images are decoded, resized and normalised
exactly as the training images were. An ONNX file is read by hetero.onnx where this hetero has it; its input
form comes from the model, or from --image-size / --channels / --mean / --std.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import float_arg, int_arg


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..data.folder import MAX_IMAGE_SIDE

    p = sub.add_parser("run", help="classify images with a trained model (top classes and probabilities)",
                       description="Classify images with a `hetero train` checkpoint (or an ONNX model): the "
                                   "top classes and their probabilities for each image.")
    p.add_argument("model", metavar="MODEL", help="a training checkpoint (.safetensors written by hetero train) or "
                   "an ONNX model (.onnx)")
    p.add_argument("--input", metavar="FILE|DIR", required=True,
                   help="an image (PNG, JPEG, anything Pillow opens), or a folder of them (searched recursively)")
    p.add_argument("--device", metavar="SPEC", default=None, help="device spec (see `hetero devices`)")
    p.add_argument("--top", type=int_arg(1), default=5, help="classes shown per image (default 5)")
    p.add_argument("--batch-size", type=int_arg(1), default=64, help="images per forward pass (default 64)")
    p.add_argument("--skip-bad", action="store_true", help="in a folder: skip files that cannot be read as images")
    p.add_argument("--json", action="store_true", help="print one JSON list: file, then classes with probabilities")
    onnx = p.add_argument_group("ONNX models only (a checkpoint's preprocessing comes from its recipe)")
    onnx.add_argument("--image-size", nargs=2, type=int_arg(1, MAX_IMAGE_SIDE), metavar=("H", "W"), default=None,
                      help="resize images to H x W (default: the model's input size)")
    onnx.add_argument("--channels", type=int, choices=(1, 3), default=None,
                      help="1 grayscale or 3 RGB (default: the model's input channels)")
    onnx.add_argument("--mean", nargs="+", type=float_arg(), default=None, metavar="M",
                      help="per-channel mean of pixels scaled to 0-1, subtracted (default 0)")
    onnx.add_argument("--std", nargs="+", type=float_arg(1e-12), default=None, metavar="S",
                      help="per-channel std the pixels are divided by (default 1)")
    onnx.add_argument("--classes", metavar="FILE", default=None, help="class names, one a line (default: indices)")
    p.set_defaults(func=run)


@dataclass(frozen=True)
class Preprocessing:
    """How an image becomes model input: decoded to `channels` x image_size, scaled to 0-1, (x - mean) / std."""

    channels: int
    image_size: tuple[int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    classes: tuple[str, ...]


class UsageError(Exception):
    """Bad arguments: exit status 2."""


class RunError(Exception):
    """A file that cannot be used (model or image): exit status 1."""


def _error(message: str, status: int) -> int:
    prefix = "hetero run: error" if status == 2 else "hetero: error"
    print(f"{prefix}: {message}", file=sys.stderr)
    return status


def recipe_preprocessing(recipe) -> Preprocessing:
    """The preprocessing a training recipe's data set used: its image folder's, else the IDX data set's."""
    from ..data import DATASETS

    folder = recipe.folder
    if folder is not None:
        return Preprocessing(folder.channels, tuple(folder.image_size), tuple(folder.mean), tuple(folder.std),
                             tuple(folder.classes))
    data = DATASETS[recipe.dataset]
    return Preprocessing(1, tuple(data.IMAGE_SIZE), (data.MEAN,), (data.STD,), tuple(data.CLASSES))


# ----- the model -----


def _load_checkpoint(path: Path, dev):
    """(model in eval mode, its Preprocessing) from a hetero train checkpoint; RunError saying why not."""
    from .. import recipe as R
    from ..checkpoint import CheckpointError, load_training
    from ..nn import StateDictError
    from ..train.checkpoints import check_state

    try:
        ck = load_training(path)
        recipe = R.recipe_from_checkpoint(ck)
    except (CheckpointError, R.RecipeError) as e:
        text = str(e) if str(e).startswith(str(path)) else f"{path}: {e}"
        raise RunError(f"{text}; MODEL must be a training checkpoint written by hetero train (or an .onnx file)") \
            from None
    try:
        model = R.build_model(recipe, dev)
        check_state(path, model, ck)
        model.load_state_dict(ck["model"])
    except (R.RecipeError, StateDictError, CheckpointError) as e:
        raise RunError(f"{path}: its weights do not fit the {recipe.model} its recipe names (a damaged or "
                       f"hand-edited checkpoint?): {' '.join(str(e).split())[:600]}") from None
    model.eval()
    prep = recipe_preprocessing(recipe)
    classes = _all_classes(prep.classes, int(recipe.model_kwargs.get("num_classes", len(prep.classes))))
    return model, Preprocessing(prep.channels, prep.image_size, prep.mean, prep.std, classes)


def _all_classes(names: Sequence[str], count: int) -> tuple[str, ...]:
    return tuple(names[:count]) + tuple(str(i) for i in range(len(names), count))


def _load_onnx(path: Path, dev, args: argparse.Namespace):
    """(model, Preprocessing) of an ONNX file through hetero.onnx; UsageError while this hetero has none."""
    try:
        from .. import onnx as honnx
    except ModuleNotFoundError as e:
        if e.name != "hetero.onnx":
            raise UsageError(f"{path}: hetero.onnx cannot be imported: {e}") from None
        honnx = None
    except ImportError as e:  # it exists but needs a package that is missing: its message says which
        raise UsageError(f"{path}: {e}") from None
    if getattr(honnx, "load", None) is None:
        raise UsageError(f"{path}: ONNX models are not supported yet (this hetero has no hetero.onnx.load); run a "
                         "training checkpoint (.safetensors written by hetero train)")
    try:
        model = honnx.load(os.fspath(path), dev)
    except Exception as e:  # noqa: BLE001 (a damaged file fails in protobuf, onnx or the importer, each its own way)
        raise RunError(f"{path}: cannot be read as an ONNX model hetero runs ({type(e).__name__}: "
                       f"{' '.join(str(e).split())[:400]})") from None
    if hasattr(model, "eval"):
        model.eval()
    known = tuple(v if isinstance(v, int) and v > 0 else None for v in _onnx_input_shape(model)[1:])
    channels = args.channels or known[0]
    size = tuple(args.image_size) if args.image_size else known[1:]
    if channels is None or None in size:
        raise UsageError(f"{path}: the model does not say the size of its input images; name it with "
                         "--image-size H W and --channels 1|3")
    if channels not in (1, 3):
        raise UsageError(f"{path}: the model takes {channels}-channel images; hetero run reads 1 (grayscale) or 3 "
                         "(RGB)")
    mean = _per_channel("--mean", args.mean, channels, 0.0)
    std = _per_channel("--std", args.std, channels, 1.0)
    return model, Preprocessing(channels, size, mean, std, _class_names(args.classes))


def _onnx_input_shape(model) -> tuple:
    """The (N, C, H, W) an ONNX model declares for its first input (None where free or unknown)."""
    shape = getattr(model, "input_shape", None)
    graph = getattr(model, "_onnx", None)  # hetero.onnx keeps each input's declared shape there
    if shape is None and getattr(graph, "inputs", None):
        shape = graph.inputs[0][2]
    return tuple(shape) if shape is not None and len(shape) == 4 else (None,) * 4


def _per_channel(option: str, values: list[float] | None, channels: int, default: float) -> tuple[float, ...]:
    if values is None:
        return (default,) * channels
    if len(values) not in (1, channels):
        want = "1 value" if channels == 1 else f"1 or {channels} values (one per channel)"
        raise UsageError(f"{option}: give {want} for the model's {channels}-channel input, got {len(values)}")
    return tuple(values) * (channels // len(values))


def _class_names(path: str | None) -> tuple[str, ...]:
    if path is None:
        return ()
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"--classes {path}: cannot be read ({getattr(e, 'strerror', None) or e}); name a text "
                         "file with one class name a line") from None
    return tuple(line.strip() for line in lines if line.strip())


# ----- the images -----


def input_files(path: Path) -> list[tuple[Path, str]]:
    """(file, name shown) of each image to classify: the file itself, or a folder's image files, sorted."""
    from ..data.folder import image_suffixes

    if path.is_file():
        return [(path, os.fspath(path))]
    suffixes = image_suffixes()
    found = []
    for here, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            file = Path(here) / name
            if not name.startswith(".") and file.suffix.lower() in suffixes and file.is_file():
                found.append((file, file.relative_to(path).as_posix()))
    if not found:
        raise RunError(f"{path}: holds no images (files ending in .png, .jpg, .jpeg, .bmp, ...)")
    return found


def _batches(files: list[tuple[Path, str]], prep: Preprocessing, batch_size: int, skip_bad: bool,
             skipped: list[tuple[Path, str]]) -> Iterator[tuple[list[str], np.ndarray]]:
    """(names, uint8 images (B, C, H, W)) of the readable files, batch by batch."""
    from ..data.folder import BadImageError, decode_image

    names: list[str] = []
    images: list[np.ndarray] = []
    for path, name in files:
        try:
            images.append(decode_image(path, prep.channels, prep.image_size))
        except BadImageError as e:
            if not skip_bad:
                hint = "; pass --skip-bad to skip such files" if len(files) > 1 else \
                    "; name a PNG, JPEG or other image file Pillow reads"
                raise RunError(f"{e}{hint}") from None
            skipped.append((path, e.reason))
            continue
        names.append(name)
        if len(images) == batch_size:
            yield names, np.stack(images)
            names, images = [], []
    if images:
        yield names, np.stack(images)


def _inputs(images: np.ndarray, prep: Preprocessing) -> np.ndarray:
    """float32 model input, normalised by the DataLoader's own code (what training used)."""
    from ..data import ArrayDataset, DataLoader

    dataset = ArrayDataset(images, np.zeros(len(images), np.int64), classes=prep.classes or None,
                           mean=list(prep.mean), std=list(prep.std))
    loader = DataLoader(dataset, len(images), prefetch=False)
    x, _ = loader.host_batch(np.arange(len(images)))
    return x


def probabilities(outputs: np.ndarray) -> np.ndarray:
    """Class probabilities of (B, K) model outputs: softmax of logits; outputs that already are probabilities
    (non-negative rows summing to 1, as an exported model ending in softmax gives) pass unchanged."""
    out = np.asarray(outputs, np.float64).reshape(len(outputs), -1)
    if out.size and out.min() >= 0 and np.allclose(out.sum(axis=1), 1.0, atol=1e-4):
        return out
    shifted = out - out.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=1, keepdims=True)


def top_classes(probs: np.ndarray, classes: Sequence[str], k: int) -> list[list[tuple[int, str, float]]]:
    """Each row's k most probable (index, name, probability), most probable first (ties: lower index)."""
    rows = []
    for row in probs:
        order = np.argsort(-row, kind="stable")[:k]
        rows.append([(int(i), classes[i] if i < len(classes) else str(int(i)), float(row[i])) for i in order])
    return rows


def _forward(model, x: np.ndarray, dev) -> np.ndarray:
    from ..autograd import no_grad
    from ..tensor import Tensor, tensor

    try:
        with no_grad():
            out = model(tensor(x, dev))
    except ValueError as e:  # an ONNX graph that takes another input form than the one named
        raise RunError(f"the model cannot run on images of {'x'.join(map(str, x.shape[1:]))} (CxHxW): "
                       f"{' '.join(str(e).split())[:400]}") from None
    if isinstance(out, dict):
        out = next(iter(out.values()))
    if isinstance(out, (list, tuple)):
        out = out[0]
    return out.numpy() if isinstance(out, Tensor) else np.asarray(out)


# ----- the command -----


def _problem(args: argparse.Namespace) -> str | None:
    model, given = Path(args.model).expanduser(), Path(args.input).expanduser()
    if not model.exists():
        return f"MODEL {args.model}: no such file; name a checkpoint written by hetero train (or an .onnx file)"
    if model.is_dir():
        return f"MODEL {args.model} is a folder; name a checkpoint file in it"
    if not given.exists():
        return f"--input {args.input}: no such file or folder; name an image or a folder of images"
    onnx_only = [o for o, v in (("--image-size", args.image_size), ("--channels", args.channels),
                                ("--mean", args.mean), ("--std", args.std), ("--classes", args.classes)) if v]
    if onnx_only and model.suffix.lower() != ".onnx":
        return (f"{', '.join(onnx_only)}: only for ONNX models; a checkpoint's preprocessing and class names come "
                "from its training recipe")
    return None


def run(args: argparse.Namespace) -> int:
    """Classify --input with MODEL; the exit status (2: bad arguments, 1: a model or image that cannot be used)."""
    from .. import device as get_device

    problem = _problem(args)
    if problem:
        return _error(problem, 2)
    model_path, given = Path(args.model).expanduser(), Path(args.input).expanduser()
    try:
        files = input_files(given)
        dev = get_device(args.device)
        if model_path.suffix.lower() == ".onnx":
            model, prep = _load_onnx(model_path, dev, args)
        else:
            model, prep = _load_checkpoint(model_path, dev)
        results, skipped = [], []
        for names, images in _batches(files, prep, args.batch_size, args.skip_bad, skipped):
            probs = probabilities(_forward(model, _inputs(images, prep), dev))
            for name, top in zip(names, top_classes(probs, prep.classes, args.top)):
                if args.json:
                    results.append({"file": name, "top": [{"class": c, "index": i, "probability": p}
                                                          for i, c, p in top]})
                else:
                    print(f"{name}: " + ", ".join(f"{c} {100 * p:.2f}%" for _, c, p in top), flush=True)
    except UsageError as e:
        return _error(str(e), 2)
    except RunError as e:
        return _error(str(e), 1)
    if args.json:
        print(json.dumps(results))
    if skipped:
        print(f"hetero: skipped {len(skipped)} file(s) that are not usable images (--skip-bad), e.g. "
              f"{skipped[0][0]}: {skipped[0][1]}", file=sys.stderr)
        if len(skipped) == len(files):
            return _error(f"{given}: none of its {len(files)} image files could be read", 1)
    return 0
