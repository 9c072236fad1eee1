#!/usr/bin/env bash
# One short check for the first real GPU machine, printing everything useful: the device list, `hetero doctor`
# on every device, the op tests on the GPU under the strict launch limits, the GEMM benchmark at 1024/2048/4096
# and the quick device + model benchmarks (with CLBlast's GEMM beside ours where CLBlast is there). Each step
# is bounded by `timeout` and the script goes on after a failure; all output goes to stdout and, when $OUT is
# set, to $OUT/gpu_check.log (and the bench JSON to $OUT/bench.json). About 8 minutes at most.
#
#   scripts/gpu_check.sh                  # set up if needed, then run every step
#   scripts/gpu_check.sh --fetch-wheels   # on a machine with PyPI and apt: put what an offline machine needs
#                                         # into .whl/ (pyopencl's cp312 wheels, setuptools and wheel for the
#                                         # offline editable install, Debian's libclblast1 and
#                                         # ocl-icd-libopencl1); carry .whl along
#
# Setup, first that works: $HETERO_PYTHON; .venv/bin/python with hetero importable (scripts/setup.sh makes it);
# else a venv in /tmp/hetero-venv over python3's packages, with the wheels in .whl/ (or pyopencl from a registry)
# and hetero installed editable, offline. An NVIDIA driver without an ICD file gets one written to
# /tmp/hetero-icd (OCL_ICD_VENDORS). Without a GPU the script says so and runs the GPU steps on the best device.
# Step limits (seconds) can be changed: T_DOCTOR, T_OPS, T_GEMM, T_BENCH; OPS_MAXFAIL (default 10) op-test
# failures end that step (more than pytest -x shows, in one run that cannot be repeated cheaply).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD
WHEELS=${HETERO_WHEELS:-$ROOT/.whl}
# the GPU machine's python3 is CPython 3.12 (see the device tool's KINDS.md)
PY_TAGS=(--python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64
         --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64)

if [ "${1:-}" = "--fetch-wheels" ]; then
    mkdir -p "$WHEELS"
    python3 -m pip download -q --no-deps --only-binary=:all: "${PY_TAGS[@]}" -d "$WHEELS" \
        pyopencl pytools platformdirs siphash24 setuptools wheel || exit 1
    (cd "$WHEELS" && apt-get download libclblast1 ocl-icd-libopencl1) || echo "[fetch] apt-get download failed: no CLBlast"
    ls -l "$WHEELS"
    exit 0
fi

export PYTHONUNBUFFERED=1
T_DOCTOR=${T_DOCTOR:-90} T_OPS=${T_OPS:-180} T_GEMM=${T_GEMM:-60} T_BENCH=${T_BENCH:-120}
START=$(date +%s)
FAILED=()

say() { echo; echo "=== [$(( $(date +%s) - START ))s] $*"; }

step() {  # step NAME SECONDS COMMAND...: run bounded, report the status, go on whatever happens
    local name=$1 limit=$2 t0 rc
    shift 2
    say "$name (limit ${limit}s): $*"
    t0=$(date +%s)
    timeout --kill-after=10 "$limit" "$@"
    rc=$?
    if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
        echo "--- $name: TIMED OUT after ${limit}s"
        FAILED+=("$name (timeout)")
    elif [ $rc -ne 0 ]; then
        echo "--- $name: exit status $rc after $(( $(date +%s) - t0 ))s"
        FAILED+=("$name (exit $rc)")
    else
        echo "--- $name: ok in $(( $(date +%s) - t0 ))s"
    fi
}

# Everything below runs in main, so that its whole output can go through one tee into $OUT.
main() {
# ---- setup ----------------------------------------------------------------------------------------------------
say "machine"
uname -a
command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L
echo "$(nproc) CPU cores"

can_import() { "$1" -c "import numpy, pyopencl, hetero" >/dev/null 2>&1; }

PY=""
if [ -n "${HETERO_PYTHON:-}" ]; then
    PY=$HETERO_PYTHON
elif [ -x .venv/bin/python ] && can_import .venv/bin/python; then
    PY=$ROOT/.venv/bin/python
else
    # A venv over the system's packages (numpy, pytest, torch stay visible), with pyopencl from .whl/ (or a
    # registry) and hetero installed editable: kernels_cl/ and gui/ are mapped into the package only by an
    # install, so PYTHONPATH alone does not do.
    VENV=/tmp/hetero-venv
    if [ ! -x "$VENV/bin/python" ]; then
        python3 -m venv --system-site-packages "$VENV"
        # python3 may be a venv itself (the GPU image's is): its packages are not the new venv's "system" ones
        python3 -c "import site; print('\n'.join(site.getsitepackages()))" \
            > "$("$VENV/bin/python" -c 'import site; print(site.getsitepackages()[0])')/parent-env.pth"
    fi
    PY=$VENV/bin/python
    if ls "$WHEELS"/*.whl >/dev/null 2>&1; then  # setuptools and wheel too: the build below is offline
        echo "[setup] installing the wheels in $WHEELS into $VENV"
        "$PY" -m pip install -q --no-index --no-deps --no-compile "$WHEELS"/*.whl
    elif ! "$PY" -c "import pyopencl" >/dev/null 2>&1; then
        echo "[setup] no pyopencl and no $WHEELS: trying pip (fails without a registry; then run"
        echo "        scripts/gpu_check.sh --fetch-wheels where PyPI answers and carry .whl along)"
        timeout 120 "$PY" -m pip install -q pyopencl
    fi
    echo "[setup] installing hetero (editable) into $VENV"
    "$PY" -m pip install -q --no-index --no-deps --no-build-isolation -e "$ROOT" \
        || timeout 180 "$PY" -m pip install -q --no-deps -e "$ROOT"
fi
# CLBlast from Debian's packages in .whl/, for the bench's peer figure (ctypes: no pyclblast build needed)
if ls "$WHEELS"/libclblast1_*.deb >/dev/null 2>&1 && ! "$PY" -c "import pyclblast" >/dev/null 2>&1; then
    mkdir -p /tmp/hetero-clblast
    for deb in "$WHEELS"/libclblast1_*.deb "$WHEELS"/ocl-icd-libopencl1_*.deb; do
        [ -e "$deb" ] && dpkg -x "$deb" /tmp/hetero-clblast
    done
    lib=$(ls /tmp/hetero-clblast/usr/lib/*/libclblast.so.1 2>/dev/null | head -1)
    if [ -n "$lib" ]; then
        export HETERO_CLBLAST_LIB=$lib
        # its libOpenCL.so.1, only where the system has none (pyopencl's wheel brings a private one)
        ldconfig -p 2>/dev/null | grep -q 'libOpenCL.so.1 ' || \
            export LD_LIBRARY_PATH="$(dirname "$lib")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
        echo "[setup] CLBlast: $HETERO_CLBLAST_LIB"
    fi
