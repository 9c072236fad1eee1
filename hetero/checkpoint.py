"""Checkpoints in the safetensors format, written atomically.

- save(model_or_state, path) / load(path): weights under their state_dict names, so PyTorch
  (safetensors.torch.load_file) reads ours and we read theirs.
- save_training(path, model, optimizer, epoch, step, ...) / load_training(path): the same file format
  with the optimizer's state tensors added under "optimizer.state.<index>.<name>" and everything else
  (epoch, step, param_groups, rng state, scheduler state, the training recipe, extra) as JSON in the
  string->string metadata.
Writes go to a temporary file in the target's folder, which is flushed, fsynced and renamed over the
target (then the folder is fsynced): a crash leaves the old file or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import safetensors
import safetensors.numpy

from .atomic import atomic_write
from .errors import HeteroError
from .tensor import Tensor

TRAINING_FORMAT = "hetero-training"
_FORMAT_VERSION = "1"
_OPT_PREFIX = "optimizer.state."
_MAX_HEADER = 100_000_000  # safetensors' own limit on the JSON header


class CheckpointError(HeteroError):
    """A file is not a (complete) safetensors checkpoint of the expected kind."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """No file at the path given (also a FileNotFoundError, which callers caught before it existed)."""


class CheckpointWriteError(CheckpointError, OSError):
    """A checkpoint could not be written (also an OSError, which callers caught before it existed)."""


def save(model_or_state, path: str | os.PathLike, metadata: Mapping[str, str] | None = None) -> None:
    """Write a model's state_dict() (or a dict name -> Tensor/ndarray) to a safetensors file."""
    tensors = _arrays("save", _state_of("save", model_or_state))
    _write(Path(path), _serialize("save", tensors, metadata))


