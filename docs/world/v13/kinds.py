"""Per outer step: mean R, share of useful kinds (add-c2/c3, sub-b2/b3) and of c1/b1 in the teacher's questions."""
import json, sys
from collections import Counter
from pathlib import Path
import proto
proto.REV["ops"] = True
for run in sys.argv[1:]:
    print("==", run)
    m = {json.loads(l)["step"]: json.loads(l) for l in open(Path(run) / "metrics.jsonl") if '"step"' in l}
    rows = []
    for f in sorted((Path(run) / "questions").glob("step_*.jsonl")):
        step = int(f.stem.split("_")[1])
        qs = [json.loads(l) for l in open(f)]
        k = Counter(proto.kind_of(q["question"]) for q in qs)
        n = len(qs)
        useful = sum(k[x] for x in ("add-c2", "add-c3", "sub-b2", "sub-b3")) / n
        one = (k["add-c1"] + k["sub-b1"]) / n
        right = sum(proto.gold(q["question"]) == q["answer"] for q in qs if proto.parse(q["question"])) / n
        R = sum(q["reward"] for q in qs) / n
        rows.append((step, R, useful, one, right))
        print(f"step {step:3d} R {R:+.3f} useful(c2,c3,b2,b3) {useful:.2f} c1/b1 {one:.2f} right {right:.2f} "
              f"add {sum(v for kk, v in k.items() if kk.startswith('add'))/n:.2f} promo {m.get(step, {}).get('promoted', '')}")
