#!/usr/bin/env bash
# The CPU walkthrough of the README: filter -> train -> sample -> evaluate -> report, `tiny` preset.
#   bash scripts/walkthrough.sh [FOLDER]      (default runs/walkthrough; rerun to continue)
# Every step writes into FOLDER; a step that already finished is skipped or continued.
set -euo pipefail
W=${1:-runs/walkthrough}
mkdir -p "$W"
stamp() { echo "[$(date +%T)] $*"; }

# 1. A hard set: the problems of a small arithmetic pool that the model fails 16/16.
stamp "filter"
soar filter --data.source arithmetic --data.arithmetic_per_tier 16 --out "$W/filter"

# One config for every later step: the tiny preset on that hard set.
soar config show tiny --data.source "$W/filter/hard.jsonl" --data.splits_dir "$W/splits" \
    --evaluation.seeds "[0]" > "$W/tiny.yaml"

# 2. SOAR: 3 outer steps.
stamp "train"
if [ -f "$W/run/checkpoints/latest" ]; then soar train --resume "$W/run"; else soar train --config "$W/tiny.yaml" --out "$W/run"; fi

# 3. Questions from the base model (Base-T) and from the trained teacher (Grounded-T).
stamp "sample"
soar sample --config "$W/tiny.yaml" --count 16 --out "$W/base_t.jsonl"
soar sample --teacher "$W/run" --count 16 --out "$W/grounded_t.jsonl"

# 4. Fresh students on each question source (+ the hard train split), and the promoted student.
stamp "evaluate"
soar evaluate --config "$W/tiny.yaml" --out "$W/eval/hard-only"
soar evaluate --config "$W/tiny.yaml" --out "$W/eval/base-t" --questions "$W/base_t.jsonl" --name Base-T
soar evaluate --config "$W/tiny.yaml" --out "$W/eval/grounded-t" --questions "$W/grounded_t.jsonl" --name Grounded-T
if [ -s "$W/run/promotion_questions.jsonl" ]; then
    soar evaluate --config "$W/tiny.yaml" --out "$W/eval/pq" --questions "$W/run/promotion_questions.jsonl"
    soar evaluate --config "$W/tiny.yaml" --out "$W/eval/ps" --promoted-student "$W/run"
fi

# 5. Tables, plots and the one-page HTML report; how diverse each teacher's questions are.
stamp "report"
soar report "$W/run" "$W"/eval/* --out "$W/report" --html
soar analyze diversity "$W/base_t.jsonl" "$W/grounded_t.jsonl"
stamp "done: $W/report/table.md, $W/report/report.html"
