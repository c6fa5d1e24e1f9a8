"""The SOAR outer loop end to end on CPU: real generator, trainer, verifier pool and files.

The model is a tiny network taught the output formats in a few seconds
(``tests/helpers/formatted.py``), so teacher rollouts parse and students answer
in ``\\boxed{}``; everything else is the code ``soar train`` runs.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from soar.config import load_config, to_yaml
from soar.loops.train import train
from tests.helpers.formatted import formatted_tiny_model_dir


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return formatted_tiny_model_dir(tmp_path_factory.mktemp("formatted-tiny"))


def _cfg(model_dir, tmp_path, **extra):
    overrides = {
        "model.name": str(model_dir), "data.source": "arithmetic", "data.arithmetic_tiers": "[add2]", "data.arithmetic_per_tier": "16",
        "data.splits_dir": str(tmp_path / "splits"), "teacher.group_size": "2", "teacher.max_new_tokens": "24",
        "teacher.micro_batch_size": "4", "teacher.warmup_steps": "0", "student.batch_size": "2",
        "student.group_size": "2", "student.max_new_tokens": "12", "inner.dataset_size": "2", "inner.repeats": "2",
        "inner.steps": "2", "inner.steps_after_promotion": "1", "inner.max_steps": "4", "inner.reward_questions": "8",
        "outer_steps": "3", "compute.generation_batch_size": "16", "reward.verify_workers": "1",
        "data.allow_unfiltered": "true",  # the tiny test model needs no fail@k set: any arithmetic is hard enough
        # one full fine-tuned student at a time (tiny batches LoRA students: tests/integration/test_student_pools.py)
        "student.finetune": "full", "compute.student_batch": "1", "student.lr": "5e-5",
    }
    overrides.update({k: str(v) for k, v in extra.items()})
    return load_config("tiny", overrides=overrides)


def _comparable(records):
    return [{k: v for k, v in r.items() if k not in ("seconds", "step_wall")} for r in records]


@pytest.fixture(scope="module")
def uninterrupted(model_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("run-a")
    summary = train(_cfg(model_dir, tmp), out=tmp / "run")
    return summary


def test_three_outer_steps_write_the_run_directory(uninterrupted):
    run = uninterrupted.run_dir
    assert uninterrupted.steps == 3
    assert load_config(file=run / "config.yaml").outer_steps == 3
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [0, 1, 2]
    for m in metrics:
        assert len(m["rewards"]) == 2 and all(len(row) == 2 for row in m["student_rewards"])
        assert abs(m["mean_reward"] - sum(m["rewards"]) / 2) < 1e-9
        for k, row in enumerate(m["student_rewards"]):  # R_kj = acc - baseline, R_k = mean_j
            accs = m["student_accuracies"][2 * k:2 * k + 2]
            assert row == pytest.approx([a - m["baseline_accuracy"] for a in accs])
            assert m["rewards"][k] == pytest.approx(sum(row) / 2)
        assert 0 < m["acceptance_rate"] <= 1 and m["attempts"] >= 4
        assert {"teacher_generation", "student_training", "student_evaluation", "teacher_update"} <= set(m["seconds"])
    for step in range(3):
        questions = [json.loads(line) for line in (run / "questions" / f"step_{step:04d}.jsonl").read_text().splitlines()]
        assert len(questions) == 4 and {q["dataset"] for q in questions} == {0, 1}
        assert all(q["question"] and q["answer"] for q in questions)
    assert (run / "checkpoints" / "latest").read_text().strip() == "step_0002"
    status = json.loads((run / "status.json").read_text())
    assert (status["step"], status["phase"]) == (2, "done") and status["pid"] > 0
    assert (run / "promotion_questions.jsonl").exists() and not list((run / "teachers").glob("*.pt"))
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))


def test_killed_and_resumed_run_equals_the_uninterrupted_one(model_dir, uninterrupted, tmp_path):
    cfg_file = tmp_path / "cfg.yaml"
    cfg_file.write_text(to_yaml(_cfg(model_dir, uninterrupted.run_dir.parent)))
    run = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2] / "src"))
    proc = subprocess.Popen([sys.executable, "-m", "soar", "train", "--config", str(cfg_file), "--out", str(run)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    latest = run / "checkpoints" / "latest"
    deadline = time.time() + 300
    while not (latest.exists() and latest.read_text().strip() == "step_0000") and proc.poll() is None:
        assert time.time() < deadline, "no first checkpoint within 300 s"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)  # killed during step 1
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]
    # soar train --resume RUN --checkpoint.keep 1: what a run keeps may change on resume, its results may not
    resumed = train(resume=run, resume_overrides={"checkpoint.keep": "1"})
    assert resumed.steps == 3
    assert load_config(file=run / "config.yaml").checkpoint.keep == 1
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["latest", "step_0002"]
    a, b = uninterrupted.run_dir, run
    assert _comparable([json.loads(x) for x in (b / "metrics.jsonl").read_text().splitlines()]) == \
        _comparable([json.loads(x) for x in (a / "metrics.jsonl").read_text().splitlines()])
    for step in range(3):
        name = f"questions/step_{step:04d}.jsonl"
        assert (b / name).read_text() == (a / name).read_text()
    pq_a, pq_b = a / "promotion_questions.jsonl", b / "promotion_questions.jsonl"
    assert (pq_b.read_text() if pq_b.exists() else "") == (pq_a.read_text() if pq_a.exists() else "")


def test_checkpoints_every_two_steps_change_no_number_and_link_the_unchanged_students(model_dir, uninterrupted,
                                                                                        tmp_path):
    """Issue 35: ``checkpoint.every 2`` writes after step 1 and after the last step (2), not after step 0, and the
    run's records equal the uninterrupted one's; the students' part, unchanged without a promotion, is a hard link
    to the previous checkpoint's, found by its tag (the baseline's version)."""
    summary = train(_cfg(model_dir, tmp_path, **{"checkpoint.every": 2}), out=tmp_path / "run")
    run = summary.run_dir
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["latest", "step_0001", "step_0002"]
    a = uninterrupted.run_dir
    assert _comparable([json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]) == \
        _comparable([json.loads(x) for x in (a / "metrics.jsonl").read_text().splitlines()])
    states = [json.loads((run / "checkpoints" / f"step_000{s}" / "state.json").read_text()) for s in (1, 2)]
    tags = [state["parts"]["students"]["tag"] for state in states]
    files = [run / "checkpoints" / f"step_000{s}" / "students.pt" for s in (1, 2)]
    promoted = [json.loads(x)["promoted"] for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert tags == [f"baseline {sum(promoted[:2])}", f"baseline {sum(promoted)}"]  # one version per promotion
    # no promotion in the last step: the same baseline, the same file; a promotion: a new one
    assert (files[0].stat().st_ino == files[1].stat().st_ino) == (not promoted[2])


def test_resume_passes_over_a_damaged_checkpoint_and_finishes_as_the_uninterrupted_run(uninterrupted, tmp_path):
    """A bit flipped in the newest checkpoint's teacher: resume says so in one line, continues from the kept
    step before it, re-runs the lost step, and ends where the uninterrupted run ended.  Before any promotion
    the students' part holds no weights (the baseline is the base model every worker loads)."""
    import shutil

    from rich.console import Console

    from soar.loops.run_dir import load_part

    a = uninterrupted.run_dir
    assert sorted(p.name for p in (a / "checkpoints").iterdir()) == ["latest", "step_0001", "step_0002"]  # keep: 2
    students = load_part(a / "checkpoints" / "step_0001", "students")
    if students["version"] == 0:
        assert students["weights"] is None
        assert (a / "checkpoints" / "step_0001" / "students.pt").stat().st_size < 2000
    run = tmp_path / "run"
    shutil.copytree(a, run)
    teacher = run / "checkpoints" / "step_0002" / "teacher.pt"
    data = bytearray(teacher.read_bytes())
    data[len(data) // 2] ^= 0x10
    teacher.write_bytes(bytes(data))
    console = Console(record=True, width=200)
    resumed = train(resume=run, console=console)
    said = " ".join(console.export_text().split())  # the console wraps long lines
    assert "step_0002/teacher.pt is damaged" in said and "trying the older checkpoint step_0001" in said
    assert "resuming after step 1" in said and resumed.steps == 3
    assert _comparable([json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]) == \
        _comparable([json.loads(x) for x in (a / "metrics.jsonl").read_text().splitlines()])
    assert (run / "questions" / "step_0002.jsonl").read_text() == (a / "questions" / "step_0002.jsonl").read_text()


@pytest.fixture(scope="module")
def promoted_run(model_dir, tmp_path_factory):
    """A run with a promotion every step (tau < 0), two RLOO groups per step and a teacher snapshot every step."""
    tmp = tmp_path_factory.mktemp("promote")
    cfg = _cfg(model_dir, tmp, **{"promotion.tau": -1.0, "outer_steps": 2, "teacher.batch_size": 2,
                                  "checkpoint.teacher_every": 1, "checkpoint.teacher_keep": 1})
    return train(cfg, out=tmp / "run")


def test_forced_promotion_moves_the_baseline_to_the_measured_student(promoted_run):
    import torch

    from soar.loops.run_dir import RunDir, load_part

    summary = promoted_run
    metrics = [json.loads(x) for x in (summary.run_dir / "metrics.jsonl").read_text().splitlines()]
    first, second = metrics
    assert first["groups"] == 2 and len(first["rewards"]) == 4 and len(first["student_accuracies"]) == 8
    assert first["promoted"] and first["stage"] == 1 and second["stage"] == 2
    chosen = first["promoted_dataset"] * 2 + first["promoted_student"]
    # the promoted student is the one that was scored (no re-training), re-checked after loading
    assert first["promoted_accuracy"] == first["student_accuracies"][chosen]
    assert first["promotion_recheck_accuracy"] == first["promoted_accuracy"]  # bit-identical on CPU
    assert "promotion_replay" not in first["seconds"]
    assert second["baseline_accuracy"] == first["student_accuracies"][chosen]  # Q_R = the whole train split
    assert second["student_rewards"][0] == pytest.approx(
        [a - second["baseline_accuracy"] for a in second["student_accuracies"][:2]])
    assert [first["inner_steps"], second["inner_steps"]] == [2, 3]
    pq = [json.loads(x) for x in (summary.run_dir / "promotion_questions.jsonl").read_text().splitlines()]
    assert len(pq) == 4 and [q["stage"] for q in pq] == [1, 1, 2, 2] and [q["step"] for q in pq] == [0, 0, 1, 1]
    assert summary.promotions == 2 and summary.promotion_questions == 4
    # every promoted student is kept, with what was measured of it; the last one is the run's baseline
    run = RunDir(summary.run_dir)
    infos = run.promoted_stages()
    assert [i["stage"] for i in infos] == [1, 2] and [i["step"] for i in infos] == [0, 1]
    assert infos[0]["recheck_accuracy"] == first["promotion_recheck_accuracy"]
    assert infos[1]["train_accuracy"] == second["promoted_train_accuracy"]
    last = load_part(run.promoted / "stage_2", "student")
    baseline = load_part(run.latest_checkpoint(), "students")["weights"]
    assert last.keys() == baseline.keys() and all(torch.equal(last[k], baseline[k]) for k in last)
    assert run.teacher_steps() == [1]  # teacher_every 1, teacher_keep 1


def test_resume_refuses_a_directory_that_is_not_a_run(tmp_path):
    from soar.errors import SoarError

    with pytest.raises(SoarError, match="not a run directory"):
        train(resume=tmp_path)
