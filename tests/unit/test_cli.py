"""The `hetero` command line."""

import json
import subprocess
import sys

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
    assert "usage" in capsys.readouterr().out


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
