#!/usr/bin/env bash
# soar's engines on one GPU at the paper's 3B shape, random weights, no network (benchmarks/gpu_check.py).
# Needs torch (CUDA), transformers and peft on the machine; soar itself runs from this checkout.  The outer-loop
# section also needs build/gpu-bundle/ (made by scripts/gpu_bundle.sh where PyPI is reachable, carried along):
# a tokenizer, and wheels of soar's pure-Python dependencies, installed here only where a module is missing.
# Writes gpu_check.json into $OUT when set (the device tool's output folder), else here.  Arguments go to the
# Python script (python benchmarks/gpu_check.py --help).
set -euo pipefail
cd "$(dirname "$0")/.."
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true
site=build/gpu-bundle/site
if [ -f build/gpu-bundle/wheels/manifest.txt ]; then
  missing=()
  while read -r module wheel; do
    python -c "import $module" 2>/dev/null || missing+=("build/gpu-bundle/wheels/$wheel")
  done < build/gpu-bundle/wheels/manifest.txt
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing into $site: ${missing[*]##*/}"
    python -m pip install -q --no-index --no-deps --target "$site" "${missing[@]}"
  fi
fi
PYTHONPATH="src:$site${PYTHONPATH:+:$PYTHONPATH}" python benchmarks/gpu_check.py --json "${OUT:-.}/gpu_check.json" "$@"
