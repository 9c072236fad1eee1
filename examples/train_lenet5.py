"""Train LeNet-5 on MNIST and print each epoch's test accuracy.

    python examples/train_lenet5.py            # 2 epochs (README: the accuracy and time it reaches)
    HETERO_EXAMPLE_STEPS=20 python examples/train_lenet5.py   # a quick smoke run

MNIST is read from $HETERO_DATA_DIR (or ~/.cache/hetero/datasets, or downloaded there);
the device is $HETERO_DEVICE, else the best usable one (see `hetero devices`).
"""

import os

import hetero
from hetero.data import DataLoader, get_dataset
from hetero.train import fit, seed_everything

max_steps = int(os.environ.get("HETERO_EXAMPLE_STEPS", 0)) or None  # a step limit for CI, else none

dev = hetero.device()
seed_everything(0)  # the same weights, dropout and data order on every run
train = DataLoader(get_dataset("mnist"), batch_size=64, shuffle=True, seed=0, device=dev)
test = DataLoader(get_dataset("mnist", train=False), batch_size=1000, device=dev)
model = hetero.models.lenet5(device=dev)
optimizer = hetero.optim.Adam(model.parameters(), lr=2e-3)
schedule = hetero.optim.CosineAnnealingLR(optimizer, T_max=2 * len(train))  # lr falls to 0 over 2 epochs


def report(event):  # fit calls this with every event: steps, epoch ends, the end
    if event.event == "epoch_end":
        print(f"epoch {event.epoch + 1}: test accuracy {100 * event.test_accuracy:.2f}% ({event.seconds:.0f} s)")


history = fit(model, optimizer, train, test, epochs=2, max_steps=max_steps, callbacks=[report],
              scheduler=schedule, scheduler_interval="step")
print(history.done.message)
