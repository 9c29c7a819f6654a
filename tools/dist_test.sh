#!/usr/bin/env bash
# Multi-GPU / multi-machine evaluation through torchrun and mmengine's
# launcher:  bash tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py options]
exec bash "$(dirname "$0")/dist_run.sh" test.py "$3" "$1" "$2" "${@:4}"
