"""Data-parallel training of one model over several devices and hosts.

- `DataParallel` keeps a replica of the model per device and splits each batch in proportion to each
  device's measured images/s (balance.py); gradients are staged on the host, summed in a fixed order, and
  the same update is applied everywhere (trainer.py, replica.py).
- `fit_parallel` is fit() over a DataParallel; `hetero train --device A,B` (or a split such as cpu/2) uses it.
- Across processes, `world()` (comm.py) is MPI's world under `mpiexec`: gradients are all-reduced there too.
- `simulate.py` models the split and step time of machines we do not have (`python -m hetero.parallel.simulate`).
"""

from .balance import MODES, Balancer
from .comm import Comm, CommError, world
from .fit import fit_parallel
from .trainer import DataParallel, DataParallelError, StepResult, check_devices, resolve_devices

__all__ = [
    "MODES",
    "Balancer",
    "Comm",
    "CommError",
    "DataParallel",
    "DataParallelError",
    "StepResult",
    "check_devices",
    "fit_parallel",
    "resolve_devices",
    "world",
]
