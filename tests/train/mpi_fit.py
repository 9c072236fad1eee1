"""Run under mpiexec by test_mpi.py: data-parallel SGD steps on tiny data, every rank on its own device,
then each rank's weights saved to OUT/rank{R}.npz. Usage: mpi_fit.py OUT STEPS DEVICE"""

from __future__ import annotations

import sys

import numpy as np

import hetero
from hetero.parallel import DataParallel, world


def batches(steps: int, batch: int = 24, seed: int = 3) -> list[tuple[np.ndarray, np.ndarray]]:
    """The same global batches on every rank (and in the test's one-process reference)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(steps):
        y = rng.integers(0, 3, batch).astype(np.int32)
        x = rng.normal(0, 0.5, (batch, 1, 12, 12)).astype(np.float32)
        x[np.arange(batch), 0, y * 4, y * 4] += 3.0
        out.append((x, y))
    return out


def build(dev):
    """The model and optimizer every rank (and the reference) starts from."""
    hetero.train.seed_everything(11)
    model = hetero.nn.Sequential(hetero.nn.Conv2d(1, 4, 3, padding=1, device=dev), hetero.nn.ReLU(),
                                 hetero.nn.MaxPool2d(2), hetero.nn.Flatten(),
                                 hetero.nn.Linear(4 * 36, 3, device=dev))
    return model, hetero.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)


def main() -> int:
    out, steps, spec = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    comm = world()
    dev = hetero.device(spec)
    model, opt = build(dev)
    dp = DataParallel(model, opt, [dev], balance="equal", comm=comm)
    sizes = []
    for x, y in batches(steps):
        sizes.append(dp.step(x, y).sizes)
    assert dp.check() is None, "ranks drifted apart"
    np.savez(f"{out}/rank{comm.rank}.npz", sizes=np.array(sizes),
             **{f"p{i}": p.numpy() for i, p in enumerate(model.parameters())})
    dp.close()
    comm.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
