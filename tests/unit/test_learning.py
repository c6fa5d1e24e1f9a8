"""The first-vs-last window comparison that says whether a teacher learned (pure)."""

import math

import pytest

from soar.analysis.learning import kind_shares, paired, render, render_paired, summarize, window_stats
from soar.types import StepRecord


def _record(step, mean, kinds=None, promoted=False, right=None):
    return StepRecord(step=step, groups=1, rewards=[mean], student_rewards=[[mean]], mean_reward=mean,
                      moving_average=mean, promoted=promoted, stage=0, promoted_dataset=None, promoted_student=None,
                      baseline_accuracy=0.0, student_accuracies=[], inner_steps=1, acceptance_rate=1.0, attempts=1,
                      rejections={}, teacher_tokens=0, student_tokens=0, teacher_loss=0.0, teacher_kl=0.0,
                      seconds={}, step_wall=2.0, question_kinds=kinds,
                      answers_right=right)


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


def test_right_answers_share_first_and_last():
    """A teacher can drift toward the helpful kind while its answers go wrong: the table shows both."""
    records = [_record(i, 0.1, [{"t1": 2, "t3": 2}], right=[4 if i < 2 else 1]) for i in range(4)]
    summary = summarize("drift", records, 2)
    assert summary.right_first == 1.0 and summary.right_last == 0.25
    assert records[3].right_share() == 0.25 and _record(0, 0.0).right_share() is None
    assert "answers right" in render([summary], 2) and "1.00 → 0.25" in render([summary], 2)
    assert "answers right" not in render([summarize("plain", [_record(0, 0.1)], 1)], 1)


def test_report_reads_a_run_against_its_frozen_control(tmp_path):
    """``soar report`` on a learning run and its control: learning.md holds both rows, learning.png is drawn."""
    import json

    from soar.config import load_config, to_yaml
    from soar.loops.report import write_report

    for name, slope, right in (("learning", 0.01, 3), ("frozen", 0.0, 4)):
        run = tmp_path / name
        run.mkdir()
        lr = "0" if name == "frozen" else "3e-4"
        (run / "config.yaml").write_text(to_yaml(load_config("world", overrides={"teacher.lr": lr})))
        records = [_record(i, 0.05 + slope * i, [{"t1": 2, "t3": 2}], right=[right]) for i in range(8)]
        (run / "metrics.jsonl").write_text("".join(json.dumps(r.to_dict()) + "\n" for r in records))
    written = write_report([tmp_path / "learning", tmp_path / "frozen"], tmp_path / "report")
    assert tmp_path / "report" / "learning.png" in written and (tmp_path / "report" / "learning.png").stat().st_size
    table = (tmp_path / "report" / "learning.md").read_text()
    assert "First 4 steps against the last 4" in table
    assert "| learning | 8 | 0 | +0.065 ± 0.006 | +0.105 ± 0.006 | +0.040 ± 0.009 |" in table
    assert "| frozen | 8 | 0 | +0.050 ± 0.000 | +0.050 ± 0.000 | +0.000 ± 0.000 | 0.0 |" in table
    assert "0.75 → 0.75 |" in table and "1.00 → 1.00 |" in table and "other share" not in table
    # paired with the frozen run of the same seeds: differences 0.00, 0.01, ..., 0.07
    assert "| learning | frozen | 8 | +0.035 ± 0.009 | +0.015 ± 0.006 | +0.055 ± 0.006 | +0.040 ± 0.009 |" in table


def test_paired_differences_follow_the_common_steps():
    run = [_record(i, 0.1 + 0.01 * i) for i in range(6)]
    control = [_record(i, 0.1) for i in range(2, 8)]
    stats = paired("run", run, "control", control, 2)
    assert stats.steps == 4 and stats.overall == pytest.approx(0.035)
    assert stats.windows.first == pytest.approx(0.025) and stats.windows.last == pytest.approx(0.045)
    assert "| run | control | 4 | +0.035 ± 0.006 |" in render_paired([stats], 2)
    with pytest.raises(ValueError, match="no step in common"):
        paired("run", run[:1], "control", control, 2)
