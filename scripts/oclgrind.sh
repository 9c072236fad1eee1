#!/usr/bin/env bash
# Run the op tests with their reduced shapes on the Oclgrind simulator, which reports invalid memory
# accesses, data races and uninitialised reads. Any report, or any test failure, fails this script.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
if ! command -v oclgrind >/dev/null 2>&1; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "[oclgrind] installing Debian's oclgrind"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq oclgrind >/dev/null
fi
log=$(mktemp)
cache=$(mktemp -d)
trap 'rm -rf "$log" "$cache"' EXIT
# Oclgrind 21.10's uninitialised-read checker cannot interpret LLVM's `freeze` instruction, which
# optimised builds contain; unoptimised builds check the same source code. HETERO_DEBUG_MEMORY gives
# every tensor an exact-size buffer of its own, so even a one-element overrun is an invalid access.
export HETERO_OCLGRIND=1 HETERO_DEBUG_MEMORY=1 HETERO_BUILD_OPTIONS=-cl-opt-disable HETERO_CACHE_DIR="$cache"
unset HETERO_TEST_DEVICES HETERO_DEVICE
[ "$#" -gt 0 ] || set -- tests/ops
echo "[oclgrind] running $* with reduced shapes under the simulator"
status=0
SECONDS=0
# --durations: the slowest tests, so a test that outgrows the simulator shows in the CI log
oclgrind --data-races --uninitialized --log "$log" \
    "$VENV/bin/python" -m pytest -q -p no:cacheprovider --durations=5 "$@" || status=$?
echo "[oclgrind] ${SECONDS} s under the simulator"
if [ -s "$log" ]; then
    echo "[oclgrind] the simulator reported errors:" >&2
    head -c 20000 "$log" >&2
    exit 1
fi
if [ "$status" -ne 0 ]; then
    echo "[oclgrind] tests failed under the simulator (exit $status)" >&2
    exit "$status"
fi
echo "[oclgrind] clean: no invalid accesses, races or uninitialised reads"
