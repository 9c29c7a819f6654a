#!/usr/bin/env bash
# One-command set-up of the mmfca stack in .venv/ at the repository root.
#
#   bash tools/setup_env.sh          # or: make install
#
# Idempotent: every step checks what is already installed and skips itself,
# so a second run only verifies the stack (well under a minute).
#
# Environment overrides:
#   PYTHON              interpreter used to create .venv (default: python3)
#   MMFCA_WHEELS_DIR    folder searched for a prebuilt mmcv wheel
#                       (default: ../shared/wheels beside the repository)
#   MMCV_BUILD_JOBS     parallel compile jobs for an mmcv source build
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"
PIP=("$PY" -m pip install --no-input)
WHEELS_DIR="${MMFCA_WHEELS_DIR:-$ROOT/../shared/wheels}"

TORCH_VERSION=2.14.1
TORCHVISION_VERSION=0.29.1
MMCV_VERSION=2.1.0
# setuptools<81: mmcv 2.1.0's setup.py imports pkg_resources.
BUILD_PINS=("setuptools<81" wheel ninja)

log() { printf '\n[setup] %s\n' "$*"; }
have() { "$PY" - "$@" <<'PY' 2>/dev/null
import sys
from importlib.metadata import version, PackageNotFoundError
for spec in sys.argv[1:]:
    name, _, want = spec.partition('==')
    try:
        got = version(name)
    except PackageNotFoundError:
        sys.exit(1)
    if want and got != want:
        sys.exit(1)
PY
}

start=$(date +%s)

if [ ! -x "$PY" ]; then
    log "creating $VENV"
    "${PYTHON:-python3}" -m venv "$VENV"
fi

# setuptools is re-pinned on every install line: torch pulls a newer one.
if ! have "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION"; then
    log "installing torch $TORCH_VERSION and torchvision $TORCHVISION_VERSION"
    "${PIP[@]}" "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION" "${BUILD_PINS[@]}"
fi
if ! "$PY" -c "import setuptools, sys; sys.exit(int(setuptools.__version__.split('.')[0]) >= 81)" 2>/dev/null \
        || ! have wheel ninja; then
    "${PIP[@]}" "${BUILD_PINS[@]}"
fi

mmcv_ops_ok() { "$PY" -c "import mmcv, mmcv.ops; assert mmcv.__version__ == '$MMCV_VERSION'" >/dev/null 2>&1; }

if ! mmcv_ops_ok; then
    pytag=$("$PY" -c "import sys; print(f'cp{sys.version_info[0]}{sys.version_info[1]}')")
    torch_mm=$("$PY" -c "import torch; print('.'.join(torch.__version__.split('+')[0].split('.')[:2]))")
    wheel=""
    # The shared wheel was built against torch 2.14.x; it fits no other torch.
    if [ "$torch_mm" = "2.14" ] && [ -d "$WHEELS_DIR" ]; then
        wheel=$(ls "$WHEELS_DIR"/mmcv-"$MMCV_VERSION"-"$pytag"-"$pytag"-linux_x86_64.whl 2>/dev/null | head -n 1 || true)
    fi
    if [ -n "$wheel" ]; then
        log "installing mmcv from prebuilt wheel $wheel"
        "${PIP[@]}" "$wheel"
    else
        log "building mmcv $MMCV_VERSION with ops from source (about 10 minutes on 2 cores)"
        build=$(mktemp -d)
        trap 'rm -rf "$build"' EXIT
        "$PY" -m pip download --no-deps --no-binary :all: -d "$build" "mmcv==$MMCV_VERSION"
        tar -xzf "$build"/mmcv-"$MMCV_VERSION".tar.gz -C "$build"
        src="$build/mmcv-$MMCV_VERSION"
        # torch 2.14's headers refuse anything older than C++20.
        sed -i 's/-std=c++17/-std=c++20/g' "$src/setup.py"
        grep -q -- '-std=c++20' "$src/setup.py" || { echo "[setup] could not switch mmcv to C++20" >&2; exit 1; }
        MMCV_WITH_OPS=1 FORCE_CUDA=0 MAX_JOBS="${MMCV_BUILD_JOBS:-$(nproc)}" \
            "${PIP[@]}" --no-build-isolation "$src"
    fi
fi

if ! have mmdet==3.3.0 mmpretrain==1.2.0 mmsegmentation==1.2.2 pycocotools ftfy regex mmengine; then
    log "installing mmdet, mmpretrain, mmsegmentation and their undeclared imports"
    # ftfy and regex: imported by mmsegmentation 1.2.2 but not declared.
    "${PIP[@]}" "mmengine>=0.10,<0.11" mmdet==3.3.0 mmpretrain==1.2.0 mmsegmentation==1.2.2 \
        pycocotools ftfy regex "mmcv==$MMCV_VERSION" "${BUILD_PINS[@]}"
fi

# Checked from / so that the repository on the cwd cannot mask a missing or
# stale editable install.
if ! (cd / && "$PY" -c "import mmfca.models, pytest, hypothesis, matplotlib; \
import os, sys; sys.exit(os.path.dirname(mmfca.__file__) != '$ROOT/mmfca')") \
        >/dev/null 2>&1; then
    log "installing mmfca (editable) with its test and seg extras"
    "${PIP[@]}" --no-build-isolation -e "$ROOT[tests,seg]"
fi

log "proving the stack"
cd /
"$PY" - <<'PY'
import torch
import mmcv
from mmcv.ops import nms
boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 11., 11.], [50., 50., 60., 60.]])
scores = torch.tensor([0.9, 0.8, 0.7])
dets, keep = nms(boxes, scores, iou_threshold=0.5)
assert keep.tolist() == [0, 2], keep
import mmdet.models, mmpretrain.models, mmseg.models  # noqa: F401
import mmfca
from mmdet.registry import MODELS as DET
from mmpretrain.registry import MODELS as CLS
from mmseg.registry import MODELS as SEG
for reg in (DET, CLS, SEG):
    assert reg.get('FcaNet') is not None and reg.get('MultiSpectralAttention') is not None
print(f'[setup] stack OK: torch {torch.__version__}, mmcv {mmcv.__version__} (ops), '
      f'mmdet {mmdet.__version__}, mmpretrain {mmpretrain.__version__}, '
      f'mmseg {mmseg.__version__}, mmfca {mmfca.__version__}')
PY
log "done in $(( $(date +%s) - start )) s"
