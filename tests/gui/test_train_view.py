"""The Train view on real (tiny) data: training, live plots, epoch results, pause/resume/stop, checkpoints."""

from __future__ import annotations

import os
import re

import pytest

from .views import finish, train_view

pytestmark = pytest.mark.usefixtures("usable_device")


@pytest.fixture
def view(qtbot, tiny_data):
    v = train_view(qtbot, tiny_data, (1400, 900), epochs=2)
    yield v
    v.stop_all()



def test_training_fills_plots_labels_and_epoch_results(qtbot, view):
    with qtbot.waitSignal(view.sigRunsFinished, timeout=60000):
        assert view.start()
    view._dirty = True
    view.redraw()
    (key, run), = view.runs.items()
    assert run.state == "finished", view.log.entries
    assert len(run.steps) == 12 and len(run.epoch_ends) == 2
    counts = view.plots.curve_data(key)
    assert counts["loss_raw"] == 12 and counts["train_acc"] == 12 and counts["speed"] == 12
    assert counts["test_acc"] == 2
    assert len(view.plots._items[key].marks) == 2 * 3  # two epoch ends, marked in each of the three plots
    view.x_box.setCurrentText("seconds")
    view.smooth_slider.setValue(0)
    view.redraw()
    assert view.plots.curve_data(key)["loss_ema"] == 12 and len(view.plots._items[key].marks) == 6
    assert view.plots.loss.getPlotItem().getAxis("bottom").labelText == "seconds"
    cells = [view.run_table.item(0, c).text() for c in range(view.run_table.columnCount())]
    assert cells[1] == "finished" and cells[2] == "2/2" and cells[3] == "12"
    assert re.fullmatch(r"\d+\.\d{4}", cells[4])            # loss
    assert re.fullmatch(r"\d+\.\d{2}%", cells[6])           # test accuracy
    assert re.search(r"\(ep [12]\)", cells[7])               # best epoch
    assert "Epoch 2 of 2" in view.summary.text() and "%" in view.summary.text()
    assert view.confusion.matrix.shape == (10, 10) and view.confusion.matrix.sum() == 40
    assert len(view.digits.cells) == view.digits.capacity() >= 20  # as many as fit with readable captions
    assert "of 40 misclassified" in view.digits_caption.text()
    assert view.progress.value() == 1000
    assert view.log.count("error") == 0
    assert any("Training finished" in m for _, m in view.log.entries)


def test_pause_resume_stop(qtbot, view):
    view.epochs_box.setValue(500)
    view.batch_box.setValue(8)
    view.start()
    (run,) = view.runs.values()
    qtbot.waitUntil(lambda: len(run.steps) >= 3, timeout=60000)
    view.toggle_pause()
    assert view.pause_button.text() == "Resume"
    qtbot.waitUntil(lambda: any("paused at step" in m for _, m in view.log.entries), timeout=10000)
    held = len(run.steps)
    qtbot.wait(300)
    assert len(run.steps) == held and run.state == "paused"
    view.toggle_pause()
    assert view.pause_button.text() == "Pause"
    qtbot.waitUntil(lambda: len(run.steps) > held + 2, timeout=20000)
    view.stop()
    finish(qtbot, view)
    assert run.done.reason == "stopped" and run.state == "stopped"
    assert view.start_button.isEnabled() and not view.stop_button.isEnabled()


def test_save_and_load_checkpoint_continues(qtbot, view, tmp_path):
    view.epochs_box.setValue(1)
    view.start()
    finish(qtbot, view)
    path = tmp_path / "run.safetensors"
    assert view.save_checkpoint(str(path))
    assert path.is_file()
    assert any("Checkpoint saved" in m for _, m in view.log.entries)
    view.epochs_box.setValue(5)
    view.optimizer_box.setCurrentText("sgd")
    assert view.load_checkpoint(str(path))
    assert view.optimizer_box.currentText() == "adam" and view.epochs_box.value() == 2  # from the checkpoint
    view.start()
    finish(qtbot, view)
    (run,) = view.runs.values()
    assert run.state == "finished" and run.resumed_step == 6  # epoch 2 continues at step 7
    assert run.steps == list(range(1, 13))  # steps 1-6 are the checkpoint's curves, not lost
    assert len(run.epoch_ends) == 2 and run.test_points("steps")[0].tolist() == [6.0, 12.0]
    assert run.seconds == sorted(run.seconds) and run.seconds[6] > run.seconds[5]  # its clock goes on
    assert view.plots.curve_data(run.key)["loss_raw"] == 12
    assert view.plots.resume_label(run.key) == "continues from checkpoint step 6"
    assert any("continuing from" in m for _, m in view.log.entries)
    assert any("Continues from checkpoint step 6 (epoch 2): the curves up to there are the checkpoint's" in m
               for _, m in view.log.entries)
    # saved again, the file holds all 12 steps: a second resume shows them all too
    again = tmp_path / "again.safetensors"
    assert view.save_checkpoint(str(again))
    assert view.load_checkpoint(str(again))
    assert view.loaded_resume[0] == 12 and view.loaded_resume[2]["steps"] == list(range(1, 13))


