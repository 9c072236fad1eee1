"""The Train view's data-parallel option: offered for two or more ticked devices, refused for overlapping
ones, and short runs on the two halves of the CPU that show each device's share of the batch."""

from __future__ import annotations

import re

import pytest
from hetero.gui.device_panel import DevicePanel
from hetero.gui.log_panel import LogPanel
from hetero.gui.train_view import TrainView
from hetero.gui.workers import TrainConfig, TrainWorker, run_training

import hetero
from hetero.selection import DeviceInfo

from .views import finish, train_view

GPU = DeviceInfo(id="0:0", platform="P", name="Big GPU", vendor="V", type="gpu", compute_units=40,
                 global_mem_bytes=8 << 30, fp16=True)
CPU = DeviceInfo(id="1:0", platform="R", name="CPU", vendor="X", type="cpu", compute_units=4, max_sub_devices=4)


@pytest.fixture(scope="module")
def split_cpu():
    """(the CPU's id, the ids of its two halves), or skip where no CPU device can be split."""
    try:
        infos = hetero.devices()
    except hetero.HeteroError as e:
        pytest.skip(f"no OpenCL device: {e}")
    for info in infos:
        if info.type == "cpu" and info.usable and info.max_sub_devices >= 2:
            return info.id, [d.id for d in hetero.select_devices(f"{info.id}/2")]
    pytest.skip("no CPU device that OpenCL can split in two")


@pytest.fixture
def view(qtbot, tiny_data):
    v = train_view(qtbot, tiny_data, (1280, 800), epochs=1)
    yield v
    v.stop_all()



def test_the_option_needs_two_ticked_devices(qtbot):
    view = TrainView(LogPanel(), DevicePanel([GPU, CPU]))
    qtbot.addWidget(view)
    assert view.devices.selected_ids() == ["0:0"]
    assert not view.parallel_box.isEnabled()
    assert "Tick two or more devices" in view.parallel_box.toolTip()
    view.devices.select(["0:0", "1:0"])
    assert view.parallel_box.isEnabled()
    tip = view.parallel_box.toolTip()
    assert "Tick two or more" not in tip
    assert "proportion to their measured speed" in tip and "gradients are summed" in tip
    view.devices.select(["1:0"])
    assert not view.parallel_box.isEnabled()


def test_a_cpu_and_one_of_its_halves_are_refused(qtbot, view, split_cpu):
    cpu, halves = split_cpu
    view.devices.select([cpu, halves[0]])
    view.parallel_box.setChecked(True)
    assert view.parallel_message.isVisible()
    assert "overlap" in view.parallel_message.text() and cpu in view.parallel_message.text()
    assert not view.start()
    assert not view.runs and not view.is_running()
    assert any("overlap" in m for level, m in view.log.entries if level == "warning")
    view.devices.select(halves)
    assert not view.parallel_message.isVisible()


def test_a_data_parallel_run_shows_each_devices_share(qtbot, view, split_cpu, tmp_path):
    _, halves = split_cpu
    view.devices.select(halves)
    view.parallel_box.setChecked(True)
    assert view.start(max_steps=4)
    finish(qtbot, view, timeout=120000)
    (key, run), = view.runs.items()
    assert run.state == "finished" and run.steps == [1, 2, 3, 4], view.log.entries
    assert view.workers[key].recipe.devices == ",".join(halves)
    assert view.run_table.rowCount() == 3
    assert all(h in view.run_table.item(0, 0).text() for h in halves)
    shares = []
    for row, device_id in zip((1, 2), halves):
        assert device_id in view.run_table.item(row, 0).text() and view.run_table.columnSpan(row, 1) > 1
        text = view.run_table.item(row, 1).text()
        found = re.fullmatch(r"(\d+)% of each batch · ([\d,]+ images/s|measuring its images/s)", text)
        assert found, text
        shares.append(int(found[1]))
    assert 98 <= sum(shares) <= 102
    assert view.plots.curve_data(key)["speed"] == 4  # the run's total images/s: one curve
    assert view.log.count("error") == 0
    path = tmp_path / "dp.safetensors"
    assert view.save_checkpoint(str(path))
    from hetero.checkpoint import load_training

    assert load_training(path)["recipe"]["devices"] == ",".join(halves)


def test_a_data_parallel_run_pauses_resumes_and_stops(qtbot, view, split_cpu):
    _, halves = split_cpu
    view.devices.select(halves)
    view.parallel_box.setChecked(True)
    view.epochs_box.setValue(500)
    view.batch_box.setValue(8)
    view.start()
    (run,) = view.runs.values()
    qtbot.waitUntil(lambda: len(run.steps) >= 3, timeout=60000)
    view.toggle_pause()
    qtbot.waitUntil(lambda: any("paused at step" in m for _, m in view.log.entries), timeout=20000)
    held = len(run.steps)
    qtbot.wait(300)
    assert len(run.steps) == held and run.state == "paused"
    view.toggle_pause()
    qtbot.waitUntil(lambda: len(run.steps) > held + 2, timeout=20000)
    view.stop()
    finish(qtbot, view, timeout=120000)
    assert run.done.reason == "stopped" and run.state == "stopped"


class _Built(Exception):
    """Raised by the stand-in for fit_parallel once it has seen what the worker built."""


def test_the_worker_gives_fit_parallel_host_batches_and_the_devices(qtbot, monkeypatch, split_cpu, tiny_data):
    from hetero import parallel

    seen = {}

    def fit_parallel(model, optimizer, devices, train_loader, test_loader=None, **kw):
        seen.update(devices=[d.id for d in devices], train=train_loader.device, test=test_loader.device, **kw)
        raise _Built

    monkeypatch.setattr(parallel, "fit_parallel", fit_parallel)
    _, halves = split_cpu
    worker = TrainWorker("k", ",".join(halves), TrainConfig(data_dir=str(tiny_data)))
    with pytest.raises(_Built):
        run_training(worker)
    assert seen["devices"] == halves
    assert seen["train"] is None and seen["test"].id == halves[0]
    assert seen["recipe"].devices == ",".join(halves) and seen["control"] is worker.control
    assert worker.model is not None  # what the worker's checkpoints save: the first device's replica
