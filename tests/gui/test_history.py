"""RunHistory: the bookkeeping behind the plots, without Qt."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
from hetero.gui.history import RunHistory, ema, format_duration


def step(k, epoch=0, batch=None, batches=4, loss=1.0, seconds=None):
    return SimpleNamespace(event="step", step=k, epoch=epoch, batch=(k - 1) % batches if batch is None else batch,
                           batches=batches, loss=loss, accuracy=0.5, images_per_s=100.0,
                           seconds=float(k) if seconds is None else seconds)


def epoch_end(epoch, acc):
    return SimpleNamespace(event="epoch_end", epoch=epoch, train_loss=0.5, train_accuracy=0.8, test_loss=0.4,
                           test_accuracy=acc, seconds=1.0, confusion=None, predictions=None)


def test_ema_matches_the_debiased_recurrence():
    values = np.array([4.0, 2.0, 6.0, 1.0])
    out = ema(values, 0.5)
    acc = weight = 0.0
    for v, o in zip(values, out):
        acc = 0.5 * acc + 0.5 * v
        weight = 0.5 * weight + 0.5
        assert math.isclose(o, acc / weight)
    assert out[0] == 4.0  # debiased: the first value is itself, not a quarter of it
    np.testing.assert_array_equal(ema(values, 0.0), values)


def test_smoothed_grows_incrementally_and_equals_the_full_ema():
    run = RunHistory("0:0", "cpu", "#1f77b4", epochs=2)
    losses = [2.0, 1.5, float("nan"), 1.0, 0.8, 0.7]
    for k, v in enumerate(losses[:3], start=1):
        run.add(step(k, loss=v))
    first = run.smoothed("loss", 0.6)
    assert len(first) == 3 and math.isnan(first[2])
    for k, v in enumerate(losses[3:], start=4):
        run.add(step(k, loss=v))
    np.testing.assert_allclose(run.smoothed("loss", 0.6), ema(np.array(losses), 0.6))


def test_progress_eta_best_epoch_and_end():
    run = RunHistory("0:0", "cpu", "#1f77b4", epochs=2)
    assert run.fraction() == 0.0 and run.eta() is None
    for k in range(1, 5):  # one epoch of 4 batches in 4 seconds
        run.add(step(k))
    run.add(epoch_end(0, 0.90))
    assert run.fraction() == 0.5
    assert math.isclose(run.eta(), 4.0)
    for k in range(5, 9):
        run.add(step(k, epoch=1))
    run.add(epoch_end(1, 0.85))
    assert run.best_epoch() == 0
    xs, ys = run.test_points("steps")
    assert xs.tolist() == [4.0, 8.0] and np.allclose(ys, [90.0, 85.0])
    assert run.epoch_positions("seconds") == [4.0, 8.0]
    run.add(SimpleNamespace(event="done", reason="finished", message="", steps=8, epoch=2, seconds=8.0))
    assert run.state == "finished" and run.fraction() == 1.0 and run.eta() == 0.0


def test_format_duration():
    assert format_duration(65) == "1:05"
    assert format_duration(3725) == "1:02:05"
    assert format_duration(None) == "-"


def test_a_data_parallel_run_keeps_each_devices_last_share():
    run = RunHistory("0:0/2.0,0:0/2.1", "data-parallel", "#000", epochs=1, parts=["0:0/2.0", "0:0/2.1"])
    assert run.short_label == "0:0/2.0 + 0:0/2.1" and run.share("0:0/2.0") is None
    run.add(step(1))  # a step without per-device figures leaves the shares as they were
    assert run.shares == []
    ev = step(2)
    ev.devices = [{"device": "0:0/2.0", "share": 0.52, "images_per_s": 3120.5},
                  {"device": "0:0/2.1", "share": 0.48, "images_per_s": None}]
    run.add(ev)
    assert run.share("0:0/2.0")["share"] == 0.52 and run.share("0:0/2.1")["images_per_s"] is None
    assert run.images_per_s == [100.0, 100.0]  # the run's total, one series


def test_a_checkpoint_history_is_checked_cut_at_its_step_and_thinned():
    import pytest
    from hetero.gui.history import MAX_SAVED_STEPS, SavedHistoryError, check_saved, thinned

    run = RunHistory("0:0", "0:0", "#000", epochs=2)
    for k in range(1, 9):
        run.add(step(k, epoch=(k - 1) // 4))
        if k % 4 == 0:
            run.add(epoch_end((k - 1) // 4, 0.9))
    saved = run.to_saved()
    back = check_saved(saved, 6)  # a file saved at step 6 keeps nothing after it
    assert back["steps"] == [1, 2, 3, 4, 5, 6] and len(back["epochs"]) == 1 and back["epochs"][0]["step"] == 4
    for damage in ({"version": 2}, {**saved, "loss": saved["loss"][:-1]},
                   {**saved, "steps": [3, 2] + saved["steps"][2:]}, {**saved, "accuracy": ["x"] * 8},
                   {**saved, "epochs": [{"epoch": "1"}]}, [1, 2], None):
        with pytest.raises(SavedHistoryError):
            check_saved(damage, 8)
    keep = thinned(10 * MAX_SAVED_STEPS, MAX_SAVED_STEPS)
    assert len(keep) <= MAX_SAVED_STEPS and keep[0] == 0 and keep[-1] == 10 * MAX_SAVED_STEPS - 1