def load(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Every tensor of a safetensors file as numpy arrays, keyed by name."""
    tensors, _ = _read(Path(path))
    return tensors


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The string->string metadata of a safetensors file ({} when it has none)."""
    _, metadata = _read(Path(path))
    return metadata


def save_training(path: str | os.PathLike, model, optimizer, epoch: int, step: int, rng_state=None,
                  extra=None, scheduler=None, recipe: Mapping | None = None) -> None:
    """Write weights (model or its state_dict), optimizer state (optimizer, state_dict or None), epoch/step, and
    rng_state, scheduler state, recipe and extra as JSON-like values that load back with the same types."""
    tensors = _arrays("save_training", _state_of("save_training", model)) if model is not None else {}
    for name in tensors:
        if name.startswith(_OPT_PREFIX):
            raise ValueError(f"save_training: model key {name!r} collides with the optimizer state prefix "
                             f"{_OPT_PREFIX!r}")
    metadata = {
        "format": TRAINING_FORMAT,
        "format_version": _FORMAT_VERSION,
        "epoch": str(int(epoch)),
        "step": str(int(step)),
        "rng_state": _dumps("rng_state", rng_state),
        "extra": _dumps("extra", extra),
        "scheduler": _dumps("scheduler", scheduler.state_dict() if scheduler is not None else None),
    }
    if recipe is not None:  # left out when absent, as in files written before recipes existed
        metadata["recipe"] = _dumps("recipe", recipe)
    if optimizer is not None:
        opt = optimizer.state_dict() if hasattr(optimizer, "state_dict") else optimizer
        for index, entry in opt["state"].items():
            for name, value in entry.items():
                if value is not None:
                    tensors[f"{_OPT_PREFIX}{int(index)}.{name}"] = _array("save_training", f"state {index}.{name}",
                                                                           value)
        name = None if isinstance(optimizer, Mapping) else type(optimizer).__name__
        metadata["optimizer"] = _dumps("optimizer", {"class": name,
                                                     "param_groups": opt["param_groups"]})
    _write(Path(path), _serialize("save_training", tensors, metadata))


def load_training(path: str | os.PathLike) -> dict:
    """A save_training() file: {"model", "optimizer" (a state_dict or None), "optimizer_class", "epoch",
    "step", "rng_state", "scheduler", "recipe" (a dict, None in older files), "extra"}."""
    path = Path(path)
    tensors, metadata = _read(path)
    if metadata.get("format") != TRAINING_FORMAT:
        raise CheckpointError(f"{path}: not a hetero training checkpoint (metadata format="
                              f"{metadata.get('format')!r}); hetero.checkpoint.load reads its tensors")
    try:
        model = {k: v for k, v in tensors.items() if not k.startswith(_OPT_PREFIX)}
        out = {
            "model": model,
            "optimizer": None,
            "optimizer_class": None,
            "epoch": int(metadata["epoch"]),
            "step": int(metadata["step"]),
            "rng_state": _loads(metadata["rng_state"]),
            "scheduler": _loads(metadata["scheduler"]),
            "recipe": _loads(metadata["recipe"]) if "recipe" in metadata else None,
            "extra": _loads(metadata["extra"]),
        }
        if "optimizer" in metadata:
            opt = _loads(metadata["optimizer"])
            state: dict[int, dict[str, np.ndarray]] = {}
            for key, value in tensors.items():
                if key.startswith(_OPT_PREFIX):
                    index, name = key[len(_OPT_PREFIX):].split(".", 1)
                    state.setdefault(int(index), {})[name] = value
            out["optimizer"] = {"state": dict(sorted(state.items())), "param_groups": opt["param_groups"]}
            out["optimizer_class"] = opt["class"]
    except (KeyError, ValueError, TypeError, AttributeError, RecursionError) as e:
        raise CheckpointError(f"{path}: damaged training checkpoint metadata ({type(e).__name__}: {e})") from None
    problem = _training_problem(out)
    if problem:
        raise CheckpointError(f"{path}: damaged training checkpoint: {problem}")
    return out


def _training_problem(ck: dict) -> str | None:
    """What is wrong with the structure of a load_training() result (every part, used or not), or None."""
    if not (0 <= ck["epoch"] < 2**63 and 0 <= ck["step"] < 2**63):
        return f"epoch {str(ck['epoch'])[:20]} and step {str(ck['step'])[:20]} must be counts (0 to 2**63-1)"
    for key in ("extra", "recipe"):
        if ck[key] is not None and not isinstance(ck[key], dict):
            return f"{key} is a {type(ck[key]).__name__}, not a dict"
    opt = ck["optimizer"]
    if opt is not None:
        groups = opt["param_groups"]
        if not isinstance(groups, list) or not all(isinstance(g, dict) for g in groups):
            return "the optimizer's param_groups are not a list of dicts"
        indices = []
        for g in groups:
            params = g.get("params", [])
            if not isinstance(params, list) or not all(isinstance(i, int) and not isinstance(i, bool)
                                                       for i in params):
                return "an optimizer param group's params are not a list of indices"
            indices += params
        stray = sorted(set(opt["state"]) - set(indices))
        if stray:
            return f"optimizer state for parameter(s) {stray[:5]} that no param group holds"
        if not (ck["optimizer_class"] is None or isinstance(ck["optimizer_class"], str)):
            return f"optimizer class {ck['optimizer_class']!r:.40} is not a name"
    return None


# ----- tensors -----

def _state_of(op: str, obj) -> Mapping:
    if hasattr(obj, "state_dict") and callable(obj.state_dict):
        return obj.state_dict()
    if isinstance(obj, Mapping):
        return obj
    raise ValueError(f"{op}: expected a model with state_dict() or a dict of tensors, got {type(obj).__name__}")


def _arrays(op: str, state: Mapping) -> dict[str, np.ndarray]:
    out = {}
    for name, value in state.items():
        if not isinstance(name, str):
            raise ValueError(f"{op}: tensor names must be strings, got {name!r}")
        out[name] = _array(op, name, value)
    return out


def _array(op: str, name: str, value) -> np.ndarray:
    if isinstance(value, Tensor):
        arr = value.numpy()
    else:
        arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{op}: {name!r} has dtype {arr.dtype}, which safetensors cannot store")
    return np.require(arr, requirements="C")  # keeps 0-d shapes, unlike np.ascontiguousarray


def _serialize(op: str, tensors: dict[str, np.ndarray], metadata: Mapping[str, str] | None) -> bytes:
    if metadata is not None:
        bad = [k for k, v in metadata.items() if not (isinstance(k, str) and isinstance(v, str))]
        if bad:
            raise ValueError(f"{op}: safetensors metadata maps strings to strings; bad entries {bad}")
        metadata = dict(metadata)
    return safetensors.numpy.save(tensors, metadata=metadata)


_DTYPE_SIZES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
                "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}


def _read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise CheckpointNotFoundError(f"{path}: no such file; check the path (a checkpoint is a .safetensors file "
                              "written by hetero train or hetero.save)") from None
    except IsADirectoryError:
        raise CheckpointError(f"{path}: is a folder, not a checkpoint file; name the .safetensors file in it"
                              ) from None
    except PermissionError:
        raise CheckpointError(f"{path}: permission denied; make the file readable (chmod u+r) or copy it "
                              "somewhere you can read") from None
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read the file ({e.strerror or e})") from None


def _check_header(path: Path, header: dict, payload: int) -> None:
    """Every tensor entry's dtype, shape and byte range are checked against the file before anything is
    allocated for it: a checkpoint is untrusted input."""
    metadata = header.get("__metadata__")
    if metadata is not None and not (isinstance(metadata, dict)
                                     and all(isinstance(v, str) for v in metadata.values())):
        raise CheckpointError(f"{path}: not a safetensors file (its metadata is not a string->string map)")
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(entry, dict):
            raise CheckpointError(f"{path}: corrupt safetensors header: entry {name!r} is not an object")
        dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
        if dtype not in _DTYPE_SIZES:
            raise CheckpointError(f"{path}: tensor {name!r} has dtype {dtype!r}, which hetero does not read")
        if (not isinstance(shape, list) or len(shape) > 64
                or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)):
            raise CheckpointError(f"{path}: tensor {name!r} has a bad shape {shape!r:.80}")
        if (not isinstance(offsets, list) or len(offsets) != 2
                or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)):
            raise CheckpointError(f"{path}: tensor {name!r} has bad data offsets {offsets!r:.80}")
        begin, end = offsets
        size = _DTYPE_SIZES[dtype]
        for d in shape:
            size *= d
        if not 0 <= begin <= end <= payload or end - begin != size:
            raise CheckpointError(f"{path}: truncated or corrupt: tensor {name!r} ({dtype} {shape}) needs {size} "
                                  f"bytes at [{begin}, {end}) of a {payload}-byte payload")


