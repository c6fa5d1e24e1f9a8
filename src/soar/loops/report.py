"""``soar report``: tables and plots from ``soar train`` run and ``soar evaluate`` directories.

Writes into the output folder:

* ``table.md`` / ``table.csv``: method x pass@k in the shape of the paper's
  Tables 4-6, once for the early-stopped report (B.6) and once for the
  fixed-step report: mean ± SD and median over every student seed of the
  method, and the delta over Hard-Only (Figure 3).  Seeds are nested (B.8):
  evaluation folders that share a method name (say PQ of two runs, or
  Grounded-T of four teacher seeds) are one method whose seeds are all their
  student seeds, reported as "teachers x students";
* ``teacher_rewards.png``: per run, the mean teacher reward of each outer step,
  its moving average, the promotion threshold tau and the promotions (Figure 16);
* ``student_pass_at_k.png``: per method, test pass@k against student training
  steps, mean over seeds with a ± SD band, one panel per k (Figure 9);
* ``acceptance.png``: per run, the teacher's acceptance rate over outer steps;
* ``learning.md``: per run, the mean reward of its first and last 20 steps (fewer in a run shorter than 40),
  the difference in standard errors, its promotions and, for the designed world, the share of each question
  kind and of right answers over the same windows (:mod:`soar.analysis.learning`); and each run against a
  frozen-teacher run given with it (``teacher.lr 0``, same ``compute.seed`` and hard set), step by step;
* ``question_kinds.png`` and ``learning.png`` (runs that record question kinds, the designed world): the
  share of each kind per step, stacked; and all runs on one set of axes, as 10-step rolling means, the
  reward, the share of the world's carry-rich stepping stones (3-6 carries) and of right answers;
* with ``--html``: ``run_curves.png`` (per-step question diversity and baseline
  accuracy) and ``report.html``, all of the above in one self-contained page
  with every step's questions (:mod:`soar.loops.report_html`).

A directory is a run when it holds ``metrics.jsonl`` and ``config.yaml``, an
evaluation when it holds ``source.json``; anything else is an error naming it.
Plots are drawn with matplotlib's Agg backend (no display needed); every line
is labelled in place as well as in the legend.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from soar.errors import SoarError
from soar.types import StepRecord


def classify(paths: list[Path]) -> tuple[list[Path], list[Path]]:
    runs, evals = [], []
    for path in paths:
        if (path / "metrics.jsonl").exists() and (path / "config.yaml").exists():
            runs.append(path)
        elif (path / "source.json").exists():
            evals.append(path)
        else:
            raise SoarError(f"{path}: neither a soar train run (metrics.jsonl) nor a soar evaluate folder (source.json)")
    return runs, evals


def write_report(paths: list[str | Path], out: str | Path, html: bool = False) -> list[Path]:
    """Write the tables and plots for ``paths`` into ``out`` (``html``: also ``run_curves.png`` and the
    self-contained ``report.html``, :mod:`soar.loops.report_html`); returns the files written."""
    runs, evals = classify([Path(p) for p in paths])
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written, rows, metrics = [], [], []
    names = {d: _read_json(d / "source.json")["method"] for d in evals}
    methods: dict[str, list[Path]] = {}
    for d in evals:
        if (d / "summary.json").exists():
            methods.setdefault(names[d], []).append(d)
    if methods:
        md, rows = _tables(methods)
        (out / "table.md").write_text(md, encoding="utf-8")
        with (out / "table.csv").open("w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows(rows)
        written += [out / "table.md", out / "table.csv"]
    if runs:
        metrics = [(d, _metrics(d)) for d in runs]
        written.append(_teacher_rewards(metrics, out / "teacher_rewards.png"))
        written.append(_acceptance(metrics, out / "acceptance.png"))
        written.append(_learning_table(metrics, out / "learning.md"))
        if any(r.question_kinds for _, records in metrics for r in records):
            written.append(_kinds(metrics, out / "question_kinds.png"))
            written.append(_learning_plot(metrics, out / "learning.png"))
        if html:
            written.append(_run_curves(metrics, out / "run_curves.png"))
    if evals:
        written.append(_student_curves(names, out / "student_pass_at_k.png"))
    if not written:
        raise SoarError("nothing to report: no finished evaluation (summary.json) and no run")
    if html:
        from soar.loops.report_html import write_html

        written.append(write_html(out / "report.html", metrics, rows, [p for p in written if p.suffix == ".png"]))
    return written


def _run_curves(runs: list[tuple[Path, list[StepRecord]]], path: Path) -> Path:
    """Per run: the n-gram Vendi Score of each step's questions and the baseline's Q_R accuracy."""
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.2))
    for i, (run, records) in enumerate(runs):
        color = f"C{i}"
        points = [(r.step, r.question_diversity) for r in records if r.question_diversity is not None]
        if points:
            left.plot(*zip(*points), "o-", ms=3, color=color, label=run.name)
        right.plot([r.step for r in records], [r.baseline_accuracy for r in records], "o-", ms=3, color=color,
                   label=run.name)
    left.set_title("question diversity (n-gram Vendi Score of the step's questions)", fontsize=9)
    right.set_title("baseline student's accuracy on Q_R", fontsize=9)
    for ax in (left, right):
        _outer_steps_axis(ax)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return _save(fig, path)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise SoarError(f"{path}: cannot be read as JSON ({exc})") from None


def _metrics(run: Path) -> list[StepRecord]:
    from soar.loops.run_dir import RunDir

    try:
        records = [StepRecord.from_dict(r) for r in RunDir(run).read("metrics.jsonl")]
    except TypeError as exc:  # a required field missing: not a record soar train wrote
        raise SoarError(f"{run / 'metrics.jsonl'}: not an outer-step record ({exc})") from None
    if not records:
        raise SoarError(f"{run / 'metrics.jsonl'}: no finished outer step to report")
    return records


def _seed_summaries(folder: Path) -> list[dict[str, Any]]:
    """The per-seed summaries of the student seeds the folder's ``summary.json`` aggregates (a seed folder left from
    an earlier ``evaluation.seeds`` list is not counted)."""
    seeds = _read_json(folder / "summary.json").get("seeds")
    files = sorted(folder.glob("seed_*/summary.json"))
    if seeds is not None:
        files = [f for f in files if f.parent.name in {f"seed_{s}" for s in seeds}]
    return [_read_json(f) for f in files]


def _nested(folders: list[tuple[Path, list[dict[str, Any]]]], report: str) -> dict[str, Any]:
    """One method's pass@k over all student seeds of all its folders (each with its per-seed summaries): mean, SD,
    median; teachers x students."""
    from statistics import median

    from soar.algo.early_stopping import aggregate_seeds

    per_seed = [s for _, seeds in folders for s in seeds]
    ks = sorted({int(k) for s in per_seed for k in s[report]})
    cells = {}
    for k in ks:
        values = [s[report][str(k)] for s in per_seed if str(k) in s[report]]
        agg = aggregate_seeds(values)
        cells[k] = {"mean": agg.mean, "sd": agg.sd, "median": median(values), "n": agg.n}
    students = sorted({len(seeds) for _, seeds in folders})
    shape = f"{len(folders)}×{students[0]}" if len(students) == 1 else f"{len(folders)}×({'/'.join(map(str, students))})"
    return {"cells": cells, "teachers": len(folders), "seeds": len(per_seed), "shape": shape}


def _tables(methods: dict[str, list[Path]]) -> tuple[str, list[list[str]]]:
    md = io.StringIO()
    rows = [["report", "method", "teachers", "seeds", "k", "mean", "sd", "median", "delta_over_hard_only", "folders"]]
    seeds = {method: [(folder, _seed_summaries(folder)) for folder in folders] for method, folders in methods.items()}
    for report, title in (("early_stopped", "early-stopped (B.6: slope stop, window average)"),
                          ("fixed_step", "fixed step")):
        table = {method: _nested(seeds[method], report) for method in methods}
        ks = sorted({k for t in table.values() for k in t["cells"]})
        base = table.get("Hard-Only")
        header = "| method | seeds (teachers×students) | " + " | ".join(f"pass@{k}" for k in ks) + " |\n"
        rule = "|---|---|" + "---|" * len(ks) + "\n"
        parts = {"mean ± SD": [], "median": [], "delta over Hard-Only (mean)": []}
        for method, t in table.items():
            c = t["cells"]
            lead = f"| {method} | {t['shape']} | "
            parts["mean ± SD"].append(lead + " | ".join(
                f"{100 * c[k]['mean']:.1f} ± {100 * c[k]['sd']:.1f}" if k in c else "-" for k in ks) + " |\n")
            parts["median"].append(lead + " | ".join(f"{100 * c[k]['median']:.1f}" if k in c else "-" for k in ks)
                                   + " |\n")
            if base is not None and method != "Hard-Only":
                parts["delta over Hard-Only (mean)"].append(lead + " | ".join(
                    f"{100 * (c[k]['mean'] - base['cells'][k]['mean']):+.1f}" if k in c and k in base["cells"] else "-"
                    for k in ks) + " |\n")
            for k in ks:
                if k in c:
                    delta = c[k]["mean"] - base["cells"][k]["mean"] if base and k in base["cells"] else None
                    rows.append([report, method, str(t["teachers"]), str(t["seeds"]), str(k), f"{c[k]['mean']:.6f}",
                                 f"{c[k]['sd']:.6f}", f"{c[k]['median']:.6f}",
                                 "" if delta is None else f"{delta:.6f}", ";".join(map(str, methods[method]))])
        for name, lines in parts.items():
            if lines:
                md.write(f"### Test pass@k, {title}: {name}\n\n" + header + rule + "".join(lines) + "\n")
    md.write("Values are percentages over every student seed of a method (B.8): evaluation folders with the same "
             "method name are its teacher seeds; SD is the sample standard deviation.\n")
    return md.getvalue(), rows


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise SoarError("soar report draws with matplotlib: pip install 'soar[analysis]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _label_end(ax: Any, xs: list[float], ys: list[float], text: str, color: Any) -> None:
    if xs:
        ax.annotate(text, (xs[-1], ys[-1]), xytext=(4, 0), textcoords="offset points", color=color, fontsize=8,
                    va="center")


def _label_ends(ax: Any, ends: list[tuple[float, float, str, Any]]) -> None:
    """Label each line at its last point; lines that end at the same point share one label ("A = B")."""
    groups: dict[tuple[float, float], list[tuple[str, Any]]] = {}
    for x, y, text, color in ends:
        groups.setdefault((x, round(y, 6)), []).append((text, color))
    for (x, y), labels in groups.items():
        _label_end(ax, [x], [y], " = ".join(text for text, _ in labels), labels[0][1] if len(labels) == 1 else "black")


def _outer_steps_axis(ax: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.set_xlabel("outer step")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _teacher_rewards(runs: list[tuple[Path, list[StepRecord]]], path: Path) -> Path:
    plt = _pyplot()
    fig, axes = plt.subplots(len(runs), 1, figsize=(8, 3.2 * len(runs)), squeeze=False)
    for ax, (run, records) in zip(axes[:, 0], runs):
        steps = [r.step for r in records]
        mean = [r.mean_reward for r in records]
        avg = [r.moving_average for r in records]
        ax.plot(steps, mean, "o-", color="tab:blue", ms=3, lw=1, label="mean teacher reward")
        ax.plot(steps, avg, "-", color="tab:orange", lw=2, label="moving average")
        tau = _tau(run)
        if tau is not None:
            ax.axhline(tau, color="gray", ls=":", lw=1, label=f"tau = {tau:g}")
        promoted = [r for r in records if r.promoted]
        for r in promoted:
            ax.axvline(r.step, color="tab:green", ls="--", lw=1)
            ax.annotate(f"promotion {r.stage}", (r.step, 1), xycoords=("data", "axes fraction"), rotation=90,
                        va="top", ha="right", fontsize=7, color="tab:green")
        _label_end(ax, steps, avg, "moving avg", "tab:orange")
        ax.set_title(f"{run.name}: teacher reward ({len(promoted)} promotions)", fontsize=10)
        _outer_steps_axis(ax)
        ax.set_ylabel("R (accuracy gain)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    return _save(fig, path)


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _pyplot().close(fig)
    return path


def _tau(run: Path) -> float | None:
    from soar.config import load_config

    try:
        return load_config(file=run / "config.yaml").promotion.tau
    except SoarError:
        return None


def _acceptance(runs: list[tuple[Path, list[StepRecord]]], path: Path) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 3.2))
    for i, (run, records) in enumerate(runs):
        color = f"C{i}"
        steps, rates = [r.step for r in records], [r.acceptance_rate for r in records]
        ax.plot(steps, rates, "o-", ms=3, color=color, label=run.name)
        _label_end(ax, steps, rates, run.name, color)
    ax.set_ylim(0, 1.05)
    _outer_steps_axis(ax)
    ax.set_ylabel("accepted / drafted")
    ax.set_title("teacher acceptance rate (drafts passing the B.2 parser)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, path)


def _kinds(runs: list[tuple[Path, list[StepRecord]]], path: Path) -> Path:
    """Per run, the share of each kind among the step's accepted questions (the teacher's drift), stacked."""
    plt = _pyplot()
    fig, axes = plt.subplots(len(runs), 1, figsize=(8, 3.0 * len(runs)), squeeze=False)
    for ax, (run, records) in zip(axes[:, 0], runs):
        records = [r for r in records if r.question_kinds]
        kinds = sorted({k for r in records for k in r.kind_counts()})
        steps = [r.step for r in records]
        shares = [[r.kind_counts().get(k, 0) / max(1, sum(r.kind_counts().values())) for r in records] for k in kinds]
        ax.stackplot(steps, shares, labels=kinds, alpha=0.85)
        for r in records:
            if r.promoted:
                ax.axvline(r.step, color="black", ls="--", lw=0.8)
        ax.set_ylim(0, 1)
        ax.set_ylabel("share of questions")
        ax.set_title(f"{run.name}: what the teacher writes, by kind (dashed: promotions)", fontsize=10)
        _outer_steps_axis(ax)
        ax.legend(fontsize=7, loc="upper left", ncol=len(kinds))
    return _save(fig, path)


LEARNING_WINDOW = 20


def _learning_table(runs: list[tuple[Path, list[StepRecord]]], path: Path) -> Path:
    """``learning.md``: :func:`soar.analysis.learning.render` over every run that has steps; then each run
    against the frozen-teacher runs (``teacher.lr 0``) of the same ``compute.seed`` and hard set, step by step
    (:func:`soar.analysis.learning.paired`)."""
    from soar.analysis.learning import paired, render, render_paired, summarize

    runs = [(run, records) for run, records in runs if records]
    window = min([LEARNING_WINDOW, *(max(1, len(records) // 2) for _, records in runs)])
    text = f"# Did the teacher learn? First {window} steps against the last {window}\n\n"
    text += render([summarize(run.name, records, window) for run, records in runs], window) if runs else ""
    seeds = {run: _seeds(run) for run, _ in runs}
    rows = [paired(run.name, records, control.name, control_records, window)
            for run, records in runs for control, control_records in runs
            if seeds[run] and seeds[control] and seeds[control][0] == 0 and seeds[run][0] != 0
            and seeds[run][1:] == seeds[control][1:]]
    if rows:
        text += ("\n\n## Against the frozen teacher of the same seeds (per-step differences of the mean reward)\n\n"
                 + render_paired(rows, window))
    path.write_text(text + "\n", encoding="utf-8")
    return path


def _seeds(run: Path) -> tuple[float, int, str] | None:
    """``(teacher.lr, compute.seed, data.source)`` of a run, or None when its config does not load."""
    from soar.config import load_config

    try:
        cfg = load_config(file=run / "config.yaml")
    except SoarError:
        return None
    return cfg.teacher.lr, cfg.compute.seed, cfg.data.source


def _rolling(values: list[float], window: int = 10) -> list[float]:
    return [sum(values[max(0, i - window + 1):i + 1]) / len(values[max(0, i - window + 1):i + 1])
            for i in range(len(values))]


def _learning_plot(runs: list[tuple[Path, list[StepRecord]]], path: Path) -> Path:
    """All runs on shared axes (10-step rolling means): reward, the share of the useful kinds (the world's
    carry-rich stepping stones; elsewhere the last kind in sort order), right answers."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    from soar.world.family import CARRY_RICH

    kinds = sorted({k for _, records in runs for r in records for k in r.kind_counts()} - {"other"})
    useful = [k for k in kinds if k in CARRY_RICH] or kinds[-1:]  # the world's stepping stones, else the last kind
    label = "carry-rich (3-6 carries)" if set(useful) <= set(CARRY_RICH) and useful else " ".join(useful)
    for i, (run, records) in enumerate(runs):
        records = [r for r in records if r.question_kinds]
        steps, color = [r.step for r in records], f"C{i}"
        counts = [max(1, sum(r.kind_counts().values())) for r in records]
        series = [[r.mean_reward for r in records],
                  [sum(r.kind_counts().get(k, 0) for k in useful) / n for r, n in zip(records, counts)],
                  [r.right_share() or 0.0 for r in records]]
        for ax, values in zip(axes, series):
            ax.plot(steps, _rolling(values), "-", lw=2, color=color, label=run.name)
    titles = ["mean teacher reward (10-step rolling mean)", f"share of {label} questions", "share of right answers"]
    for ax, title in zip(axes, titles):
        ax.set_title(title, fontsize=9)
        _outer_steps_axis(ax)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return _save(fig, path)


