"""Write MNIST (or Fashion-MNIST) out as PNG image folders, one subfolder per class, for `hetero train --data-folder`.

    python scripts/mnist_to_folders.py OUT                  # OUT/train/<class>/00000.png and OUT/test/<class>/...
    python scripts/mnist_to_folders.py OUT --flat           # OUT/<class>/...: both splits pooled (split by fraction)
    python scripts/mnist_to_folders.py OUT --limit 500      # the first 500 images of each split

The IDX files are read with hetero.data from --data, else $HETERO_DATA_DIR and the usual places (no download).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hetero.data import DATASETS, DatasetNotFoundError  # noqa: E402
from hetero.data.idx import IDXError  # noqa: E402

SHARED_MNIST = Path("/work/shared/data/mnist")  # where this project's machines keep a copy


def _class_folder(name: str) -> str:
    # Fashion-MNIST's "T-shirt/top" would be a nested folder
    return name.replace("/", "-")


def write_split(dataset, out: Path, limit: int | None, prefix: str = "") -> int:
    """Write a split's images as PNGs out/<class>/<prefix><index>.png; the number written."""
    from PIL import Image

    n = len(dataset) if limit is None else min(limit, len(dataset))
    folders = [out / _class_folder(c) for c in dataset.classes]
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        image, label = dataset[i]
        Image.fromarray(image, "L").save(folders[int(label)] / f"{prefix}{i:05d}.png")
    return n


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", help="folder to write (created; existing files of the same names are replaced)")
    p.add_argument("--dataset", choices=tuple(DATASETS), default="mnist")
    p.add_argument("--data", metavar="DIR", default=None,
                   help="folder with the IDX files (default: $HETERO_DATA_DIR, the usual places, then "
                        f"{SHARED_MNIST} for mnist)")
    p.add_argument("--flat", action="store_true", help="one folder per class, both splits together")
    p.add_argument("--limit", type=int, default=None, help="at most this many images of each split")
    args = p.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        p.error(f"--limit must be at least 1, got {args.limit}")

    cls = DATASETS[args.dataset]
    roots = [args.data] if args.data else [None] + ([SHARED_MNIST] if args.dataset == "mnist" else [])
    for i, root in enumerate(roots):
        try:
            splits = [cls(root=root, train=True, download=False), cls(root=root, train=False, download=False)]
            break
        except (DatasetNotFoundError, IDXError) as e:
            if i == len(roots) - 1:
                print(f"mnist_to_folders: error: {e}", file=sys.stderr)
                return 1
    out = Path(args.out)
    start = time.perf_counter()
    counts = []
    for split, name in zip(splits, ("train", "test")):
        # flat: the test images go in the same class folders under other names, so none is overwritten
        if args.flat:
            counts.append(write_split(split, out, args.limit, prefix="t" if name == "test" else ""))
        else:
            counts.append(write_split(split, out / name, args.limit))
    layout = "OUT/<class>/" if args.flat else "OUT/train/<class>/ and OUT/test/<class>/"
    print(f"wrote {counts[0]} train and {counts[1]} test PNGs of {args.dataset} to {out} ({layout}) in "
          f"{time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
