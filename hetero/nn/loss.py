"""Loss modules with torch's names and arguments; each calls its functional op."""

from __future__ import annotations

from .. import validate
from ..tensor import Tensor
from . import functional as F
from .module import Module


class _WeightedLoss(Module):
    def __init__(self, weight: Tensor | None = None, ignore_index: int = -100, reduction: str = "mean"):
        super().__init__()
        if reduction not in ("none", "mean", "sum"):
            raise ValueError(f"{type(self).__name__}: reduction must be 'none', 'mean' or 'sum', got {reduction!r}")
        if not validate.is_int(ignore_index):  # int() would make an ignore_index of 2.5 a silent 2
            raise ValueError(f"{type(self).__name__}: ignore_index must be an int, got {ignore_index!r}")
        self.register_buffer("weight", weight)
        self.ignore_index = int(ignore_index)
        self.reduction = reduction

    def extra_repr(self) -> str:
        return f"ignore_index={self.ignore_index}, reduction={self.reduction!r}"


class CrossEntropyLoss(_WeightedLoss):
    """Logits [N, C] and int32 class ids [N]: log_softmax + nll_loss in one kernel."""

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.cross_entropy(input, target, self.weight, self.ignore_index, self.reduction)


class NLLLoss(_WeightedLoss):
    """Log-probabilities [N, C] and int32 class ids [N]."""

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.nll_loss(input, target, self.weight, self.ignore_index, self.reduction)
