"""Scoring a policy on real problems: greedy accuracy and sampled correct counts.

Greedy accuracy is the paper's measure of a student (Section 3.2: "average
greedy success" on the reward questions Q_R; Appendix B.6: greedy decoding on
Q_R to reduce noise; the promoted student is picked by greedy accuracy on the
train set).  A reply counts as a success when the Appendix B.3 reward gives it
full marks: a ``\\boxed{}`` answer that Math-Verify matches to the gold answer
(120 under ``kind="paper"``, 1 under ``kind="binary"``; with
``require_boxed=False`` an un-boxed reply is judged on the answer Math-Verify
extracts from its text).  Sampled counts feed pass@k (Appendix B.7).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from soar.config import RewardConfig
from soar.data.prompts import student_prompt
from soar.engines.generation import Generator, SamplingParams
from soar.math.verify import Verifier, full_marks
from soar.types import Problem


@dataclass
class Scored:
    """Per-problem results: ``correct[i]`` successes among ``samples`` replies to problem ``i``."""

    correct: list[int]
    samples: int
    replies: list[list[str]]
    tokens: int = 0
    """Tokens the generator sampled for these replies."""

    @property
    def accuracy(self) -> float:
        """Mean success rate over problems and replies (greedy: the share of problems solved)."""
        return sum(self.correct) / (self.samples * len(self.correct)) if self.correct else 0.0


@dataclass(frozen=True)
class Reward:
    """The Appendix B.3 reward, bound once: Math-Verify's pool and the run's ``reward.*`` scoring (a boxed answer
    required or not, the paper's levels or binary, numeric answers only).  Every command builds one with
    :meth:`of` and hands it to what scores replies (the inner step, greedy accuracy, pass@k, the filter)."""

    verifier: Verifier
    require_boxed: bool = True
    kind: str = "paper"
    numeric: bool = False

    @classmethod
    def of(cls, cfg: RewardConfig, verifier: Verifier) -> Reward:
        return cls(verifier, **cfg.scoring())

    def __call__(self, replies: list[str], golds: list[str]) -> list[float]:
        """The reward of each reply against its gold answer."""
        return self.verifier.math_rewards(replies, golds, require_boxed=self.require_boxed, kind=self.kind,
                                          numeric=self.numeric)

    @property
    def full(self) -> float:
        """A correct reply's reward (what "solved" means in every accuracy)."""
        return full_marks(self.kind)


def _score(generator: Generator, tokenizer: Any, problems: list[Problem], reward: Reward, n: int,
           sampling: SamplingParams) -> Scored:
    prompts = [student_prompt(p.question, tokenizer) for p in problems]
    groups = generator.generate(prompts, n, sampling)
    replies = [[c.text for c in group] for group in groups]
    flat = [text for group in replies for text in group]
    golds = [p.answer for p, group in zip(problems, replies) for _ in group]
    rewards = reward(flat, golds)
    correct, at = [], 0
    for group in replies:
        correct.append(sum(r == reward.full for r in rewards[at:at + len(group)]))
        at += len(group)
    return Scored(correct, n, replies, sum(len(c.token_ids) for group in groups for c in group))


def greedy_accuracy(generator: Generator, tokenizer: Any, problems: list[Problem], reward: Reward, *,
                    max_new_tokens: int) -> Scored:
    """One greedy reply per problem (student prompt), batched by the generator; ``.accuracy`` in [0, 1]."""
    return _score(generator, tokenizer, problems, reward, 1, SamplingParams(max_new_tokens=max_new_tokens, greedy=True))


def sampled_correct(generator: Generator, tokenizer: Any, problems: list[Problem], reward: Reward, *, n: int,
                    sampling: SamplingParams) -> Scored:
    """``n`` sampled replies per problem; ``.correct`` is what :func:`soar.math.passk.mean_pass_at_k` takes."""
    return _score(generator, tokenizer, problems, reward, n, sampling)
