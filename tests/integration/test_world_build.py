"""The designed world's builder and plumbing, on a world trained for a few seconds (not the default build).

A short build (a few dozen steps) is enough to check what does not depend on how well the model learned: the
build is deterministic and cached, the folder loads as a plain Hugging Face model with the world's prompts,
the tokenizer round-trips soar's formats token for token, ``soar filter`` over the ``world`` source records the
world's prompt and the build's identity, and ``prepare_hard_set`` makes the ``world-hard`` source and keeps it.
"""

import json
from dataclasses import replace

import pytest
import torch

from soar.config import load_config
from soar.data.provenance import prompt_sha, require_provenance
from soar.errors import ConfigError
from soar.world.build import make_tokenizer, world_model
from soar.world.family import WorldSpec, model_identity, student_prompt, teacher_completion

SHORT = WorldSpec(steps=300, batch=16, student_mix={"t1": 1.0, "t2": 1.0, "t3": 0.2})
"""About 20 s on 2 cores: it writes the formats (acceptance ~95%), its answers mostly wrong."""


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    cache = tmp_path_factory.mktemp("world-cache")
    return cache, world_model(SHORT, cache)


def test_build_is_cached_deterministic_and_recorded(built, tmp_path):
    cache, folder = built
    report = json.loads((folder / "world.json").read_text())
    assert report["key"] == SHORT.key() and report["spec"]["steps"] == 300 and report["threads"] == 1
    assert world_model(SHORT, cache) == folder  # cached: no second build
    from safetensors.torch import load_file

    brief = replace(SHORT, steps=30)  # determinism does not need a long build: the same spec twice
    first, again = world_model(brief, tmp_path / "a"), world_model(brief, tmp_path / "b")
    a, b = load_file(first / "model.safetensors"), load_file(again / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not list(cache.glob("*.tmp*"))


def test_tokenizer_round_trips_the_formats_with_one_token_per_tag():
    tok = make_tokenizer()
    for text in (student_prompt("47+85") + "\\boxed{132}", teacher_completion("47+85", "132")):
        ids = tok(text, add_special_tokens=False)["input_ids"]
        assert tok.decode(ids) == text
    assert len(tok("<question></question><answer></answer>\\boxed{", add_special_tokens=False)["input_ids"]) == 5
    assert tok.decode([tok.eos_token_id], skip_special_tokens=True) == ""


def test_the_folder_loads_as_a_model_with_the_worlds_prompts(built):
    from soar.data.prompts import student_prompt as prompt_for
    from soar.engines.models import load_model

    _, folder = built
    cfg = load_config("world", overrides={"model.name": str(folder)})
    model, tokenizer = load_model(cfg.model)
    assert type(model).__name__ == "LlamaForCausalLM" and tokenizer.soar_prompts == "world"
    assert prompt_for("3+4", tokenizer) == "Solve: 3+4\nAnswer: "


def test_filter_and_prepare_hard_set_make_and_keep_world_hard(built, tmp_path, monkeypatch):
    from rich.console import Console

    import soar.data.problems as problems
    from soar.loops.world import prepare_hard_set

    _, folder = built
    monkeypatch.setattr(problems, "world_hard_dir", lambda: tmp_path / "world-hard")
    cfg = load_config("world", overrides=_small(folder, tmp_path))
    with pytest.raises(ConfigError, match="not a fail@2 hard set"):
        require_provenance(cfg.data, cfg.model)
    prepare_hard_set(cfg, Console(quiet=True))
    stats = json.loads((tmp_path / "world-hard" / "stats.json").read_text())
    assert stats["prompt_sha"] == prompt_sha("world") and stats["settings"]["model"] == model_identity(str(folder))
    assert require_provenance(cfg.data, cfg.model) is not None
    made = (tmp_path / "world-hard" / "stats.json").stat().st_mtime_ns
    prepare_hard_set(cfg, Console(quiet=True))  # kept: nothing made again
    assert (tmp_path / "world-hard" / "stats.json").stat().st_mtime_ns == made
    other = replace(cfg, model=replace(cfg.model, name=str(tmp_path / "elsewhere")))
    with pytest.raises(ConfigError, match="was filtered for model"):
        require_provenance(other.data, other.model)


def _small(folder, tmp_path):
    """A world config cut to seconds: 24 t3 problems at fail@2, one inner step of 2 x 2 samples."""
    return {"model.name": str(folder), "data.world_tiers": "[t3]", "data.world_per_tier": "24", "data.fail_at_k": "2",
            "data.splits_dir": str(tmp_path / "splits"), "reward.verify_workers": "1", "teacher.group_size": "2",
            "inner.dataset_size": "4", "inner.repeats": "1", "inner.steps": "1", "inner.max_steps": "1",
            "inner.reward_questions": "4", "student.batch_size": "2", "student.group_size": "2",
            "outer_steps": "2", "checkpoint.teacher_every": "0"}


def test_a_world_run_records_what_its_datasets_hold_and_a_frozen_teacher_stays_put(built, tmp_path, monkeypatch):
    from rich.console import Console

    import soar.data.problems as problems
    from soar.loops.run_dir import RunDir
    from soar.loops.train import train
    from soar.loops.world import prepare_hard_set
    from soar.types import StepRecord
    from soar.world.family import TIERS, kind_of, solve

    _, folder = built
    monkeypatch.setattr(problems, "world_hard_dir", lambda: tmp_path / "world-hard")
    cfg = load_config("world", overrides={**_small(folder, tmp_path), "teacher.lr": "0"})
    prepare_hard_set(cfg, Console(quiet=True))
    console = Console(record=True, width=200)
    train(cfg, out=tmp_path / "run", console=console)
    records = [StepRecord.from_dict(r) for r in RunDir(tmp_path / "run").read("metrics.jsonl")]
    questions = RunDir(tmp_path / "run").read("questions/step_0000.jsonl")
    assert len(records) == 2 and len(records[0].question_kinds) == 2 == len(records[0].answers_right)
    for k, kinds in enumerate(records[0].question_kinds):
        mine = [q for q in questions if q["dataset"] == k]
        assert kinds == {kind: sum(kind_of(q["question"]) == kind for q in mine) for kind in kinds}
        assert set(kinds) <= {*TIERS, "other"} and sum(kinds.values()) == 4
        assert records[0].answers_right[k] == sum(str(solve(q["question"])) == q["answer"] for q in mine)
    assert "kinds " in console.export_text()
    from safetensors.torch import load_file

    run = RunDir(tmp_path / "run")
    weights = run.load_checkpoint(run.latest_checkpoint())[0]["teacher"]["weights"]
    base = load_file(folder / "model.safetensors")
    shared = [k for k in base if k in weights]
    assert shared
    assert all(torch.equal(weights[k].cpu(), base[k]) for k in shared)  # teacher.lr 0: the control run's teacher
