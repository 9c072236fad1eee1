"""Adagrad as torch.optim.Adagrad."""

from __future__ import annotations

import numpy as np

from .optimizer import ADAGRAD_ID, Optimizer


class Adagrad(Optimizer):
    """Adagrad: per-element steps scaled by the root of the summed squared gradients; lr decays with t."""

    def __init__(self, params, lr: float = 1e-2, lr_decay: float = 0, weight_decay: float = 0,
                 initial_accumulator_value: float = 0, eps: float = 1e-10):
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value, eps=eps))

    def add_param_group(self, param_group: dict) -> None:
        super().add_param_group(param_group)
        group, bufs = self.param_groups[-1], self._buffers[-1]
        for slot, p in enumerate(group["params"]):  # torch creates Adagrad's state up front
            self._state_of(p, group, bufs, slot)

    def _check(self, g: dict) -> None:
        self._require(g["lr"] >= 0, "learning rate", g["lr"])
        self._require(g["lr_decay"] >= 0, "lr_decay value", g["lr_decay"])
        self._require(g["weight_decay"] >= 0, "weight_decay value", g["weight_decay"])
        self._require(g["initial_accumulator_value"] >= 0, "initial_accumulator_value value",
                      g["initial_accumulator_value"])
        self._require(g["eps"] >= 0, "epsilon value", g["eps"])

    def _hyper(self, g: dict) -> tuple[float, ...]:
        return (float(g["lr"]), float(g["lr_decay"]), float(g["weight_decay"]), float(g["eps"]))

    def _defines(self, g: dict) -> dict[str, int]:
        return {"OPTIM": ADAGRAD_ID}

    def _state_names(self, g: dict) -> tuple[str, ...]:
        return ("sum",)

    def _all_state_names(self) -> tuple[str, ...]:
        return ("sum",)

    def _state_init(self, name: str, g: dict) -> float:
        return float(g["initial_accumulator_value"])

    def _update(self, p, state, group, bufs, slot) -> None:
        self._launch("adagrad_step", group, p, p, p.grad, state["sum"], bufs.hyper, bufs.steps, np.int32(slot))
