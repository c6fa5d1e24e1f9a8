import json, sys
from collections import defaultdict
from pathlib import Path
import proto
proto.REV["ops"] = True
xs, ys, cs = [], [], defaultdict(list)
for f in sorted(Path(sys.argv[1], "questions").glob("step_*.jsonl")):
    by = defaultdict(list)
    for l in open(f):
        q = json.loads(l); by[q["dataset"]].append(q)
    for d, qs in by.items():
        useful = sum(proto.kind_of(q["question"]) in ("add-c2", "add-c3", "sub-b2", "sub-b3") and proto.gold(q["question"]) == q["answer"] for q in qs)
        xs.append(useful); ys.append(qs[0]["reward"]); cs[useful].append(qs[0]["reward"])
n = len(xs); mx, my = sum(xs)/n, sum(ys)/n
cov = sum((x-mx)*(y-my) for x, y in zip(xs, ys)); vx = sum((x-mx)**2 for x in xs); vy = sum((y-my)**2 for y in ys)
print(f"{n} datasets; corr(right useful questions, R) = {cov/(vx*vy)**0.5:.3f}")
for k in sorted(cs): print(f"  {k} right c2/c3/b2/b3 questions: {len(cs[k])} datasets, mean R {sum(cs[k])/len(cs[k]):+.3f}")
