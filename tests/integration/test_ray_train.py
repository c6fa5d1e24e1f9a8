"""`soar train --compute.pool ray --compute.workers 2`: end to end on a local Ray instance, killed and resumed.

The run's students are batched LoRA pairs on two Ray workers; the same run with the in-process pool (same
batches, torch on one thread as each worker) is the reference it must equal, kill and resume included.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from soar.config import to_yaml
from soar.loops.train import train
from tests.helpers.formatted import formatted_tiny_model_dir
from tests.integration.test_train_loop import _cfg

pytest.importorskip("ray")

SETTINGS = {"student.finetune": "lora", "student.lora_rank": 4, "student.lora_alpha": 8, "student.lr": 1e-3,
            "compute.student_batch": 2, "compute.threads": 1, "promotion.tau": -1.0}


def _soar(*args):
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2] / "src"))
    return subprocess.Popen([sys.executable, "-m", "soar", "train", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _metrics(run):
    skip = ("seconds", "step_wall", "pool")
    return [{k: v for k, v in json.loads(x).items() if k not in skip} for x in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_ray_run_killed_and_resumed_equals_the_in_process_run(tmp_path):
    model_dir = formatted_tiny_model_dir(tmp_path / "model")
    cfg = _cfg(model_dir, tmp_path, **SETTINGS)
    reference = train(cfg, out=tmp_path / "inprocess")
    config = tmp_path / "cfg.yaml"
    config.write_text(to_yaml(cfg))
    run = tmp_path / "ray"
    proc = _soar("--config", str(config), "--out", str(run), "--compute.pool", "ray", "--compute.workers", "2")
    latest = run / "checkpoints" / "latest"
    deadline = time.time() + 300
    while not (latest.exists() and latest.read_text().strip() == "step_0000") and proc.poll() is None:
        assert time.time() < deadline, "no first checkpoint within 300 s"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)  # the driver dies during step 1; its Ray workers go with it
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read()[-2000:]
    resumed = _soar("--resume", str(run))
    out, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err[-3000:]
    assert "2 Ray workers" in out and "resuming after step 0" in out
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["pool"] for r in records] == ["ray+batched"] * 3
    assert any(r["promoted"] for r in records)
    assert _metrics(run) == _metrics(reference.run_dir)
    assert (run / "promotion_questions.jsonl").read_text() == (reference.run_dir / "promotion_questions.jsonl").read_text()
