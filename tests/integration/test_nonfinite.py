"""A NaN or inf in a loss, gradient or reward never reaches the weights or a checkpoint (injected here)."""

import math
from dataclasses import replace

import pytest
import torch

from soar.algo.losses import rloo_loss
from soar.config import PolicyConfig
from soar.engines.batch import Rollouts
from soar.engines.lora import BatchedLoRATrainer
from soar.engines.tiny import default_tokenizer, tiny_model
from soar.engines.trainer import PolicyTrainer

CFG = PolicyConfig(lr=1e-2, warmup_steps=0, kl_coef=0.05, micro_batch_size=2, lora_rank=4, lora_alpha=8)


@pytest.fixture(scope="module")
def tokenizer():
    return default_tokenizer()


def _rollouts(tokenizer, advantage=1.0):
    prompt = tokenizer("What is 2 + 2?")["input_ids"]
    return Rollouts([prompt] * 4, [[10, 11, 12], [13, 14], [15, 16, 17], [18]], [advantage, -1.0, 0.5, -0.5])


@pytest.mark.parametrize("finetune", ["full", "lora"])
@pytest.mark.parametrize("poison", ["loss", "advantage"])
def test_a_non_finite_step_changes_nothing(tokenizer, finetune, poison):
    nan_loss = lambda *a, **k: (lambda loss, stats: (loss * math.nan, stats))(*rloo_loss(*a, **k))  # noqa: E731
    trainer = PolicyTrainer(tiny_model(tokenizer, seed=1), replace(CFG, finetune=finetune), 4, tokenizer.pad_token_id,
                            loss_fn=nan_loss if poison == "loss" else rloo_loss)
    before = trainer.snapshot()
    stats = trainer.step(_rollouts(tokenizer, math.inf if poison == "advantage" else 1.0))
    assert stats["skipped"] == 1.0 and trainer.skipped_steps == 1 and trainer.steps_done == 0
    assert all(torch.equal(before[n], w) for n, w in trainer.snapshot().items())  # weights untouched
    assert all(not s for s in trainer.optimizer.state.values()) or all(  # moments untouched (never created)
        torch.count_nonzero(v) == 0 for s in trainer.optimizer.state.values() for v in s.values() if torch.is_tensor(v))
    if poison == "advantage":
        assert trainer.step(_rollouts(tokenizer))["skipped"] == 0.0 and trainer.steps_done == 1  # goes on


def test_one_poisoned_batched_student_is_dropped_alone(tokenizer):
    engine = BatchedLoRATrainer(tiny_model(tokenizer, seed=1, init_std=0.3), replace(CFG, finetune="lora"), 3,
                                tokenizer.pad_token_id)
    engine.begin(3, 4)
    before = [engine.adapter(s) for s in range(3)]
    stats = engine.step([_rollouts(tokenizer), _rollouts(tokenizer, math.nan), _rollouts(tokenizer)])
    assert [s["skipped"] for s in stats] == [0.0, 1.0, 0.0]
    after = [engine.adapter(s) for s in range(3)]
    assert all(torch.equal(before[1][n][i], after[1][n][i]) for n in after[1] for i in (0, 1))
    assert int(engine.steps_done[1]) == 0 and int(engine.steps_done[0]) == 1
    for s in (0, 2):
        assert max(float((before[s][n][i] - after[s][n][i]).abs().max()) for n in after[s] for i in (0, 1)) > 1e-4


def test_the_run_stops_in_one_line_after_the_limit_and_records_each_drop(tmp_path, monkeypatch):
    from soar.errors import SoarError
    from soar.loops import train as train_module
    from soar.loops.run_dir import RunDir
    from tests.helpers.formatted import formatted_tiny_model_dir
    from tests.integration.test_train_loop import _cfg

    real = train_module.teacher_update
    weights = []

    def poisoned(trainer, datasets, rewards, groups=1):  # a reward that is NaN, through the real update
        before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
        stats = real(trainer, datasets, [math.nan] * len(rewards), groups=groups)
        weights.append((before, {n: p.detach().clone() for n, p in trainer.model.named_parameters()}))
        return stats

    monkeypatch.setattr(train_module, "teacher_update", poisoned)
    model_dir = formatted_tiny_model_dir(tmp_path / "model")
    cfg = _cfg(model_dir, tmp_path, outer_steps=3, **{"compute.nonfinite_limit": 2})
    with pytest.raises(SoarError, match=r"step 1: the teacher's update was dropped 2 times in a row") as caught:
        train_module.train(cfg, out=tmp_path / "run")
    assert "\n" not in str(caught.value) and "soar train --resume" in str(caught.value)
    run = RunDir(tmp_path / "run")
    records = run.read("metrics.jsonl")
    assert [r["teacher_skipped"] for r in records] == [True, True] and run.completed_step() == 1
    for before, after in weights:  # nothing moved the teacher, and nothing non-finite reached it
        assert all(torch.equal(before[n], w) and bool(torch.isfinite(w).all()) for n, w in after.items())
    assert len(weights) == 2
