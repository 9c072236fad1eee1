"""launch_gemm / gemm: every kernel variant vs float64 numpy, with offsets, leading dimensions,
batch strides, transposes, beta and bias on either axis.

float32 tolerance: |error| <= 1e-5 + 1e-4 * max(1, max|expected|) (k is at most a few hundred).
"""

import numpy as np
import pytest

import hetero
from hetero.ops.conv2d.implicit import implicit_cols
from hetero.ops.gemm import Epilogue, Operand, Output, config, gemm, k_splits, launch, launch_gemm
from hetero.reference.conv2d import conv2d_backward as ref_conv_backward
from hetero.reference.conv2d import conv2d_forward as ref_conv_forward
from tests.helpers import assert_close, cpu_kernels, shapes

SENTINEL = 1234.5  # C elements outside the output window must keep this value

# (m, n, k): single elements, odd primes, exact and off-by-one tile multiples (MR=6, NR=16, TSM/TSN=32)
# Reduced (Oclgrind, a GPU-type device): m and n >= NR so the CPU kernel reads an operand in place when not
# forced to pack it (swapped too), and min(m, n) > 32 so "auto" runs a GPU tile wider than the problem.
SHAPES = shapes(
    [(1, 1, 1), (1, 7, 3), (5, 1, 9), (17, 33, 65), (6, 16, 8), (7, 17, 5), (12, 32, 33), (13, 100, 7),
     (100, 13, 129), (31, 37, 300), (64, 65, 16)],
    [(1, 1, 1), (17, 19, 5), (33, 35, 9)],
)
TRANS = [(False, False), (True, False), (False, True), (True, True)]
# Forced variants so every kernel runs on every device, whatever gemm_config picks there.
FORCED = {
    "naive": lambda dev, m, n, k, ta, tb: {"variant": "naive"},
    "cpu": lambda dev, m, n, k, ta, tb: {"variant": "cpu", "MR": 6, "NR": 16, "UNROLL": 4, "pack_a": ta},
    "cpu_direct": lambda dev, m, n, k, ta, tb: {"variant": "cpu", "MR": 6, "NR": 16, "UNROLL": 4, "pack_a": False,
                                                "pack_b": False},
    "cpu_swapped": lambda dev, m, n, k, ta, tb: {"variant": "cpu", "MR": 6, "NR": 16, "UNROLL": 4, "pack_a": False,
                                                 "pack_b": False, "swap": True},
    "cpu_strip": lambda dev, m, n, k, ta, tb: {"variant": "cpu", "MR": 6, "NR": 16, "UNROLL": 4, "pack_a": False,
                                               "strip": True, "swap": ta and tb, "local": 2},
    "cpu_wide": lambda dev, m, n, k, ta, tb: {"variant": "cpu", "MR": 8, "NR": 16, "UNROLL": 2, "PANELS": 2,
                                              "pack_a": ta, "band": 3},
    "cpu_wide_swapped": lambda dev, m, n, k, ta, tb: {"variant": "cpu", "MR": 8, "NR": 16, "UNROLL": 2, "PANELS": 2,
                                                      "pack_a": False, "pack_b": True, "swap": True},
    "cpu_strip_wide": lambda dev, m, n, k, ta, tb: {"variant": "cpu", "MR": 6, "NR": 16, "UNROLL": 4, "PANELS": 2,
                                                    "pack_a": False, "strip": True, "local": 2},
    "cpu_packed_a8": lambda dev, m, n, k, ta, tb: {"variant": "cpu", "MR": 4, "NR": 8, "UNROLL": 2, "pack_a": True,
                                                   "local": 3, "band": 2},
    # every row of the CPU tile table (config.CPU_TILES), whatever the device's registers pick
    # (B read in place where it needs no transposing)
    **{f"cpu_tile{width}": lambda dev, m, n, k, ta, tb, _t=tile: {
        "variant": "cpu", "MR": _t.mr, "NR": _t.nr, "UNROLL": config.CPU_UNROLL, "PANELS": _t.panels, "pack_a": ta,
        "pack_b": tb} for width, tile in config.CPU_TILES},
    **{f"cpu_tile{width}_strip": lambda dev, m, n, k, ta, tb, _t=tile: {
        "variant": "cpu", "MR": _t.mr, "NR": _t.nr, "UNROLL": config.CPU_UNROLL, "PANELS": _t.panels,
        "pack_a": False, "strip": True, "local": 2}
       for width, tile in config.CPU_TILES},
    "tiled": lambda dev, m, n, k, ta, tb: {"variant": "tiled", "TSM": 32, "TSN": 32, "TSK": 8, "WPTM": 4,
                                           "WPTN": 2},
    "xgemm": lambda dev, m, n, k, ta, tb: _xgemm(config.GPU_TABLE["generic"].large),
    "xgemm_small": lambda dev, m, n, k, ta, tb: _xgemm(config.GPU_TABLE["generic"].small),
}


