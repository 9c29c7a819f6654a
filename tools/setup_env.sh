#!/usr/bin/env bash
# One-command set-up of the mmfca stack in a virtual environment.
#
#   bash tools/setup_env.sh                      # or: make install
#   MMFCA_STACK=oldest bash tools/setup_env.sh   # or: make install-oldest
#
# Stacks (the supported range is tested at both ends):
#   readme  .venv/           torch 2.14.1 + torchvision 0.29.1, interpreter
#                            python3
#   oldest  .venv-torch2.1/  torch 2.1.2 + torchvision 0.16.2 + numpy<2,
#                            interpreter python3.8 (pyenv's if not on PATH;
#                            python3 when there is no 3.8)
# Both get mmcv 2.1.0 with ops, mmdet 3.3.0, mmpretrain 1.2.0,
# mmsegmentation 1.2.2, mmfca (editable), onnx, onnxruntime and mmdeploy
# 1.3.1 (without the pins it declares, which would move onnx and protobuf). tools/setup_env.py decides how
# mmcv is obtained (a wheel cached by an earlier build, MMFCA_WHEELS_DIR,
# OpenMMLab's prebuilt wheels where they exist for this torch, else a
# source build that shows its progress and is cached in
# ~/.cache/mmfca/wheels), and proves the stack.
#
# Idempotent: every step checks what is already installed and skips itself.
# A proven stack is stamped in the venv; while nothing changed (these
# scripts, mmfca's packaging files, the interpreter, any installed package,
# the visible GPUs) a second run only checks the stamp (about a second).
#
# Environment overrides:
#   MMFCA_STACK         readme (default) or oldest
#   PYTHON              interpreter used to create the venv
#   MMFCA_VENV          the venv's folder
#   MMFCA_WHEELS_DIR    a folder of prebuilt mmcv wheels to try first
#                       (none by default)
#   MMFCA_MMCV_INDEX    a find-links URL of prebuilt mmcv wheels instead of
#                       OpenMMLab's, or "none" to skip prebuilt wheels
#   MMCV_BUILD_JOBS     parallel compile jobs of an mmcv source build
#                       (default: the number of cores)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
STACK="${MMFCA_STACK:-readme}"
case "$STACK" in
    readme)
        TORCH_VERSION=2.14.1 TORCHVISION_VERSION=0.29.1 NUMPY_PIN="numpy"
        VENV="${MMFCA_VENV:-$ROOT/.venv}"
        PYTHON="${PYTHON:-python3}" ;;
    oldest)
        TORCH_VERSION=2.1.2 TORCHVISION_VERSION=0.16.2 NUMPY_PIN="numpy<2"
        VENV="${MMFCA_VENV:-$ROOT/.venv-torch2.1}"
        if [ -z "${PYTHON:-}" ]; then
            # pyenv's interpreter itself (its python3.8 shim fails unless 3.8
            # is pyenv's selected version), then one on PATH; each must run
            for candidate in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.8*/bin/python3.8 \
                    "$(command -v python3.8 || true)"; do
                if [ -n "$candidate" ] && "$candidate" -c 'import sys; assert sys.version_info[:2] == (3, 8)' 2>/dev/null; then
                    PYTHON=$candidate
                    break
                fi
            done
            if [ -z "${PYTHON:-}" ]; then
                echo "[setup] no working Python 3.8 found; the oldest stack uses python3 instead" >&2
                PYTHON=python3
            fi
        fi ;;
    *)
        echo "[setup] unknown MMFCA_STACK=$STACK; allowed: readme, oldest" >&2
        exit 2 ;;
esac
PY="$VENV/bin/python"
MMCV_VERSION=2.1.0
MMDEPLOY_VERSION=1.3.1
# the numpy pin rides on every install line (torch 2.1's ABI needs numpy<2);
# setuptools<81 too: mmcv 2.1.0's setup.py imports pkg_resources, and torch
# pulls a newer setuptools
PINS=("$NUMPY_PIN" "setuptools<81")
PIP=("$PY" -m pip install --no-input "${PINS[@]}")
BUILD_TOOLS=(wheel ninja)

