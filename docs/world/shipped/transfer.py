"""The shipped world's cross-transfer table (issue 34): which kind of stepping stone moves which kind of problem.

For each training kind, 4 students start from the shipped world model and run one inner loop of the world preset
(20 RLOO steps, 16 questions x 8 samples a step, binary reward) on 16 problems of that kind; then each is scored
greedy on held-out problems of several kinds and on the hard set's test split (the 199 add-c8 problems no
method trains on).  The same code path as ``soar train``'s students (``build_worker``, ``worker.train``): the
score is the run's own B.3 reward (Math-Verify), per question.

    python docs/world/shipped/transfer.py > docs/world/shipped/transfer.md     (one thread, ~3 minutes)
"""

from __future__ import annotations

import statistics as st
import sys
import time

import torch

from soar.algo.seeds import derive_seed
from soar.config import load_config
from soar.data.load import load_hard_set
from soar.loops.setup import setup
from soar.students.worker import build_worker
from soar.types import StudentJob
from soar.world.family import generate_problems

TRAIN = ["add-c0", "add-c1", "add-c2", "add-c3", "add-c4", "add-c6", "hard"]  # hard: Hard-Only's data (oracle)
SCORE = ["add-c1", "add-c2", "add-c3", "add-c5"]
PER_KIND, STUDENTS = 50, 4


def main() -> None:
    torch.set_num_threads(1)
    cfg = load_config("world", overrides={"reward.verify_workers": "1"})
    hard = load_hard_set(cfg.data)
    held_out = {kind: generate_problems([kind], PER_KIND, seed=101) for kind in SCORE}
    held_out["hard test"] = list(hard.test)
    scored = [p.to_dict() for kind in held_out for p in held_out[kind]]
    spans, at = {}, 0
    for kind, problems in held_out.items():
        spans[kind], at = (at, at + len(problems)), at + len(problems)
    rows: dict[str, dict[str, list[float]]] = {}
    started = time.perf_counter()
    with setup(cfg) as env:
        worker = build_worker(cfg, env.model, env.tokenizer, env.verifier)
        base = worker.evaluate("base", scored)
        rows["(base student)"] = {k: [sum(base.correct[a:b]) / (b - a)] for k, (a, b) in spans.items()}
        for kind in TRAIN:
            rows[kind] = {k: [] for k in spans}
            for j in range(STUDENTS):
                if kind == "hard":
                    pool = list(hard.train)
                    data = [pool[(16 * j + i) % len(pool)].to_dict() for i in range(cfg.inner.dataset_size)]
                else:
                    data = [p.to_dict() for p in generate_problems([kind], cfg.inner.dataset_size, seed=200 + j)]
                job = StudentJob(f"{kind}-j{j}", 0, data, scored, derive_seed(0, "transfer", kind, j),
                                 cfg.inner.steps, 0, j)
                (result, _), = worker.train([job])
                for k, (a, b) in spans.items():
                    rows[kind][k].append(sum(result.correct[a:b]) / (b - a))
                print(f"{kind} student {j}: " + ", ".join(f"{k} {v[-1]:.2f}" for k, v in rows[kind].items()),
                      file=sys.stderr, flush=True)
    head = list(spans)
    print(f"Greedy accuracy after one inner loop ({cfg.inner.steps} steps, lr {cfg.student.lr:g}), mean ± SE over "
          f"{STUDENTS} students; {PER_KIND} held-out problems a kind, {len(hard.test)} hard test problems "
          f"({time.perf_counter() - started:.0f} s, one thread).\n")
    print("| trained on | " + " | ".join(head) + " |\n|---|" + "---|" * len(head))
    for kind, row in rows.items():
        cells = []
        for k in head:
            v = row[k]
            se = st.stdev(v) / len(v) ** 0.5 if len(v) > 1 else 0.0
            cells.append(f"{st.mean(v):.2f}" + (f" ± {se:.2f}" if len(v) > 1 else ""))
        print(f"| {kind} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
