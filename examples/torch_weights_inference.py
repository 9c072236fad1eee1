"""Load PyTorch-format weights from a safetensors file and classify MNIST test digits with them.

    python examples/torch_weights_inference.py lenet5.safetensors
    python examples/torch_weights_inference.py          # makes the file first (no PyTorch needed)

hetero's models use torchvision-style module names, so a file written from PyTorch with
    safetensors.torch.save_file(torch_lenet.state_dict(), "lenet5.safetensors")
(the same layers: features.0 / features.3 convolutions, classifier.0 / .2 / .4 linears) loads as is.
Without a path, this script trains hetero's own LeNet-5 briefly and writes that file itself.
"""

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np

import hetero
from hetero.data import DataLoader, get_dataset
from hetero.train import fit, seed_everything


def make_weights(path: Path, steps: int, dev) -> None:
    """Train LeNet-5 for a few hundred steps and save its state_dict as safetensors (what torch would write)."""
    seed_everything(0)
    model = hetero.models.lenet5(device=dev)
    optimizer = hetero.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    train = DataLoader(get_dataset("mnist"), batch_size=64, shuffle=True, device=dev)
    fit(model, optimizer, train, epochs=1, max_steps=steps)
    hetero.save(model, path)  # plain tensors under their state_dict names, readable by safetensors.torch
    print(f"wrote {path} after {steps} training steps")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("weights", nargs="?", help="a safetensors file with LeNet-5 weights (default: make one)")
    p.add_argument("--max-steps", type=int, default=int(os.environ.get("HETERO_EXAMPLE_STEPS", 0)) or 300,
                   help="training steps when making the file (default 300)")
    p.add_argument("--images", type=int, default=1000, help="test images to classify")
    args = p.parse_args()

    dev = hetero.device()
    path = Path(args.weights) if args.weights else Path(tempfile.mkdtemp()) / "lenet5.safetensors"
    if not args.weights:
        make_weights(path, args.max_steps, dev)

    state = hetero.load(path)  # {name: numpy array}
    print(f"{path.name}: {len(state)} tensors, e.g. " +
          ", ".join(f"{k} {tuple(v.shape)}" for k, v in list(state.items())[:2]))
    model = hetero.models.lenet5(device=dev)
    model.load_state_dict(state)  # raises on missing, unexpected or mis-shaped keys
    model.eval()  # inference mode: no dropout, batch norm uses running statistics
    forward = hetero.compile(model)  # the forward pass recorded once and replayed per batch

    test = get_dataset("mnist", train=False)
    n = min(args.images, len(test))
    loader = DataLoader(test, batch_size=min(n, 500), device=dev)
    predictions = []
    for x, _ in loader:
        predictions.append(np.argmax(forward(x).numpy(), axis=1))
        if sum(len(b) for b in predictions) >= n:
            break
    predicted = np.concatenate(predictions)[:n]
    labels = test.labels[:n]
    print(f"first ten: predicted {predicted[:10].tolist()}, true {labels[:10].tolist()}")
    print(f"accuracy on {n} test images: {100 * np.mean(predicted == labels):.2f}%")


if __name__ == "__main__":
    main()
