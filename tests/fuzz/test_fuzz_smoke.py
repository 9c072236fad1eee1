"""Each atheris fuzz target (fuzz/) runs briefly (HETERO_FUZZ_SECONDS) from its seeds without a finding."""

from __future__ import annotations

import os
import re
import resource
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("atheris")

ROOT = Path(__file__).resolve().parents[2]
SECONDS = int(os.environ.get("HETERO_FUZZ_SECONDS", "8"))  # bounded: the suite's time is shared
RSS_ALLOWANCE_MB = 2048  # libFuzzer's default limit, over what the target starts with


def _rss_limit_mb() -> int:
    """libFuzzer's -rss_limit_mb for a child of this process: Linux keeps the peak RSS (ru_maxrss) across
    execve, so a child of a long test session starts at the session's peak, not at its own."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024 + RSS_ALLOWANCE_MB


@pytest.mark.parametrize("target", ["fuzz_idx.py", "fuzz_checkpoint.py"])
def test_fuzz_target_finds_nothing(target, tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "fuzz" / target), f"-max_total_time={SECONDS}",
                           f"-artifact_prefix={tmp_path}/", "-print_final_stats=1", f"-rss_limit_mb={_rss_limit_mb()}"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=SECONDS + 120)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    runs = re.search(r"Done (\d+) runs", log)
    assert runs and int(runs.group(1)) > 100, log[-2000:]
    assert not list(tmp_path.glob("crash-*")) and not list(tmp_path.glob("oom-*"))
