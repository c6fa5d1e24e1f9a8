"""``soar probe`` on a tiny model: the real inner loop, pool, verifier and files; oracle beats junk.

The hard set is questions whose answer is 10 (``What is a + b?`` with a + b = 10, written several ways), so
the reward questions and the oracle's questions share one answer: students trained on the oracle learn to
answer 10 and solve Q_R, while junk (the same questions, every answer moved by 1-9) rewards wrong sums.
"""

import json
import subprocess
import sys

import pytest

from soar.config import load_config
from soar.errors import ConfigError
from soar.loops.probe import run_probe
from tests.helpers.formatted import formatted_tiny_model_dir

PHRASES = ["What is {a} + {b}?", "Compute {a} + {b}.", "Add {a} and {b}.", "Find {a} + {b}."]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return formatted_tiny_model_dir(tmp_path_factory.mktemp("formatted-tiny"))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("probe-data")
    hard = [{"question": phrase.format(a=a, b=10 - a), "answer": "10", "id": f"h{i}-{a}"}
            for i, phrase in enumerate(PHRASES) for a in range(1, 10)]
    easy = [{"question": f"What is {a} + 1?", "answer": str(a + 1), "id": f"e{a}"} for a in range(1, 9)]
    (folder / "hard.jsonl").write_text("".join(json.dumps(p) + "\n" for p in hard))
    (folder / "easy.jsonl").write_text("".join(json.dumps(p) + "\n" for p in easy))
    return folder


def _cfg(model_dir, files, tmp_path, **extra):
    overrides = {
        "model.name": str(model_dir), "data.source": str(files / "hard.jsonl"), "data.allow_unfiltered": "true",
        "data.splits_dir": str(tmp_path / "splits"), "teacher.group_size": "2", "teacher.max_new_tokens": "24",
        "student.finetune": "full", "compute.student_batch": "1", "student.lr": "1e-3", "student.kl_coef": "0",
        "student.batch_size": "4", "student.group_size": "8", "student.max_new_tokens": "12",
        "inner.dataset_size": "4", "inner.repeats": "2", "inner.steps": "4", "inner.reward_questions": "6",
        "compute.generation_batch_size": "32", "reward.verify_workers": "1",
    }
    overrides.update({k: str(v) for k, v in extra.items()})
    return load_config("tiny", overrides=overrides)


def test_oracle_beats_junk_and_the_folder_resumes(model_dir, files, tmp_path):
    cfg = _cfg(model_dir, files, tmp_path)
    out = tmp_path / "probe"
    report = run_probe(cfg, out, datasets=2, stepping_file=str(files / "easy.jsonl"))
    rows = {row["kind"]: row for row in report["rows"]}
    assert list(rows) == ["oracle", "stepping", "junk", "teacher"]
    assert all(len(row["rewards"]) == 4 for row in rows.values())  # 2 datasets x 2 students
    oracle, junk = rows["oracle"], rows["junk"]
    assert oracle["mean"] > junk["mean"] + 0.25, (oracle, junk)
    assert oracle["separates"] is True and junk["separates"] is None
    saved = json.loads((out / "datasets.json").read_text())
    qr = {p["id"] for p in saved["reward_questions"]}
    assert len(qr) == 6 and not qr & {p["id"] for d in saved["controls"]["oracle"] for p in d}
    assert report["numeric_answers"]["oracle"] == 1.0
    lines = (out / "results.jsonl").read_text().splitlines()
    assert len(lines) == 16

    # the same command again: every student is kept, nothing is retrained, the table is the same
    again = run_probe(cfg, out, datasets=2, stepping_file=str(files / "easy.jsonl"))
    assert again["rows"] == report["rows"] and len((out / "results.jsonl").read_text().splitlines()) == 16

    # a kill in mid-append: the last record half written, no newline; the probe cuts it and trains that student again
    # (sequential full fine-tuning with its own seed: the same accuracy), then appends on a line of its own
    torn = json.loads(lines[-1])["job_id"]
    (out / "results.jsonl").write_text("\n".join(lines[:-1]) + "\n" + lines[-1][: len(lines[-1]) // 2])
    resumed = run_probe(cfg, out, datasets=2, stepping_file=str(files / "easy.jsonl"))
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert len(records) == 16 and records[-1]["job_id"] == torn and resumed["rows"] == report["rows"]
    with pytest.raises(ConfigError, match="other settings"):
        run_probe(cfg, out, datasets=1, stepping_file=str(files / "easy.jsonl"))


def test_cli_bad_kind_is_one_line(model_dir, files, tmp_path):
    cfg_file = tmp_path / "cfg.yaml"
    from soar.config import to_yaml

    cfg_file.write_text(to_yaml(_cfg(model_dir, files, tmp_path)))
    proc = subprocess.run([sys.executable, "-m", "soar", "probe", "--config", str(cfg_file), "--out",
                           str(tmp_path / "p"), "--kinds", "oracle,gold"], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "unknown kind 'gold'" in proc.stderr
    assert not (tmp_path / "p").exists()
