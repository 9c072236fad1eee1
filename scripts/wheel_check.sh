#!/usr/bin/env bash
# The wheel must carry kernels_cl/ and gui/ and work without the repository.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "[wheel] building"
"$VENV/bin/python" -m pip wheel -q --no-deps -w "$tmp/dist" .
echo "[wheel] installing $(basename "$tmp"/dist/*.whl) into a fresh venv"
python3 -m venv "$tmp/venv"
"$tmp/venv/bin/python" -m pip install -q "$tmp"/dist/*.whl
cd "$tmp"
"$tmp/venv/bin/hetero" --version
"$tmp/venv/bin/hetero" devices
"$tmp/venv/bin/python" - <<'PY'
import numpy as np
import hetero
from hetero import program
assert "site-packages" in str(program.kernel_dir()), program.kernel_dir()
t = hetero.tensor(np.arange(4, dtype=np.float32))
assert np.array_equal((t * 2.0 + 1.0).numpy(), np.arange(4) * 2 + 1)
print("[wheel] installed wheel runs kernels from", program.kernel_dir())
PY
"$tmp/venv/bin/hetero" summary lenet5 --no-train-step | tail -n 2
"$tmp/venv/bin/hetero-gui" --help | head -n 1
QT_QPA_PLATFORM=offscreen "$tmp/venv/bin/python" -c "import hetero.gui.main_window, hetero.bench, hetero.data; print('[wheel] gui, bench and data import')"
