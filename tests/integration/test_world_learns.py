"""SOAR learns, tested by learning (issue 34, item 8): the world preset's loop against its frozen-teacher control.

Two ``soar train --preset world`` runs with the same seed, side by side on one thread each: the teacher learning
(the preset) and frozen (``--teacher.lr 0``).  Nothing else differs: the students' seeds, the reward questions
and the first step's datasets are the same.  What the teacher learns in the world is to write stepping stones,
problems with 3-6 carries (:data:`soar.world.family.CARRY_RICH`), because a dataset with enough of them moves the
hard set and earns a reward (``docs/world.md``).  It can only start once some dataset has earned a reward, and
when that happens is luck (one seed's first reward came at step 1, another's at step 6), so the test is
sequential: it watches both runs step by step and passes as soon as the learning teacher's carry-rich share
exceeds the frozen teacher's by more than :data:`MARGIN` at :data:`CONSECUTIVE` steps in a row; it fails if that
has not happened by outer step :data:`STEPS` (both runs are then stopped).

Why these thresholds (measured on a 2-core AMD EPYC with avx512_bf16, fp32 matmuls as the world runs, 2026-12-08;
:data:`SWEEP`): the frozen teacher's share is a binomial draw of 128 questions around ~0.21 (SD ~0.04 a step), so
the learning-minus-frozen difference of two runs that have not diverged exceeds 0.10 at one step ~3% of the time
and at two steps in a row ~0.1%: a pass without learning is rare.  A learning teacher moves to 0.3-0.7.
"""

import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

STEPS = 10
"""The outer steps each run is given (the teacher's cosine schedule spans them); the test's cap."""
SEED = 7
"""Chosen for CI time among the :data:`SWEEP` seeds: it separates at step 2 here (3 outer steps, 112 s alone, 127-149 s
in the suite), seed 0 at step 6 (7 outer steps, 244-265 s).  On another CPU kind the rounding differs, so the step it separates at is then a draw from the
sweep's spread (2-5, or none about 1 time in 10), not a promise."""
MARGIN = 0.10
"""How far the learning teacher's carry-rich share must exceed the frozen teacher's, at each of ..."""
CONSECUTIVE = 2
"""... this many outer steps in a row."""
SWEEP = {0: 6, 3: None, 4: 3, 5: 4, 6: 3, 7: 2, 8: 4, 9: 3, 10: 3, 11: 5, 12: 2}
"""Per seed, the step at which the runs separated at these settings (None: not by :data:`STEPS`), measured with
:func:`race` (``docs/world/shipped/ci_sweep.py``, ``ci-sweep.json``).  Seeds 3-12: 9 of 10 separated, at steps
2-5; seed 3 did not (its teacher learned slowly: learning minus frozen 0.04-0.12 over steps 3-9, above 0.10 only
at step 7).  So the false-failure rate of this test, were its seed or the machine's rounding another, is about
1 in 10 (95% interval 0.3%-45%: ten seeds bound it only loosely).  Seed 0 separates at step 6 (7 outer steps);
seed 7, the test's, at step 2 (3 outer steps)."""


def start(out: Path, seed: int, *extra: str) -> subprocess.Popen:
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.with_name(out.name + ".log"), "w") as log:  # a file, not a pipe: a full pipe would block the run
        return subprocess.Popen([sys.executable, "-m", "soar", "train", "--preset", "world", "--outer_steps",
                                 str(STEPS), "--compute.seed", str(seed), "--compute.threads", "1", "--out", str(out),
                                 *extra], stdout=log, stderr=subprocess.STDOUT, text=True)


def shares(run: Path) -> list[float]:
    """Per finished outer step, the share of carry-rich questions among the teacher's accepted ones."""
    from soar.world.family import CARRY_RICH, kind_of

    out = []
    try:
        lines = (run / "metrics.jsonl").read_text().splitlines()
    except FileNotFoundError:
        return out
    for line in lines:
        try:
            step = json.loads(line)["step"]
        except ValueError:  # the line being written
            break
        questions = [json.loads(q) for q in (run / "questions" / f"step_{step:04d}.jsonl").read_text().splitlines()]
        kinds = Counter(kind_of(q["question"]) for q in questions)
        out.append(sum(kinds[k] for k in CARRY_RICH) / len(questions))
    return out


def separated(learn: list[float], frozen: list[float]) -> int | None:
    """The first step that ends a run of :data:`CONSECUTIVE` steps with learn - frozen > :data:`MARGIN`."""
    run = 0
    for step, (a, b) in enumerate(zip(learn, frozen)):
        run = run + 1 if a - b > MARGIN else 0
        if run >= CONSECUTIVE:
            return step
    return None


def race(folder: Path, seed: int) -> tuple[int | None, list[float], list[float]]:
    """Both runs of ``seed`` under ``folder``, watched until they separate or end; (step, learn, frozen)."""
    procs = {"learn": start(folder / "learn", seed), "frozen": start(folder / "frozen", seed, "--teacher.lr", "0")}
    try:
        while True:
            learn, frozen = shares(folder / "learn"), shares(folder / "frozen")
            step = separated(learn, frozen)
            done = all(p.poll() is not None for p in procs.values())
            if step is not None or done:
                break
            time.sleep(2)
        for name, proc in procs.items():
            if step is None:
                log = (folder / f"{name}.log").read_text()[-3000:]
                assert proc.returncode == 0, f"{name}: {log}"
        return step, learn, frozen
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_teacher_learns_to_write_stepping_stones_and_a_frozen_one_does_not(tmp_path):
    step, learn, frozen = race(tmp_path, SEED)
    assert learn[0] == frozen[0]  # the same first step: the runs differ only by the teacher's updates
    assert step is not None, {"learn": [round(x, 3) for x in learn], "frozen": [round(x, 3) for x in frozen]}
