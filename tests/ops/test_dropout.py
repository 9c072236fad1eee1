"""Dropout: masks bit for bit against the numpy Philox reference, statistics, seeding and graph replay."""

import numpy as np
import pyopencl as cl
import pytest

import hetero
from hetero import random as hrandom
from hetero.ops import dropout as dr
from hetero.reference import dropout as ref
from tests.helpers import assert_close, numeric_grad, oclgrind, recorded_launches, shapes

SHAPES = shapes([(1,), (3,), (4,), (5,), (2, 3, 5, 7), (1, 1, 1, 1), (17, 33), (4099,), ()], [(5,), (2, 3)])


@pytest.fixture(autouse=True)
def _restore_rng(request):
    """Leave the seed and the device generator as found, so other tests see no difference."""
    if "dev" not in request.fixturenames:
        yield
        return
    dev = request.getfixturevalue("dev")
    seed, state = hrandom.initial_seed(), hrandom.get_rng_state(dev)
    yield
    hrandom.manual_seed(seed)
    hrandom.set_rng_state(dev, state)


def test_reference_philox_matches_random123_known_answers():
    # Random123's tests/kat_vectors, the three philox4x32 10 lines: counter, key -> output
    kat = [
        ([0, 0, 0, 0], [0, 0], [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]),
        ([0xFFFFFFFF] * 4, [0xFFFFFFFF] * 2, [0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD]),
        ([0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344], [0xA4093822, 0x299F31D0],
         [0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1]),
    ]
    for ctr, key, out in kat:
        assert ref.philox4x32_10(np.array([ctr]), key)[0].tolist() == out


def test_reference_gradient_matches_finite_differences(rng):
    x = rng.standard_normal((3, 7))
    w = rng.standard_normal(x.shape)
    state = [5, 6, 7, 0]
    _, mask = ref.dropout(x, 0.4, state)
    num = numeric_grad(lambda v: (ref.dropout(v, 0.4, state)[0] * w).sum(), x)
    assert np.allclose(ref.dropout_backward(w, mask, 0.4), num, atol=1e-6)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
@pytest.mark.parametrize("shape", SHAPES)
def test_mask_matches_reference_bit_for_bit(dev, shape, p, rng):
    hrandom.set_rng_state(dev, [0x12345678, 0x9ABCDEF0, 0xFFFFFFF0, 7])  # the counter carries past 2**32 here
    state = hrandom.get_rng_state(dev)
    x = rng.standard_normal(shape).astype(np.float32)
    x[x == 0] = 1.0  # a kept element must be nonzero to read the mask off y
    X = hetero.tensor(x, device=dev, requires_grad=True)
    y = dr.dropout(X, p)
    expected, mask = ref.dropout(x.astype(np.float64), p, state)
    got = y.numpy()
    assert np.array_equal(got != 0, mask), "mask differs from the reference"
    assert_close(got, expected, rtol=1e-6, atol=0, what=f"dropout {shape} p={p}")
    assert hrandom.get_rng_state(dev).tolist() == ref.advanced(state, x.size).tolist()
    g = rng.standard_normal(shape).astype(np.float32)
    y.backward(hetero.tensor(g, device=dev))
    assert_close(X.grad, ref.dropout_backward(g.astype(np.float64), mask, p), rtol=1e-6, atol=0,
                 what="dropout grad")


@pytest.mark.parametrize("local_size", [1, 4, 64])
def test_mask_does_not_depend_on_the_work_group_size(dev, local_size, rng):
    x = rng.standard_normal(1001).astype(np.float32) + 10.0  # all nonzero
    X = hetero.tensor(x, device=dev)
    hrandom.manual_seed(99)
    local_size = min(local_size, dev.local_size_limit("dropout.cl", "dropout_fw"))  # rusticl allows 32
    y, _ = dr.dropout_forward(X, 0.3, local_size=local_size)
    assert np.array_equal(y.numpy() != 0, ref.dropout_mask(x.shape, 0.3, hrandom.seed_state(99)))


