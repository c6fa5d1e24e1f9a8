"""``soar report --html``: one self-contained HTML file (no network, no script) beside the tables and plots.

What it holds, in order: the results tables (method x pass@k, early-stopped
and fixed-step, mean ± SD over student seeds, as ``table.md``), the plots
``soar report`` draws, embedded as PNG data (teacher rewards with promotions,
tau and moving average; acceptance; per-step question diversity and baseline
accuracy; students' test pass@k), then per run a table of its outer steps and,
folded per step, every accepted question with its answer, dataset and the
dataset's reward, and the promotion questions.

Every text from a run (questions, answers, names) is HTML-escaped: a question
is untrusted model output and must not become markup.  Written by hand
(``html.escape`` and string building) because a template engine would be one
more dependency for a single page.
"""

from __future__ import annotations

import base64
from html import escape
from pathlib import Path
from typing import Any

from soar.types import StepRecord

STYLE = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
table{border-collapse:collapse;margin:0.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px}
th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}img{max-width:100%;display:block}
details{margin:0.3em 0}summary{cursor:pointer}.q{white-space:pre-wrap}.small{color:#666;font-size:12px}"""


def write_html(path: Path, runs: list[tuple[Path, list[StepRecord]]], rows: list[list[str]],
               images: list[Path]) -> Path:
    """The page for ``runs`` (each with its records), the results ``rows`` (``table.csv``'s) and ``images``."""
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>soar report</title><style>{STYLE}</style>"
             "</head><body><h1>soar report</h1>"]
    if runs:
        parts.append("<p class='small'>runs: " + ", ".join(escape(str(r)) for r, _ in runs) + "</p>")
    if len(rows) > 1:
        parts.append("<h2>Results</h2>" + _results(rows))
    for image in images:
        data = base64.b64encode(image.read_bytes()).decode()
        parts.append(f"<h3>{escape(image.stem.replace('_', ' '))}</h3>"
                     f"<img alt='{escape(image.stem)}' src='data:image/png;base64,{data}'>")
    for run, records in runs:
        parts.append(_run_section(run, records))
    parts.append("</body></html>\n")
    from soar.io import write_atomic

    write_atomic(path, "".join(parts))
    return path


def _results(rows: list[list[str]]) -> str:
    header, body = rows[0], rows[1:]
    col = {name: i for i, name in enumerate(header)}
    out = []
    for report in dict.fromkeys(r[col["report"]] for r in body):
        cells: dict[str, dict[int, list[str]]] = {}
        for r in body:
            if r[col["report"]] == report:
                cells.setdefault(r[col["method"]], {})[int(r[col["k"]])] = r
        ks = sorted({k for c in cells.values() for k in c})
        out.append(f"<h3>Test pass@k, {escape(report.replace('_', ' '))} (%, mean ± SD over student seeds; Δ over "
                   "Hard-Only)</h3><table><tr><th>method</th><th>seeds</th>"
                   + "".join(f"<th>pass@{k}</th>" for k in ks) + "</tr>")
        for method, by_k in cells.items():
            first = next(iter(by_k.values()))
            tds = []
            for k in ks:
                r = by_k.get(k)
                if r is None:
                    tds.append("<td class='num'>-</td>")
                    continue
                delta = r[col["delta_over_hard_only"]]
                extra = f" <span class='small'>({100 * float(delta):+.1f})</span>" if delta and method != "Hard-Only" \
                    else ""
                tds.append(f"<td class='num'>{100 * float(r[col['mean']]):.1f} ± {100 * float(r[col['sd']]):.1f}"
                           f"{extra}</td>")
            out.append(f"<tr><td>{escape(method)}</td><td class='num'>{escape(first[col['seeds']])}</td>"
                       + "".join(tds) + "</tr>")
        out.append("</table>")
    return "".join(out)


def _run_section(run: Path, records: list[StepRecord]) -> str:
    from soar.loops.run_dir import RunDir

    def kinds_text(record: StepRecord) -> str:
        return " ".join(f"{k} {v}" for k, v in record.kind_counts().items())

    rundir = RunDir(run)
    out = [f"<h2>Run {escape(run.name)}</h2><table><tr><th>step</th><th>mean R</th><th>moving avg</th>"
           "<th>promoted</th><th>baseline acc</th><th>acceptance</th><th>diversity (VS)</th><th>kinds</th></tr>"]
    for r in records:
        promoted = f"stage {r.stage}" if r.promoted else ""
        diversity = f"{r.question_diversity:.2f}" if r.question_diversity is not None else "-"
        out.append(f"<tr><td class='num'>{r.step}</td><td class='num'>{r.mean_reward:+.3f}</td>"
                   f"<td class='num'>{r.moving_average:+.3f}</td><td>{promoted}</td>"
                   f"<td class='num'>{r.baseline_accuracy:.3f}</td><td class='num'>{r.acceptance_rate:.2f}</td>"
                   f"<td class='num'>{diversity}</td><td>{escape(kinds_text(r))}</td></tr>")
    out.append("</table><h3>Questions by step</h3>")
    for r in records:
        questions = rundir.read(f"questions/step_{r.step:04d}.jsonl")
        rewards = ", ".join(f"{x:+.3f}" for x in r.rewards)
        out.append(f"<details><summary>step {r.step}: {len(questions)} questions, dataset rewards [{rewards}]"
                   f"{' (promotion)' if r.promoted else ''}</summary>" + _questions(questions) + "</details>")
    pq = rundir.read("promotion_questions.jsonl")
    out.append(f"<h3>Promotion questions ({len(pq)})</h3>" + (_questions(pq) if pq else "<p>none yet</p>"))
    return "".join(out)


def _questions(records: list[dict[str, Any]]) -> str:
    rows = ["<table><tr><th>dataset</th><th>reward</th><th>question</th><th>answer</th></tr>"]
    for q in records:
        reward = q.get("reward")
        rows.append(f"<tr><td class='num'>{escape(str(q.get('dataset', q.get('stage', ''))))}</td>"
                    f"<td class='num'>{'' if reward is None else f'{float(reward):+.3f}'}</td>"
                    f"<td class='q'>{escape(str(q.get('question', '')))}</td>"
                    f"<td class='q'>{escape(str(q.get('answer', '')))}</td></tr>")
    rows.append("</table>")
    return "".join(rows)
