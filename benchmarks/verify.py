"""Verification throughput: the killable process pool against Math-Verify in-process.

    python benchmarks/verify.py [--answers 1200] [--workers 2]

Scores the same mixed set of (predicted, gold) pairs and B.3 rewards of full
completions both ways, in one run, and prints answers/s for each with the
ratio.  In-process is the reference: the plain ``math_verify.parse/verify``
calls a single process would make (it cannot survive a hanging input; the pool
can).
"""

from __future__ import annotations

import argparse
import random
import time

from rich.console import Console
from rich.table import Table

from soar.math import verify as mv


def mixed_pairs(count: int, seed: int = 0) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    pairs: list[tuple[str, str]] = []
    while len(pairs) < count:
        a, b = rng.randint(1, 99), rng.randint(1, 99)
        kind = rng.randrange(6)
        if kind == 0:
            pairs.append((f"\\frac{{{a}}}{{{b}}}", f"{a}/{b}"))
        elif kind == 1:
            pairs.append((f"{a / 4:g}", f"\\frac{{{a}}}{{4}}"))
        elif kind == 2:
            pairs.append((f"[{a}, {a + b})", f"\\left[{a},{a + b}\\right)"))
        elif kind == 3:
            pairs.append((f"(x+{a})^2", f"x^2+{2 * a}x+{a * a}"))
        elif kind == 4:
            pairs.append((str(a + b), str(a + b + rng.choice([0, 1]))))
        else:
            pairs.append((f"\\{{{a},{b}\\}}", f"\\{{{b},{a}\\}}"))
    return pairs


def completions(pairs: list[tuple[str, str]]) -> list[str]:
    return [f"Step by step we find the value. The final answer is: \\boxed{{{p}}}" for p, _ in pairs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answers", type=int, default=1200)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    pairs = mixed_pairs(args.answers)
    texts = completions(pairs)
    golds = [g for _, g in pairs]
    rows = []

    started = time.perf_counter()
    reference_match = [mv.op_match(p, g) for p, g in pairs]
    t_ref_match = time.perf_counter() - started
    started = time.perf_counter()
    reference_reward = [mv.op_reward(t, g, True, "paper") for t, g in zip(texts, golds)]
    t_ref_reward = time.perf_counter() - started

    started = time.perf_counter()
    with mv.Verifier(workers=args.workers) as verifier:
        t_start = time.perf_counter() - started
        started = time.perf_counter()
        pool_match = verifier.answers_match_many(pairs)
        t_pool_match = time.perf_counter() - started
        started = time.perf_counter()
        pool_reward = verifier.math_rewards(texts, golds)
        t_pool_reward = time.perf_counter() - started
    assert pool_match == reference_match, "pool and in-process disagree on matches"
    assert pool_reward == reference_reward, "pool and in-process disagree on rewards"

    n = len(pairs)
    rows.append(("answers_match", n / t_ref_match, n / t_pool_match))
    rows.append(("math_reward (B.3)", n / t_ref_reward, n / t_pool_reward))
    table = Table(title=f"Math-Verify throughput, {n} mixed answers ({sum(reference_match)} match)")
    table.add_column("call")
    table.add_column("in-process (answers/s)", justify="right")
    table.add_column(f"pool, {args.workers} workers (answers/s)", justify="right")
    table.add_column("pool / in-process", justify="right")
    for name, ref, pool in rows:
        table.add_row(name, f"{ref:,.0f}", f"{pool:,.0f}", f"{pool / ref:.2f}x")
    console = Console()
    console.print(table)
    console.print(f"pool start-up: {t_start:.2f} s (once per process)")


if __name__ == "__main__":
    main()
