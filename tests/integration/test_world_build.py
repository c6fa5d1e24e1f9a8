"""The designed world's builder and plumbing: the shipped model, and a world trained for a few seconds.

The shipped world loads without a build and is the model ``soar world`` measures.  A short build (a few dozen
steps) is enough to check what does not depend on how well the model learned: the build is deterministic and
cached, the folder loads as a plain Hugging Face model with the world's prompts, the tokenizer round-trips
soar's formats token for token, and ``soar filter`` over the ``world`` source records the world's prompt and
the build's identity, so a hard set made for one build is refused for another.
"""

import json
from dataclasses import replace

import pytest
import torch

from soar.config import load_config
from soar.data.provenance import prompt_sha, require_provenance
from soar.errors import ConfigError
from soar.world.build import SHIPPED, make_tokenizer, world_model
from soar.world.family import WorldSpec, model_identity, student_prompt, teacher_completion

SHORT = WorldSpec(steps=60, batch=16, warm_steps=20)
"""A few seconds on one thread: it has not learned to add, and need not have."""


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    cache = tmp_path_factory.mktemp("world-cache")
    return cache, world_model(SHORT, cache)


def test_the_shipped_world_needs_no_build(tmp_path):
    assert world_model(WorldSpec(), tmp_path) == SHIPPED and not list(tmp_path.iterdir())
    report = json.loads((SHIPPED / "world.json").read_text())
    assert report["key"] == WorldSpec().key() and report["parameters"] == 653184


