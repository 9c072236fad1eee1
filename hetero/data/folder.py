"""Image folders as data sets: a subfolder per class (sorted names are the class ids), decoded by Pillow.

    DIR/<class>/*.png            split by seed and fraction (per class, so each class keeps its share)
    DIR/train/<class>/*.png      the split as given, when DIR holds both train/ and test/
    DIR/test/<class>/*.png

The images are decoded up front into one uint8 (N, C, H, W) array, so a folder is an ArrayDataset and
hetero.data.DataLoader works on it unchanged. Up front rather than per batch: MNIST as 70,000 PNGs decodes
once in about as long as one LeNet-5 epoch takes to train here, is 55 MB decoded, and a lazy data set would
decode every image again each epoch on the cores the training step needs.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import HeteroError
from .datasets import ArrayDataset

LAYOUTS = ("fraction", "folders")  # split by test_fraction, or DIR/train/ and DIR/test/ as given
CHANNELS = (1, 3)  # grayscale or RGB
# Image sides are bounded: a recipe read from a file names the size new images are resized to.
MAX_IMAGE_SIDE = 4096
PROGRESS_MIN_IMAGES = 2000  # smaller folders decode in well under a second: no progress line
_PROGRESS_EVERY = 500
# 16-bit grayscale (PNG, TIFF) comes as Pillow's "I;16*" or "I" modes; the rest of the gray modes are 8-bit.
_GRAY_MODES = frozenset({"1", "L", "LA", "I", "F", "I;16", "I;16L", "I;16B", "I;16N"})

_SKIP_HINT = "; fix or remove it, or pass --skip-bad (skip_bad=True) to skip unusable images"

FolderProgress = Callable[[str, int, int], None]  # (folder, images done, images in all)


class FolderError(HeteroError, ValueError):
    """A folder or image that cannot be used as an image data set; the message names it and says what to do."""


class BadImageError(FolderError):
    """One file that cannot be used (not an image, damaged, or another size or colour than the rest)."""

    def __init__(self, path: Path, reason: str):
        self.path, self.reason = path, reason
        super().__init__(f"{path}: {reason}")


# ----- one image -----


def image_suffixes() -> frozenset[str]:
    """The file name endings (".png", ".jpg", ...) of the formats this Pillow can open."""
    from PIL import Image

    return frozenset(ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN)


def _open(path: Path):
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(path)
        image.load()  # open() reads only the header; a damaged file fails here
        return image
    except UnidentifiedImageError:
        raise BadImageError(path, "not an image Pillow can read") from None
    except Image.DecompressionBombError as e:
        raise BadImageError(path, f"too large to decode safely ({e})") from None
    except OSError as e:
        raise BadImageError(path, f"cannot be read or decoded ({e.strerror or e})") from None
    except Exception as e:  # noqa: BLE001 (Pillow's decoders raise many types for a damaged file)
        raise BadImageError(path, f"cannot be decoded ({type(e).__name__}: {e})") from None


def natural_channels(image) -> int:
    """1 for a grayscale Pillow image, 3 for colour (RGB, RGBA, palette, CMYK, ...)."""
    return 1 if image.mode in _GRAY_MODES else 3


def _eight_bit(image):
    """The image in "L" or "RGB"; 16-bit and float grayscale are scaled, not clipped, to 8 bits."""
    from PIL import Image

    if image.mode.startswith("I"):  # 16-bit samples 0..65535
        values = np.asarray(image, dtype=np.float64) / 257.0
        return Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8), "L")
    if image.mode == "F":
        values = np.asarray(image, dtype=np.float64)
        scale = 255.0 if values.size and values.max() <= 1.0 else 1.0  # 0..1 floats, else 0..255
        return Image.fromarray(np.clip(np.rint(values * scale), 0, 255).astype(np.uint8), "L")
    return image


def convert_image(image, channels: int, size: tuple[int, int] | None) -> np.ndarray:
    """A Pillow image as uint8 (channels, H, W), resized (bilinear) to size=(H, W) when given."""
    from PIL import Image

    image = _eight_bit(image)
    mode = "L" if channels == 1 else "RGB"
    if image.mode != mode:  # convert() copies even when the mode is already right
        image = image.convert(mode)
    if size is not None and (image.height, image.width) != tuple(size):
        bilinear = getattr(Image, "Resampling", Image).BILINEAR  # Pillow < 9.1 has no Resampling
        image = image.resize((size[1], size[0]), bilinear)
    pixels = np.asarray(image, dtype=np.uint8)
    return pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)


def decode_image(path: str | os.PathLike, channels: int, size: tuple[int, int] | None = None) -> np.ndarray:
    """One image file as uint8 (channels, H, W), resized to size=(H, W) if given; BadImageError naming it."""
    return convert_image(_open(Path(path)), channels, size)


# ----- what a folder holds -----


@dataclass(frozen=True)
class FolderSpec:
    """How a folder was read: enough to read it again the same way, and to prepare new images for its model."""

    path: str
    classes: tuple[str, ...]
    channels: int
    image_size: tuple[int, int]  # (H, W) every image is decoded (and resized) to
    mean: tuple[float, ...]  # per channel, of the training images scaled to 0-1
    std: tuple[float, ...]
    test_fraction: float = 0.1  # layout "fraction" only
    split_seed: int = 0
    layout: str = "fraction"
    skip_bad: bool = False

    def __post_init__(self) -> None:
        bad = _spec_problem(self)
        if bad:
            raise FolderError(f"data folder spec: {bad}")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict; from_dict reads it back."""
        return {"path": self.path, "classes": list(self.classes), "channels": self.channels,
                "image_size": list(self.image_size), "mean": list(self.mean), "std": list(self.std),
                "test_fraction": self.test_fraction, "split_seed": self.split_seed, "layout": self.layout,
                "skip_bad": self.skip_bad}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FolderSpec:
        """The spec to_dict() wrote; FolderError naming the bad or missing key."""
        if not isinstance(data, Mapping):
            raise FolderError(f"data folder spec: a dict, got {type(data).__name__}")
        known = [f for f in cls.__dataclass_fields__]
        unknown = sorted(str(k) for k in data if k not in known)
        missing = [k for k in ("path", "classes", "channels", "image_size", "mean", "std") if k not in data]
        if unknown or missing:
            what = (f"unknown key(s) {', '.join(unknown)}" if unknown else "") + \
                   ("; " if unknown and missing else "") + (f"missing {', '.join(missing)}" if missing else "")
            raise FolderError(f"data folder spec: {what}; the keys are {', '.join(known)}")
        values = dict(data)
        for key in ("classes", "image_size", "mean", "std"):
            if not isinstance(values[key], (list, tuple)):
                raise FolderError(f"data folder spec: {key} must be a list, got {type(values[key]).__name__}")
            values[key] = tuple(values[key])
        return cls(**values)


