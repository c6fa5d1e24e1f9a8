"""filter -> train -> sample -> evaluate -> report on CPU with a tiny model taught the formats.

Real sampling, training, Math-Verify, files and matplotlib; the CLI is driven
in-process through typer's runner (the same entry point as ``soar``).
"""

import dataclasses
import json
import shutil
import subprocess
from html import escape as html_escape

import pytest
from typer.testing import CliRunner

from soar.cli import app
from soar.config import load_config
from soar.errors import SoarError
from soar.loops.filter import run_filter
from soar.loops.train import train
from tests.helpers.formatted import formatted_tiny_model_dir

FAST = {"compute.generation_batch_size": "16", "reward.verify_workers": "1", "student.batch_size": "2",
        "student.group_size": "2", "student.max_new_tokens": "12", "teacher.max_new_tokens": "24",
        "teacher.group_size": "2", "teacher.micro_batch_size": "4", "teacher.warmup_steps": "0",
        "inner.dataset_size": "2", "inner.repeats": "2", "inner.steps": "2", "inner.reward_questions": "4",
        "evaluation.max_steps": "4", "evaluation.eval_every": "2", "evaluation.samples_per_problem": "4",
        "evaluation.ks": "[1, 2, 4]", "evaluation.synthetic_warmup_steps": "2", "evaluation.smoothing_window": "3",
        "evaluation.average_window": "2", "evaluation.fixed_step": "2", "evaluation.seeds": "[0]"}


