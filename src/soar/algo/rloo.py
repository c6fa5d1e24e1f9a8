r"""RLOO advantages (Ahmadian et al., 2024), as used by both SOAR loops.

For a group of ``k`` samples with rewards R_1..R_k, the leave-one-out baseline
of sample i is the mean reward of the *other* samples:

    A_i = R_i - 1/(k-1) * sum_{j != i} R_j            (paper, eq. 4)

Groups are rows: the student's group is the 32 completions of one question
(Table 3), the teacher's group is the g datasets of one outer step, each
dataset's reward R_k given to all its rollouts (Section 3.2).

Advantages sum to zero within each group; that is what makes the teacher's
rejection sampling leave the gradient unchanged (Proposition 1).  A group whose
rewards are all equal gets exactly zero advantage (set explicitly, so float
rounding in the mean cannot leave a tiny non-zero signal).

Pure Python, no torch: the engine turns the result into tensors.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def leave_one_out_advantages(rewards: Iterable[Sequence[float]]) -> list[list[float]]:
    """``A[g][i] = R[g][i] - mean(R[g][j] for j != i)`` for rewards of shape (groups, group_size)."""
    advantages: list[list[float]] = []
    for index, row in enumerate(rewards):
        values = [float(r) for r in row]
        k = len(values)
        if k < 2:
            raise ValueError(f"RLOO needs at least 2 samples per group; group {index} has {k}")
        if max(values) == min(values):
            advantages.append([0.0] * k)
            continue
        total = sum(values)
        advantages.append([r - (total - r) / (k - 1) for r in values])
    return advantages