def _spec_problem(s: FolderSpec) -> str | None:
    def is_int(v) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    def is_number(v) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

    if not isinstance(s.path, str) or not s.path:
        return f"path must be a folder name, got {s.path!r}"
    if not isinstance(s.classes, tuple) or not 2 <= len(s.classes) <= 65536 or \
            not all(isinstance(c, str) for c in s.classes) or len(set(s.classes)) != len(s.classes):
        return "classes must be 2 to 65536 distinct names"
    if s.channels not in CHANNELS or not is_int(s.channels):
        return f"channels must be 1 or 3, got {s.channels!r}"
    if not isinstance(s.image_size, tuple) or len(s.image_size) != 2 or \
            not all(is_int(v) and 1 <= v <= MAX_IMAGE_SIDE for v in s.image_size):
        return f"image_size must be (H, W), each 1 to {MAX_IMAGE_SIDE}, got {s.image_size!r}"
    for name, values, low in (("mean", s.mean, 0.0), ("std", s.std, 1e-12)):
        if not isinstance(values, tuple) or len(values) != s.channels or \
                not all(is_number(v) and v >= low for v in values):
            return f"{name} must be {s.channels} finite number(s) (one per channel) >= {low:g}, got {values!r}"
    if not is_number(s.test_fraction) or not 0 <= s.test_fraction < 1:
        return f"test_fraction must be a number in [0, 1), got {s.test_fraction!r}"
    if not is_int(s.split_seed) or s.split_seed < 0:
        return f"split_seed must be a non-negative integer, got {s.split_seed!r}"
    if s.layout not in LAYOUTS:
        return f"layout must be one of {', '.join(LAYOUTS)}, got {s.layout!r}"
    if not isinstance(s.skip_bad, bool):
        return f"skip_bad must be true or false, got {s.skip_bad!r}"
    return None


