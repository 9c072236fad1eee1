"""hetero.parallel.comm without MPI: the one-process Comm, world()'s launcher detection, the timeout setting.
The MPI side runs under mpiexec in tests/integration/test_mpi_comm.py."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from hetero.errors import HeteroError
from hetero.parallel import comm as comm_mod
from hetero.parallel.comm import Comm, CommError, launched_size, mpiexec_command, timeout_from_env, world


@pytest.fixture
def no_mpi4py(monkeypatch):
    """`from mpi4py import MPI` raises ImportError, as where hetero[mpi] is not installed."""
    monkeypatch.setitem(sys.modules, "mpi4py", None)
    monkeypatch.setitem(sys.modules, "mpi4py.MPI", None)


# -- the one-process Comm --

def test_single_process_collectives_are_identities():
    c = Comm()
    assert (c.rank, c.size) == (0, 1)
    flat = np.arange(5, dtype=np.float32)
    c.allreduce_sum(flat)
    np.testing.assert_array_equal(flat, np.arange(5, dtype=np.float32))
    value = {"images_per_s": 12.5}
    assert c.allgather(value) == [value]
    assert c.bcast(value) is value
    arr = np.ones((2, 3), np.float64)
    c.bcast_array(arr)
    np.testing.assert_array_equal(arr, np.ones((2, 3)))
    c.barrier()
    c.check_same("weights checksum", "abc")  # nothing to differ from
    c.close()


@pytest.mark.parametrize("flat", [np.zeros(4, np.float64), np.zeros((2, 2), np.float32), np.zeros(8, np.float32)[::2],
                                  [0.0, 1.0]], ids=["float64", "2-D", "strided", "list"])
def test_allreduce_sum_rejects_what_mpi_could_not_sum_in_place(flat):
    with pytest.raises(ValueError, match="allreduce_sum: needs a writable contiguous 1-D float32 array"):
        Comm().allreduce_sum(flat)


def test_allreduce_sum_rejects_read_only():
    flat = np.zeros(3, np.float32)
    flat.flags.writeable = False
    with pytest.raises(ValueError, match="allreduce_sum"):
        Comm().allreduce_sum(flat)


def test_bcast_rejects_a_root_outside_the_job():
    with pytest.raises(ValueError, match=r"root 1 is not a rank of this job \(0..0\)"):
        Comm().bcast("x", root=1)
    with pytest.raises(ValueError, match="root -1"):
        Comm().bcast_array(np.zeros(2, np.float32), root=-1)


def test_bcast_array_rejects_non_contiguous():
    with pytest.raises(ValueError, match="bcast_array: needs a writable C-contiguous"):
        Comm().bcast_array(np.zeros((4, 4), np.float32).T)


def test_abort_says_the_message_and_exits_with_the_code(capsys):
    with pytest.raises(SystemExit) as stop:
        Comm().abort("the device vanished", code=3)
    assert stop.value.code == 3
    assert capsys.readouterr().err == "hetero: error: the device vanished\n"


def test_comm_error_is_a_hetero_error():
    assert issubclass(CommError, HeteroError) and issubclass(CommError, RuntimeError)


# -- world(): which launcher started us --

@pytest.mark.parametrize("env, size", [
    ({}, 1),
    ({"OMPI_COMM_WORLD_SIZE": "4", "OMPI_COMM_WORLD_RANK": "2"}, 4),
    ({"OMPI_COMM_WORLD_SIZE": "1"}, 1),
    ({"PMI_SIZE": "3", "PMI_RANK": "0"}, 3),
    ({"PMIX_RANK": "0"}, None),  # a PMIx launcher that does not give the size: MPI is asked
    ({"OMPI_COMM_WORLD_SIZE": "many"}, None),
])
def test_launched_size(env, size):
    assert launched_size(env) == size


def test_world_without_mpiexec_is_the_single_process_comm(no_mpi4py):
    c = world({})
    assert type(c) is Comm and c.size == 1 and c.timeout == 30.0


def test_world_of_one_rank_needs_no_mpi4py(no_mpi4py):
    assert type(world({"OMPI_COMM_WORLD_SIZE": "1", "OMPI_COMM_WORLD_RANK": "0"})) is Comm


@pytest.mark.parametrize("env", [{"OMPI_COMM_WORLD_SIZE": "2", "OMPI_COMM_WORLD_RANK": "0"},
                                 {"PMI_SIZE": "2", "PMI_RANK": "1"}, {"PMIX_RANK": "0"}],
                         ids=["openmpi", "hydra", "pmix"])
def test_world_under_mpiexec_without_mpi4py_says_what_to_install(no_mpi4py, env):
    with pytest.raises(CommError, match=r"started by mpiexec \((OMPI_COMM_WORLD_SIZE|PMI_SIZE|PMIX_RANK)=.*"
                                        r"`pip install hetero\[mpi\]`"):
        world(env)


def test_importing_comm_does_not_import_mpi4py():
    code = "import sys, hetero.parallel.comm; print('mpi4py' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "False"


# -- the timeout --

@pytest.mark.parametrize("text, seconds", [(None, 30.0), ("", 30.0), ("5", 5.0), (" 0.5 ", 0.5), ("120", 120.0)])
def test_timeout_from_env(text, seconds):
    env = {} if text is None else {"HETERO_MPI_TIMEOUT": text}
    assert timeout_from_env(env) == seconds


@pytest.mark.parametrize("text", ["0", "-1", "abc", "nan", "inf", "5s"])
def test_timeout_from_env_rejects_what_is_not_seconds(text):
    with pytest.raises(CommError, match=rf"HETERO_MPI_TIMEOUT='{text}' is not a number of seconds > 0"):
        timeout_from_env({"HETERO_MPI_TIMEOUT": text})


def test_world_validates_the_timeout_even_without_mpiexec():
    with pytest.raises(CommError, match="HETERO_MPI_TIMEOUT"):
        world({"HETERO_MPI_TIMEOUT": "-3"})
    assert world({"HETERO_MPI_TIMEOUT": "7"}).timeout == 7.0


def test_comm_rejects_a_bad_timeout():
    with pytest.raises(CommError, match="timeout 0 is not a number of seconds > 0"):
        Comm(timeout=0)


# -- launching --

def test_mpiexec_command_runs_the_mpiexec_beside_python(monkeypatch):
    monkeypatch.setattr(comm_mod.os, "geteuid", lambda: 0)
    assert mpiexec_command(3, python="/opt/venv/bin/python") == [
        "/opt/venv/bin/mpiexec", "--allow-run-as-root", "-n", "3", "--oversubscribe"]
    monkeypatch.setattr(comm_mod.os, "geteuid", lambda: 1000)
    assert "--allow-run-as-root" not in mpiexec_command(2, python="/opt/venv/bin/python")