def _xgemm(row: config.Xgemm) -> dict:
    return {"variant": "xgemm", **row.defines()}


def _table_rows() -> dict[config.Xgemm, str]:
    """Every distinct xgemm row of the table and its fallbacks, named after the (class.shape) entries that use it."""
    rows: dict[config.Xgemm, list[str]] = {}
    for cls in config.GPU_CLASSES:
        for shape in config.GPU_SHAPES:
            rows.setdefault(getattr(config.GPU_TABLE[cls], shape), []).append(f"{cls}.{shape}")
    for row in config.GPU_FALLBACK:
        rows.setdefault(row, []).append(f"fallback{row.threads}")
    return {row: "+".join(names) if len(names) < 3 else f"{names[0]}+{len(names) - 1}" for row, names in rows.items()}


TABLE_ROWS = _table_rows()
# Kernel paths the table does not use (yet): A or B read from global memory in the inner loop (SA / SB = 0),
# vectors of 8 and 2, KWG 8.
EXTRA_ROWS = {
    config.Xgemm(mwg=32, nwg=64, kwg=16, mdimc=4, ndimc=8, vwm=2, vwn=8, sa=0, sb=0): "sa0-sb0-vwn8",
    config.Xgemm(mwg=64, nwg=32, kwg=8, mdimc=8, ndimc=8, vwm=8, vwn=2, sa=1, sb=0): "sb0-vwm8",
    config.Xgemm(mwg=32, nwg=32, kwg=16, mdimc=8, ndimc=8, vwm=2, vwn=4, sa=0, sb=1): "sa0",
}
XGEMM_ROWS = shapes(list({**TABLE_ROWS, **EXTRA_ROWS}.items()),
                    [(config.GPU_TABLE["generic"].large, "generic.large"), (config.GPU_FALLBACK[2], "fallback32"),
                     *EXTRA_ROWS.items()])
# Edges of every tile in the table: 1 x 1, primes, exact tile multiples (16, 32, 64) and one past them, k
# shorter than, equal to and past KWG (8 .. 32), narrow sides on either operand.
XGEMM_SHAPES = shapes(
    [(1, 1, 1), (7, 17, 5), (17, 33, 65), (64, 64, 32), (65, 63, 33), (100, 13, 129), (13, 100, 7),
     (128, 64, 64), (31, 37, 300)],
    [(1, 1, 1), (17, 19, 5), (33, 35, 9)],
)


def _skip_tiled_if_refused(dev, variant: str, ta: bool, tb: bool, epi: tuple) -> None:
    """The previous GPU kernel (kept for comparisons) has no fallback: skip it where its build refuses its
    work-group (rusticl allows 32 work-items)."""
    if variant == "tiled":
        cfg = FORCED["tiled"](dev, 0, 0, 0, ta, tb)
        defines = {"TRANS_A": int(ta), "TRANS_B": int(tb), "BIAS": {None: 0, "m": 1, "n": 2}[epi[0]],
                   **{key: cfg[key] for key in ("TSM", "TSN", "TSK", "WPTM", "WPTN")}}
        items = cfg["TSM"] // cfg["WPTM"] * (cfg["TSN"] // cfg["WPTN"])
        if items > dev.local_size_limit("gemm.cl", "gemm_tiled", defines):
            pytest.skip(f"gemm_tiled's {items} work-items are more than its build allows on {dev.label}")


def _force(monkeypatch, variant: str) -> None:
    if variant != "auto":
        def forced(dev, m, n, k, ta, tb, implicit_b=False):
            return FORCED[variant](dev, m, n, k, ta, tb)

        monkeypatch.setattr(config, "gemm_config", forced)


def _operand(rng, rows: int, cols: int, ld: int, offset: int, batch: int = 1, stride: int = 0):
    """A flat buffer holding `batch` rows x cols matrices (leading dim ld, batch stride) after `offset`
    junk elements, and the matrices themselves."""
    stride = stride or rows * ld
    flat = rng.standard_normal(offset + (batch - 1) * stride + rows * ld).astype(np.float32)
    mats = [flat[offset + b * stride: offset + b * stride + rows * ld].reshape(rows, ld)[:, :cols]
            for b in range(batch)]
    return flat, np.stack(mats).astype(np.float64)


