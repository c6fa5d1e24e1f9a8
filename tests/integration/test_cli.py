"""The ``soar`` command as a user runs it: a real subprocess, real files."""

import json
import subprocess
import sys
import time

import yaml


def soar(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "soar", *args], capture_output=True, text=True, timeout=timeout)


def test_help_is_fast():
    soar("--help")  # warm the file cache
    started = time.monotonic()
    result = soar("--help")
    assert result.returncode == 0
    assert "train" in result.stdout or "smoke" in result.stdout
    assert time.monotonic() - started < 2.0


def test_config_show_paper_math():
    result = soar("config", "show", "paper-math")
    assert result.returncode == 0, result.stderr
    shown = yaml.safe_load(result.stdout)
    assert shown["promotion"]["tau"] == 0.01 and shown["inner"]["dataset_size"] == 64
    result = soar("config", "show", "paper-math", "--promotion.tau", "0.015", "--inner.repeats=2")
    shown = yaml.safe_load(result.stdout)
    assert shown["promotion"]["tau"] == 0.015 and shown["inner"]["repeats"] == 2


def test_bad_override_is_one_line_without_traceback():
    result = soar("config", "show", "tiny", "--promotion.tua", "1")
    assert result.returncode == 2
    assert "unknown config key 'promotion.tua'" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_data_split_and_malformed_file(tmp_path):
    good = tmp_path / "hard.jsonl"
    good.write_text("".join(json.dumps({"question": f"What is {i} + {i}?", "answer": str(2 * i)}) + "\n" for i in range(10)))
    result = soar("data", "split", "--data.source", str(good), "--data.splits_dir", str(tmp_path / "splits"))
    assert result.returncode == 0, result.stderr
    assert "5 train / 5 test" in result.stdout
    [folder] = (tmp_path / "splits").iterdir()
    assert len((folder / "train.jsonl").read_text().splitlines()) == 5

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "a", "answer": "1"}\n{"question": "b" "answer": "2"}\n')
    result = soar("data", "split", "--data.source", str(bad), "--data.splits_dir", str(tmp_path / "splits"))
    assert result.returncode == 2
    assert f"{bad}:2: not valid JSON" in result.stderr
    assert "Traceback" not in result.stderr
    # nothing already written is lost
    assert len((folder / "train.jsonl").read_text().splitlines()) == 5


def test_train_input_errors_are_one_line(tmp_path):
    result = soar("train", "--resume", str(tmp_path))
    assert result.returncode == 2 and "not a run directory" in result.stderr and "Traceback" not in result.stderr
    (tmp_path / "config.yaml").write_text("outer_steps: 3\n")
    result = soar("train", "--resume", str(tmp_path), "--outer_steps", "5")
    assert result.returncode == 2 and "--outer_steps would change its results" in result.stderr
    result = soar("train", "--teacher.sampling", "freeform")
    assert result.returncode == 2 and "teacher.sampling" in result.stderr and "Traceback" not in result.stderr
    (tmp_path / "metrics.jsonl").write_text("")
    result = soar("train", "--out", str(tmp_path), "--data.splits_dir", str(tmp_path / "splits"))
    assert result.returncode == 2 and "already holds a run" in result.stderr
