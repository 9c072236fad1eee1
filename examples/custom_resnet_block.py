"""A model of your own: a small CNN with residual blocks, written like a PyTorch module, trained on MNIST.

    python examples/custom_resnet_block.py [--max-steps N] [--epochs E]

Any hetero.nn.Module whose forward uses hetero's layers and functional ops trains with fit(): autograd
takes the gradient through both paths of the skip connection, and compile_step records the whole step.
"""

import argparse
import os

import hetero
import hetero.nn.functional as F
from hetero import nn
from hetero.data import DataLoader, get_dataset
from hetero.train import fit, seed_everything


class ResidualBlock(nn.Module):
    """out = relu(x + bn(conv(relu(bn(conv(x)))))): the input skips over two 3x3 convolutions."""

    def __init__(self, channels: int, device=None):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False, device=device)
        self.bn1 = nn.BatchNorm2d(channels, device=device)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False, device=device)
        self.bn2 = nn.BatchNorm2d(channels, device=device)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + x)  # the skip connection


class SmallResNet(nn.Module):
    """28x28 -> stem (16 channels, 14x14) -> 2 blocks -> stride-2 conv (32, 7x7) -> block -> pool -> 10 classes."""

    def __init__(self, num_classes: int = 10, device=None):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1, bias=False, device=device),
                                  nn.BatchNorm2d(16, device=device), nn.ReLU(), nn.MaxPool2d(2))
        self.stage1 = nn.Sequential(ResidualBlock(16, device), ResidualBlock(16, device))
        self.down = nn.Sequential(nn.Conv2d(16, 32, 3, stride=2, padding=1, bias=False, device=device),
                                  nn.BatchNorm2d(32, device=device), nn.ReLU())
        self.stage2 = ResidualBlock(32, device)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(32, num_classes, device=device)

    def forward(self, x):
        x = self.stage2(self.down(self.stage1(self.stem(x))))
        return self.fc(F.flatten(self.pool(x), 1))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--max-steps", type=int, default=int(os.environ.get("HETERO_EXAMPLE_STEPS", 0)) or None)
    p.add_argument("--epochs", type=int, default=1)
    args = p.parse_args()

    dev = hetero.device()
    seed_everything(0)
    model = SmallResNet(device=dev)
    print(f"{sum(p.size for p in model.parameters()):,} parameters on {dev.id}")
    train = DataLoader(get_dataset("mnist"), batch_size=64, shuffle=True, device=dev)
    test = DataLoader(get_dataset("mnist", train=False), batch_size=500, device=dev)
    optimizer = hetero.optim.Adam(model.parameters(), lr=2e-3)

    def report(event):
        if event.event == "step" and event.step % 100 == 0:
            print(f"step {event.step}: loss {event.loss:.4f}, {event.images_per_s:,.0f} images/s")
        elif event.event == "epoch_end":
            print(f"epoch {event.epoch + 1}: test accuracy {100 * event.test_accuracy:.2f}%")

    history = fit(model, optimizer, train, test, epochs=args.epochs, max_steps=args.max_steps, callbacks=[report])
    print(history.done.message)


if __name__ == "__main__":
    main()
