"""hetero.ops.conv2d.algorithms: which algorithm each pass of a convolution runs, asked of the table without a
device (a fake CPU and a fake GPU are their type strings or a traits object), and of a real device."""

from types import SimpleNamespace

import pytest

from hetero.ops.conv2d import Algorithms, choose, conv2d_geometry
from hetero.ops.conv2d import algorithms as table

N = 32
# (what, (input, weight, stride, padding, dilation, groups), CPU choice, GPU choice)
CASES = [
    ("lenet5 conv1", ((N, 1, 28, 28), (6, 1, 5, 5), 1, 2, 1, 1),
     ("direct", "col2im_batch", "dw_direct"), ("columns_per_image", "col2im_batch", "dw_columns")),
    ("lenet5 conv2", ((N, 6, 14, 14), (16, 6, 5, 5), 1, 0, 1, 1),
     ("implicit_images", "col2im_batch", "dw_direct"), ("columns_per_image", "col2im_batch", "dw_columns")),
    ("resnet18 3x3 64 @28", ((N, 64, 28, 28), (64, 64, 3, 3), 1, 1, 1, 1),
     ("direct", "flipped_conv", "dw_direct"), ("columns_per_image", "col2im_batch", "dw_columns")),
    ("resnet18 3x3 128 @14", ((N, 128, 14, 14), (128, 128, 3, 3), 1, 1, 1, 1),
     ("direct", "flipped_conv", "dw_direct"), ("columns_per_image", "col2im_batch", "dw_columns")),
    ("resnet18 3x3 256 @7", ((N, 256, 7, 7), (256, 256, 3, 3), 1, 1, 1, 1),
     ("implicit_images", "flipped_conv", "dw_direct"), ("columns_batch", "col2im_batch", "dw_columns")),
    ("resnet18 3x3 512 @4", ((N, 512, 4, 4), (512, 512, 3, 3), 1, 1, 1, 1),
     ("implicit_images", "flipped_conv", "dw_direct"), ("columns_batch", "col2im_batch", "dw_columns")),
    ("resnet18 3x3 64->128 stride 2", ((N, 64, 28, 28), (128, 64, 3, 3), 2, 1, 1, 1),
     ("implicit_images", "col2im_batch", "dw_direct"), ("columns_per_image", "col2im_batch", "dw_columns")),
    ("resnet18 3x3 128->256 stride 2", ((N, 128, 14, 14), (256, 128, 3, 3), 2, 1, 1, 1),
     ("implicit_images", "col2im_batch", "dw_direct"), ("columns_batch", "col2im_batch", "dw_columns")),
    ("resnet18 3x3 256->512 stride 2", ((N, 256, 7, 7), (512, 256, 3, 3), 2, 1, 1, 1),
     ("implicit_images", "col2im_batch", "dw_direct"), ("columns_batch", "col2im_batch", "dw_columns")),
    ("resnet18 1x1 downsample stride 2", ((N, 64, 28, 28), (128, 64, 1, 1), 2, 0, 1, 1),
     ("implicit_images", "col2im_batch", "dw_direct"), ("columns_per_image", "col2im_batch", "dw_columns")),
    ("3x3 256 @8: whole tiles per image", ((N, 256, 8, 8), (256, 256, 3, 3), 1, 1, 1, 1),
     ("implicit_per_image", "flipped_conv", "dw_direct"), ("columns_per_image", "col2im_batch", "dw_columns")),
    ("1x1 pointwise", ((N, 64, 14, 14), (128, 64, 1, 1), 1, 0, 1, 1),
     ("pointwise", "col2im_batch", "dw_columns"), ("pointwise", "col2im_batch", "dw_columns")),
    ("1x1 pointwise, 2x2 pixels", ((N, 64, 2, 2), (128, 64, 1, 1), 1, 0, 1, 1),
     ("implicit_images", "col2im_batch", "dw_columns"), ("columns_batch", "col2im_batch", "dw_columns")),
    ("grouped", ((N, 64, 14, 14), (128, 32, 3, 3), 1, 1, 1, 2),
     ("implicit_images", "col2im_batch", "dw_columns"), ("columns_per_image", "col2im_batch", "dw_columns")),
    ("depthwise", ((N, 32, 14, 14), (32, 1, 3, 3), 1, 1, 1, 32),
     ("depthwise",) * 3, ("depthwise",) * 3),
    ("depthwise, multiplier 2, stride 2", ((N, 32, 14, 14), (64, 1, 3, 3), 2, 1, 1, 32),
     ("depthwise",) * 3, ("depthwise",) * 3),
    ("dilated", ((N, 16, 28, 28), (32, 16, 3, 3), 1, 2, 2, 1),
     ("direct", "col2im_batch", "dw_direct"), ("columns_per_image", "col2im_batch", "dw_columns")),
    ("padded copy past int32", ((4096, 64, 128, 128), (64, 64, 3, 3), 1, 1, 1, 1),
     ("implicit_per_image", "flipped_conv", "dw_columns"), ("columns_per_image", "col2im_batch", "dw_columns")),
]
IDS = [c[0] for c in CASES]


