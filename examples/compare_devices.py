"""Time the same LeNet-5 training steps on several devices from Python.

    python examples/compare_devices.py                      # the whole CPU vs half of it ("cpu", "cpu/2.0")
    python examples/compare_devices.py --devices gpu,cpu --max-steps 50

Each device gets the same model (same seed), the same batches and a compiled step; the first step records
the step (not timed), then the device runs the rest with nothing read back until the end.
"""

import argparse
import os
import time

import numpy as np

import hetero
import hetero.nn.functional as F
from hetero.data import DataLoader, get_dataset
from hetero.train import seed_everything


def pick_devices(specs: str) -> list:
    try:
        return hetero.select_devices(specs)
    except hetero.HeteroError as e:  # e.g. a device that cannot be split: fall back to every usable one
        print(f"{specs!r}: {e}\nusing every usable device instead")
        return hetero.select_devices("all")


def time_training(dev, batches: list, batch_size: int) -> tuple[float, float]:
    """(images per second, final loss) of len(batches) - 1 timed steps of LeNet-5 on dev."""
    seed_everything(0)
    model = hetero.models.lenet5(device=dev)
    step = hetero.compile_step(model, F.cross_entropy,
                               hetero.optim.SGD(model.parameters(), lr=0.01, momentum=0.9))
    inputs = [(hetero.tensor(x, device=dev), hetero.tensor(y, device=dev)) for x, y in batches]
    step(*inputs[0]).numpy()  # records the step and runs it once: compile time is not timed
    start = time.perf_counter()
    for x, y in inputs[1:]:
        loss = step(x, y)  # only queues the recorded kernels
    final = loss.item()  # waits for the device to finish
    seconds = time.perf_counter() - start
    return (len(inputs) - 1) * batch_size / seconds, final


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--devices", default="cpu,cpu/2.0", help="comma-separated device specs (hetero devices)")
    p.add_argument("--max-steps", type=int, default=int(os.environ.get("HETERO_EXAMPLE_STEPS", 0)) or 30)
    p.add_argument("--batch-size", type=int, default=64)
    args = p.parse_args()

    loader = DataLoader(get_dataset("mnist"), batch_size=args.batch_size, shuffle=True)
    batches = []
    for x, y in loader:  # host arrays: each device gets its own copy
        batches.append((x, y))
        if len(batches) > max(1, args.max_steps):
            break
    results = []
    for dev in pick_devices(args.devices):
        rate, loss = time_training(dev, batches, args.batch_size)
        results.append((dev, rate, loss))
        print(f"{dev.id:>8}  {dev.info.name[:40]:<40}  {dev.info.compute_units:>3} CUs  {rate:10,.0f} images/s  "
              f"loss after {len(batches)} steps {loss:.4f}")
    best = max(results, key=lambda r: r[1])
    losses = np.array([r[2] for r in results])
    print(f"fastest: {best[0].id}; same losses on every device: {bool(np.allclose(losses, losses[0], rtol=1e-3))}")


if __name__ == "__main__":
    main()
