"""Tensors: host round trips, dtypes, moves between devices, the memory pool and out-of-memory errors."""

import numpy as np
import pytest

import hetero
from hetero.memory import size_class


@pytest.mark.parametrize("shape", [(), (1,), (7,), (2, 3), (2, 3, 5, 7), (0, 4)])
def test_round_trip_float32(dev, shape, rng):
    a = rng.standard_normal(shape).astype(np.float32)
    t = hetero.tensor(a, device=dev)
    assert t.shape == shape and t.dtype == np.float32 and t.device is dev
    assert np.array_equal(t.numpy(), a)


def test_dtypes_follow_the_data(dev):
    assert hetero.tensor([1, 2, 3], device=dev).dtype == np.int32
    assert hetero.tensor(np.arange(3, dtype=np.int64), device=dev).dtype == np.int32
    assert hetero.tensor([1.5, 2.0], device=dev).dtype == np.float32
    assert hetero.tensor(np.ones(2, np.float64), device=dev).dtype == np.float32
    assert np.array_equal(hetero.tensor([7, -8], device=dev).numpy(), [7, -8])


def test_bad_dtypes_and_ranges_are_rejected(dev):
    with pytest.raises(ValueError, match="unsupported dtype"):
        hetero.tensor(np.array(["a"]), device=dev)
    with pytest.raises(ValueError, match="do not fit in int32"):
        hetero.tensor(np.array([2**40]), device=dev)
    with pytest.raises(ValueError, match="not supported"):
        hetero.empty((2,), np.float16, dev)
    with pytest.raises(ValueError, match="negative dimension"):
        hetero.empty((2, -1), device=dev)


def test_fills(dev):
    assert np.array_equal(hetero.zeros((3, 2), device=dev).numpy(), np.zeros((3, 2)))
    assert np.array_equal(hetero.ones((5,), device=dev).numpy(), np.ones(5))
    assert np.array_equal(hetero.full((2,), 4, np.int32, dev).numpy(), [4, 4])


def test_item_and_repr(dev):
    assert hetero.tensor([[2.5]], device=dev).item() == 2.5
    with pytest.raises(ValueError, match="one element"):
        hetero.tensor([1.0, 2.0], device=dev).item()
    assert "shape=(2,)" in repr(hetero.tensor([1.0, 2.0], device=dev, requires_grad=True))


def test_to_other_device_copies(dev):
    halves = [d for d in hetero.devices() if d.max_sub_devices >= 2 and d.usable]
    target = hetero.select_devices(f"{halves[0].id}/2.1")[0] if halves else dev
    t = hetero.tensor(np.arange(4.0), device=dev)
    moved = t.to(target)
    assert moved.device is target and np.array_equal(moved.numpy(), np.arange(4.0))
    assert t.to(dev) is t


def test_pool_reuses_freed_buffers(dev):
    dev.synchronize()
    before = hetero.memory_stats(dev)
    a = hetero.empty((1000,), device=dev)
    buf = a.buffer
    mid = hetero.memory_stats(dev)
    assert mid["bytes_in_use"] == before["bytes_in_use"] + size_class(4000)
    del a
    after = hetero.memory_stats(dev)
    assert after["bytes_in_use"] == before["bytes_in_use"]
    assert after["bytes_cached"] >= size_class(4000)
    b = hetero.empty((990,), device=dev)  # same size class: the same buffer comes back
    assert b.buffer == buf
    assert hetero.memory_stats(dev)["allocations"] == mid["allocations"]


def test_size_classes():
    assert size_class(1) == 256 and size_class(256) == 256 and size_class(257) == 512
    big = 3 * 2**20 + 1
    assert big <= size_class(big) <= big * 1.13


def test_out_of_memory_names_device_and_sizes(dev):
    too_big = dev.info.global_mem_bytes // 4 + 1
    with pytest.raises(hetero.OutOfMemoryError) as e:
        hetero.empty((too_big,), device=dev)
    msg = str(e.value)
    assert dev.info.id in msg and "asked for" in msg and "in use" in msg and "batch size" in msg


def test_synchronize_waits(dev):
    t = hetero.full((10000,), 3.0, device=dev)
    hetero.synchronize(dev)
    hetero.synchronize()
    assert float(t.numpy().sum()) == 30000.0


def test_debug_memory_gives_exact_fresh_buffers(dev):
    from hetero.memory import MemoryPool

    pool = MemoryPool(dev.context, dev.label, dev.info.global_mem_bytes, dev.cl_device.max_mem_alloc_size,
                      debug=True)
    a = pool.alloc(12)
    assert a.size == 12
    pool.free(a)
    b = pool.alloc(12)
    assert b != a and pool.stats()["bytes_in_use"] == 12 and pool.stats()["bytes_cached"] == 0


def test_tensor_snapshots_the_host_array(dev):
    """The upload is asynchronous, so the caller's array must be copied: changing it at once must not race."""
    from hetero.nn.functional import matmul

    big = hetero.ones((512, 512), device=dev)
    host = np.arange(1 << 16, dtype=np.float32)
    ts = []
    for _ in range(8):
        matmul(big, big)  # queued work ahead of the upload, so the copy runs well after tensor() returns
        ts.append(hetero.tensor(host, device=dev))
        host += 1.0  # in place, right after the (queued) copy
    for k, t in enumerate(ts):
        np.testing.assert_array_equal(t.numpy(), np.arange(1 << 16, dtype=np.float32) + k)


@pytest.mark.parametrize("shape", [(2.5, 3), (2, 3.0), (True, 3), (np.float32(2), 3), ("2", 3), "23", 2.0, None,
                                   (2, None)])
def test_shapes_must_be_ints(dev, shape):
    for make in (lambda: hetero.empty(shape, device=dev), lambda: hetero.zeros(shape, device=dev),
                 lambda: hetero.ones(shape, device=dev), lambda: hetero.full(shape, 2.0, device=dev)):
        with pytest.raises(ValueError, match="shape must be a sequence of ints"):
            make()
    t = hetero.zeros((6,), device=dev)
    with pytest.raises(ValueError, match="shape must be a sequence of ints"):
        t.reshape(shape if isinstance(shape, tuple) else (shape,))
    with pytest.raises(ValueError, match="shape must be a sequence of ints"):
        hetero.nn.functional.reshape(t, shape if isinstance(shape, tuple) else (shape,))


def test_numpy_integer_shapes_and_a_plain_int_are_accepted(dev):
    assert hetero.zeros((np.int64(2), np.int32(3)), device=dev).shape == (2, 3)
    assert hetero.empty(np.array([4, 1]), device=dev).shape == (4, 1)
    assert hetero.ones(3, device=dev).shape == (3,)
    t = hetero.zeros((2, 3), device=dev)
    assert t.reshape(np.int64(3), -1).shape == (3, 2)
    assert t.reshape([np.int16(6)]).shape == (6,)
    with pytest.raises(ValueError, match="must be ints"):
        t.flatten(0.0)


def test_ragged_lists_and_non_number_fill_values_are_clear_errors(dev):
    with pytest.raises(ValueError, match="hetero.tensor: cannot make an array"):
        hetero.tensor([[1, 2], [3]], device=dev)
    for value in ("x", None, True, [1.0]):
        with pytest.raises(ValueError, match="hetero.full: the fill value must be a number"):
            hetero.full((2,), value, device=dev)
    np.testing.assert_array_equal(hetero.full((2,), np.float32(1.5), device=dev).numpy(), [1.5, 1.5])
