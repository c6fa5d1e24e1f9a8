"""Teacher rewards and student promotion (Section 3.2-3.4, Algorithm 1, Appendix B.3-B.4).

Pure functions over plain numbers; the loop calls them and keeps the state.

* :func:`partition`: g*n accepted QA pairs -> g datasets of n, in order
  (X_k = pairs n(k-1)+1 .. nk).
* :func:`grounded_rewards`: R_kj = ACC(trained_kj, Q_R) - ACC(baseline, Q_R),
  R_k = mean_j R_kj, baseline accuracy measured once per outer step.
* :func:`learnability_reward`: Intrinsic-T (B.4): per question r_i = 0 if the
  student's success rate s_i = 0, else 1 - s_i; R_k = mean_i r_i.
* :func:`decide_promotion`: moving average of the per-step mean reward over
  the last ``window`` steps; promote when it exceeds tau; k* = argmax_k R_k,
  j* = the student with the median R_k*j.

Choices where the paper is silent (deviations: none in substance):

* Moving average vs. "EMA": Algorithm 1 writes EMA with R_0 = 0, the text (4.2,
  Figure 16) says "moving average over the most recent 3 steps".  We use the
  plain mean of the last ``window`` step means, with missing steps counted as 0
  (R_0 = 0).  So a first step promotes on its own only when its mean reward
  exceeds ``window * tau`` (0.03 at the paper's tau = 0.01 and window 3): the
  padding damps a lucky first step, it does not rule it out (the designed world
  promoted at step 0 with a mean of 0.054: docs/world.md).
* After a promotion the window is cleared (rewards before it were measured
  against the old baseline, and Figure 16 shows them dropping after each
  promotion); the zero padding then applies again.
* Median of an even number of students: the lower median (the student whose
  reward is the r/2-th smallest), so the promoted student is one that was
  actually trained, never an average; ties go to the lower student index.
* argmax ties go to the lowest dataset index.
* With B > 1 RLOO groups per step (``teacher.batch_size``), promotion looks at
  every dataset of the step (B*g of them): the step mean, the argmax and the
  median are taken over all of them; only the teacher's advantages are per group.
* Promote what was measured: :class:`PromotionCandidates` follows the results
  as they arrive (in any order) and says which trained students could still be
  the one :func:`decide_promotion` picks, so a pool keeps at most the students of
  unfinished datasets plus one, never re-trains the chosen one, and the choice
  is the very same function's (:func:`promotion_choice`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")


def partition(pairs: Sequence[T], groups: int, size: int) -> list[list[T]]:
    """Split ``groups * size`` items into ``groups`` consecutive datasets of ``size``."""
    if len(pairs) != groups * size:
        raise ValueError(f"need exactly g*n = {groups}*{size} = {groups * size} pairs, got {len(pairs)}")
    return [list(pairs[k * size:(k + 1) * size]) for k in range(groups)]


def grounded_rewards(trained_accuracy: Sequence[Sequence[float]], baseline_accuracy: float) -> tuple[list[list[float]], list[float]]:
    """``(R_kj, R_k)`` from the trained students' accuracies (g x r) and the baseline's."""
    per_student = [[acc - baseline_accuracy for acc in row] for row in trained_accuracy]
    if any(not row for row in per_student):
        raise ValueError("every dataset needs at least one trained student")
    return per_student, [sum(row) / len(row) for row in per_student]


def learnability_reward(success_rates: Sequence[float]) -> float:
    """B.4: mean over questions of (0 if s == 0 else 1 - s): rewards questions the student sometimes solves."""
    if not success_rates:
        return 0.0
    return sum(0.0 if s == 0 else 1.0 - s for s in success_rates) / len(success_rates)


def median_index(values: Sequence[float]) -> int:
    """Index of the (lower) median of ``values``; ties broken by the lower index."""
    order = sorted(range(len(values)), key=lambda j: (values[j], j))
    return order[(len(values) - 1) // 2]


@dataclass
class PromotionState:
    """What promotion remembers between outer steps (saved in checkpoints)."""

    window_means: list[float] = field(default_factory=list)
    """Per-step mean rewards since the last promotion (the last ``window`` are used)."""
    stage: int = 0
    """Number of promotions so far."""


@dataclass(frozen=True)
class Decision:
    mean_reward: float
    moving_average: float
    promote: bool
    dataset: int | None = None
    """k*: the dataset with the highest R_k (when promoting)."""
    student: int | None = None
    """j*: the student with the median R_k*j (when promoting)."""


def _mean(row: Sequence[float]) -> float:
    return sum(row) / len(row)


def promotion_choice(per_student: Sequence[Sequence[float]]) -> tuple[int, int]:
    """``(k*, j*)``: the dataset with the highest R_k (ties: lowest k), and its median student."""
    means = [_mean(row) for row in per_student]
    k = max(range(len(means)), key=lambda i: (means[i], -i))
    return k, median_index(per_student[k])


def decide_promotion(state: PromotionState, per_student: Sequence[Sequence[float]], tau: float, window: int,
                     enabled: bool = True) -> tuple[Decision, PromotionState]:
    """Record this step's rewards, and decide (Algorithm 1, step 3). Returns the decision and the new state."""
    means = [_mean(row) for row in per_student]
    mean = sum(means) / len(means)
    recent = (state.window_means + [mean])[-window:]
    moving = sum(recent) / window  # steps before the first (or since the last promotion) count as 0
    if not (enabled and moving > tau):
        return Decision(mean, moving, False), PromotionState(recent, state.stage)
    k, j = promotion_choice(per_student)
    return Decision(mean, moving, True, k, j), PromotionState([], state.stage + 1)


class PromotionCandidates:
    """Which trained students :func:`promotion_choice` could still pick, as results arrive in any order.

    ``add(k, j, reward)`` records R_kj and returns the students ``(k, j)`` that can no longer be chosen (their
    weights may be dropped).  Until dataset k has all ``repeats`` results every student of it is kept; once it
    is complete only its median student stays a candidate, and only while its R_k is the best so far (with
    the lowest-k tie break of :func:`promotion_choice`, so any arrival order ends on the same student).
    """

    def __init__(self, repeats: int) -> None:
        self.repeats = repeats
        self.rewards: dict[int, dict[int, float]] = {}
        self.best: tuple[int, int] | None = None
        self._best_key: tuple[float, int] | None = None

    def add(self, dataset: int, student: int, reward: float) -> list[tuple[int, int]]:
        row = self.rewards.setdefault(dataset, {})
        if student in row:
            raise ValueError(f"student {student} of dataset {dataset} reported twice")
        row[student] = reward
        if len(row) < self.repeats:
            return []
        rewards = [row[j] for j in range(self.repeats)]
        median = median_index(rewards)
        dropped = [(dataset, j) for j in range(self.repeats) if j != median]
        key = (_mean(rewards), -dataset)
        if self._best_key is None or key > self._best_key:
            if self.best is not None:
                dropped.append(self.best)
            self.best, self._best_key = (dataset, median), key
        else:
            dropped.append((dataset, median))
        return dropped


def inner_steps(stage: int, first: int, after_promotion: int, cap: int) -> int:
    """Inner RLOO steps at promotion ``stage``: ``first`` + ``after_promotion`` per promotion, at most ``cap``."""
    return min(cap, first + after_promotion * stage)