def _read(path: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Tensors and metadata of a safetensors file, or a CheckpointError saying why the file is not one."""
    data = _read_file(path)
    if len(data) < 8:
        raise CheckpointError(f"{path}: truncated or not a safetensors file ({len(data)} bytes)")
    n = int.from_bytes(data[:8], "little")
    if n > _MAX_HEADER or 8 + n > len(data):
        raise CheckpointError(f"{path}: truncated or not a safetensors file (its first 8 bytes announce a "
                              f"{n}-byte header, the file has {len(data)} bytes)")
    try:
        header = json.loads(data[8:8 + n])
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise CheckpointError(f"{path}: not a safetensors file (the header is not JSON)") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: not a safetensors file (the header is not a JSON object)")
    _check_header(path, header, len(data) - 8 - n)
    try:
        tensors = safetensors.numpy.load(data)
    except (safetensors.SafetensorError, ValueError, TypeError) as e:
        raise CheckpointError(f"{path}: truncated or corrupt safetensors file ({e})") from None
    metadata = header.get("__metadata__") or {}
    return tensors, dict(metadata)


# ----- JSON metadata that keeps tuples and numpy arrays -----

def _to_jsonable(what: str, obj):
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind not in "biuf":
            raise ValueError(f"save_training: {what} holds an array of dtype {obj.dtype}")
        return {"__ndarray__": obj.tolist(), "dtype": obj.dtype.str, "shape": list(obj.shape)}
    if isinstance(obj, tuple):
        return {"__tuple__": [_to_jsonable(what, v) for v in obj]}
    if isinstance(obj, list):
        return [_to_jsonable(what, v) for v in obj]
    if isinstance(obj, Mapping):
        for k in obj:
            if not isinstance(k, str):
                raise ValueError(f"save_training: {what} has a non-string dict key {k!r}")
        return {k: _to_jsonable(what, v) for k, v in obj.items()}
    raise ValueError(f"save_training: {what} holds a {type(obj).__name__}, which cannot be stored as JSON")


def _from_json(obj):
    if isinstance(obj, list):
        return [_from_json(v) for v in obj]
    if isinstance(obj, dict):
        if "__ndarray__" in obj:
            return np.array(obj["__ndarray__"], dtype=np.dtype(obj["dtype"])).reshape(obj["shape"])
        if "__tuple__" in obj:
            return tuple(_from_json(v) for v in obj["__tuple__"])
        return {k: _from_json(v) for k, v in obj.items()}
    return obj


def _dumps(what: str, obj) -> str:
    return json.dumps(_to_jsonable(what, obj))


def _loads(text: str):
    return _from_json(json.loads(text))


def _write(path: Path, data: bytes) -> None:
    try:
        with atomic_write(path) as f:
            f.write(data)
    except OSError as e:
        if isinstance(e, CheckpointError):
            raise
        raise CheckpointWriteError(f"{path}: cannot write the checkpoint ({e.strerror or e}); check that its "
                                   "folder exists and is writable") from e
