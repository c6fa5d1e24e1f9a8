"""Mixed precision (``model.compute_dtype``) on the default model: speed against float32, and a numerics check.

    python benchmarks/mixed_precision.py [--compute-dtype bfloat16] [--questions 16]

Both columns run in this process on the same weights (SmolLM2-135M-Instruct,
fp32) and the same hard train questions of the ``tiny`` preset; the reference
is plain float32.  Speed, for the three things an inner-loop student does:

* greedy evaluation of ``--questions`` reward questions (32 new tokens);
* sampling an RLOO batch (2 questions x 4 samples, 32 new tokens);
* one RLOO training step on that batch (policy forward/backward, reference
  forward, AdamW).

Numerics, against float32 as the reference:

* per-token log-probs of the sampled replies (the trainer's scoring): mean and
  max absolute difference, in nats;
* greedy replies to the questions: the share that are token-identical, and the
  share whose verdict (correct or not, Math-Verify) is the same;
* the gradient of one RLOO loss: cosine similarity to the float32 gradient;
* after one optimiser step, the largest weight change's size relative to the
  float32 step (AdamW keeps fp32 weights, so nothing is rounded away).
"""

from __future__ import annotations

import argparse
import random
import time
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from soar.algo.rloo import leave_one_out_advantages
from soar.config import load_config
from soar.data.load import load_hard_set
from soar.data.prompts import student_prompt
from soar.engines.batch import Rollouts
from soar.engines.generation import HFGenerator, SamplingParams
from soar.engines.models import load_model
from soar.engines.trainer import PolicyTrainer
from soar.math.verify import Verifier


def timed(fn: Any, repeats: int = 2) -> tuple[float, Any]:
    fn()  # warm-up
    started = time.perf_counter()
    for _ in range(repeats):
        result = fn()
    return (time.perf_counter() - started) / repeats, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compute-dtype", default="bfloat16")
    parser.add_argument("--questions", type=int, default=16)
    args = parser.parse_args()
    console = Console()
    cfg = load_config("tiny")
    model, tok = load_model(cfg.model)
    hard = load_hard_set(cfg.data)
    questions = hard.train[:args.questions]
    low = getattr(torch, args.compute_dtype)
    setups = {"float32": None, args.compute_dtype: low}
    trainers, generators = {}, {}
    base = {n: p.detach().clone() for n, p in model.named_parameters()}
    for name, dtype in setups.items():
        trainers[name] = PolicyTrainer(model if dtype is None else _fresh(model, base), cfg.student, 4,
                                       tok.pad_token_id, compute_dtype=dtype)
        generators[name] = HFGenerator(trainers[name].model, tok, compute_dtype=dtype)

    prompts = [tok(student_prompt(q.question, tok), add_special_tokens=False)["input_ids"] for q in questions]
    batch = prompts[:2]
    sampled = generators["float32"].generate_tokens(batch, 4, SamplingParams(max_new_tokens=32, seed=0))
    completions = [c for group in sampled for c in group]
    advantages = leave_one_out_advantages([[random.Random(i).gauss(0, 1) for i in range(4)],
                                           [random.Random(10 + i).gauss(0, 1) for i in range(4)]])
    rollouts = Rollouts([batch[c.prompt_index] for c in completions], [c.token_ids for c in completions],
                        [a for row in advantages for a in row])
    rows = {}
    with Verifier(2, 10.0) as verifier:
        for name in setups:
            trainer, generator = trainers[name], generators[name]
            greedy_s, greedy = timed(lambda: generator.generate_tokens(prompts, 1, SamplingParams(max_new_tokens=32, greedy=True)))
            sample_s, _ = timed(lambda: generator.generate_tokens(batch, 4, SamplingParams(max_new_tokens=32, seed=1)))
            logprobs, _, mask = trainer._logprobs(rollouts, range(len(completions)))

            def step() -> dict[str, float]:
                trainer.restore(base)
                return trainer.step(rollouts)

            step_s, _ = timed(step)
            grad = torch.cat([p.grad.flatten().float() for p in trainer.params])  # the last step's (kept until the next)
            delta = torch.cat([(p.detach() - base[n]).flatten() for n, p in trainer.model.named_parameters()])
            texts = [g[0].text for g in greedy]
            verdicts = verifier.math_rewards(texts, [q.answer for q in questions], require_boxed=False, kind="paper")
            rows[name] = dict(greedy_s=greedy_s, sample_s=sample_s, step_s=step_s, logprobs=logprobs.detach(), mask=mask,
                              grad=grad, delta=delta, greedy=[g[0].token_ids for g in greedy], verdicts=verdicts)

    ref, low_row = rows["float32"], rows[args.compute_dtype]
    speed = Table(title=f"SmolLM2-135M, {args.questions} questions: {args.compute_dtype} matmuls vs float32 (same run)")
    for col in ("work", "float32 s", f"{args.compute_dtype} s", "speed-up"):
        speed.add_column(col, justify="right")
    for key, label in (("greedy_s", f"greedy eval, {args.questions} x 32 tokens"), ("sample_s", "sample 2 x 4 x 32 tokens"),
                       ("step_s", "RLOO step, 8 replies")):
        speed.add_row(label, f"{ref[key]:.2f}", f"{low_row[key]:.2f}", f"{ref[key] / low_row[key]:.2f}x")
    console.print(speed)

    mask = ref["mask"].bool()
    diff = (ref["logprobs"] - low_row["logprobs"]).abs()[mask]
    same_greedy = sum(a == b for a, b in zip(ref["greedy"], low_row["greedy"])) / len(prompts)
    same_verdict = sum(a == b for a, b in zip(ref["verdicts"], low_row["verdicts"])) / len(prompts)
    cosine = torch.nn.functional.cosine_similarity(ref["grad"].double(), low_row["grad"].double(), dim=0).item()
    step_ratio = (low_row["delta"].abs().max() / ref["delta"].abs().max()).item()
    numerics = Table(title="numerics against float32")
    numerics.add_column("check")
    numerics.add_column("value", justify="right")
    numerics.add_row("token log-prob |diff|, mean / max (nats)", f"{diff.mean():.4f} / {diff.max():.4f}")
    numerics.add_row("greedy replies token-identical", f"{same_greedy:.0%}")
    numerics.add_row("greedy verdicts identical", f"{same_verdict:.0%}")
    numerics.add_row("RLOO gradient cosine", f"{cosine:.4f}")
    numerics.add_row("largest weight change, ratio to float32's", f"{step_ratio:.3f}")
    console.print(numerics)


def _fresh(model: Any, weights: dict[str, torch.Tensor]) -> Any:
    import copy

    clone = copy.deepcopy(model)
    with torch.no_grad():
        for n, p in clone.named_parameters():
            p.copy_(weights[n])
    return clone


if __name__ == "__main__":
    main()
