"""Paper presets that reproduce the paper: values checked at load, seeds, teacher groups, promotion candidates,
hard-set provenance, fixed prompt dates, kept checkpoints, nested seed reports and ``soar plan``."""

import itertools
import json
import random
from pathlib import Path

import pytest

from soar.algo.promotion import PromotionCandidates, PromotionState, decide_promotion, promotion_choice
from soar.algo.seeds import derive_seed
from soar.config import ModelConfig, field_docs, load_config, to_yaml_with_docs
from soar.data.files import write_jsonl
from soar.data.provenance import problems_key, prompt_sha, require_provenance
from soar.errors import ConfigError
from soar.types import Problem


# -- 10. values checked at load ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("key, value, rule", [
    ("teacher.group_size", 1, "teacher.group_size must be at least 2"),
    ("student.group_size", 1, "student.group_size must be at least 2"),
    ("inner.repeats", 0, "inner.repeats must be at least 1"),
    ("inner.dataset_size", 0, "inner.dataset_size must be at least 1"),
    ("outer_steps", 0, "outer_steps must be at least 1"),
    ("outer_steps", -1, "outer_steps must be at least 1"),
    ("teacher.lr", -1e-5, "teacher.lr must be at least 0"),
    ("student.lr", 0, "student.lr must be positive"),
    ("student.lr", -1e-5, "student.lr must be positive"),
    ("promotion.window", 0, "promotion.window must be at least 1"),
    ("evaluation.ks", "[1, 64]", "evaluation.ks must be between 1 and evaluation.samples_per_problem"),
    ("inner.max_steps", 3, "inner.max_steps must be at least inner.steps"),
    ("data.test_fraction", 1.0, "data.test_fraction must be in"),
    ("evaluation.fixed_step", 5000, "evaluation.fixed_step must be between 0 and evaluation.max_steps"),
    ("evaluation.seeds", "[1, 1]", "evaluation.seeds must be a non-empty list of distinct seeds"),
    ("model.prompt_date", "yesterday", "model.prompt_date must be a date"),
    ("student.top_p", 0, "student.top_p must be in"),
])
def test_a_broken_rule_names_the_key_and_the_rule(key, value, rule):
    with pytest.raises(ConfigError, match=rule.replace("(", r"\(")):
        load_config("paper-math", overrides={key: str(value)})


def test_every_preset_is_valid_and_every_field_documented():
    docs = field_docs()
    assert len(docs) > 80 and not [key for key, doc in docs.items() if not doc]
    assert "teacher.batch_size" in docs and "RLOO groups" in docs["teacher.batch_size"]
    text = to_yaml_with_docs(load_config("paper-math"))
    assert "# B: RLOO groups per outer step" in text and "batch_size: 2" in text




def test_config_show_doc_prints_every_key_with_its_doc():
    from typer.testing import CliRunner

    from soar.cli import app

    result = CliRunner().invoke(app, ["config", "show", "paper-math", "--doc"])
    assert result.exit_code == 0 and "# The date (YYYY-MM-DD) every chat template is rendered with" in result.output


# -- 1. precision of the paper presets ----------------------------------------------------------------------------
@pytest.mark.parametrize("preset", ["paper-math", "paper-harp", "paper-olympiad"])
def test_paper_presets_train_fp32_masters_under_bf16_compute(preset):
    c = load_config(preset)
    assert c.model.dtype == "float32" and c.model.compute_dtype == "bfloat16"
    # the laptop testbed's teacher levers stay off: B.1's prompt verbatim, B.2's parse rule
    assert c.teacher.prompt_examples == [] and c.teacher.answer_format == "any" and c.student.kl_coef == 0.001
    assert not c.reward.numeric_answers  # B.3 as written: Math-Verify's equivalence


# -- 3. teacher batch = RLOO groups --------------------------------------------------------------------------------
def test_paper_presets_run_32_students_per_step():
    c = load_config("paper-math")
    assert c.teacher.batch_size * c.teacher.group_size * c.inner.repeats == 32


