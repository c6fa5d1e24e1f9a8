"""A learning run against its frozen-teacher control (same seeds): per step R and the teacher's share of carry-rich
(c3-c6) questions, and first vs last window means with standard errors, paired by step.
python compare.py MODEL_DIR LEARN_RUN FROZEN_RUN [WINDOW]"""
import json
import statistics as st
import sys
from collections import Counter
from pathlib import Path

import proto

proto.load(sys.argv[1])
learn, frozen = Path(sys.argv[2]), Path(sys.argv[3])
window = int(sys.argv[4]) if len(sys.argv) > 4 else 10
RICH = ("add-c3", "add-c4", "add-c5", "add-c6")


def per_step(run):
    metrics = {json.loads(x)["step"]: json.loads(x) for x in open(run / "metrics.jsonl") if '"step"' in x}
    rows = {}
    for f in sorted((run / "questions").glob("step_*.jsonl")):
        step = int(f.stem.split("_")[1])
        if step not in metrics:
            continue
        qs = [json.loads(x) for x in open(f)]
        kinds = Counter(proto.kind_of(q["question"]) for q in qs)
        rows[step] = dict(R=metrics[step]["mean_reward"], rich=sum(kinds[k] for k in RICH) / len(qs),
                          c0=kinds["add-c0"] / len(qs), promoted=metrics[step]["promoted"],
                          best=max(metrics[step]["rewards"]))
    return rows


a, b = per_step(learn), per_step(frozen)
steps = sorted(set(a) & set(b))
print("| step | R learn | R frozen | carry-rich share learn | frozen | promoted (learn / frozen) |")
print("|---|---|---|---|---|---|")
for s in steps:
    print(f"| {s} | {a[s]['R']:+.3f} | {b[s]['R']:+.3f} | {a[s]['rich']:.2f} | {b[s]['rich']:.2f} | "
          f"{'yes' if a[s]['promoted'] else ''} / {'yes' if b[s]['promoted'] else ''} |")


def ms(v):
    return f"{st.mean(v):+.4f} ± {st.stdev(v) / len(v) ** 0.5:.4f}" if len(v) > 1 else f"{v[0]:+.4f}"


first, last = steps[:window], steps[-window:]
for name, rows in (("learn", a), ("frozen", b)):
    print(f"{name}: R first {window} {ms([rows[s]['R'] for s in first])}, last {window} {ms([rows[s]['R'] for s in last])}; "
          f"carry-rich share first {st.mean(rows[s]['rich'] for s in first):.3f}, last {st.mean(rows[s]['rich'] for s in last):.3f}; "
          f"promotions {sum(rows[s]['promoted'] for s in steps)}")
diff = [a[s]["R"] - b[s]["R"] for s in last]
print(f"last {window} steps, learn - frozen, paired by step: {ms(diff)}")
