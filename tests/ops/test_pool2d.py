"""max / avg / adaptive avg pooling: the reference against hand values and finite differences, then device
forward and backward against the reference (float32 tolerance: assert_close's rtol 1e-4, atol 1e-5)."""

import numpy as np
import pytest

import hetero
from hetero.limits import LaunchLimitError
from hetero.ops.pool2d import adaptive_avg_pool2d, avg_pool2d, max_pool2d
from hetero.reference import pool2d as ref
from tests.helpers import assert_close, numeric_grad, oclgrind, shapes

# (input shape, kernel_size, stride, padding, dilation, ceil_mode)
MAX_CASES = shapes(
    [((2, 3, 9, 11), 3, 2, 1, 1, False),         # overlapping windows (stride < kernel) with padding
     ((1, 1, 1, 1), 1, None, 0, 1, False),       # 1x1 spatial, batch 1
     ((1, 4, 7, 7), 2, None, 0, 1, False),       # odd size: the last row/column is dropped
     ((3, 2, 8, 5), (3, 2), (1, 3), (1, 0), 1, False),
     ((2, 5, 10, 10), 2, 3, 0, 1, False),        # stride > kernel: some pixels are in no window
     ((1, 3, 13, 17), 3, 2, 0, 1, True),         # ceil_mode adds a clipped last window
     ((2, 2, 5, 5), 3, 3, 1, 1, True),           # ceil_mode whose extra window would start in the pad
     ((2, 2, 9, 9), 3, 1, 1, 2, False),          # dilation
     ((2, 3, 6, 6), (1, 3), 1, (0, 1), 1, False),
     ((1, 2, 5, 5), 5, 1, 2, 1, False),          # window as large as the input, full padding
     ((3, 8, 8), 2, None, 0, 1, False)],         # unbatched (C, H, W)
    # reduced: still every window define value of the full list (kernel 1-5, stride 1-3, padding 0-2, dilation 2)
    [((1, 2, 5, 6), 3, 2, 1, 1, False), ((2, 1, 4, 4), 2, None, 0, 1, True),
     ((1, 2, 5, 5), 5, 1, 2, 1, False), ((1, 2, 8, 9), (1, 2), 3, 0, 2, False), ((1, 1, 1, 1), 1, None, 0, 1, False)],
)

# (input shape, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)
AVG_CASES = shapes(
    [((2, 3, 9, 11), 3, 2, 1, False, True, None),
     ((2, 3, 9, 11), 3, 2, 1, False, False, None),
     ((1, 1, 1, 1), 1, None, 0, False, True, None),
     ((1, 4, 7, 7), 2, None, 0, False, True, None),
     ((3, 2, 8, 5), (3, 2), (1, 3), (1, 0), False, False, None),
     ((2, 5, 10, 10), 2, 3, 0, False, True, None),
     ((1, 3, 13, 17), 3, 2, 1, True, True, None),   # ceil_mode: the last window is cut at H + pad
     ((1, 3, 13, 17), 3, 2, 1, True, False, None),
     ((2, 2, 5, 5), 3, 3, 1, True, True, None),
     ((2, 3, 6, 7), 3, 1, 1, False, True, 4),       # divisor_override
     ((3, 8, 8), 2, None, 0, False, True, None)],
    [((1, 2, 5, 6), 3, 2, 1, False, False, None), ((2, 1, 5, 5), 2, 2, 1, True, True, None)],
)

# (input shape, output_size)
ADAPTIVE_CASES = shapes(
    [((2, 3, 9, 11), 1),              # global average of small planes: a work-item each
     ((1, 64, 7, 7), (1, 1)),
     ((2, 3, 17, 19), 1),             # H * W = 323: a work-group each, strided partial sums
     ((1, 1, 1, 1), 1),
     ((2, 3, 9, 11), (4, 5)),         # bins of unequal size that overlap
     ((2, 3, 9, 11), (13, 3)),        # more output rows than input rows
     ((1, 2, 6, 10), (None, 3)),      # None keeps that input size
     ((2, 5, 7, 7), 7),               # identity
     ((1, 1, 1, 1), (2, 3)),
     ((4, 6, 5), (2, 2))],            # unbatched
    [((1, 2, 5, 6), 1), ((1, 1, 17, 16), 1), ((1, 2, 5, 6), (2, 4))],
)


