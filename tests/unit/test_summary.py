"""hetero.summary: per-layer shapes, parameters and FLOPs, totals, and the planned training-step memory."""

import numpy as np
import pytest

import hetero
from hetero.models import lenet5, mobilenet_v1
from hetero.summary import summary


def test_lenet5_rows_and_totals(dev, capsys):
    model = lenet5(device=dev)
    before = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    s = hetero.summary(model, (1, 28, 28), name="lenet5")
    printed = capsys.readouterr().out
    assert "lenet5, input 1x1x28x28" in printed and "61,706" in printed
    convs = [r for r in s.rows if r.kind == "Conv2d"]
    assert [r.output_shape for r in convs] == [(1, 6, 28, 28), (1, 16, 10, 10)]
    assert convs[0].params == 6 * 25 + 6
    assert convs[0].flops == 2 * 6 * 28 * 28 * 25 + 6 * 28 * 28  # multiply-adds plus the bias
    fcs = [r for r in s.rows if r.kind == "Linear"]
    assert [r.output_shape for r in fcs] == [(1, 120), (1, 84), (1, 10)]
    assert fcs[0].flops == 2 * 400 * 120 + 120
    assert s.total_params == s.trainable_params == 61_706 == sum(r.params for r in s.rows)
    assert s.param_bytes == 4 * 61_706
    assert s.forward_flops == sum(r.flops for r in s.rows)
    assert s.activation_bytes == sum(4 * int(np.prod(r.output_shape)) for r in s.rows)
    # params + grads + momentum at least; the packed intermediates on top
    assert s.train_step_bytes is not None and s.train_step_bytes >= 3 * s.param_bytes
    after = {k: v.numpy() for k, v in model.state_dict().items()}
    assert all(np.array_equal(before[k], after[k]) for k in before)  # the traced step left no trace
    assert model.training
    assert all(not m._forward_hooks for m in model.modules())


def test_batch_norm_model_trains_at_batch_two(dev):
    s = summary(mobilenet_v1(num_classes=10, in_channels=1, width_mult=0.25, device=dev), (1, 1, 28, 28),
                print_out=False)
    assert s.train_batch_size == 2 and s.train_step_bytes > 0
    assert any(r.kind == "BatchNorm2d" for r in s.rows)
    assert s.buffer_bytes > 0  # running statistics


def test_eval_mode_skips_the_training_step(dev):
    s = summary(lenet5(device=dev).eval(), (2, 1, 28, 28), print_out=False)
    assert s.train_step_bytes is None and "eval mode" in s.train_step_note
    assert s.rows[-1].output_shape == (2, 10)


@pytest.mark.parametrize("shape", [(28, 28), (1, 0, 28, 28), (1, 1, 1, 28, 28)])
def test_bad_input_shape(dev, shape):
    with pytest.raises(ValueError, match="input_shape"):
        summary(lenet5(device=dev), shape, print_out=False)


def test_forward_hook_replaces_output_and_removes(dev):
    model = lenet5(device=dev)
    seen = []
    with model.classifier[-1].register_forward_hook(lambda m, a, o: seen.append(o.shape)):
        model(hetero.zeros((3, 1, 28, 28), device=dev))
    model(hetero.zeros((3, 1, 28, 28), device=dev))
    assert seen == [(3, 10)]


def test_conv_rows_show_the_chosen_algorithms(dev, capsys):
    from hetero.ops.conv2d import choose, conv2d_geometry

    s = hetero.summary(lenet5(device=dev), (4, 1, 28, 28), train_step=False, name="lenet5")
    printed = capsys.readouterr().out
    assert "conv algorithms: forward / input grad / weight grad" in printed
    convs = [r for r in s.rows if r.kind == "Conv2d"]
    expected = [choose(dev, conv2d_geometry((4, 1, 28, 28), (6, 1, 5, 5), 1, 2)),
                choose(dev, conv2d_geometry((4, 6, 14, 14), (16, 6, 5, 5)))]
    assert [r.algorithms for r in convs] == expected
    for algos in expected:
        assert " / ".join(algos) in printed
    if dev.flavour == "cpu":
        assert convs[0].algorithms == ("direct", "col2im_batch", "dw_direct")
    assert all(r.algorithms is None for r in s.rows if r.kind != "Conv2d")
