"""Data-parallel training of one model on several devices: the same result as one device, replicas kept
identical, checkpoints that move between one device and several, and bad device lists refused."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

import hetero
from hetero import nn
from hetero.cli import main
from hetero.parallel import DataParallel, DataParallelError, fit_parallel, resolve_devices

from .conftest import ArrayLoader, TinyNet, make_data


def _halves() -> list:
    """Two halves of the first CPU that splits (cpu/2), or skip."""
    for info in hetero.devices():
        if info.type == "cpu" and info.usable and info.max_sub_devices >= 2:
            return hetero.select_devices(f"{info.id}/2")
    pytest.skip("no CPU device that splits into two sub-devices")


class NoDropout(nn.Module):
    """conv -> relu -> pool -> linear: deterministic, so one device and two can be compared step by step."""

    def __init__(self, device=None):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1, device=device)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(4 * 36, 3, device=device)

    def forward(self, x):
        return self.fc(self.pool(hetero.nn.functional.relu(self.conv(x))).flatten(1))


def _params(model) -> list[np.ndarray]:
    return [p.numpy().copy() for p in model.parameters()]


def test_two_devices_match_one_device_with_the_same_global_batch():
    a, b = _halves()
    x, y = make_data(20 * 16, seed=3)
    batches = [(x[i:i + 16], y[i:i + 16]) for i in range(0, len(x), 16)]

    hetero.train.seed_everything(5)
    single = NoDropout(device=a)
    start = _params(single)
    opt = hetero.optim.SGD(single.parameters(), lr=0.05, momentum=0.9)
    step = hetero.compile_step(single, hetero.nn.functional.cross_entropy, opt)
    losses_one = [float(step(bx, by).numpy()) for bx, by in batches]

    hetero.train.seed_everything(5)
    model = NoDropout(device=a)
    assert all(np.array_equal(p, q) for p, q in zip(start, _params(model)))
    dp = DataParallel(model, hetero.optim.SGD(model.parameters(), lr=0.05, momentum=0.9), [a, b], balance="equal")
    try:
        results = [dp.step(bx, by) for bx, by in batches]
        assert [r.sizes for r in results] == [(8, 8)] * 20
        np.testing.assert_allclose([r.loss for r in results], losses_one, rtol=2e-4, atol=1e-5)
        for p, q in zip(_params(single), _params(dp.replicas[0].model)):
            np.testing.assert_allclose(q, p, rtol=1e-4, atol=2e-5)
        assert not np.allclose(_params(single)[0], start[0])  # it trained
        assert dp.replicas[0].checksum() == dp.replicas[1].checksum()  # bit-identical replicas
        assert dp.check() is None
    finally:
        dp.close()


def test_drifted_replica_is_found_and_resynchronised():
    a, b = _halves()
    hetero.train.seed_everything(1)
    model = NoDropout(device=a)
    dp = DataParallel(model, hetero.optim.Adam(model.parameters(), lr=1e-2), [a, b])
    try:
        x, y = make_data(16, seed=4)
        dp.step(x, y)
        p = dp.replicas[1].params[0]
        bumped = p.numpy().copy()
        bumped.flat[0] += 0.25
        b.write(p, bumped, blocking=True)
        said = dp.check()
        assert said is not None and b.id in said and "0.25" in said
        assert dp.replicas[0].checksum() == dp.replicas[1].checksum()
        assert dp.check() is None
    finally:
        dp.close()


def test_shares_follow_measured_speed():
    a, b = _halves()
    hetero.train.seed_everything(2)
    model = NoDropout(device=a)
    dp = DataParallel(model, hetero.optim.SGD(model.parameters(), lr=0.01), [a, b], batch_size=32,
                      rebalance_every=3)
    slow = dp.replicas[1]
    real = slow.gradients

    def three_times_slower(x, y):  # the second device takes three times as long per image
        import time

        t0 = time.perf_counter()
        real(x, y)
        time.sleep(2 * (time.perf_counter() - t0) + 0.004 * len(x))

    slow.gradients = three_times_slower
    try:
        x, y = make_data(32, seed=6)
        sizes = [dp.step(x, y).sizes for _ in range(12)]
        assert sizes[0] == (16, 16)
        assert sizes[-1][0] > sizes[-1][1] and sum(sizes[-1]) == 32
        shares = dp.shares()
        assert shares[0]["share"] > 0.6 and shares[0]["images_per_s"] > shares[1]["images_per_s"]
    finally:
        dp.close()


def test_a_failing_device_stops_the_run_naming_it():
    a, b = _halves()
    model = NoDropout(device=a)
    dp = DataParallel(model, hetero.optim.SGD(model.parameters(), lr=0.01), [a, b])

    def broken(x, y):
        raise RuntimeError("clEnqueueNDRangeKernel failed: OUT_OF_RESOURCES")

    dp.replicas[1].grad_fn = broken
    try:
        x, y = make_data(8, seed=1)
        with pytest.raises(DataParallelError, match=rf"{b.id}.*failed at step 1.*OUT_OF_RESOURCES"):
            dp.step(x, y)
    finally:
        dp.close()


def test_bad_device_lists_are_refused():
    a, b = _halves()
    base = a.info.parent
    with pytest.raises(DataParallelError, match="twice"):
        resolve_devices(f"{a.id},{a.id}")
    with pytest.raises(DataParallelError, match="overlap"):
        resolve_devices(f"{base},{a.id}")
    with pytest.raises(DataParallelError, match="empty entry"):
        resolve_devices(f"{a.id},,{b.id}")
    with pytest.raises(hetero.DeviceNotFoundError, match="9:9"):
        resolve_devices(f"{a.id},9:9")
    model = NoDropout(device=a)
    with pytest.raises(DataParallelError, match=f"model is on {a.id}"):
        DataParallel(model, hetero.optim.SGD(model.parameters(), lr=0.1), [b, a])


def test_batch_norm_replicas_keep_the_primarys_running_statistics():
    a, b = _halves()
    hetero.train.seed_everything(0)
    model = _BNNet(device=a)
    dp = DataParallel(model, hetero.optim.SGD(model.parameters(), lr=0.01), [a, b], balance="equal")
    try:
        x, y = make_data(16, seed=2)
        dp.step(x, y)
        mean0 = dp.replicas[0].model.bn.running_mean.numpy().copy()
        mean1 = dp.replicas[1].model.bn.running_mean.numpy().copy()
        assert not np.allclose(mean0, mean1)  # each device normalised its own half
        dp.sync_buffers()
        np.testing.assert_array_equal(dp.replicas[1].model.bn.running_mean.numpy(), mean0)
    finally:
        dp.close()


class _BNNet(nn.Module):
    def __init__(self, device=None):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1, device=device)
        self.bn = nn.BatchNorm2d(4, device=device)
        self.fc = nn.Linear(4 * 144, 3, device=device)

    def forward(self, x):
        return self.fc(hetero.nn.functional.relu(self.bn(self.conv(x))).flatten(1))


def test_fit_parallel_checkpoint_resumes_on_one_device_and_back(tmp_path):
    a, b = _halves()
    x, y = make_data(64, seed=1)
    loader = ArrayLoader(x, y, 16, seed=0)
    ck = tmp_path / "dp.safetensors"

    hetero.train.seed_everything(0)
    model = TinyNet(device=a)
    opt = hetero.optim.Adam(model.parameters(), lr=1e-2)
    events = []
    history = fit_parallel(model, opt, [a, b], loader, epochs=2, max_steps=5, checkpoint=ck, callbacks=[events.append])
    assert history.reason == "max_steps" and history.step == 5
    steps = [e for e in events if e.event == "step"]
    assert [d["device"] for d in steps[0].devices] == [a.id, b.id]
    assert abs(sum(d["share"] for d in steps[0].devices) - 1) < 1e-6
    saved = hetero.checkpoint.load_training(ck)
    assert saved["step"] == 5 and saved["extra"]["data_parallel"]["devices"][1].startswith(b.id)

    hetero.train.seed_everything(9)  # other weights: the checkpoint must bring the trained ones back
    single = TinyNet(device=a)
    opt1 = hetero.optim.Adam(single.parameters(), lr=1e-2)
    pos = hetero.train.load_checkpoint(ck, single, opt1)
    np.testing.assert_array_equal(_params(single)[0], _params(model)[0])
    h1 = hetero.train.fit(single, opt1, loader, epochs=2, max_steps=7, checkpoint=ck, **pos_args(pos))
    assert h1.step == 7

    hetero.train.seed_everything(9)
    again = TinyNet(device=a)
    opt2 = hetero.optim.Adam(again.parameters(), lr=1e-2)
    pos = hetero.train.load_checkpoint(ck, again, opt2)
    np.testing.assert_array_equal(_params(again)[0], _params(single)[0])
    h2 = fit_parallel(again, opt2, [a, b], loader, epochs=2, **pos_args(pos))
    assert h2.reason == "finished" and h2.step == 8


def pos_args(pos: dict) -> dict:
    return {"start_epoch": pos["start_epoch"], "start_step": pos["start_step"]}


def test_cli_trains_data_parallel_and_logs_each_devices_share(data_dir, tmp_path, capsys):
    a, b = _halves()
    log = tmp_path / "log.jsonl"
    rc = main(["train", "--device", f"{a.info.parent}/2", "--max-steps", "4", "--batch-size", "16",
               "--json-log", str(log), "--checkpoint", str(tmp_path / "ck.safetensors")])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "data-parallel on 2 devices" in out and a.id in out and b.id in out
    assert f"{a.id} " in err and "%" in err  # the progress line names each device's share
    steps = [json.loads(line) for line in log.read_text().splitlines() if '"step"' in line]
    steps = [e for e in steps if e["event"] == "step"]
    assert len(steps) == 4 and [d["device"] for d in steps[-1]["devices"]] == [a.id, b.id]


def test_cli_refuses_duplicate_devices_before_anything_starts(data_dir, tmp_path, capsys):
    a, _ = _halves()
    rc = main(["train", "--device", f"{a.id},{a.id}", "--max-steps", "2", "--checkpoint",
               str(tmp_path / "ck.safetensors")])
    _, err = capsys.readouterr()
    assert rc != 0 and "twice" in err and "Traceback" not in err
    assert not (tmp_path / "ck.safetensors").exists()


def test_cli_trains_over_two_opencl_platforms_pocl_and_rusticl(data_dir, tmp_path):
    """PoCL's CPU device and Mesa's rusticl (llvmpipe) reporting a GPU in one run: separate contexts, host-staged
    gradients, the two kernel flavours side by side (as a CPU, rusticl would compile the CPU flavour's
    register-tiled kernels, which llvmpipe takes minutes to do cold)."""
    import subprocess
    import sys

    env = {**os.environ, "RUSTICL_ENABLE": "llvmpipe", "RUSTICL_DEVICE_TYPE": "gpu"}
    listed = subprocess.run([sys.executable, "-m", "hetero", "devices", "--json"], env=env, capture_output=True,
                            text=True, timeout=120)
    infos = json.loads(listed.stdout) if listed.returncode == 0 else []
    pocl = [d["id"] for d in infos if d["usable"] and "Portable Computing Language" in d["platform"]]
    rusticl = [d["id"] for d in infos if d["usable"] and d["platform"] == "rusticl"]
    if not pocl or not rusticl:
        pytest.skip("needs PoCL and Mesa's rusticl (apt-get install mesa-opencl-icd)")
    log = tmp_path / "log.jsonl"
    done = subprocess.run([sys.executable, "-m", "hetero", "train", "--device", f"{pocl[0]},{rusticl[0]}",
                           "--max-steps", "3", "--batch-size", "16", "--json-log", str(log),
                           "--checkpoint", str(tmp_path / "ck.safetensors")],
                          env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "data-parallel on 2 devices" in done.stdout and "llvmpipe" in done.stdout
    steps = [e for e in map(json.loads, log.read_text().splitlines()) if e["event"] == "step"]
    assert [d["device"] for d in steps[-1]["devices"]] == [pocl[0], rusticl[0]]
    assert all(np.isfinite(e["loss"]) for e in steps)


def test_each_device_draws_its_own_dropout_masks():
    a, b = _halves()
    hetero.train.seed_everything(4)
    model = TinyNet(device=a)
    before = hetero.random.get_rng_state(a).copy()
    dp = DataParallel(model, hetero.optim.SGD(model.parameters(), lr=0.01), [a, b])
    try:
        sa, sb = hetero.random.get_rng_state(a), hetero.random.get_rng_state(b)
        np.testing.assert_array_equal(sa, before)  # the primary keeps its stream (checkpoints resume it)
        assert sb[0] == sa[0] and sb[1] == sa[1] and int(sb[3]) == (int(sa[3]) + 1) % 2**32  # same key, other counter
    finally:
        dp.close()
