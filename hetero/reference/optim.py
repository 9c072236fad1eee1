"""float64 references of one optimizer update, written from torch.optim's documented algorithms.

Each function takes a parameter p, its gradient g and the parameter's state (a dict, empty before the
first update) and returns the updated parameter and a new state dict; the inputs are not modified.
State names and the step count follow torch's state_dict ("step", "exp_avg", "momentum_buffer", ...).
"""

from __future__ import annotations

import numpy as np


def sgd(p: np.ndarray, g: np.ndarray, state: dict, *, lr: float, momentum: float = 0, dampening: float = 0,
        weight_decay: float = 0, nesterov: bool = False) -> tuple[np.ndarray, dict]:
    state = dict(state)
    if weight_decay != 0:
        g = g + weight_decay * p
    if momentum != 0:
        buf = state.get("momentum_buffer")
        buf = g.copy() if buf is None else momentum * buf + (1 - dampening) * g
        state["momentum_buffer"] = buf
        g = g + momentum * buf if nesterov else buf
    return p - lr * g, state


def adam(p: np.ndarray, g: np.ndarray, state: dict, *, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
         eps: float = 1e-8, weight_decay: float = 0, amsgrad: bool = False,
         decoupled: bool = False) -> tuple[np.ndarray, dict]:
    """Adam; decoupled=True is AdamW (p shrinks by lr * weight_decay instead of an L2 gradient term)."""
    b1, b2 = betas
    t = state.get("step", 0) + 1
    m = state.get("exp_avg", np.zeros_like(p))
    v = state.get("exp_avg_sq", np.zeros_like(p))
    if weight_decay != 0:
        if decoupled:
            p = p * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * p
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    new = {"step": t, "exp_avg": m, "exp_avg_sq": v}
    m_hat = m / (1 - b1**t)
    if amsgrad:
        vmax = np.maximum(state.get("max_exp_avg_sq", np.zeros_like(p)), v)
        new["max_exp_avg_sq"] = vmax
        v_hat = vmax / (1 - b2**t)
    else:
        v_hat = v / (1 - b2**t)
    return p - lr * m_hat / (np.sqrt(v_hat) + eps), new


def adamw(p: np.ndarray, g: np.ndarray, state: dict, *, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
          eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False) -> tuple[np.ndarray, dict]:
    return adam(p, g, state, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                decoupled=True)


def adagrad(p: np.ndarray, g: np.ndarray, state: dict, *, lr: float = 1e-2, lr_decay: float = 0,
            weight_decay: float = 0, initial_accumulator_value: float = 0,
            eps: float = 1e-10) -> tuple[np.ndarray, dict]:
    t = state.get("step", 0) + 1
    s = state.get("sum", np.full_like(p, initial_accumulator_value))
    if weight_decay != 0:
        g = g + weight_decay * p
    clr = lr / (1 + (t - 1) * lr_decay)
    s = s + g * g
    return p - clr * g / (np.sqrt(s) + eps), {"step": t, "sum": s}


def rmsprop(p: np.ndarray, g: np.ndarray, state: dict, *, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
            weight_decay: float = 0, momentum: float = 0, centered: bool = False) -> tuple[np.ndarray, dict]:
    t = state.get("step", 0) + 1
    if weight_decay != 0:
        g = g + weight_decay * p
    sq = alpha * state.get("square_avg", np.zeros_like(p)) + (1 - alpha) * g * g
    new = {"step": t, "square_avg": sq}
    if centered:
        ga = alpha * state.get("grad_avg", np.zeros_like(p)) + (1 - alpha) * g
        new["grad_avg"] = ga
        avg = np.sqrt(sq - ga * ga) + eps
    else:
        avg = np.sqrt(sq) + eps
    if momentum > 0:
        buf = momentum * state.get("momentum_buffer", np.zeros_like(p)) + g / avg
        new["momentum_buffer"] = buf
        return p - lr * buf, new
    return p - lr * g / avg, new


def step_lr(base_lr: float, epoch: int, step_size: int, gamma: float = 0.1) -> float:
    return base_lr * gamma ** (epoch // step_size)


def cosine_annealing_lr(base_lr: float, epoch: int, T_max: int, eta_min: float = 0.0) -> float:
    return eta_min + (base_lr - eta_min) * (1 + np.cos(np.pi * epoch / T_max)) / 2
