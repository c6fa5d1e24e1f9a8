"""scripts/gpu_check.sh's benchmark runs end to end on CPU at its tiny shape, and soar plan reads what it wrote."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_gpu_check_json_feeds_soar_plan(tmp_path):
    from soar.engines.tiny import default_tokenizer

    default_tokenizer().save_pretrained(tmp_path / "tokenizer")  # what scripts/gpu_bundle.sh brings along
    out = tmp_path / "gpu_check.json"
    small = ["teacher.batch_size=1", "teacher.group_size=2", "inner.repeats=1", "inner.dataset_size=2",
             "inner.reward_questions=4", "student.batch_size=2", "student.group_size=4", "inner.steps=1",
             "teacher.max_new_tokens=24", "student.max_new_tokens=8", "reward.verify_workers=1"]
    tiny = ["--shape", "tiny", "--device", "cpu", "--new-tokens", "4", "--teacher-tokens", "4", "--prompt-tokens", "4",
            "--train-tokens", "4", "--placement-students", "2", "--references", "eager,generate", "--tokenizer", str(tmp_path / "tokenizer"),
            "--json", str(out), *[arg for item in small for arg in ("--outer-set", item)]]
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), *tiny], capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    data = json.loads(out.read_text())
    assert not [r for r in data["rows"] if "error" in r], [r for r in data["rows"] if "error" in r]
    assert data["info"]["params"] > 0
    modes = {r["mode"] for r in data["rows"] if r["section"] == "training"}
    assert {"full", "full+memory", "lora", "lora+memory", "batched lora x16"} <= modes
    engines = {(r["engine"], r["shape"]) for r in data["rows"] if r["section"] == "generation" and "engine" in r}
    assert {(e, s) for e in ("soar decode, CUDA graphs", "soar decode, eager", "transformers generate")
            for s in ("student", "teacher")} <= engines
    parity = next(r for r in data["rows"] if r.get("what", "").startswith("greedy parity"))
    assert parity["tokens_before_first_difference"] == [64] * 8  # on CPU both decoders run the same float32 maths
    steps = [r for r in data["rows"] if r["section"] == "outer" and "step" in r]
    assert [r["step"] for r in steps] == [0, 1] and all(r["students"] == 2 for r in steps)
    assert all(r["phase_seconds"]["student_training"] > 0 for r in steps)
    placement = {r["mode"]: r for r in data["rows"] if r["section"] == "placement"}
    assert set(placement) == {"own", "shared"}
    assert all(len(r["student_peaks_gib"]) == 2 and r["gpus"] == 1 for r in placement.values())  # no peak on a CPU
    assert "placement own: teacher phase, then 2 students on 1 GPU(s)" in run.stdout
    plan = subprocess.run([sys.executable, "-m", "soar", "plan", "--preset", "paper-math", "--measured", str(out)],
                          capture_output=True, text=True, timeout=60)
    assert plan.returncode == 0, plan.stderr
    # the paper presets decode with CUDA graphs and use their memory options
    assert "gpu_check.json: soar decode, CUDA graphs, full+memory RLOO step" in plan.stdout