def test_keep_fraction_is_one_minus_p(dev):
    hrandom.manual_seed(2024)
    n = 1 << 12 if oclgrind() else 1 << 20  # the simulator is ~1000x slower
    X = hetero.ones((n,), device=dev)
    for p in (0.2, 0.5, 0.75):
        y = dr.dropout(X, p).numpy()
        kept = y != 0
        sigma = np.sqrt(p * (1 - p) / n)  # ~5e-4 for 2**20 elements
        assert abs(kept.mean() - (1 - p)) < 6 * sigma, (p, kept.mean())
        assert np.allclose(y[kept], 1 / (1 - p), rtol=1e-6)
        assert abs(y.mean() - 1.0) < 6 * sigma / (1 - p)  # the scaling keeps the expectation


def test_seed_reproducibility_and_fresh_masks(dev, rng):
    X = hetero.tensor(rng.standard_normal((64, 33)).astype(np.float32), device=dev)
    hrandom.manual_seed(7)
    a, b = dr.dropout(X, 0.5).numpy(), dr.dropout(X, 0.5).numpy()
    assert not np.array_equal(a != 0, b != 0), "consecutive calls gave the same mask"
    hrandom.manual_seed(7)
    assert np.array_equal(dr.dropout(X, 0.5).numpy(), a)
    assert np.array_equal(dr.dropout(X, 0.5).numpy(), b)
    hrandom.manual_seed(8)
    assert not np.array_equal(dr.dropout(X, 0.5).numpy(), a)


def test_rng_state_checkpoint_restores_the_stream(dev, rng):
    X = hetero.tensor(rng.standard_normal((10, 10)).astype(np.float32), device=dev)
    hrandom.manual_seed(3)
    dr.dropout(X, 0.5)
    saved = hrandom.get_rng_state(dev)
    first = dr.dropout(X, 0.5).numpy()
    dr.dropout(X, 0.5)
    hrandom.set_rng_state(dev, saved)
    assert np.array_equal(dr.dropout(X, 0.5).numpy(), first)


def _replay(dev, launches):
    for kernel, glob, local, args in launches:
        kernel.set_args(*args)
        cl.enqueue_nd_range_kernel(dev.queue, kernel, glob, local)


def test_replayed_launches_draw_fresh_masks(dev, rng):
    """A recorded dropout step replayed twice gives the next masks of the stream, not the recorded one."""
    x = rng.standard_normal(103).astype(np.float32) + 10.0
    X = hetero.tensor(x, device=dev)
    hrandom.manual_seed(11)
    state = hrandom.get_rng_state(dev)
    with recorded_launches(dev) as launches:
        y = dr.dropout(X, 0.5)
    assert len(launches) == 2  # the dropout kernel and the counter advance
    masks = [y.numpy() != 0]
    for _ in range(2):
        _replay(dev, launches)
        masks.append(y.numpy() != 0)
    for mask in masks:
        assert np.array_equal(mask, ref.dropout_mask(x.shape, 0.5, state))
        state = ref.advanced(state, x.size)
    assert not np.array_equal(masks[0], masks[1])
    assert hrandom.get_rng_state(dev).tolist() == state.tolist()


def test_identity_and_drop_all_cases(dev, rng):
    x = rng.standard_normal((4, 5)).astype(np.float32)
    X = hetero.tensor(x, device=dev, requires_grad=True)
    state = hrandom.get_rng_state(dev)
    assert dr.dropout(X, 0.0) is X
    assert dr.dropout(X, 0.7, training=False) is X
    assert dr.dropout(hetero.zeros((0, 3), device=dev), 0.5).shape == (0, 3)
    y = dr.dropout(X, 1.0)
    assert np.array_equal(y.numpy(), np.zeros_like(x))
    y.backward(hetero.ones(y.shape, device=dev))
    assert np.array_equal(X.grad.numpy(), np.zeros_like(x))
    assert hrandom.get_rng_state(dev).tolist() == state.tolist()  # none of these drew random numbers


def test_bad_inputs_raise_value_error(dev):
    x = hetero.zeros((2, 3), device=dev)
    for p in (-0.1, 1.5, float("nan"), "0.5", True):
        with pytest.raises(ValueError, match=r"dropout: probability has to be between 0 and 1.*\(2, 3\)"):
            dr.dropout(x, p)
    with pytest.raises(ValueError, match="dropout: expected a float32 tensor, got int32"):
        dr.dropout(hetero.tensor(np.zeros(3, np.int32), device=dev), 0.5)