def _run(dev, rng, m, n, k, ta, tb, *, alpha=1.0, beta=0.0, bias_axis=None, batch=1, shared_a=False, shared_b=False):
    """Launch one GEMM on padded, offset buffers; check the result and that nothing else was written."""
    a_rows, a_cols = (k, m) if ta else (m, k)
    b_rows, b_cols = (n, k) if tb else (k, n)
    lda, ldb, ldc = a_cols + 3, b_cols + 1, n + 2
    a_off, b_off, c_off = 5, 2, 7
    a_flat, a_mats = _operand(rng, a_rows, a_cols, lda, a_off, 1 if shared_a else batch)
    b_flat, b_mats = _operand(rng, b_rows, b_cols, ldb, b_off, 1 if shared_b else batch)
    stride_c = m * ldc + 3
    c_flat = np.full(c_off + (batch - 1) * stride_c + m * ldc, SENTINEL, np.float32)
    c_init = rng.standard_normal((batch, m, n))
    window = [(c_off + bi * stride_c + i * ldc + np.arange(n)) for bi in range(batch) for i in range(m)]
    window = np.concatenate(window) if window else np.zeros(0, int)
    # beta == 0 must not read C: put NaN there so reading it would poison the result
    c_flat[window] = np.nan if beta == 0 else c_init.reshape(-1).astype(np.float32)
    bias_len = {None: 0, "m": m, "n": n}[bias_axis]
    bias_flat = rng.standard_normal(3 + bias_len).astype(np.float32)

    A, B, C = (hetero.tensor(x, device=dev) for x in (a_flat, b_flat, c_flat))
    bias = hetero.tensor(bias_flat, device=dev) if bias_axis else None
    launch_gemm(dev, m, n, k, Operand(A, a_off, lda, ta, 0 if shared_a else a_rows * lda),
                Operand(B, b_off, ldb, tb, 0 if shared_b else b_rows * ldb), Output(C, c_off, ldc, stride_c),
                Epilogue(alpha, beta, bias, 3 if bias_axis else 0, bias_axis), batch=batch)

    opa = np.swapaxes(a_mats, 1, 2) if ta else a_mats
    opb = np.swapaxes(b_mats, 1, 2) if tb else b_mats
    z = alpha * (opa @ opb)
    if beta != 0:
        z = z + beta * c_init.astype(np.float32).astype(np.float64)
    if bias_axis == "m":
        z = z + bias_flat[3:].astype(np.float64)[:, None]
    elif bias_axis == "n":
        z = z + bias_flat[3:].astype(np.float64)[None, :]
    expected = z
    out = C.numpy()
    what = f"gemm m={m} n={n} k={k} ta={ta} tb={tb} batch={batch} bias={bias_axis}"
    assert_close(out[window].reshape(batch, m, n), expected, what=what)
    untouched = np.ones(out.size, bool)
    untouched[window] = False
    assert np.all(out[untouched] == SENTINEL), f"{what}: wrote outside the C window"


# Epilogues: (bias axis, alpha, beta). beta == 0 cases also check that C (NaN there) is never read. A
# kernel build is one (variant flags, transposes, bias) combination and builds dominate a cold run, so each
# case below is one build where it can be: "auto" uses the epilogue of its transposes, and the forced
# variants it may pick use the same one.
E_NN = (None, 1.0, 0.0)
E_TN = ("n", 0.7, -0.5)
E_NT = ("m", 1.0, 0.0)
E_TT = ("n", 0.7, -0.5)
AUTO = {(False, False): E_NN, (True, False): E_TN, (False, True): E_NT, (True, True): E_TT}
# (variant, trans_a, trans_b, epilogue); comments give the CPU kernel's A_PACKED B_PACKED C_TRANS
CASES = [
    ("auto", False, False, E_NN), ("auto", True, False, E_TN), ("auto", False, True, E_NT),
    ("auto", True, True, E_TT),
    ("cpu", False, False, E_NN),                          # 0 1 0, B packed as stored
    ("cpu", False, True, E_NT),                           # 0 1 0, B packed transposed
    ("cpu", True, True, ("n", 0.7, -0.5)),                # 1 1 0, both packed transposed
    ("cpu_direct", False, False, E_NN),                   # 0 0 0
    ("cpu_direct", True, False, E_TN),                    # 1 0 0
    ("cpu_swapped", True, True, E_TT),                    # 0 0 1
    ("cpu_swapped", False, True, E_NT),                   # 0 1 1
    ("cpu_swapped", True, False, E_TN),                   # 1 0 1 (B read in place when m >= NR)
    ("cpu_strip", False, False, E_NN),                    # 0 1 0, B panels packed by the tile kernel
    ("cpu_strip", True, True, E_TT),                      # 0 1 1
    ("cpu_wide", False, False, E_NN),                     # 0 1 0, two 16-wide blocks per tile (PANELS 2)
    ("cpu_wide", True, False, E_TN),                      # 1 1 0, A packed transposed with MR 8
    ("cpu_wide", True, True, ("m", 0.7, -0.5)),           # 1 1 0
    ("cpu_wide_swapped", False, True, E_NT),              # 0 1 1, transposed stores of both blocks
    ("cpu_strip_wide", False, False, E_NN),               # 0 1 0, a strip packs two panels
    ("cpu_strip_wide", True, False, E_TN),
    ("cpu_packed_a8", False, False, ("m", 0.7, -0.5)),    # 1 1 0, A packed as stored, MR 4 NR 8
    *[(f"cpu_tile{width}", ta, tb, epi) for width, _ in config.CPU_TILES
      for ta, tb, epi in ((False, False, E_NN), (True, True, E_TT))],  # 0 0 0 and 1 1 0
    *[(f"cpu_tile{width}_strip", False, False, E_NN) for width, _ in config.CPU_TILES],  # 0 1 0
    ("tiled", False, False, ("n", 0.7, -0.5)),
    ("tiled", True, True, ("m", 1.0, 0.0)),
    ("tiled", True, False, E_TN), ("tiled", False, True, E_NT),
    ("xgemm", False, False, ("n", 0.7, -0.5)), ("xgemm", True, True, ("m", 1.0, 0.0)),
    ("xgemm", True, False, E_TN), ("xgemm", False, True, E_NT),
    ("xgemm_small", False, False, E_NN), ("xgemm_small", True, True, E_TT),
    ("naive", False, False, E_NN), ("naive", True, True, E_TT),
]
CASE_IDS = [f"{v}-{'t' if ta else 'n'}{'t' if tb else 'n'}" for v, ta, tb, _ in CASES]


