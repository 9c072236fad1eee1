"""Tiny generated IDX data sets for the hetero.data tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hetero.data import sources, write_idx


def make_split(folder: Path, n: int, train: bool = True, gz: bool = True, seed: int = 0,
               shape: tuple[int, int] = (28, 28), n_labels: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Write a split's two IDX files (n random images, labels 0-9) into folder; returns the arrays."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, *shape), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n_labels if n_labels is not None else n, dtype=np.uint8)
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    image_name, label_name = sources.split_files(train)
    write_idx(folder / (image_name + suffix), images)
    write_idx(folder / (label_name + suffix), labels)
    return images, labels
