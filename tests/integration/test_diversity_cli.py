"""`soar analyze diversity` in a subprocess: a row per file, bad input refused in one line."""

import json
import subprocess
import sys
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[2] / "src")


def test_soar_analyze_diversity_prints_a_row_per_file_and_refuses_bad_input(tmp_path):
    same, mixed = tmp_path / "same.jsonl", tmp_path / "mixed.jsonl"
    same.write_text("".join(json.dumps({"question": "What is 6 + 7?", "answer": "13"}) + "\n" for _ in range(5)))
    mixed.write_text("".join(json.dumps({"question": q, "answer": "1"}) + "\n"
                             for q in ["alpha beta", "gamma delta", "eps zeta"]))
    env = {"PYTHONPATH": SRC, "PATH": "/usr/bin:/bin"}
    run = subprocess.run([sys.executable, "-m", "soar", "analyze", "diversity", str(same), str(mixed)],
                         capture_output=True, text=True, timeout=60, env=env)
    assert run.returncode == 0, run.stderr
    rows = [line.split() for line in run.stdout.splitlines() if line.split()[0].endswith(".jsonl")]
    assert [(r[1], r[2]) for r in rows] == [("5", "1.00"), ("3", "3.00")]
    for args, message in ((["--kernel", "words", str(same)], "--kernel must be ngram or embedding"),
                          ([str(tmp_path / "none.jsonl")], "problem source not found"),
                          (["--size", "0", str(same)], "--size and --iterations must be at least 1")):
        bad = subprocess.run([sys.executable, "-m", "soar", "analyze", "diversity", *args], capture_output=True,
                             text=True, timeout=60, env=env)
        assert bad.returncode == 2 and message in bad.stderr and "Traceback" not in bad.stderr
