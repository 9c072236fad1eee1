"""Adam and AdamW as torch.optim.Adam / AdamW (amsgrad, L2 or decoupled weight decay)."""

from __future__ import annotations

import math

import numpy as np

from .optimizer import ADAM_ID, Optimizer


def _log(beta: float) -> float:
    return math.log(beta) if beta > 0 else -math.inf  # -inf makes the kernel's 1 - beta^t exactly 1


class Adam(Optimizer):
    """Adam (L2 weight decay added to the gradient); amsgrad keeps the running maximum of exp_avg_sq."""

    _decoupled = False

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, amsgrad: bool = False):
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      amsgrad=amsgrad))

    def _check(self, g: dict) -> None:
        self._require(g["lr"] >= 0, "learning rate", g["lr"])
        self._require(g["eps"] >= 0, "epsilon value", g["eps"])
        betas = g["betas"]
        self._require(len(betas) == 2, "betas (need two)", betas)
        self._require(0 <= betas[0] < 1, "beta parameter at index 0", betas[0])
        self._require(0 <= betas[1] < 1, "beta parameter at index 1", betas[1])
        self._require(g["weight_decay"] >= 0, "weight_decay value", g["weight_decay"])
        # torch's state_dict says which of Adam / AdamW it came from
        if bool(g.get("decoupled_weight_decay", self._decoupled)) != self._decoupled:
            raise ValueError(f"{self._name}: decoupled_weight_decay={g['decoupled_weight_decay']} belongs to "
                             f"{'Adam' if self._decoupled else 'AdamW'}")

    def _hyper(self, g: dict) -> tuple[float, ...]:
        lr, wd = float(g["lr"]), float(g["weight_decay"])
        b1, b2 = (float(b) for b in g["betas"])
        return (lr, b1, b2, 1.0 - b1, 1.0 - b2, _log(b1), _log(b2), float(g["eps"]), wd, 1.0 - lr * wd)

    def _defines(self, g: dict) -> dict[str, int]:
        return {"OPTIM": ADAM_ID, "DECOUPLED_WD": int(self._decoupled), "AMSGRAD": int(bool(g["amsgrad"]))}

    def _state_names(self, g: dict) -> tuple[str, ...]:
        return ("exp_avg", "exp_avg_sq", "max_exp_avg_sq") if g["amsgrad"] else ("exp_avg", "exp_avg_sq")

    def _all_state_names(self) -> tuple[str, ...]:
        return ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")

    def _update(self, p, state, group, bufs, slot) -> None:
        vmax = state.get("max_exp_avg_sq", p)
        self._launch("adam_step", group, p, p, p.grad, state["exp_avg"], state["exp_avg_sq"], vmax,
                     bufs.hyper, bufs.steps, np.int32(slot))


class AdamW(Adam):
    """Adam with decoupled weight decay: the parameter shrinks by lr * weight_decay before the Adam step."""

    _decoupled = True

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad)
