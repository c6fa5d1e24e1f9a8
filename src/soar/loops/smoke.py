"""``soar smoke``: the end-to-end check of the pieces every SOAR loop is built on.

Loads the configured model, asks it ``n_samples`` times (student prompt,
student temperature) to solve ``n_problems`` hard *train* problems, scores each
reply with the B.3 reward through the Math-Verify pool, and prints pass@k.  On
a true hard set this should print zeros: that is the regime SOAR starts from.
Sampling and scoring are the engines' own (``HFGenerator`` and
:func:`soar.engines.evaluation.sampled_correct`).
"""

from __future__ import annotations

import random
import time

from rich.console import Console
from rich.table import Table

from soar.config import SoarConfig
from soar.data.load import load_hard_set
from soar.math.passk import mean_pass_at_k


def run_smoke(cfg: SoarConfig, n_problems: int = 16, n_samples: int = 4) -> dict[int, float]:
    from soar.engines.evaluation import sampled_correct
    from soar.engines.generation import SamplingParams, hf_generator
    from soar.loops.setup import setup

    console = Console()
    split = load_hard_set(cfg.data)
    problems = random.Random(cfg.compute.seed).sample(split.train, min(n_problems, len(split.train)))
    console.print(f"hard set: {len(split.train)} train / {len(split.test)} test ({split.directory})")
    started = time.perf_counter()
    with setup(cfg, seed=True) as env:
        console.print(f"model {cfg.model.name} loaded in {time.perf_counter() - started:.1f} s on {env.model.device}")
        generator = hf_generator(cfg.compute, env.model, env.tokenizer, env.precision)
        s = cfg.student
        sampling = SamplingParams(temperature=s.temperature, top_p=s.top_p, max_new_tokens=s.max_new_tokens,
                                  seed=cfg.compute.seed)
        started = time.perf_counter()
        with console.status(f"sampling {len(problems)} x {n_samples} replies and scoring them"):
            scored = sampled_correct(generator, env.tokenizer, problems, env.reward, n=n_samples, sampling=sampling)
    seconds = time.perf_counter() - started
    ks = [k for k in cfg.evaluation.ks if k <= n_samples] or [1]
    passk = mean_pass_at_k(scored.correct, n=n_samples, ks=ks)

    table = Table(title=f"{len(problems)} hard train problems x {n_samples} samples")
    table.add_column("question")
    table.add_column("gold")
    table.add_column("first reply")
    table.add_column("correct", justify="right")
    for problem, group, c in list(zip(problems, scored.replies, scored.correct))[:8]:
        table.add_row(problem.question[:40], problem.answer, group[0][:60].replace("\n", " "), f"{c}/{n_samples}")
    console.print(table)
    console.print("  ".join(f"pass@{k} {v:.3f}" for k, v in passk.items())
                  + f"   ({scored.tokens} tokens sampled and scored in {seconds:.1f} s, "
                  f"{scored.tokens / max(seconds, 1e-9):.0f} tok/s)")
    return passk
