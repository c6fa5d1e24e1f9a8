#!/usr/bin/env bash
# soar's engines on one GPU at the paper's 3B shape, random weights, no network (benchmarks/gpu_check.py).
# Needs torch (CUDA), transformers and peft on the machine; soar itself runs from this checkout.
# Writes gpu_check.json into $OUT when set (the device tool's output folder), else here.
set -euo pipefail
cd "$(dirname "$0")/.."
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true
PYTHONPATH="src${PYTHONPATH:+:$PYTHONPATH}" python benchmarks/gpu_check.py --json "${OUT:-.}/gpu_check.json" "$@"