def _marked(cases: list) -> list:
    """The cases, those of the CPU flavour's kernels marked cpu_kernels (tests/helpers.py)."""
    return [pytest.param(*c, marks=cpu_kernels) if c[0].startswith("cpu") else c for c in cases]


def _epilogue(epi: tuple) -> dict:
    bias_axis, alpha, beta = epi
    return {"bias_axis": bias_axis, "alpha": alpha, "beta": beta}


@pytest.mark.parametrize("variant,ta,tb,epi", _marked(CASES), ids=CASE_IDS)
@pytest.mark.parametrize("m,n,k", SHAPES)
def test_shapes_transposes_and_epilogues(dev, rng, monkeypatch, variant, ta, tb, epi, m, n, k):
    if variant == "naive" and m * n * k > 20000:
        pytest.skip("the naive kernel is checked on small shapes only")
    _skip_tiled_if_refused(dev, variant, ta, tb, epi)
    _force(monkeypatch, variant)
    _run(dev, rng, m, n, k, ta, tb, **_epilogue(epi))


@pytest.mark.parametrize("variant,ta,tb,epi", _marked([c for c in CASES if c[0] != "naive"]),
                         ids=[i for i in CASE_IDS if not i.startswith("naive")])
def test_batched_strides(dev, rng, monkeypatch, variant, ta, tb, epi):
    _skip_tiled_if_refused(dev, variant, ta, tb, epi)
    _force(monkeypatch, variant)
    epi = _epilogue(epi)
    # reduced: m * n * k > 4096 so "auto" runs the small GPU tile config on the simulator
    for m, n, k in shapes([(9, 20, 13), (33, 17, 40)], [(17, 20, 13)]):
        _run(dev, rng, m, n, k, ta, tb, batch=3, **epi)
        _run(dev, rng, m, n, k, ta, tb, batch=2, shared_a=True, **{**epi, "beta": 1.0})  # stride 0: one A
        _run(dev, rng, m, n, k, ta, tb, batch=2, shared_b=True, **epi)


# A's and B's loads do not depend on each other's transpose: nn and tt run every load path of a row (a build
# each, and builds dominate a cold run); the generic row runs all four.
XGEMM_CASES = [(row, ta, tb) for row, name in XGEMM_ROWS for ta, tb in TRANS
               if ta == tb or name == "generic.large"]
XGEMM_IDS = [f"{name}-{'t' if ta else 'n'}{'t' if tb else 'n'}" for row, name in XGEMM_ROWS for ta, tb in TRANS
             if ta == tb or name == "generic.large"]


@pytest.mark.parametrize("row,ta,tb", XGEMM_CASES, ids=XGEMM_IDS)
def test_xgemm_table_rows(dev, rng, monkeypatch, row, ta, tb):
    """Every xgemm configuration of the table (and the kernel paths it does not use) against numpy, forced on
    any device: edges, transposes, offsets and leading dimensions (_run), an epilogue and a batch. A row the
    device's build does not allow runs as the fallback the table gives for what it allows."""
    monkeypatch.setattr(config, "gemm_config", lambda *a, **kw: _xgemm(row))
    epi = _epilogue(AUTO[(ta, tb)])
    for m, n, k in XGEMM_SHAPES:
        _run(dev, rng, m, n, k, ta, tb, **epi)
    _run(dev, rng, 9, 20, 13, ta, tb, batch=2, **epi)


