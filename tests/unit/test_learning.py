"""The first-vs-last window comparison that says whether a teacher learned (pure)."""

import math

import pytest

from soar.analysis.learning import kind_shares, render, summarize, window_stats
from soar.types import StepRecord


def _record(step, mean, kinds=None, promoted=False):
    return StepRecord(step=step, groups=1, rewards=[mean], student_rewards=[[mean]], mean_reward=mean,
                      moving_average=mean, promoted=promoted, stage=0, promoted_dataset=None, promoted_student=None,
                      baseline_accuracy=0.0, student_accuracies=[], inner_steps=1, acceptance_rate=1.0, attempts=1,
                      rejections={}, teacher_tokens=0, student_tokens=0, teacher_loss=0.0, teacher_kl=0.0,
                      seconds={}, step_wall=2.0, question_kinds=kinds)


def test_window_stats_by_hand():
    stats = window_stats([0.0, 0.2, 0.1, 0.5, 0.7, 0.6], 3)
    assert stats.first == pytest.approx(0.1) and stats.last == pytest.approx(0.6)
    assert stats.first_se == pytest.approx(0.1 / math.sqrt(3)) and stats.last_se == pytest.approx(0.1 / math.sqrt(3))
    assert stats.delta == pytest.approx(0.5) and stats.z == pytest.approx(0.5 / math.sqrt(2 * 0.01 / 3))
    flat = window_stats([0.3] * 4, 2)
    assert flat.delta == 0 and flat.z == 0
    with pytest.raises(ValueError):
        window_stats([], 2)


def test_summary_counts_promotions_and_kind_drift():
    records = [_record(i, i / 10, [{"t1": 3, "t3": 1}] if i < 2 else [{"t1": 1, "t3": 3}], promoted=i == 3)
               for i in range(4)]
    summary = summarize("learning", records, 2)
    assert summary.promotions == 1 and summary.steps == 4 and summary.seconds_per_step == 2.0
    assert summary.kinds_first == {"t1": 0.75, "t3": 0.25} and summary.kinds_last == {"t1": 0.25, "t3": 0.75}
    assert kind_shares([_record(0, 0.0)]) == {}
    table = render([summary], 2)
    assert "| learning | 4 | 1 |" in table and "0.25 → 0.75" in table
