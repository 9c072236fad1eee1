"""hetero.random: seeding, the device-resident state, its checkpoint API and the counter advance kernel."""

import numpy as np
import pytest

from hetero import random as hrandom


@pytest.fixture(autouse=True)
def _restore_rng(dev):
    seed, state = hrandom.initial_seed(), hrandom.get_rng_state(dev)
    yield
    hrandom.manual_seed(seed)
    hrandom.set_rng_state(dev, state)


def test_manual_seed_sets_key_and_resets_counter(dev):
    hrandom.set_rng_state(dev, [1, 2, 3, 4])
    hrandom.manual_seed(0x0123456789ABCDEF)
    assert hrandom.get_rng_state(dev).tolist() == [0x89ABCDEF, 0x01234567, 0, 0]
    assert hrandom.get_rng_state(dev).dtype == np.uint32
    assert hrandom.initial_seed() == 0x0123456789ABCDEF


def test_negative_seed_wraps_like_pytorch(dev):
    hrandom.manual_seed(-1)
    assert hrandom.get_rng_state(dev).tolist() == [0xFFFFFFFF, 0xFFFFFFFF, 0, 0]


def test_generators_created_later_start_from_the_last_seed(dev):
    hrandom.manual_seed(42)
    later = hrandom.Generator(dev, hrandom.initial_seed())  # what default_generator builds for a new device
    assert later.get_state().tolist() == [42, 0, 0, 0]
    assert hrandom.default_generator(dev) is hrandom.default_generator(dev.id)


def test_state_round_trips_and_lives_in_one_device_buffer(dev):
    gen = hrandom.default_generator(dev)
    buffer = gen.state.buffer
    hrandom.set_rng_state(dev, np.array([5, 6, 0xFFFFFFFF, 0x7FFFFFFF], np.uint32))
    assert hrandom.get_rng_state(dev).tolist() == [5, 6, 0xFFFFFFFF, 0x7FFFFFFF]
    assert gen.state.buffer is buffer  # overwritten in place: recorded launches keep pointing at it


@pytest.mark.parametrize("start,blocks", [(0, 1), (0xFFFFFFFF, 1), (0xFFFFFFFE, 5), (2**64 - 1, 2), (123, 2**40)])
def test_advance_kernel_adds_to_the_64_bit_counter(dev, start, blocks):
    gen = hrandom.default_generator(dev)
    gen.set_state([9, 8, start & 0xFFFFFFFF, start >> 32])
    gen.advance(blocks)
    end = (start + blocks) % 2**64
    assert gen.get_state().tolist() == [9, 8, end & 0xFFFFFFFF, end >> 32]


def test_bad_seeds_and_states_raise_value_error(dev):
    for seed in (1.5, "1", 2**64, -(2**63) - 1, True):
        with pytest.raises(ValueError, match="manual_seed: seed"):
            hrandom.manual_seed(seed)
    with pytest.raises(ValueError, match=r"set_rng_state: state must be 4 integers .* got int64 \(3,\)"):
        hrandom.set_rng_state(dev, [1, 2, 3])
    with pytest.raises(ValueError, match="set_rng_state: state must be 4 integers"):
        hrandom.set_rng_state(dev, [1.0, 2.0, 3.0, 4.0])
    with pytest.raises(ValueError, match=r"set_rng_state: state words must be in \[0, 2\*\*32\)"):
        hrandom.set_rng_state(dev, [1, 2, 3, 2**32])
    with pytest.raises(ValueError, match=r"set_rng_state: state words must be in"):
        hrandom.set_rng_state(dev, [-1, 2, 3, 4])
