"""Dropout: zeroes elements with probability p in training mode (scaling the rest by 1/(1-p))."""

from __future__ import annotations

from .. import validate
from ..tensor import Tensor
from . import functional as F
from .module import Module


class Dropout(Module):
    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        if not validate.is_number(p) or not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: probability p must be between 0 and 1, got {p!r}")
        self.p = p
        self.inplace = bool(inplace)

    def forward(self, input: Tensor) -> Tensor:
        return F.dropout(input, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"