def _distinct(rng, shape) -> np.ndarray:
    """Values at least 0.5 apart, so no window has a tie and finite differences see one argmax."""
    n = int(np.prod(shape))
    return (rng.permutation(n).reshape(shape) * 0.5 - n / 4).astype(np.float64)


def _as4d(shape):
    return shape if len(shape) == 4 else (1,) + shape


def _small(shape):
    """One sample of two planes: enough for finite differences of the window geometry, and fast."""
    return (1, min(shape[-3], 2)) + tuple(shape[-2:])


# ---------------------------------------------------------------- the reference itself

def test_reference_hand_values():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    out, idx = ref.max_pool2d(x, 2)
    assert np.array_equal(out[0, 0], [[5, 7], [13, 15]]) and np.array_equal(idx[0, 0], [[5, 7], [13, 15]])
    assert np.array_equal(ref.avg_pool2d(x, 2)[0, 0], [[2.5, 4.5], [10.5, 12.5]])
    # padded 3x3 average at the corner: 4 real pixels, divided by 9 (count_include_pad) or by 4
    assert ref.avg_pool2d(x, 3, 1, 1)[0, 0, 0, 0] == pytest.approx((0 + 1 + 4 + 5) / 9)
    assert ref.avg_pool2d(x, 3, 1, 1, count_include_pad=False)[0, 0, 0, 0] == pytest.approx(2.5)
    # adaptive 4 -> 3: bins [0, 2), [1, 3), [2, 4)
    a = ref.adaptive_avg_pool2d(x, (3, 1))[0, 0, :, 0]
    assert np.allclose(a, [x[0, 0, 0:2].mean(), x[0, 0, 1:3].mean(), x[0, 0, 2:4].mean()])
    # ties: the first maximum in scan order wins
    _, idx = ref.max_pool2d(np.ones((1, 1, 3, 3)), 2, 1)
    assert np.array_equal(idx[0, 0], [[0, 1], [3, 4]])


@pytest.mark.parametrize("size,k,s,p,ceil,expected", [
    (5, 2, 2, 0, False, 2), (5, 2, 2, 0, True, 3), (6, 3, 2, 1, False, 3), (6, 3, 2, 1, True, 4),
    (5, 3, 3, 1, True, 2),  # ceil would give 3, but that window would start in the right padding
    (4, 2, 2, 1, True, 3), (1, 1, 1, 0, False, 1), (7, 7, 1, 3, False, 7),
])
def test_reference_output_size_matches_torch_formula(size, k, s, p, ceil, expected):
    assert ref.output_size(size, k, s, p, 1, ceil) == expected


@pytest.mark.parametrize("case", MAX_CASES[:6] + MAX_CASES[7:8])
def test_max_reference_gradient_matches_finite_differences(case, rng):
    shape, k, s, p, d, ceil = case
    x = _distinct(rng, _small(shape))
    out, idx = ref.max_pool2d(x, k, s, p, d, ceil)
    w = rng.standard_normal(out.shape)
    num = numeric_grad(lambda v: (ref.max_pool2d(v, k, s, p, d, ceil)[0] * w).sum(), x)
    assert np.allclose(ref.max_pool2d_backward(w, idx, x.shape), num, atol=1e-6)


