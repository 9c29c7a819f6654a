#!/usr/bin/env bash
# One-command set-up of the mmfca stack in a virtual environment; what it
# does, and its overrides MMFCA_STACK, PYTHON, MMFCA_VENV, MMFCA_WHEELS_DIR,
# MMFCA_MMCV_INDEX and MMCV_BUILD_JOBS: docs/installation.md.
#   bash tools/setup_env.sh                      # or: make install
#   MMFCA_STACK=oldest bash tools/setup_env.sh   # or: make install-oldest
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
STACK="${MMFCA_STACK:-readme}"
log() { printf '\n[setup] %s\n' "$*"; }
die() { echo "[setup] $*" >&2; exit 2; }
case "$STACK" in
    readme)
        VENV="${MMFCA_VENV:-$ROOT/.venv}"
        PYTHON="${PYTHON:-python3}" ;;
    oldest)
        VENV="${MMFCA_VENV:-$ROOT/.venv-torch2.1}"
        # pyenv's interpreter itself (its shim fails unless 3.8 is
        # selected), then one on PATH, else python3; each must run
        for candidate in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.8*/bin/python3.8 python3.8; do
            if [ -z "${PYTHON:-}" ] && "$candidate" -c 'import sys; assert sys.version_info[:2] == (3, 8)' 2>/dev/null; then
                PYTHON=$candidate
            fi
        done
        [ -n "${PYTHON:-}" ] || { PYTHON=python3; echo "[setup] no working Python 3.8 found; the oldest stack uses python3 instead" >&2; } ;;
    *) die "unknown MMFCA_STACK=$STACK; allowed: readme, oldest" ;;
esac
case "${MMFCA_MMCV_INDEX:-}" in
    ''|none|http://*|https://*|file://*) ;;
    *) die "MMFCA_MMCV_INDEX=$MMFCA_MMCV_INDEX is neither \"none\" nor a URL (http://, https:// or file://); unset it to use OpenMMLab's index" ;;
esac
[ -z "${MMFCA_WHEELS_DIR:-}" ] || [ -d "$MMFCA_WHEELS_DIR" ] ||
    die "MMFCA_WHEELS_DIR=$MMFCA_WHEELS_DIR is not a folder; set it to a folder of prebuilt mmcv wheels, or unset it"
JOBS="${MMCV_BUILD_JOBS:-$(nproc)}"
[[ "$JOBS" =~ ^[1-9][0-9]*$ ]] || die "MMCV_BUILD_JOBS=$JOBS is not a positive whole number"
REQ="$ROOT/requirements/$STACK.txt"
LOCK="$ROOT/requirements/$STACK.lock"; [ -f "$LOCK" ] || LOCK=$REQ  # no lock: $REQ alone (docs/installation.md)
PY="$VENV/bin/python"
PIP=("$PY" -m pip install --no-input -c "$REQ" -c "$LOCK")
# the Python half, in the venv; -I: neither cwd, tools/ (test.py, train.py) nor PYTHONPATH shadows an import
helper() { "$PY" -I "$ROOT/tools/setup_env.py" "$@"; }

if [ -x "$PY" ]; then
    helper proven "$STACK" && { log "done in $SECONDS s"; exit 0; }
else
    log "creating $VENV with $PYTHON"
    "$PYTHON" -m venv "$VENV"
fi

log "installing torch and what mmcv needs to build and import (${LOCK#"$ROOT"/})"
"${PIP[@]}" torch torchvision numpy mmengine setuptools wheel ninja

# mmcv with ops, with CUDA ops where torch sees a GPU (its proof runs them)
mmcv_from() {
    log "trying the mmcv wheels of $1"
    "${PIP[@]}" -q --force-reinstall --no-deps --no-index --only-binary :all: \
            --timeout 5 --retries 0 -f "$1" mmcv >/dev/null 2>&1 ||
        { echo "[setup] none there for this Python (or it could not be reached)"; return 1; }
    helper verify-mmcv || { echo "[setup] that mmcv does not run its ops here"; return 1; }
}
if ! helper verify-mmcv >/dev/null 2>&1; then
    sources=$(helper mmcv-sources)
    found=
    while IFS= read -r source; do
        [ -n "$source" ] && mmcv_from "$source" && { found=1; break; }
    done <<< "$sources"
    if [ -z "$found" ]; then
        helper build-mmcv "$JOBS"
        mmcv_from "$(helper mmcv-sources | head -1)" || die "the mmcv built here does not run its ops"
    fi
    log "mmcv runs its ops here"
fi

log "installing mmfca (editable, extras tests and seg) and the model zoos"
"${PIP[@]}" --no-build-isolation -e "$ROOT[tests,seg]"
# without its declared dependencies: its protobuf<=3.20.2 would downgrade
# the stack's protobuf and onnx; what it imports comes with mmfca's extras
log "installing mmdeploy (without its declared pins)"
"${PIP[@]}" --no-deps mmdeploy

helper check-versions "$LOCK"
log "proving the stack"
helper prove "$STACK"
log "done in $SECONDS s"
