"""The Train view's form: a value typed is kept and explained beside its field, Start refuses what cannot train,
an unlikely learning rate is warned about, and every field has a tooltip (no device needed)."""

from __future__ import annotations

import pytest
from hetero.gui.device_panel import DevicePanel
from hetero.gui.log_panel import LogPanel
from hetero.gui.train_view import TrainView
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFormLayout

from hetero.selection import DeviceInfo
from hetero.train import DoneEvent, TrainingControl

GPU = DeviceInfo(id="0:0", platform="P", name="Big GPU", vendor="V", type="gpu", compute_units=40,
                 global_mem_bytes=8 << 30, fp16=True)


def done_at_once(worker) -> None:
    worker.on_event(DoneEvent("finished", "", 0, 0, 0.0))


@pytest.fixture
def view(qtbot):
    v = TrainView(LogPanel(), DevicePanel([GPU]), runner=done_at_once, control_factory=TrainingControl)
    qtbot.addWidget(v)
    v.resize(1280, 800)
    v.show()
    return v


def type_into(qtbot, box, text: str) -> None:
    """Select the field's text and type, as a user does."""
    box.setFocus()
    box.selectAll()
    qtbot.keyClicks(box, text)
    qtbot.keyClick(box, Qt.Key.Key_Tab)


def message(view, key: str) -> str:
    label = view.field_messages[key]
    return label.text() if label.isVisible() else ""


def test_a_zero_learning_rate_is_kept_explained_and_refused(qtbot, view):
    assert message(view, "lr") == "" and view.start_button.isEnabled()
    type_into(qtbot, view.lr_box, "0")
    assert view.lr_box.value() == 0.0  # not silently the last value (0.002)
    assert "Must be above 0" in message(view, "lr") and "try 0.002 for lenet5 with adam" in message(view, "lr")
    assert "#b00020" in view.field_messages["lr"].styleSheet()
    assert not view.start_button.isEnabled() and "Must be above 0" in view.start_button.toolTip()
    assert not view.start() and not view.runs
    assert any("Not started" in m and "above 0" in m for level, m in view.log.entries if level == "warning")
    type_into(qtbot, view.lr_box, "0.001")
    assert message(view, "lr") == "" and view.start_button.isEnabled()


def test_a_huge_batch_is_kept_and_refused_a_large_one_warned(qtbot, view):
    type_into(qtbot, view.batch_box, "100000")
    assert view.batch_box.value() == 100000  # not 1000 or 8192
    assert message(view, "batch") == "At most 60,000: a batch of 100,000 is more than the training images."
    assert not view.start_button.isEnabled()
    type_into(qtbot, view.batch_box, "0")
    assert "at least 1 image" in message(view, "batch") and not view.start_button.isEnabled()
    type_into(qtbot, view.batch_box, "20000")
    assert "needs much device memory" in message(view, "batch") and view.start_button.isEnabled()
    type_into(qtbot, view.epochs_box, "0")
    assert "at least 1 epoch" in message(view, "epochs") and not view.start_button.isEnabled()


def test_a_learning_rate_of_10_is_warned_about_but_trains(qtbot, view):
    type_into(qtbot, view.lr_box, "10")
    assert view.lr_box.value() == 10.0
    text = message(view, "lr")
    assert "Very high" in text and "explodes" in text and "#b26a00" in view.field_messages["lr"].styleSheet()
    assert view.start_button.isEnabled()
    with qtbot.waitSignal(view.sigRunsFinished, timeout=10000):
        assert view.start()
    assert any("Very high" in m for level, m in view.log.entries if level == "warning")


def test_a_missing_data_folder_is_marked(qtbot, view, tmp_path):
    view.data_edit.setText(str(tmp_path / "nowhere"))
    assert "No such folder" in message(view, "data") and "border" in view.data_edit.styleSheet()
    assert not view.start_button.isEnabled()
    view.data_edit.setText(str(tmp_path))
    assert message(view, "data") == "" and view.data_edit.styleSheet() == ""


def test_every_field_and_its_label_has_a_tooltip(view):
    form = view.form_box.layout()
    assert isinstance(form, QFormLayout)
    labels = 0
    for row in range(form.rowCount()):
        label = form.itemAt(row, QFormLayout.ItemRole.LabelRole)
        if label is None:
            continue
        labels += 1
        assert label.widget().toolTip(), label.widget().text()
    assert labels == 9
    for box in (view.model_box, view.dataset_box, view.data_edit, view.epochs_box, view.batch_box,
                view.optimizer_box, view.lr_box, view.schedule_box, view.seed_box, view.parallel_box,
                view.start_button, view.pause_button, view.stop_button, view.save_button, view.load_button):
        assert box.toolTip(), box


def test_the_messages_are_never_squeezed_at_1280x800(qtbot):
    from hetero.gui.main_window import MainWindow

    cpu = DeviceInfo(id="1:0", platform="R", name="CPU", vendor="X", type="cpu", compute_units=4, max_sub_devices=4)
    window = MainWindow(demo=True, infos=[GPU, cpu])
    qtbot.addWidget(window)
    window.resize(1280, 760)
    window.show()
    view = window.train_view
    items = view.devices._items
    items["1:0/2.0"].setCheckState(0, Qt.CheckState.Checked)
    items["1:0"].setCheckState(0, Qt.CheckState.Checked)  # the note under the list
    view.epochs_box.setValue(0)
    view.batch_box.setValue(100000)
    view.lr_box.setValue(10)
    qtbot.wait(50)
    labels = [view.devices.note] + [view.field_messages[k] for k in ("epochs", "batch", "lr")]
    for label in labels:  # the settings scroll instead: every line of every message in full
        assert label.isVisible() and label.height() >= label.heightForWidth(label.width()) - 1, label.text()
    assert view.start_button.isVisible() and view.settings_scroll.verticalScrollBar().maximum() > 0