def _launches(monkeypatch) -> list:
    """(kernel name, local size, defines) of every gemm.cl launch from now on."""
    seen = []
    real = launch.run
    monkeypatch.setattr(launch, "run", lambda dev, name, defines, g, loc, *a: (seen.append((name, loc, defines)),
                                                                              real(dev, name, defines, g, loc, *a)))
    return seen


@pytest.mark.parametrize("allowed,expected", [(32, config.GPU_FALLBACK[2]), (16, config.GPU_FALLBACK[3]), (8, None)])
def test_xgemm_falls_back_to_what_the_build_allows(dev, rng, monkeypatch, allowed, expected):
    """A build that allows fewer work-items than its row needs (rusticl reports 32 for every kernel) runs the
    table's fallback for that limit, or the naive kernel with a local size within it."""
    monkeypatch.setattr(config, "gemm_config", lambda *a, **kw: _xgemm(config.GPU_TABLE["nvidia"].large))
    asked = []  # the builds whose work-group limit was asked
    monkeypatch.setattr(launch, "_allowed_items", lambda dev_, name, defines: asked.append(defines) or allowed)
    monkeypatch.setattr(launch, "_refused", {})  # what this device is taken to refuse, for this test only
    seen = _launches(monkeypatch)
    _run(dev, rng, 33, 70, 40, False, True, **_epilogue(E_NT))
    (name, local, defines), = seen
    assert local[0] * local[1] <= allowed
    if expected is None:
        assert name == "gemm_naive"
    else:
        assert name == "gemm_xgemm" and {k: defines[k] for k in expected.defines()} == expected.defines()
    # another row over the limit is not even built: the device refused as much before
    asked.clear()
    monkeypatch.setattr(config, "gemm_config", lambda *a, **kw: _xgemm(config.GPU_TABLE["generic"].large))
    _run(dev, rng, 33, 70, 40, False, True, **_epilogue(E_NT))
    assert seen[-1][0] == name and all(d["MDIMC"] * d["NDIMC"] <= allowed for d in asked if "MDIMC" in d)


@pytest.mark.parametrize("tiles,message", [
    ({"MWG": 64}, "NWG, KWG, MDIMC and NDIMC must be defined with MWG"),
    ({"MWG": 64, "NWG": 64, "KWG": 32, "MDIMC": 8, "NDIMC": 8}, "VWM, VWN, SA and SB must be defined with MWG"),
    ({**config.GPU_TABLE["generic"].large.defines(), "MDIMC": 32}, "MWG must be a multiple of MDIMC * VWM"),
    ({**config.GPU_TABLE["generic"].large.defines(), "KWG": 2}, "KWG must be a multiple"),
])
def test_xgemm_missing_or_bad_defines_fail_to_build(dev, tiles, message):
    from hetero.errors import BuildError

    with pytest.raises(BuildError) as e:
        dev.program("gemm.cl", {"TRANS_A": 0, "TRANS_B": 0, "BIAS": 0, **tiles})
    assert message in e.value.log


def _im2col(x: np.ndarray, geo) -> np.ndarray:
    """float64 column matrices [N, C*KH*KW, OH*OW] of x [N, C, H, W] (rows (c, kh, kw), zero padding)."""
    (sh, sw), (dh, dw) = geo.stride, geo.dilation
    cols = np.zeros((geo.n, geo.c, geo.kh, geo.kw, geo.oh, geo.ow))
    for u, v, i, j in np.ndindex(geo.kh, geo.kw, geo.oh, geo.ow):
        h, w = i * sh - geo.pad_t + u * dh, j * sw - geo.pad_l + v * dw
        if 0 <= h < geo.h and 0 <= w < geo.w:
            cols[:, :, u, v, i, j] = x[:, :, h, w]
    return cols.reshape(geo.n, geo.c * geo.taps, geo.p)


# Implicit B (a convolution's columns read from the image): (input, weight, stride, padding, dilation, groups)
IMPLICIT_CASES = shapes(
    [((3, 5, 9, 11), (7, 5, 3, 3), 1, 1, 1, 1),            # odd sizes, padding
     ((2, 4, 10, 9), (6, 2, 3, 2), (2, 1), (2, 0), (1, 2), 2),  # groups, stride, dilation, non-square
     ((2, 3, 13, 12), (20, 3, 1, 1), 2, 0, 1, 1),           # 1x1 with stride
     ((2, 6, 6, 6), (9, 6, 5, 5), 1, 2, 1, 1),              # k not a multiple of NR
     ((2, 3, 6, 20), (5, 3, 3, 3), 1, 1, 1, 1),             # rows of >= NR pixels: whole-vector taps
     ((2, 4, 6, 5), (3, 4, 3, 1), 1, (1, 0), 1, 1),         # output rows as wide as the image: runs span rows
     ((2, 2, 5, 40), (3, 2, 3, 3), 2, 1, 1, 1)],            # stride 2, rows of 20
    [((2, 3, 5, 6), (4, 3, 3, 3), 1, 1, 1, 1), ((2, 4, 5, 4), (4, 2, 2, 3), (2, 1), (1, 2), (2, 1), 2),
     ((1, 2, 3, 18), (3, 2, 3, 3), 1, 1, 1, 1), ((1, 2, 6, 5), (3, 2, 3, 1), 1, (1, 0), 1, 1),
     ((1, 2, 3, 40), (3, 2, 3, 3), 2, 1, 1, 1)],
)


