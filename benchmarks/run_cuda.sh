#!/usr/bin/env bash
# The CUDA checks of DEVELOPERS.md in one command, on a GPU machine whose
# Python has the OpenMMLab stack (e.g. after .whl/device_run.sh, see
# DEVELOPERS.md): the layer's CUDA tests, the host cost per call and the
# kernel profile of the layer (bench_layer.py host / profile), the layer's
# times and counts (bench_layer.py time), the network benchmarks
# (bench_network.py variants) in float32 and bf16/fp16 autocast, NCHW and
# channels_last. Each result is written to $OUT (default: ./cuda-results)
# as soon as it exists, so a run cut short still leaves what it finished.
#   bash benchmarks/run_cuda.sh [quick|short]
# `quick` shrinks every size (a dry run on the CPU before using the GPU);
# `short` runs the CUDA tests, the host cost, the fp32 profile and the
# detection backbone.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/cuda-results}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
if [ "${1:-}" = short ]; then  # a few minutes on the GPU
    tests=(tests/models/layers/test_cuda.py)
    host=(--repeats 7)
    prof=(--shapes 0,4 --dtypes fp32 --formats nchw --calls 20)
    layer=()
    net=(--what det --dtypes fp32,bf16 --formats nchw --repeats 5)
elif [ "${1:-}" = quick ]; then
    tests=(tests/models/layers/test_cuda.py)
    host=(--calls 10 --repeats 1)
    prof=(--shapes 3 --calls 2 --rows 5)
    layer=(--repeats 1 --shapes 3 --dtypes fp32,bf16)
    net=(--batch 2 --repeats 1 --dtypes fp32 --det-size 64,96)
else
    tests=(tests/models/layers/test_cuda.py
           tests/models/layers/test_precision_cost.py)
    host=(--repeats 7)
    prof=(--shapes 0,4 --dtypes fp32,bf16 --formats nchw,cl --calls 20)
    layer=(--repeats 15)
    net=(--repeats 7)
fi
start=$(date +%s)
stamp() { echo "[run_cuda] $* after $(( $(date +%s) - start )) s"; }
"$PY" -c "import torch; print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU')" | tee "$OUT/device.txt"
git describe --always --dirty > "$OUT/commit.txt" 2>/dev/null || true
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1 || true
"$PY" -m pytest -q -p no:cacheprovider -rs "${tests[@]}" > "$OUT/tests.txt" 2>&1
echo "tests rc=$?" >> "$OUT/tests.txt"; tail -n 3 "$OUT/tests.txt"; stamp tests
(cd benchmarks && "$PY" bench_layer.py host "${host[@]}") > "$OUT/bench_layer_host.md" 2>&1
stamp host cost
(cd benchmarks && "$PY" bench_layer.py profile "${prof[@]}") > "$OUT/bench_layer_profile.md" 2>&1
stamp layer profile
if [ ${#layer[@]} -gt 0 ]; then
    (cd benchmarks && "$PY" bench_layer.py time "${layer[@]}") > "$OUT/bench_layer_time.md" 2>&1
    stamp layer benchmark
fi
(cd benchmarks && "$PY" bench_network.py variants "${net[@]}") > "$OUT/bench_network_variants.md" 2>&1
stamp network benchmark
