"""Tiny in-memory data and models for the training-loop tests (a few steps each, on 12x12 images)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import hetero
from hetero import nn

from .tiny_idx import write_tiny_mnist


class ArrayLoader:
    """The DataLoader interface fit uses (len, iterate(epoch, start), dataset.classes) over host arrays;
    the shuffled order depends only on the seed and the epoch."""

    def __init__(self, x: np.ndarray, y: np.ndarray, batch_size: int, shuffle: bool = True, seed: int = 0):
        self.x, self.y, self.batch_size, self.shuffle, self.seed = x, y, batch_size, shuffle, seed
        self.dataset = type("D", (), {"classes": list(range(int(y.max()) + 1))})()
        self.num_samples = len(x)

    def __len__(self) -> int:
        return -(-len(self.x) // self.batch_size)

    def iterate(self, epoch: int, start: int = 0):
        order = np.arange(len(self.x))
        if self.shuffle:
            order = np.random.default_rng([self.seed, epoch]).permutation(len(self.x))
        for b in range(start, len(self)):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            yield self.x[idx], self.y[idx]

    def __iter__(self):
        return self.iterate(0)


def make_data(n: int, seed: int = 0, size: int = 12, classes: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Images whose class is the quadrant holding a bright blob: learnable in a few steps."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n).astype(np.int32)
    x = rng.normal(0, 0.3, (n, 1, size, size)).astype(np.float32)
    h = size // 2
    for i, c in enumerate(y):
        r, col = divmod(int(c), 2)
        x[i, 0, r * h:(r + 1) * h, col * h:(col + 1) * h] += 1.5
    return x, y


class TinyNet(nn.Module):
    """conv 3x3 -> relu -> maxpool -> dropout -> linear: a few hundred parameters."""

    def __init__(self, classes: int = 3, size: int = 12, device=None):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1, device=device)
        self.pool = nn.MaxPool2d(2)
        self.drop = nn.Dropout(0.2)
        self.fc = nn.Linear(4 * (size // 2) ** 2, classes, device=device)

    def forward(self, x):
        x = self.drop(self.pool(hetero.nn.functional.relu(self.conv(x))))
        return self.fc(x.flatten(1))


@pytest.fixture
def tiny():
    """A factory: (model, optimizer, train_loader, test_loader) built from one seed on a device."""

    def build(dev, seed: int = 0, lr: float = 0.1, optimizer: str = "sgd", n_train: int = 48, batch: int = 16,
              init_seed: int | None = None):
        # init_seed: other initial weights and dropout stream (what a checkpoint must then restore)
        hetero.train.seed_everything(seed if init_seed is None else init_seed)
        model = TinyNet(device=dev)
        if optimizer == "adam":
            opt = hetero.optim.Adam(model.parameters(), lr=lr)
        else:
            opt = hetero.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
        x, y = make_data(n_train, seed=1)
        xt, yt = make_data(24, seed=2)
        return model, opt, ArrayLoader(x, y, batch, seed=seed), ArrayLoader(xt, yt, 12, shuffle=False)

    return build


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Path:
    """Tiny generated IDX files in HETERO_DATA_DIR, run from tmp_path (a default checkpoint path lands there)."""
    folder = write_tiny_mnist(tmp_path / "data")
    monkeypatch.setenv("HETERO_DATA_DIR", str(folder))
    monkeypatch.chdir(tmp_path)
    return folder
