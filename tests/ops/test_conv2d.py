"""conv2d: float64 reference vs finite differences and a direct loop, then device vs reference."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

import hetero
from hetero.ops.conv2d import (
    algorithms,
    choose,
    columns,
    conv2d,
    conv2d_backward,
    conv2d_forward,
    conv2d_geometry,
    depthwise,
    direct,
    function,
)
from hetero.ops.conv2d.kernels import REDUCE_WG
from hetero.ops.gemm import config as gemm_config
from hetero.ops.gemm import cpu as gemm_cpu
from hetero.reference.conv2d import conv2d_backward as ref_backward
from hetero.reference.conv2d import conv2d_forward as ref_forward
from tests.helpers import assert_close, cpu_kernels, numeric_grad, shapes

# float32 vs float64 bound: |err| <= ATOL + RTOL * max|expected| (sums of up to ~10^3 products)
RTOL, ATOL = 1e-4, 1e-5

# (input shape, weight shape, stride, padding, dilation, groups, with bias)
CASES = [
    ((1, 1, 5, 5), (1, 1, 3, 3), 1, 0, 1, 1, True),  # batch 1, one channel (the direct depthwise path)
    ((2, 3, 7, 9), (4, 3, 3, 3), 1, 1, 1, 1, True),  # odd sizes, padding
    ((1, 3, 1, 1), (5, 3, 1, 1), 1, 0, 1, 1, True),  # 1x1 spatial, pointwise (batch-major layout)
    ((2, 3, 1, 1), (4, 3, 3, 3), 1, 1, 1, 1, False),  # 1x1 spatial, 3x3 kernel reaching only padding around it
    ((2, 3, 9, 9), (4, 3, 2, 2), 3, 0, 1, 1, True),  # stride larger than the kernel (skipped pixels)
    ((2, 4, 10, 11), (6, 2, 3, 3), 2, 2, 1, 2, True),  # groups=2
    ((2, 6, 8, 8), (9, 2, 3, 3), 1, 1, 1, 3, False),  # groups=3
    ((2, 3, 11, 11), (4, 3, 3, 3), 1, 2, 2, 1, True),  # dilation
    ((2, 4, 7, 7), (4, 1, 3, 3), 1, 1, 1, 4, True),  # depthwise, multiplier 1
    ((2, 4, 9, 8), (8, 1, 5, 3), (2, 1), (2, 1), 1, 4, True),  # depthwise, multiplier 2, non-square
    ((2, 3, 8, 8), (6, 1, 3, 3), 2, 1, 2, 3, False),  # depthwise, multiplier 2, stride and dilation
    ((3, 8, 6, 5), (16, 8, 1, 1), 1, 0, 1, 1, True),  # pointwise
    ((2, 8, 6, 5), (12, 4, 1, 1), 1, 0, 1, 2, True),  # grouped pointwise
    ((2, 4, 7, 7), (6, 4, 1, 1), 2, 0, 1, 1, True),  # 1x1 with stride: im2col path
    ((2, 4, 16, 16), (6, 4, 1, 1), 1, 0, 1, 1, True),  # pointwise, per-image layout
    ((2, 3, 20, 20), (4, 3, 3, 3), 1, 1, 1, 1, True),  # per-image layout
    ((2, 5, 17, 16), (7, 5, 4, 2), (3, 2), (1, 2), (1, 2), 1, True),  # non-square kernel/stride/pad/dilation
    ((2, 3, 6, 7), (4, 3, 4, 2), 1, "same", (1, 2), 1, True),  # asymmetric 'same' padding
    ((2, 3, 6, 7), (4, 3, 3, 3), 1, "valid", 1, 1, False),
    ((2, 96, 12, 12), (256, 96, 3, 3), 1, 1, 1, 1, True),  # large channel counts
    ((2, 3, 5, 40), (4, 3, 3, 3), 2, 1, 1, 1, True),  # stride 2 with output rows of 20
]
# Under Oclgrind: tiny versions of the cases above. Together they still reach every kernel of conv2d.cl and
# every value of im2col/col2im's window defines (COL_KH 1-4, COL_KW 1-3, COL_SH/SW 1-3, COL_PH/PW 0-2,
# COL_DH/DW 1-2) that CASES reaches, at sizes where the GEMMs are one small tile: the simulator runs a
# GPU-style tiled GEMM at ~0.3 s per work-group step, and gemm.cl's variants are covered by test_gemm.py.
REDUCED = [
    CASES[0],                                                  # batch 1, one channel
    ((2, 3, 5, 6), (4, 3, 3, 3), 1, 1, 1, 1, True),            # odd sizes, padding
    ((1, 4, 5, 6), (6, 2, 3, 3), 2, 2, 1, 2, True),            # groups=2, stride 2, padding 2
    ((1, 2, 8, 7), (3, 2, 4, 2), (3, 2), (1, 2), (1, 2), 1, True),  # non-square kernel/stride/pad/dilation
    ((1, 2, 7, 7), (3, 2, 2, 2), 3, 0, 1, 1, False),           # stride larger than the kernel, no bias
    ((1, 2, 7, 7), (3, 2, 3, 3), 1, 2, 2, 1, True),            # dilation
    ((1, 2, 4, 5), (3, 2, 4, 2), 1, "same", (1, 2), 1, True),  # asymmetric 'same' padding
    ((2, 3, 5, 5), (4, 3, 1, 1), 2, 0, 1, 1, True),            # 1x1 with stride: im2col path
    ((2, 4, 3, 2), (6, 2, 1, 1), 1, 0, 1, 2, True),            # grouped pointwise
    ((1, 2, 5, 4), (4, 1, 3, 2), (2, 1), (1, 1), 1, 2, True),  # depthwise, multiplier 2, non-square
    ((1, 2, 5, 5), (2, 1, 2, 2), 2, 1, 2, 2, False),           # depthwise, multiplier 1, stride and dilation
    ((1, 8, 4, 3), (2, 8, 3, 3), 1, 1, 1, 1, True),            # 72 column rows: the CPU im2col's row blocks
    ((1, 2, 3, 18), (2, 2, 3, 3), 1, 1, 1, 1, True),           # rows of 18: the CPU col2im's two pixel blocks
    ((1, 2, 3, 40), (2, 2, 3, 3), 2, 1, 1, 1, True),           # stride 2, output rows of 20
]


def _case_id(case) -> str:
    xs, ws, s, p, d, g, b = case
    return f"x{'x'.join(map(str, xs))}-w{'x'.join(map(str, ws))}-s{s}-p{p}-d{d}-g{g}{'-b' if b else ''}"


def _direct(x, w, b, stride, padding, dilation, groups) -> np.ndarray:
    """conv2d as the textbook sum, element by element: an oracle independent of the reference's slicing."""
    geo = conv2d_geometry(x.shape, w.shape, stride, padding, dilation, groups)
    (sh, sw), (dh, dw) = geo.stride, geo.dilation
    y = np.zeros(geo.out_shape)
    for n, o, i, j in np.ndindex(*geo.out_shape):
        g = o // geo.ocg
        acc = 0.0 if b is None else b[o]
        for c, u, v in np.ndindex(geo.icg, geo.kh, geo.kw):
            h, ww = i * sh - geo.pad_t + u * dh, j * sw - geo.pad_l + v * dw
            if 0 <= h < geo.h and 0 <= ww < geo.w:
                acc += w[o, c, u, v] * x[n, g * geo.icg + c, h, ww]
        y[n, o, i, j] = acc
    return y


