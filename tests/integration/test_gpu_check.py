"""scripts/gpu_check.sh's benchmark runs end to end on CPU at its tiny shape, and soar plan reads what it wrote."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_gpu_check_json_feeds_soar_plan(tmp_path):
    out = tmp_path / "gpu_check.json"
    tiny = ["--shape", "tiny", "--device", "cpu", "--new-tokens", "4", "--teacher-tokens", "4", "--prompt-tokens", "4",
            "--train-tokens", "4", "--json", str(out)]
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), *tiny], capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    data = json.loads(out.read_text())
    modes = {r["mode"] for r in data["rows"] if r["section"] == "training"}
    assert {"full", "full+memory", "lora", "lora+memory", "batched lora x16"} <= modes
    assert not [r for r in data["rows"] if "error" in r] and data["info"]["params"] > 0
    plan = subprocess.run([sys.executable, "-m", "soar", "plan", "--preset", "paper-math", "--measured", str(out)],
                          capture_output=True, text=True, timeout=60)
    assert plan.returncode == 0, plan.stderr
    assert "gpu_check.json: soar decode, full+memory RLOO step" in plan.stdout  # the paper presets' memory options