# Under the simulator: one variant per kernel configuration ("auto": two-block tiles), the layouts conv2d uses.
@cpu_kernels
@pytest.mark.parametrize("variant", shapes(["auto", "cpu", "cpu_strip", "cpu_wide", "cpu_strip_wide", "cpu_packed_a8"],
                                           ["auto", "cpu_strip", "cpu_strip_wide", "cpu_packed_a8"]))
@pytest.mark.parametrize("layout", shapes(["per-image", "batch-major", "nchw"], ["per-image", "nchw"]))
@pytest.mark.parametrize("case", IMPLICIT_CASES, ids=lambda c: "x".join(map(str, c[0] + c[1])))
def test_implicit_b_reads_columns_from_the_image(dev, rng, monkeypatch, case, layout, variant):
    from hetero.ops.conv2d import conv2d_geometry

    xs, ws, stride, padding, dilation, groups = case
    geo = conv2d_geometry(xs, ws, stride, padding, dilation, groups)
    _force(monkeypatch, variant)
    x_off, c_off = 3, 2
    x = rng.standard_normal(xs).astype(np.float32)
    cols = _im2col(x.astype(np.float64), geo)  # [N, C*taps, P]
    kdim, hw = geo.icg * geo.taps, geo.h * geo.w
    xt = hetero.tensor(np.concatenate([np.full(x_off, np.nan, np.float32), x.reshape(-1)]), device=dev)
    for g in range(groups):
        a = rng.standard_normal((geo.ocg, kdim)).astype(np.float32)
        bias = rng.standard_normal(geo.ocg).astype(np.float32)
        g_cols = cols[:, g * kdim:(g + 1) * kdim]
        c_images, ldc = None, None
        if layout == "per-image":  # one GEMM per image: n = P, batch = N
            n, batch, stride_b = geo.p, geo.n, geo.c * hw
            expected = np.stack([a @ g_cols[i] for i in range(geo.n)])
        elif layout == "batch-major":  # one GEMM over all images: n = N * P, C is [ocg, N * P]
            n, batch, stride_b = geo.n * geo.p, 1, 0
            expected = (a @ np.concatenate(list(g_cols), axis=1))[None]
        else:  # one GEMM over all images stored per image (NCHW), images 3 floats further apart than needed
            n, batch, stride_b, ldc = geo.n * geo.p, 1, 0, geo.p
            c_images = (geo.p, geo.ocg * geo.p + 3)
            expected = np.stack([a @ g_cols[i] for i in range(geo.n)])
        expected = expected + bias[:, None]  # bias on m, as conv2d adds it
        size = c_off + (geo.n * c_images[1] if c_images else batch * geo.ocg * n)
        ct = hetero.tensor(np.full(size, SENTINEL, np.float32), device=dev)
        launch_gemm(dev, geo.ocg, n, kdim, Operand(hetero.tensor(a, device=dev), 0, kdim),
                    implicit_cols(geo, xt, x_off + g * geo.icg * hw, stride_b),
                    Output(ct, c_off, ldc or n, geo.ocg * n, c_images),
                    Epilogue(bias=hetero.tensor(bias, device=dev), bias_axis="m"), batch=batch)
        out = ct.numpy()
        assert np.all(out[:c_off] == SENTINEL)
        if c_images:
            per_image = out[c_off:].reshape(geo.n, c_images[1])
            assert np.all(per_image[:, geo.ocg * geo.p:] == SENTINEL), "written between images"
            got = per_image[:, :geo.ocg * geo.p]
        else:
            got = out[c_off:]
        assert_close(got.reshape(expected.shape), expected, what=f"implicit B ({layout}), group {g}")


# The direct convolution kernels (conv2d_direct.cl) on every row of the CPU tile table: channel counts no row's
# MR divides (13 and 7 output channels; 45 and 18 tap rows in the weight gradient), output pixels that fill no
# whole tile, a strided and dilated window. (input, weight, stride, padding, dilation)
DIRECT_TILE_CASES = shapes(
    [((2, 5, 9, 14), (13, 5, 3, 3), 1, 1, 1), ((2, 3, 11, 16), (7, 3, 3, 2), (2, 1), (1, 0), (2, 1))],
    [((1, 3, 4, 13), (7, 3, 3, 3), 1, 1, 1)],
)