# --- (1) the reference -------------------------------------------------------------------------------------

TINY = [
    ((1, 2, 4, 5), (3, 2, 2, 3), 1, 1, 1, 1),
    ((2, 2, 5, 5), (2, 1, 3, 3), 2, 1, 1, 2),
    ((1, 3, 6, 5), (6, 1, 2, 2), (2, 1), (0, 1), (2, 1), 3),
    ((1, 2, 4, 4), (2, 2, 2, 3), 1, "same", 1, 1),
    ((1, 1, 1, 1), (2, 1, 3, 3), 2, 1, 1, 1),
]


@pytest.mark.parametrize("xs, ws, stride, padding, dilation, groups", TINY)
def test_reference_forward_matches_direct_sum(rng, xs, ws, stride, padding, dilation, groups):
    x, w, b = rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[0])
    y = ref_forward(x, w, b, stride, padding, dilation, groups)
    np.testing.assert_allclose(y, _direct(x, w, b, stride, padding, dilation, groups), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("xs, ws, stride, padding, dilation, groups", TINY)
def test_reference_backward_matches_finite_differences(rng, xs, ws, stride, padding, dilation, groups):
    x, w, b = rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[0])
    r = rng.standard_normal(ref_forward(x, w, b, stride, padding, dilation, groups).shape)

    def loss(xx, ww, bb):
        return float(np.sum(ref_forward(xx, ww, bb, stride, padding, dilation, groups) * r))

    dx, dw, db = ref_backward(r, x, w, stride, padding, dilation, groups)
    np.testing.assert_allclose(dx, numeric_grad(lambda v: loss(v, w, b), x), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(dw, numeric_grad(lambda v: loss(x, v, b), w), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(db, numeric_grad(lambda v: loss(x, w, v), b), rtol=1e-6, atol=1e-8)


# --- (2) device vs reference ----------------------------------------------------------------------------------

def _run_case(dev, rng, case, rtol=RTOL, atol=ATOL):
    xs, ws, stride, padding, dilation, groups, with_bias = case
    x = rng.standard_normal(xs).astype(np.float32)
    w = (rng.standard_normal(ws) / np.sqrt(np.prod(ws[1:]))).astype(np.float32)
    b = rng.standard_normal(ws[0]).astype(np.float32) if with_bias else None
    xt = hetero.tensor(x, dev, requires_grad=True)
    wt = hetero.tensor(w, dev, requires_grad=True)
    bt = hetero.tensor(b, dev, requires_grad=True) if with_bias else None
    y = conv2d(xt, wt, bt, stride, padding, dilation, groups)
    expected = ref_forward(x, w, b, stride, padding, dilation, groups)
    assert_close(y, expected, rtol, atol, "forward")
    gy = rng.standard_normal(expected.shape).astype(np.float32)
    y.backward(hetero.tensor(gy, dev))
    dx, dw, db = ref_backward(gy, x, w, stride, padding, dilation, groups)
    assert_close(xt.grad, dx, rtol, atol, "input grad")
    assert_close(wt.grad, dw, rtol, atol, "weight grad")
    if with_bias:
        assert_close(bt.grad, db, rtol, atol, "bias grad")


def _force(monkeypatch, forward=None, input_grad=None, weight_grad=None):
    """Make algorithms.choose give these algorithms for every non-depthwise geometry: a name, or a function
    (geometry, weight_grad) -> name (None: the table's own choice)."""
    real = algorithms.choose
    wanted = {"forward": forward, "input_grad": input_grad, "weight_grad": weight_grad}

    def forced(device, geo, weight_grad=True):
        algos = real(device, geo, weight_grad)
        if geo.depthwise:
            return algos
        picks = {}
        for field, pick in wanted.items():
            name = pick(geo, weight_grad) if callable(pick) else pick
            if name is not None:
                picks[field] = name
        return algos._replace(**picks)

    monkeypatch.setattr(algorithms, "choose", forced)


def _implicit(geo, _weight_grad):
    return "implicit_per_image" if geo.p % algorithms.IMPLICIT_TILE_COLUMNS == 0 else "implicit_images"


def _run_case_forward_only(dev, rng, case):
    xs, ws, stride, padding, dilation, groups, with_bias = case
    x = rng.standard_normal(xs).astype(np.float32)
    w = (rng.standard_normal(ws) / np.sqrt(np.prod(ws[1:]))).astype(np.float32)
    b = rng.standard_normal(ws[0]).astype(np.float32) if with_bias else None
    y = conv2d_forward(hetero.tensor(x, dev), hetero.tensor(w, dev), None if b is None else hetero.tensor(b, dev),
                       stride, padding, dilation, groups)
    assert_close(y, ref_forward(x, w, b, stride, padding, dilation, groups), RTOL, ATOL, "forward")


@pytest.mark.parametrize("case", shapes(CASES, REDUCED), ids=_case_id)
def test_conv2d_matches_reference(dev, rng, case):
    _run_case(dev, rng, case)


@pytest.mark.parametrize("cols", ["im2col", pytest.param("implicit", marks=cpu_kernels)])
@pytest.mark.parametrize("layout_min_p", [0, 10**9], ids=["per-image", "batch-major"])
@pytest.mark.parametrize("case", shapes([CASES[1], CASES[6], CASES[11], CASES[16]], [REDUCED[1]]), ids=_case_id)
def test_conv2d_both_layouts_and_chunks(dev, rng, monkeypatch, case, layout_min_p, cols):
    # a budget of ~2 images per column matrix makes 5 images run as chunks 2 + 2 + 1; both ways of feeding
    # the forward GEMM its columns run on every device, whichever the device would choose
    xs, ws, stride, padding, dilation, groups, with_bias = case
    geo = conv2d_geometry((5, *xs[1:]), ws, stride, padding, dilation, groups)
    rows = max(geo.c * geo.taps, geo.oc)
    monkeypatch.setattr(algorithms, "per_image_min_p", lambda _dev: layout_min_p)
    monkeypatch.setattr(algorithms, "COLS_BUDGET", 2 * rows * geo.p * 4)

    def forward(g, _weight_grad):
        per_image = g.p >= layout_min_p
        if cols == "implicit" and not (g.pointwise and per_image):
            return _implicit(g, _weight_grad)
        return "pointwise" if g.pointwise and per_image else "columns_per_image" if per_image else "columns_batch"

    _force(monkeypatch, forward=forward, weight_grad="dw_columns")
    _run_case(dev, rng, ((5, *xs[1:]), ws, stride, padding, dilation, groups, with_bias))


# The direct convolution (B read from a zero-padded input copy, gemm_cpu_direct): output rows of 20 (blocks in
# two rows, across images), of 13 (blocks in three rows: the gathering path), stride 2 down the rows,
# dilation, asymmetric 'same' padding, one input channel with a 5x5 window (LeNet-5's conv1).
DIRECT_CASES = shapes(
    [((2, 3, 6, 20), (5, 3, 3, 3), 1, 1, 1, 1, True),
     ((2, 2, 7, 13), (4, 2, 3, 3), 1, 1, 1, 1, False),
     ((1, 2, 9, 16), (3, 2, 3, 3), (2, 1), 1, 1, 1, True),
     ((2, 2, 8, 18), (3, 2, 3, 3), 1, 2, 2, 1, True),
     ((2, 3, 6, 14), (4, 3, 4, 2), 1, "same", 1, 1, True),
     ((3, 1, 12, 12), (6, 1, 5, 5), 1, 2, 1, 1, True)],
    [((1, 2, 3, 20), (3, 2, 3, 3), 1, 1, 1, 1, True), ((2, 1, 2, 13), (2, 1, 3, 3), 1, 1, 1, 1, False),
     ((1, 1, 4, 14), (2, 1, 4, 2), (2, 1), "valid", (1, 2), 1, True)],
)


@cpu_kernels
@pytest.mark.parametrize("case", DIRECT_CASES, ids=_case_id)
def test_conv2d_direct(dev, rng, monkeypatch, case):
    """The direct forward and weight gradient, run on every device (the kernels are plain OpenCL), whichever
    path the device would choose."""
    calls = []
    for name in ("launch_conv_direct", "launch_conv_weight_direct"):
        real = getattr(direct, name)
        monkeypatch.setattr(direct, name,
                            lambda *a, _real=real, _name=name, **k: calls.append(_name) or _real(*a, **k))
    _force(monkeypatch, forward=lambda geo, _: "direct" if geo.groups == 1 and geo.stride[1] == 1 else None,
           weight_grad=lambda geo, _: "dw_direct" if geo.groups == 1 else None)
    _run_case(dev, rng, case)
    assert set(calls) == {"launch_conv_direct", "launch_conv_weight_direct"}, calls


@cpu_kernels
@pytest.mark.parametrize("case", shapes([CASES[4], CASES[7], CASES[16], CASES[19]], [REDUCED[3], REDUCED[13]]),
                         ids=_case_id)
def test_conv2d_direct_weight_gradient(dev, rng, monkeypatch, case):
    """The direct weight gradient at strides and dilations the direct forward does not take."""
    calls = []
    real = direct.launch_conv_weight_direct
    monkeypatch.setattr(direct, "launch_conv_weight_direct", lambda *a, **k: calls.append(1) or real(*a, **k))
    _force(monkeypatch, weight_grad=lambda geo, _: "dw_direct" if geo.groups == 1 else None)
    _run_case(dev, rng, case)
    assert calls


def test_direct_convolution_is_chosen_for_few_output_channels(dev):
    geo = conv2d_geometry((32, 64, 28, 28), (64, 64, 3, 3), 1, 1)
    assert (choose(dev, geo).forward == "direct") == (dev.flavour == "cpu")
    for other in (conv2d_geometry((32, 64, 28, 28), (256, 64, 3, 3), 1, 1),  # many output channels
                  conv2d_geometry((32, 64, 28, 28), (64, 64, 3, 3), 2, 1),   # stride 2 along rows
                  conv2d_geometry((32, 64, 7, 7), (64, 64, 3, 3), 1, 1),     # rows of 7 pixels
                  conv2d_geometry((32, 64, 28, 28), (64, 32, 3, 3), 1, 1, 1, 2)):  # groups
        assert choose(dev, other).forward != "direct"
    # the weight gradient reads any stride directly; groups and pointwise convolutions keep im2col
    assert (choose(dev, conv2d_geometry((32, 64, 28, 28), (64, 64, 3, 3), 2, 1)).weight_grad == "dw_direct") == \
        (dev.flavour == "cpu")
    assert choose(dev, conv2d_geometry((32, 64, 28, 28), (64, 32, 3, 3), 1, 1, 1, 2)).weight_grad != "dw_direct"
    assert choose(dev, conv2d_geometry((32, 64, 28, 28), (64, 64, 1, 1))).weight_grad != "dw_direct"


def _gemm_case(case) -> bool:
    return not conv2d_geometry(*case[:2], *case[2:6]).depthwise


@cpu_kernels
@pytest.mark.parametrize("case", shapes([c for c in CASES if _gemm_case(c)], REDUCED[1:4] + REDUCED[5:8]),
                         ids=_case_id)
def test_conv2d_forward_from_the_image(dev, rng, monkeypatch, case):
    # every GEMM geometry with the columns read from the image (on a CPU that is the default forward, and
    # it never unfolds); the backward then runs the im2col path
    xs, ws, stride, padding, dilation, groups, _ = case
    geo = conv2d_geometry(xs, ws, stride, padding, dilation, groups)
    forward = choose(dev, geo).forward
    if dev.flavour == "cpu":  # the columns come from the image unless the input already is the column matrix
        assert forward in ("direct", "implicit_per_image", "implicit_images") or (geo.pointwise and
                                                                                  forward == "pointwise")
    else:
        assert forward in ("pointwise", "columns_per_image", "columns_batch")
    _force(monkeypatch, forward=_implicit)

    def no_unfold(*args):
        raise AssertionError("the forward unfolded its input")

    with monkeypatch.context() as m:
        m.setattr(columns, "unfold", no_unfold)
        _run_case_forward_only(dev, rng, case)
    _run_case(dev, rng, case)


def _dx_conv_case(case) -> bool:
    xs, ws, stride, padding, dilation, groups, _ = case
    geo = conv2d_geometry(xs, ws, stride, padding, dilation, groups)
    return (not geo.depthwise and not geo.pointwise and geo.stride == (1, 1) and geo.dilation == (1, 1)
            and geo.groups == 1 and geo.oh == geo.h + 2 * geo.pad_t - geo.kh + 1
            and geo.ow == geo.w + 2 * geo.pad_l - geo.kw + 1 and geo.pad_t < geo.kh and geo.pad_l < geo.kw)


@cpu_kernels
@pytest.mark.parametrize("path", ["flipped-weights conv", "col2im"])
@pytest.mark.parametrize("case", shapes([c for c in CASES if _dx_conv_case(c)],
                                        [c for c in REDUCED if _dx_conv_case(c)]), ids=_case_id)
def test_input_gradient_both_ways(dev, rng, monkeypatch, case, path):
    # stride 1: dx as a convolution of dy with the flipped, transposed weights (the CPU default), and the
    # general GEMM + col2im; both against the reference
    calls = []
    real = function._flipped_conv_input_grad

    def input_grad(geo, weight_grad):
        if path != "col2im":
            return "flipped_conv"
        q = algorithms.Problem(dev.type, geo, weight_grad)
        return next(name for name, ok in algorithms.INPUT_GRAD if name != "flipped_conv" and ok(q))

    _force(monkeypatch, forward=_implicit, input_grad=input_grad)
    monkeypatch.setattr(function, "_flipped_conv_input_grad", lambda *a: calls.append(1) or real(*a))
    _run_case(dev, rng, case)
    assert bool(calls) == (path != "col2im")


def test_dx_by_convolution_only_where_exact(dev):
    cpu = algorithms.reads_image(dev)
    c = algorithms.FLIPPED_MIN_CHANNELS

    def flipped(geo):
        return choose(dev, geo).input_grad == "flipped_conv"

    same = conv2d_geometry((1, c, 6, 6), (3, c, 3, 3), 1, 1, 1, 1)
    assert flipped(same) == cpu
    few_channels = conv2d_geometry((1, c - 1, 6, 6), (3, c - 1, 3, 3), 1, 1, 1, 1)
    assert not flipped(few_channels)  # measured slower there
    for args in [(2, 1, 1, 1), (1, 1, 2, 1), (1, 0, 1, 2)]:  # stride 2, dilation 2, groups 2
        geo = conv2d_geometry((1, c, 6, 6), (4, c // args[3], 3, 3), *args)
        assert not flipped(geo)
    even_same = conv2d_geometry((1, c, 6, 6), (3, c, 4, 4), 1, "same", 1, 1)  # asymmetric padding
    assert not flipped(even_same)


def test_zero_batch(dev):
    x = hetero.tensor(np.zeros((0, 3, 5, 5), np.float32), dev, requires_grad=True)
    w = hetero.tensor(np.ones((4, 3, 3, 3), np.float32), dev, requires_grad=True)
    b = hetero.tensor(np.ones(4, np.float32), dev, requires_grad=True)
    y = conv2d(x, w, b, padding=1)
    assert y.shape == (0, 4, 5, 5)
    dx, dw, db = conv2d_backward(hetero.empty((0, 4, 5, 5), device=dev), x, w, padding=1)
    assert dx.shape == (0, 3, 5, 5)
    np.testing.assert_array_equal(dw.numpy(), 0.0)
    np.testing.assert_array_equal(db.numpy(), 0.0)


def test_needs_input_grad_skips_work(dev, rng):
    x = rng.standard_normal((2, 4, 6, 6)).astype(np.float32)
    w = rng.standard_normal((6, 2, 3, 3)).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    xt, wt = hetero.tensor(x, dev), hetero.tensor(w, dev, requires_grad=True)
    bt = hetero.tensor(b, dev)
    y = conv2d(xt, wt, bt, 1, 1, 1, 2)
    gy = rng.standard_normal(y.shape).astype(np.float32)
    y.backward(hetero.tensor(gy, dev))
    assert xt.grad is None and bt.grad is None
    assert_close(wt.grad, ref_backward(gy, x, w, 1, 1, 1, 2)[1], RTOL, ATOL, "weight grad")
    dx, dw, db = conv2d_backward(hetero.tensor(gy, dev), xt, wt, 1, 1, 1, 2, needs=(True, False, False))
    assert dw is None and db is None
    assert_close(dx, ref_backward(gy, x, w, 1, 1, 1, 2)[0], RTOL, ATOL, "input grad")


# --- (3) bad inputs ----------------------------------------------------------------------------------------

BAD = [
    ((2, 3, 8), (4, 3, 3, 3), None, {}, r"conv2d: input must be 4-D.*\(2, 3, 8\)"),
    ((2, 3, 8, 8), (4, 3, 3), None, {}, r"conv2d: weight must be 4-D.*\(4, 3, 3\)"),
    ((2, 3, 8, 8), (4, 5, 3, 3), None, {}, r"conv2d: input \(2, 3, 8, 8\) has 3 channels but weight "
                                          r"\(4, 5, 3, 3\) expects 5"),
    ((2, 3, 8, 8), (4, 1, 3, 3), None, {"groups": 2}, r"conv2d: input \(2, 3, 8, 8\) has 3 channels, not "
                                                      r"divisible by groups=2"),
    ((2, 4, 8, 8), (3, 2, 3, 3), None, {"groups": 2}, r"conv2d: weight \(3, 2, 3, 3\) has 3 output channels"),
    ((2, 4, 8, 8), (4, 4, 3, 3), None, {"groups": 0}, r"conv2d: groups must be a positive int"),
    ((2, 3, 8, 8), (4, 3, 3, 3), None, {"stride": 0}, r"conv2d: stride must be >= 1"),
    ((2, 3, 8, 8), (4, 3, 3, 3), None, {"stride": (1, 2, 3)}, r"conv2d: stride must be an int or a pair"),
    ((2, 3, 8, 8), (4, 3, 3, 3), None, {"dilation": (1, 0)}, r"conv2d: dilation must be >= 1"),
    ((2, 3, 8, 8), (4, 3, 3, 3), None, {"padding": -1}, r"conv2d: padding must be >= 0"),
    ((2, 3, 8, 8), (4, 3, 3, 3), None, {"padding": "full"}, r"conv2d: padding must be an int, a pair"),
    ((2, 3, 8, 8), (4, 3, 3, 3), None, {"padding": "same", "stride": 2}, r"conv2d: padding='same' needs stride 1"),
    ((2, 3, 2, 2), (4, 3, 3, 3), None, {}, r"conv2d: kernel \(3, 3\).*larger than the padded input \(2, 2\) "
                                           r"of input \(2, 3, 2, 2\)"),
    ((2, 3, 5, 5), (4, 3, 3, 3), None, {"dilation": 3}, r"conv2d: kernel \(3, 3\) with dilation \(3, 3\) spans "
                                                        r"\(7, 7\)"),
    ((2, 3, 8, 8), (4, 3, 3, 3), (5,), {}, r"conv2d: bias \(5,\) must have shape \(4,\)"),
]


@pytest.mark.parametrize("xs, ws, bs, kwargs, match", BAD)
def test_bad_shapes_raise(dev, xs, ws, bs, kwargs, match):
    x = hetero.zeros(xs, device=dev)
    w = hetero.zeros(ws, device=dev)
    b = None if bs is None else hetero.zeros(bs, device=dev)
    with pytest.raises(ValueError, match=match):
        conv2d(x, w, b, **kwargs)


def test_wrong_dtype_raises(dev):
    x = hetero.zeros((1, 3, 5, 5), np.int32, dev)
    w = hetero.zeros((2, 3, 3, 3), device=dev)
    with pytest.raises(ValueError, match=r"conv2d: input \(1, 3, 5, 5\) must be float32, got int32"):
        conv2d(x, w)
    with pytest.raises(ValueError, match=r"conv2d: bias \(2,\) must be float32"):
        conv2d(hetero.zeros((1, 3, 5, 5), device=dev), w, hetero.zeros((2,), np.int32, dev))


def test_different_devices_raise():
    devs = hetero.select_devices("all")
    if len(devs) < 2:
        try:
            devs = hetero.select_devices("cpu/2")  # two halves of a CPU are two devices
        except hetero.HeteroError:
            devs = []
    if len(devs) < 2:
        pytest.skip("needs two usable OpenCL devices (or a CPU device that can be split)")
    x = hetero.zeros((1, 3, 5, 5), device=devs[0])
    w = hetero.zeros((2, 3, 3, 3), device=devs[1])
    with pytest.raises(ValueError, match=r"conv2d: input \(1, 3, 5, 5\) is on device .* but weight"):
        conv2d(x, w)


def test_bad_grad_shape_raises(dev):
    x = hetero.zeros((1, 3, 5, 5), device=dev)
    w = hetero.zeros((2, 3, 3, 3), device=dev)
    with pytest.raises(ValueError, match=r"conv2d_backward: grad \(1, 2, 5, 5\) must be float32 of the output "
                                         r"shape \(1, 2, 3, 3\)"):
        conv2d_backward(hetero.zeros((1, 2, 5, 5), device=dev), x, w)


def test_depthwise_window_larger_than_the_reduction_group(dev, rng):
    # 11x11 = 121 taps > the weight-gradient kernel's 64-wide work-group: every tap still written
    case = shapes([((2, 3, 13, 13), (3, 1, 11, 11), 1, 2, 1, 3, True)], [((1, 2, 5, 5), (2, 1, 11, 11), 1, 5, 1, 2,
                                                                          True)])[0]
    assert conv2d_geometry(*case[:2], *case[2:6]).taps > REDUCE_WG
    _run_case(dev, rng, case)


# --- (4) within the devices' limits ----------------------------------------------------------------------------

# Depthwise windows from 3x3 to 13x13. The weight gradient's partial sums of 13x13 taps by 64 work-items would be
# 43 KiB of local memory, more than Intel and AMD (32 KiB) or NVIDIA (48) have: it reduces the taps in chunks of
# whole kernel rows that fit what the device has (under Oclgrind, 32 KiB: two chunks).
DEPTHWISE_WINDOWS = shapes(
    [((2, 3, 9, 9), (3, 1, 3, 3), 1, 1, 1, 3, True), ((2, 3, 11, 10), (6, 1, 5, 5), 1, 2, 1, 3, True),
     ((2, 4, 12, 12), (4, 1, 7, 7), 1, 3, 1, 4, False), ((2, 3, 16, 15), (3, 1, 13, 13), 1, 6, 1, 3, True)],
    [((1, 2, 5, 5), (2, 1, 3, 3), 1, 1, 1, 2, True), ((1, 2, 6, 6), (2, 1, 5, 5), 1, 2, 1, 2, False),
     ((1, 2, 7, 7), (2, 1, 7, 7), 1, 3, 1, 2, True), ((1, 2, 4, 5), (2, 1, 13, 13), 1, 6, 1, 2, True)],
)


@pytest.mark.parametrize("case", DEPTHWISE_WINDOWS, ids=_case_id)
def test_depthwise_windows(dev, rng, case):
    _run_case(dev, rng, case)
    defines, wg = depthwise.kernel_plan(dev, conv2d_geometry(*case[:2], *case[2:6]))
    assert 4 * wg * defines["CHUNK_TAPS"] <= algorithms.local_budget(dev.info.local_mem_bytes, dev.strict_limits)


@pytest.mark.parametrize("rows", [1, 4])
def test_depthwise_weight_gradient_in_chunks(dev, rng, monkeypatch, rows):
    """A 13x13 window's taps reduced `rows` kernel rows at a time, as on a device with little local memory: 13
    chunks, or 4 with a last one of one row."""
    budget = 4 * algorithms.DEPTHWISE_REDUCE_WG * 13 * rows
    monkeypatch.setattr(algorithms, "local_budget", lambda _local, _strict: budget)
    case = shapes([((2, 3, 16, 15), (6, 1, 13, 13), 1, 6, 1, 3, True)], [((1, 2, 4, 5), (2, 1, 13, 13), 1, 6, 1, 2,
                                                                          False)])[0]
    defines, _ = depthwise.kernel_plan(dev, conv2d_geometry(*case[:2], *case[2:6]))
    assert defines["CHUNK_TAPS"] == 13 * rows
    _run_case(dev, rng, case)


def test_depthwise_within_the_strict_limits(dev, rng, monkeypatch):
    """HETERO_STRICT_LIMITS=1: 32 KiB of local memory whatever the device has; Device.launch checks every launch."""
    monkeypatch.setattr(dev, "strict_limits", True)
    case = shapes([((2, 3, 16, 15), (3, 1, 13, 13), 1, 6, 1, 3, True)], [((1, 2, 4, 5), (2, 1, 13, 13), 1, 6, 1, 2,
                                                                          True)])[0]
    _run_case(dev, rng, case)
    defines, wg = depthwise.kernel_plan(dev, conv2d_geometry(*case[:2], *case[2:6]))
    assert 4 * wg * defines["CHUNK_TAPS"] <= 32 * 1024


@pytest.mark.parametrize("planes", shapes([70000], []))
def test_more_planes_than_a_grid_dimension_holds(dev, rng, monkeypatch, planes):
    """A depthwise 1x1 over 70000 channels: more planes and weight-gradient work-groups than the 65535 groups a
    GPU allows in grid dimensions 1 and 2, so the kernels run in launches of at most 65535 (strictly checked)."""
    monkeypatch.setattr(dev, "strict_limits", True)
    x, w, b, gy = (rng.standard_normal(s).astype(np.float32) for s in ((2, planes, 1, 1), (planes, 1, 1, 1),
                                                                       (planes,), (2, planes, 1, 1)))
    xt, wt = hetero.tensor(x, dev), hetero.tensor(w, dev)
    y = conv2d_forward(xt, wt, hetero.tensor(b, dev), 1, 0, 1, planes)
    assert_close(y, x * w.reshape(1, planes, 1, 1) + b.reshape(1, planes, 1, 1), RTOL, ATOL, "forward")
    dx, dw, db = conv2d_backward(hetero.tensor(gy, dev), xt, wt, 1, 0, 1, planes)
    assert_close(dx, gy * w.reshape(1, planes, 1, 1), RTOL, ATOL, "input grad")
    assert_close(dw, (gy * x).sum(axis=0).reshape(planes, 1, 1, 1), RTOL, ATOL, "weight grad")
    assert_close(db, gy.sum(axis=(0, 2, 3)), RTOL, ATOL, "bias grad")


@cpu_kernels
@pytest.mark.parametrize("case", shapes([((2, 33000, 1, 12), (2, 33000, 1, 3), 1, (0, 1), 1, 1, True)], []),
                         ids=_case_id)
def test_direct_convolution_with_more_planes_than_a_grid_dimension_holds(dev, rng, monkeypatch, case):
    """The direct convolution's padded copy of 2 x 33000 planes, strictly checked: channels and images in grid
    dimensions of their own."""
    monkeypatch.setattr(dev, "strict_limits", True)
    _force(monkeypatch, forward="direct")
    _run_case_forward_only(dev, rng, case)


def _count_launches(monkeypatch, dev) -> Counter:
    """The kernels dev launches from here on, by name."""
    counts: Counter = Counter()
    real = dev.launch

    def launch(kernel, *args):
        counts[kernel.function_name] += 1
        return real(kernel, *args)

    monkeypatch.setattr(dev, "launch", launch)
    return counts


# Work-items that loop long. Mesa's llvmpipe (rusticl) ends every loop of a work-item once it has run 65535 loop
# iterations in all, silently; an implicit-GEMM strip of 12 tile rows at k = 2304 (a 96-channel 3x3 convolution
# over 256 channels) came out wrong there (max error 4.1), and so did a single tile at k > 6553.
@cpu_kernels
@pytest.mark.parametrize("case", shapes([((2, 256, 12, 12), (96, 256, 3, 3), 1, 1, 1, 1, True)], []), ids=_case_id)
def test_implicit_gemm_strip_of_many_tile_rows(dev, rng, monkeypatch, case):
    m, k, n = 96, 256 * 9, 2 * 144
    assert gemm_config.gemm_config(dev, m, n, k, False, False, implicit_b=True)["strip"]
    assert gemm_cpu.strip_fits(m, k, gemm_config.CPU_MR)  # the strip really runs
    _force(monkeypatch, forward=_implicit, input_grad="flipped_conv")
    _run_case(dev, rng, case)


@cpu_kernels
@pytest.mark.parametrize("forward", ["implicit", "direct"])
@pytest.mark.parametrize("case", shapes([((1, 7300, 2, 12), (8, 7300, 3, 3), 1, 1, 1, 1, True)], []), ids=_case_id)
def test_tiles_summing_more_than_65535_steps(dev, rng, monkeypatch, case, forward):
    """k = 65700 column rows: the tile kernels sum them in slices, each within the loop budget."""
    counts = _count_launches(monkeypatch, dev)
    _force(monkeypatch, forward=_implicit if forward == "implicit" else "direct")
    _run_case_forward_only(dev, rng, case)
    assert counts["gemm_cpu" if forward == "implicit" else "gemm_cpu_direct"] >= 2


# With the loop budget lowered (and no allowance for the loops outside the sums), every path that splits its
# sums does so at small sizes: (case, forward, weight gradient, a kernel that must run more than once, budget).
SLICED = [
    pytest.param(((1, 30, 2, 2), (8, 30, 3, 3), 1, 1, 1, 1, True), _implicit, "dw_direct", "gemm_cpu", 200,
                 marks=cpu_kernels),
    pytest.param(((1, 30, 1, 12), (8, 30, 3, 3), 1, 1, 1, 1, True), "direct", "dw_direct", "gemm_cpu_direct", 200,
                 marks=cpu_kernels),
    pytest.param(((1, 1, 12, 12), (2, 1, 3, 3), 1, 1, 1, 1, False), "direct", "dw_direct", "gemm_cpu_dw_direct", 100,
                 marks=cpu_kernels),
    (((2, 2, 8, 8), (2, 1, 3, 3), 1, 1, 1, 2, True), None, None, "depthwise_bw_weight", 150),
]
BIAS_SLICED = (((1, 1, 190, 190), (2, 1, 1, 1), 1, 0, 1, 1, True), None, None, "bias_grad", 600)


@pytest.mark.parametrize("case, forward, weight_grad, sliced, budget", shapes(SLICED + [BIAS_SLICED], SLICED),
                         ids=lambda v: v if isinstance(v, str) else None)
def test_long_sums_run_in_slices(dev, rng, monkeypatch, case, forward, weight_grad, sliced, budget):
    monkeypatch.setattr(gemm_cpu, "MAX_LOOP_STEPS", budget)
    monkeypatch.setattr(gemm_cpu, "TILE_OVERHEAD_STEPS", 0)
    counts = _count_launches(monkeypatch, dev)
    _force(monkeypatch, forward=forward, weight_grad=weight_grad)
    _run_case(dev, rng, case)
    assert counts[sliced] >= 2, counts
