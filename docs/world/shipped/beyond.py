"""Issue 34 item 9's table: python beyond.py DIR (DIR holds grounded, learnability, no-promotion, batch2, r4: runs of
`soar train --preset world --compute.seed 0 --compute.threads 1 --outer_steps N [variant]`)."""
import json
import statistics as st
import sys
from collections import Counter
from pathlib import Path

from soar.world.family import CARRY_RICH, kind_of

NAMES = {"grounded": "grounded reward (the preset), r = 1, B = 1", "learnability": "learnability reward (Intrinsic-T)",
         "no-promotion": "promotion off", "batch2": "teacher batch 2 groups (B = 2: 16 datasets a step)",
         "r4": "r = 4 students per dataset"}
print("| variant | steps | promotions (at step) | mean R | R up to step 3 | carry-rich share, step 0 → last 3 steps | "
      "baseline accuracy at the end | s / step |\n|---|---|---|---|---|---|---|---|")
for name, label in NAMES.items():
    run = Path(sys.argv[1]) / name
    if not (run / "metrics.jsonl").is_file():
        continue
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    rich = []
    for r in rows:
        qs = [json.loads(x) for x in (run / "questions" / f"step_{r['step']:04d}.jsonl").read_text().splitlines()]
        k = Counter(kind_of(q["question"]) for q in qs)
        rich.append(sum(k[c] for c in CARRY_RICH) / len(qs))
    promoted = [r["step"] for r in rows if r["promoted"]]
    rewards = [r["mean_reward"] for r in rows]
    print(f"| {label} | {len(rows)} | {len(promoted)} ({', '.join(map(str, promoted)) or '-'}) | "
          f"{st.mean(rewards):+.3f} | {st.mean(rewards[:4]):+.3f} | {rich[0]:.2f} → {st.mean(rich[-3:]):.2f} | "
          f"{rows[-1]['baseline_accuracy']:.2f} | {st.mean(r['step_wall'] for r in rows):.0f} |")
