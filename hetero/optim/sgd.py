"""SGD as torch.optim.SGD: momentum, dampening, Nesterov and L2 weight decay."""

from __future__ import annotations

import numpy as np

from ..tensor import Tensor
from .optimizer import SGD_ID, GroupBuffers, Optimizer


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum, dampening and L2 weight decay."""

    _has_step = False

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0, dampening: float = 0,
                 weight_decay: float = 0, nesterov: bool = False):
        self._stepped: set[Tensor] = set()  # parameters updated at least once (a host record)
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov))

    def _check(self, g: dict) -> None:
        self._require(g["lr"] >= 0, "learning rate", g["lr"])
        self._require(g["momentum"] >= 0, "momentum value", g["momentum"])
        self._require(g["weight_decay"] >= 0, "weight_decay value", g["weight_decay"])
        if g["nesterov"] and (g["momentum"] <= 0 or g["dampening"] != 0):
            raise ValueError(f"{self._name}: Nesterov momentum requires a momentum and zero dampening "
                             f"(momentum={g['momentum']}, dampening={g['dampening']})")

    def _hyper(self, g: dict) -> tuple[float, ...]:
        return (float(g["lr"]), float(g["momentum"]), 1.0 - float(g["dampening"]), float(g["weight_decay"]))

    def _defines(self, g: dict) -> dict[str, int]:
        return {"OPTIM": SGD_ID, "MOMENTUM": int(g["momentum"] != 0), "NESTEROV": int(bool(g["nesterov"]))}

    def _state_names(self, g: dict) -> tuple[str, ...]:
        return ("momentum_buffer",) if g["momentum"] != 0 else ()

    def _all_state_names(self) -> tuple[str, ...]:
        return ("momentum_buffer",)

    def _new_state(self, p: Tensor, group: dict, bufs: GroupBuffers) -> None:
        # SGD's count only tells the kernel whether the momentum buffer has started (0: it starts as the
        # gradient). A buffer created after plain steps (momentum switched on later) needs its count back
        # at 0. The whole group's counts are rewritten, 1 for started buffers: Oclgrind 21.10 mis-tracks
        # partial writes at an offset.
        if p in self._stepped:
            started = [int(q is not p and q in self._stepped and "momentum_buffer" in self.state.get(q, {}))
                       for q in group["params"]]
            self._write(bufs.steps, np.array(started, np.int32))

    def _update(self, p, state, group, bufs, slot) -> None:
        buf = state.get("momentum_buffer", p)  # p stands in when there is no buffer (the kernel ignores it)
        self._launch("sgd_step", group, p, p, p.grad, buf, bufs.hyper, bufs.steps, np.int32(slot))
        self._stepped.add(p)

    def load_state_dict(self, state_dict: dict) -> None:
        super().load_state_dict(state_dict)
        self._stepped = set(self.state)  # loaded momentum buffers have started; other counts are 0