def _args(overrides):
    """The command line of the ``tiny`` preset with ``overrides`` (the default preset is the designed world)."""
    return ["--preset", "tiny"] + [x for key, value in overrides.items() for x in (f"--{key}", value)]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A fail@k hard set made by the filter, and a 2-step run with a promotion each step."""
    root = tmp_path_factory.mktemp("pipeline")
    model = formatted_tiny_model_dir(root / "model")
    pool = root / "pool.jsonl"
    rows = [{"id": f"p{i}", "question": f"What is {a} + {b}?", "answer": str(a + b + 50)}  # never solved
            for i, (a, b) in enumerate([(1, 2), (3, 4), (2, 2), (5, 3), (1, 1), (4, 4), (6, 1), (2, 7)])]
    pool.write_text("".join(json.dumps(r) + "\n" for r in rows))
    common = dict(FAST, **{"model.name": str(model), "data.splits_dir": str(root / "splits")})
    filtered = run_filter(load_config("tiny", overrides=dict(common, **{"data.source": str(pool), "data.fail_at_k": "2",
                                                                        "data.filter_max_new_tokens": "8"})),
                          root / "filter")
    common["data.source"] = str(filtered.out_dir / "hard.jsonl")
    common["data.fail_at_k"] = "2"  # train and evaluate check the filter's provenance against it
    run = train(load_config("tiny", overrides=dict(common, **{"outer_steps": "2", "promotion.tau": "-1"})),
                out=root / "run").run_dir
    return {"root": root, "common": common, "run": run, "filter": filtered}


def test_the_pipeline_end_to_end(world):
    root, common, run, runner = world["root"], world["common"], world["run"], CliRunner()
    assert world["filter"].kept == 8
    # sample: Base-T and the run's teacher (Grounded-T)
    base = runner.invoke(app, ["sample", "--out", str(root / "base_t.jsonl"), "--count", "4"] + _args(common))
    assert base.exit_code == 0, base.output
    grounded = runner.invoke(app, ["sample", "--teacher", str(run), "--out", str(root / "grounded_t.jsonl"),
                                   "--count", "4"])
    assert grounded.exit_code == 0, grounded.output
    for name, label in (("base_t", "Base-T"), ("grounded_t", "Grounded-T (step_0001)")):
        records = [json.loads(x) for x in (root / f"{name}.jsonl").read_text().splitlines()]
        assert len(records) == 4 and all(r["question"] and r["answer"] and r["teacher"] == label for r in records)

    # evaluate: every question source under both mixing strategies, plus the promoted student
    sources = {"hard-only": None, "pq": run / "promotion_questions.jsonl", "base-t": root / "base_t.jsonl",
               "oracle": world["filter"].out_dir / "train.jsonl"}
    folders = []
    for mixing in ("curriculum", "mixed"):
        for name, source in sources.items():
            folder = root / "eval" / f"{name}-{mixing}"
            args = ["evaluate", "--out", str(folder), "--name", f"{name} ({mixing})"]
            args += ["--questions", str(source)] if source else []
            result = runner.invoke(app, args + _args(dict(common, **{"evaluation.mixing": mixing})))
            assert result.exit_code == 0, result.output
            folders.append(folder)
            summary = json.loads((folder / "summary.json").read_text())
            assert summary["seeds"] == [0] and summary["mixing"] == mixing
            values = [summary["early_stopped"][k]["mean"] for k in ("1", "2", "4")]
            assert all(0.0 <= v <= 1.0 for v in values) and values == sorted(values)  # pass@k grows with k
            train_log = [json.loads(x) for x in (folder / "seed_0" / "train.jsonl").read_text().splitlines()]
            phases = [r["phase"] for r in train_log]
            expected = (["mixed"] * 4 if mixing == "mixed" else
                        ["hard"] * 4 if source is None else ["synthetic"] * 2 + ["hard"] * 2)
            assert phases == expected
            evals = [json.loads(x)["step"] for x in (folder / "seed_0" / "evals.jsonl").read_text().splitlines()]
            assert evals == [0, 2, 4]
    ps = runner.invoke(app, ["evaluate", "--promoted-student", str(run), "--out", str(root / "eval" / "ps")]
                       + _args(dict(common, **{"evaluation.seeds": "[0, 1]"})))
    assert ps.exit_code == 0, ps.output
    ps_summary = json.loads((root / "eval" / "ps" / "summary.json").read_text())
    assert ps_summary["method"] == "PS" and ps_summary["early_stopped"]["1"]["n"] == 2

    # report: tables and three readable plots
    out = root / "report"
    result = runner.invoke(app, ["report", str(run), *map(str, folders), str(root / "eval" / "ps"), "--out", str(out),
                                 "--html"])
    assert result.exit_code == 0, result.output
    table = (out / "table.md").read_text()
    assert "| PS | 1×2 |" in table and "| pq (curriculum) | 1×1 |" in table and "pass@4" in table
    assert "delta over Hard-Only" not in table  # the methods here are named "hard-only (mixing)", not Hard-Only
    csv_rows = (out / "table.csv").read_text().splitlines()
    assert len(csv_rows) == 1 + 2 * 9 * 3  # header + (early-stopped, fixed step) x (8 evaluations + PS) x 3 ks
    import matplotlib.image as mpimg

    for name in ("teacher_rewards.png", "student_pass_at_k.png", "acceptance.png"):
        pixels = mpimg.imread(out / name)
        assert pixels.shape[0] >= 300 and pixels.shape[1] >= 600, (name, pixels.shape)
        assert pixels[..., :3].std() > 0.05, f"{name} looks blank"  # not a flat image
    _check_html_report(out / "report.html", run)  # last: it skips its rendering part where there is no chromium


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _check_html_report(page, run):
    """report.html renders in headless Chromium with no network: not blank, and its DOM holds the results table,
    a question of the run (escaped text, not markup) and the promotion questions."""
    import matplotlib.image as mpimg

    html = page.read_text()
    assert "http://" not in html and "https://" not in html and "<script" not in html  # self-contained, no script
    question = json.loads((run / "questions" / "step_0000.jsonl").read_text().splitlines()[0])["question"]
    if not CHROMIUM:
        pytest.skip("no chromium here (.ci/run installs Debian's): the page was written but not rendered")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={page.parent / 'chromium-profile'}"]
    shot = page.parent / "report.png"
    subprocess.run([CHROMIUM, *flags, "--window-size=1200,1600", f"--screenshot={shot}", page.as_uri()],
                   capture_output=True, timeout=120, check=True)
    pixels = mpimg.imread(shot)
    assert pixels.shape[:2] == (1600, 1200) and pixels[..., :3].std() > 0.05, "the rendered page looks blank"
    dom = subprocess.run([CHROMIUM, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    assert "Test pass@k, early stopped" in dom and "<td>PS</td>" in dom and "pass@4" in dom
    assert html_escape(question) in dom and "Promotion questions (" in dom and "data:image/png;base64," in dom


def test_evaluate_keeps_finished_seeds(world):
    root, common = world["root"], world["common"]
    folder = root / "eval-resume"
    first = CliRunner().invoke(app, ["evaluate", "--out", str(folder)] + _args(common))
    assert first.exit_code == 0, first.output
    before = (folder / "seed_0" / "summary.json").read_text()
    more = dict(common, **{"evaluation.seeds": "[0, 1]"})
    second = CliRunner().invoke(app, ["evaluate", "--out", str(folder)] + _args(more))
    assert second.exit_code == 0, second.output
    assert (folder / "seed_0" / "summary.json").read_text() == before  # kept, not re-run
    assert json.loads((folder / "summary.json").read_text())["seeds"] == [0, 1]
    changed = CliRunner().invoke(app, ["evaluate", "--out", str(folder)] + _args(dict(more, **{"student.lr": "1e-3"})))
    assert changed.exit_code != 0 and "other settings (student.lr)" in str(changed.exception)
    other = CliRunner().invoke(app, ["evaluate", "--out", str(folder), "--questions",
                                     str(world["filter"].out_dir / "train.jsonl")]
                               + _args(more))
    assert other.exit_code != 0 and "another source" in str(other.exception)


def test_report_names_a_folder_it_cannot_read(tmp_path):
    result = CliRunner().invoke(app, ["report", str(tmp_path), "--out", str(tmp_path / "r")])
    assert result.exit_code != 0 and str(tmp_path) in str(result.exception)


def test_the_promoted_student_is_the_runs_student(world):
    """PS samples the run's promoted weights (tiny's batched LoRA students: the base with every promoted adapter
    merged, kept as full weights), and a student of another kind is refused up front."""
    import torch

    from soar.engines.models import load_model
    from soar.engines.trainer import load_trained
    from soar.loops.run_dir import RunDir, load_part

    root, common, run = world["root"], world["common"], world["run"]
    cfg = load_config("tiny", overrides=common)
    folder, info = RunDir(run).best_promoted()
    assert info["weights"] == "full" and len(load_part(RunDir(run).require_checkpoint(), "students")["merges"]) == 2
    weights = load_part(folder, "student")
    base = dict(load_model(cfg.model)[0].named_parameters())
    as_full = dataclasses.replace(cfg.student, finetune="full")
    promoted = dict(load_trained(load_model(cfg.model)[0], as_full, weights).named_parameters())
    assert promoted.keys() == weights.keys() and all(torch.equal(promoted[n], w) for n, w in weights.items())
    assert any(not torch.equal(base[n], w) for n, w in weights.items())  # the promotions moved the baseline
    with pytest.raises(SoarError, match="do not fit this model"):  # full weights into a LoRA student
        load_trained(load_model(cfg.model)[0], cfg.student, weights)
    folder = root / "eval" / "ps-full"
    full = CliRunner().invoke(app, ["evaluate", "--promoted-student", str(run), "--out", str(folder)]
                              + _args(dict(common, **{"student.finetune": "full", "compute.student_batch": "1"})))
    assert full.exit_code != 0 and "student.finetune differ" in str(full.exception)
    assert not folder.exists()  # refused before anything was written


def test_an_evaluation_folder_is_reused_for_the_same_questions_only(world, tmp_path):
    root, common = world["root"], world["common"]
    rows = [{"id": "s0", "question": "What is 2 + 2?", "answer": "4"}, {"id": "s1", "question": "What is 3 + 3?", "answer": "6"}]
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    first.write_text("".join(json.dumps(r) + "\n" for r in rows))
    second.write_text("".join(json.dumps(dict(r, answer=r["answer"] + "0")) + "\n" for r in rows))  # same count
    folder = root / "eval-questions"
    done = CliRunner().invoke(app, ["evaluate", "--out", str(folder), "--questions", str(first), "--name", "S"]
                              + _args(common))
    assert done.exit_code == 0, done.output
    again = CliRunner().invoke(app, ["evaluate", "--out", str(folder), "--questions", str(first), "--name", "S"]
                               + _args(dict(common, **{"reward.verify_workers": "2"})))  # how it runs, not what it measures
    assert again.exit_code == 0, again.output
    other = CliRunner().invoke(app, ["evaluate", "--out", str(folder), "--questions", str(second), "--name", "S"]
                               + _args(common))
    assert other.exit_code != 0 and "another source" in str(other.exception)


def test_report_pools_same_named_methods_as_teacher_seeds_and_takes_other_ks(tmp_path):
    """Two runs' PQ folders (both named PQ: two teacher seeds, B.8) evaluated at different k: one row over both
    folders' student seeds, and every curve drawn."""
    folders = []
    for name, ks in (("run-a", [1, 2, 4]), ("run-b", [1, 8])):
        folder = tmp_path / name
        (folder / "seed_0").mkdir(parents=True)
        (folder / "source.json").write_text(json.dumps({"method": "PQ", "kind": "train"}))
        passk = {str(k): min(1.0, 0.05 * k) for k in ks}
        stats = {k: {"mean": v, "sd": 0.0, "n": 1} for k, v in passk.items()}
        (folder / "summary.json").write_text(json.dumps({"method": "PQ", "seeds": [0], "early_stopped": stats,
                                                         "fixed_step": stats}))
        (folder / "seed_0" / "summary.json").write_text(json.dumps({"seed": 0, "early_stopped": passk,
                                                                    "fixed_step": passk}))
        (folder / "seed_0" / "evals.jsonl").write_text("".join(
            json.dumps({"step": s, "pass_at_k": {k: v * (1 + s / 10) for k, v in passk.items()}}) + "\n"
            for s in (0, 2, 4)) + '{"step": 6, "pass')  # a line torn by a kill is skipped
        folders.append(folder)
    out = tmp_path / "report"
    result = CliRunner().invoke(app, ["report", *map(str, folders), "--out", str(out)])
    assert result.exit_code == 0, result.output
    table = (out / "table.md").read_text()
    assert "| PQ | 2×1 | 5.0 ± 0.0 | 10.0 ± 0.0 | 20.0 ± 0.0 | 40.0 ± 0.0 |" in table
    import matplotlib.image as mpimg

    pixels = mpimg.imread(out / "student_pass_at_k.png")
    assert pixels.shape[1] >= 4 * 300 and pixels[..., :3].std() > 0.05  # one panel per k in {1, 2, 4, 8}
