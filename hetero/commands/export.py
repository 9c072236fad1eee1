"""`hetero export`: a `hetero train` checkpoint's model, or a zoo model by name, as an ONNX file."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from . import int_arg, output_problem

# The input (without the batch) each zoo model is made for, the default of --model NAME without --input-shape
NATURAL_INPUT: dict[str, tuple[int, ...]] = {
    "lenet5": (1, 28, 28),
    "alexnet_mnist": (1, 28, 28),
    "alexnet": (3, 227, 227),
    "resnet18": (3, 224, 224),
    "resnet34": (3, 224, 224),
    "preact_resnet18": (3, 32, 32),
    "mobilenet_v1": (3, 224, 224),
}


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..models import MODELS

    p = sub.add_parser("export", help="write a training checkpoint's model (or a zoo model) as an ONNX file",
                       usage="hetero export (CHECKPOINT | --model NAME [--weights FILE]) OUT.onnx [options]",
                       description="Write a `hetero train` checkpoint's model, or a zoo model by name, as an ONNX "
                                   "file (opset 17, eval mode: no dropout, batch norm with its running statistics) "
                                   "with input \"input\" of shape (N, C, H, W), N free, and output \"output\".")
    p.add_argument("paths", nargs="+", metavar="PATH", help="CHECKPOINT OUT.onnx, or only OUT.onnx with --model")
    p.add_argument("--model", choices=sorted(MODELS), default=None,
                   help="export this zoo model (its default settings) instead of a checkpoint's")
    p.add_argument("--weights", metavar="FILE", default=None,
                   help="with --model: a state_dict saved by hetero.save (default: freshly initialised weights)")
    p.add_argument("--num-classes", type=int_arg(1), default=None, help="with --model: the classifier's outputs")
    p.add_argument("--input-shape", nargs=3, type=int_arg(1), metavar=("C", "H", "W"), default=None,
                   help="channels and image size (default: a checkpoint's images', or the model's natural input, "
                        "e.g. 3 224 224 for resnet18)")
    p.add_argument("--device", metavar="SPEC", default=None, help="device spec (see `hetero devices`)")
    p.set_defaults(func=run)


def _usage_error(message: str) -> int:
    print(f"hetero export: error: {message}", file=sys.stderr)
    return 2


def _error(message: str) -> int:
    print(f"hetero: error: {message}", file=sys.stderr)
    return 1


def _from_checkpoint(path: str, dev):
    """(model, its input shape) of a training checkpoint; CheckpointError / RecipeError / StateDictError if not."""
    from .. import recipe as R
    from ..checkpoint import load_training
    from ..train.checkpoints import check_state
    from .run import recipe_preprocessing

    ck = load_training(path)
    recipe = R.recipe_from_checkpoint(ck)
    model = R.build_model(recipe, dev)
    check_state(path, model, ck)
    model.load_state_dict(ck["model"])
    prep = recipe_preprocessing(recipe)
    return model, (prep.channels, *prep.image_size)


def _from_zoo(args: argparse.Namespace, dev):
    from ..checkpoint import load
    from ..models import get_model

    kwargs = {} if args.num_classes is None else {"num_classes": args.num_classes}
    model = get_model(args.model, device=dev, **kwargs)
    if args.weights is not None:
        model.load_state_dict(load(args.weights))
    return model, NATURAL_INPUT[args.model]


def run(args: argparse.Namespace) -> int:
    from .. import device as get_device
    from ..checkpoint import CheckpointError
    from ..nn import StateDictError
    from ..recipe import RecipeError

    try:
        from .. import onnx as honnx
    except ImportError as e:  # hetero.onnx says which package is missing
        return _usage_error(str(e))
    want = 1 if args.model else 2
    if len(args.paths) != want:
        return _usage_error("give CHECKPOINT OUT.onnx, or --model NAME OUT.onnx" if not args.model else
                            f"with --model give only OUT.onnx, got {len(args.paths)} paths")
    if not args.model and (args.weights or args.num_classes):
        return _usage_error("--weights and --num-classes go with --model; a checkpoint carries its own")
    source, out = (None, args.paths[0]) if args.model else args.paths
    problem = output_problem(out)
    if problem:
        return _usage_error(f"{out}: {problem}")
    if source is not None and Path(source).expanduser().resolve() == Path(out).expanduser().resolve():
        return _usage_error(f"{out} is the checkpoint itself; name another file for the ONNX model")
    dev = get_device(args.device)
    what = args.weights or source or args.model
    try:
        model, shape = _from_zoo(args, dev) if args.model else _from_checkpoint(source, dev)
    except (CheckpointError, RecipeError, StateDictError) as e:
        text = " ".join(str(e).split())[:600]
        return _error(text if what and text.startswith(str(what)) else f"{what}: {text}")
    shape = tuple(args.input_shape) if args.input_shape else shape
    proto = honnx.export(model.eval(), Path(out).expanduser(), shape)  # ExportError: main prints it, exit 1
    count = sum(p.size for p in model.parameters())
    name = args.model or type(model).__name__
    print(f"wrote {out}: {name}, input (N, {', '.join(map(str, shape))}), opset {honnx.OPSET}, {count:,} parameters, "
          f"{os.path.getsize(Path(out).expanduser()) / 2**20:.1f} MiB ({len(proto.graph.node)} nodes)")
    return 0
