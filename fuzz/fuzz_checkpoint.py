"""Coverage-guided fuzzing of the checkpoint loader (hetero.checkpoint.load / load_training, the training
recipe it holds, and hetero.train.load_checkpoint into a small model) with atheris.

    python fuzz/fuzz_checkpoint.py -max_total_time=60      # or -runs=N; a corpus folder may follow
Any exception other than CheckpointError, RecipeError or a ValueError hetero raises on purpose (a state that
does not fit the model) is a finding, and so is a failed restore that changed the model: atheris prints the
exception and the input, and exits non-zero.
"""

from __future__ import annotations

import copy
import sys

import atheris
import numpy as np
from _common import corpus_args, deliberate, scratch_file

with atheris.instrument_imports(include=["hetero.checkpoint", "hetero.train.checkpoints", "hetero.recipe"]):
    import hetero
    from hetero import checkpoint
    from hetero import recipe as R
    from hetero.train import checkpoints as T

PATH = scratch_file(".safetensors")
EXPECTED = (checkpoint.CheckpointError, R.RecipeError, ValueError)


def _model():
    """A small model and optimizer on the default device, and a recipe that names them."""
    dev = hetero.device()
    hetero.train.seed_everything(0)
    model = hetero.nn.Sequential(hetero.nn.Linear(4, 3, device=dev), hetero.nn.ReLU(),
                                 hetero.nn.Linear(3, 2, device=dev))
    opt = hetero.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    return model, opt


MODEL, OPT = _model()
SCHED = hetero.optim.CosineAnnealingLR(OPT, T_max=10)
RECIPE = R.TrainingRecipe(optimizer="sgd", lr=0.1)
# the known state every input starts from, so that a finding reproduces from its input alone
START = ({k: v.numpy().copy() for k, v in MODEL.state_dict().items()}, copy.deepcopy(OPT.state_dict()),
         copy.deepcopy(SCHED.state_dict()))


def _reset() -> None:
    MODEL.load_state_dict(START[0])
    OPT.load_state_dict(copy.deepcopy(START[1]))
    SCHED.load_state_dict(copy.deepcopy(START[2]))


def seeds() -> dict[str, bytes]:
    out = {}
    T.save_checkpoint(PATH, MODEL, OPT, 1, 5, SCHED, extra={"batch": 2}, recipe=RECIPE)
    out["training"] = PATH.read_bytes()
    checkpoint.save(MODEL, PATH)
    out["weights"] = PATH.read_bytes()
    checkpoint.save({"w": np.zeros((2, 3), np.float32), "i": np.arange(3)}, PATH, {"format": "x"})
    out["plain"] = PATH.read_bytes()
    T.save_checkpoint(PATH, MODEL, OPT, 1, 5, SCHED, extra={"batch": 2}, recipe=RECIPE)
    fields = checkpoint.read_metadata(PATH)
    for i, name in enumerate(_FIELDS):  # "{" + the field's index + its good text: structured seeds
        out[f"field-{name}"] = b"{" + bytes([i]) + fields.get(name, "").encode()
    return out


_GOOD: dict = {}
_FIELDS = ("recipe", "optimizer", "scheduler", "rng_state", "extra", "epoch", "step", "format")


def _structured(data: bytes) -> bytes:
    """A good training checkpoint with one metadata field replaced by the input's text: the mutations then
    reach the JSON parts (recipe, optimizer groups, schedule) that random bytes seldom form."""
    if not _GOOD:
        T.save_checkpoint(PATH, MODEL, OPT, 1, 5, SCHED, extra={"batch": 2}, recipe=RECIPE)
        _GOOD["tensors"] = checkpoint.load(PATH)
        _GOOD["meta"] = checkpoint.read_metadata(PATH)
    meta = dict(_GOOD["meta"])
    meta[_FIELDS[data[1] % len(_FIELDS)]] = data[2:].decode("utf-8", "replace")
    checkpoint.save(_GOOD["tensors"], PATH, meta)
    return PATH.read_bytes()


def _weights() -> dict[str, np.ndarray]:
    return {k: v.numpy().copy() for k, v in MODEL.state_dict().items()}


def test_one_input(data: bytes) -> None:
    if len(data) > 2 and data[0] == ord("{"):  # inputs starting with "{" fill a metadata field
        data = _structured(data)
    PATH.write_bytes(data)
    try:
        checkpoint.load(PATH)
    except Exception as e:
        if not deliberate(e, EXPECTED):
            raise
        return
    try:
        ck = checkpoint.load_training(PATH)
        R.recipe_from_checkpoint(ck)
    except Exception as e:
        if not deliberate(e, EXPECTED):
            raise
    before = _weights()
    lr = [g["lr"] for g in OPT.param_groups]
    for recipe in (None, RECIPE):
        try:
            T.load_checkpoint(PATH, MODEL, OPT, SCHED, recipe=recipe)
        except Exception as e:
            if not deliberate(e, EXPECTED):
                raise
            after = _weights()
            if any(not np.array_equal(before[k], after[k], equal_nan=True) for k in before) or \
                    lr != [g["lr"] for g in OPT.param_groups]:
                raise AssertionError("a failed load_checkpoint changed the model or the optimizer") from e
            continue
        _reset()  # a restore that worked: the next try (and input) starts from the known state again


def main() -> None:
    argv = corpus_args(sys.argv, seeds())
    atheris.Setup(argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
