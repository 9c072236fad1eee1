"""Tiny learnable MNIST-named IDX files for the CLI and example tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hetero.data import write_idx


def write_tiny_mnist(folder: Path, n_train: int = 96, n_test: int = 40, seed: int = 0) -> Path:
    """MNIST-named IDX files whose digit is a bright square at one of 10 places: learnable in a few steps."""
    rng = np.random.default_rng(seed)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = rng.integers(0, 40, (n, 28, 28)).astype(np.uint8)
        for i, c in enumerate(labels):
            r, col = divmod(int(c), 5)
            images[i, 4 + 10 * r:12 + 10 * r, 1 + 5 * col:5 + 5 * col] = 255
        folder.mkdir(parents=True, exist_ok=True)
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return folder