@cpu_kernels
@pytest.mark.parametrize("width", [width for width, _ in config.CPU_TILES])
@pytest.mark.parametrize("case", DIRECT_TILE_CASES, ids=lambda c: "x".join(map(str, c[0] + c[1])))
def test_direct_convolution_on_every_table_tile(dev, rng, monkeypatch, case, width):
    from hetero.ops.conv2d import conv2d_geometry, direct

    tile = dict(config.CPU_TILES)[width]
    monkeypatch.setattr(config, "CPU_TILES", ((1, tile),))  # the one row, whatever the device's registers
    xs, ws, stride, padding, dilation = case
    geo = conv2d_geometry(xs, ws, stride, padding, dilation)
    cfg = config.gemm_config(dev, geo.oc, geo.n * geo.p, geo.c * geo.taps, False, False, implicit_b=True)
    assert (cfg["MR"], cfg["NR"], cfg["PANELS"]) == (tile.mr, tile.nr, tile.panels)
    x = rng.standard_normal(xs).astype(np.float32)
    w = (rng.standard_normal(ws) / np.sqrt(np.prod(ws[1:]))).astype(np.float32)
    b = rng.standard_normal(ws[0]).astype(np.float32)
    xt = hetero.tensor(x, device=dev)
    y = hetero.empty((geo.n, geo.oc, geo.oh, geo.ow), np.float32, dev)
    direct.forward(xt, hetero.tensor(w, device=dev), hetero.tensor(b, device=dev), geo, y)
    assert_close(y, ref_conv_forward(x, w, b, stride, padding, dilation), what=f"direct forward, tile {tile}")
    g = rng.standard_normal(y.shape).astype(np.float32)
    dw = hetero.empty(ws, np.float32, dev)
    direct.weight_grad(hetero.tensor(g, device=dev), xt, geo, dw)
    assert_close(dw, ref_conv_backward(g, x, w, stride, padding, dilation)[1], what=f"dw_direct, tile {tile}")


def test_image_split_c_needs_an_implicit_b_and_room(dev):
    from hetero.ops.conv2d import conv2d_geometry

    buf = hetero.tensor(np.zeros(256, np.float32), device=dev)
    implicit = implicit_cols(conv2d_geometry((2, 1, 4, 4), (3, 1, 3, 3), 1, 1), buf)
    a = Operand(buf, 0, 9)
    with pytest.raises(ValueError, match="needs an implicit B"):
        launch_gemm(dev, 3, 32, 9, a, Operand(buf, 0, 32), Output(buf, 0, 16, images=(16, 48)))
    with pytest.raises(ValueError, match="image stride"):  # 3 rows of 16 pixels do not fit in 40 floats
        launch_gemm(dev, 3, 32, 9, a, implicit, Output(buf, 0, 16, images=(16, 40)))
    with pytest.raises(ValueError, match="image stride"):  # ldc below the pixels per image
        launch_gemm(dev, 3, 32, 9, a, implicit, Output(buf, 0, 8, images=(16, 48)))


@pytest.mark.parametrize("ta,tb", TRANS, ids=["nn", "tn", "nt", "tt"])
@pytest.mark.parametrize("m,n,k,splits",
                         shapes([(6, 25, 512, 32), (16, 9, 510, 3), (6, 25, 515, 4), (40, 70, 2053, 8)],
                                [(6, 25, 512, 32), (16, 9, 48, 3), (6, 25, 43, 4)]))
def test_split_k(dev, rng, monkeypatch, ta, tb, m, n, k, splits):
    """A GEMM run as k slices of k // splits side by side (batch entries with strided A and B), the rest of k
    as one more, then summed; the split is forced so that every device, the simulator too, runs it, with
    whichever kernel the device's table gives the slices."""
    monkeypatch.setattr(config, "k_splits", lambda dev, m_, n_, k_: splits)
    sums = []
    real_sum = launch.launch_sum_rows
    monkeypatch.setattr(launch, "launch_sum_rows", lambda dev, rows, *a: sums.append(rows) or real_sum(dev, rows, *a))
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(np.float32)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(np.float32)
    c = hetero.tensor(np.full(m * n + 4, SENTINEL, np.float32), device=dev)
    launch_gemm(dev, m, n, k, Operand(hetero.tensor(a, device=dev), 0, a.shape[1], ta),
                Operand(hetero.tensor(b, device=dev), 0, b.shape[1], tb), Output(c, 2, n), Epilogue(alpha=0.5))
    expected = 0.5 * ((a.T if ta else a).astype(np.float64) @ (b.T if tb else b).astype(np.float64))
    out = c.numpy()
    assert np.all(out[:2] == SENTINEL) and np.all(out[-2:] == SENTINEL)
    assert_close(out[2:-2].reshape(m, n), expected, what=f"split-k gemm {m}x{n}x{k}")
    assert sums == [splits + (k % splits > 0)]


