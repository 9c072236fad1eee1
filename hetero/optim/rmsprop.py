"""RMSprop as torch.optim.RMSprop (momentum, centered)."""

from __future__ import annotations

from .optimizer import RMSPROP_ID, Optimizer


class RMSprop(Optimizer):
    """RMSprop: steps scaled by a running RMS of the gradient (centered: its variance); optional momentum."""

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8, weight_decay: float = 0,
                 momentum: float = 0, centered: bool = False):
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered))

    def _check(self, g: dict) -> None:
        self._require(g["lr"] >= 0, "learning rate", g["lr"])
        self._require(g["eps"] >= 0, "epsilon value", g["eps"])
        self._require(g["momentum"] >= 0, "momentum value", g["momentum"])
        self._require(g["weight_decay"] >= 0, "weight_decay value", g["weight_decay"])
        self._require(g["alpha"] >= 0, "alpha value", g["alpha"])

    def _hyper(self, g: dict) -> tuple[float, ...]:
        alpha = float(g["alpha"])
        return (float(g["lr"]), alpha, 1.0 - alpha, float(g["eps"]), float(g["weight_decay"]), float(g["momentum"]))

    def _defines(self, g: dict) -> dict[str, int]:
        return {"OPTIM": RMSPROP_ID, "MOMENTUM": int(g["momentum"] > 0), "CENTERED": int(bool(g["centered"]))}

    def _state_names(self, g: dict) -> tuple[str, ...]:
        names = ("square_avg",)
        if g["momentum"] > 0:
            names += ("momentum_buffer",)
        if g["centered"]:
            names += ("grad_avg",)
        return names

    def _all_state_names(self) -> tuple[str, ...]:
        return ("square_avg", "momentum_buffer", "grad_avg")

    def _update(self, p, state, group, bufs, slot) -> None:
        self._launch("rmsprop_step", group, p, p, p.grad, state["square_avg"], state.get("grad_avg", p),
                     state.get("momentum_buffer", p), bufs.hyper)