class _RecordingTrainer:
    def step(self, rollouts):
        self.rollouts = rollouts
        return {"loss": 0.0, "kl": 0.0}


def test_teacher_advantages_are_leave_one_out_within_each_group():
    from soar.loops.teacher import TeacherRollout, teacher_update
    from soar.types import QAPair

    datasets = [[TeacherRollout(QAPair(f"q{k}", "1"), [1], [2, k], [1, 1])] for k in range(4)]
    trainer = _RecordingTrainer()
    teacher_update(trainer, datasets, [1.0, 0.0, 0.5, 0.5], groups=2)
    assert trainer.rollouts.advantages == [1.0, -1.0, 0.0, 0.0]  # [1, 0] -> +-1; [0.5, 0.5] -> 0
    teacher_update(trainer, datasets, [1.0, 0.0, 0.5, 0.5], groups=1)
    assert trainer.rollouts.advantages == pytest.approx([1 - 1 / 3, -2 / 3, 0.5 - 1.5 / 3, 0.5 - 1.5 / 3])
    with pytest.raises(ValueError, match="groups"):
        teacher_update(trainer, datasets, [1.0, 0.0, 0.5, 0.5], groups=3)


# -- 4. promote what was measured -----------------------------------------------------------------------------------
def test_candidates_end_on_the_student_the_rule_promotes_in_any_arrival_order():
    rng = random.Random(0)
    for trial in range(300):
        datasets, repeats = rng.randint(1, 5), rng.randint(1, 4)
        rewards = [[rng.choice([0.0, 0.0625, 0.125, -0.0625]) for _ in range(repeats)] for _ in range(datasets)]
        order = [(k, j) for k in range(datasets) for j in range(repeats)]
        rng.shuffle(order)
        candidates, kept = PromotionCandidates(repeats), set()
        peak = 0
        for k, j in order:
            kept.add((k, j))
            kept -= set(candidates.add(k, j, rewards[k][j]))
            peak = max(peak, len(kept))
        assert kept == {promotion_choice(rewards)}, (trial, rewards, order)
        decision, _ = decide_promotion(PromotionState(), rewards, tau=-1.0, window=1)
        assert (decision.dataset, decision.student) == candidates.best
    sequential = PromotionCandidates(4)  # in dataset order a pool holds at most r + 1 students
    kept, peak = set(), 0
    for k, j in itertools.product(range(8), range(4)):
        kept.add((k, j))
        peak = max(peak, len(kept))
        kept -= set(sequential.add(k, j, random.random()))
    assert peak <= 5


# -- 8. seeds --------------------------------------------------------------------------------------------------------
def test_derived_seeds_never_collide_across_runs_steps_groups_and_phases():
    seen = {}
    for run, step, b, k, j in itertools.product(range(3), range(200), range(2), range(4), range(4)):
        seed = derive_seed(run, "student", step, b, k, j)
        assert seed not in seen, (seen[seed], (run, step, b, k, j))
        seen[seed] = (run, step, b, k, j)
    for run, step in itertools.product(range(3), range(200)):
        for phase in ("teacher", "reward_questions", "eval_train", "eval_test"):
            seed = derive_seed(run, phase, step)
            assert seed not in seen and 0 <= seed < 2**62
            seen[seed] = (run, phase, step)
    assert derive_seed(0, "student", 1, 0, 0, 0) == derive_seed(0, "student", 1, 0, 0, 0)  # stable
    assert derive_seed(0, "student", 1, 0) != derive_seed(0, "student", 10)


