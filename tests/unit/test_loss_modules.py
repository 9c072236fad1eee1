"""nn.CrossEntropyLoss / nn.NLLLoss: the module equals its functional op, weights are a buffer as in torch."""

import numpy as np
import pytest

import hetero
from hetero import nn
from hetero.nn import functional as F


def test_cross_entropy_module_matches_functional(dev, rng):
    logits = hetero.tensor(rng.standard_normal((5, 4)), device=dev)
    target = hetero.tensor(np.array([0, 3, 1, 2, 3]), device=dev)
    w = hetero.tensor(np.array([1.0, 2.0, 0.5, 1.5]), device=dev)
    for reduction in ("mean", "sum", "none"):
        got = nn.CrossEntropyLoss(weight=w, ignore_index=1, reduction=reduction)(logits, target).numpy()
        want = F.cross_entropy(logits, target, w, 1, reduction).numpy()
        np.testing.assert_array_equal(got, want)
    loss = nn.NLLLoss()(F.log_softmax(logits, 1), target).item()
    assert loss == pytest.approx(F.cross_entropy(logits, target).item(), rel=1e-6)


def test_weight_is_a_state_dict_buffer(dev):
    w = hetero.tensor(np.array([1.0, 3.0]), device=dev)
    assert list(nn.CrossEntropyLoss(weight=w).state_dict()) == ["weight"]
    assert list(nn.CrossEntropyLoss().state_dict()) == []


def test_bad_reduction():
    with pytest.raises(ValueError, match="CrossEntropyLoss: reduction"):
        nn.CrossEntropyLoss(reduction="avg")


@pytest.mark.parametrize("value", [2.5, True, "1", None])
def test_ignore_index_must_be_an_int(value):
    with pytest.raises(ValueError, match="NLLLoss: ignore_index must be an int"):
        nn.NLLLoss(ignore_index=value)
    assert nn.CrossEntropyLoss(ignore_index=np.int64(3)).ignore_index == 3


def _linear_run(dev, rng, bad_batch: int):
    model = nn.Linear(4, 3, device=dev)
    opt = hetero.optim.SGD(model.parameters(), lr=0.1)
    batches = []
    for b in range(4):
        y = rng.integers(0, 3, 8).astype(np.int32)
        if b == bad_batch:
            y[5] = 3  # one class too many
        batches.append((rng.standard_normal((8, 4)).astype(np.float32), y))
    return model, opt, batches


def test_a_compiled_step_raises_on_reading_a_loss_with_a_bad_target(dev, rng):
    model, opt, batches = _linear_run(dev, rng, bad_batch=2)
    step = hetero.compile_step(model, nn.CrossEntropyLoss(), opt)
    for x, y in batches[:2]:
        assert np.isfinite(step(x, y).item())
    loss = step(*batches[2])  # a replay: the op is not called again, the kernel records the error
    with pytest.raises(ValueError, match=r"cross_entropy: 1 of 8 targets is not a class id: target\[5\] = 3, "
                                         r"but the scores have 3 classes"):
        loss.item()
    assert np.isfinite(step(*batches[3]).item())  # the next good batch reads normally


def test_fit_names_a_bad_target_instead_of_advising_a_lower_learning_rate(dev, rng):
    model, opt, batches = _linear_run(dev, rng, bad_batch=2)
    events = []
    with pytest.raises(ValueError, match=r"target\[5\] = 3, but the scores have 3 classes"):
        hetero.train.fit(model, opt, batches, epochs=1, callbacks=[events.append])
    done = events[-1]
    assert done.reason == "error" and "target[5] = 3" in done.message and "learning rate" not in done.message


def test_evaluate_names_a_bad_target(dev, rng):
    model, _, batches = _linear_run(dev, rng, bad_batch=1)
    with pytest.raises(ValueError, match=r"target\[5\] = 3"):
        hetero.train.evaluate(model, batches)
