"""float64 reference of dropout, with Philox4x32-10 reimplemented in numpy so masks match bit for bit."""

from __future__ import annotations

import numpy as np

_M0, _M1 = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57)
_W0, _W1 = 0x9E3779B9, 0xBB67AE85
_MASK32 = np.uint64(0xFFFFFFFF)
_SHIFT = np.uint64(32)


def philox4x32_10(counter: np.ndarray, key) -> np.ndarray:
    """Philox4x32-10 of counters [n, 4] under a key (k0, k1): the [n, 4] uint32 outputs (Random123's order)."""
    c = [np.asarray(counter, np.uint64)[:, j].copy() for j in range(4)]
    k0, k1 = int(key[0]), int(key[1])
    for r in range(10):
        if r:
            k0, k1 = (k0 + _W0) & 0xFFFFFFFF, (k1 + _W1) & 0xFFFFFFFF
        p0, p1 = _M0 * c[0], _M1 * c[2]  # < 2**64: exact in uint64
        c = [(p1 >> _SHIFT) ^ c[1] ^ np.uint64(k0), p1 & _MASK32, (p0 >> _SHIFT) ^ c[3] ^ np.uint64(k1), p0 & _MASK32]
    return np.stack(c, axis=1).astype(np.uint32)


def random_words(state, n: int) -> np.ndarray:
    """The n uint32 words a dropout of n elements draws from state [key_lo, key_hi, counter_lo, counter_hi]."""
    state = [int(s) for s in state]
    blocks = -(-n // 4)
    ctr = np.uint64(state[2] | state[3] << 32) + np.arange(blocks, dtype=np.uint64)  # wraps modulo 2**64
    counters = np.zeros((blocks, 4), np.uint64)
    counters[:, 0] = ctr & _MASK32
    counters[:, 1] = ctr >> _SHIFT
    return philox4x32_10(counters, state[:2]).reshape(-1)[:n]


def advanced(state, n: int) -> np.ndarray:
    """The state after a dropout of n elements: counter += ceil(n / 4) blocks, modulo 2**64."""
    s = [int(v) for v in state]
    ctr = ((s[2] | s[3] << 32) + -(-n // 4)) % 2**64
    return np.array([s[0], s[1], ctr & 0xFFFFFFFF, ctr >> 32], np.uint32)


def dropout_mask(shape: tuple[int, ...], p: float, state) -> np.ndarray:
    """The keep mask: word < floor((1 - p) * 2**32) (capped at 2**32 - 1)."""
    n = int(np.prod(shape))
    threshold = min(int((1.0 - p) * 2.0**32), 2**32 - 1)
    return (random_words(state, n) < threshold).reshape(shape)


def dropout(x: np.ndarray, p: float, state) -> tuple[np.ndarray, np.ndarray]:
    """(y, mask) with y = x * mask / (1 - p)."""
    mask = dropout_mask(x.shape, p, state)
    return x * mask / (1.0 - p), mask


def dropout_backward(g: np.ndarray, mask: np.ndarray, p: float) -> np.ndarray:
    return g * mask / (1.0 - p)