@pytest.mark.parametrize("case", AVG_CASES[:3] + AVG_CASES[4:5] + AVG_CASES[6:10])
def test_avg_reference_gradient_matches_finite_differences(case, rng):
    shape, k, s, p, ceil, cip, div = case
    x = rng.standard_normal(_small(shape))
    args = (k, s, p, ceil, cip, div)
    w = rng.standard_normal(ref.avg_pool2d(x, *args).shape)
    num = numeric_grad(lambda v: (ref.avg_pool2d(v, *args) * w).sum(), x)
    assert np.allclose(ref.avg_pool2d_backward(w, x.shape, *args), num, atol=1e-6)


@pytest.mark.parametrize("shape,osize", [((2, 3, 5, 7), 1), ((1, 2, 9, 11), (4, 5)), ((1, 2, 3, 4), (7, 2))])
def test_adaptive_reference_gradient_matches_finite_differences(shape, osize, rng):
    x = rng.standard_normal(shape)
    w = rng.standard_normal(ref.adaptive_avg_pool2d(x, osize).shape)
    num = numeric_grad(lambda v: (ref.adaptive_avg_pool2d(v, osize) * w).sum(), x)
    assert np.allclose(ref.adaptive_avg_pool2d_backward(w, x.shape), num, atol=1e-6)


# ---------------------------------------------------------------- device vs reference

def _run(dev, fn, x: np.ndarray, g_seed, **kwargs):
    """Forward on the device with grad, backward with a random gradient; returns (out, grad_out, x.grad)."""
    X = hetero.tensor(x, device=dev, requires_grad=True)
    out = fn(X, **kwargs)
    g = np.random.default_rng(g_seed).standard_normal(out.shape).astype(np.float32)
    out.backward(hetero.tensor(g, device=dev))
    return out, g, X.grad


@pytest.mark.parametrize("case", MAX_CASES)
def test_max_pool2d_matches_reference(dev, case, rng):
    shape, k, s, p, d, ceil = case
    x = rng.standard_normal(shape).astype(np.float32)
    out, g, gx = _run(dev, max_pool2d, x, 1, kernel_size=k, stride=s, padding=p, dilation=d, ceil_mode=ceil)
    r_out, r_idx = ref.max_pool2d(x.reshape(_as4d(shape)), k, s, p, d, ceil)
    assert_close(out, r_out.reshape(out.shape), what=f"max_pool2d forward {case}")
    r_gx = ref.max_pool2d_backward(g.reshape(r_out.shape), r_idx, _as4d(shape)).reshape(shape)
    assert_close(gx, r_gx, what=f"max_pool2d backward {case}")
    _, idx = max_pool2d(hetero.tensor(x, device=dev), k, s, p, d, ceil, return_indices=True)
    assert idx.dtype == np.int32 and np.array_equal(idx.numpy(), r_idx.reshape(idx.shape))


def test_max_pool2d_ties_route_gradient_to_first_maximum(dev, rng):
    x = rng.integers(0, 3, (2, 3, 8, 9)).astype(np.float32)  # many ties inside every window
    x[1, 2] = 0.0  # a plane of equal values
    for k, s, p in ((3, 1, 1), (2, 2, 0), (3, 2, 1)):
        out, g, gx = _run(dev, max_pool2d, x, 2, kernel_size=k, stride=s, padding=p)
        r_out, r_idx = ref.max_pool2d(x, k, s, p)
        assert np.array_equal(out.numpy(), r_out)
        assert_close(gx, ref.max_pool2d_backward(g, r_idx, x.shape), what=f"ties k={k} s={s} p={p}")