def test_when_k_is_split(dev, monkeypatch):
    """Only thin GEMMs with a long k (equal slices on CPUs, any on GPUs); beta, a bias or a strided C keep the
    GEMM in one piece (they apply to the whole sum). The slice counts follow the device's tile and compute
    units: tests/unit/test_gemm_config.py has them for fake devices."""
    if dev.flavour == "cpu":
        tile = config.cpu_tile(dev)
        for m, n, k in ((6, 25, 50176), (2 * tile.mr, tile.columns, 6400)):  # LeNet-5's conv1 dW; two tiles
            splits = k_splits(dev, m, n, k)
            assert splits > 1 and k % splits == 0
        assert k_splits(dev, 6, 25, 2053) == 1  # prime: no equal slices
        assert k_splits(dev, 64, 128 * dev.info.compute_units, 8192) == 1  # enough tiles to keep the cores busy
    else:
        assert k_splits(dev, 6, 25, 50176) > 1
        assert k_splits(dev, 6, 25, 2053) > 1  # prime: the rest is one more slice
        assert k_splits(dev, 4096, 4096, 8192) == 1  # enough tiles to keep the device busy
    assert k_splits(dev, 6, 25, 1024) == 1  # k too short
    monkeypatch.setattr(config, "k_splits", lambda *a: 4)
    sums = []
    monkeypatch.setattr(launch, "launch_sum_rows", lambda *a: sums.append(a))
    a, b = hetero.zeros((6 * 64,), device=dev), hetero.zeros((64 * 25,), device=dev)
    c, bias = hetero.zeros((6 * 26,), device=dev), hetero.zeros((25,), device=dev)
    for epi in (Epilogue(beta=1.0), Epilogue(bias=bias, bias_axis="n")):
        launch_gemm(dev, 6, 25, 64, Operand(a, 0, 64), Operand(b, 0, 25), Output(c, 0, 25), epi)
    launch_gemm(dev, 6, 25, 64, Operand(a, 0, 64), Operand(b, 0, 25), Output(c, 0, 26))
    assert sums == []


def test_k_zero_gives_epilogue_of_zero(dev, rng):
    _run(dev, rng, 5, 6, 0, False, False, **{**_epilogue(E_NN), "beta": 0.5})


def test_tensor_gemm(dev, rng):
    # small enough for the naive kernel on the CPU, with the epilogues of its builds above
    a = rng.standard_normal((9, 7)).astype(np.float32)
    b = rng.standard_normal((7, 11)).astype(np.float32)
    A, B = hetero.tensor(a, device=dev), hetero.tensor(b, device=dev)
    out = gemm(A, B)
    assert out.shape == (9, 11)
    assert_close(out, a.astype(np.float64) @ b, what="gemm a @ b")
    c = rng.standard_normal((7, 9)).astype(np.float32)
    bias = rng.standard_normal(11).astype(np.float32)
    out = gemm(hetero.tensor(c, device=dev), hetero.tensor(b.T.copy(), device=dev), trans_a=True, trans_b=True,
               bias=hetero.tensor(bias, device=dev))
    assert out.shape == (9, 11)
    assert_close(out, c.T.astype(np.float64) @ b + bias, what="gemm c^T @ b + bias")


def test_tensor_gemm_bad_inputs(dev):
    a = hetero.zeros((3, 4), device=dev)
    with pytest.raises(ValueError, match="gemm"):
        gemm(a, hetero.zeros((5, 2), device=dev))  # inner dims 4 vs 5
    with pytest.raises(ValueError, match="2-D"):
        gemm(hetero.zeros((2, 3, 4), device=dev), a)
    with pytest.raises(ValueError, match="float32"):
        gemm(a, hetero.zeros((4, 2), np.int32, device=dev))
    with pytest.raises(ValueError, match="bias"):
        gemm(a, hetero.zeros((4, 2), device=dev), bias=hetero.zeros((3,), device=dev))


def test_launch_gemm_bad_arguments(dev):
    buf = hetero.zeros((64,), device=dev)
    op4 = Operand(buf, 0, 4)
    with pytest.raises(ValueError, match="leading"):
        launch_gemm(dev, 4, 4, 4, Operand(buf, 0, 3), op4, Output(buf, 0, 4))
    with pytest.raises(ValueError, match="bias_axis"):
        launch_gemm(dev, 4, 4, 4, op4, op4, Output(buf, 0, 4), Epilogue(bias=buf, bias_axis="k"))
    with pytest.raises(ValueError, match="out of range"):
        launch_gemm(dev, 4, 4, 4, Operand(buf, -1, 4), op4, Output(buf, 0, 4))
