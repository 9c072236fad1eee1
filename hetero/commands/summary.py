"""`hetero summary`: a model's layers, output shapes, parameters, FLOPs and planned training memory."""

from __future__ import annotations

import argparse

from ..models import MODELS

_IMAGENET_INPUT = {"alexnet": (3, 227, 227)}  # every other ImageNet model takes 3x224x224


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("summary", help="layers, shapes, parameters, FLOPs and memory of a model",
                       description="Print a model's layers with output shapes, parameters and forward FLOPs, "
                       "the algorithms each convolution runs on the device (forward / input gradient / weight "
                       "gradient), and the device memory a compiled training step plans for.")
    p.add_argument("model", choices=sorted(MODELS))
    p.add_argument("--imagenet", action="store_true",
                   help="build the ImageNet form (3x224x224 input, 1000 classes) instead of the MNIST one "
                   "(1x28x28, 10 classes); alexnet and resnet34 are always ImageNet models")
    p.add_argument("--batch-size", type=int, default=1, help="batch of the forward (default 1)")
    p.add_argument("--device", metavar="SPEC", default=None, help="device spec (see `hetero devices`)")
    p.add_argument("--no-train-step", action="store_true", help="skip tracing a training step")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..device import device
    from ..models import get_model
    from ..summary import summary
    from ..train import MODEL_NAMES, model_kwargs

    if args.batch_size < 1:
        raise SystemExit(f"hetero summary: --batch-size must be at least 1, got {args.batch_size}")
    dev = device(args.device)
    if args.imagenet or args.model not in MODEL_NAMES:
        kwargs: dict = {}
        shape = _IMAGENET_INPUT.get(args.model, (3, 224, 224))
    else:
        kwargs = model_kwargs(args.model)
        shape = (1, 28, 28)
    model = get_model(args.model, device=dev, **kwargs)
    summary(model, (args.batch_size, *shape), train_step=not args.no_train_step, name=args.model)
    return 0
