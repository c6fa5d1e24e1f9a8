"""Student checkpoint selection for fresh-student evaluation (Appendix B.6), and seed aggregation.

B.6: smooth the training-reward curve with a centred moving average (25
steps), take discrete slopes normalised by the range of observed rewards, and
stop at the earliest step where the normalised slope falls below 15% of the
maximum observed slope; report test pass@k averaged over the 200 steps after
that point.

Choices where the paper is silent:

* Slopes are taken only where the whole window fits (a cut window at the ends
  would fake a steep start); the slope at step t is ``smoothed[t + 1] -
  smoothed[t]``, so a stop can come no earlier than ``(window - 1) // 2``.
  A curve shorter than the window uses cut windows.  "Falls below"
  is searched from the step of the maximum slope onwards (before it the curve
  has not risen yet, so a flat start is not mistaken for a plateau).
* No positive slope at all (a curve that never rises) stops at the first
  step with a slope; a curve still rising at its end stops at its last step.
* Normalising by the reward range does not move the stopping point (both
  sides of the test scale alike); it is kept so the reported slopes are
  comparable across runs.
* Seed spread is the sample standard deviation (n - 1); one seed reports 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


def centred_moving_average(values: Sequence[float], window: int) -> list[float]:
    """Mean of the ``window`` points centred on each point (cut at the ends)."""
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    before, after = (window - 1) // 2, window // 2
    prefix = [0.0]
    for v in values:
        prefix.append(prefix[-1] + float(v))
    out = []
    for t in range(len(values)):
        lo, hi = max(0, t - before), min(len(values), t + after + 1)
        out.append((prefix[hi] - prefix[lo]) / (hi - lo))
    return out


@dataclass(frozen=True)
class StopPoint:
    step: int
    """Index (into the reward curve) of the selected checkpoint."""
    slopes: list[float]
    """Normalised slopes of the smoothed curve where its window fits."""
    max_slope: float


def early_stopping_step(rewards: Sequence[float], window: int = 25, threshold: float = 0.15) -> StopPoint:
    """The B.6 stopping point of a training-reward curve (one value per training step)."""
    if not rewards:
        raise ValueError("empty reward curve")
    smoothed = centred_moving_average(rewards, window)
    first, last = (window - 1) // 2, len(rewards) - 1 - window // 2  # where the whole window fits
    if last <= first:  # a curve shorter than the window: use the cut averages
        first, last = 0, len(rewards) - 1
    spread = max(rewards) - min(rewards)
    slopes = [(smoothed[t + 1] - smoothed[t]) / spread if spread > 0 else 0.0 for t in range(first, last)]
    if not slopes or max(slopes) <= 0:
        return StopPoint(first if slopes else 0, slopes, max(slopes, default=0.0))
    peak = max(range(len(slopes)), key=slopes.__getitem__)
    limit = threshold * slopes[peak]
    for i in range(peak, len(slopes)):
        if slopes[i] < limit:
            return StopPoint(first + i, slopes, slopes[peak])
    return StopPoint(len(rewards) - 1, slopes, slopes[peak])


def window_average(points: Mapping[int, Mapping[int, float]], start: int, length: int) -> dict[int, float]:
    """Mean pass@k over the evaluations at steps in ``[start, start + length]``: ``{step: {k: value}}`` -> ``{k: mean}``.

    With no evaluation in the window the first evaluation after it (or else the last one) is used.
    """
    if not points:
        raise ValueError("no evaluations")
    chosen = [s for s in sorted(points) if start <= s <= start + length]
    if not chosen:
        later = [s for s in sorted(points) if s > start + length]
        chosen = [later[0] if later else max(points)]
    ks = sorted(points[chosen[0]])
    return {k: sum(points[s][k] for s in chosen) / len(chosen) for k in ks}


@dataclass(frozen=True)
class Aggregate:
    mean: float
    sd: float
    n: int

    def __str__(self) -> str:
        return f"{self.mean:.3f} ± {self.sd:.3f}"


def aggregate_seeds(values: Sequence[float]) -> Aggregate:
    """Mean and sample standard deviation over seeds."""
    if not values:
        raise ValueError("no seeds to aggregate")
    n = len(values)
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return Aggregate(mean, sd, n)
