"""One inner RLOO step (3.3, Table 3's student column), for one student or many at once.

Each student gets ``student.batch_size`` questions (its ``picks``); every question is asked ``student.group_size``
times with the B.1 student prompt; every reply gets the B.3 reward against the question's answer (the
:class:`~soar.engines.evaluation.Reward` bound once, a :data:`Scorer`); advantages are leave-one-out within each question's
group; then one optimiser step per student.  The sequential worker (one student on a
:class:`~soar.engines.trainer.PolicyTrainer`), the batched-LoRA worker (many on a
:class:`~soar.engines.lora.BatchedLoRATrainer`, sampled together, each row through its student's adapter),
``soar evaluate``'s fresh students, tests and benchmarks all call this function.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from soar.algo.rloo import leave_one_out_advantages
from soar.config import StudentConfig
from soar.data.prompts import student_prompt
from soar.engines.base import SamplingParams
from soar.engines.batch import Rollouts
from soar.types import Problem

Update = Callable[[list[Rollouts]], Sequence[dict[str, float]]]
"""One optimiser step for each student's rollouts, in order; each student's trainer stats."""

Scorer = Callable[[list[str], list[str]], list[float]]
"""Replies and gold answers -> rewards: a :class:`~soar.engines.evaluation.Reward` (B.3) in every command; a
benchmark that times the engines, not Math-Verify, may pass a cheap one."""


@dataclass
class InnerStep:
    """One student's part of an inner step."""

    reward: float
    """Mean B.3 reward of the student's samples."""
    tokens: int
    """Tokens sampled for the student."""
    stats: dict[str, float]
    """The trainer's stats of the student's update (loss, KL, ``skipped``, ...)."""


def one_student(trainer: Any) -> Update:
    """The :data:`Update` of a single :class:`~soar.engines.trainer.PolicyTrainer`."""
    return lambda rollouts: [trainer.step(rollouts[0])]


def rloo_step(update: Update, generator: Any, tokenizer: Any, reward: Scorer, picks: list[list[Problem]],
              student: StudentConfig, seed: int, route: bool = False) -> list[InnerStep]:
    """One inner RLOO step of ``len(picks)`` students, ``picks[i]`` the questions of student ``i``.

    ``route``: the generator runs each prompt through its own student's adapter (batched LoRA students that have
    trained); otherwise all prompts sample the one policy the generator holds."""
    g = student.group_size
    problems = [p for row in picks for p in row]
    prompt_ids = [tokenizer(student_prompt(p.question, tokenizer), add_special_tokens=False)["input_ids"]
                  for p in problems]
    sampling = SamplingParams(temperature=student.temperature, top_p=student.top_p,
                              max_new_tokens=student.max_new_tokens, seed=seed)
    owners = {"students": [i for i, row in enumerate(picks) for _ in row]} if route else {}
    groups = generator.generate_tokens(prompt_ids, g, sampling, **owners)
    rewards = reward([c.text for group in groups for c in group],
                     [p.answer for p, group in zip(problems, groups) for _ in group])
    rollouts, means, tokens, at = [], [], [], 0  # ``at``: the student's first question
    for row in picks:
        mine = groups[at:at + len(row)]
        flat = rewards[at * g:(at + len(row)) * g]
        advantages = leave_one_out_advantages([flat[q * g:(q + 1) * g] for q in range(len(row))])
        completions = [c for group in mine for c in group]
        rollouts.append(informative(Rollouts([prompt_ids[c.prompt_index] for c in completions],
                                             [c.token_ids for c in completions],
                                             [a for per_question in advantages for a in per_question]),
                                    student.kl_coef))
        means.append(sum(flat) / len(flat))
        tokens.append(sum(len(c.token_ids) for c in completions))
        at += len(row)
    generator.sleep()  # a colocated engine (vLLM) frees the device for the update; its next sample wakes it
    return [InnerStep(m, t, dict(stats)) for m, t, stats in zip(means, tokens, update(rollouts))]


def informative(rollouts: Rollouts, kl_coef: float) -> Rollouts:
    """The rows that carry gradient, the same step.

    Without a KL term (``kl_coef`` 0) a reply whose leave-one-out advantage is 0 (its whole group scored alike:
    all right or all wrong, the common case on a hard set) adds exactly nothing to the RLOO loss, which is a mean
    over replies (:func:`soar.algo.losses.rloo_loss`, per-sequence normalisation).  Such rows are dropped and the
    rest have their advantages scaled by kept / all, so the mean, and with it the gradient, is the same; the
    forward and backward passes of the dropped rows are saved.  One row is always kept, so the optimiser still
    steps (AdamW moves on its moments even when the gradient is zero) and the schedule advances as before.
    With a KL term every row counts, and nothing is dropped."""
    n = len(rollouts.advantages)
    if kl_coef or n == 0:
        return rollouts
    keep = [i for i, a in enumerate(rollouts.advantages) if a != 0] or [0]
    if len(keep) == n:
        return rollouts
    scale = len(keep) / n
    pick = lambda xs: None if xs is None else [xs[i] for i in keep]  # noqa: E731
    return Rollouts(pick(rollouts.prompt_ids), pick(rollouts.completion_ids),
                    [rollouts.advantages[i] * scale for i in keep], pick(rollouts.completion_mask))
