"""hetero.parallel.balance: how a global batch is split across data-parallel workers and re-balanced."""

import json

import pytest

from hetero.parallel.balance import MODES, Balancer


def run_steps(b: Balancer, speeds, batch: int, steps: int, noise=None) -> list[bool]:
    """`steps` steps of workers running at `speeds` images/s (times scaled by 1 + noise when a generator is given);
    what observe returned each step."""
    changed = []
    for _ in range(steps):
        sizes = b.split(batch)
        seconds = [n / s * (1.0 + (0.0 if noise is None else noise.normal(0.0, 0.02))) for n, s in zip(sizes, speeds)]
        changed.append(b.observe(sizes, seconds))
    return changed


def test_modes():
    assert MODES == ("throughput", "equal")


def test_default_shares_are_equal_and_splits_sum_to_the_batch():
    b = Balancer(3)
    assert b.shares == pytest.approx((1 / 3,) * 3)
    assert b.rates == (None, None, None)
    assert b.split(10) == [4, 3, 3]  # the one extra image goes to the first of equals
    for weights in ((1, 1, 1), (5, 2, 1), (1, 1000, 3), (0.3, 0.3, 0.4)):
        w = Balancer(3, weights=weights, granularity=4)
        for batch in range(1, 300):
            sizes = w.split(batch)
            assert sum(sizes) == batch and len(sizes) == 3


def test_weights_set_proportional_shares():
    b = Balancer(2, weights=(3, 1))
    assert b.shares == pytest.approx((0.75, 0.25))
    assert b.split(64) == [48, 16]
    assert b.split(20) == [15, 5]  # a smaller last batch is split by the same shares


def test_granularity_only_the_fastest_takes_the_remainder():
    b = Balancer(3, weights=(5, 2, 1), granularity=8)
    # 12 units of 8 by largest remainder of (7.5, 3, 1.5): 8, 3, 1; the 4 left over go to the fastest
    assert b.split(100) == [68, 24, 8]
    for batch in range(24, 400):
        sizes = b.split(batch)
        assert sum(sizes) == batch
        assert all(n % 8 == 0 for n in sizes[1:]), (batch, sizes)
    fastest_last = Balancer(3, weights=(1, 2, 5), granularity=8)
    assert fastest_last.split(100) == [8, 24, 68]


def test_granularity_gives_way_when_the_batch_is_too_small_for_whole_units():
    assert Balancer(4, granularity=8).split(20) == [5, 5, 5, 5]


def test_every_worker_gets_an_image_when_the_batch_allows():
    assert Balancer(3, weights=(100, 1, 1)).split(10) == [8, 1, 1]
    b = Balancer(4, weights=(1000, 10, 1, 1), granularity=4)
    for batch in range(4, 200):
        assert min(b.split(batch)) >= 1, batch
    # fewer images than workers: some get none (documented), the largest shares first
    assert Balancer(4).split(3) == [1, 1, 1, 0]
    assert Balancer(3, weights=(1, 5, 2)).split(2) == [0, 1, 1]


def test_split_is_a_function_of_the_shares():
    weights = (0.37, 0.21, 0.42)
    a, b = Balancer(3, weights=weights, granularity=2), Balancer(3, weights=weights, granularity=2)
    assert [a.split(n) for n in range(1, 200)] == [b.split(n) for n in range(1, 200)]
    assert a.split(64) == a.split(64)


def test_a_3x_faster_worker_gets_three_quarters_after_every_steps():
    b = Balancer(2, every=10)
    changed = run_steps(b, (300.0, 100.0), 64, 10)
    assert changed == [False] * 9 + [True]
    assert b.rates == pytest.approx((300.0, 100.0))
    assert b.shares == pytest.approx((0.75, 0.25))
    assert b.split(64) == [48, 16]
    # balanced now: no proposal gains anything, so the shares stay
    assert not any(run_steps(b, (300.0, 100.0), 64, 50))
    assert b.shares == pytest.approx((0.75, 0.25))


def test_shares_follow_a_drift():
    b = Balancer(2, weights=(3, 1), every=5)
    assert not any(run_steps(b, (300.0, 100.0), 64, 20))
    run_steps(b, (200.0, 200.0), 64, 40)  # the second worker became as fast as the first
    assert b.shares == pytest.approx((0.5, 0.5), abs=0.02)
    assert b.split(64) == [32, 32]


def test_noise_within_tolerance_changes_nothing(rng):
    # a batch large enough that integer rounding does not hide the proposals: the tolerance must
    b = Balancer(2, weights=(3, 1), every=5, tolerance=0.05)
    assert not any(run_steps(b, (300.0, 100.0), 6400, 300, rng))
    assert b.shares == pytest.approx((0.75, 0.25))
    eager = Balancer(2, weights=(3, 1), every=5, tolerance=0.0)
    assert sum(run_steps(eager, (300.0, 100.0), 6400, 300, rng)) > 10  # without it, the same noise moves the split


def test_equal_mode_never_changes_but_still_measures():
    b = Balancer(2, mode="equal", every=2)
    assert not any(run_steps(b, (900.0, 100.0), 64, 20))
    assert b.shares == (0.5, 0.5)
    assert b.split(64) == [32, 32]
    assert b.rates == pytest.approx((900.0, 100.0))


