"""Per outer step of soar runs on an 8-digit world: mean R and the shares of carry counts in the teacher's questions.
python kinds8.py MODEL_DIR RUN [RUN ...]"""
import json
import sys
from collections import Counter
from pathlib import Path

import proto

proto.load(sys.argv[1])  # digits and operand order from the model's spec
for run in sys.argv[2:]:
    print("==", run)
    metrics = {json.loads(line)["step"]: json.loads(line) for line in open(Path(run) / "metrics.jsonl") if '"step"' in line}
    for f in sorted((Path(run) / "questions").glob("step_*.jsonl")):
        step = int(f.stem.split("_")[1])
        qs = [json.loads(line) for line in open(f)]
        kinds = Counter(proto.kind_of(q["question"]) for q in qs)
        n = len(qs)
        share = lambda names: sum(kinds[k] for k in names) / n  # noqa: E731
        right = sum(proto.parse(q["question"]) is not None and proto.gold(q["question"]) == q["answer"] for q in qs) / n
        m = metrics.get(step, {})
        print(f"step {step:3d} R {m.get('mean_reward', float('nan')):+.3f} c0 {share(['add-c0']):.2f} "
              f"c1 {share(['add-c1']):.2f} c2 {share(['add-c2']):.2f} c3-5 {share(['add-c3', 'add-c4', 'add-c5']):.2f} "
              f"c6-8 {share(['add-c6', 'add-c7', 'add-c8']):.2f} other {share(['other']):.2f} right {right:.2f} "
              f"promoted {m.get('promoted', '')}")