def _visible(entry: os.DirEntry | Path) -> bool:
    return not entry.name.startswith(".")  # .DS_Store, .ipynb_checkpoints, .git


def _subfolders(folder: Path) -> list[Path]:
    try:
        return sorted((Path(e.path) for e in os.scandir(folder) if e.is_dir() and _visible(e)), key=lambda p: p.name)
    except OSError as e:
        raise FolderError(f"{folder}: cannot be listed ({e.strerror or e})") from None


def _class_files(folder: Path, suffixes: frozenset[str], ignored: list[Path]) -> list[Path]:
    """The image files under a class folder, nested folders included, in sorted order; others into `ignored`."""
    found = []
    for here, dirs, files in os.walk(folder, onerror=_walk_error):  # symlinked folders are not followed: cycles
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            path = Path(here) / name
            if name.startswith("."):
                continue
            # a FIFO or socket named like an image would block or fail in open(): only regular files are images
            (found if path.suffix.lower() in suffixes and path.is_file() else ignored).append(path)
    return found


def _walk_error(e: OSError) -> None:
    raise FolderError(f"{e.filename}: cannot be listed ({e.strerror or e})")


@dataclass(frozen=True)
class FolderPlan:
    """A scanned folder: its classes, the files of each split with their labels, and the image form chosen
    (channels and size: given, or the first training image's). Nothing is decoded yet: load() does that."""

    root: Path
    classes: tuple[str, ...]
    train: tuple[tuple[Path, int], ...]
    test: tuple[tuple[Path, int], ...]
    layout: str
    test_fraction: float
    seed: int
    channels: int
    image_size: tuple[int, int]
    fixed_channels: bool  # channels given: every image is converted, none is "mixed"
    fixed_size: bool  # image_size given: every image is resized
    skip_bad: bool
    ignored: tuple[Path, ...] = field(default=())  # files without an image file name ending

    def load(self, mean: Sequence[float] | float | None = None, std: Sequence[float] | float | None = None,
             progress: FolderProgress | None = None) -> tuple[ImageFolder, ImageFolder | None]:
        """Decode both splits: (train, test; None when nothing is held out). mean/std default to the training
        images' per-channel values; the test split is normalised with the training split's."""
        train = self._decode("train", self.train, progress)
        if len(train) == 0:
            raise FolderError(f"{self.root}: every training image was skipped as unusable; nothing to train on")
        spec = self._spec(*_normalisation(train, mean, std, self.channels))
        test = self._decode("test", self.test, progress) if self.test else None
        if test is not None and len(test) == 0:
            test = None
        train_set = ImageFolder(train, spec, "train", self)
        test_set = None if test is None else ImageFolder(test, spec, "test", self)
        return train_set, test_set

    def _spec(self, mean: tuple[float, ...], std: tuple[float, ...]) -> FolderSpec:
        return FolderSpec(os.fspath(self.root), self.classes, self.channels, self.image_size, mean, std,
                          float(self.test_fraction), int(self.seed), self.layout, bool(self.skip_bad))

    def _decode(self, split: str, files: Sequence[tuple[Path, int]], progress: FolderProgress | None) -> _Decoded:
        c, (h, w) = self.channels, self.image_size
        need = len(files) * c * h * w
        budget = _memory_budget()
        if budget is not None and need > budget:
            raise FolderError(f"{self.root}: the {len(files)} {split} images at {c}x{h}x{w} need "
                              f"{need / 2**30:.1f} GiB decoded, more than half of this machine's memory; "
                              "pass a smaller image size (--image-size H W)")
        images = np.empty((len(files), c, h, w), np.uint8)
        labels = np.empty(len(files), np.int64)
        kept: list[Path] = []
        skipped: list[tuple[Path, str]] = []
        size = self.image_size if self.fixed_size else None
        for i, (path, label) in enumerate(files):
            try:
                images[len(kept)] = self._one(path, size)
            except BadImageError as e:
                if not self.skip_bad:
                    raise BadImageError(path, e.reason + _SKIP_HINT) from None
                skipped.append((path, e.reason))
            else:
                labels[len(kept)] = label
                kept.append(path)
            if progress is not None and ((i + 1) % _PROGRESS_EVERY == 0 or i + 1 == len(files)):
                progress(f"{self.root} ({split})", i + 1, len(files))
        n = len(kept)
        # a copy when images were skipped, so the full-size buffer is not kept alive by a view
        images = images if n == len(files) else images[:n].copy()
        return _Decoded(images, labels[:n].copy(), tuple(kept), tuple(skipped))

    def _one(self, path: Path, size: tuple[int, int] | None) -> np.ndarray:
        image = _open(path)
        if not self.fixed_channels and natural_channels(image) != self.channels:
            kind = {1: "grayscale", 3: "colour"}
            raise BadImageError(path, f"is {kind[natural_channels(image)]} but the folder's first image is "
                                f"{kind[self.channels]}; pass --channels 1 or 3 (channels=) to convert every image")
        if size is None and (image.height, image.width) != self.image_size:
            raise BadImageError(path, f"is {image.height}x{image.width} (HxW) but the folder's first image is "
                                f"{self.image_size[0]}x{self.image_size[1]}; pass --image-size H W (image_size=) "
                                "to resize every image")
        return convert_image(image, self.channels, size)


