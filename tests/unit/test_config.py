import pytest
import yaml

from soar.config import SoarConfig, apply_override, load_config, preset_names, to_yaml
from soar.errors import ConfigError


def test_presets_ship_and_load():
    assert {"tiny", "paper-math", "paper-harp"} <= set(preset_names())
    for name in preset_names():
        assert isinstance(load_config(name), SoarConfig)


@pytest.mark.parametrize("preset", ["paper-math", "paper-harp"])
def test_paper_presets_hold_table_3(preset):
    c = load_config(preset)
    assert (c.inner.dataset_size, c.teacher.group_size, c.inner.repeats) == (64, 4, 4)  # n, g, r
    assert c.promotion.tau == 0.01 and c.promotion.window == 3 and c.promotion.enabled
    for policy in (c.teacher, c.student):
        assert policy.lr == 1e-5 and policy.kl_coef == 0.001 and policy.lr_schedule == "cosine"
        assert policy.temperature == 1.0
    assert c.teacher.warmup_steps == 20 and c.student.warmup_steps == 0 and c.evaluation.warmup_steps == 20
    assert (c.teacher.batch_size, c.teacher.group_size) == (2, 4)
    assert (c.student.batch_size, c.student.group_size) == (8, 32)
    assert (c.teacher.max_new_tokens, c.student.max_new_tokens) == (512, 1024)
    assert (c.inner.steps, c.inner.steps_after_promotion, c.inner.reward_questions) == (10, 5, 64)
    assert c.outer_steps == 200 and c.evaluation.max_steps == 1500
    assert c.evaluation.synthetic_warmup_steps == 64
    assert c.evaluation.ks == [1, 4, 8, 16, 32] and c.evaluation.samples_per_problem == 32
    assert (c.evaluation.smoothing_window, c.evaluation.slope_threshold, c.evaluation.average_window) == (25, 0.15, 200)
    assert c.teacher.sampling == "rejection" and c.teacher.reward == "grounded"
    assert c.reward.kind == "paper" and c.reward.require_boxed is True
    assert c.data.fail_at_k == 128 and c.data.test_fraction == 0.5


def test_math_uses_curriculum_harp_mixed():
    assert load_config("paper-math").evaluation.mixing == "curriculum"
    assert load_config("paper-harp").evaluation.mixing == "mixed"


def test_tiny_is_the_cpu_testbed():
    c = load_config("tiny")
    assert c.model.name == "smollm2-135m-instruct" and c.model.device == "cpu"
    assert c.teacher.sampling == "structured" and c.reward.require_boxed is False
    assert c.data.source == "arithmetic-hard" and c.data.fail_at_k == 16
    assert c.data.filter_max_new_tokens == c.student.max_new_tokens  # the shipped set was filtered at this budget