@pytest.mark.skipif(oclgrind(), reason="400k work-items take long under the simulator")
def test_max_pool2d_over_65535_planes_within_strict_limits(dev, monkeypatch, rng):
    """GPUs may allow only 65535 work-groups in dim 2, where the planes run: under the strict limits they go
    several to a group (65538 = 2 x 32769: two per group), with the same values."""
    monkeypatch.setattr(dev, "strict_limits", True)
    x = rng.standard_normal((2, 32769, 2, 3)).astype(np.float32)
    for k, s, p in ((2, 2, 0), (3, 1, 1)):  # scattered and gathered gradients
        out, g, gx = _run(dev, max_pool2d, x, 3, kernel_size=k, stride=s, padding=p)
        r_out, r_idx = ref.max_pool2d(x, k, s, p)
        assert np.array_equal(out.numpy(), r_out.astype(np.float32))
        assert_close(gx, ref.max_pool2d_backward(g, r_idx, x.shape), what=f"65538 planes k={k} s={s} p={p}")
    with pytest.raises(LaunchLimitError, match="max_pool2d_forward.*\n.*\n  - 65537 work-items .*in dim 2 > 65535"):
        max_pool2d(hetero.zeros((1, 65537, 2, 2), device=dev), 2)  # a prime count of planes: no divisor helps


def test_max_pool2d_propagates_nan(dev):
    x = np.zeros((1, 1, 4, 4), np.float32)
    x[0, 0, 0, 1] = x[0, 0, 1, 0] = np.nan  # as torch's CPU kernel, the last NaN in scan order is the argmax
    out, idx = max_pool2d(hetero.tensor(x, device=dev), 2, return_indices=True)
    out = out.numpy()
    assert np.isnan(out[0, 0, 0, 0]) and np.array_equal(out[0, 0, 1], [0, 0]) and out[0, 0, 0, 1] == 0
    r_idx = ref.max_pool2d(x, 2)[1]
    assert idx.numpy()[0, 0, 0, 0] == r_idx[0, 0, 0, 0] == 4


def test_max_pool2d_without_grad_returns_plain_output(dev, rng):
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    out = max_pool2d(hetero.tensor(x, device=dev), 2)
    assert isinstance(out, hetero.Tensor) and not out.requires_grad
    assert_close(out, ref.max_pool2d(x, 2)[0], what="max_pool2d inference")


@pytest.mark.parametrize("case", AVG_CASES)
def test_avg_pool2d_matches_reference(dev, case, rng):
    shape, k, s, p, ceil, cip, div = case
    x = rng.standard_normal(shape).astype(np.float32)
    out, g, gx = _run(dev, avg_pool2d, x, 3, kernel_size=k, stride=s, padding=p, ceil_mode=ceil,
                      count_include_pad=cip, divisor_override=div)
    args = (k, s, p, ceil, cip, div)
    r_out = ref.avg_pool2d(x.reshape(_as4d(shape)), *args)
    assert_close(out, r_out.reshape(out.shape), what=f"avg_pool2d forward {case}")
    r_gx = ref.avg_pool2d_backward(g.reshape(r_out.shape), _as4d(shape), *args).reshape(shape)
    assert_close(gx, r_gx, what=f"avg_pool2d backward {case}")


@pytest.mark.parametrize("case", ADAPTIVE_CASES)
def test_adaptive_avg_pool2d_matches_reference(dev, case, rng):
    shape, osize = case
    x = rng.standard_normal(shape).astype(np.float32)
    h, w = shape[-2:]
    if isinstance(osize, tuple):
        osize_ref = (h if osize[0] is None else osize[0], w if osize[1] is None else osize[1])
    else:
        osize_ref = osize
    out, g, gx = _run(dev, adaptive_avg_pool2d, x, 4, output_size=osize)
    r_out = ref.adaptive_avg_pool2d(x.reshape(_as4d(shape)), osize_ref)
    assert_close(out, r_out.reshape(out.shape), what=f"adaptive_avg_pool2d forward {case}")
    r_gx = ref.adaptive_avg_pool2d_backward(g.reshape(r_out.shape), _as4d(shape)).reshape(shape)
    assert_close(gx, r_gx, what=f"adaptive_avg_pool2d backward {case}")


def test_pooled_gradients_accumulate_through_two_uses(dev, rng):
    x = rng.standard_normal((1, 2, 6, 6)).astype(np.float32)
    X = hetero.tensor(x, device=dev, requires_grad=True)
    y = avg_pool2d(X, 2) + adaptive_avg_pool2d(X, (3, 3))  # same bins: the gradient doubles
    y.backward(hetero.ones(y.shape, device=dev))
    assert_close(X.grad, np.full(x.shape, 0.5), what="two pooled uses")


