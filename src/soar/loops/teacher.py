"""The teacher's side of the outer loop: sample g*n accepted QA pairs, then one RLOO update.

Sampling modes (``teacher.sampling``):

* ``rejection`` (the paper, B.2): the B.1 teacher prompt, one free completion
  per rollout, parsed; rejected rollouts are dropped and more are drawn until
  g*n are accepted.  By Proposition 1 the RLOO gradient on the accepted
  samples alone is the gradient for the policy restricted to valid outputs.
* ``structured`` (ours, for small models): the template text ``<question>``,
  ``</question>``, ``<answer>\\boxed{`` and ``</answer>`` is forced; the
  question span is sampled until the model closes it (``</question>``, the
  prompt's own ``<question>``), writes its first ``?`` or ends its turn (EOS;
  the EOS token is dropped); then ``</question>`` is forced (SmolLM2-135M
  closed the tag in 5 of 64 samples, and ended a question with "?" or a full
  stop and EOS far more often: counting EOS took its acceptance from ~20% to
  23-53%, over 4 draws of 8 pairs), the answer span until the ``}`` that
  closes the box (brace-balanced).  Forced tokens are masked out of the policy gradient.  The
  result still goes through the parser (empty questions and unparseable
  answers are rejected and resampled, as in ``rejection``).  With
  ``teacher.answers: solver`` (CPU testbed) the answer is not sampled: the
  same weights answer the question greedily under the student prompt, and the
  reply's answer is forced into the box (masked, like the template).  With
  ``teacher.question_prefix`` (CPU testbed) the question span starts with that
  forced text, e.g. ``What is``.
* ``multiturn`` (D.3): a question turn, then an answer turn; the log-prob is
  the sum of both (one sequence, the second user turn masked).  The paper does
  not print its two prompts; ours are :data:`MULTITURN_QUESTION` and
  :data:`MULTITURN_ANSWER`.

Each round draws enough drafts to finish at the acceptance rate seen so far
(at least the number still needed, at most ``max_attempts_factor`` times it),
so a low-acceptance model needs few rounds rather than many small ones; the
first ``g*n`` valid drafts in draw order are kept.  Attempts are capped at ``teacher.max_attempts_factor * g * n`` rollouts;
reaching the cap raises :class:`~soar.errors.SoarError` with the acceptance rate.

Update: every rollout of dataset X_k gets R_k; advantages are leave-one-out
over the g datasets of its RLOO group, i.e. A_k = R_k - mean_{j != k} R_j;
the B groups of a step (``teacher.batch_size``) make one optimiser step.

Reading of Table 3 (teacher batch size 2, group size 4): a teacher RLOO batch
of B = 2 prompts-worth of groups, each group g = 4 datasets (rollouts of the
one teacher prompt), so an outer step samples B*g = 8 datasets and trains
B*g*r = 32 students.  That is exactly the hardware of B.9 (4 nodes x 8 GPUs:
one student per GPU per outer step); reading "batch size 2" as anything else
would leave 16 of the paper's 32 GPUs idle or give g a second meaning.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from soar.algo.parsing import Parseable, parse_teacher_outputs, rejection_counts
from soar.algo.rloo import leave_one_out_advantages
from soar.algo.seeds import derive_seed
from soar.config import TeacherConfig
from soar.data.prompts import render, student_prompt, teacher_prompt
from soar.engines.batch import Rollouts
from soar.engines.generation import Generator, SamplingParams
from soar.engines.trainer import PolicyTrainer
from soar.errors import SoarError
from soar.math.extract import final_answer
from soar.types import QAPair

MULTITURN_QUESTION = ("You are generating a new math problem for a math assistant. Write ONE original, challenging "
                      "problem that requires at least 2--3 steps of reasoning. Output only the problem statement.")
QUESTION_ENDS = ("</question>", "<question>", "?")
"""Structured mode: the question span ends at the model's own closing tag or at its first question mark."""
MULTITURN_ANSWER = "Now give the final answer to that problem, and only the answer, in \\boxed{}."


class AcceptanceError(SoarError):
    """Teacher sampling hit its attempt cap (``teacher.max_attempts_factor``) before enough drafts passed."""


@dataclass
class TeacherRollout:
    pair: QAPair
    prompt_ids: list[int]
    completion_ids: list[int]
    completion_mask: list[int]


@dataclass
class TeacherSample:
    rollouts: list[TeacherRollout]
    attempts: int
    rejections: dict[str, int] = field(default_factory=dict)
    tokens: int = 0
    valid: int = -1
    """Drafts that passed the parser (a round can pass more than were still needed); -1: ``len(rollouts)``."""

    @property
    def acceptance_rate(self) -> float:
        valid = len(self.rollouts) if self.valid < 0 else self.valid
        return valid / self.attempts if self.attempts else 0.0


