import json, proto
model, tok, _ = proto.load("d9")
def keep(kind, n, seed, hardmax=None):
    qs = proto.problems(kind, n, seed)
    if hardmax is None:
        return qs
    e = proto.exact_success(model, tok, qs)
    return [q for q, x in zip(qs, e) if x < hardmax]
def write(path, qs, tag):
    with open(path, "w") as f:
        for i, q in enumerate(qs):
            f.write(json.dumps({"id": f"{tag}-{i:04d}", "question": q, "answer": proto.gold(q)}) + "\n")
hard = keep("add-c4+", 300, "pool", 1e-4) + keep("sub-b4+", 300, "pool", 1e-4)
write("soarcheck/hard_pool.jsonl", hard, "hard")
write("soarcheck/step_add.jsonl", proto.problems("add-c2", 64, "step"), "add-c2")
write("soarcheck/step_sub.jsonl", proto.problems("sub-b2", 64, "step"), "sub-b2")
print(len(hard), sum("+" in q for q in hard))
