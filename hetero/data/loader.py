"""DataLoader: seeded, resumable batches (B, C, H, W) float32 + int32 labels, prepared by a background thread.

The background thread only prepares host arrays (indexing, scaling, resizing, padding). The copy to the
device is enqueued by the consuming thread when it takes a batch: the device's state (its held-copy
list, the trace of a step being compiled) is not safe to touch from a second thread, and the copy is
non-blocking anyway, so it runs on the device's in-order queue after the work already queued there.
"""

from __future__ import annotations

import math
import queue
import sys
import threading
from collections.abc import Callable, Iterator, Sequence

import numpy as np

from .. import validate
from ..device import Device
from ..device import device as get_device
from ..tensor import Tensor, tensor
from .transforms import INTERPOLATIONS, pad, resize

Batch = tuple[np.ndarray, np.ndarray] | tuple[Tensor, Tensor]

PREFETCH_DEPTH = 2  # batches prepared ahead of the consumer
THREAD_NAME = "hetero-data-loader"


def _int_arg(value, what: str, minimum: int) -> int:
    return validate.int_at_least("DataLoader", what, value, minimum)


def _pair(value, what: str, minimum: int) -> tuple[int, int]:
    return validate.pair("DataLoader", what, value, minimum=minimum, noun="an (h, w) pair of ints")


class DataLoader:
    """Batches of a data set; the order of epoch e depends only on (seed, e), so a run can resume anywhere.

    Images are resized, then normalised ((x - mean) / std; uint8 scaled to 0-1 first), then padded with black.
    """

    def __init__(self, dataset, batch_size: int, shuffle: bool = False, seed: int = 0, drop_last: bool = False,
                 normalize: bool | tuple = True, pad: int | tuple[int, int] = 0,
                 resize: int | tuple[int, int] | None = None, device: Device | str | int | None = None,
                 prefetch: bool = True, interpolation: str = "bilinear"):
        if not hasattr(dataset, "images") or not hasattr(dataset, "labels"):
            raise ValueError(f"DataLoader: dataset must have .images and .labels arrays (e.g. an ArrayDataset), "
                             f"got {type(dataset).__name__}")
        self.dataset = dataset
        self.batch_size = _int_arg(batch_size, "batch_size", 1)
        _check_size(dataset, self.batch_size, bool(drop_last))
        self.seed = _int_arg(seed, "seed", 0)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.pad = _pair(pad, "pad", 0)
        self.resize = None if resize is None else _pair(resize, "resize", 1)
        if interpolation not in INTERPOLATIONS:
            raise ValueError(f"DataLoader: interpolation must be one of {INTERPOLATIONS}, got {interpolation!r}")
        self.interpolation = interpolation
        self.prefetch = bool(prefetch)
        self.device = None if device is None else get_device(device)
        self.epoch = 0
        images = dataset.images
        channels = 1 if images.ndim == 3 else images.shape[1]
        self._scale = np.float32(1 / 255 if images.dtype == np.uint8 else 1.0)
        self._mean, self._std = self._normalization(normalize, channels)

    def _normalization(self, normalize, channels: int) -> tuple[np.ndarray, np.ndarray]:
        """(mean, std) as float32 (1, C, 1, 1) arrays, from the data set, the caller, or none (0, 1)."""
        if normalize is True:
            mean, std = self.dataset.mean, self.dataset.std
            what = f"the data set's mean/std ({mean}, {std})"
        elif normalize is False or normalize is None:
            mean, std, what = 0.0, 1.0, ""
        elif isinstance(normalize, (tuple, list)) and len(normalize) == 2:
            mean, std = normalize
            what = f"normalize {tuple(normalize)}"
        else:
            raise ValueError(f"DataLoader: normalize must be True, False or a (mean, std) pair, got {normalize!r}")
        stats = []
        for value in (mean, std):
            arr = np.asarray(value, np.float32).reshape(-1)
            if arr.size not in (1, channels):
                raise ValueError(f"DataLoader: {what} needs 1 or {channels} (one per channel) values each")
            stats.append(np.broadcast_to(arr, (channels,)).reshape(1, -1, 1, 1))
        if not np.all(stats[1] > 0):
            raise ValueError(f"DataLoader: {what} has a std <= 0 (are all pixels equal?); pass "
                             "normalize=False or normalize=(mean, std) with std > 0")
        return stats[0], stats[1]

    @property
    def num_samples(self) -> int:
        """Samples one epoch yields (drop_last leaves out the incomplete last batch)."""
        n = len(self.dataset.labels)
        return n - n % self.batch_size if self.drop_last else n

    def __len__(self) -> int:
        """Batches per epoch."""
        n = len(self.dataset.labels)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    @property
    def batch_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of the images in a batch, after resizing and padding."""
        images = self.dataset.images
        c = 1 if images.ndim == 3 else images.shape[1]
        h, w = self.resize or images.shape[-2:]
        return c, h + 2 * self.pad[0], w + 2 * self.pad[1]

    def set_epoch(self, epoch: int) -> None:
        """Make the next `for batch in loader` iterate this epoch (counting from 0)."""
        self.epoch = _int_arg(epoch, "epoch", 0)

    def order(self, epoch: int) -> np.ndarray:
        """The sample indices of an epoch in batch order: a permutation seeded by (seed, epoch) if shuffling."""
        n = len(self.dataset.labels)
        if not self.shuffle:
            return np.arange(n)
        return np.random.default_rng([self.seed, _int_arg(epoch, "epoch", 0)]).permutation(n)

    def __iter__(self) -> Iterator[Batch]:
        epoch = self.epoch
        yield from self.iterate(epoch)
        self.epoch = epoch + 1

    def iterate(self, epoch: int, start: int = 0) -> Iterator[Batch]:
        """The batches of an epoch from batch index `start` on (to resume mid-epoch); leaves .epoch alone."""
        epoch = _int_arg(epoch, "epoch", 0)
        start = _int_arg(start, "start", 0)
        if start > len(self):
            raise ValueError(f"DataLoader: start must be <= {len(self)} (batches per epoch), got {start}")
        order = self.order(epoch)
        batch_ids = range(start, len(self))
        return self._batches(order, batch_ids)

    def _batches(self, order: np.ndarray, batch_ids: Sequence[int]) -> Iterator[Batch]:
        def make(b: int) -> tuple[np.ndarray, np.ndarray]:
            return self.host_batch(order[b * self.batch_size:(b + 1) * self.batch_size])

        if self.prefetch:
            host = prefetched(make, batch_ids, PREFETCH_DEPTH)
        else:
            host = (make(b) for b in batch_ids)
        for x, y in host:
            if self.device is None:
                yield x, y
            else:
                yield tensor(x, self.device), tensor(y, self.device)

    def host_batch(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Images (B, C, H, W) float32, scaled, resized, normalised and padded, and labels (B,) int32."""
        images = self.dataset.images[indices]
        x = images.astype(np.float32)
        if x.ndim == 3:
            x = x[:, None]
        if self.resize is not None:
            x = resize(x, self.resize, self.interpolation)
        x *= self._scale / self._std
        x -= self._mean / self._std
        x = pad(x, self.pad, -self._mean / self._std)  # the padding is a black (0) pixel, normalised
        y = np.ascontiguousarray(self.dataset.labels[indices], dtype=np.int32)
        return np.ascontiguousarray(x, dtype=np.float32), y

    def __repr__(self) -> str:
        name = getattr(self.dataset, "name", type(self.dataset).__name__)
        where = f", device={self.device.id}" if self.device is not None else ""
        return f"<DataLoader {name}: {len(self)} batches of {self.batch_size}, shuffle={self.shuffle}{where}>"