@pytest.mark.parametrize("what, args, cpu, gpu", CASES, ids=IDS)
def test_choose_on_a_fake_cpu_and_gpu(what, args, cpu, gpu):
    geo = conv2d_geometry(*args)
    assert choose("cpu", geo) == Algorithms(*cpu), what
    assert choose("gpu", geo) == Algorithms(*gpu), what
    assert choose(SimpleNamespace(type="cpu"), geo) == Algorithms(*cpu)  # a traits object
    assert choose(SimpleNamespace(type="accelerator"), geo) == Algorithms(*gpu)  # any non-CPU is GPU-like


def test_the_padded_copy_bound():
    huge = conv2d_geometry(*CASES[-1][1])
    assert huge.padded_size() > 2**31 and not table.padded_copy_fits(table.Problem("cpu", huge))
    assert table.padded_copy_fits(table.Problem("cpu", conv2d_geometry(*CASES[2][1])))


def test_input_gradient_without_the_weight_gradient_runs_per_image():
    """Without dW (which shares its batch-major dY) the dx GEMM takes the per-image layout where P allows."""
    lenet_conv2 = conv2d_geometry(*CASES[1][1])
    pointwise = conv2d_geometry(*CASES[11][1])
    small = conv2d_geometry(*CASES[12][1])
    for device in ("cpu", "gpu"):
        assert choose(device, lenet_conv2, weight_grad=False).input_grad == "col2im_per_image"
        assert choose(device, pointwise, weight_grad=False).input_grad == "pointwise"
        assert choose(device, small, weight_grad=False).input_grad == "col2im_batch"
    resnet = conv2d_geometry(*CASES[2][1])
    assert choose("cpu", resnet, weight_grad=False).input_grad == "flipped_conv"


def test_flipped_conv_only_where_exact_and_worth_it():
    c = table.FLIPPED_MIN_CHANNELS
    assert choose("cpu", conv2d_geometry((1, c, 6, 6), (3, c, 3, 3), 1, 1)).input_grad == "flipped_conv"
    assert choose("cpu", conv2d_geometry((1, c - 1, 6, 6), (3, c - 1, 3, 3), 1, 1)).input_grad != "flipped_conv"
    even_same = conv2d_geometry((1, c, 6, 6), (3, c, 4, 4), 1, "same")  # asymmetric padding
    assert choose("cpu", even_same).input_grad != "flipped_conv"


def test_direct_thresholds():
    def fwd(xs, ws, *args):
        return choose("cpu", conv2d_geometry(xs, ws, *args)).forward

    ch, ow = table.DIRECT_MAX_CHANNELS, table.DIRECT_MIN_OW
    assert fwd((N, 64, 28, ow), (ch, 64, 3, 3), 1, 1) == "direct"
    assert fwd((N, 64, 28, ow), (ch + 1, 64, 3, 3), 1, 1) != "direct"  # many output channels
    assert fwd((N, 64, 28, ow - 1), (ch, 64, 3, 3), 1, 1) != "direct"  # short output rows
    assert fwd((N, 64, 28, 28), (64, 64, 3, 3), (2, 1), 1) == "direct"  # stride down the rows only
    # a small window: direct only with very few output channels
    assert fwd((N, 1, 28, 28), (table.DIRECT_FEW_CHANNELS, 1, 5, 5), 1, 2) == "direct"
    assert fwd((N, 1, 28, 28), (table.DIRECT_FEW_CHANNELS + 1, 1, 5, 5), 1, 2) != "direct"


def test_every_table_ends_with_an_algorithm_that_always_applies():
    for entries in (table.FORWARD, table.INPUT_GRAD, table.WEIGHT_GRAD):
        names = [name for name, _ in entries]
        assert len(names) == len(set(names))
        assert entries[-1][1] is table.always


