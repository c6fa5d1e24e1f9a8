"""``soar smoke``: the end-to-end check of the pieces every SOAR loop is built on.

Loads the configured model, asks it ``n_samples`` times (student prompt,
student temperature) to solve ``n_problems`` hard *train* problems, scores each
reply with the B.3 reward through the Math-Verify pool, and prints pass@k.  On
a true hard set this should print zeros: that is the regime SOAR starts from.
Uses plain ``transformers.generate``; the batched generator engine replaces it.
"""

from __future__ import annotations

import random
import time

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from soar.config import SoarConfig
from soar.data.load import load_hard_set
from soar.data.prompts import student_prompt
from soar.math.passk import mean_pass_at_k
from soar.math.verify import Verifier


def run_smoke(cfg: SoarConfig, n_problems: int = 16, n_samples: int = 4) -> dict[int, float]:
    import torch

    from soar.engines.models import load_model

    console = Console()
    torch.manual_seed(cfg.compute.seed)
    split = load_hard_set(cfg.data)
    problems = random.Random(cfg.compute.seed).sample(split.train, min(n_problems, len(split.train)))
    console.print(f"hard set: {len(split.train)} train / {len(split.test)} test ({split.directory})")
    started = time.perf_counter()
    model, tokenizer = load_model(cfg.model)
    console.print(f"model {cfg.model.name} loaded in {time.perf_counter() - started:.1f} s on {model.device}")

    completions: list[list[str]] = []
    tokens = 0
    started = time.perf_counter()
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("sampling", total=len(problems))
        for problem in problems:
            inputs = tokenizer([student_prompt(problem.question, tokenizer)], return_tensors="pt").to(model.device)
            with torch.no_grad():
                out = model.generate(
                    **inputs,
                    do_sample=cfg.student.temperature > 0,
                    temperature=cfg.student.temperature,
                    top_p=cfg.student.top_p,
                    max_new_tokens=cfg.student.max_new_tokens,
                    num_return_sequences=n_samples,
                    pad_token_id=tokenizer.pad_token_id,
                )
            new = out[:, inputs["input_ids"].shape[1]:]
            tokens += int((new != tokenizer.pad_token_id).sum())
            completions.append(tokenizer.batch_decode(new, skip_special_tokens=True))
            progress.advance(task)
    gen_seconds = time.perf_counter() - started

    with Verifier(cfg.reward.verify_workers, cfg.reward.verify_timeout_s) as verifier:
        flat = [c for group in completions for c in group]
        golds = [p.answer for p in problems for _ in range(n_samples)]
        rewards = verifier.math_rewards(flat, golds, require_boxed=cfg.reward.require_boxed, kind=cfg.reward.kind)
    full = 1.0 if cfg.reward.kind == "binary" else 120.0
    correct = [sum(r == full for r in rewards[i * n_samples:(i + 1) * n_samples]) for i in range(len(problems))]
    ks = [k for k in cfg.evaluation.ks if k <= n_samples] or [1]
    passk = mean_pass_at_k(correct, n=n_samples, ks=ks)

    table = Table(title=f"{len(problems)} hard train problems x {n_samples} samples")
    table.add_column("question")
    table.add_column("gold")
    table.add_column("first reply")
    table.add_column("correct", justify="right")
    for problem, group, c in list(zip(problems, completions, correct))[:8]:
        table.add_row(problem.question[:40], problem.answer, group[0][:60].replace("\n", " "), f"{c}/{n_samples}")
    console.print(table)
    console.print("  ".join(f"pass@{k} {v:.3f}" for k, v in passk.items())
                  + f"   ({tokens} tokens in {gen_seconds:.1f} s, {tokens / max(gen_seconds, 1e-9):.0f} tok/s)")
    return passk