def test_save_while_running_pauses_saves_and_goes_on(qtbot, view, tmp_path):
    view.epochs_box.setValue(500)
    view.batch_box.setValue(8)
    view.start()
    (run,) = view.runs.values()
    qtbot.waitUntil(lambda: len(run.steps) >= 3, timeout=60000)
    path = tmp_path / "mid.safetensors"
    view.save_checkpoint(str(path))
    qtbot.waitUntil(path.is_file, timeout=20000)
    held = len(run.steps)
    qtbot.waitUntil(lambda: len(run.steps) > held + 2, timeout=20000)  # it went on by itself
    view.stop()
    finish(qtbot, view)


def test_missing_data_is_explained(qtbot, view, isolated):
    (isolated / "empty").mkdir()  # (a folder that does not exist the form refuses before Start)
    view.data_edit.setText(str(isolated / "empty"))  # and nothing in $HETERO_DATA_DIR, the cache or mirrors
    view.start()
    finish(qtbot, view)
    (run,) = view.runs.values()
    assert run.state == "failed"
    errors = [m for level, m in view.log.entries if level == "error"]
    assert errors and "data set was not found" in errors[0]


def test_two_sub_devices_train_side_by_side(qtbot, view):
    import hetero

    info = hetero.device().info
    if info.max_sub_devices < 2:
        pytest.skip(f"{info.id} cannot be split into sub-devices")
    ids = view.devices.select_spec(f"{info.id}/2")
    assert len(ids) == 2
    view.start()
    finish(qtbot, view)
    assert view.x_box.currentText() == "seconds"
    runs = list(view.runs.values())
    assert [r.state for r in runs] == ["finished", "finished"], view.log.entries
    assert runs[0].colour != runs[1].colour
    for r in runs:
        assert view.plots.curve_data(r.key)["loss_ema"] == 12
    # the same model and seed on both halves: the same losses step by step
    assert runs[0].loss == pytest.approx(runs[1].loss, rel=1e-4)


def test_a_hetero_train_checkpoint_resumes_in_the_app(qtbot, view, tmp_path, tiny_data):
    from hetero.cli import main

    path = tmp_path / "cli.safetensors"
    assert main(["train", "--model", "lenet5", "--data", str(tiny_data), "--epochs", "1", "--batch-size", "16",
                 "--optimizer", "sgd", "--checkpoint", str(path)]) == 0
    assert view.load_checkpoint(str(path))
    assert view.optimizer_box.currentText() == "sgd" and view.batch_box.value() == 16
    assert view.epochs_box.value() == 2
    view.start()
    finish(qtbot, view)
    (run,) = view.runs.values()
    assert run.state == "finished" and run.steps[0] == 7 and run.best()[0] == 2
    assert not run.resumed_with_history  # hetero train writes no curves: they start at step 7, marked
    assert view.plots.resume_label(run.key) == "continues from checkpoint step 6"
    assert any("the checkpoint holds no curves" in m for _, m in view.log.entries)


def test_the_checkpoint_saved_from_the_dialog_holds_the_step_its_name_says(qtbot, view, tmp_path, monkeypatch):
    from hetero.gui import train_view as tv

    from hetero.checkpoint import load_training

    def dialog(parent, caption, path, filters):  # training goes on while the user picks the file
        qtbot.wait(400)
        return str(tmp_path / os.path.basename(path)), filters

    monkeypatch.setattr(tv.QFileDialog, "getSaveFileName", dialog)
    view.epochs_box.setValue(500)
    view.batch_box.setValue(8)
    view.start()
    (run,) = view.runs.values()
    qtbot.waitUntil(lambda: len(run.steps) >= 3, timeout=60000)
    assert view.save_checkpoint()
    qtbot.waitUntil(lambda: any(tmp_path.glob("*.safetensors")), timeout=20000)
    view.stop()
    finish(qtbot, view)
    (path,) = tmp_path.glob("*.safetensors")
    step = int(re.fullmatch(r"lenet5-mnist-step(\d+)\.safetensors", path.name)[1])
    assert load_training(path)["step"] == step
