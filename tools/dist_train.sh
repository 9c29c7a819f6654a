#!/usr/bin/env bash
# Multi-GPU / multi-machine training through torchrun and mmengine's
# launcher:  bash tools/dist_train.sh CONFIG GPUS [train.py options]
# Multi-machine: set NNODES, NODE_RANK, MASTER_ADDR (and PORT) per machine.
exec bash "$(dirname "$0")/dist_run.sh" train.py "$2" "$1" "${@:3}"