# -- 7. prompts do not depend on the date ---------------------------------------------------------------------------
def test_a_template_that_prints_the_date_renders_the_fixed_date():
    import datetime

    from soar.data.prompts import render, student_prompt
    from soar.engines.tiny import default_tokenizer

    tokenizer = default_tokenizer()
    tokenizer.chat_template = ("{{ 'Today Date: ' + strftime_now(\"%d %b %Y\") }}|"
                               "{% if date_string is defined %}{{ date_string }}{% endif %}|"
                               "{{ messages[-1]['content'] }}")
    today = datetime.date.today().strftime("%d %b %Y")
    text = render("hi", tokenizer)
    assert text == "Today Date: 26 Jul 2024|26 Jul 2024|hi" and (today == "26 Jul 2024" or today not in text)
    tokenizer.soar_prompt_date = "2025-01-02"
    assert student_prompt("1+1?", tokenizer).startswith("Today Date: 02 Jan 2025|02 Jan 2025|")


def test_the_llama_template_date_is_pinned():
    """The real Llama 3.x logic: date_string if defined, else strftime_now."""
    from soar.data.prompts import render
    from soar.engines.tiny import default_tokenizer

    tokenizer = default_tokenizer()
    tokenizer.chat_template = ("{%- if not date_string is defined %}{%- if strftime_now is defined %}"
                               "{%- set date_string = strftime_now(\"%d %b %Y\") %}{%- else %}"
                               "{%- set date_string = \"26 Jul 2024\" %}{%- endif %}{%- endif %}"
                               "Today Date: {{ date_string }}\n{{ messages[-1]['content'] }}")
    tokenizer.soar_prompt_date = "2023-03-04"
    assert render("x", tokenizer) == "Today Date: 04 Mar 2023\nx"


# -- 2. hard-set provenance ------------------------------------------------------------------------------------------
def _hard_set(folder, model="m", k=128, sha=None, edit=False):
    problems = [Problem(f"q{i}", str(i), f"id{i}") for i in range(6)]
    write_jsonl(folder / "hard.jsonl", problems)
    stats = {"settings": {"model": model, "k": k}, "prompt_sha": sha or prompt_sha(), "hard_key": problems_key(problems),
             "kept": 6}
    (folder / "stats.json").write_text(json.dumps(stats))
    if edit:
        write_jsonl(folder / "hard.jsonl", problems[:-1])
    return folder / "hard.jsonl"


def _data(source, **extra):
    return load_config("paper-math", overrides={"data.source": str(source), **extra}).data


def test_a_matching_provenance_is_accepted(tmp_path):
    assert require_provenance(_data(_hard_set(tmp_path)), ModelConfig(name="m"))["kept"] == 6
    assert require_provenance(_data(_hard_set(tmp_path, k=256)), ModelConfig(name="m")) is not None  # a stricter filter is fine
    tiny = load_config("tiny")
    assert require_provenance(tiny.data, tiny.model) is not None  # the bundled set and its stats


@pytest.mark.parametrize("case, message", [
    ({"model": "other"}, "filtered for model 'other'"),
    ({"k": 16}, "fail@16 set"),
    ({"sha": "0" * 16}, "another student prompt"),
    ({"edit": True}, "content changed"),
])
def test_a_provenance_that_does_not_match_is_refused(tmp_path, case, message):
    source = _hard_set(tmp_path, **case)
    with pytest.raises(ConfigError, match=message) as error:
        require_provenance(_data(source), ModelConfig(name="m"), "--preset paper-math")
    assert "soar filter --preset paper-math" in str(error.value)
    assert require_provenance(_data(source, **{"data.allow_unfiltered": "true"}), ModelConfig(name="m")) is None


def test_a_set_without_provenance_names_the_filter_command(tmp_path):
    pool = tmp_path / "pool.jsonl"
    write_jsonl(pool, [Problem("q", "1")])
    with pytest.raises(ConfigError, match="no soar filter provenance") as error:
        require_provenance(_data(pool), ModelConfig(name="m"), "--preset paper-math")
    assert f"soar filter --preset paper-math --data.source {pool} --out runs/filter-pool-fail128" in str(error.value)
    with pytest.raises(ConfigError, match="no soar filter provenance"):  # never downloads the pool to find out
        require_provenance(load_config("paper-math").data, load_config("paper-math").model)




