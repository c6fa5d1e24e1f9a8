"""``soar world``: build the designed world's base model and measure the gap it was built with; make its hard set.

The gap is SOAR's premise, measured on the built model with soar's own generator and verifier, per tier:

* **teacher, greedy**: the answer the model writes after ``<question>Q</question><answer>\\boxed{`` in the
  teacher format (the question forced, the answer its own);
* **student, greedy** and **student, sampled**: its reply to the student prompt (greedy, and the share of
  ``samples`` replies at the student's temperature that are right);
* **teacher's own problems**: what it writes from the teacher prompt alone (sampled as ``soar train`` samples
  it): the share of each tier, and the share of each tier answered right.

:func:`prepare_hard_set` makes the ``world-hard`` source on first use: ``soar filter`` over the ``world`` pool
into ``~/.cache/soar/world-hard`` (any earlier set there for another build of the world is replaced).
"""

from __future__ import annotations

import json
import random
import shutil
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

from soar.config import SoarConfig
from soar.errors import ConfigError


def prepare_hard_set(cfg: SoarConfig, console: Any) -> None:
    """With ``data.source: world-hard``, make the world's fail@k set unless a matching one is there already."""
    from soar.data.problems import world_hard_dir
    from soar.data.provenance import require_provenance

    if cfg.data.source != "world-hard" or cfg.data.fail_at_k is None:
        return
    try:
        require_provenance(cfg.data, cfg.model, "--preset world", cfg.out_dir)
        return
    except ConfigError:
        pass
    from soar.loops.filter import run_filter

    folder = world_hard_dir()
    shutil.rmtree(folder, ignore_errors=True)  # a set for another build of the world, or a cut-short one
    console.print(f"making the world's hard set (first use): fail@{cfg.data.fail_at_k} of "
                  f"{len(cfg.data.world_tiers)} x {cfg.data.world_per_tier} problems -> {folder}")
    run_filter(replace(cfg, data=replace(cfg.data, source="world")), folder, console=console)
    require_provenance(cfg.data, cfg.model, "--preset world", cfg.out_dir)


def measure_gap(cfg: SoarConfig, per_tier: int = 200, samples: int = 8, teacher_pairs: int = 200
                ) -> dict[str, Any]:
    """The table of the module docstring, as a dict (``tiers``: per-tier rates; ``teacher``: its own problems)."""
    from soar.algo.seeds import derive_seed
    from soar.data.prompts import render, teacher_prompt_text
    from soar.engines.base import SamplingParams
    from soar.engines.evaluation import greedy_accuracy, sampled_correct
    from soar.engines.generation import build_generator
    from soar.loops.setup import setup
    from soar.loops.teacher import sample_teacher
    from soar.types import Problem
    from soar.world.family import TIERS, is_right, kind_of, make_question

    s = cfg.student
    rows: dict[str, dict[str, float]] = {}
    with setup(cfg) as env:
        model, tokenizer, verifier, reward = env.model, env.tokenizer, env.verifier, env.reward
        generator = build_generator(cfg.compute, model, tokenizer)
        for tier in TIERS:
            rng = random.Random(derive_seed(cfg.compute.seed, "world_gap", tier))
            problems = [Problem(q, str(a)) for q, a in (make_question(tier, rng) for _ in range(per_tier))]
            prefix = render(teacher_prompt_text(prompts=cfg.model.prompts), tokenizer)
            forced = [f"{prefix}<question>{p.question}</question><answer>\\boxed{{" for p in problems]
            replies = generator.generate(forced, 1, SamplingParams(max_new_tokens=s.max_new_tokens, greedy=True,
                                                                   stop=("}",)))
            teacher = reward(["\\boxed{" + g[0].text for g in replies], [p.answer for p in problems])
            greedy = greedy_accuracy(generator, tokenizer, problems, reward, max_new_tokens=s.max_new_tokens)
            sampled = sampled_correct(generator, tokenizer, problems, reward, n=samples,
                                      sampling=SamplingParams(temperature=s.temperature, top_p=s.top_p,
                                                              max_new_tokens=s.max_new_tokens,
                                                              seed=derive_seed(cfg.compute.seed, "world_gap_s", tier)))
            rows[tier] = {"teacher_greedy": sum(r == reward.full for r in teacher) / per_tier,
                          "student_greedy": greedy.accuracy, "student_sampled": sampled.accuracy,
                          "student_never": sum(c == 0 for c in sampled.correct) / per_tier}
        own = sample_teacher(generator, tokenizer, cfg.teacher, teacher_pairs, derive_seed(cfg.compute.seed,
                             "world_gap_teacher"), verifier.parseable_many)
    kinds = Counter(kind_of(r.pair.question) for r in own.rollouts)
    right = Counter(kind_of(r.pair.question) for r in own.rollouts if is_right(r.pair.question, r.pair.answer))
    teacher = {"pairs": len(own.rollouts), "acceptance": own.acceptance_rate,
               "share": {k: kinds[k] / len(own.rollouts) for k in sorted(kinds)},
               "right": {k: right[k] / kinds[k] for k in sorted(kinds)}}
    return {"per_tier": per_tier, "samples": samples, "tiers": rows, "teacher": teacher}


def render_gap(gap: dict[str, Any]) -> str:
    """The gap as a text table."""
    lines = [f"{'tier':<6} {'teacher greedy':>14} {'student greedy':>14} {'student sampled':>15} "
             f"{'never (0/' + str(gap['samples']) + ')':>12} {'teacher writes':>14} {'of them right':>13}"]
    t = gap["teacher"]
    for tier, row in gap["tiers"].items():
        lines.append(f"{tier:<6} {row['teacher_greedy']:>14.3f} {row['student_greedy']:>14.3f} "
                     f"{row['student_sampled']:>15.3f} {row['student_never']:>12.3f} "
                     f"{t['share'].get(tier, 0.0):>14.3f} {t['right'].get(tier, 0.0):>13.3f}")
    other = t["share"].get("other", 0.0)
    lines.append(f"teacher: {t['pairs']} pairs, acceptance {t['acceptance']:.0%}, other (not a world problem) "
                 f"{other:.3f}")
    return "\n".join(lines)


def write_gap(gap: dict[str, Any], out: Path) -> None:
    from soar.io import write_atomic

    write_atomic(out, json.dumps(gap, indent=1))
