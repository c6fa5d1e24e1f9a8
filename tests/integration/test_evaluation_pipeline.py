"""filter -> train -> sample -> evaluate -> report on CPU with a tiny model taught the formats.

Real sampling, training, Math-Verify, files and matplotlib; the CLI is driven
in-process through typer's runner (the same entry point as ``soar``).
"""

import json

import pytest
from typer.testing import CliRunner

from soar.cli import app
from soar.config import load_config
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
    return [x for key, value in overrides.items() for x in (f"--{key}", value)]


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
    result = runner.invoke(app, ["report", str(run), *map(str, folders), str(root / "eval" / "ps"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    table = (out / "table.md").read_text()
    assert "| PS | 2 |" in table and "| pq (curriculum) | 1 |" in table and "pass@4" in table
    csv_rows = (out / "table.csv").read_text().splitlines()
    assert len(csv_rows) == 1 + 2 * 9  # header + (8 evaluations + PS) x (early-stopped, fixed step)
    import matplotlib.image as mpimg

    for name in ("teacher_rewards.png", "student_pass_at_k.png", "acceptance.png"):
        pixels = mpimg.imread(out / name)
        assert pixels.shape[0] >= 300 and pixels.shape[1] >= 600, (name, pixels.shape)
        assert pixels[..., :3].std() > 0.05, f"{name} looks blank"  # not a flat image


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
