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
# mmsegmentation 1.2.2 and mmfca (editable). How mmcv is obtained is decided
# by tools/mmcv_build_plan.py (a cached or shared wheel that fits, else a
# source build; CUDA ops when torch sees a GPU); a wheel built here is cached
# in ~/.cache/mmfca/wheels for the next fresh clone.
#
# Idempotent: every step checks what is already installed and skips itself,
# so a second run only verifies the stack (well under a minute).
#
# Environment overrides:
#   MMFCA_STACK         readme (default) or oldest
#   PYTHON              interpreter used to create the venv
#   MMFCA_VENV          the venv's folder
#   MMFCA_WHEELS_DIR    folder searched for a prebuilt mmcv wheel
#                       (default: ../shared/wheels beside the repository)
#   MMCV_BUILD_JOBS     parallel compile jobs for an mmcv source build
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
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
# the numpy pin rides on every install line (torch 2.1's ABI needs numpy<2)
PIP=("$PY" -m pip install --no-input "$NUMPY_PIN")
export MMFCA_WHEELS_DIR="${MMFCA_WHEELS_DIR:-$ROOT/../shared/wheels}"
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
    log "creating $VENV with $PYTHON"
    "$PYTHON" -m venv "$VENV"
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

# mmcv with ops, and with CUDA ops where torch sees a GPU (a CPU-only mmcv
# there fails at the first RoIAlign on a CUDA tensor).
mmcv_ops_ok() { "$PY" - "$MMCV_VERSION" >/dev/null 2>&1 <<'PY'
import sys
import mmcv
import torch
from mmcv.ops import nms
assert mmcv.__version__ == sys.argv[1]
if torch.cuda.is_available():
    boxes = torch.tensor([[0., 0., 10., 10.]], device='cuda')
    nms(boxes, torch.ones(1, device='cuda'), 0.5)
PY
}

if ! mmcv_ops_ok; then
    plan=$("$PY" "$ROOT/tools/mmcv_build_plan.py")
    eval "$plan"
    if [ "$MMCV_SOURCE" = pip-nvcc ]; then
        log "torch sees a GPU and no nvcc matches its CUDA: installing $MMCV_PIP_NVCC from PyPI"
        # shellcheck disable=SC2086
        "${PIP[@]}" $MMCV_PIP_NVCC
        plan=$(MMFCA_PIP_NVCC_TRIED=1 "$PY" "$ROOT/tools/mmcv_build_plan.py")
        eval "$plan"
    fi
    if [ "$MMCV_SOURCE" = build ]; then
        log "building mmcv $MMCV_VERSION from source: ops for $([ "$FORCE_CUDA" = 1 ] && echo "CUDA (TORCH_CUDA_ARCH_LIST=$TORCH_CUDA_ARCH_LIST, CUDA_HOME=$CUDA_HOME) and CPU" || echo CPU), $MMCV_CXX_STD (about 10 minutes on 2 cores)"
        build=$(mktemp -d)
        trap 'rm -rf "$build"' EXIT
        "$PY" -m pip download --no-deps --no-binary :all: -d "$build" "mmcv==$MMCV_VERSION"
        tar -xzf "$build"/mmcv-"$MMCV_VERSION".tar.gz -C "$build"
        src="$build/mmcv-$MMCV_VERSION"
        if [ "$MMCV_CXX_STD" = c++20 ]; then
            # torch's headers (2.14) refuse anything older than C++20
            sed -i 's/-std=c++17/-std=c++20/g' "$src/setup.py"
            grep -q -- '-std=c++20' "$src/setup.py" || { echo "[setup] could not switch mmcv to C++20" >&2; exit 1; }
        fi
        export MMCV_WITH_OPS FORCE_CUDA
        [ "$FORCE_CUDA" = 1 ] && export CUDA_HOME TORCH_CUDA_ARCH_LIST
        MAX_JOBS="${MMCV_BUILD_JOBS:-$(nproc)}" \
            "$PY" -m pip wheel --no-input --no-build-isolation --no-deps -w "$build/dist" "$src"
        # cached for the next fresh clone; renamed into place when complete
        mkdir -p "$(dirname "$MMCV_CACHE_DIR")"
        rm -rf "$MMCV_CACHE_DIR.part" && cp -r "$build/dist" "$MMCV_CACHE_DIR.part"
        rm -rf "$MMCV_CACHE_DIR" && mv "$MMCV_CACHE_DIR.part" "$MMCV_CACHE_DIR"
        MMCV_WHEEL=$(ls "$MMCV_CACHE_DIR"/mmcv-*.whl)
        log "cached the built wheel as $MMCV_WHEEL"
    fi
    log "installing mmcv from $MMCV_WHEEL"
    "$PY" -m pip install --no-input --force-reinstall --no-deps "$MMCV_WHEEL"
    "${PIP[@]}" "$MMCV_WHEEL"  # its dependencies
    mmcv_ops_ok || { echo "[setup] mmcv $MMCV_VERSION from $MMCV_WHEEL does not run its ops here" >&2; exit 1; }
fi

if ! have mmdet==3.3.0 mmpretrain==1.2.0 mmsegmentation==1.2.2 pycocotools ftfy regex mmengine; then
    log "installing mmdet, mmpretrain, mmsegmentation and their undeclared imports"
    # ftfy and regex: imported by mmsegmentation 1.2.2 but not declared.
    "${PIP[@]}" "mmengine>=0.10,<0.11" mmdet==3.3.0 mmpretrain==1.2.0 mmsegmentation==1.2.2 \
        pycocotools ftfy regex "mmcv==$MMCV_VERSION" "${BUILD_PINS[@]}"
fi

# Checked from / so that the repository on the cwd cannot mask a missing or
# stale editable install.
if ! (cd / && "$PY" -c "import mmfca.models, pytest, hypothesis, matplotlib, onnx, onnxruntime; \
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
if torch.cuda.is_available():
    from mmcv.ops import RoIAlign
    dets, keep = nms(boxes.cuda(), scores.cuda(), iou_threshold=0.5)
    assert keep.tolist() == [0, 2], keep
    feat = torch.arange(16., device='cuda').view(1, 1, 4, 4)
    rois = torch.tensor([[0., 0., 0., 4., 4.]], device='cuda')
    pooled = RoIAlign((2, 2), 1.0, 0, aligned=False)(feat, rois)
    ref = RoIAlign((2, 2), 1.0, 0, aligned=False)(feat.cpu(), rois.cpu())
    assert torch.allclose(pooled.cpu(), ref), (pooled, ref)
    print(f'[setup] mmcv CUDA ops OK on {torch.cuda.get_device_name(0)}')
print(f'[setup] stack OK: torch {torch.__version__}, mmcv {mmcv.__version__} (ops), '
      f'mmdet {mmdet.__version__}, mmpretrain {mmpretrain.__version__}, '
      f'mmseg {mmseg.__version__}, mmfca {mmfca.__version__}')
PY
log "done in $(( $(date +%s) - start )) s"
