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