@dataclass
class _Draft:
    ids: list[int] = field(default_factory=list)
    mask: list[int] = field(default_factory=list)
    text: str = ""
    span: str = ""
    """Text of the span being sampled (the answer, in structured mode)."""
    alive: bool = True
    """False once a span ran out of token budget (the draft will be rejected by the parser)."""


def sample_teacher(generator: Generator, tokenizer: Any, cfg: TeacherConfig, count: int, seed: int,
                   parseable: Parseable | None = None,
                   progress: Callable[[int, int], None] | None = None) -> TeacherSample:
    """Draw rollouts until ``count`` are accepted (or the attempt cap is hit); ``progress(accepted, attempts)``
    is called after every round."""
    prompt = (render(MULTITURN_QUESTION, tokenizer) if cfg.sampling == "multiturn"
              else teacher_prompt(tokenizer, cfg.prompt_examples))
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    cap = cfg.max_attempts_factor * count
    accepted: list[TeacherRollout] = []
    rejected: list[Any] = []
    attempts = tokens = rounds = valid = 0
    while len(accepted) < count:
        if attempts >= cap:
            rate = len(accepted) / attempts
            raise AcceptanceError(f"teacher sampling ({cfg.sampling}) accepted {len(accepted)} of {attempts} rollouts "
                            f"(acceptance rate {rate:.1%}); needed {count} within teacher.max_attempts_factor * g * n "
                            f"= {cap} attempts. Rejections: {rejection_counts(rejected) or 'none'}.")
        rate = valid / attempts if attempts else 1.0  # draw enough to finish this round at the rate seen so far
        draw = min(cap - attempts, max(4, math.ceil((count - len(accepted)) / max(rate, 1 / cfg.max_attempts_factor))))
        drafts = _draw(generator, tokenizer, cfg, prompt, prompt_ids, draw, derive_seed(seed, "round", rounds))
        rounds += 1
        attempts += draw
        tokens += sum(sum(d.mask) for d in drafts)
        for draft, result in zip(drafts, parse_teacher_outputs([d.text for d in drafts], parseable,
                                                                    numeric=cfg.answer_format == "number",
                                                                    examples=cfg.prompt_examples)):
            if result.pair is None:
                rejected.append(result)
                continue
            valid += 1
            if len(accepted) < count:  # the first ``count`` valid drafts, in draw order
                accepted.append(TeacherRollout(result.pair, prompt_ids, draft.ids, draft.mask))
        if progress is not None:
            progress(len(accepted), attempts)
    return TeacherSample(accepted, attempts, rejection_counts(rejected), tokens, valid)


def _draw(generator: Generator, tokenizer: Any, cfg: TeacherConfig, prompt: str, prompt_ids: list[int], count: int,
          seed: int) -> list[_Draft]:
    drafts = [_Draft() for _ in range(count)]
    if cfg.sampling == "rejection":
        _sample(generator, tokenizer, cfg, prompt_ids, drafts, (), seed)
    elif cfg.sampling == "structured":
        _force(tokenizer, drafts, "<question>" + cfg.question_prefix)
        _sample(generator, tokenizer, cfg, prompt_ids, drafts, QUESTION_ENDS, seed, eos_ends=True, eos_closes=True)
        for d in drafts:  # a question the model ended with "?" or an EOS gets its closing tag forced
            _force(tokenizer, [d], "" if d.text.endswith(("</question>", "<question>")) else "</question>")
        if cfg.answers == "solver":
            _solve(generator, tokenizer, cfg, drafts)
            return drafts
        _force(tokenizer, drafts, "<answer>\\boxed{")
        for d in drafts:
            d.span = ""
        open_ = list(drafts)
        for attempt in range(4):  # the answer ends at the "}" that closes the box (nested braces allowed)
            _sample(generator, tokenizer, cfg, prompt_ids, open_, ("}",), seed + 1 + attempt, eos_ends=True)
            open_ = [d for d in open_ if d.alive and d.span.count("}") <= d.span.count("{")]
            if not open_:
                break
        for d in open_:
            d.alive = False
        _force(tokenizer, drafts, "</answer>")
    else:  # multiturn: question turn; the answer request forced; answer turn
        _sample(generator, tokenizer, cfg, prompt_ids, drafts, (), seed)
        questions = [d.text.strip() for d in drafts]
        for d, question in zip(drafts, questions):
            full = render(MULTITURN_ANSWER, tokenizer, history=[(MULTITURN_QUESTION, question)])
            turn = full[len(prompt) + len(question):] if full.startswith(prompt + question) else "\n" + MULTITURN_ANSWER + "\n"
            ended = tokenizer.decode(d.ids[-1:]) if d.ids else ""
            _force(tokenizer, [d], turn[len(ended):] if ended and turn.startswith(ended) else turn)
            d.span = ""
        _sample(generator, tokenizer, cfg, prompt_ids, drafts, (), seed + 1)
        for d, question in zip(drafts, questions):
            d.text = f"<question>{question}</question><answer>{d.span.strip()}</answer>" if d.alive else ""
    return drafts