def test_rates_are_an_exponential_moving_average():
    b = Balancer(2, smoothing=0.5)
    b.observe([10, 10], [0.1, 0.1])  # the first measurement is taken as is
    b.observe([10, 20], [0.05, 0.1])
    assert b.rates == pytest.approx((150.0, 150.0))


def test_unmeasurable_entries_are_skipped_and_do_not_count_as_steps():
    b = Balancer(2, every=3, smoothing=1.0)  # rates are the latest measurement
    assert b.observe([0, 0], [0.5, 0.5]) is False
    assert b.observe([10, 10], [0.0, -1.0]) is False
    assert b.rates == (None, None)
    b.observe([10, 0], [0.1, 0.0])
    assert b.rates == (pytest.approx(100.0), None)
    assert b.observe([30, 10], [0.1, 0.1]) is False  # 2 steps measured
    assert b.observe([30, 10], [0.1, 0.1]) is True  # the 3rd: rates 300 and 100 give 3:1
    assert b.shares == pytest.approx((0.75, 0.25))


def test_no_proposal_until_every_worker_is_measured():
    b = Balancer(2, every=1)
    assert b.observe([10, 0], [0.01, 0.0]) is False
    assert b.shares == (0.5, 0.5)


def test_state_round_trips_through_json():
    b = Balancer(3, granularity=2, every=4, tolerance=0.1, smoothing=0.4)
    run_steps(b, (100.0, 200.0, 700.0), 96, 6)
    c = Balancer.from_state(json.loads(json.dumps(b.state())))
    assert c.state() == b.state()
    assert c.shares == b.shares and c.rates == b.rates
    assert [c.split(n) for n in (96, 50, 7)] == [b.split(n) for n in (96, 50, 7)]
    # and it goes on the same way
    assert run_steps(c, (100.0, 200.0, 700.0), 96, 10) == run_steps(b, (100.0, 200.0, 700.0), 96, 10)
    assert Balancer.from_state(Balancer(2, mode="equal").state()).mode == "equal"


def test_repr():
    assert repr(Balancer(2, weights=(3, 1))) == "Balancer(workers=2, mode='throughput', shares=(0.750, 0.250))"


@pytest.mark.parametrize("kwargs, match", [
    ({"workers": 0}, "Balancer: workers must be a positive int, got 0"),
    ({"workers": 2.0}, "Balancer: workers must be a positive int, got 2.0"),
    ({"mode": "fast"}, "Balancer: mode must be one of throughput, equal, got 'fast'"),
    ({"granularity": 0}, "Balancer: granularity must be a positive int, got 0"),
    ({"every": -1}, "Balancer: every must be a positive int, got -1"),
    ({"tolerance": 1.0}, r"Balancer: tolerance .* must be in \[0, 1\), got 1.0"),
    ({"tolerance": -0.1}, r"Balancer: tolerance .* must be in \[0, 1\), got -0.1"),
    ({"tolerance": float("nan")}, "Balancer: tolerance must be a finite number, got nan"),
    ({"smoothing": 0}, r"Balancer: smoothing .* must be in \(0, 1\], got 0"),
    ({"weights": (1, 2, 3)}, r"Balancer: weights must have one entry per worker \(2\), got 3"),
    ({"weights": (1, 0)}, r"Balancer: weights must be > 0 .*, got weights\[1\]=0.0"),
    ({"weights": (1, "a")}, r"Balancer: weights\[1\] must be a finite number, got 'a'"),
    ({"weights": 3}, "Balancer: weights must be a sequence, got 3"),
    ({"mode": "equal", "weights": (1, 2)}, "Balancer: weights set shares, which mode 'equal' never uses"),
])
def test_bad_arguments(kwargs, match):
    args = {"workers": 2, **kwargs}
    with pytest.raises(ValueError, match=match):
        Balancer(**args)


def test_bad_split_and_observe_arguments():
    b = Balancer(2)
    with pytest.raises(ValueError, match="Balancer.split: batch must be a positive int, got 0"):
        b.split(0)
    with pytest.raises(ValueError, match=r"Balancer.observe: sizes must have one entry per worker \(2\), got 3"):
        b.observe([1, 2, 3], [1.0, 1.0])
    with pytest.raises(ValueError, match=r"Balancer.observe: seconds must have one entry per worker \(2\), got 1"):
        b.observe([1, 2], [1.0])
    with pytest.raises(ValueError, match=r"Balancer.observe: sizes\[0\] must be an int >= 0, got -1"):
        b.observe([-1, 2], [1.0, 1.0])
    with pytest.raises(ValueError, match=r"Balancer.observe: seconds\[1\] must be a finite number, got nan"):
        b.observe([1, 2], [1.0, float("nan")])
    with pytest.raises(ValueError, match="Balancer.from_state: state lacks rates, steps"):
        state = b.state()
        del state["rates"], state["steps"]
        Balancer.from_state(state)
    with pytest.raises(ValueError, match=r"Balancer.from_state: rates\[0\] must be None or > 0, got -3"):
        Balancer.from_state({**b.state(), "rates": [-3, None]})
