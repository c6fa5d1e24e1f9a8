"""Probe with curves: RLOO on one kind, exact success (teacher-forced) and greedy on held-out sets at checkpoints.
python probe3.py NAME lr steps kinds seeds [nq]"""
import json, sys, time, random
import torch
import proto
from collections import Counter

name, lrs, steps, kinds, seeds = sys.argv[1], [float(x) for x in sys.argv[2].split(",")], int(sys.argv[3]), sys.argv[4].split(","), int(sys.argv[5])
nq = int(sys.argv[6]) if len(sys.argv) > 6 else 32
CHECK = [c for c in (0, 5, 10, 20, 30, 40, 60, 80) if c <= steps]
model0, tok, _ = proto.load(name)
import os
HARDMAX = float(os.environ.get("HARDMAX", "1"))
"""Hard problems kept only where the base student's exact success is below this (the world's hard set rule)."""

def hard(kind, n, seed):
    qs = proto.problems(kind, 4 * n, seed)
    e = proto.exact_success(model0, tok, qs)
    return [q for q, x in zip(qs, e) if x < HARDMAX][:n]

HARD_ADD, HARD_SUB = os.environ.get("HARD_ADD", "add-c4+"), os.environ.get("HARD_SUB", "sub-b4+")
"""The hard kinds (held out and the oracle's); HARD_SUB=none: a world of additions only."""
HARDS = [k for k in (HARD_ADD, HARD_SUB) if k != "none"]
ev = {k: (hard(k, 50, "heldout") if k in HARDS else proto.problems(k, 50, "heldout"))
      for k in ["add-c1", "add-c2", HARD_ADD] + (["sub-b1", "sub-b2", HARD_SUB] if HARD_SUB != "none" else [])}

def data_of(kind, seed=0):
    if kind == "oracle":
        qs = [q for k in HARDS for q in hard(k, nq // len(HARDS), f"probe{seed}")]
        return [(q, proto.gold(q)) for q in qs]
    if kind == "junk":
        qs = [q for k in HARDS for q in proto.problems(k, nq // len(HARDS), f"probe{seed}")]
        rng = random.Random(f"junk{seed}")
        return [(q, "".join(rng.choice("0123456789") for _ in proto.gold(q))) for q in qs]
    if kind == "teacher":
        ts = [(q, a) for q, a, _ in proto.teacher_samples(model0, tok, 400, seed=99 + seed) if q and proto.parse(q) and a is not None]
        return ts[:nq]
    if "+" in kind and kind.count("+") > 1 or "&" in kind:
        parts = [p.split("*") for p in kind.split("&")]  # "add-c2*1&add-c0*3": 1 add-c2 and 3 add-c0
        out = []
        for p in parts:
            n = int(p[1]) if len(p) > 1 else nq // len(parts)
            out += [(q, proto.gold(q)) for q in proto.problems(p[0], n, f"probe{seed}")]
        return out
    return [(q, proto.gold(q)) for q in proto.problems(kind, nq, f"probe{seed}")]

def snapshot(model):
    row = {}
    for k, qs in ev.items():
        e = proto.exact_success(model, tok, qs)
        row[k] = (sum(e) / len(e), proto.greedy_acc(model, tok, qs))
    return row

GROUP = int(os.environ.get("GROUP", "8"))
"""Samples per question (the student's group size)."""


def run(kind, lr, seed, group=GROUP):
    model, tok_, _ = proto.load(name)
    data = data_of(kind, seed)
    shares = Counter(proto.kind_of(q) for q, _ in data)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    answers = [a for _, a in data]
    prompt_ids = proto.student_batch(tok, [q for q, _ in data]).repeat_interleave(group, 0)
    curve, succ = {}, 0
    for step in range(steps + 1):
        if step in CHECK:
            model.eval(); curve[step] = snapshot(model) | {"succ": succ}
        if step == steps:
            break
        succ += proto.rloo_step(model, tok, opt, prompt_ids, answers, group, gen)
    curve["shares"] = dict(shares)
    return curve

out = {}
for lr in lrs:
    for kind in kinds:
        for s in range(seeds):
            t0 = time.perf_counter()
            c = run(kind, lr, s)
            out[f"{lr}|{kind}|{s}"] = c
            print(f"== lr {lr} {kind} seed {s} ({time.perf_counter()-t0:.0f}s)", flush=True)
            for st, row in c.items():
                if st == "shares":
                    continue
                print(f"  step {st:3d} succ {row['succ']:5d} " + " ".join(f"{k} {v[0]:.1e}/{v[1]:.2f}" for k, v in row.items() if k != "succ"), flush=True)
            json.dump(out, open(f"{name}/probe3-{sys.argv[2]}-{sys.argv[4]}.json", "w"), indent=1)

import statistics as st_
print("\n| kind | n | add-hard greedy gain | sub-hard greedy gain | R (mean of halves) | successes |")
print("|---|---|---|---|---|---|")
last = CHECK[-1]
for lr in lrs:
    for kind in kinds:
        rows = [out[f"{lr}|{kind}|{s}"] for s in range(seeds)]
        def ms(v):
            m = sum(v) / len(v)
            se = st_.stdev(v) / len(v) ** 0.5 if len(v) > 1 else 0.0
            return f"{m:+.3f} ± {se:.3f}"
        a = [r[last][HARD_ADD][1] - r[0][HARD_ADD][1] for r in rows]
        b = [r[last][HARD_SUB][1] - r[0][HARD_SUB][1] for r in rows] if HARD_SUB != "none" else a
        print(f"| {kind} (lr {lr}) | {len(rows)} | {ms(a)} | {ms(b)} | {ms([(x + y) / 2 for x, y in zip(a, b)])} | {sum(r[last]['succ'] for r in rows)} |")
