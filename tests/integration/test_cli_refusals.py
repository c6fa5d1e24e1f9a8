"""The paper presets through the `soar` command in a subprocess: bad values refused in one line with nothing written, and `soar plan`'s output."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from soar.config import load_config
from soar.data.files import write_jsonl
from soar.types import Problem
from tests.unit.test_paper_presets import GPU_ROWS, _gpu_check_json  # the measurement rows both tiers use

SRC = str(Path(__file__).resolve().parents[2] / "src")


# -- 10. values checked at load ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("args", [["--outer_steps", "0"], ["--teacher.group_size", "1"]])
def test_the_cli_refuses_bad_values_fast_and_writes_nothing(tmp_path, args):
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "soar", "train", *args], cwd=tmp_path, capture_output=True, text=True,
                            timeout=60, env={"PYTHONPATH": SRC, "PATH": "/usr/bin:/bin"})
    seconds = time.perf_counter() - started
    assert result.returncode == 2 and args[0][2:] in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == [] and seconds < 3, seconds


def test_train_refuses_an_unfiltered_set_fast_and_writes_nothing(tmp_path):
    pool = tmp_path / "some-unfiltered.jsonl"
    write_jsonl(pool, [Problem(f"q{i}", str(i)) for i in range(4)])
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "soar", "train", "--preset", "paper-math", "--data.source", str(pool)],
                            cwd=tmp_path, capture_output=True, text=True, timeout=60,
                            env={"PYTHONPATH": SRC, "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    seconds = time.perf_counter() - started
    assert result.returncode == 2 and "soar filter --preset paper-math" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and seconds < 10, seconds
    assert sorted(p.name for p in tmp_path.iterdir()) == ["some-unfiltered.jsonl"]


def test_plan_of_paper_math_shows_32_students_and_gpu_hours():
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "soar", "plan", "--preset", "paper-math"], capture_output=True,
                            text=True, timeout=60, env={"PYTHONPATH": SRC, "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert "students per outer step: 32" in result.stdout and "GPU-hours" in result.stdout
    assert "1,536-1,920 GPU-hours" in result.stdout and "assumed" in result.stdout
    assert time.perf_counter() - started < 60


def test_plan_reads_the_gpu_check_json_and_says_so(tmp_path):
    from soar.loops.plan import measured_throughput, plan

    c = load_config("paper-math")
    file = _gpu_check_json(tmp_path / "gpu.json", GPU_ROWS)
    measured = measured_throughput(file, "full")  # soar's decoder at the student shape, the students' mode
    assert (measured.throughput.gen_tok_s, measured.throughput.train_tok_s) == (6000.0, 16000.0)
    assert measured_throughput(file, "lora").throughput.train_tok_s == 12000.0
    assert measured_throughput(file, "full", memory_options=True).throughput.train_tok_s == 16000.0  # no +memory row
    with_memory = _gpu_check_json(tmp_path / "m.json", GPU_ROWS + [{"section": "training", "mode": "full+memory",
                                                                     "tokens_per_s": 11000.0}])
    assert measured_throughput(with_memory, "full", memory_options=True).throughput.train_tok_s == 11000.0
    assert "full+memory RLOO step" in measured_throughput(with_memory, "full", memory_options=True).throughput.source
    graphed = _gpu_check_json(tmp_path / "g.json", GPU_ROWS + [  # a check with both decoders: the run's one counts
        {"section": "generation", "engine": "soar decode, CUDA graphs", "shape": "student", "tokens_per_s": 14000.0},
        {"section": "generation", "engine": "soar decode, eager", "shape": "student", "tokens_per_s": 3000.0}])
    assert measured_throughput(graphed, "full").throughput.gen_tok_s == 14000.0
    assert "soar decode, CUDA graphs, full RLOO step" in measured_throughput(graphed, "full").throughput.source
    assert measured_throughput(graphed, "full", cuda_graphs=False).throughput.gen_tok_s == 3000.0
    assert measured_throughput(file, "full", cuda_graphs=True).throughput.gen_tok_s == 6000.0  # older checks: eager
    p = plan(c, length_fraction=1.0, acceptance=1.0, measured=measured)
    given = plan(c, gen_tok_s=6000.0, train_tok_s=16000.0, length_fraction=1.0, acceptance=1.0)
    assert p["run_time"]["device_hours"] == pytest.approx(given["run_time"]["device_hours"])
    assert "measured on Test GPU (gpu.json" in p["speed"].source
    # measured on a model half the size: figures scale to the config's 3B model
    half = measured_throughput(_gpu_check_json(tmp_path / "half.json", GPU_ROWS, params=p["params"] // 2), "full")
    assert plan(c, measured=half)["speed"].gen_tok_s == pytest.approx(3000.0, rel=1e-3)
    result = subprocess.run([sys.executable, "-m", "soar", "plan", "--preset", "paper-math", "--measured", str(file)],
                            capture_output=True, text=True, timeout=60, env={"PYTHONPATH": SRC, "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert "6,000 sampled tok/s, 16,000 trained tok/s (measured on Test GPU" in result.stdout
    assert "assumed" not in result.stdout.split("throughput per device")[1]


@pytest.mark.parametrize("content, message", [
    ("not json", "is not a gpu_check JSON file"),
    (json.dumps({"rows": []}), "no 'info' and 'rows'"),
    (json.dumps({"info": {"shape": "3b"}, "rows": GPU_ROWS[3:]}), "has no 'soar decode' student-shape generation row"),
    (json.dumps({"info": {"shape": "3b"}, "rows": GPU_ROWS[:3]}), "has no 'full' training row"),
    (json.dumps({"info": {"shape": "7b"}, "rows": GPU_ROWS}), "does not say which model it measured"),
])
def test_plan_refuses_a_bad_measurement_file_in_one_line(tmp_path, content, message):
    file = tmp_path / "gpu.json"
    file.write_text(content)
    result = subprocess.run([sys.executable, "-m", "soar", "plan", "--preset", "paper-math", "--measured", str(file)],
                            capture_output=True, text=True, timeout=60, env={"PYTHONPATH": SRC, "PATH": "/usr/bin:/bin"})
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0 and message in result.stderr and str(file) in result.stderr
