"""The student pool's contracts: typed step records, job batches, row layouts, config rules."""

import pytest

from soar.config import load_config
from soar.errors import ConfigError
from soar.students.pool import batches, pool_description
from soar.types import StepRecord, StudentJob

RECORD = {"step": 3, "groups": 1, "rewards": [0.1, -0.1], "student_rewards": [[0.1, 0.1], [-0.1, -0.1]],
          "mean_reward": 0.0, "moving_average": 0.02, "promoted": False, "stage": 0, "promoted_dataset": None,
          "promoted_student": None, "baseline_accuracy": 0.25, "student_accuracies": [0.35, 0.35, 0.15, 0.15],
          "inner_steps": 4, "acceptance_rate": 0.5, "attempts": 16, "rejections": {"no_answer": 8},
          "teacher_tokens": 900, "student_tokens": 3700, "teacher_loss": 0.01, "teacher_kl": 0.0,
          "seconds": {"students": 120.5}, "step_wall": 150.0, "pool": "inprocess+batched", "teacher_skipped": False,
          "student_skipped_steps": 0}


def test_step_record_round_trips_and_reads_older_records():
    record = StepRecord.from_dict(RECORD)
    assert record.to_dict() == RECORD  # no promotion: the promotion keys stay out of the line
    promoted = StepRecord.from_dict(dict(RECORD, promoted=True, promoted_accuracy=0.5, promotion_recheck_accuracy=0.5,
                                         promoted_train_accuracy=0.3))
    assert promoted.to_dict()["promotion_recheck_accuracy"] == 0.5
    assert StepRecord.from_dict(dict(RECORD, question_diversity=3.5)).to_dict() == dict(RECORD, question_diversity=3.5)
    older = {k: v for k, v in RECORD.items() if k not in ("groups", "pool", "rejections", "teacher_skipped",
                                                          "student_skipped_steps")} | {"unknown_key": 1}
    assert StepRecord.from_dict(older).groups == 1 and StepRecord.from_dict(older).pool == "inprocess"
    assert StepRecord.from_dict(older).teacher_skipped is False
    with pytest.raises(TypeError):
        StepRecord.from_dict({"step": 1})


def test_batches_keep_job_order():
    jobs = [StudentJob(f"j{i}", 0, [], [], i, 1) for i in range(5)]
    assert [[j.job_id for j in b] for b in batches(jobs, 2)] == [["j0", "j1"], ["j2", "j3"], ["j4"]]
    assert [len(b) for b in batches(jobs, 1)] == [1] * 5 and batches([], 3) == []


def test_row_students_find_blocks_once_per_index():
    torch = pytest.importorskip("torch")
    from soar.engines.batch import RowStudents

    rows = RowStudents()
    rows.index = torch.tensor([0, 0, 1, 1, 2, 2])
    assert rows.blocks == (0, 3, 2)
    rows.index = torch.tensor([2, 2, 2, 3, 3, 3])  # a later chunk of a batch: students 2 and 3
    assert rows.blocks == (2, 2, 3)
    for layout in ([0, 1, 0, 1], [1, 1, 3, 3], [0, 0, 1], [0, 0, 0, 1], [2, 1]):
        rows.index = torch.tensor(layout)
        assert rows.blocks is None, layout  # gathered per row instead
    rows.index = None
    assert rows.blocks is None


def test_batched_students_must_be_lora_and_pool_values_are_checked():
    with pytest.raises(ConfigError, match="compute.student_batch"):
        load_config("tiny", overrides={"student.finetune": "full"})  # tiny batches 4 students
    assert load_config("tiny", overrides={"student.finetune": "full", "compute.student_batch": "1"})
    for key, value in (("compute.workers", "0"), ("compute.worker_cpus", "0"), ("compute.worker_gpus", "-1"),
                       ("compute.student_batch", "0")):
        with pytest.raises(ConfigError, match=key):
            load_config("tiny", overrides={key: value})
    with pytest.raises(ConfigError, match="compute.pool"):
        load_config("tiny", overrides={"compute.pool": "threads"})
    described = pool_description(load_config("tiny", overrides={"compute.pool": "ray"}))
    assert "batched LoRA, up to 4" in described and "2 Ray workers" in described




def test_q_r_is_scored_in_near_equal_parts_and_merged_back_in_order():
    from soar.students.pool import merge_scores, score_parts
    from soar.types import StudentResult

    questions = [{"id": str(i)} for i in range(7)]
    assert [[q["id"] for q in part] for part in score_parts(questions, 3)] == [["0", "1", "2"], ["3", "4"], ["5", "6"]]
    assert score_parts(questions[:2], 4) == [questions[:1], questions[1:2]]  # never an empty part
    assert score_parts(questions, 1) == [questions]
    merged = merge_scores("baseline", [StudentResult("baseline", 2 / 3, [1, 0, 1], eval_seconds=2.0),
                                       StudentResult("baseline", 0.0, [0, 0], eval_seconds=3.0)])
    assert (merged.job_id, merged.correct, merged.accuracy, merged.eval_seconds) == ("baseline", [1, 0, 1, 0, 0], 0.4, 3.0)
