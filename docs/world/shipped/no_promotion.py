"""Issue 34 item 4 with promotion off: does the reward rise several-fold, first window against last, against a
frozen teacher with the same seeds?  python no_promotion.py DIR, where DIR holds learn-S and frozen-S for seeds S,
runs of

    soar train --preset world --outer_steps 10 --compute.seed S --compute.threads 1 --promotion.enabled false \\
        [--teacher.lr 0]

With promotion off every reward is measured against the base student, so what the teacher learns to earn stays
visible (with promotion on, the first promotion resets the baseline and takes the gain).
"""

import json
import statistics as st
import sys
from collections import Counter
from pathlib import Path

from soar.world.family import CARRY_RICH, kind_of

FIRST, LAST = range(0, 3), range(7, 10)


def rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def rich(run: Path, step: int) -> float:
    questions = [json.loads(x) for x in (run / "questions" / f"step_{step:04d}.jsonl").read_text().splitlines()]
    kinds = Counter(kind_of(q["question"]) for q in questions)
    return sum(kinds[k] for k in CARRY_RICH) / len(questions)


def se(xs: list[float]) -> float:
    return st.stdev(xs) / len(xs) ** 0.5 if len(xs) > 1 else 0.0


def main() -> None:
    folder = Path(sys.argv[1])
    seeds = sorted(int(p.name.split("-")[1]) for p in folder.glob("learn-*") if (p / "metrics.jsonl").is_file())
    print(f"| seed | mean R, steps {FIRST[0]}-{FIRST[-1]} (learn / frozen) | mean R, steps {LAST[0]}-{LAST[-1]} "
          "(learn / frozen) | learn, last / first | carry-rich share, step 0 → last window (learn; frozen) |\n"
          "|---|---|---|---|---|")
    first_l, last_l, first_f, last_f, paired = [], [], [], [], []
    for seed in seeds:
        learn, frozen = rows(folder / f"learn-{seed}"), rows(folder / f"frozen-{seed}")
        r = lambda rs, steps: st.mean(rs[s]["mean_reward"] for s in steps)  # noqa: E731
        fl, ll, ff, lf = r(learn, FIRST), r(learn, LAST), r(frozen, FIRST), r(frozen, LAST)
        first_l.append(fl), last_l.append(ll), first_f.append(ff), last_f.append(lf)
        paired += [learn[s]["mean_reward"] - frozen[s]["mean_reward"] for s in LAST]
        share = lambda name: (rich(folder / name, 0), st.mean(rich(folder / name, s) for s in LAST))  # noqa: E731
        (a0, a1), (b0, b1) = share(f"learn-{seed}"), share(f"frozen-{seed}")
        ratio = f"{ll / fl:.1f}x" if fl > 0 else "-"
        print(f"| {seed} | {fl:+.3f} / {ff:+.3f} | {ll:+.3f} / {lf:+.3f} | {ratio} | {a0:.2f} → {a1:.2f}; "
              f"{b0:.2f} → {b1:.2f} |")
    print(f"\nPooled over {len(seeds)} seeds (mean ± SE over seeds): learning teacher {st.mean(first_l):+.3f} ± "
          f"{se(first_l):.3f} → {st.mean(last_l):+.3f} ± {se(last_l):.3f} "
          f"({st.mean(last_l) / st.mean(first_l):.1f}x); frozen {st.mean(first_f):+.3f} ± {se(first_f):.3f} → "
          f"{st.mean(last_f):+.3f} ± {se(last_f):.3f}.  Last window, learning minus frozen paired by seed and step: "
          f"{st.mean(paired):+.3f} ± {se(paired):.3f} ({len(paired)} pairs).")


if __name__ == "__main__":
    main()
