"""The vLLM generator's rules, on CPU, against the fake ``vllm`` package in ``tests/fakes`` (vLLM needs CUDA).

The fake holds its own weights in vLLM's fused layout and generates from them,
so a weight that does not arrive shows up as wrong output or as the fake's
:class:`ContractError`; each rule has a test that breaks it on purpose and
watches the fake catch it.  ``soar train`` runs two outer steps with the teacher
and the (fully fine-tuned) students on vllm engines: the teacher's weights pushed
after every update, the students' after every step, restore and promotion, the
prefix cache reset after every push, an engine asleep while its trainer updates,
weights read from disk once per engine; ``soar evaluate`` samples its student
the same way.
"""

import sys
from pathlib import Path

import pytest
import torch

from soar.engines.base import SamplingParams, WeightUpdate
from soar.engines.generation import HFGenerator
from soar.engines.tiny import default_tokenizer, tiny_model
from soar.errors import SoarError

FAKES = str(Path(__file__).resolve().parents[1] / "fakes")
PROMPTS = ["Hello there", "Write a number:"]


@pytest.fixture
def vllm(monkeypatch):
    for name in [m for m in sys.modules if m == "vllm" or m.startswith("vllm.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.syspath_prepend(FAKES)
    import vllm

    assert vllm.__file__.startswith(FAKES)
    vllm.LLM.loads_from_disk = 0
    yield vllm
    for name in [m for m in sys.modules if m == "vllm" or m.startswith("vllm.")]:
        del sys.modules[name]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny-llama")
    tokenizer = default_tokenizer()
    _model(tokenizer, 0).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _model(tokenizer, seed):
    """A random Llama whose greedy replies depend on its weights (grouped-query attention: q and kv sizes differ)."""
    return tiny_model(tokenizer, seed=seed, kv_heads=2, init_std=0.5)


def _greedy(generator, tokenizer):
    ids = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in PROMPTS]
    return [[c.token_ids for c in group] for group in
            generator.generate_tokens(ids, 2, SamplingParams(max_new_tokens=8, greedy=True))]


def test_hugging_face_names_land_on_vllm_fused_weights(vllm, model_dir):
    from soar.engines.vllm_generator import VLLMGenerator

    generator = VLLMGenerator(model_dir, enable_sleep_mode=True)
    tokenizer = generator.tokenizer
    other = _model(tokenizer, 1)  # new weights, same shapes
    engine = generator.llm.llm_engine.model_executor.driver_worker.model_runner.model
    assert any(name.endswith("qkv_proj.weight") for name in engine.params) and "lm_head.weight" not in engine.params
    before = _greedy(generator, tokenizer)
    generator.update_weights(WeightUpdate("full", dict(other.named_parameters()), version=1))
    assert engine.pushed == engine.all_names()  # every q/k/v and gate/up shard, every other weight
    assert _greedy(generator, tokenizer) == _greedy(HFGenerator(other, tokenizer), tokenizer) != before
    assert generator.weights_version == 1 and generator.llm.resets == 1
    generator.update_weights(WeightUpdate("full", dict(_model(tokenizer, 0).named_parameters()),
                                          version=1))  # stale version: skipped
    assert generator.llm.pushes == 1
    with pytest.raises(KeyError):  # a PEFT name is not a vLLM weight: why a LoRA teacher is refused
        generator.load_weights({"base_model.model.model.norm.weight": other.model.norm.weight})
    assert vllm.LLM.loads_from_disk == 1


def test_the_fake_catches_a_push_without_a_prefix_cache_reset(vllm, model_dir, monkeypatch):
    from soar.engines.vllm_generator import VLLMGenerator

    generator = VLLMGenerator(model_dir)
    monkeypatch.setattr(generator.llm, "reset_prefix_cache", lambda: True)  # the rule broken on purpose
    generator.update_weights(WeightUpdate("full", dict(_model(generator.tokenizer, 1)
                                                       .named_parameters()), version=1))
    with pytest.raises(vllm.ContractError, match="without reset_prefix_cache"):
        _greedy(generator, generator.tokenizer)


def test_a_vllm_whose_private_weight_path_moved_stops_at_start_up_in_one_line(vllm, model_dir, monkeypatch):
    """Issue 35: the in-place push goes through a private attribute path (TRL's colocate mode); a vLLM that moved
    it must not fall back silently (to an RPC that needs insecure serialisation) but stop when the engine is
    built, naming its version."""
    from soar.engines.vllm_generator import VLLMGenerator

    class Moved(vllm.LLM):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            del self.llm_engine.model_executor  # where a later vLLM might have moved the model

    monkeypatch.setattr(vllm, "LLM", Moved)
    monkeypatch.setattr(vllm, "__version__", "9.9.0", raising=False)
    monkeypatch.setenv("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    with pytest.raises(SoarError) as caught:
        VLLMGenerator(model_dir)
    message = str(caught.value)
    assert "vLLM 9.9.0" in message and "model_runner.model" in message and "compute.generator: hf" in message
    assert "\n" not in message


def test_sleep_level_1_keeps_the_weights_and_nothing_runs_while_asleep(vllm, model_dir, monkeypatch):
    import torch

    from soar.engines.vllm_generator import VLLMGenerator
    from soar.errors import SoarError

    generator = VLLMGenerator(model_dir, enable_sleep_mode=True)
    tokenizer = generator.tokenizer
    other = _model(tokenizer, 1)
    generator.update_weights(WeightUpdate("full", dict(other.named_parameters()), version=1))
    pushed = _greedy(generator, tokenizer)
    generator.sleep()
    with pytest.raises(SoarError, match="asleep"):
        _greedy(generator, tokenizer)
    with pytest.raises(SoarError, match="asleep"):
        generator.update_weights(WeightUpdate("full", dict(other.named_parameters()), version=2))
    calls = []  # on a GPU, the trainer's cached blocks are handed back before vLLM re-allocates its KV cache
    with monkeypatch.context() as gpu:
        gpu.setattr(torch.cuda, "is_available", lambda: True)
        gpu.setattr(torch.cuda, "empty_cache", lambda: calls.append("empty_cache"))
        wake_up = generator.llm.wake_up
        gpu.setattr(generator.llm, "wake_up", lambda *a, **k: (calls.append("wake_up"), wake_up(*a, **k)))
        generator.wake()
    assert calls == ["empty_cache", "wake_up"]
    assert _greedy(generator, tokenizer) == pushed and vllm.LLM.loads_from_disk == 1  # not reloaded from disk
    generator.llm.sleep(level=2)  # what soar never does: the fake holds vLLM to its level-2 behaviour
    generator.llm.wake_up()
    with pytest.raises(vllm.ContractError, match="level-2"):
        generator.llm.generate([{"prompt_token_ids": [1, 2]}], [vllm.SamplingParams(temperature=0, max_tokens=2)])


def test_an_adapter_update_is_refused_in_one_line(vllm, model_dir):
    """soar has no vLLM LoRA path (issue 35): LoRA policies sample through soar's own engine, so an adapter pushed
    to a vLLM engine is an error that says so, not a silent no-op."""
    from soar.engines.base import WeightUpdate
    from soar.engines.vllm_generator import VLLMGenerator
    from soar.errors import SoarError

    generator = VLLMGenerator(model_dir)
    with pytest.raises(SoarError, match="full weights only"):
        generator.update_weights(WeightUpdate("adapter", {"base_model.model.lm_head.lora_A.weight": torch.zeros(1)}))
    assert generator.llm.pushes == 0


@pytest.fixture(scope="module")
def formatted_dir(tmp_path_factory):
    from tests.helpers.formatted import formatted_tiny_model_dir

    return formatted_tiny_model_dir(tmp_path_factory.mktemp("formatted-tiny"))


def _watched_engines(monkeypatch):
    """Every vllm engine ``build_generator`` makes watches the module it was built for (the teacher's)."""
    from soar.engines import generation

    real, engines = generation.build_generator, []

    def build(compute, model, *args, **kwargs):
        generator = real(compute, model, *args, **kwargs)
        if compute.generator == "vllm":
            generator.llm.watch(model)
            engines.append(generator)
        return generator

    monkeypatch.setattr(generation, "build_generator", build)
    return engines


def _moving_teacher(monkeypatch):
    """Every teacher update changes a weight: with equal dataset rewards (all advantages 0) an RLOO step may
    leave the teacher where it was, and a missed push would go unseen."""
    from soar.loops import train as train_module

    real = train_module.teacher_update

    def update(trainer, *args, **kwargs):
        stats = real(trainer, *args, **kwargs)
        with torch.no_grad():
            next(trainer.model.parameters()).add_(1e-3)
        return stats

    monkeypatch.setattr(train_module, "teacher_update", update)


def test_train_pushes_teacher_and_student_weights_after_every_change(vllm, formatted_dir, tmp_path, monkeypatch):
    """Two engines: the teacher's, pushed after every update, and the students', pushed after every student step,
    every restore to the baseline and every promotion (tau < 0: one each step); each watched against its trainer's
    module at every generate, so a missed push raises."""
    from soar.loops.train import train
    from tests.integration.test_train_loop import _cfg

    _moving_teacher(monkeypatch)
    engines = _watched_engines(monkeypatch)
    summary = train(_cfg(formatted_dir, tmp_path, outer_steps=2, **{"compute.generator": "vllm", "promotion.tau": -1}),
                    out=tmp_path / "run")
    teacher, student = engines
    assert summary.steps == 2 and summary.promotions == 2
    assert teacher.llm.pushes == 2 and teacher.weights_version == 2 and teacher.llm.resets == 2
    assert teacher.llm.sleeps == 2 and not teacher.asleep  # asleep while students trained, awake after each push
    # per step: the baseline's Q_R score (a restore), then 4 students x (restore + 2 steps); promotions re-score
    assert student.llm.pushes >= 2 * (1 + 4 * 3) and student.llm.resets == student.llm.pushes
    assert student.llm.sleeps >= 2 * 4 * 2  # before every student update
    assert vllm.LLM.loads_from_disk == 2  # each engine read the model once; every later change was pushed
    # soar sample --teacher: an engine built from the base model gets the trained teacher before it samples
    from soar.config import load_config
    from soar.loops.sample import sample_questions

    cfg = load_config(file=summary.run_dir / "config.yaml")
    sample_questions(cfg, 4, tmp_path / "grounded.jsonl", teacher_run=summary.run_dir)
    assert engines[2].llm.pushes == 1 and vllm.LLM.loads_from_disk == 3
    assert len((tmp_path / "grounded.jsonl").read_text().splitlines()) == 4


def test_the_fake_catches_a_teacher_update_that_is_not_pushed(vllm, formatted_dir, tmp_path, monkeypatch):
    from soar.engines.vllm_generator import VLLMGenerator
    from soar.loops.train import train
    from tests.integration.test_train_loop import _cfg

    _moving_teacher(monkeypatch)
    _watched_engines(monkeypatch)
    monkeypatch.setattr(VLLMGenerator, "update_weights", lambda self, update: None)  # the rule broken on purpose
    with pytest.raises(vllm.ContractError, match="was not pushed"):
        train(_cfg(formatted_dir, tmp_path, outer_steps=2, **{"compute.generator": "vllm"}), out=tmp_path / "run")


def test_the_fake_catches_a_student_step_that_is_not_pushed(vllm, formatted_dir, tmp_path, monkeypatch):
    from soar.engines.base import TrainerGenerator
    from soar.loops.train import train
    from tests.integration.test_train_loop import _cfg

    _watched_engines(monkeypatch)
    monkeypatch.setattr(TrainerGenerator, "sync", lambda self: self.generator.wake())  # never pushes: broken
    with pytest.raises(vllm.ContractError, match="was not pushed"):
        train(_cfg(formatted_dir, tmp_path, outer_steps=1, **{"compute.generator": "vllm"}), out=tmp_path / "run")


def test_evaluate_samples_each_student_step_through_vllm(vllm, formatted_dir, tmp_path, monkeypatch):
    from soar.loops.evaluate import evaluate
    from tests.integration.test_train_loop import _cfg

    engines = _watched_engines(monkeypatch)
    cfg = _cfg(formatted_dir, tmp_path, **{"compute.generator": "vllm", "evaluation.max_steps": 3,
                                           "evaluation.eval_every": 3, "evaluation.samples_per_problem": 2,
                                           "evaluation.ks": "[1, 2]", "evaluation.seeds": "[0]",
                                           "evaluation.smoothing_window": 1, "evaluation.average_window": 1,
                                           "evaluation.fixed_step": 3})
    evaluate(cfg, tmp_path / "eval", "hard-only")
    (engine,) = engines
    assert engine.llm.pushes >= 4 and engine.llm.resets == engine.llm.pushes  # the fresh student, then 3 steps
    assert (tmp_path / "eval" / "seed_0" / "summary.json").exists()


def test_a_lora_teacher_on_vllm_is_refused_in_one_line(formatted_dir, tmp_path):
    from soar.errors import ConfigError
    from soar.loops.train import train
    from tests.integration.test_train_loop import _cfg

    cfg = _cfg(formatted_dir, tmp_path, **{"compute.generator": "vllm", "teacher.finetune": "lora"})
    with pytest.raises(ConfigError, match="set teacher.finetune: full"):
        train(cfg, out=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_no_device_for_vllm_is_one_line(vllm, model_dir, monkeypatch):
    import vllm.platforms

    from soar.engines.vllm_generator import VLLMGenerator
    from soar.errors import SoarError

    monkeypatch.setattr(vllm.platforms.current_platform, "device_type", "")  # what vLLM reports with no GPU
    with pytest.raises(SoarError, match="found no GPU") as caught:
        VLLMGenerator(str(model_dir))
    assert "\n" not in str(caught.value) and vllm.LLM.loads_from_disk == 0  # refused before loading anything
