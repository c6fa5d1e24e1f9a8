"""Learning vs frozen teacher over seeds, 12 outer steps each: python seeds.py MODEL_DIR RUNS_DIR SEED [SEED ...]
(runs named d11-learn[-sN] and d11-frozen[-sN] under RUNS_DIR; seed 0 has no suffix)."""
import json
import statistics as st
import sys
from collections import Counter
from pathlib import Path

import proto

proto.load(sys.argv[1])
base = Path(sys.argv[2])
RICH = ("add-c3", "add-c4", "add-c5", "add-c6")


def load(name):
    rows = [json.loads(x) for x in open(base / name / "metrics.jsonl")][:12]
    rich = []
    for r in rows:
        qs = [json.loads(x) for x in open(base / name / "questions" / f"step_{r['step']:04d}.jsonl")]
        kinds = Counter(proto.kind_of(q["question"]) for q in qs)
        rich.append(sum(kinds[k] for k in RICH) / len(qs))
    return rows, rich


def ms(v):
    return f"{st.mean(v):+.3f} ± {st.stdev(v) / len(v) ** 0.5:.3f}"


print("| seed | promotions (learn / frozen) | promoted at steps | baseline accuracy at step 11 (learn / frozen) | "
      "mean R steps 0-4 (learn / frozen) | carry-rich share step 0 / steps 8-11 (learn; frozen) |")
print("|---|---|---|---|---|---|")
firsts = {"learn": [], "frozen": []}
for seed in sys.argv[3:]:
    tag = "" if seed == "0" else f"-s{seed}"
    (a, ra), (b, rb) = load(f"d11-learn{tag}"), load(f"d11-frozen{tag}")
    for name, rows in (("learn", a), ("frozen", b)):
        firsts[name] += [r["mean_reward"] for r in rows[:5]]
    print(f"| {seed} | {sum(r['promoted'] for r in a)} / {sum(r['promoted'] for r in b)} | "
          f"{[r['step'] for r in a if r['promoted']]} | {a[11]['baseline_accuracy']:.2f} / {b[11]['baseline_accuracy']:.2f} | "
          f"{ms([r['mean_reward'] for r in a[:5]])} / {ms([r['mean_reward'] for r in b[:5]])} | "
          f"{ra[0]:.2f} / {st.mean(ra[8:12]):.2f}; {rb[0]:.2f} / {st.mean(rb[8:12]):.2f} |")
print(f"all seeds, mean R steps 0-4: learn {ms(firsts['learn'])}, frozen {ms(firsts['frozen'])}")
