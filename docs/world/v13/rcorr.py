"""Which measure of student progress on the hard set follows the useful content of a teacher's dataset?
python rcorr.py NAME N_DATASETS [steps]: N datasets of 16 of the base teacher's own pairs, one student each
(RLOO, lr 2e-4, group 8), and for each: the count of c2/b2 (and c2/c3/b2/b3) questions with right answers,
and the gain on the held-out hard sets (exact success < 1e-5) as greedy accuracy, mean exact success
(teacher-forced probability of the gold reply) and mean log10 exact success."""
import json, math, statistics, sys, time
import torch
import proto

name, n, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 20
model0, tok, _ = proto.load(name)


def hard(kind, k, seed):
    qs = proto.problems(kind, 4 * k, seed)
    e = proto.exact_success(model0, tok, qs)
    return [q for q, x in zip(qs, e) if x < 1e-5][:k]


import os  # noqa: E402

HARD_ADD, HARD_SUB = os.environ.get("HARD_ADD", "add-c4+"), os.environ.get("HARD_SUB", "sub-b4+")
H = hard(HARD_ADD, 50, "heldout") + (hard(HARD_SUB, 50, "heldout") if HARD_SUB != "none" else [])
pool = [(q, a) for q, a, _ in proto.teacher_samples(model0, tok, 40 * n, seed=12345) if q and proto.parse(q) and a is not None]


def measures(model):
    e = proto.exact_success(model, tok, H)
    return proto.greedy_acc(model, tok, H), sum(e) / len(e), sum(math.log10(max(x, 1e-30)) for x in e) / len(e)


base = measures(model0)
rows = []
for d in range(n):
    data = pool[16 * d:16 * d + 16]
    t0 = time.perf_counter()
    model, _, _ = proto.load(name)
    torch.manual_seed(d)
    gen = torch.Generator().manual_seed(d)
    opt = torch.optim.Adam(model.parameters(), lr=2e-4)
    ids = proto.student_batch(tok, [q for q, _ in data]).repeat_interleave(8, 0)
    for _ in range(steps):
        proto.rloo_step(model, tok, opt, ids, [a for _, a in data], 8, gen)
    model.eval()
    m = measures(model)
    right = [proto.kind_of(q) for q, a in data if a == proto.gold(q)]
    u2 = sum(k in ("add-c2", "sub-b2") for k in right)
    u23 = sum(k in ("add-c2", "sub-b2", "add-c3", "sub-b3") for k in right)
    rows.append(dict(u2=u2, u23=u23, greedy=m[0] - base[0], exact=m[1] - base[1], log=m[2] - base[2]))
    print(f"dataset {d}: c2/b2 {u2} c2-3/b2-3 {u23} greedy {rows[-1]['greedy']:+.3f} exact {rows[-1]['exact']:+.2e} "
          f"log10 {rows[-1]['log']:+.3f} ({time.perf_counter() - t0:.0f}s)", flush=True)
    json.dump(rows, open(f"results/{name}-rcorr.json", "w"), indent=1)

for u in ("u2", "u23"):
    for r in ("greedy", "exact", "log"):
        x, y = [row[u] for row in rows], [row[r] for row in rows]
        print(f"corr({u}, {r}) = {statistics.correlation(x, y):+.2f}")
