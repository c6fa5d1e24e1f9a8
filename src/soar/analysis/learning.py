"""Did the teacher learn?  Rewards of a run's first and last outer steps, against a control run (pure).

A run's per-step mean reward (the mean of R_k over the step's datasets, what the moving average is taken over)
is compared between its first ``window`` steps and its last ``window`` steps: the difference of the two means,
with the standard error of that difference (each window's sample SD over sqrt(window)); ``z`` is their ratio.
A teacher that learns shows a positive difference; a frozen teacher (``teacher.lr 0``, same seeds) is the
control for everything else that changes along a run (promotions move the baseline; the reward questions are
redrawn each step).  The share of each question kind (the designed world's kinds, add-c0 .. add-c8) over the same windows shows
what the teacher's datasets drifted toward.

Against a control of the same seeds, the per-step difference of mean rewards (run minus control, step by step)
removes what the two share: the reward questions, the students' seeds, and with them most of a step's noise.
:func:`paired` gives that difference over all common steps and over the first and last windows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from soar.types import StepRecord


@dataclass
class WindowStats:
    first: float
    first_se: float
    last: float
    last_se: float

    @property
    def delta(self) -> float:
        return self.last - self.first

    @property
    def se(self) -> float:
        return math.sqrt(self.first_se ** 2 + self.last_se ** 2)

    @property
    def z(self) -> float:
        return self.delta / self.se if self.se else (math.inf if self.delta > 0 else -math.inf if self.delta < 0 else 0.0)


@dataclass
class RunSummary:
    name: str
    steps: int
    promotions: int
    reward: WindowStats
    kinds_first: dict[str, float] = field(default_factory=dict)
    kinds_last: dict[str, float] = field(default_factory=dict)
    seconds_per_step: float = 0.0
    right_first: float | None = None
    right_last: float | None = None


def mean_se(values: Sequence[float]) -> tuple[float, float]:
    """Mean and standard error of the mean (sample SD over sqrt(count); 0 for one value).  ``soar probe``'s
    control table uses it too."""
    if not values:
        raise ValueError("no values")
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1) / len(values))


def window_stats(values: Sequence[float], window: int) -> WindowStats:
    """First ``window`` values against the last ``window`` (they may overlap in a run shorter than 2 windows)."""
    if not values or window < 1:
        raise ValueError("need at least one value and a window of at least 1")
    window = min(window, len(values))
    return WindowStats(*mean_se(values[:window]), *mean_se(values[-window:]))


def kind_shares(records: Sequence[StepRecord]) -> dict[str, float]:
    """The share of each question kind over ``records`` (empty without kinds)."""
    total: dict[str, int] = {}
    for record in records:
        for kind, count in record.kind_counts().items():
            total[kind] = total.get(kind, 0) + count
    n = sum(total.values())
    return {kind: count / n for kind, count in sorted(total.items())} if n else {}


def right_share(records: Sequence[StepRecord]) -> float | None:
    """The share of right answers over ``records`` (None without ``answers_right``)."""
    right = sum(sum(r.answers_right or []) for r in records)
    total = sum(sum(r.kind_counts().values()) for r in records if r.answers_right)
    return right / total if total else None


def summarize(name: str, records: Sequence[StepRecord], window: int) -> RunSummary:
    """One run's :class:`RunSummary` over windows of ``window`` steps."""
    window = min(window, len(records))
    return RunSummary(name, len(records), sum(r.promoted for r in records),
                      window_stats([r.mean_reward for r in records], window), kind_shares(records[:window]),
                      kind_shares(records[-window:]), sum(r.step_wall for r in records) / len(records),
                      right_share(records[:window]), right_share(records[-window:]))


def render(summaries: Sequence[RunSummary], window: int) -> str:
    """A Markdown table of the summaries (kinds and right answers as shares first -> last)."""
    kinds = sorted({k for s in summaries for k, share in (*s.kinds_first.items(), *s.kinds_last.items())
                    if share >= 0.005})  # a kind that never reaches half a percent is left out
    right = any(s.right_first is not None for s in summaries)
    head = (f"| run | steps | promotions | mean R, first {window} | mean R, last {window} | Δ ± SE | z | "
            + "".join(f"{k} share | " for k in kinds) + ("answers right | " if right else "") + "s / step |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for s in summaries:
        r = s.reward
        shares = "".join(f"{s.kinds_first.get(k, 0):.2f} → {s.kinds_last.get(k, 0):.2f} | " for k in kinds)
        if right:
            shares += (f"{s.right_first:.2f} → {s.right_last:.2f} | " if s.right_first is not None
                       and s.right_last is not None else "– | ")
        lines.append(f"| {s.name} | {s.steps} | {s.promotions} | {r.first:+.3f} ± {r.first_se:.3f} | "
                     f"{r.last:+.3f} ± {r.last_se:.3f} | {r.delta:+.3f} ± {r.se:.3f} | {r.z:.1f} | {shares}"
                     f"{s.seconds_per_step:.1f} |")
    return "\n".join(lines)


@dataclass
class PairedStats:
    name: str
    control: str
    steps: int
    overall: float
    overall_se: float
    windows: WindowStats


def paired(name: str, records: Sequence[StepRecord], control: str, control_records: Sequence[StepRecord],
           window: int) -> PairedStats:
    """The per-step difference of mean rewards, ``records`` minus ``control_records``, over their common steps."""
    by_step = {r.step: r.mean_reward for r in control_records}
    diffs = [r.mean_reward - by_step[r.step] for r in records if r.step in by_step]
    if not diffs:
        raise ValueError(f"{name} and {control} have no step in common")
    return PairedStats(name, control, len(diffs), *mean_se(diffs), window_stats(diffs, min(window, len(diffs))))


def render_paired(rows: Sequence[PairedStats], window: int) -> str:
    """A Markdown table of :func:`paired` rows."""
    lines = [f"| run | control | common steps | Δ over control, all steps | first {window} | last {window} | "
             "change ± SE | z |", "|---|---|---|---|---|---|---|---|"]
    for p in rows:
        w = p.windows
        lines.append(f"| {p.name} | {p.control} | {p.steps} | {p.overall:+.3f} ± {p.overall_se:.3f} | "
                     f"{w.first:+.3f} ± {w.first_se:.3f} | {w.last:+.3f} ± {w.last_se:.3f} | "
                     f"{w.delta:+.3f} ± {w.se:.3f} | {w.z:.1f} |")
    return "\n".join(lines)
