"""evaluate(): a model's loss, accuracy, confusion matrix and predictions over a loader."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..autograd import no_grad
from ..graph import compile as compile_model
from ..nn import functional as F
from ..tensor import Tensor, tensor
from .readback import Readback


def evaluate(model, loader, loss_fn: Callable[[Tensor, Tensor], Tensor] = F.cross_entropy, compiled=None,
             readback_lag: int = 2) -> tuple[float, float, np.ndarray, np.ndarray]:
    """(mean loss, accuracy in [0, 1], confusion[true, predicted] as int64, predictions as int32 in order).

    Runs in eval mode (restored after) through `compiled`, a hetero.compile(model) to reuse, or a new one."""
    was_training = model.training
    model.eval()
    compiled = compiled if compiled is not None else compile_model(model)
    dev = compiled.device
    rb = Readback(readback_lag)
    total_loss = 0.0
    count = 0
    preds: list[np.ndarray] = []
    targets: list[np.ndarray] = []

    def consume(drain: bool) -> None:
        nonlocal total_loss, count
        for n, loss, out, target in rb.ready(drain):
            total_loss += float(loss.reshape(())) * n
            count += n
            preds.append(np.argmax(out.reshape(n, -1), axis=1).astype(np.int32))
            targets.append(target.reshape(-1).astype(np.int32))

    try:
        for x, y in batches(loader):
            out = compiled(x)
            yt = y if isinstance(y, Tensor) else tensor(np.asarray(y, np.int32), device=dev)
            with no_grad():
                loss = loss_fn(out, yt)
            rb.push(int(yt.shape[0]), loss, out, yt)
            consume(False)
        consume(True)
    finally:
        rb.clear()
        model.train(was_training)
    pred = np.concatenate(preds) if preds else np.zeros(0, np.int32)
    true = np.concatenate(targets) if targets else np.zeros(0, np.int32)
    classes = _num_classes(loader, pred, true)
    confusion = np.zeros((classes, classes), np.int64)
    np.add.at(confusion, (true, pred), 1)
    accuracy = float(np.count_nonzero(pred == true)) / count if count else 0.0
    return (total_loss / count if count else 0.0), accuracy, confusion, pred


def _num_classes(loader, pred: np.ndarray, true: np.ndarray) -> int:
    classes = getattr(getattr(loader, "dataset", None), "classes", None)
    n = len(classes) if classes is not None else 0
    if pred.size:
        n = max(n, int(pred.max()) + 1, int(true.max()) + 1)
    return n


def batches(loader, epoch: int | None = None, start: int = 0):
    """The loader's batches for an epoch from batch `start` (loader.iterate), or plain iteration."""
    if epoch is not None and hasattr(loader, "iterate"):
        return loader.iterate(epoch, start)
    if epoch is not None and hasattr(loader, "set_epoch"):
        loader.set_epoch(epoch)
    it = iter(loader)
    for _ in range(start):
        next(it, None)
    return it
