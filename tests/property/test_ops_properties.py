"""Property tests: op arguments and shapes drawn by hypothesis, each result compared with the float64 numpy
reference in hetero/reference/; argument combinations that make no output must raise ValueError.

Bounded and deterministic (derandomize, a fixed number of examples), through the public API only."""

from __future__ import annotations

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import hetero  # noqa: E402
import hetero.nn.functional as F  # noqa: E402
from hetero.reference import conv2d as ref_conv  # noqa: E402
from hetero.reference import elementwise as ref_elem  # noqa: E402
from hetero.reference import linear as ref_linear  # noqa: E402
from hetero.reference import pool2d as ref_pool  # noqa: E402
from hetero.reference import softmax as ref_softmax  # noqa: E402

BOUNDED = settings(max_examples=30, deadline=None, derandomize=True, database=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
RTOL, ATOL = 1e-4, 1e-4


@pytest.fixture(scope="module")
def device():
    try:
        return hetero.device()
    except hetero.HeteroError as e:
        pytest.skip(f"no usable OpenCL device: {e}")


def _tensor(a: np.ndarray, dev) -> hetero.Tensor:
    return hetero.tensor(np.asarray(a, np.float32, order="C"), device=dev)  # keeps 0-d shapes


def _array(seed: int, shape) -> np.ndarray:
    return np.asarray(np.random.default_rng(seed).standard_normal(shape), np.float32)


def _close(got: hetero.Tensor, want: np.ndarray) -> None:
    out = got.numpy()
    assert out.shape == want.shape, (out.shape, want.shape)
    np.testing.assert_allclose(out, want, rtol=RTOL, atol=ATOL)


def _out_size(size: int, k: int, s: int, p: int, d: int) -> int:
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


# ----- conv2d -----

conv_args = st.fixed_dictionaries({
    "n": st.integers(1, 2), "groups": st.integers(1, 3), "cin_per": st.integers(1, 3), "cout_per": st.integers(1, 3),
    "h": st.integers(1, 9), "w": st.integers(1, 9), "kh": st.integers(1, 4), "kw": st.integers(1, 4),
    "stride": st.integers(1, 3), "padding": st.integers(0, 2), "dilation": st.integers(1, 2),
    "bias": st.booleans(), "seed": st.integers(0, 2**16),
})


@BOUNDED
@given(a=conv_args)
def test_conv2d_matches_the_reference_or_refuses(device, a):
    cin, cout = a["groups"] * a["cin_per"], a["groups"] * a["cout_per"]
    x = _array(a["seed"], (a["n"], cin, a["h"], a["w"]))
    w = _array(a["seed"] + 1, (cout, a["cin_per"], a["kh"], a["kw"]))
    b = _array(a["seed"] + 2, (cout,)) if a["bias"] else None
    kw = dict(stride=a["stride"], padding=a["padding"], dilation=a["dilation"], groups=a["groups"])
    oh = _out_size(a["h"], a["kh"], a["stride"], a["padding"], a["dilation"])
    ow = _out_size(a["w"], a["kw"], a["stride"], a["padding"], a["dilation"])
    args = (_tensor(x, device), _tensor(w, device), None if b is None else _tensor(b, device))
    if oh < 1 or ow < 1:  # the kernel does not fit the padded input
        with pytest.raises(ValueError):
            F.conv2d(*args, **kw)
        return
    want = ref_conv.conv2d_forward(x, w, b, a["stride"], a["padding"], a["dilation"], a["groups"])
    _close(F.conv2d(*args, **kw), want)


@BOUNDED
@given(bad=st.sampled_from([("stride", 0), ("stride", -1), ("padding", -1), ("dilation", 0), ("dilation", -2),
                            ("groups", 0), ("groups", 3), ("groups", -1)]),
       seed=st.integers(0, 100))
def test_conv2d_bad_arguments_raise_value_error(device, bad, seed):
    x = _tensor(_array(seed, (1, 4, 6, 6)), device)
    w = _tensor(_array(seed, (4, 2 if bad == ("groups", 3) else 4, 3, 3)), device)
    with pytest.raises(ValueError):
        F.conv2d(x, w, **{bad[0]: bad[1]})


@BOUNDED
@given(cin=st.integers(1, 4), wrong=st.integers(1, 4), seed=st.integers(0, 100))
def test_conv2d_channel_mismatch_raises_value_error(device, cin, wrong, seed):
    if cin == wrong:
        wrong += 1
    with pytest.raises(ValueError):
        F.conv2d(_tensor(_array(seed, (1, cin, 5, 5)), device), _tensor(_array(seed, (2, wrong, 3, 3)), device))


# ----- pooling -----

pool_args = st.fixed_dictionaries({
    "n": st.integers(1, 2), "c": st.integers(1, 3), "h": st.integers(1, 9), "w": st.integers(1, 9),
    "k": st.integers(1, 4), "stride": st.one_of(st.none(), st.integers(1, 3)), "padding": st.integers(0, 2),
    "seed": st.integers(0, 2**16),
})


@BOUNDED
@given(a=pool_args)
def test_max_pool2d_matches_the_reference_or_refuses(device, a):
    x = _array(a["seed"], (a["n"], a["c"], a["h"], a["w"]))
    s = a["stride"] or a["k"]
    kw = dict(stride=a["stride"], padding=a["padding"])
    oh, ow = (_out_size(v, a["k"], s, a["padding"], 1) for v in (a["h"], a["w"]))
    if a["padding"] * 2 > a["k"] or oh < 1 or ow < 1:  # torch's rule: padding at most half the kernel
        with pytest.raises(ValueError):
            F.max_pool2d(_tensor(x, device), a["k"], **kw)
        return
    want, _ = ref_pool.max_pool2d(x, a["k"], a["stride"], a["padding"])
    _close(F.max_pool2d(_tensor(x, device), a["k"], **kw), want)


@BOUNDED
@given(a=pool_args, include_pad=st.booleans())
def test_avg_pool2d_matches_the_reference_or_refuses(device, a, include_pad):
    x = _array(a["seed"], (a["n"], a["c"], a["h"], a["w"]))
    s = a["stride"] or a["k"]
    kw = dict(stride=a["stride"], padding=a["padding"], count_include_pad=include_pad)
    oh, ow = (_out_size(v, a["k"], s, a["padding"], 1) for v in (a["h"], a["w"]))
    if a["padding"] * 2 > a["k"] or oh < 1 or ow < 1:
        with pytest.raises(ValueError):
            F.avg_pool2d(_tensor(x, device), a["k"], **kw)
        return
    want = ref_pool.avg_pool2d(x, a["k"], a["stride"], a["padding"], count_include_pad=include_pad)
    _close(F.avg_pool2d(_tensor(x, device), a["k"], **kw), want)


@BOUNDED
@given(bad=st.sampled_from([("kernel_size", 0), ("kernel_size", -1), ("stride", 0), ("stride", -2),
                            ("padding", -1)]), which=st.sampled_from(["max", "avg"]))
def test_pool_bad_arguments_raise_value_error(device, bad, which):
    kw = {"kernel_size": 2, bad[0]: bad[1]}
    op = F.max_pool2d if which == "max" else F.avg_pool2d
    with pytest.raises(ValueError):
        op(_tensor(np.ones((1, 1, 4, 4)), device), **kw)


# ----- linear -----


@BOUNDED
@given(n=st.integers(1, 5), k=st.integers(1, 9), m=st.integers(1, 9), bias=st.booleans(), seed=st.integers(0, 2**16))
def test_linear_matches_the_reference(device, n, k, m, bias, seed):
    x, w = _array(seed, (n, k)), _array(seed + 1, (m, k))
    b = _array(seed + 2, (m,)) if bias else None
    want = ref_linear.linear_forward(x, w, b)
    _close(F.linear(_tensor(x, device), _tensor(w, device), None if b is None else _tensor(b, device)), want)


@BOUNDED
@given(k=st.integers(1, 6), wrong=st.integers(1, 6), seed=st.integers(0, 100))
def test_linear_width_mismatch_raises_value_error(device, k, wrong, seed):
    if k == wrong:
        wrong += 1
    with pytest.raises(ValueError):
        F.linear(_tensor(_array(seed, (2, k)), device), _tensor(_array(seed, (3, wrong)), device))


# ----- softmax and cross_entropy -----


@BOUNDED
@given(shape=st.lists(st.integers(1, 6), min_size=1, max_size=4), dim_pick=st.integers(0, 7),
       log=st.booleans(), seed=st.integers(0, 2**16))
def test_softmax_matches_the_reference_or_refuses(device, shape, dim_pick, log, seed):
    x = _array(seed, tuple(shape)) * 3
    dim = dim_pick - len(shape) if dim_pick < 2 * len(shape) else dim_pick  # negative, positive, out of range
    op = F.log_softmax if log else F.softmax
    if not -len(shape) <= dim < len(shape):
        with pytest.raises((ValueError, IndexError)):
            op(_tensor(x, device), dim=dim)
        return
    want = (ref_softmax.log_softmax if log else ref_softmax.softmax)(x.astype(np.float64), dim)
    _close(op(_tensor(x, device), dim=dim), want)


@BOUNDED
@given(n=st.integers(1, 6), c=st.integers(1, 7), reduction=st.sampled_from(["mean", "sum", "none"]),
       seed=st.integers(0, 2**16))
def test_cross_entropy_matches_the_reference(device, n, c, reduction, seed):
    x = _array(seed, (n, c)) * 2
    y = np.random.default_rng(seed).integers(0, c, n).astype(np.int32)
    want = ref_softmax.cross_entropy(x.astype(np.float64), y, reduction=reduction)
    got = F.cross_entropy(_tensor(x, device), hetero.tensor(y, device=device), reduction=reduction)
    _close(got, np.asarray(want, np.float64).reshape(got.shape))


@BOUNDED
@given(n=st.integers(1, 4), extra=st.integers(1, 3))
def test_cross_entropy_label_count_mismatch_raises_value_error(device, n, extra):
    y = hetero.tensor(np.zeros(n + extra, np.int32), device=device)
    with pytest.raises(ValueError):
        F.cross_entropy(_tensor(np.ones((n, 3)), device), y)


# ----- elementwise with broadcasting -----

shapes = st.lists(st.integers(1, 4), min_size=0, max_size=3)


def _broadcast(a: tuple, b: tuple) -> tuple | None:
    try:
        return np.broadcast_shapes(a, b)
    except ValueError:
        return None


@BOUNDED
@given(a=shapes, b=shapes, op=st.sampled_from(["add", "mul"]), seed=st.integers(0, 2**16))
def test_elementwise_broadcasts_like_numpy_or_refuses(device, a, b, op, seed):
    x, y = _array(seed, tuple(a)), _array(seed + 1, tuple(b))
    fn = F.add if op == "add" else F.mul
    if _broadcast(x.shape, y.shape) is None:
        with pytest.raises(ValueError):
            fn(_tensor(x, device), _tensor(y, device))
        return
    want = (ref_elem.add if op == "add" else ref_elem.mul)(x.astype(np.float64), y.astype(np.float64))
    _close(fn(_tensor(x, device), _tensor(y, device)), np.asarray(want))


@BOUNDED
@given(shape=shapes.filter(bool), seed=st.integers(0, 2**16))
def test_relu_matches_the_reference(device, shape, seed):
    x = _array(seed, tuple(shape))
    _close(F.relu(_tensor(x, device)), np.maximum(x, 0))


@BOUNDED
@given(n=st.integers(1, 4), c=st.integers(1, 5), off=st.sampled_from([-5, -1, 0, 3]))
def test_cross_entropy_label_out_of_range_raises_value_error(device, n, c, off):
    labels = np.zeros(n, np.int32)
    labels[-1] = c + off if off >= 0 else off  # the last label outside 0..C-1 (-100 is ignore_index)
    loss = F.cross_entropy(_tensor(np.ones((n, c)), device), hetero.tensor(labels, device=device))
    with pytest.raises(ValueError, match="not a class id"):
        loss.item()  # the kernel records bad ids; reading the loss raises (it is queued, not read, before)