# -- 5. kept checkpoints ---------------------------------------------------------------------------------------------
def test_promoted_students_and_teacher_snapshots_are_kept_and_ps_is_the_best(tmp_path):
    import torch

    from soar.loops.run_dir import RunDir

    run = RunDir(tmp_path / "run")
    run.create("outer_steps: 5\n")
    assert (run.path / "promotion_questions.jsonl").read_text() == ""  # exists before any promotion
    for stage, (step, acc) in enumerate([(1, 0.25), (3, 0.5), (4, 0.5), (5, 0.9)], start=1):
        run.save_promoted(stage, {"w": torch.full((2,), float(stage))}, {"step": step, "train_accuracy": acc})
    run.save_checkpoint(4, {"rng": torch.zeros(1)}, {"step": 4})  # stage 4 (step 5) will be redone by a resume
    folder, info = run.best_promoted()
    assert info["stage"] == 3 and torch.equal(torch.load(folder / "student.pt")["w"], torch.full((2,), 3.0))
    for step in range(6):
        run.save_teacher(step, {"w": torch.tensor([float(step)])}, keep=3)
    assert run.teacher_steps() == [3, 4, 5]
    run.truncate_after(3)  # a resumed run replays steps 4 and 5
    assert run.teacher_steps() == [3] and [i["stage"] for i in run.promoted_stages()] == [1, 2]
    run.save_teacher(10_000, {"w": torch.zeros(1)}, keep=0)
    run.save_teacher(9_999, {"w": torch.zeros(1)}, keep=2)  # kept by step number, not file-name order
    assert run.teacher_steps() == [9_999, 10_000]
    sizes = run.save_checkpoint(3, {"teacher": {"w": torch.zeros(10)}, "rng": torch.zeros(2)}, {"step": 3})
    assert set(sizes) == {"teacher", "rng"} and all(v > 0 for v in sizes.values())
    assert run.teacher_steps() == [9_999, 10_000] and run.promoted_stages()  # a checkpoint keeps them


@pytest.mark.parametrize("preset, b7_step", [("paper-math", 200), ("paper-harp", 170), ("paper-olympiad", 200)])
def test_paper_presets_keep_a_few_teacher_snapshots_among_them_b7s_step(preset, b7_step, tmp_path):
    """Issue 35: a paper run keeps its newest ``checkpoint.teacher_keep`` snapshots (each 12 GiB at 3B), not all
    20; the steps kept still hold the one B.7 samples Grounded-T from (1-based, as ``soar sample --step``)."""
    import torch

    from soar.loops.run_dir import RunDir

    cfg = load_config(preset)
    run = RunDir(tmp_path / "run")
    run.create(f"outer_steps: {cfg.outer_steps}\n")
    for step in range(cfg.outer_steps):  # what _AfterStep.step (loops/train.py) saves: after 0-based step s when (s + 1) % every == 0
        if (step + 1) % cfg.checkpoint.teacher_every == 0:
            run.save_teacher(step, {"w": torch.zeros(1)}, cfg.checkpoint.teacher_keep)
    kept = [step + 1 for step in run.teacher_steps()]
    assert 0 < cfg.checkpoint.teacher_keep == len(kept) < cfg.outer_steps // cfg.checkpoint.teacher_every
    assert b7_step in kept, kept


def test_sample_picks_the_teacher_of_a_chosen_step(tmp_path):
    import torch

    from soar.errors import SoarError
    from soar.loops.run_dir import RunDir
    from soar.loops.sample import _teacher_at

    run = RunDir(tmp_path / "run")
    run.create("outer_steps: 20\n")
    run.save_teacher(9, {"w": torch.zeros(1)}, keep=0)
    run.save_checkpoint(19, {"rng": torch.zeros(1)}, {"step": 19})
    assert _teacher_at(run, 10)[0] == run.teachers / "step_0009.pt"
    assert _teacher_at(run, 20)[0] is None  # the latest checkpoint's teacher
    with pytest.raises(SoarError, match="kept: 10, 20"):
        _teacher_at(run, 15)


