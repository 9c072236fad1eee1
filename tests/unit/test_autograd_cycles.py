"""No op may keep its own output alive through its saved tensors (out -> grad_fn -> ctx -> out): such a
cycle is only freed by the cyclic garbage collector, late, and it once deadlocked the memory pool."""

import gc
import weakref

import numpy as np
import pytest

import hetero
from hetero.nn import functional as F
from hetero.ops.local_response_norm import local_response_norm

OPS = {
    "conv2d": lambda x, w: F.conv2d(x, w, padding=1),
    "local_response_norm": lambda x, w: local_response_norm(x, 3),
    "relu": lambda x, w: F.relu(x),
    "sigmoid": lambda x, w: F.sigmoid(x),
    "softmax": lambda x, w: F.softmax(x, 1),
    "max_pool2d": lambda x, w: F.max_pool2d(x, 2),
    "batch_norm": lambda x, w: F.batch_norm(x, None, None, training=True),
}


@pytest.mark.parametrize("name", list(OPS))
def test_outputs_are_freed_by_reference_counting(dev, rng, name):
    x = hetero.tensor(rng.standard_normal((2, 4, 6, 6)), device=dev, requires_grad=True)
    w = hetero.tensor(rng.standard_normal((4, 4, 3, 3)) * 0.1, device=dev, requires_grad=True)
    gc.collect()
    gc.disable()
    try:
        y = OPS[name](x, w)
        y.backward(hetero.ones(y.shape, device=dev))
        ref = weakref.ref(y)
        del y
        assert ref() is None, f"{name}: its output is kept alive by a reference cycle"
    finally:
        gc.enable()
    assert np.isfinite(x.grad.numpy()).all()
