"""Kill soak: SIGKILL ``soar train`` at chosen moments, resume each time, and check the finish equals a clean run.

    python scripts/kill_soak.py [--preset tiny] [--steps 3] [--seed 0] [--out DIR] [--section.key VALUE ...]

Not part of CI (about half an hour on 2 cores with the defaults).  It runs the
preset twice as separate ``soar train`` processes, with ``promotion.tau -1``
(every step promotes, so the moment right after a promotion exists in every
step) and ``--steps`` outer steps:

1. an uninterrupted run;
2. a run killed with SIGKILL at five moments, one after another, resumed with
   ``soar train --resume`` after each kill, then run to its end:

   * ``checkpoint``: while a checkpoint is being written (``status.json`` says
     ``checkpoint``; the kill lands inside ``torch.save`` or the renames);
   * ``promotion``: right after a promoted student's folder appears;
   * ``teacher_update``: during the teacher's RLOO update;
   * ``random`` (twice): a uniformly drawn moment 5-90 s after start.

It then compares the two runs: every metrics record (timings aside), the
questions of every step, the promotion questions, the final checkpoint's
tensors (teacher weights and optimiser, students, RNG) and every promoted
student's weights, and prints a table of the kills and the verdict (exit 1 on
any difference).  The kill moments are watched through the run's
``status.json`` and folders, the way a person would watch a run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))  # this checkout's soar, as its child processes get it
MOMENTS = ["checkpoint", "promotion", "teacher_update", "random", "random"]


def _status(run: Path) -> dict:
    try:
        return json.loads((run / "status.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _stages(run: Path) -> int:
    folder = run / "promoted"
    return len([p for p in folder.glob("stage_*") if (p / "info.json").exists()]) if folder.is_dir() else 0


def _start(args: list[str], log: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen([sys.executable, "-m", "soar", "train", *args], env=env, stdout=log.open("a"),
                            stderr=subprocess.STDOUT)


def _kill_at(moment: str, proc: subprocess.Popen, run: Path, rng: random.Random) -> str | None:
    """Wait for ``moment`` and SIGKILL; returns what the run was doing, or None when it ended first."""
    started, stages = time.time(), _stages(run)
    delay = rng.uniform(5, 90)
    while proc.poll() is None:
        status = _status(run)
        if status.get("pid") != proc.pid:  # what a killed earlier process left: not this one's moment
            status = {}
        hit = {"checkpoint": status.get("phase") == "checkpoint",
               "promotion": _stages(run) > stages,
               "teacher_update": status.get("phase") == "teacher_update"
               and time.time() - status.get("since", 0) > rng.uniform(0.2, 1.5),
               "random": time.time() - started > delay}[moment]
        if hit:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            status = _status(run)
            return f"step {status.get('step')} {status.get('phase')}"
        time.sleep(0.01)
    return None


def _comparable(path: Path) -> list[dict]:
    skip = {"seconds", "step_wall"}
    return [{k: v for k, v in json.loads(line).items() if k not in skip} for line in path.read_text().splitlines()]


def _same_tensors(a, b) -> bool:
    import torch

    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_tensors(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same_tensors(x, y) for x, y in zip(a, b))
    if torch.is_tensor(a) and torch.is_tensor(b):
        return a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
    return a == b


def compare(a: Path, b: Path) -> list[str]:
    """What differs between two finished runs (empty: nothing)."""
    from soar.loops.run_dir import RunDir, load_part

    diffs = []
    if _comparable(a / "metrics.jsonl") != _comparable(b / "metrics.jsonl"):
        diffs.append("metrics.jsonl")
    for file in sorted((a / "questions").glob("*.jsonl")):
        if file.read_text() != (b / "questions" / file.name).read_text():
            diffs.append(f"questions/{file.name}")
    pq_a, pq_b = a / "promotion_questions.jsonl", b / "promotion_questions.jsonl"
    if (pq_a.read_text() if pq_a.exists() else "") != (pq_b.read_text() if pq_b.exists() else ""):
        diffs.append("promotion_questions.jsonl")
    last_a, last_b = RunDir(a).latest_checkpoint(), RunDir(b).latest_checkpoint()
    for part in ("teacher", "students", "rng"):
        if not _same_tensors(load_part(last_a, part), load_part(last_b, part)):
            diffs.append(f"checkpoint {part}")
    stages_a = sorted(p.name for p in (a / "promoted").glob("stage_*")) if (a / "promoted").is_dir() else []
    stages_b = sorted(p.name for p in (b / "promoted").glob("stage_*")) if (b / "promoted").is_dir() else []
    if stages_a != stages_b:
        diffs.append(f"promoted stages {stages_a} vs {stages_b}")
    for stage in set(stages_a) & set(stages_b):
        if not _same_tensors(load_part(a / "promoted" / stage, "student"), load_part(b / "promoted" / stage, "student")):
            diffs.append(f"promoted/{stage} weights")
    return diffs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0, help="Seed of the kill moments (not of the runs).")
    parser.add_argument("--out", default=None, help="Where the two runs go (default: a temporary folder).")
    args, extra = parser.parse_known_args()
    rng = random.Random(args.seed)
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="soar-soak-"))
    out.mkdir(parents=True, exist_ok=True)
    common = ["--preset", args.preset, "--outer_steps", str(args.steps), "--promotion.tau", "-1", *extra]
    clean, soaked, log = out / "clean", out / "soaked", out / "soak.log"
    print(f"runs and log in {out}", flush=True)

    started = time.time()
    if _start([*common, "--out", str(clean)], log).wait() != 0:
        sys.exit(f"the uninterrupted run failed; see {log}")
    clean_s = time.time() - started
    print(f"uninterrupted run: {clean_s:.0f} s", flush=True)

    started, kills = time.time(), []
    for index, moment in enumerate(MOMENTS):
        proc = _start([*common, "--out", str(soaked)] if index == 0 else ["--resume", str(soaked)], log)
        at = _kill_at(moment, proc, soaked, rng)
        kills.append((moment, at, round(time.time() - started)))
        print(f"kill {index + 1} ({moment}): {at or 'not reached, the run ended first'}", flush=True)
        if at is None:
            break
    final = _start(["--resume", str(soaked)], log).wait()
    soaked_s = time.time() - started
    diffs = compare(clean, soaked) if final == 0 else [f"the last resume exited {final}"]

    print("\n| kill | moment | what the run was doing | s after the first start |\n|---|---|---|---|")
    for index, (moment, at, when) in enumerate(kills, 1):
        print(f"| {index} | {moment} | {at or 'not reached'} | {when} |")
    print(f"\nuninterrupted {clean_s:.0f} s; killed {len([k for k in kills if k[1]])} times and resumed "
          f"{soaked_s:.0f} s; total {clean_s + soaked_s:.0f} s")
    print("identical: metrics, questions, promotion questions, final checkpoint, promoted students" if not diffs
          else f"DIFFERENT: {', '.join(diffs)}")
    sys.exit(1 if diffs or len([k for k in kills if k[1]]) < len(MOMENTS) else 0)


if __name__ == "__main__":
    main()
