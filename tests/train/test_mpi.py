"""Data-parallel training across processes under mpiexec (2 and 3 ranks on this machine): identical weights on
every rank, equal to one process summing the same shards; `hetero train` under mpiexec; a rank killed with
SIGKILL stops the run with a message naming it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import hetero
from hetero.parallel.comm import mpiexec_command

from . import mpi_fit

MPIEXEC = Path(sys.executable).parent / "mpiexec"
pytestmark = pytest.mark.skipif(not MPIEXEC.exists(), reason="mpiexec not installed (pip install hetero[mpi])")
SCRIPT = Path(__file__).with_name("mpi_fit.py")
STEPS = 20


def _env(**extra) -> dict:
    env = {**os.environ, "HETERO_MPI_TIMEOUT": "20", **extra}
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parents[2]), env.get("PYTHONPATH", "")])
    return env


def _device_spec() -> str:
    return hetero.devices()[0].id if hetero.devices() else pytest.skip("no OpenCL device")


def _reference(ranks: int) -> list[np.ndarray]:
    """One process: each rank's shard's gradient in turn, summed weighted in rank order, one SGD update."""
    dev = hetero.device(_device_spec())
    model, opt = mpi_fit.build(dev)
    params = list(model.parameters())
    for x, y in mpi_fit.batches(STEPS):
        bounds = np.cumsum([0] + hetero.parallel.Balancer(ranks, mode="equal").split(len(x)))
        total = [np.zeros(p.shape, np.float32) for p in params]
        for r in range(ranks):
            a, b = int(bounds[r]), int(bounds[r + 1])
            opt.zero_grad()
            loss = hetero.nn.functional.cross_entropy(model(hetero.tensor(x[a:b], dev)), hetero.tensor(y[a:b], dev))
            loss.backward()
            for t, p in zip(total, params):
                t += p.grad.numpy() * np.float32((b - a) / len(x))
        for t, p in zip(total, params):
            p.grad = hetero.tensor(t, dev)
        opt.step()
    return [p.numpy() for p in params]


@pytest.mark.parametrize("ranks", [2, 3])
def test_ranks_end_identical_and_equal_to_one_process(ranks, tmp_path):
    spec = _device_spec()
    cmd = mpiexec_command(ranks) + [sys.executable, str(SCRIPT), str(tmp_path), str(STEPS), spec]
    done = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    saved = [np.load(tmp_path / f"rank{r}.npz") for r in range(ranks)]
    sizes = saved[0]["sizes"]
    assert sizes.shape == (STEPS, ranks) and (sizes.sum(axis=1) == 24).all()
    names = [k for k in saved[0].files if k.startswith("p")]
    for other in saved[1:]:
        for k in names:
            np.testing.assert_array_equal(other[k], saved[0][k])  # bit-identical on every rank
    want = _reference(ranks)
    for k, w in zip(names, want):
        np.testing.assert_array_equal(saved[0][k], w)  # the same kernels, and the sum in the same order
    start = mpi_fit.build(hetero.device(spec))[0]
    assert not np.allclose(saved[0][names[0]], next(start.parameters()).numpy())  # it trained


def test_hetero_train_under_mpiexec_logs_and_checkpoints_on_rank_0(data_dir, tmp_path):
    ck, log = tmp_path / "ck.safetensors", tmp_path / "log.jsonl"
    cmd = mpiexec_command(2) + [sys.executable, "-m", "hetero", "train", "--device", _device_spec(),
                                "--max-steps", "4", "--batch-size", "16", "--balance", "equal",
                                "--checkpoint", str(ck), "--json-log", str(log)]
    done = subprocess.run(cmd, env=_env(HETERO_DATA_DIR=str(data_dir)), capture_output=True, text=True,
                          timeout=240, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("training lenet5") == 1 and "data-parallel on 2 MPI ranks" in done.stdout
    assert done.stdout.count("done: reached max_steps=4") == 1
    steps = [e for e in map(json.loads, log.read_text().splitlines()) if e["event"] == "step"]
    assert [e["step"] for e in steps] == [1, 2, 3, 4]
    assert [d["device"].split()[:2] for d in steps[-1]["devices"]] == [["rank", "0"], ["rank", "1"]]
    assert [d["share"] for d in steps[-1]["devices"]] == [0.5, 0.5]
    assert hetero.checkpoint.load_training(ck)["step"] == 4


def _rank_pid(parent: int, rank: int) -> int | None:
    """The pid of MPI rank `rank` among the processes mpiexec started (their environment names the rank)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == parent:
            continue
        try:
            env = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"OMPI_COMM_WORLD_RANK={rank}".encode() in env and f"HETERO_TEST_PARENT={parent}".encode() in env:
            return int(entry.name)
    return None


def test_a_killed_rank_stops_the_others_with_a_message_naming_it(data_dir, tmp_path):
    log = tmp_path / "log.jsonl"
    cmd = mpiexec_command(2) + [sys.executable, "-m", "hetero", "train", "--device", _device_spec(),
                                "--epochs", "50", "--batch-size", "8", "--checkpoint", str(tmp_path / "ck.st"),
                                "--json-log", str(log)]
    env = _env(HETERO_DATA_DIR=str(data_dir), HETERO_TEST_PARENT=str(os.getpid()))
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=tmp_path)
    try:
        deadline = time.monotonic() + 120
        while not (log.exists() and '"step"' in log.read_text()):  # training has started on every rank
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline, "training did not start"
            time.sleep(0.2)
        victim = _rank_pid(os.getpid(), 1)
        assert victim is not None
        os.kill(victim, signal.SIGKILL)
        killed = time.monotonic()
        out, _ = proc.communicate(timeout=90)
        took = time.monotonic() - killed
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0
    assert took < 60
    assert "rank 1" in out, out
