"""Wall time of SOAR outer steps, split by phase.

    python benchmarks/outer_step.py [--preset tiny] [--steps 1] [--section.key VALUE ...]

Runs ``--steps`` outer steps of the preset (default ``tiny``: SmolLM2-135M on
CPU) in a temporary run directory and prints, per phase, the seconds and share
of the step: teacher generation, student training, student evaluation (the
baseline once plus every trained student on Q_R), promotion (re-check and hard-train accuracy, when a
promotion happened), teacher update, and the rest (checkpoint, files).  The
reference in the same run is the step's total wall time.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from soar.cli import parse_overrides
from soar.config import load_config
from soar.loops.train import train

PHASES = ("teacher_generation", "student_training", "student_evaluation", "promotion", "teacher_update")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--steps", type=int, default=1)
    args, extra = parser.parse_known_args()
    overrides = parse_overrides(extra)
    overrides["outer_steps"] = str(args.steps)
    console = Console()
    with tempfile.TemporaryDirectory() as tmp:
        overrides.setdefault("data.splits_dir", str(Path(tmp) / "splits"))
        cfg = load_config(args.preset, overrides=overrides)
        started = time.perf_counter()
        summary = train(cfg, out=Path(tmp) / "run", console=console)
        total_wall = time.perf_counter() - started
        records = [json.loads(line) for line in (summary.run_dir / "metrics.jsonl").read_text().splitlines()]
    starts = [r["seconds"] for r in records]
    table = Table(title=f"one outer step of '{args.preset}' (mean of {len(records)}; run incl. model load {total_wall:.0f} s)")
    for col in ("phase", "seconds", "share"):
        table.add_column(col, justify="right")
    step_total = sum(r.get("step_wall", sum(r["seconds"].values())) for r in records) / len(records)
    for phase in PHASES:
        seconds = sum(s.get(phase, 0.0) for s in starts) / len(records)
        table.add_row(phase.replace("_", " "), f"{seconds:.1f}", f"{100 * seconds / step_total:.0f}%")
    rest = step_total - sum(sum(s.get(p, 0.0) for s in starts) / len(records) for p in PHASES)
    table.add_row("other (files, checkpoint)", f"{rest:.1f}", f"{100 * rest / step_total:.0f}%")
    table.add_row("step total", f"{step_total:.1f}", "100%")
    console.print(table)


if __name__ == "__main__":
    main()
