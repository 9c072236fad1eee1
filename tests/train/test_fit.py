"""hetero.train.fit: events and their values, control from another thread, limits, divergence, resume."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

import hetero
from hetero.checkpoint import load_training
from hetero.train import (
    DoneEvent,
    EpochEndEvent,
    LogEvent,
    StepEvent,
    TrainingControl,
    evaluate,
    fit,
    load_checkpoint,
)

from .conftest import ArrayLoader, make_data


def _weights(model) -> dict[str, np.ndarray]:
    return {k: v.numpy() for k, v in model.state_dict().items()}


def _assert_identical(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert np.array_equal(a[k], b[k]), f"{k} differs (max {np.abs(a[k] - b[k]).max()})"


def test_events_sequence_and_values(dev, tiny):
    model, opt, train, test = tiny(dev)
    events = []
    history = fit(model, opt, train, test, epochs=2, callbacks=[events.append])
    kinds = [e.event for e in events if not isinstance(e, LogEvent)]
    assert kinds == ["step"] * 3 + ["epoch_end"] + ["step"] * 3 + ["epoch_end", "done"]
    steps = [e for e in events if isinstance(e, StepEvent)]
    assert [(e.step, e.epoch, e.batch, e.batches) for e in steps] == \
        [(1, 0, 0, 3), (2, 0, 1, 3), (3, 0, 2, 3), (4, 1, 0, 3), (5, 1, 1, 3), (6, 1, 2, 3)]
    assert all(np.isfinite(e.loss) and 0 <= e.accuracy <= 1 and e.images_per_s >= 0 for e in steps)
    assert steps[-1].loss < steps[0].loss  # it learns

    ends = [e for e in events if isinstance(e, EpochEndEvent)]
    assert [e.epoch for e in ends] == [0, 1]
    first = ends[0]
    losses = [e.loss for e in steps[:3]]
    assert first.train_loss == pytest.approx(np.average(losses, weights=[16, 16, 16]), rel=1e-6)
    # the epoch-end test figures agree with an evaluate() of the final model
    last = ends[-1]
    loss, acc, confusion, pred = evaluate(model, test)
    assert last.test_loss == pytest.approx(loss, rel=1e-5) and last.test_accuracy == acc
    assert last.confusion.dtype == np.int64 and last.confusion.shape == (3, 3)
    assert last.confusion.sum() == 24 and last.predictions.dtype == np.int32 and last.predictions.shape == (24,)
    assert np.array_equal(last.confusion, confusion) and np.array_equal(last.predictions, pred)
    assert acc == np.trace(confusion) / 24
    model.eval()
    assert np.array_equal(pred, np.argmax(model(hetero.tensor(test.x, device=dev)).numpy(), axis=1))
    model.train()
    assert acc > 0.8

    done = events[-1]
    assert isinstance(done, DoneEvent) and done.reason == "finished" and done.steps == 6 and done.epoch == 2
    assert history.reason == "finished" and history.step == 6 and history.epoch == 2 and len(history) == 2
    for e in events:  # every event is JSON-able, without the big arrays unless asked
        d = e.to_dict()
        assert d["event"] == e.event and "confusion" not in d
        json.dumps(d)
    full = last.to_dict(arrays=True)
    assert full["confusion"] == confusion.tolist() and len(full["predictions"]) == 24
    json.dumps(full)


def test_log_every_and_max_steps(dev, tiny):
    model, opt, train, test = tiny(dev)
    events = []
    history = fit(model, opt, train, test, epochs=5, max_steps=4, log_every=2, callbacks=[events.append])
    steps = [e.step for e in events if isinstance(e, StepEvent)]
    assert steps == [2, 3, 4]  # every 2nd step, and each epoch's last batch
    ends = [e for e in events if isinstance(e, EpochEndEvent)]
    assert [e.epoch for e in ends] == [0, 1]  # the cut-short epoch is evaluated too
    assert ends[1].test_accuracy is not None
    assert history.reason == "max_steps" and history.step == 4 and history.epoch == 1
    # max_steps counts steps in total: continuing at step 4 with the same limit does nothing
    again = fit(model, opt, train, None, epochs=5, max_steps=4, start_epoch=1, start_step=4)
    assert again.reason == "max_steps" and again.step == 4


def test_nan_loss_stops_with_diverged(dev, tiny):
    model, opt, _, _ = tiny(dev)
    x, y = make_data(48, seed=1)
    x[32:] = 3e38  # batch 2 (step 3) overflows: an infinite or NaN loss
    events = []
    history = fit(model, opt, ArrayLoader(x, y, 16, shuffle=False), epochs=3, callbacks=[events.append])
    done = events[-1]
    assert done.reason == "diverged" and history.reason == "diverged"
    assert "step 3" in done.message and "learning rate" in done.message
    assert not any(isinstance(e, EpochEndEvent) for e in events)
    assert [e.step for e in events if isinstance(e, StepEvent)] == [1, 2]


def test_pause_resume_stop_from_another_thread(dev, tiny):
    model, opt, train, _ = tiny(dev)
    control = TrainingControl()
    steps: list[int] = []
    paused = threading.Event()
    gate = threading.Event()
    result = {}

    def callback(e):
        if isinstance(e, StepEvent):
            steps.append(e.step)
            if e.step == 8:
                gate.wait(10)  # hold the loop here until the main thread has asked it to stop
        elif isinstance(e, LogEvent) and e.message.startswith("paused"):
            paused.set()

    def work():
        result["history"] = fit(model, opt, train, epochs=100, callbacks=[callback], control=control)

    control.pause()  # paused before the first step
    worker = threading.Thread(target=work)
    worker.start()
    assert paused.wait(10)
    assert control.paused and steps == []
    worker.join(0.3)
    assert worker.is_alive() and steps == []  # nothing runs while paused
    control.resume()
    assert not control.paused
    for _ in range(200):
        if 8 in steps:
            break
        worker.join(0.05)
    control.stop()
    gate.set()
    worker.join(10)
    assert not worker.is_alive()
    history = result["history"]
    assert control.stopped and history.reason == "stopped"
    assert 8 <= history.step <= 11 and history.step < 300
    assert steps == list(range(1, len(steps) + 1))


def test_stop_while_paused(dev, tiny):
    model, opt, train, _ = tiny(dev)
    control = TrainingControl()
    control.pause()
    threading.Timer(0.2, control.stop).start()
    history = fit(model, opt, train, epochs=2, control=control)
    assert history.reason == "stopped" and history.step == 0


def test_resume_is_bit_identical(dev, tiny, tmp_path):
    # straight: 2 epochs
    model, opt, train, test = tiny(dev, optimizer="adam", lr=0.01)
    fit(model, opt, train, test, epochs=2)
    straight = _weights(model)

    # 1 epoch, checkpoint, fresh model and optimizer (other initial weights), resume, 1 more epoch
    path = tmp_path / "ck.safetensors"
    model, opt, train, test = tiny(dev, optimizer="adam", lr=0.01)
    h = fit(model, opt, train, test, epochs=1, checkpoint=path, checkpoint_extra={"model": "tiny"})
    assert h.epoch == 1 and h.step == 3
    ck = load_training(path)
    assert ck["epoch"] == 1 and ck["step"] == 3 and ck["extra"]["model"] == "tiny"
    assert ck["rng_state"] is not None and ck["optimizer"]["state"]
    model, opt, train, test = tiny(dev, init_seed=99, optimizer="adam", lr=0.01)
    pos = load_checkpoint(path, model, opt)
    assert pos["start_epoch"] == 1 and pos["start_step"] == 3
    fit(model, opt, train, test, epochs=2, start_epoch=pos["start_epoch"], start_step=pos["start_step"])
    _assert_identical(straight, _weights(model))


def test_keyboard_interrupt_checkpoint_resumes_mid_epoch(dev, tiny, tmp_path):
    model, opt, train, _ = tiny(dev, batch=8)  # 6 batches an epoch
    fit(model, opt, train, epochs=2)
    straight = _weights(model)

    path = tmp_path / "interrupted.safetensors"
    model, opt, train, _ = tiny(dev, batch=8)
    events = []

    def interrupt(e):
        events.append(e)
        if isinstance(e, StepEvent) and e.step == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(model, opt, train, epochs=2, callbacks=[interrupt], checkpoint=path)
    assert events[-1].event == "done" and events[-1].reason == "stopped"
    ck = load_training(path)
    # the steps already queued when it came (read back 2 steps late) are in it: resume mid-epoch 0
    assert ck["epoch"] == 0 and ck["step"] == 4

    model, opt, train, _ = tiny(dev, init_seed=5, batch=8)
    pos = load_checkpoint(path, model, opt)
    fit(model, opt, train, epochs=2, start_epoch=pos["start_epoch"], start_step=pos["start_step"])
    _assert_identical(straight, _weights(model))


def test_per_step_scheduler_resumes_mid_epoch(dev, tiny, tmp_path):
    def run(init_seed=None):
        model, opt, train, _ = tiny(dev, batch=8, init_seed=init_seed)  # 6 batches an epoch
        return model, opt, train, hetero.optim.CosineAnnealingLR(opt, T_max=12)

    model, opt, train, sched = run()
    fit(model, opt, train, epochs=2, scheduler=sched, scheduler_interval="step")
    straight, lr = _weights(model), opt.param_groups[0]["lr"]
    assert sched.last_epoch == 12

    path = tmp_path / "ck.safetensors"
    model, opt, train, sched = run()
    h = fit(model, opt, train, epochs=2, scheduler=sched, scheduler_interval="step", max_steps=4, checkpoint=path)
    assert h.reason == "max_steps" and h.epoch == 0 and h.step == 4
    model, opt, train, sched = run(init_seed=7)
    pos = load_checkpoint(path, model, opt, sched)
    assert sched.last_epoch == 4
    fit(model, opt, train, epochs=2, scheduler=sched, scheduler_interval="step", start_epoch=pos["start_epoch"],
        start_step=pos["start_step"])
    _assert_identical(straight, _weights(model))
    assert opt.param_groups[0]["lr"] == lr


def test_checkpoint_pause_and_resume_events(dev, tiny, tmp_path):
    from hetero.train import CheckpointEvent, PausedEvent, ResumedEvent

    model, opt, train, _ = tiny(dev)
    control = TrainingControl()
    path = tmp_path / "ck.safetensors"
    events = []

    def callback(e):
        events.append(e)
        if isinstance(e, StepEvent) and e.step == 2:
            control.pause()
        elif isinstance(e, PausedEvent):
            control.resume()  # fit waits only after telling its callbacks

    fit(model, opt, train, epochs=2, callbacks=[callback], control=control, checkpoint=path)
    saved = [e for e in events if isinstance(e, CheckpointEvent)]
    assert [(e.path, e.step, e.epoch, e.reason) for e in saved] == [(str(path), 3, 1, "epoch"),
                                                                    (str(path), 6, 2, "epoch")]
    assert all(e.to_dict()["event"] == "checkpoint" for e in saved)
    kinds = [e.event for e in events if not isinstance(e, (LogEvent, StepEvent))]
    assert kinds.count("paused") == 1 and kinds[kinds.index("paused") + 1] == "resumed"
    paused = next(e for e in events if isinstance(e, PausedEvent))
    resumed = next(e for e in events if isinstance(e, ResumedEvent))
    # every step queued before the pause was read back first: step 3 or 4 (read two steps late)
    assert paused.step == resumed.step and paused.step in (3, 4) and paused.epoch == resumed.epoch
    steps_before = [e.step for e in events[:events.index(paused)] if isinstance(e, StepEvent)]
    assert steps_before == list(range(1, paused.step + 1))

    # a stop writes one with reason "stopped"
    model, opt, train, _ = tiny(dev)
    control = TrainingControl()
    events.clear()
    fit(model, opt, train, epochs=2, callbacks=[events.append, lambda e: e.event == "step" and control.stop()],
        control=control, checkpoint=path, checkpoint_epochs=False)
    assert [e.reason for e in events if isinstance(e, CheckpointEvent)] == ["stopped"]
