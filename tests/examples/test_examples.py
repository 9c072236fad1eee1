"""Every script in examples/ runs as is, with a small step limit, on tiny generated MNIST files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.train.tiny_idx import write_tiny_mnist

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SCRIPTS = sorted(p.name for p in EXAMPLES.glob("*.py"))


def test_the_examples_are_all_here():
    assert {"train_lenet5.py", "custom_resnet_block.py", "torch_weights_inference.py",
            "compare_devices.py"} <= set(SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS)
def test_example_runs(script, tmp_path, dev):
    data = write_tiny_mnist(tmp_path / "data", n_train=96, n_test=40)
    env = dict(os.environ, HETERO_DATA_DIR=str(data), HETERO_EXAMPLE_STEPS="3", HETERO_DEVICE=dev.id)
    run = subprocess.run([sys.executable, str(EXAMPLES / script)], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, f"{script} failed:\n{run.stdout}\n{run.stderr}"
    assert run.stdout.strip(), f"{script} printed nothing"
