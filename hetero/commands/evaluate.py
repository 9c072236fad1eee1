"""`hetero eval`: a `hetero train` checkpoint's test accuracy and confusion matrix."""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from . import int_arg


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..recipe import DATASET_NAMES

    p = sub.add_parser("eval", help="test accuracy and confusion matrix of a training checkpoint",
                       description="Rebuild the model a `hetero train` checkpoint holds and evaluate it on a test set.")
    p.add_argument("--checkpoint", metavar="PATH", required=True, help="a checkpoint written by hetero train")
    p.add_argument("--dataset", choices=DATASET_NAMES, default=None, help="default: the one it was trained on")
    p.add_argument("--data", metavar="DIR", default=None,
                   help="folder with the IDX files, the only place looked when given (default: $HETERO_DATA_DIR, "
                        "~/.cache/hetero/datasets, /usr/share/datasets, the checkout's data/, then a download)")
    p.add_argument("--device", metavar="SPEC", default=None, help="device spec (see `hetero devices`)")
    p.add_argument("--batch-size", type=int_arg(1), default=None,
                   help="evaluation batch size (default: the checkpoint's, else 500)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


def format_confusion(confusion: np.ndarray, classes) -> str:
    """The matrix with true classes as rows and predicted classes as columns, and each class's recall."""
    labels = [str(c) for c in classes]
    labels += [str(i) for i in range(len(labels), len(confusion))]
    short = [lab if len(lab) <= 10 else lab[:9] + "." for lab in labels]
    cell = max(5, *(len(str(int(v))) for v in confusion.reshape(-1)), *(len(s) for s in short))
    head = max(len(s) for s in short)
    lines = [" " * head + "  predicted ->", " " * head + "  " + " ".join(s.rjust(cell) for s in short) + "  recall"]
    for i, row in enumerate(confusion):
        total = int(row.sum())
        recall = f"{100 * row[i] / total:6.2f}%" if total else "     -"
        lines.append(short[i].rjust(head) + "  " + " ".join(str(int(v)).rjust(cell) for v in row) + "  " + recall)
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from .. import device as get_device
    from .. import recipe as R
    from ..checkpoint import CheckpointError, load_training
    from ..nn import StateDictError
    from ..train import evaluate
    from ..train.checkpoints import check_state

    ck = load_training(args.checkpoint)
    try:
        recipe = R.recipe_from_checkpoint(ck)
    except R.RecipeError as e:
        print(f"hetero: error: {args.checkpoint}: {e}", file=sys.stderr)
        return 1
    recipe = recipe.replace(dataset=args.dataset or recipe.dataset, model_kwargs=recipe.model_kwargs,
                            eval_batch_size=args.batch_size or recipe.eval_batch_size)
    dev = get_device(args.device)
    try:
        model = R.build_model(recipe, dev)
        check_state(args.checkpoint, model, ck)
        model.load_state_dict(ck["model"])
    except (R.RecipeError, StateDictError, CheckpointError) as e:
        print(f"hetero: error: {args.checkpoint}: its weights do not fit the {recipe.model} its recipe names "
              f"(a damaged or hand-edited checkpoint?): {' '.join(str(e).split())[:600]}", file=sys.stderr)
        return 1
    test_set = R.build_dataset(recipe, args.data, train=False)
    _, loader = R.build_loaders(recipe, dev, None, test_set)
    loss, accuracy, confusion, _ = evaluate(model, loader)
    n = int(confusion.sum())
    if args.json:
        print(json.dumps({"model": recipe.model, "dataset": recipe.dataset, "images": n, "test_loss": loss,
                          "test_accuracy": accuracy, "confusion": confusion.tolist(),
                          "classes": list(test_set.classes)}))
        return 0
    print(f"{recipe.model} on {recipe.dataset} test ({n} images), {dev.id} {dev.info.name}")
    print(f"test accuracy: {100 * accuracy:.2f}% ({int(np.trace(confusion))}/{n})  loss {loss:.4f}")
    print("confusion matrix (rows: true class, columns: predicted class):")
    print(format_confusion(confusion, test_set.classes))
    return 0