# -- 6. evaluation as the paper: nested seeds, median, delta over Hard-Only --------------------------------------
def _evaluation(folder, method, per_seed):
    folder.mkdir(parents=True)
    (folder / "source.json").write_text(json.dumps({"method": method}))
    (folder / "summary.json").write_text(json.dumps({"method": method}))
    for seed, value in enumerate(per_seed):
        (folder / f"seed_{seed}").mkdir()
        summary = {"seed": seed, "early_stopped": {"1": value}, "fixed_step": {"1": value}}
        (folder / f"seed_{seed}" / "summary.json").write_text(json.dumps(summary))
        (folder / f"seed_{seed}" / "evals.jsonl").write_text(json.dumps({"step": 0, "pass_at_k": {"1": value}}) + "\n")


def test_report_nests_teacher_and_student_seeds_with_median_and_delta(tmp_path):
    from soar.loops.report import write_report

    _evaluation(tmp_path / "hard", "Hard-Only", [0.1, 0.1, 0.1])
    _evaluation(tmp_path / "gt-teacher0", "Grounded-T", [0.2, 0.3])
    _evaluation(tmp_path / "gt-teacher1", "Grounded-T", [0.4, 0.9])
    write_report([tmp_path / "hard", tmp_path / "gt-teacher0", tmp_path / "gt-teacher1"], tmp_path / "report")
    table = (tmp_path / "report" / "table.md").read_text()
    assert "| Grounded-T | 2×2 | 45.0 ± 31.1 |" in table  # mean and sample SD over all 4 student seeds
    assert "| Grounded-T | 2×2 | 35.0 |" in table  # median
    assert "| Grounded-T | 2×2 | +35.0 |" in table and "| Hard-Only | 1×3 | 10.0 ± 0.0 |" in table


def test_curriculum_evaluation_uses_zero_warmup_for_synthetic_questions():
    from soar.loops.evaluate import warmup_steps

    math, harp = load_config("paper-math").evaluation, load_config("paper-harp").evaluation
    assert warmup_steps(math, has_questions=True) == 0  # PQ / teacher questions, curriculum (B.7)
    assert warmup_steps(math, has_questions=False) == 20  # Hard-Only (Table 3)
    assert warmup_steps(harp, has_questions=True) == 20  # mixed: no synthetic phase to match


# -- 9. soar plan ------------------------------------------------------------------------------------------------------


def test_plan_counts_the_work_of_a_step():
    from soar.loops.plan import KNOWN_MODELS, plan

    c = load_config("paper-math")
    p = plan(c, length_fraction=1.0, acceptance=1.0)
    assert p["students"] == 32 and p["datasets"] == 8
    assert p["step"]["student_rollouts"] == 32 * 10 * 8 * 32 and p["step"]["teacher_drafts"] == 8 * 64
    assert p["step"]["student_gen_tokens"] == 32 * 10 * 8 * 32 * 1024
    assert abs(KNOWN_MODELS["meta-llama/Llama-3.2-3B-Instruct"].params - 3.21e9) < 0.01e9
    assert abs(KNOWN_MODELS["smollm2-135m-instruct"].params - 134.5e6) < 0.1e6
    student = p["memory"]["student"]
    assert student["weights"] == 2 * student["kl_reference"] == KNOWN_MODELS["meta-llama/Llama-3.2-3B-Instruct"].params * 4
    faster = plan(c, gen_tok_s=6000.0, train_tok_s=16000.0, length_fraction=1.0, acceptance=1.0)
    assert faster["run_time"]["device_hours"] == pytest.approx(p["run_time"]["device_hours"] / 2)


def _gpu_check_json(path: Path, rows: list[dict], **info) -> Path:
    path.write_text(json.dumps({"info": {"device": "Test GPU", "shape": "3b", **info}, "rows": rows}))
    return path