log() { printf '\n[setup] %s\n' "$*"; }
# the Python half of the set-up, in the venv; -I: neither the cwd nor tools/
# (which holds test.py and train.py) nor PYTHONPATH shadows an import
helper() { "$PY" -I "$ROOT/tools/setup_env.py" "$@"; }
have() { helper have "$@" 2>/dev/null; }

start=$(date +%s)

# a stack proven earlier and unchanged since: nothing to do
if [ -x "$PY" ] && helper proven --stack "$STACK"; then
    log "done in $(( $(date +%s) - start )) s"
    exit 0
fi

if [ ! -x "$PY" ]; then
    log "creating $VENV with $PYTHON"
    "$PYTHON" -m venv "$VENV"
fi

if ! have "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION" "${BUILD_TOOLS[@]}" "setuptools<81"; then
    log "installing torch $TORCH_VERSION and torchvision $TORCHVISION_VERSION"
    "${PIP[@]}" "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION" "${BUILD_TOOLS[@]}"
fi

# mmcv with ops, and with CUDA ops where torch sees a GPU (a CPU-only mmcv
# there fails at the first RoIAlign on a CUDA tensor)
if ! helper verify-mmcv >/dev/null 2>&1; then
    log "getting mmcv $MMCV_VERSION with ops"
    pin_args=()
    for pin in "${PINS[@]}"; do pin_args+=(--pin "$pin"); done
    helper install-mmcv "${pin_args[@]}"
fi

if ! have mmdet==3.3.0 mmpretrain==1.2.0 mmsegmentation==1.2.2 pycocotools ftfy regex \
        "mmengine>=0.10" "mmengine<0.11"; then
    log "installing mmdet, mmpretrain, mmsegmentation and their undeclared imports"
    # ftfy and regex: imported by mmsegmentation 1.2.2 but not declared.
    "${PIP[@]}" "mmengine>=0.10,<0.11" mmdet==3.3.0 mmpretrain==1.2.0 mmsegmentation==1.2.2 \
        pycocotools ftfy regex "mmcv==$MMCV_VERSION"
fi

# mmfca from this checkout, editable (the tests extra brings onnx,
# onnxruntime and aenum, which MMDeploy imports)
if ! have pytest hypothesis matplotlib onnx onnxruntime aenum || ! helper mmfca-from "$ROOT" 2>/dev/null; then
    log "installing mmfca (editable) with its test and seg extras"
    "${PIP[@]}" --no-build-isolation -e "${ROOT}[tests,seg]"
fi

# MMDeploy (tools/deployment/deploy.py) without its declared dependencies:
# mmdeploy 1.3.1 pins protobuf<=3.20.2, and pip would downgrade the stack's
# protobuf and onnx to meet it. What it imports is installed above (onnx,
# onnxruntime, aenum; prettytable comes with mmsegmentation); the proof
# below exports nothing but imports its export and ONNX Runtime APIs.
if ! have "mmdeploy==$MMDEPLOY_VERSION"; then
    log "installing mmdeploy $MMDEPLOY_VERSION (without its declared pins, which would downgrade onnx and protobuf)"
    "$PY" -m pip install --no-input --no-deps "mmdeploy==$MMDEPLOY_VERSION"
fi

# the stack's own versions, after everything above
if ! moved=$(helper have "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION" \
        "mmcv==$MMCV_VERSION" mmdet==3.3.0 mmpretrain==1.2.0 mmsegmentation==1.2.2 \
        "mmengine>=0.10" "mmengine<0.11" "${PINS[@]}" 2>&1); then
    echo "[setup] an install moved the stack's versions: $moved" >&2
    exit 1
fi

log "proving the stack"
helper prove-stack --root "$ROOT" --stack "$STACK"
log "done in $(( $(date +%s) - start )) s"