fi
# An NVIDIA driver's OpenCL library that no ICD file names (containers often lack /etc/OpenCL/vendors/nvidia.icd):
# a vendors folder with the system's ICD files and one for it.
nv=$( (ldconfig -p 2>/dev/null | awk '/libnvidia-opencl\.so/ {print $NF}'; \
       ls /usr/local/nvidia/lib64/libnvidia-opencl.so* /usr/lib/x86_64-linux-gnu/libnvidia-opencl.so* 2>/dev/null) | head -1)
if [ -z "${OCL_ICD_VENDORS:-}" ] && [ -n "$nv" ] && ! grep -qs nvidia /etc/OpenCL/vendors/*.icd; then
    mkdir -p /tmp/hetero-icd
    cp /etc/OpenCL/vendors/*.icd /tmp/hetero-icd/ 2>/dev/null
    echo "$nv" > /tmp/hetero-icd/nvidia.icd
    export OCL_ICD_VENDORS=/tmp/hetero-icd
    export LD_LIBRARY_PATH="$(dirname "$nv")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"  # libcuda beside it
    echo "[setup] no ICD file names NVIDIA's OpenCL library; wrote /tmp/hetero-icd/nvidia.icd -> $nv"
fi
echo "[setup] ICD files: $(ls "${OCL_ICD_VENDORS:-/etc/OpenCL/vendors}" 2>/dev/null | tr '\n' ' ')"
echo "[setup] python: $PY ($("$PY" --version 2>&1))"
"$PY" -c "import numpy, pyopencl, hetero; print('numpy', numpy.__version__, '| pyopencl', pyopencl.VERSION_TEXT, \
'| hetero', hetero.__version__)" || { echo "[setup] FAILED: hetero does not import; nothing else can run"; return 1; }
HETERO=("$PY" -m hetero)

# ---- devices --------------------------------------------------------------------------------------------------
step "hetero devices" 45 "${HETERO[@]}" devices
# the first usable GPU, else the first usable device; and whether it is a GPU
read -r GPU HAS_GPU <<< "$("$PY" -c "
import hetero
usable = [d for d in hetero.devices() if d.usable]
gpus = [d for d in usable if d.type == 'gpu']
print((gpus or usable)[0].id, int(bool(gpus))) if usable else print()
" 2>/dev/null)"
if [ -z "${GPU:-}" ]; then
    echo "NO usable OpenCL device at all: see the device list above. Stopping."
    return 1
fi
if [ "$HAS_GPU" != 1 ]; then
    echo "NO GPU: no usable OpenCL device of type gpu here; the GPU steps run on $GPU instead"
else
    echo "GPU: $GPU"
fi

# ---- the checks -----------------------------------------------------------------------------------------------
step "hetero doctor --device all" "$T_DOCTOR" "${HETERO[@]}" doctor --device all
step "op tests on $GPU (strict limits)" "$T_OPS" env HETERO_TEST_DEVICES="$GPU" HETERO_STRICT_LIMITS=1 \
    "$PY" -m pytest -q -p no:cacheprovider --maxfail="${OPS_MAXFAIL:-10}" -rfE --durations=5 tests/ops
step "GEMM benchmark on $GPU" "$T_GEMM" "$PY" benchmarks/gemm.py --devices "$GPU" --sizes 1024,2048,4096 --repeats 3
BENCH_JSON=()
[ -n "${OUT:-}" ] && BENCH_JSON=(--json "$OUT/bench.json")
step "hetero bench (device, model) on $GPU" "$T_BENCH" "${HETERO[@]}" bench --devices "$GPU" --only model,device \
    --references none --quick ${BENCH_JSON[@]+"${BENCH_JSON[@]}"}

say "done in $(( $(date +%s) - START ))s"
if [ ${#FAILED[@]} -gt 0 ]; then
    printf 'failed steps:\n'
    printf '  %s\n' "${FAILED[@]}"
    return 1
fi
echo "every step passed"
}

if [ -n "${OUT:-}" ]; then
    mkdir -p "$OUT"
    main 2>&1 | tee "$OUT/gpu_check.log"
    exit "${PIPESTATUS[0]}"
fi
main
