"""The candidate hard set of a built world: python mkhard.py NAME KIND N HARDMAX OUT_DIR
N problems of KIND (e.g. add-c8) kept where NAME's exact success (teacher-forced probability of the gold reply in
the student format) is below HARDMAX; written as OUT_DIR/hard_pool.jsonl for `soar filter` (fail@128 on top)."""
import json
import sys
from pathlib import Path

import proto

name, kind, n, hardmax, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), Path(sys.argv[5])
model, tok, _ = proto.load(name)
qs = proto.problems(kind, n, "pool")
e = proto.exact_success(model, tok, qs)
kept = [q for q, x in zip(qs, e) if x < hardmax]
out.mkdir(parents=True, exist_ok=True)
with open(out / "hard_pool.jsonl", "w") as f:
    for i, q in enumerate(kept):
        f.write(json.dumps({"id": f"{kind}-{i:04d}", "question": q, "answer": proto.gold(q)}) + "\n")
print(f"{len(kept)} of {n} {kind} problems with exact success < {hardmax:g} -> {out / 'hard_pool.jsonl'}")
