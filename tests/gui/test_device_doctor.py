"""The device list's doctor verdicts: computed in a worker thread on demand, shown in the Status column and
shared by every panel; a scripted doctor (and a real one on a few checks) stands in for the device."""

from __future__ import annotations

import threading

from hetero.gui.device_panel import DevicePanel, DoctorResults

from hetero.doctor import CHECKS, Row, doctor
from hetero.selection import DeviceInfo

GPU = DeviceInfo(id="0:0", platform="P", name="Big GPU", vendor="V", type="gpu", compute_units=40,
                 global_mem_bytes=8 << 30)
BROKEN = DeviceInfo(id="1:0", platform="Q", name="Old CPU", vendor="W", type="cpu", compute_units=4,
                    usable=False, reason="kernel build fails")
CPU = DeviceInfo(id="2:0", platform="R", name="CPU", vendor="X", type="cpu", compute_units=4, max_sub_devices=4)


def _rows(device_id: str, wrong: int) -> list[Row]:
    rows = [Row(device_id, f"op {k}", True, 0.01, 1e-7, 1e-8, 1e-4) for k in range(5)]
    for r in rows[:wrong]:
        r.passed, r.error = False, f"forward: max abs error 0.5 > 0.0001 ({r.op})"
    return rows


class ScriptedDoctor:
    """Blocks each device's check until released; 0:0 passes, 2:0 has two ops wrong, others fail to open."""

    def __init__(self):
        self.calls: list[str] = []
        self.threads: set[int] = set()
        self.release = threading.Event()

    def __call__(self, device_id: str, cancel=None) -> list[Row]:
        self.calls.append(device_id)
        self.threads.add(threading.get_ident())
        assert self.release.wait(20), "the test never released the doctor"
        if device_id == "0:0":
            return _rows(device_id, 0)
        if device_id == "2:0":
            return _rows(device_id, 2)
        raise RuntimeError(f"device {device_id} disappeared")


def _top(panel: DevicePanel) -> list:
    return [panel.tree.topLevelItem(k) for k in range(panel.tree.topLevelItemCount())]


def test_check_runs_in_the_background_and_shows_each_verdict(qtbot):
    script = ScriptedDoctor()
    results = DoctorResults(script)
    panel = DevicePanel([GPU, BROKEN, CPU], results=results)
    other = DevicePanel([GPU, CPU], results=results)  # the other tab's list
    qtbot.addWidget(panel)
    qtbot.addWidget(other)
    assert panel.status("0:0") == "ready" and panel.status("1:0") == "unusable"

    panel.check_button.click()  # returns at once: the doctor runs in a worker thread
    assert panel.status("0:0") == "checking…" and panel.status("2:0") == "checking…"
    assert other.status("0:0") == "checking…"
    assert panel.status("1:0") == "unusable"  # an unusable device is never checked
    qtbot.waitUntil(lambda: script.calls == ["0:0"], timeout=5000)
    assert threading.get_ident() not in script.threads
    panel.check_button.click()  # a second click while checking starts nothing new
    assert len(results.workers) == 1

    script.release.set()
    qtbot.waitUntil(lambda: not results.busy() and not results.workers, timeout=10000)
    assert script.calls == ["0:0", "2:0"]
    assert panel.status("0:0") == "doctor ok"
    assert panel.status("2:0") == "doctor: 2 ops wrong"
    assert other.status("2:0") == "doctor: 2 ops wrong"  # shared by every panel
    gpu, _, cpu = _top(panel)
    assert "hetero doctor: 3 passed / 2 failed" in cpu.toolTip(0) and "op 1: forward: max abs error" in cpu.toolTip(0)
    assert cpu.foreground(5).color().name() == "#b00020" and gpu.foreground(5).color().name() == "#1b7f3b"
    # a panel made later (another window) starts with the verdicts known
    late = DevicePanel([GPU, CPU], results=results)
    qtbot.addWidget(late)
    assert late.status("0:0") == "doctor ok"


def test_context_menu_checks_one_device_and_a_failure_is_shown(qtbot):
    script = ScriptedDoctor()
    script.release.set()
    results = DoctorResults(script)
    panel = DevicePanel([GPU, BROKEN, CPU], split=True, results=results)
    qtbot.addWidget(panel)
    assert panel.context_menu("1:0") is None  # nothing to check on an unusable device
    menu = panel.context_menu("2:0/2.1")  # a sub-device row can be checked on its own
    action = menu.actions()[0]
    assert action.text() == "Check 2:0/2.1 with hetero doctor" and action.isEnabled()
    action.trigger()
    qtbot.waitUntil(lambda: not results.workers, timeout=10000)
    assert script.calls == ["2:0/2.1"]
    assert panel.status("2:0/2.1") == "doctor failed"  # short in the column; the tooltip says why
    assert "could not run: RuntimeError: device 2:0/2.1 disappeared" in panel._items["2:0/2.1"].toolTip(5)
    assert panel.status("2:0") == "ready"  # its parent was not checked


def test_real_doctor_on_a_device(qtbot, usable_device):
    """The real doctor (three checks) in the worker thread, on a real device."""
    results = DoctorResults(lambda device_id, cancel=None: doctor(device_id, CHECKS[:3], cancel=cancel))
    panel = DevicePanel([usable_device.info], results=results)
    qtbot.addWidget(panel)
    panel.check_all()
    qtbot.waitUntil(lambda: not results.workers, timeout=120000)
    assert panel.status(usable_device.id) == "doctor ok"
    kind, rows = results.state[usable_device.id]
    assert kind == "done" and [r.op for r in rows] == [c.name for c in CHECKS[:3]]
