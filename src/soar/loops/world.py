"""``soar world``: measure the gap the designed world was built with; rebuild it from its recipe; make a hard pool.

The gap is SOAR's premise, measured on the world model with soar's own generator and verifier, per kind
(``add-cK``, an 8-digit addition with K carries):

* **teacher, greedy**: the answer the model writes after ``<question>Q</question><answer>\\boxed{`` in the
  teacher format (the question forced, the answer its own);
* **student, greedy**: its reply to the student prompt;
* **student, exact**: the teacher-forced probability of the gold reply ``\\boxed{ANSWER}`` and the end, in the
  student format: the chance that one sampled reply is right, measured without sampling (mean and largest
  over the kind's problems).  For the hard set this is what Hard-Only's students live on;
* **teacher's own problems**: what it writes from the teacher prompt alone (sampled as ``soar train`` samples
  it): the share of each kind, and the share of each kind answered right.

:func:`hard_pool` writes the first step of the shipped hard set: problems of ``data.world_kinds`` kept where
the exact success is below a bound (``soar filter``'s fail@k then runs on top: ``docs/world.md``).
:func:`rebuild` trains the spec's model again from its recipe (:mod:`soar.world.build`) and says whether the
weights are the shipped ones, bit for bit.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from soar.config import SoarConfig
from soar.errors import ConfigError


def exact_success(model: Any, tokenizer: Any, questions: Sequence[str], answers: Sequence[str],
                  prompts: str = "world", chunk: int = 128) -> list[float]:
    """Per question, the probability that the model, prompted as a student, writes ``\\boxed{answer}`` and then
    ends: the product of its next-token probabilities along that reply (teacher forcing, through the trainer's
    :func:`~soar.engines.trainer.row_logprobs`)."""
    import torch

    from soar.data.prompts import render, student_prompt_text
    from soar.engines.trainer import row_logprobs

    out: list[float] = []
    eos = tokenizer.eos_token_id
    for start in range(0, len(questions), chunk):
        prompt_ids, replies = [], []
        for question, answer in zip(questions[start:start + chunk], answers[start:start + chunk]):
            prompt_ids.append(tokenizer(render(student_prompt_text(question, prompts), tokenizer),
                                        add_special_tokens=False)["input_ids"])
            replies.append(tokenizer(f"\\boxed{{{answer}}}", add_special_tokens=False)["input_ids"] + [eos])
        width = max(len(r) for r in replies)
        with torch.no_grad():
            logp = row_logprobs(model, [p + r for p, r in zip(prompt_ids, replies)], [len(p) for p in prompt_ids],
                                width, tokenizer.pad_token_id or 0, model.device)
        inside = torch.tensor([[t < len(r) for t in range(width)] for r in replies], device=logp.device)
        out += (logp * inside).sum(1).exp().tolist()
    return out


def measure_gap(cfg: SoarConfig, per_kind: int = 200, teacher_pairs: int = 500) -> dict[str, Any]:
    """The table of the module docstring, as a dict (``kinds``: per-kind rates; ``hard``: the hard set's exact
    success; ``teacher``: its own problems)."""
    from soar.algo.seeds import derive_seed
    from soar.data.load import load_hard_set
    from soar.data.prompts import render, teacher_prompt_text
    from soar.engines.base import SamplingParams
    from soar.engines.evaluation import greedy_accuracy
    from soar.engines.generation import build_generator
    from soar.loops.setup import setup
    from soar.loops.teacher import sample_teacher
    from soar.types import Problem
    from soar.world.family import KINDS, is_right, kind_of, make_question

    s = cfg.student
    rows: dict[str, dict[str, float]] = {}
    with setup(cfg) as env:
        model, tokenizer, verifier, reward = env.model, env.tokenizer, env.verifier, env.reward
        generator = build_generator(cfg.compute, model, tokenizer)
        prefix = render(teacher_prompt_text(prompts=cfg.model.prompts), tokenizer)
        for kind in KINDS:
            rng = random.Random(derive_seed(cfg.compute.seed, "world_gap", kind))
            problems = [Problem(q, a) for q, a in (make_question(kind, rng) for _ in range(per_kind))]
            forced = [f"{prefix}<question>{p.question}</question><answer>\\boxed{{" for p in problems]
            replies = generator.generate(forced, 1, SamplingParams(max_new_tokens=s.max_new_tokens, greedy=True,
                                                                   stop=("}",)))
            teacher = reward(["\\boxed{" + g[0].text for g in replies], [p.answer for p in problems])
            greedy = greedy_accuracy(generator, tokenizer, problems, reward, max_new_tokens=s.max_new_tokens)
            exact = exact_success(model, tokenizer, [p.question for p in problems], [p.answer for p in problems],
                                  cfg.model.prompts)
            rows[kind] = {"teacher_greedy": sum(r == reward.full for r in teacher) / per_kind,
                          "student_greedy": greedy.accuracy, "exact_mean": sum(exact) / per_kind,
                          "exact_max": max(exact)}
        hard = load_hard_set(cfg.data).train
        exact = exact_success(model, tokenizer, [p.question for p in hard], [p.answer for p in hard],
                              cfg.model.prompts)
        own = sample_teacher(generator, tokenizer, cfg.teacher, teacher_pairs, derive_seed(cfg.compute.seed,
                             "world_gap_teacher"), verifier.parseable_many)
    kinds = Counter(kind_of(r.pair.question) for r in own.rollouts)
    right = Counter(kind_of(r.pair.question) for r in own.rollouts if is_right(r.pair.question, r.pair.answer))
    teacher = {"pairs": len(own.rollouts), "acceptance": own.acceptance_rate,
               "share": {k: kinds[k] / len(own.rollouts) for k in sorted(kinds)},
               "right": {k: right[k] / kinds[k] for k in sorted(kinds)}}
    return {"per_kind": per_kind, "kinds": rows, "teacher": teacher,
            "hard": {"problems": len(hard), "exact_mean": sum(exact) / len(exact), "exact_max": max(exact)}}


def render_gap(gap: dict[str, Any]) -> str:
    """The gap as a text table."""
    lines = [f"{'kind':<7} {'teacher greedy':>14} {'student greedy':>14} {'student exact':>13} {'max':>8} "
             f"{'teacher writes':>14} {'of them right':>13}"]
    t = gap["teacher"]
    for kind, row in gap["kinds"].items():
        lines.append(f"{kind:<7} {row['teacher_greedy']:>14.3f} {row['student_greedy']:>14.3f} "
                     f"{row['exact_mean']:>13.2e} {row['exact_max']:>8.1e} {t['share'].get(kind, 0.0):>14.3f} "
                     f"{t['right'].get(kind, 0.0):>13.3f}")
    h = gap["hard"]
    lines.append(f"hard train set: {h['problems']} problems, student exact success mean {h['exact_mean']:.2e}, "
                 f"largest {h['exact_max']:.2e}")
    lines.append(f"teacher: {t['pairs']} pairs, acceptance {t['acceptance']:.0%}, other (not a world problem) "
                 f"{t['share'].get('other', 0.0):.3f}")
    return "\n".join(lines)


def write_json(data: dict[str, Any], out: Path) -> None:
    from soar.io import write_atomic

    write_atomic(out, json.dumps(data, indent=1))


def hard_pool(cfg: SoarConfig, out: Path, hard_max: float) -> tuple[int, int]:
    """Write ``out`` (JSONL): the ``world`` source's problems (``data.world_kinds`` x ``data.world_per_kind``)
    whose student exact success is below ``hard_max``; returns (kept, drawn).  ``soar filter`` with
    ``--data.source out`` then keeps its fail@k."""
    from soar.data.load import load_pool
    from soar.engines.models import load_model
    from soar.io import write_atomic

    if not hard_max > 0:
        raise ConfigError(f"--hard-max must be positive, got {hard_max}")
    pool = load_pool(replace(cfg.data, source="world"))
    model, tokenizer = load_model(cfg.model)
    exact = exact_success(model, tokenizer, [p.question for p in pool], [p.answer for p in pool], cfg.model.prompts)
    kept = [p for p, e in zip(pool, exact) if e < hard_max]
    write_atomic(out, "".join(json.dumps({"id": f"{p.metadata['kind']}-{i:04d}", "question": p.question,
                                          "answer": p.answer}) + "\n" for i, p in enumerate(kept)))
    return len(kept), len(pool)


def rebuild(cfg: SoarConfig, out: Path, console: Any) -> dict[str, Any]:
    """Train ``model.name``'s world again from its recipe into ``out``; the report says whether the weights equal
    the shipped ones (for the shipped world) bit for bit."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from soar.world.build import SHIPPED, pretrain
    from soar.world.family import WorldSpec, world_spec

    spec = world_spec(cfg.model.name)
    if spec is None:
        raise ConfigError(f"soar world --build rebuilds a world model (model.name world or world:SEED); got "
                          f"{cfg.model.name!r}")
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"--build {out}: the folder is not empty; give a new one")
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as progress:
        task = progress.add_task(f"building {cfg.model.name} on one thread", total=spec.steps)
        report = pretrain(spec, out, lambda step, steps, loss: progress.update(
            task, completed=step, description=f"building {cfg.model.name} on one thread  loss {loss:.3f}"))
    report["sha256"] = _sha256(out / "model.safetensors")
    if spec == WorldSpec():
        report["shipped_sha256"] = _sha256(SHIPPED / "model.safetensors")
        report["equals_shipped"] = report["sha256"] == report["shipped_sha256"]
    return report


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
