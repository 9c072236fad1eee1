"""The `hetero` command line."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

import hetero
from hetero.cli import main


def test_version(capsys):
    try:
        main(["--version"])
    except SystemExit as e:
        assert e.code == 0
    assert hetero.__version__ in capsys.readouterr().out


def test_devices_table(dev, capsys):
    assert main(["devices"]) == 0
    out = capsys.readouterr().out
    assert "usable" in out.splitlines()[0]
    assert dev.info.name in out and dev.info.id in out


def test_devices_json(dev, capsys):
    assert main(["devices", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert any(d["id"] == dev.info.id and d["usable"] for d in data)


def test_console_entry_point_runs_as_module():
    out = subprocess.run([sys.executable, "-m", "hetero", "--help"], capture_output=True, text=True, check=True)
    assert "devices" in out.stdout


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    err = capsys.readouterr().err  # a usage error, as argparse's: on stderr, with what to do
    assert "usage" in err and "hetero: error: name a command (devices, train" in err


_INTERRUPT_IMPORT = """
import sys
class Interrupt:  # Ctrl-C arriving while hetero imports (numpy, pyopencl, ...)
    def find_spec(self, name, path=None, target=None):
        if name == "hetero.cli":
            raise KeyboardInterrupt
sys.meta_path.insert(0, Interrupt())
sys.path.insert(0, {root!r})
import hetero_cli
sys.exit(hetero_cli.main())
"""


def test_ctrl_c_during_start_up_is_a_quiet_exit():
    root = str(Path(__file__).resolve().parents[2])
    proc = subprocess.run([sys.executable, "-c", _INTERRUPT_IMPORT.format(root=root)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 130 and "hetero: interrupted" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_file_error_is_one_line(capsys, monkeypatch):
    from hetero.commands import devices

    def unreadable(args):
        raise PermissionError(13, "Permission denied", "/some/file")

    monkeypatch.setattr(devices, "run", unreadable)
    assert main(["devices"]) == 1
    assert capsys.readouterr().err.strip() == "hetero: error: /some/file: Permission denied"


def test_summary_command(dev, capsys, monkeypatch):
    monkeypatch.setenv("HETERO_DEVICE", dev.info.id)
    assert main(["summary", "lenet5", "--batch-size", "2"]) == 0
    out = capsys.readouterr().out
    assert "lenet5, input 2x1x28x28" in out and "2x6x28x28" in out and "61,706" in out
    assert "training step (batch 2" in out


def test_summary_command_imagenet_without_step(dev, capsys, monkeypatch):
    monkeypatch.setenv("HETERO_DEVICE", dev.info.id)
    assert main(["summary", "alexnet", "--no-train-step"]) == 0
    out = capsys.readouterr().out
    assert "input 1x3x227x227" in out and "62,378,344" in out and "training step" not in out


@pytest.mark.parametrize("args", [["--epochs", "0"], ["--after", "-1"], ["--after", "nan"],
                                  ["--screenshot", "/nonexistent_dir/x.png"], ["--data", "/nonexistent_dir"]])
def test_gui_arguments_are_checked_before_the_window_opens(capsys, args):
    with pytest.raises(SystemExit) as info:
        main(["gui", *args])
    assert info.value.code == 2 and f"argument {args[0]}" in capsys.readouterr().err