# ---------------------------------------------------------------- validation

def test_bad_inputs_raise_value_error(dev):
    x = hetero.zeros((2, 3, 6, 6), device=dev)
    with pytest.raises(ValueError, match=r"max_pool2d: input \(6, 6\) must be 3-D"):
        max_pool2d(hetero.zeros((6, 6), device=dev), 2)
    with pytest.raises(ValueError, match=r"avg_pool2d: input \(2, 3, 6, 6\) must be float32"):
        avg_pool2d(hetero.tensor(np.zeros((2, 3, 6, 6), np.int32), device=dev), 2)
    with pytest.raises(ValueError, match="max_pool2d: kernel_size .* must be positive"):
        max_pool2d(x, 0)
    with pytest.raises(ValueError, match="avg_pool2d: kernel_size .* stride .* must be positive"):
        avg_pool2d(x, 2, stride=(1, -1))
    with pytest.raises(ValueError, match=r"max_pool2d: padding \(2, 2\) must be .* at most half"):
        max_pool2d(x, 3, padding=2)
    with pytest.raises(ValueError, match="avg_pool2d: padding .* must be non-negative"):
        avg_pool2d(x, 3, padding=-1)
    with pytest.raises(ValueError, match=r"max_pool2d: kernel_size \(7, 7\) .* larger than the padded input"):
        max_pool2d(x, 7)
    with pytest.raises(ValueError, match="max_pool2d: .* larger than the padded input"):
        max_pool2d(x, 3, dilation=3)
    with pytest.raises(ValueError, match="max_pool2d: kernel_size must be an int or a pair"):
        max_pool2d(x, (2, 2, 2))
    with pytest.raises(ValueError, match="avg_pool2d: divisor_override must be a positive int"):
        avg_pool2d(x, 2, divisor_override=0)
    with pytest.raises(ValueError, match=r"adaptive_avg_pool2d: output_size \(0, 2\)"):
        adaptive_avg_pool2d(x, (0, 2))
    with pytest.raises(ValueError, match="adaptive_avg_pool2d: output_size must be an int or a pair"):
        adaptive_avg_pool2d(x, (1, 2, 3))
    with pytest.raises(ValueError, match="adaptive_avg_pool2d: input must be a hetero Tensor"):
        adaptive_avg_pool2d(np.zeros((1, 1, 2, 2), np.float32), 1)


@pytest.mark.parametrize("kernel, stride, padding", [(2, 2, 0), (3, 1, 1), (3, 2, 1)])
def test_max_pool2d_nan_and_inf_match_torch(dev, rng, kernel, stride, padding):
    """NaN wins a window (forward and where the gradient goes), as torch's CPU kernel, for both backward paths."""
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((2, 2, 6, 6)).astype(np.float32)
    x[0, 0, 1, 1] = x[1, 1, 4, 4] = x[1, 1, 4, 5] = np.nan
    x[0, 1, 2, 3], x[1, 0, 0, 0] = np.inf, -np.inf
    x[1, 0, 2:4, 2:4] = -np.inf  # a window of only -inf
    t = hetero.tensor(x, device=dev, requires_grad=True)
    out = max_pool2d(t, kernel, stride, padding)
    g = rng.standard_normal(out.shape).astype(np.float32)
    out.backward(hetero.tensor(g, device=dev))
    tx = torch.tensor(x, requires_grad=True)
    tout = torch.nn.functional.max_pool2d(tx, kernel, stride, padding)
    tout.backward(torch.tensor(g))
    np.testing.assert_array_equal(out.numpy(), tout.detach().numpy())  # assert_array_equal treats NaN == NaN
    np.testing.assert_allclose(t.grad.numpy(), tx.grad.numpy(), rtol=1e-6, atol=1e-6)
