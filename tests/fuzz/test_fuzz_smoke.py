"""Each atheris fuzz target (fuzz/) runs briefly (HETERO_FUZZ_SECONDS) from its seeds without a finding."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("atheris")

ROOT = Path(__file__).resolve().parents[2]
SECONDS = int(os.environ.get("HETERO_FUZZ_SECONDS", "8"))  # bounded: the suite's time is shared


@pytest.mark.parametrize("target", ["fuzz_idx.py", "fuzz_checkpoint.py"])
def test_fuzz_target_finds_nothing(target, tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "fuzz" / target), f"-max_total_time={SECONDS}",
                           f"-artifact_prefix={tmp_path}/", "-print_final_stats=1"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=SECONDS + 120)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    runs = re.search(r"Done (\d+) runs", log)
    assert runs and int(runs.group(1)) > 100, log[-2000:]
    assert not list(tmp_path.glob("crash-*"))
