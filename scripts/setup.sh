#!/usr/bin/env bash
# Create .venv with hetero installed (editable, with test tools), and make sure an OpenCL device exists:
# when no usable device is found and apt is available, install Debian's PoCL CPU driver.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${VENV:-.venv}
EXTRAS=${EXTRAS:-test}

if [ ! -x "$VENV/bin/python" ]; then
    echo "[setup] creating $VENV"
    "$PY" -m venv "$VENV"
fi
echo "[setup] installing hetero and its dependencies into $VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q -e ".[$EXTRAS]"

has_device() {
    "$VENV/bin/python" - <<'PY' 2>/dev/null
import sys
import hetero
sys.exit(0 if any(d.usable for d in hetero.devices()) else 1)
PY
}

apt_install() {
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "[setup] installing $* with apt-get"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

if ! has_device; then
    if command -v apt-get >/dev/null 2>&1; then
        # PyPI's pocl-binary-distribution 3.0 cannot build kernels on some CPUs ("unknown target CPU
        # 'generic'"); Debian's pocl-opencl-icd (3.1, LLVM 15) works, so that is the one we install.
        apt_install pocl-opencl-icd ocl-icd-libopencl1
        rm -f "${HETERO_CACHE_DIR:-$HOME/.cache/hetero}/probe.json"  # re-probe with the new driver
    fi
    if ! has_device; then
        echo "[setup] no usable OpenCL device. Install PoCL (conda install -c conda-forge pocl) or your GPU's" >&2
        echo "        OpenCL driver, then run 'hetero devices'. See README.md." >&2
        exit 1
    fi
fi
"$VENV/bin/hetero" devices