def test_build_is_cached_deterministic_and_recorded(built, tmp_path):
    cache, folder = built
    report = json.loads((folder / "world.json").read_text())
    assert report["key"] == SHORT.key() and report["spec"]["steps"] == 60 and report["threads"] == 1
    assert world_model(SHORT, cache) == folder  # cached: no second build
    from safetensors.torch import load_file

    brief = replace(SHORT, steps=25, warm_steps=0)  # determinism does not need a long build: the same spec twice
    first, again = world_model(brief, tmp_path / "a"), world_model(brief, tmp_path / "b")
    a, b = load_file(first / "model.safetensors"), load_file(again / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    other = load_file(world_model(replace(brief, seed=1), tmp_path / "c") / "model.safetensors")
    assert not all(torch.equal(a[k], other[k]) for k in a)  # the check could fail: another seed differs
    assert not list(cache.glob("*.tmp*"))


def test_tokenizer_round_trips_the_formats_with_one_token_per_tag():
    tok = make_tokenizer()
    for text in (student_prompt("34000000+21000000") + "\\boxed{550000000}",
                 teacher_completion("34000000+21000000", "550000000")):
        ids = tok(text, add_special_tokens=False)["input_ids"]
        assert tok.decode(ids) == text
    assert len(tok("<question></question><answer></answer>\\boxed{", add_special_tokens=False)["input_ids"]) == 5
    assert tok.decode([tok.eos_token_id], skip_special_tokens=True) == ""


def test_the_shipped_model_loads_with_the_worlds_prompts_and_has_the_gap():
    """Teacher format right, student format wrong on a 3-carry problem; the exact success compounds."""
    from soar.data.prompts import student_prompt as prompt_for
    from soar.engines.models import load_model
    from soar.loops.world import exact_success
    from soar.world.family import generate_problems

    cfg = load_config("world")
    model, tokenizer = load_model(cfg.model)
    assert type(model).__name__ == "LlamaForCausalLM" and tokenizer.soar_prompts == "world"
    assert prompt_for("3+4", tokenizer) == "Solve: 3+4\nAnswer: "
    by_kind = {kind: generate_problems([kind], 20, seed=5) for kind in ("add-c0", "add-c1", "add-c3", "add-c8")}
    exact = {kind: sum(exact_success(model, tokenizer, [p.question for p in ps], [p.answer for p in ps])) / 20
             for kind, ps in by_kind.items()}
    assert exact["add-c0"] > 0.9 > 0.5 > exact["add-c1"] > exact["add-c3"] > 1e-3 > 1e-5 > exact["add-c8"]


def test_filter_records_the_build_so_another_build_is_refused(built, tmp_path):
    from soar.loops.filter import run_filter

    _, folder = built
    cfg = load_config("world", overrides=_small(folder, tmp_path))
    run_filter(replace(cfg, data=replace(cfg.data, source="world")), tmp_path / "hard")
    stats = json.loads((tmp_path / "hard" / "stats.json").read_text())
    assert stats["prompt_sha"] == prompt_sha("world") and stats["settings"]["model"] == model_identity(str(folder))
    hard = replace(cfg.data, source=str(tmp_path / "hard" / "hard.jsonl"))
    assert require_provenance(hard, cfg.model) is not None
    with pytest.raises(ConfigError, match="was filtered for model"):
        require_provenance(hard, replace(cfg.model, name=str(tmp_path / "elsewhere")))
    with pytest.raises(ConfigError, match="was filtered for model"):  # the shipped world is another build
        require_provenance(replace(cfg.data, source="world-hard"), replace(cfg.model, name=str(folder)))


def _small(folder, tmp_path):
    """A world config cut to seconds: 24 add-c3 problems at fail@2, one inner step of 2 x 2 samples."""
    return {"model.name": str(folder), "data.world_kinds": "[add-c3]", "data.world_per_kind": "24",
            "data.fail_at_k": "2", "data.splits_dir": str(tmp_path / "splits"), "reward.verify_workers": "1",
            "teacher.group_size": "2", "inner.dataset_size": "4", "inner.repeats": "1", "inner.steps": "1",
            "inner.max_steps": "1", "inner.reward_questions": "4", "student.batch_size": "2",
            "student.group_size": "2", "outer_steps": "2", "checkpoint.teacher_every": "0"}


def test_a_world_run_records_what_its_datasets_hold_and_a_frozen_teacher_stays_put(tmp_path):
    """The shipped world, two outer steps cut to seconds, the teacher frozen (``teacher.lr 0``)."""
    from rich.console import Console

    from soar.loops.run_dir import RunDir
    from soar.loops.train import train
    from soar.types import StepRecord
    from soar.world.family import KINDS, kind_of, solve

    overrides = {**_small(SHIPPED, tmp_path), "model.name": "world", "data.fail_at_k": "128", "teacher.lr": "0"}
    for key in ("data.world_kinds", "data.world_per_kind"):
        overrides.pop(key)
    cfg = load_config("world", overrides=overrides)
    console = Console(record=True, width=250)
    train(cfg, out=tmp_path / "run", console=console)
    records = [StepRecord.from_dict(r) for r in RunDir(tmp_path / "run").read("metrics.jsonl")]
    questions = RunDir(tmp_path / "run").read("questions/step_0000.jsonl")
    assert len(records) == 2 and len(records[0].question_kinds) == 2 == len(records[0].answers_right)
    for k, kinds in enumerate(records[0].question_kinds):
        mine = [q for q in questions if q["dataset"] == k]
        assert kinds == {kind: sum(kind_of(q["question"]) == kind for q in mine) for kind in kinds}
        assert set(kinds) <= {*KINDS, "other"} and sum(kinds.values()) == 4
        assert records[0].answers_right[k] == sum(solve(q["question"]) == q["answer"] for q in mine)
    assert "kinds add-c" in console.export_text()
    from safetensors.torch import load_file

    run = RunDir(tmp_path / "run")
    weights = run.load_checkpoint(run.latest_checkpoint())[0]["teacher"]["weights"]
    base = load_file(SHIPPED / "model.safetensors")
    shared = [k for k in base if k in weights]
    assert shared
    assert all(torch.equal(weights[k].cpu(), base[k]) for k in shared)  # teacher.lr 0: the control run's teacher


def test_soar_world_remakes_the_shipped_pool_and_refuses_bad_flags_in_one_line(tmp_path):
    """The shipped hard set's first step, reproduced by the command a user runs: the same 399 problems, byte for
    byte.  The problems nearest the bound 1e-5 sit at 6.5e-6 (kept) and 1.03e-5 (dropped), 35% and 3% from it: far
    more than the rounding of another CPU kind moves a probability."""
    import subprocess
    import sys

    pool = tmp_path / "pool.jsonl"
    result = subprocess.run([sys.executable, "-m", "soar", "world", "--hard-pool", str(pool)], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "399 of 400 problems (add-c8)" in result.stdout
    assert pool.read_bytes() == (SHIPPED.parent / "hard" / "pool.jsonl").read_bytes()
    for flags, message in ((["--hard-pool", str(tmp_path / "x.jsonl"), "--hard-max", "0"], "--hard-max must be positive"),
                           (["--per-kind", "0"], "--per-kind must be at least 1"),
                           (["--build", str(tmp_path), "--hard-pool", str(pool)], "not both")):
        result = subprocess.run([sys.executable, "-m", "soar", "world", *flags], capture_output=True, text=True,
                                timeout=120)
        assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x.jsonl").exists()