@dataclass(frozen=True)
class _Decoded:
    images: np.ndarray
    labels: np.ndarray
    paths: tuple[Path, ...]
    skipped: tuple[tuple[Path, str], ...]

    def __len__(self) -> int:
        return len(self.paths)


def _memory_budget() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    except (ValueError, OSError, AttributeError):  # not on this platform
        return None


def _normalisation(train: _Decoded, mean, std, channels: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    measured = channel_moments(train.images) if mean is None or std is None else None
    values = []
    for name, given, index in (("mean", mean, 0), ("std", std, 1)):
        if given is None:
            values.append(measured[index])
            continue
        arr = np.asarray(given, np.float64).reshape(-1)
        if arr.size not in (1, channels) or not np.all(np.isfinite(arr)):
            raise FolderError(f"{name}={given!r}: give 1 or {channels} (one per channel) finite numbers")
        values.append(tuple(float(v) for v in np.broadcast_to(arr, (channels,))))
    if not all(v > 0 for v in values[1]):
        raise FolderError(f"std={std!r}: every std must be > 0")
    return values[0], values[1]


def channel_moments(images: np.ndarray, chunk: int = 4096) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of uint8 (N, C, H, W) images scaled to 0-1, in float64 chunks; a channel with
    one value throughout gets std 1 (nothing to scale)."""
    c = images.shape[1]
    total, squares = np.zeros(c), np.zeros(c)
    for i in range(0, len(images), chunk):
        part = images[i:i + chunk].astype(np.float64)
        total += part.sum(axis=(0, 2, 3))
        squares += np.square(part).sum(axis=(0, 2, 3))
    count = max(1, images.size // c)
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - mean * mean, 0.0))
    std = np.where(std * 255 < 1e-3, 255.0, std)  # a blank channel: leave it unscaled
    return tuple(float(v) for v in mean / 255), tuple(float(v) for v in std / 255)


def plan_image_folder(root: str | os.PathLike, image_size: tuple[int, int] | None = None,
                      channels: int | None = None, test_fraction: float = 0.1, seed: int = 0,
                      skip_bad: bool = False, classes: Sequence[str] | None = None) -> FolderPlan:
    """Scan `root` (class folders, or train/ and test/ holding them) and split it; decodes nothing but the
    first training image's header. classes: the class names the folder must have (a rebuilt run's)."""
    root = Path(os.path.abspath(Path(root).expanduser()))  # absolute: the recipe records it for later runs
    if not root.is_dir():
        raise FolderError(f"{root}: no such folder; name the folder that holds one subfolder per class")
    image_size = _check_size(image_size)
    if channels is not None and channels not in CHANNELS:
        raise FolderError(f"channels must be 1 (grayscale) or 3 (RGB), got {channels!r}")
    if isinstance(test_fraction, bool) or not isinstance(test_fraction, (int, float)) or \
            not 0 <= test_fraction < 1:
        raise FolderError(f"test_fraction must be a number in [0, 1), got {test_fraction!r}")
    suffixes = image_suffixes()
    ignored: list[Path] = []
    names = {p.name for p in _subfolders(root)}
    if "train" in names or "test" in names:
        layout = "folders"
        found, train, test = _split_folders(root, names, suffixes, ignored)
    else:
        layout = "fraction"
        found, files = _scan_classes(root, suffixes, ignored)
        train, test = _split_fraction(files, float(test_fraction), seed)
    if classes is not None and tuple(classes) != found:
        raise FolderError(f"{root}: its classes are now {_names(found)}, but the model was trained on "
                          f"{_names(tuple(classes))}; restore the folder or train a new model")
    if test_fraction > 0 and layout == "fraction" and not test:
        raise FolderError(f"{root}: every class folder holds one image, so none can be held out for testing; add "
                          "images, or use test fraction 0 (no test set)")
    channels_given, size_given = channels is not None, image_size is not None
    if channels is None or image_size is None:
        first = None
        for path, _ in train:
            try:
                first = _open(path)
                break
            except BadImageError as e:
                if not skip_bad:
                    raise BadImageError(path, e.reason + _SKIP_HINT) from None
                # (the skipped ones are counted when the split is decoded)
        if first is None:
            raise FolderError(f"{root}: none of its {len(train)} training images can be read")
        channels = natural_channels(first) if channels is None else channels
        image_size = (first.height, first.width) if image_size is None else image_size
        if max(image_size) > MAX_IMAGE_SIDE:
            raise FolderError(f"{root}: its images are {image_size[0]}x{image_size[1]}, larger than "
                              f"{MAX_IMAGE_SIDE} a side; pass --image-size H W (image_size=) to shrink them")
    return FolderPlan(root, found, tuple(train), tuple(test), layout, float(test_fraction), int(seed), channels,
                      image_size, channels_given, size_given, bool(skip_bad), tuple(ignored))


def _check_size(size) -> tuple[int, int] | None:
    if size is None:
        return None
    try:
        h, w = size
    except (TypeError, ValueError):
        raise FolderError(f"image_size must be (H, W), got {size!r}") from None
    for v in (h, w):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 1 <= v <= MAX_IMAGE_SIDE:
            raise FolderError(f"image_size must be (H, W), each an integer 1 to {MAX_IMAGE_SIDE}, got {size!r}")
    return int(h), int(w)


def _names(classes: Sequence[str], most: int = 8) -> str:
    shown = ", ".join(classes[:most])
    return f"[{shown}{', ...' if len(classes) > most else ''}] ({len(classes)})"


def _scan_classes(root: Path, suffixes: frozenset[str],
                  ignored: list[Path]) -> tuple[tuple[str, ...], list[list[Path]]]:
    """(class names, each class's image files) of a folder holding one subfolder per class."""
    folders = _subfolders(root)
    if not folders:
        loose = sum(1 for e in os.scandir(root) if e.is_file() and Path(e.name).suffix.lower() in suffixes)
        what = f"{loose} images but no class subfolders" if loose else "no class subfolders"
        raise FolderError(f"{root}: holds {what}; put each class's images in its own subfolder "
                          f"({root}/<class>/image.png)")
    if len(folders) < 2:
        raise FolderError(f"{root}: holds only the class folder {folders[0].name}/; a classifier needs at least "
                          "two classes, one subfolder each")
    files = [_class_files(f, suffixes, ignored) for f in folders]
    for folder, found in zip(folders, files):
        if not found:
            raise FolderError(f"{folder}: the class folder holds no images (files ending in .png, .jpg, ...); "
                              "add some or remove the folder")
    return tuple(f.name for f in folders), files


def _split_folders(root: Path, names: set[str], suffixes: frozenset[str],
                   ignored: list[Path]) -> tuple[tuple[str, ...], list, list]:
    others = sorted(names - {"train", "test"})
    if not {"train", "test"} <= names or others:
        has = "train/" if "train" in names else "test/"
        fix = f"beside the class-like folders {', '.join(others[:5])}" if others else "alone"
        raise FolderError(f"{root}: holds {has} {fix}; either give it both train/<class>/ and test/<class>/ "
                          "folders and nothing else, or only class folders (split by the test fraction)")
    classes, train_files = _scan_classes(root / "train", suffixes, ignored)
    test_names = [f.name for f in _subfolders(root / "test")]
    extra = sorted(set(test_names) - set(classes))
    if extra:
        raise FolderError(f"{root / 'test'}: class folder(s) {', '.join(extra[:5])} have no match in "
                          f"{root / 'train'}; every test class needs training images")
    train = [(p, label) for label, files in enumerate(train_files) for p in files]
    test = [(p, classes.index(name)) for name in test_names
            for p in _class_files(root / "test" / name, suffixes, ignored)]
    if not test:
        raise FolderError(f"{root / 'test'}: holds no images; add test images or remove test/ and train/ to "
                          "split by the test fraction")
    return classes, train, sorted(test, key=lambda t: (t[1], t[0]))


def _split_fraction(files: list[list[Path]], fraction: float, seed: int) -> tuple[list, list]:
    """Per class, a seeded random `fraction` of the files is the test split (at least one when fraction > 0, so
    a small class is tested too); every class keeps a training image."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label, paths in enumerate(files):
        order = rng.permutation(len(paths))
        n_test = max(int(round(len(paths) * fraction)), 1 if fraction > 0 else 0)
        n_test = min(n_test, len(paths) - 1)
        held = set(order[:n_test].tolist())
        for i, path in enumerate(paths):
            (test if i in held else train).append((path, label))
    return train, test


class ImageFolder(ArrayDataset):
    """One split of an image folder: uint8 images (N, C, H, W), labels, classes, the files they came from
    (.paths), those skipped as unusable (.skipped: (path, why)) and the FolderSpec that reads it again."""

    def __init__(self, decoded: _Decoded, spec: FolderSpec, split: str, plan: FolderPlan):
        super().__init__(decoded.images, decoded.labels, name=f"{spec.path} ({split})", classes=spec.classes,
                         mean=list(spec.mean), std=list(spec.std))
        self.root = Path(spec.path)
        self.split = split
        self.train = split == "train"
        self.spec = spec
        self.paths = decoded.paths
        self.skipped = decoded.skipped
        self.ignored = plan.ignored if self.train else ()


def load_image_folder(root: str | os.PathLike, image_size: tuple[int, int] | None = None,
                      channels: int | None = None, test_fraction: float = 0.1, seed: int = 0,
                      mean: Sequence[float] | float | None = None, std: Sequence[float] | float | None = None,
                      skip_bad: bool = False, progress: FolderProgress | None = None,
                      classes: Sequence[str] | None = None) -> tuple[ImageFolder, ImageFolder | None]:
    """(train, test) splits of an image folder, decoded (test is None with test_fraction 0); FolderError or
    BadImageError naming the folder or file for anything unusable, unless skip_bad skips bad images."""
    plan = plan_image_folder(root, image_size, channels, test_fraction, seed, skip_bad, classes)
    return plan.load(mean, std, progress)


def load_folder_split(spec: FolderSpec, train: bool = True, root: str | os.PathLike | None = None,
                      progress: FolderProgress | None = None) -> ImageFolder:
    """One split of a folder read again as `spec` says (root: where the folder is now, if it moved)."""
    plan = plan_image_folder(root if root is not None else spec.path, spec.image_size, spec.channels,
                             spec.test_fraction, spec.split_seed, spec.skip_bad, spec.classes)
    if plan.layout != spec.layout:
        raise FolderError(f"{plan.root}: its layout is now {plan.layout!r} (train/ and test/ folders, or class "
                          f"folders split by fraction) but was {spec.layout!r}; restore it or train a new model")
    files = plan.train if train else plan.test
    if not files:
        raise FolderError(f"{plan.root}: the run held out no test images (test fraction {spec.test_fraction:g})")
    decoded = plan._decode("train" if train else "test", files, progress)
    if not len(decoded):
        raise FolderError(f"{plan.root}: every {'training' if train else 'test'} image was skipped as unusable")
    return ImageFolder(decoded, dataclasses.replace(spec, path=os.fspath(plan.root)), "train" if train else "test",
                       plan)


class DecodeProgress:
    """A progress printer for large folders: one updating line on a terminal, a line every 10% otherwise."""

    def __init__(self, stream=None, minimum: int = PROGRESS_MIN_IMAGES):
        self.stream = stream if stream is not None else sys.stderr
        self.minimum = minimum
        self.shown = -1

    def __call__(self, what: str, done: int, total: int) -> None:
        if total < self.minimum:
            return
        tty = getattr(self.stream, "isatty", lambda: False)()
        tenth = 10 * done // total
        if not tty and tenth == self.shown and done < total:
            return
        self.shown = tenth
        line = f"decoding {what}: {done}/{total} images ({100 * done // total}%)"
        if tty:
            print(f"\r{line}", end="\n" if done >= total else "", file=self.stream, flush=True)
        else:
            print(line, file=self.stream, flush=True)