def test_dotted_overrides_are_typed():
    c = load_config("paper-math", overrides={"promotion.tau": "0.015", "teacher.lr": "1e-4",
                                             "inner.repeats": "2", "promotion.enabled": "false",
                                             "evaluation.ks": "[1, 2]", "model.gguf_file": "null"})
    assert c.promotion.tau == 0.015 and c.teacher.lr == 1e-4 and c.inner.repeats == 2
    assert c.promotion.enabled is False and c.evaluation.ks == [1, 2] and c.model.gguf_file is None
    assert isinstance(c.promotion.tau, float)


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("promotion.tua", "1", "unknown config key 'promotion.tua'"),
        ("nope.tau", "1", "unknown config key 'nope'"),
        ("promotion.tau.x", "1", "unknown config key 'promotion.tau'"),
        ("promotion.tau", "abc", "promotion.tau must be a number"),
        ("inner.repeats", "2.5", "inner.repeats must be an integer"),
        ("promotion.enabled", "3", "promotion.enabled must be true or false"),
        ("teacher.sampling", "greedy", "teacher.sampling must be one of"),
        ("evaluation.ks", "[1, x]", "evaluation.ks[1] must be an integer"),
        ("model", "3", "model must be a mapping"),
        ("teacher.answer_format", "digits", "teacher.answer_format must be one of"),
        ("teacher.prompt_examples", "['<question>Q?</question>']", "teacher.prompt_examples must be formatted"),
        ("teacher.answers", "oracle", "teacher.answers must be one of"),
        ("compute.batched_rows", "-1", "compute.batched_rows must be at least 0"),
        ("teacher.solver_max_new_tokens", "0", "teacher.solver_max_new_tokens must be at least 1"),
        ("teacher.question_prefix", "What is ", "teacher.question_prefix must be without trailing whitespace"),
    ],
)
def test_bad_overrides_name_the_key(key, value, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_config("tiny", overrides={key: value})


def test_config_file_errors_name_file_and_key(tmp_path):
    good = tmp_path / "run.yaml"
    good.write_text("inner:\n  repeats: 2\npromotion:\n  tau: 1e-2\n")
    c = load_config(file=good)
    assert c.inner.repeats == 2 and c.promotion.tau == 0.01
    bad = tmp_path / "bad.yaml"
    bad.write_text("inner:\n  repeat: 2\n")
    with pytest.raises(ConfigError, match=rf"{bad}.*unknown config key 'inner.repeat'"):
        load_config(file=bad)
    broken = tmp_path / "broken.yaml"
    broken.write_text("inner: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(file=broken)
    with pytest.raises(ConfigError, match="not found"):
        load_config(file=tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="unknown preset"):
        load_config("nope")


def test_yaml_round_trip():
    c = load_config("paper-harp")
    again = load_config(overrides=None)
    for key, value in yaml.safe_load(to_yaml(c)).items():
        if isinstance(value, dict):
            for sub, v in value.items():
                again = apply_override(again, f"{key}.{sub}", v)
        else:
            again = apply_override(again, key, v if (v := value) is not None else "null")
    assert again == c


def test_text_keys_keep_override_text():
    c = load_config("tiny", overrides={"out_dir": "2024", "model.gguf_file": "7", "data.hf_config": "null"})
    assert c.out_dir == "2024" and c.model.gguf_file == "7" and c.data.hf_config is None


def test_numeric_prompt_examples_must_have_numeric_answers():
    example = "<question>Which?</question><answer>\\boxed{x}</answer>"
    assert load_config("tiny", overrides={"teacher.prompt_examples": f"['{example}']"}).teacher.prompt_examples
    with pytest.raises(ConfigError, match="with a numeric A"):
        load_config("tiny", overrides={"teacher.prompt_examples": f"['{example}']", "teacher.answer_format": "number"})


def test_memory_options_are_not_silently_ignored_by_batched_students():
    with pytest.raises(ConfigError, match="compute.student_batch must be 1 when student.gradient_checkpointing"):
        load_config("tiny", overrides={"student.gradient_checkpointing": "true"})  # tiny batches 4 LoRA students
    assert load_config("tiny", overrides={"student.logprob_chunk": "64", "compute.student_batch": "1"})


def test_solver_answers_need_structured_sampling():
    assert load_config("tiny", overrides={"teacher.answers": "solver"}).teacher.answers == "solver"  # structured
    with pytest.raises(ConfigError, match="teacher.answers must be own unless teacher.sampling is structured"):
        load_config("paper-math", overrides={"teacher.answers": "solver"})
    with pytest.raises(ConfigError, match="teacher.question_prefix must be empty unless teacher.sampling is structured"):
        load_config("paper-math", overrides={"teacher.question_prefix": "What is"})


def test_a_resume_may_change_what_a_run_keeps_but_not_its_results():
    from soar.config import RESUME_SETTINGS, resume_overrides

    assert resume_overrides({"checkpoint.keep": "1", "reward.verify_workers": "4"}) == {
        "checkpoint.keep": "1", "reward.verify_workers": "4"}
    assert "checkpoint.keep" in RESUME_SETTINGS and "compute.threads" not in RESUME_SETTINGS
    with pytest.raises(ConfigError) as refused:
        resume_overrides({"checkpoint.keep": "1", "student.lr": "1e-3", "compute.threads": "1"})
    message = str(refused.value)
    assert "--student.lr, --compute.threads would change its results" in message and "\n" not in message