def _check_size(dataset, batch_size: int, drop_last: bool) -> None:
    """A loader with no batch would fail later, far from the cause (a scheduler over 0 steps, a mean over
    no images): refuse it here, naming the data set."""
    name = getattr(dataset, "name", type(dataset).__name__)
    n_images, n_labels = len(dataset.images), len(dataset.labels)
    if n_images != n_labels:
        raise ValueError(f"DataLoader: data set {name!r} has {n_images} images but {n_labels} labels")
    if n_images == 0:
        files = getattr(dataset, "files", None)
        where = f" ({', '.join(map(str, files))})" if files else ""
        raise ValueError(f"DataLoader: data set {name!r}{where} holds no images; there is nothing to train or "
                         "evaluate on")
    if drop_last and n_images < batch_size:
        raise ValueError(f"DataLoader: drop_last=True with batch_size {batch_size} leaves no batch of data set "
                         f"{name!r}, which holds {n_images} images; use a smaller batch_size or drop_last=False")


_ITEM, _DONE, _FAILED = "item", "done", "failed"


def prefetched(make: Callable[[int], object], items: Sequence[int], depth: int) -> Iterator:
    """make(i) for each item, computed up to `depth` ahead by a daemon thread.

    The thread stops when the iterator is exhausted, closed or garbage-collected (a `break` closes it);
    an exception raised by make() is raised in the consumer, with its traceback.
    """
    results: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    worker = threading.Thread(target=_produce, args=(make, items, results, stop), name=THREAD_NAME, daemon=True)
    worker.start()
    try:
        while True:
            kind, value = results.get()
            if kind == _DONE:
                return
            if kind == _FAILED:
                raise value
            yield value
    finally:
        stop.set()
        _drain(results)  # unblocks a worker waiting to put
        # not on the worker itself (the collector may finalise us there), nor at interpreter exit, when
        # daemon threads are frozen and would never end
        if worker is not threading.current_thread() and not sys.is_finalizing():
            worker.join()


def _produce(make: Callable[[int], object], items: Sequence[int], results: queue.Queue,
             stop: threading.Event) -> None:
    try:
        for i in items:
            if stop.is_set() or not _put(results, (_ITEM, make(i)), stop):
                return
        _put(results, (_DONE, None), stop)
    except BaseException as e:  # handed to the consumer, which raises it
        _put(results, (_FAILED, e), stop)


def _put(results: queue.Queue, item: tuple, stop: threading.Event) -> bool:
    while not stop.is_set():
        try:
            results.put(item, timeout=0.05)
            return True
        except queue.Full:
            continue
    return False


def _drain(results: queue.Queue) -> None:
    while True:
        try:
            results.get_nowait()
        except queue.Empty:
            return
