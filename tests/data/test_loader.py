"""DataLoader: batching, normalisation, pad/resize, seeded resumable order, device batches, the prefetch thread."""

from __future__ import annotations

import gc
import threading

import numpy as np
import pytest

from hetero import Tensor
from hetero.data import ArrayDataset, DataLoader
from hetero.data.loader import THREAD_NAME
from hetero.data.transforms import resize


def _dataset(n=10, shape=(4, 4), seed=0) -> ArrayDataset:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, *shape), dtype=np.uint8)
    return ArrayDataset(images, np.arange(n) % 10, mean=0.5, std=0.25)


def _loader_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == THREAD_NAME]


def _collect(batches):
    return [(x.copy(), y.copy()) for x, y in batches]


@pytest.mark.parametrize("prefetch", [True, False])
def test_batches_in_order(prefetch):
    ds = _dataset(10)
    loader = DataLoader(ds, 4, normalize=False, prefetch=prefetch)
    assert (len(loader), loader.num_samples) == (3, 10)
    batches = _collect(loader)
    assert [y.tolist() for _, y in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    x, y = batches[0]
    assert x.shape == (4, 1, 4, 4) and x.dtype == np.float32 and x.flags.c_contiguous
    assert y.dtype == np.int32
    np.testing.assert_allclose(x[:, 0], ds.images[:4] / 255, rtol=1e-6)


def test_drop_last():
    loader = DataLoader(_dataset(10), 4, drop_last=True)
    assert (len(loader), loader.num_samples) == (2, 8)
    assert [len(y) for _, y in loader] == [4, 4]
    assert len(DataLoader(_dataset(8), 4, drop_last=True)) == 2


def test_normalisation_values():
    images = np.array([[[0, 255], [51, 102]]], np.uint8)  # (1, 2, 2)
    ds = ArrayDataset(images, [3], mean=0.5, std=0.25)
    x, _ = next(iter(DataLoader(ds, 1)))
    np.testing.assert_allclose(x[0, 0], [[-2.0, 2.0], [-1.2, -0.4]], rtol=1e-6)
    x, _ = next(iter(DataLoader(ds, 1, normalize=(0.2, 0.5))))
    np.testing.assert_allclose(x[0, 0], [[-0.4, 1.6], [0.0, 0.4]], rtol=1e-6, atol=1e-7)
    x, _ = next(iter(DataLoader(ds, 1, normalize=False)))
    np.testing.assert_allclose(x[0, 0], [[0.0, 1.0], [0.2, 0.4]], rtol=1e-6)


def test_normalisation_per_channel_and_float_images():
    images = np.ones((2, 2, 3, 3), np.float32) * np.array([0.5, 1.0], np.float32).reshape(1, 2, 1, 1)
    x, _ = next(iter(DataLoader(ArrayDataset(images, [0, 1]), 2, normalize=((0.5, 0.0), (1.0, 0.5)))))
    assert x.shape == (2, 2, 3, 3)
    np.testing.assert_allclose(x[:, 0], 0.0)
    np.testing.assert_allclose(x[:, 1], 2.0)


def test_pad():
    ds = ArrayDataset(np.full((2, 3, 3), 255, np.uint8), [0, 1], mean=0.5, std=0.25)
    x, _ = next(iter(DataLoader(ds, 2, pad=2)))
    assert x.shape == (2, 1, 7, 7)
    np.testing.assert_allclose(x[:, :, 2:5, 2:5], 2.0)  # (1 - 0.5) / 0.25
    border = np.ones((7, 7), bool)
    border[2:5, 2:5] = False
    np.testing.assert_allclose(x[:, 0][:, border], -2.0)  # a black pixel, normalised: (0 - 0.5) / 0.25
    x, _ = next(iter(DataLoader(ds, 2, pad=(0, 1))))
    assert x.shape == (2, 1, 3, 5)


def test_resize_and_pad_shapes():
    ds = _dataset(3, (28, 28))
    loader = DataLoader(ds, 3, resize=32, pad=2)
    x, _ = next(iter(loader))
    assert x.shape == (3, 1, 36, 36) and loader.batch_shape == (1, 36, 36)
    x, _ = next(iter(DataLoader(ds, 3, resize=(14, 20), interpolation="nearest")))
    assert x.shape == (3, 1, 14, 20)


def test_bilinear_matches_pytorch_values():
    x = np.array([[0, 1], [2, 3]], np.float32).reshape(1, 1, 2, 2)
    # torch.nn.functional.interpolate(x, size=4, mode="bilinear", align_corners=False)
    expected = [[0.0, 0.25, 0.75, 1.0], [0.5, 0.75, 1.25, 1.5], [1.5, 1.75, 2.25, 2.5], [2.0, 2.25, 2.75, 3.0]]
    np.testing.assert_allclose(resize(x, (4, 4), "bilinear")[0, 0], expected)
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    np.testing.assert_allclose(resize(x, (2, 2), "bilinear")[0, 0], [[2.5, 4.5], [10.5, 12.5]])
    np.testing.assert_array_equal(resize(x, (4, 4), "bilinear"), x)


def test_nearest_values():
    x = np.arange(4, dtype=np.float32).reshape(1, 1, 2, 2)
    np.testing.assert_array_equal(resize(x, (4, 4), "nearest")[0, 0], np.repeat(np.repeat(x[0, 0], 2, 0), 2, 1))
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    np.testing.assert_array_equal(resize(x, (2, 2), "nearest")[0, 0], [[0, 2], [8, 10]])


def test_loader_resize_uses_the_transform():
    ds = _dataset(2, (5, 5))
    x, _ = next(iter(DataLoader(ds, 2, resize=(7, 3), normalize=False)))
    expected = resize(ds.images[:, None].astype(np.float32), (7, 3)) / np.float32(255)
    np.testing.assert_allclose(x, expected, rtol=1e-6)


def test_same_seed_and_epoch_same_order():
    ds = _dataset(50)
    a = DataLoader(ds, 8, shuffle=True, seed=3)
    b = DataLoader(ds, 8, shuffle=True, seed=3)
    ya = np.concatenate([y for _, y in a.iterate(2)])
    yb = np.concatenate([y for _, y in b.iterate(2)])
    np.testing.assert_array_equal(ya, yb)
    assert sorted(ya.tolist()) == sorted(ds.labels.tolist())  # a permutation: every sample once
    other_epoch = np.concatenate([y for _, y in a.iterate(3)])
    other_seed = np.concatenate([y for _, y in DataLoader(ds, 8, shuffle=True, seed=4).iterate(2)])
    assert not np.array_equal(ya, other_epoch) and not np.array_equal(ya, other_seed)
    np.testing.assert_array_equal(a.order(2), np.random.default_rng([3, 2]).permutation(50))
    np.testing.assert_array_equal(DataLoader(ds, 8).order(5), np.arange(50))


def test_epochs_advance_and_set_epoch():
    ds = _dataset(20)
    loader = DataLoader(ds, 6, shuffle=True, seed=1)
    first = np.concatenate([y for _, y in loader])
    assert loader.epoch == 1
    second = np.concatenate([y for _, y in loader])
    assert loader.epoch == 2 and not np.array_equal(first, second)
    loader.set_epoch(0)
    np.testing.assert_array_equal(np.concatenate([y for _, y in loader]), first)
    for _ in loader:
        break
    assert loader.epoch == 1  # an interrupted epoch does not count


@pytest.mark.parametrize("start", [0, 1, 4, 6])
def test_iterate_from_start_is_the_tail(start):
    loader = DataLoader(_dataset(23), 4, shuffle=True, seed=7)
    full = _collect(loader.iterate(5))
    tail = _collect(loader.iterate(5, start=start))
    assert len(full) == 6 and len(tail) == 6 - start
    for (x1, y1), (x2, y2) in zip(full[start:], tail):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
    assert loader.epoch == 0


def test_device_batches_equal_host_batches(dev):
    ds = _dataset(11, (6, 6))
    on_host = DataLoader(ds, 4, shuffle=True, seed=2, pad=1)
    on_dev = DataLoader(ds, 4, shuffle=True, seed=2, pad=1, device=dev)
    assert on_dev.device is dev
    count = 0
    for (xh, yh), (xd, yd) in zip(on_host.iterate(1), on_dev.iterate(1)):
        assert isinstance(xd, Tensor) and isinstance(yd, Tensor)
        assert xd.device is dev and xd.dtype == np.float32 and yd.dtype == np.int32
        np.testing.assert_array_equal(xd.numpy(), xh)
        np.testing.assert_array_equal(yd.numpy(), yh)
        count += 1
    assert count == 3


def test_device_given_as_spec(dev):
    loader = DataLoader(_dataset(2), 2, device=dev.id)
    x, _ = next(iter(loader))
    assert loader.device is dev and x.device is dev


def test_break_stops_the_thread():
    before = threading.active_count()
    loader = DataLoader(_dataset(200), 2)
    for i, _ in enumerate(loader):
        if i == 1:
            assert threading.active_count() == before + 1 and len(_loader_threads()) == 1
            break
    assert threading.active_count() == before
    assert _loader_threads() == []


def test_dropped_loader_stops_the_thread():
    before = threading.active_count()
    loader = DataLoader(_dataset(200), 2)
    batches = iter(loader)
    next(batches)
    assert threading.active_count() == before + 1
    del batches, loader
    gc.collect()
    assert threading.active_count() == before
    assert _loader_threads() == []


def test_full_epoch_ends_the_thread():
    before = threading.active_count()
    assert len(_collect(DataLoader(_dataset(9), 2))) == 5
    assert threading.active_count() == before


class _Failing(DataLoader):
    def host_batch(self, indices):
        if 6 in indices:
            raise RuntimeError("bad sample 6")
        return super().host_batch(indices)


@pytest.mark.parametrize("prefetch", [True, False])
def test_error_in_the_worker_reaches_the_consumer(prefetch):
    before = threading.active_count()
    got = []
    with pytest.raises(RuntimeError, match="bad sample 6"):
        for _, y in _Failing(_dataset(10), 3, prefetch=prefetch):
            got.append(y.tolist())
    assert got == [[0, 1, 2], [3, 4, 5]]
    assert threading.active_count() == before


@pytest.mark.parametrize("kwargs, message", [
    ({"batch_size": 0}, "batch_size must be an int >= 1, got 0"),
    ({"batch_size": -3}, "batch_size must be an int >= 1"),
    ({"batch_size": 2.5}, "batch_size must be an int >= 1"),
    ({"pad": -1}, r"pad must be >= 0, got \(-1, -1\)"),
    ({"pad": (1, 2, 3)}, "pad must be an int or an"),
    ({"pad": 1.5}, "pad must be an int or an"),
    ({"resize": 0}, "resize must be >= 1"),
    ({"seed": -1}, "seed must be an int >= 0"),
    ({"normalize": (0.5, 0.0)}, r"normalize \(0.5, 0.0\) has a std <= 0"),
    ({"normalize": ((0.5, 0.5), 1.0)}, "needs 1 or 1 .one per channel. values"),
    ({"normalize": "yes"}, "normalize must be True, False or a"),
    ({"interpolation": "cubic"}, "interpolation must be one of"),
])
def test_bad_arguments(kwargs, message):
    args = {"batch_size": 2, **kwargs}
    with pytest.raises(ValueError, match=message):
        DataLoader(_dataset(4), **args)


def test_constant_images_need_explicit_normalisation():
    ds = ArrayDataset(np.zeros((3, 2, 2), np.uint8), [0, 1, 2])
    with pytest.raises(ValueError, match=r"the data set's mean/std \(0.0, 0.0\) has a std <= 0 .*normalize=False"):
        DataLoader(ds, 2)
    x, _ = next(iter(DataLoader(ds, 2, normalize=False)))
    np.testing.assert_array_equal(x, 0.0)


def test_bad_iterate_arguments():
    loader = DataLoader(_dataset(10), 4)
    with pytest.raises(ValueError, match=r"start must be <= 3 \(batches per epoch\), got 4"):
        loader.iterate(0, start=4)
    with pytest.raises(ValueError, match="epoch must be an int >= 0"):
        loader.iterate(-1)
    with pytest.raises(ValueError, match="epoch must be an int >= 0"):
        loader.set_epoch(-2)
    with pytest.raises(ValueError, match="dataset must have .images and .labels"):
        DataLoader([1, 2, 3], 2)
    assert list(loader.iterate(0, start=3)) == []


def test_an_empty_data_set_is_refused_by_the_loader():
    """It used to give a loader of 0 batches, and a traceback later (a scheduler over 0 steps)."""
    empty = ArrayDataset(np.zeros((0, 4, 4), np.uint8), np.zeros(0, np.int64), name="nothing")
    for kwargs in ({}, {"normalize": False}, {"drop_last": True}):
        with pytest.raises(ValueError, match="DataLoader: data set 'nothing' holds no images"):
            DataLoader(empty, 4, **kwargs)


def test_drop_last_leaving_no_batch_is_refused():
    with pytest.raises(ValueError, match=r"drop_last=True with batch_size 16 leaves no batch .* holds 10 images"):
        DataLoader(_dataset(10), 16, drop_last=True)
    assert len(DataLoader(_dataset(10), 16)) == 1


def test_images_and_labels_of_different_lengths_are_refused():
    class Mismatched:
        images = np.zeros((3, 4, 4), np.uint8)
        labels = np.zeros(2, np.int64)
        mean, std = 0.5, 0.25

    with pytest.raises(ValueError, match="has 3 images but 2 labels"):
        DataLoader(Mismatched(), 2)
