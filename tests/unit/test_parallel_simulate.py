"""hetero.parallel.simulate: the modelled data-parallel step (hand-computed cases), the scenarios and the CLI."""

import pytest

from hetero.parallel.balance import Balancer
from hetero.parallel.simulate import (
    MODELS,
    SCENARIOS,
    Device,
    Link,
    Model,
    Scenario,
    format_table,
    main,
    simulate,
    step_seconds,
)

RESNET = MODELS["resnet18"]
G = 4 * 11_172_810  # resnet18's float32 gradient, bytes


def _conv(h, cin, cout, k, stride, pad):
    out = (h + 2 * pad - k) // stride + 1
    return out, out * out * cout * cin * k * k


def test_model_constants_match_the_layer_shapes():
    h, a = _conv(28, 1, 6, 5, 1, 2)
    _, b = _conv(h // 2, 6, 16, 5, 1, 0)
    lenet_macs = a + b + 400 * 120 + 120 * 84 + 84 * 10
    lenet_params = (6 * 25 + 6) + (16 * 150 + 16) + (400 * 120 + 120) + (120 * 84 + 84) + (84 * 10 + 10)
    assert MODELS["lenet5"].train_flops == 6 * lenet_macs and MODELS["lenet5"].parameters == lenet_params == 61_706
    h, macs = _conv(28, 1, 64, 3, 1, 1)
    params, cin = 64 * 9 + 2 * 64, 64  # stem conv and its batch norm
    for planes, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        for block in range(2):
            s = stride if block == 0 else 1
            h2, m1 = _conv(h, cin, planes, 3, s, 1)
            _, m2 = _conv(h2, planes, planes, 3, 1, 1)
            macs += m1 + m2
            params += 9 * cin * planes + 9 * planes * planes + 4 * planes
            if s != 1 or cin != planes:
                macs += _conv(h, cin, planes, 1, s, 0)[1]
                params += cin * planes + 2 * planes
            h, cin = h2, planes
    macs += 512 * 10
    params += 512 * 10 + 10
    assert RESNET.train_flops == 6 * macs and RESNET.parameters == params == 11_172_810
    assert RESNET.gradient_bytes == G


def test_step_seconds_by_hand():
    model = Model("m", parameters=250, train_flops=1e9, batch=4)  # 1000 gradient bytes, 1 GFLOP an image
    sc = Scenario("t", "two workers", (Device("a", 3.0, 0, Link(1000.0, 0.5)), Device("b", 1.0, 0, Link(500.0, 0.0))),
                  sum_bandwidth=1000.0)
    # compute 1 s each; uploads end at 1 + 1.5 and 1 + 2; summing two gradients 2 s; the slower download 2 s
    assert step_seconds(sc, model, [3, 1]) == pytest.approx((1.0, 3.0 + 2.0 + 2.0))
    # overlap 1: uploads start when 1/3 of each backward (2/3 s) is left, at 1/3 s
    assert step_seconds(sc, model, [3, 1], overlap=1.0) == pytest.approx((1.0, 1 / 3 + 2.0 + 2.0 + 2.0))
    # an upload shorter than the backward it hides under still ends with the backward
    fast = Scenario("f", "", (Device("a", 1.0, 0, Link(1e6, 0.0)),), sum_bandwidth=1e6)
    assert step_seconds(fast, model, [3], overlap=1.0) == pytest.approx((3.0, 3.0 + 1e-3 + 1e-3))
    two = Scenario("h", "two hosts", (Device("a", 3.0, 0, Link(1000.0, 0.5)), Device("b", 1.0, 1, Link(500.0, 0.0))),
                   inter_host=Link(1000.0, 0.25), sum_bandwidth=1000.0)
    # each host sums one gradient (1 s) after its upload; the ring of 2 hosts: 1000 B / 1000 B/s + 2 x 0.25 s
    assert step_seconds(two, model, [3, 1]) == pytest.approx((1.0, 3.0 + 1.0 + 1.5 + 2.0))
    with pytest.raises(ValueError, match="simulate: scenario 'n' spans 2 hosts but has no inter_host link"):
        step_seconds(Scenario("n", "", two.devices), model, [3, 1])


def test_the_split_is_the_balancers():
    for row in simulate():
        speeds = [d.gflops for d in SCENARIOS[row.scenario].devices]
        assert row.proportional == tuple(Balancer(len(speeds), weights=speeds).split(row.batch))
        assert row.equal == tuple(Balancer(len(speeds), mode="equal").split(row.batch))
        assert sum(row.proportional) == sum(row.equal) == row.batch
        assert row.devices == tuple(d.name for d in SCENARIOS[row.scenario].devices)


def test_laptop_proportional_beats_equal_by_the_cpus_shard():
    (row,) = simulate("cpu+igpu+dgpu", "resnet18", 128)
    assert row.proportional == (3, 18, 107) and row.equal == (43, 43, 42)
    # equal: the CPU's 43 images (100 GFLOP/s) decide; then its memcpy upload, 3 sums, the PCIe 4.0 x8 download
    cpu = 43 * RESNET.train_flops / 100e9
    assert row.compute_equal == pytest.approx(cpu)
    assert row.step_equal == pytest.approx(cpu + 5e-6 + G / 20e9 + 3 * G / 4e9 + 10e-6 + G / 12e9)
    # proportional: the compute is near the ideal batch / total speed
    ideal = 128 * RESNET.train_flops / 3600e9
    assert ideal <= row.compute_proportional < 1.02 * ideal
    assert row.speedup == pytest.approx(row.step_equal / row.step_proportional)
    assert row.speedup > 8.5
    assert row.fastest_alone == pytest.approx(128 * RESNET.train_flops / 3000e9)


def test_two_hosts_proportional_beats_equal_by_the_slow_gpus_images():
    (row,) = simulate("8gpu-2hosts", "resnet18", 128)
    assert row.proportional == (23,) * 4 + (9,) * 4 and row.equal == (16,) * 8
    # the slow GPUs finish last either way, so the reduction is the same and the margin is their 7 images fewer
    assert row.step_equal - row.step_proportional == pytest.approx((16 - 9) * RESNET.train_flops / 3200e9)
    ring = G / 2.8e9 + 2 * 25e-6
    upload = 10e-6 + G / 12e9
    slow, fast = 9 * RESNET.train_flops / 3200e9, 23 * RESNET.train_flops / 8000e9
    assert row.compute_proportional == pytest.approx(fast)  # the fast GPUs compute longest, the slow send longest
    assert row.step_proportional == pytest.approx(slow + upload + 4 * G / 4e9 + ring + upload)
    assert row.speedup > 1.05
    (lenet,) = simulate("8gpu-2hosts", "lenet5", 64)
    assert lenet.step_proportional < lenet.step_equal


def test_equal_halves_gain_nothing_from_proportional_shares():
    for row in simulate("cpu/2"):
        assert row.proportional == row.equal == (row.batch // 2,) * 2
        assert row.step_proportional == row.step_equal and row.speedup == 1.0


def test_options_change_the_step():
    (base,) = simulate("8gpu-2hosts", "resnet18", 256)
    (fast_sum,) = simulate("8gpu-2hosts", "resnet18", 256, sum_bandwidth=40e9)
    (overlapped,) = simulate("8gpu-2hosts", "resnet18", 256, overlap=1.0)
    assert base.step_proportional - fast_sum.step_proportional == pytest.approx(4 * G / 4e9 - 4 * G / 40e9)
    assert overlapped.step_proportional < base.step_proportional
    (coarse,) = simulate("8gpu-2hosts", "resnet18", 256, granularity=16)
    assert all(n % 16 == 0 for n in coarse.proportional[1:])


def test_defaults_cover_every_scenario_and_model():
    rows = simulate()
    assert [(r.scenario, r.model) for r in rows] == [(s, m) for s in SCENARIOS for m in MODELS]
    assert all(r.batch == MODELS[r.model].batch for r in rows)


@pytest.mark.parametrize("kwargs, match", [
    ({"scenario": "mainframe"}, "simulate: unknown scenario 'mainframe'; choose from cpu\\+igpu\\+dgpu, 8gpu-2hosts"),
    ({"model": ["lenet5", "vgg"]}, "simulate: unknown model 'vgg'; choose from lenet5, resnet18"),
    ({"batch": 0}, "simulate: batch must be a positive int, got 0"),
    ({"overlap": 1.5}, r"simulate: overlap .* must be in \[0, 1\], got 1.5"),
    ({"sum_bandwidth": 0}, "simulate: sum_bandwidth must be > 0 bytes/s, got 0"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        simulate(**kwargs)


def test_format_table():
    rows = simulate()
    text = format_table(rows)
    lines = text.splitlines()
    assert len(lines) == 2 + len(rows)
    assert lines[0].split("|")[1:4] == [" scenario      ", " model    ", " batch "]  # padded to the widest cell
    assert set(lines[1]) <= set("|-: ")
    for name in SCENARIOS:
        assert any(line.startswith(f"| {name} ") for line in lines[2:])
    assert "fast gpu 23 (x4), slow gpu 9 (x4)" in text
    assert "cpu 3, igpu 18, dgpu 107" in text
    plain = format_table(rows, markdown=False)
    assert "|" not in plain and len(plain.splitlines()) == 2 + len(rows)


def test_main_prints_the_table(capsys):
    assert main(["--markdown"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 2 + len(SCENARIOS) * len(MODELS)
    assert all(name in out for name in SCENARIOS)
    assert main(["--scenario", "cpu/2", "--model", "lenet5", "--batch", "8", "--batch", "16"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 4 and out[2].split()[:3] == ["cpu/2", "lenet5", "8"] and out[3].split()[2] == "16"


@pytest.mark.parametrize("argv, message", [
    (["--scenario", "mainframe"], "invalid choice: 'mainframe' (choose from 'cpu+igpu+dgpu', '8gpu-2hosts', 'cpu/2')"),
    (["--model", "vgg"], "invalid choice: 'vgg' (choose from 'lenet5', 'resnet18')"),
    (["--batch", "0"], "--batch: must be a positive int, got '0'"),
    (["--overlap", "x"], "--overlap: must be a number in [0, 1], got 'x'"),
])
def test_main_bad_arguments_exit_2_with_the_reason(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
