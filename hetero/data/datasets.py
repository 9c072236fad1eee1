"""In-memory image classification data sets: ArrayDataset, and MNIST / Fashion-MNIST read from IDX files."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .idx import IDXError, read_idx
from .sources import Progress, get_source, locate

IMAGES_MAGIC = 0x0803  # uint8, 3 dimensions (N, H, W)
LABELS_MAGIC = 0x0801  # uint8, 1 dimension (N,)


def _readonly(array: np.ndarray) -> np.ndarray:
    view = array.view()
    view.flags.writeable = False  # shared between loaders and threads: nobody may change it
    return view


def _moments(images: np.ndarray, chunk: int = 4096) -> tuple[float, float]:
    """Mean and std of all pixels (uint8 scaled to 0-1), in float64 chunks so no big temporary is made."""
    if not images.size:
        return 0.0, 1.0
    total = squares = 0.0
    for i in range(0, len(images), chunk):
        part = images[i:i + chunk].astype(np.float64)
        total += float(part.sum())
        squares += float(np.square(part).sum())
    mean = total / images.size
    var = max(squares / images.size - mean * mean, 0.0)
    scale = 1 / 255 if images.dtype == np.uint8 else 1.0
    return mean * scale, var ** 0.5 * scale


class ArrayDataset:
    """Images (N, H, W) or (N, C, H, W), uint8 (0-255) or float (already scaled), with int labels (N,)."""

    def __init__(self, images, labels, name: str = "arrays", classes: Sequence[str] | None = None,
                 mean: float | Sequence[float] | None = None, std: float | Sequence[float] | None = None):
        images, labels = np.asarray(images), np.asarray(labels)
        if images.ndim not in (3, 4):
            raise ValueError(f"{name}: images must be (N, H, W) or (N, C, H, W), got shape {images.shape}")
        if images.dtype != np.uint8 and images.dtype.kind != "f":
            raise ValueError(f"{name}: images must be uint8 or float, got {images.dtype}")
        if labels.ndim != 1 or (labels.size and labels.dtype.kind not in "iu"):
            raise ValueError(f"{name}: labels must be integers of shape (N,), got {labels.dtype} {labels.shape}")
        if len(images) != len(labels):
            raise ValueError(f"{name}: {len(images)} images but {len(labels)} labels")
        n_classes = int(labels.max()) + 1 if labels.size else 0
        if labels.size and labels.min() < 0:
            raise ValueError(f"{name}: labels must be >= 0, found {int(labels.min())}")
        if classes is None:
            classes = [str(i) for i in range(n_classes)]
        elif n_classes > len(classes):
            raise ValueError(f"{name}: label {n_classes - 1} but only {len(classes)} classes")
        self.name = name
        self.images = _readonly(images)
        self.labels = _readonly(labels.astype(np.int64, copy=False))
        self.classes = list(classes)
        measured = _moments(images) if mean is None or std is None else (0.0, 1.0)
        self.mean = measured[0] if mean is None else mean
        self.std = measured[1] if std is None else std

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image as the loader delivers it."""
        shape = self.images.shape[1:]
        return (1, *shape) if len(shape) == 2 else tuple(shape)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index):
        return self.images[index], self.labels[index]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}: {len(self)} images {self.images.shape[1:]}, " \
               f"{len(self.classes)} classes>"


class IDXDataset(ArrayDataset):
    """A split of an IDX data set (images 0x0803, labels 0x0801), found or downloaded by hetero.data.sources."""

    NAME = ""
    CLASSES: tuple[str, ...] = ()
    MEAN = 0.0
    STD = 1.0
    IMAGE_SIZE = (28, 28)  # (H, W): the models built for the data set expect it

    def __init__(self, root: str | os.PathLike | None = None, train: bool = True, download: bool = True,
                 progress: Progress | None = None):
        images_path, labels_path = locate(self.NAME, train, root, download, progress)
        self.train = train
        self.files = (images_path, labels_path)
        images, labels = load_idx_pair(images_path, labels_path, len(self.CLASSES))
        self._check_shape(images)
        self._check_identity(images)
        super().__init__(images, labels, self.NAME, self.CLASSES, self.MEAN, self.STD)

    def _check_shape(self, images: np.ndarray) -> None:
        """Valid IDX files of other images (another size, no images at all) fail here, not deep in a model."""
        if images.shape[1:] != self.IMAGE_SIZE:
            h, w = self.IMAGE_SIZE
            raise IDXError(f"{self.files[0]}: images of {'x'.join(map(str, images.shape[1:]))} pixels, but "
                           f"{self.NAME} images are {h}x{w}; these are not {self.NAME} files")
        if len(images) == 0:
            raise IDXError(f"{self.files[0]}: holds no images; the files are empty or cut short, get them again")

    def _check_identity(self, images: np.ndarray) -> None:
        """Full-size files of another data set (e.g. MNIST's where Fashion-MNIST's were asked for) share
        file names and shapes; their pixel means (MEAN) differ widely, so that catches them."""
        if len(images) not in (60000, 10000):  # (the image size is _check_shape's)
            return  # not the full data set (a subset or generated files): nothing to compare with
        mean = float(images.mean(dtype=np.float64)) / 255
        if abs(mean - self.MEAN) > 0.05:
            others = [c.NAME for c in DATASETS.values() if c is not type(self) and abs(mean - c.MEAN) <= 0.05]
            guess = f" (they look like {others[0]}'s)" if others else ""
            raise IDXError(f"{self.files[0]}: pixel mean {mean:.4f}, but {self.NAME}'s is {self.MEAN}: these "
                           f"are not {self.NAME} files{guess}. Point --data / HETERO_DATA_DIR at the folder "
                           f"holding {self.NAME}, or put each data set in its own sub-folder (DIR/{self.NAME}/).")


def load_idx_pair(images_path: Path, labels_path: Path, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Images and labels of a split, checked against each other; IDXError on any mismatch."""
    images = read_idx(images_path, IMAGES_MAGIC)
    labels = read_idx(labels_path, LABELS_MAGIC)
    if len(images) != len(labels):
        raise IDXError(f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} "
                       "labels: the files do not belong together (mixed train/test or a partial copy)")
    if labels.size and int(labels.max()) >= num_classes:
        raise IDXError(f"{labels_path}: label {int(labels.max())} is out of range 0..{num_classes - 1}; "
                       "is this a labels file of this data set?")
    return images, labels


class MNIST(IDXDataset):
    """MNIST handwritten digits: 60000 training / 10000 test images, uint8 28x28, labels 0-9."""

    NAME = "mnist"
    CLASSES = tuple(str(i) for i in range(10))
    MEAN = 0.1307
    STD = 0.3081


class FashionMNIST(IDXDataset):
    """Fashion-MNIST (Zalando) clothing images, same layout as MNIST."""

    NAME = "fashion-mnist"
    CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
               "Ankle boot")
    MEAN = 0.2860
    STD = 0.3530


DATASETS: dict[str, type[IDXDataset]] = {"mnist": MNIST, "fashion-mnist": FashionMNIST}


def get_dataset(name: str, root: str | os.PathLike | None = None, train: bool = True, download: bool = True,
                progress: Progress | None = None) -> IDXDataset:
    """A data set by name ("mnist" or "fashion-mnist"); ValueError for another name."""
    return DATASETS[get_source(name).name](root=root, train=train, download=download, progress=progress)