def _student_curves(names: dict[Path, str], path: Path) -> Path:
    """Per method (all its folders' student seeds pooled), test pass@k against student steps."""
    from soar.loops.run_dir import RunDir

    plt = _pyplot()
    curves: dict[str, dict[int, list[dict[str, float]]]] = {}
    for folder, method in names.items():
        by_step = curves.setdefault(method, {})
        for seed_dir in sorted(folder.glob("seed_*")):
            for record in RunDir(seed_dir).read("evals.jsonl"):
                by_step.setdefault(record["step"], []).append(record["pass_at_k"])
    curves = {method: by_step for method, by_step in curves.items() if by_step}
    if not curves:
        raise SoarError("no evaluation has test pass@k records (seed_N/evals.jsonl) yet")
    ks = sorted({int(k) for by_step in curves.values() for rows in by_step.values() for row in rows for k in row})
    fig, axes = plt.subplots(1, len(ks), figsize=(3.6 * len(ks), 3.4), squeeze=False)
    for ax, k in zip(axes[0], ks):
        ends = []
        for i, (method, by_step) in enumerate(curves.items()):
            steps = [s for s in sorted(by_step) if any(str(k) in row for row in by_step[s])]
            if not steps:  # this method's evaluations have no pass@k at this k
                continue
            values = [[row[str(k)] for row in by_step[s] if str(k) in row] for s in steps]
            mean = [sum(v) / len(v) for v in values]
            sd = [(sum((x - m) ** 2 for x in v) / (len(v) - 1)) ** 0.5 if len(v) > 1 else 0.0 for v, m in zip(values, mean)]
            color = f"C{i}"
            ax.plot(steps, mean, "o-" if len(steps) == 1 else "-", color=color, lw=1.5, ms=4, label=method)
            ax.fill_between(steps, [m - s for m, s in zip(mean, sd)], [m + s for m, s in zip(mean, sd)],
                            color=color, alpha=0.15)
            ends.append((steps[-1], mean[-1], method, color))
        _label_ends(ax, ends)
        ax.set_title(f"test pass@{k}", fontsize=10)
        ax.set_xlabel("student training step")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("pass@k (mean ± SD over seeds)")
    axes[0][-1].legend(fontsize=7)
    return _save(fig, path)
