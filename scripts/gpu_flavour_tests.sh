#!/usr/bin/env bash
# The GPU kernels proven without a GPU: the op and model tests with the GPU kernel flavour and the strict
# launch limits (256 work-items, 64 in z, 65535 groups in dims 1-2, 32 KiB __local) at full shapes, on PoCL's
# CPU device and on Mesa's rusticl (llvmpipe) reporting a GPU (tests/train trains one model over both).
# On rusticl the tests marked cpu_kernels are deselected: they force the CPU flavour's register-tiled kernels,
# which a GPU-flavour device never chooses and llvmpipe takes 25-75 s each to compile cold (PoCL runs them in
# both flavours). --no-rusticl skips rusticl. Any failure fails it.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
unset HETERO_TEST_DEVICES HETERO_DEVICE HETERO_OCLGRIND
export HETERO_STRICT_LIMITS=1
status=0
SECONDS=0
echo "[gpu-flavour] PoCL, HETERO_KERNEL_FLAVOUR=gpu, full shapes: tests/ops tests/models"
HETERO_KERNEL_FLAVOUR=gpu "$VENV/bin/python" -m pytest -q -p no:cacheprovider tests/ops tests/models || status=1
echo "[gpu-flavour] PoCL done in ${SECONDS} s"
if [ "${1:-}" = "--no-rusticl" ]; then
    echo "[gpu-flavour] rusticl skipped (--no-rusticl)"
elif RUSTICL_ENABLE=llvmpipe "$VENV/bin/hetero" devices 2>/dev/null | grep -q llvmpipe; then
    SECONDS=0
    echo "[gpu-flavour] Mesa rusticl as a GPU, full shapes: tests/ops tests/models (-m 'not cpu_kernels')"
    RUSTICL_ENABLE=llvmpipe RUSTICL_DEVICE_TYPE=gpu HETERO_TEST_DEVICES=llvmpipe \
        "$VENV/bin/python" -m pytest -q -p no:cacheprovider -m "not cpu_kernels" tests/ops tests/models || status=1
    echo "[gpu-flavour] rusticl done in ${SECONDS} s"
else
    echo "[gpu-flavour] Mesa's rusticl is not installed (apt-get install mesa-opencl-icd): skipped" >&2
fi
exit "$status"
