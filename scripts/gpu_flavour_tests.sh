#!/usr/bin/env bash
# The GPU kernels proven without a GPU: the op and model tests with the GPU kernel flavour and the strict
# launch limits (256 work-items, 64 in z, 65535 groups in dims 1-2, 32 KiB __local) on PoCL's CPU device at
# full shapes, then (with --rusticl) on Mesa's rusticl (llvmpipe) reporting a GPU at the tests' reduced shapes:
# its cold builds take 30-380 s per program on two cores, too long for every CI run. Any failure fails it.
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
if [ "${1:-}" != "--rusticl" ]; then
    :
elif RUSTICL_ENABLE=llvmpipe "$VENV/bin/hetero" devices 2>/dev/null | grep -q llvmpipe; then
    SECONDS=0
    echo "[gpu-flavour] Mesa rusticl as a GPU, reduced shapes: tests/ops"
    RUSTICL_ENABLE=llvmpipe RUSTICL_DEVICE_TYPE=gpu HETERO_TEST_DEVICES=llvmpipe HETERO_TEST_REDUCED=1 \
        "$VENV/bin/python" -m pytest -q -p no:cacheprovider tests/ops || status=1
    echo "[gpu-flavour] one model trained over PoCL + rusticl"
    HETERO_RUSTICL_TESTS=1 "$VENV/bin/python" -m pytest -q -p no:cacheprovider tests/train/test_data_parallel.py \
        -k platforms || status=1
    echo "[gpu-flavour] rusticl done in ${SECONDS} s"
else
    echo "[gpu-flavour] Mesa's rusticl is not installed (apt-get install mesa-opencl-icd): skipped" >&2
fi
exit "$status"