GPU_ROWS = [
    {"section": "generation", "engine": "soar decode", "shape": "student", "tokens_per_s": 6000.0},
    {"section": "generation", "engine": "soar decode", "shape": "teacher", "tokens_per_s": 9999.0},
    {"section": "generation", "engine": "transformers generate", "shape": "student", "tokens_per_s": 9999.0},
    {"section": "training", "mode": "full", "tokens_per_s": 16000.0},
    {"section": "training", "mode": "lora", "tokens_per_s": 12000.0},
    {"section": "training", "mode": "batched lora x16", "error": "out of memory"},
]






def test_plan_fits_paper_math_in_one_round_on_33_h100s_or_h200s():
    """Issue 35: with the presets' memory choices (checkpointing and log-prob chunks for teacher and students, the
    KL references in bf16, the baseline copy on the host) the teacher (~65 GiB) and a student worker (~67 GiB) each
    fit an 80 GB H100 with 10% headroom: 33 GPUs run the 32 students in one round, 32 GPUs in two, and the time
    line counts those rounds.  Without the teacher's options it does not fit an H100."""
    from dataclasses import replace

    from soar.loops.plan import GPU_MEMORY, HEADROOM, plan, render_plan

    cfg = load_config("paper-math")
    p = plan(cfg)
    gib = 2**30
    assert (p["devices"], p["workers"], p["rounds"]) == (33, 32, 1)
    teacher, student = p["memory"]["teacher"], p["memory"]["student"]
    for m in (teacher, student):
        assert m["total"] == m["kept"] + max(m["generation_phase"], m["training_phase"])
        assert m["kl_reference"] * 2 == m["weights"] == p["params"] * 4
    assert p["baseline_copy"] == p["params"] * 4 and p["student_peak"] == student["total"]  # the baseline: on the host
    assert 64 * gib < teacher["total"] < 66 * gib and 66 * gib < student["total"] < 68 * gib
    rows = {(row["gpus"], row["teacher_gpus"]): row for row in p["placements"]}
    assert (rows[(33, 1)]["workers"], rows[(33, 1)]["rounds"]) == (32, 1)
    assert (rows[(32, 1)]["workers"], rows[(32, 1)]["rounds"]) == (31, 2)
    for gpus in (32, 33):
        own, shared = rows[(gpus, 1)], rows[(gpus, 0)]
        assert own["peak"] == max(teacher["total"], student["total"]) and shared["peak"] == teacher["total"] + student["total"]
        assert own["fits"] == {"H100 80 GB": True, "H200 141 GB": True}
        assert shared["fits"] == {"H100 80 GB": False, "H200 141 GB": False}
    assert GPU_MEMORY["H200 141 GB"] < 141 * gib  # nvidia-smi's 143,771 MiB, not the marketing number
    two = plan(cfg, devices=32)
    assert (two["workers"], two["rounds"]) == (31, 2)
    teacher_s = p["step_time"]["wall_s"] - (two["step_time"]["wall_s"] - p["step_time"]["wall_s"])
    assert 0 < teacher_s < p["step_time"]["wall_s"]  # a second round adds exactly one round of students
    bare = plan(replace(cfg, teacher=replace(cfg.teacher, gradient_checkpointing=False, logprob_chunk=0,
                                             reference_dtype=None)))
    assert bare["memory"]["teacher"]["total"] * HEADROOM > GPU_MEMORY["H100 80 GB"] > teacher["total"] * HEADROOM
    assert bare["memory"]["teacher"]["activations"] > 5 * teacher["activations"]
    assert bare["memory"]["teacher"]["logits"] == 2 * teacher["logits"]  # 512 tokens at once, not chunks of 256
    text = render_plan(cfg, p)
    assert "placement (compute.teacher_gpus" in text and "1 round of students" in text and "fits" in text
    assert "2 rounds of students" in render_plan(cfg, two)
