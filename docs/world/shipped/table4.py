"""The learning-vs-frozen table of docs/world.md: python table4.py DIR (DIR holds learn-s0..2 and frozen-s0..2, each
the run folder of `soar train --preset world --compute.seed S [--teacher.lr 0] --out DIR/...`)."""
import json, statistics as st, sys
ROOT = sys.argv[1]
from collections import Counter
from pathlib import Path
from soar.world.family import kind_of, CARRY_RICH, is_right
def load(run):
    run=Path(run); rows=[]
    for l in open(run/"metrics.jsonl"):
        m=json.loads(l); qs=[json.loads(x) for x in open(run/"questions"/f"step_{m['step']:04d}.jsonl")]
        k=Counter(kind_of(q["question"]) for q in qs)
        rows.append(dict(R=m["mean_reward"], rich=sum(k[c] for c in CARRY_RICH)/len(qs), P=m["promoted"], base=m["baseline_accuracy"],
                         right=sum(is_right(q["question"],q["answer"]) for q in qs)/len(qs)))
    return rows
def ms(x): return f"{st.mean(x):+.3f} ± {st.stdev(x)/len(x)**0.5:.3f}"
print("| seed | promotions (learn / frozen) | promoted at step | baseline accuracy at step 15 (learn / frozen) | mean R up to and including the first promotion (learn / frozen, same steps) | mean R, steps 8-15 (learn / frozen) | carry-rich share, step 0 → mean of steps 8-15 (learn; frozen) | answers right, steps 8-15 (learn / frozen) |")
print("|---|---|---|---|---|---|---|---|")
pre_l, pre_f = [], []
for s in (0,1,2):
    L=load(f"{ROOT}/learn-s{s}"); F=load(f"{ROOT}/frozen-s{s}")
    n=min(len(L),len(F)); L,F=L[:n],F[:n]
    p=[i for i,r in enumerate(L) if r["P"]]; pf=[i for i,r in enumerate(F) if r["P"]]
    first=p[0] if p else n-1
    pre_l += [r["R"] for r in L[:first+1]]; pre_f += [r["R"] for r in F[:first+1]]
    last=slice(8,16)
    print(f"| {s} | {len(p)} / {len(pf)} | {', '.join(map(str,p))} | {L[15]['base']:.2f} / {F[15]['base']:.2f} | {ms([r['R'] for r in L[:first+1]])} / {ms([r['R'] for r in F[:first+1]])} | {ms([r['R'] for r in L[last]])} / {ms([r['R'] for r in F[last]])} | {L[0]['rich']:.2f} → {st.mean(r['rich'] for r in L[last]):.2f}; {F[0]['rich']:.2f} → {st.mean(r['rich'] for r in F[last]):.2f} | {st.mean(r['right'] for r in L[last]):.2f} / {st.mean(r['right'] for r in F[last]):.2f} |")
print(f"\npooled over the 3 seeds, steps up to and including each first promotion: learn {ms(pre_l)} (n={len(pre_l)}), frozen {ms(pre_f)}; ratio {st.mean(pre_l)/st.mean(pre_f):.1f}x")