def test_choose_takes_a_real_device(dev):
    for _, args, _, _ in CASES:
        geo = conv2d_geometry(*args)
        assert choose(dev, geo) == choose(dev.flavour, geo)


KIB = 1024


def test_depthwise_weight_gradient_chunks_fit_the_local_memory():
    """Whole kernel rows of taps whose partial sums (4 bytes x 64 work-items each) fit: 13x13 needs 43 KiB at once."""
    assert table.depthwise_chunk_taps(32 * KIB, 64, 13, 13) == 9 * 13  # Intel, AMD: 29.25 KiB at a time
    assert table.depthwise_chunk_taps(48 * KIB, 64, 13, 13) == 13 * 13  # NVIDIA: all of it
    assert table.depthwise_chunk_taps(48 * KIB, 64, 14, 14) == 13 * 14
    assert table.depthwise_chunk_taps(32 * KIB, 64, 12, 12) == 10 * 12
    assert table.depthwise_chunk_taps(32 * KIB, 32, 13, 13) == 13 * 13  # a narrower group (rusticl's 32)
    for k in (3, 5, 7, 11):
        assert table.depthwise_chunk_taps(32 * KIB, 64, k, k) == k * k
    assert table.depthwise_chunk_taps(2 << 20, 64, 13, 13) == 169  # PoCL's 2 MiB


def test_the_local_budget_and_the_group_width():
    assert table.local_budget(2 << 20, strict=False) == 2 << 20
    assert table.local_budget(2 << 20, strict=True) == 32 * KIB
    assert table.local_budget(16 * KIB, strict=True) == 16 * KIB
    assert table.depthwise_reduce_wg(32 * KIB, 13) == table.DEPTHWISE_REDUCE_WG
    assert table.depthwise_reduce_wg(32 * KIB, 200) == 32  # one row of 200 taps by 64 work-items: 50 KiB
    with pytest.raises(ValueError, match="kernel row of 30 taps"):
        table.depthwise_reduce_wg(100, 30)


def _slice_steps(q0: int, q1: int, p: int, wg: int, per_pixel: int, overhead: int) -> int:
    """The most loop iterations a work-item of depthwise_bw_weight / bias_grad runs over [q0, q1), nothing unrolled."""
    steps = overhead
    for n in range(q0 // p, (q1 - 1) // p + 1):
        count = min(q1, (n + 1) * p) - max(q0, n * p)
        steps += 1 + -(-count // wg) * per_pixel
    return steps


@pytest.mark.parametrize("total, p, wg, per_pixel, overhead", [
    (32 * 112 * 112, 112 * 112, 64, 13, 346),  # MobileNet's 3x3 depthwise at 112x112, batch 32
    (128 * 9, 9, 32, 127, 1400),  # 13x13 taps in chunks of 9 rows, tiny images
    (7 * 1000003, 1000003, 64, 1, 64),  # bias gradient over large images
    (5, 1, 64, 1, 64),
])
def test_pixel_slices_keep_each_work_item_within_the_loop_budget(total, p, wg, per_pixel, overhead):
    from hetero.ops.conv2d.kernels import pixel_slices
    from hetero.ops.gemm.cpu import MAX_LOOP_STEPS

    slices = pixel_slices(total, p, wg, per_pixel, overhead)
    assert slices[0][0] == 0 and slices[-1][1] == total
    assert all(a[1] == b[0] for a, b in zip(slices, slices[1:]))  # contiguous
    assert all(_slice_steps(q0, q1, p, wg, per_pixel, overhead) <= MAX_LOOP_STEPS for q0, q1 in slices)
    assert pixel_slices(0, p, wg, per_pixel, overhead) == [(0, 0)]  # no images: one launch still writes dW


def test_tile_kernels_sum_within_the_loop_budget():
    from hetero.ops.gemm import cpu

    assert cpu.k_slice(2304, 9) == 2304
    ks = cpu.k_slice(7300 * 9, 9)
    assert ks % 9 == 0 and ks + cpu.TILE_OVERHEAD_STEPS <= cpu.MAX_LOOP_STEPS < ks + 9 + cpu.TILE_OVERHEAD_STEPS
    assert cpu.strip_fits(96, 2304, 8)  # 12 tile rows at k = 2304: lost most of its sums on llvmpipe before
    assert not cpu.strip_fits(128, 4096, 8)  # 16 tile rows at k = 4096: packed, then gemm_cpu