def _solve(generator: Generator, tokenizer: Any, cfg: TeacherConfig, drafts: list[_Draft]) -> None:
    """``answers: solver``: each alive draft's question answered greedily under the B.1 student prompt; the
    reply's :func:`~soar.math.extract.final_answer` is forced as the answer.  A draft whose reply states no
    answer is ended (the parser rejects it for its missing answer)."""
    live = [d for d in drafts if d.alive]
    questions = [_QUESTION.search(d.text) for d in live]
    asked = [(d, m.group(1).strip()) for d, m in zip(live, questions) if m is not None and m.group(1).strip()]
    for d in live:
        d.alive = False
    if not asked:
        return
    sampling = SamplingParams(max_new_tokens=cfg.solver_max_new_tokens, greedy=True)
    replies = generator.generate([student_prompt(q, tokenizer) for _, q in asked], 1, sampling)
    for (d, _), (reply,) in zip(asked, replies):
        answer = final_answer(reply.text)
        if answer is not None:
            d.alive = True
            _force(tokenizer, [d], f"<answer>\\boxed{{{answer}}}</answer>")


_QUESTION = re.compile(r"<question>(.*?)</question>", re.DOTALL)


def _force(tokenizer: Any, drafts: list[_Draft], text: str) -> None:
    if not text:
        return
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    for d in drafts:
        if d.alive:
            d.ids += ids
            d.mask += [0] * len(ids)
            d.text += text


def _sample(generator: Generator, tokenizer: Any, cfg: TeacherConfig, prompt_ids: list[int], drafts: list[_Draft],
            stop: tuple[str, ...], seed: int, eos_ends: bool = False, eos_closes: bool = False) -> None:
    """Extend every alive draft by one sampled span (also kept in ``span``).

    The budget, ``max_new_tokens``, counts sampled tokens only (forced template
    text is free); a span cut by it ends the draft, and so does an EOS when
    ``eos_ends`` (structured mode: nothing may follow an end of sequence),
    unless ``eos_closes``: then the EOS closes the span instead, and is dropped
    from the draft (structured question span: the caller forces the closing tag).
    The text appended is the decoding of exactly the kept token ids (a stop
    string can sit inside a token such as ``}}``; the ids, not a cut text, are
    what the trainer sees, so the parser must see the same).
    """
    for d in drafts:
        d.alive = d.alive and sum(d.mask) < cfg.max_new_tokens
    live = [d for d in drafts if d.alive]
    if not live:
        return
    budget = cfg.max_new_tokens - min(sum(d.mask) for d in live)
    sampling = SamplingParams(temperature=cfg.temperature, top_p=cfg.top_p, max_new_tokens=budget, stop=stop, seed=seed)
    groups = generator.generate_tokens([prompt_ids + d.ids for d in live], 1, sampling)
    special = set(tokenizer.all_special_ids)
    for d, (completion,) in zip(live, groups):
        room = cfg.max_new_tokens - sum(d.mask)
        ids = completion.token_ids[:room]
        # the span ended on an end-of-sequence id (any the generator stops at: all are special tokens)
        ended_by_eos = bool(ids) and ids[-1] in special
        closed = eos_closes and ended_by_eos
        if closed:
            ids = ids[:-1]
        piece = tokenizer.decode(ids, skip_special_tokens=True)
        d.ids += ids
        d.mask += [1] * len(ids)
        d.text += piece
        d.span += piece
        d.alive = closed or (completion.finish_reason == "stop" and len(completion.token_ids) <= room
                             and not (eos_ends and ended_by_eos))


def teacher_update(trainer: PolicyTrainer, datasets: list[list[TeacherRollout]], rewards: list[float],
                   groups: int = 1) -> dict[str, float]:
    """One RLOO step over ``groups`` (B) consecutive groups of g datasets: advantages are leave-one-out within
    each group, and every rollout of X_k carries A_k."""
    if groups < 1 or len(rewards) % groups or len(rewards) != len(datasets):
        raise ValueError(f"{len(datasets)} datasets / {len(rewards)} rewards do not split into {groups} groups")
    g = len(rewards) // groups
    advantages = [a for row in leave_one_out_advantages([rewards[b * g:(b + 1) * g] for b in range(groups)])
                  for a in row]
    rollouts = [(r, a) for dataset, a in zip(datasets, advantages) for r in dataset]
    return trainer.step(Rollouts([r.prompt_ids for r, _ in rollouts], [r.completion_ids for r, _ in rollouts],
                                 [a for _, a in rollouts], [r.completion_mask for r, _ in rollouts]))

