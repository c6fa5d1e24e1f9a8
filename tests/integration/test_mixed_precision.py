"""Mixed precision (``model.compute_dtype``): bf16 matmuls over fp32 weights, on a tiny model.

The generator samples from a bf16 copy that must follow every change the
trainer makes; the trainer keeps fp32 weights and optimiser state, so updates
too small for bf16 are kept; and RLOO still learns.
"""

import pytest
import torch

from soar.algo.rloo import leave_one_out_advantages
from soar.config import ModelConfig, PolicyConfig
from soar.engines import models
from soar.engines.batch import Rollouts
from soar.engines.generation import HFGenerator, SamplingParams
from soar.engines.tiny import default_tokenizer, tiny_model
from soar.engines.trainer import PolicyTrainer
from soar.errors import SoarError

BF16 = torch.bfloat16


@pytest.fixture(scope="module")
def tokenizer():
    return default_tokenizer()


def _greedy(generator, prompts):
    return generator.generate(prompts, 1, SamplingParams(max_new_tokens=6, greedy=True))


def test_the_cast_copy_follows_the_trainers_weights(tokenizer):
    model = tiny_model(tokenizer, seed=11, init_std=0.5)
    trainer = PolicyTrainer(model, PolicyConfig(lr=5e-2, kl_coef=0.0, lr_schedule="constant"), 3,
                            tokenizer.pad_token_id, compute_dtype=BF16)
    generator = HFGenerator(trainer.model, tokenizer, compute_dtype=BF16)
    prompts = ["Say something.", "Hello there my friend"]
    before = _greedy(generator, prompts)
    assert next(generator._cast.parameters()).dtype == BF16 and next(model.parameters()).dtype == torch.float32
    prompt_ids = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    trainer.step(Rollouts(prompt_ids, [c.token_ids for g in before for c in g], [1.0, -1.0]))
    after = _greedy(generator, prompts)
    fresh = _greedy(HFGenerator(trainer.model, tokenizer, compute_dtype=BF16), prompts)  # a new copy of the new weights
    assert [c.logprobs for g in after for c in g] == [c.logprobs for g in fresh for c in g]
    assert [c.logprobs for g in after for c in g] != [c.logprobs for g in before for c in g]


def test_fp32_master_weights_keep_updates_that_bf16_would_round_away(tokenizer):
    prompt = [tokenizer("Say something.", add_special_tokens=False)["input_ids"]] * 2
    rollouts = Rollouts(prompt, [[11, 12, 13], [14, 15]], [1.0, -1.0])
    changed = {}
    for name, weights, compute in (("mixed", torch.float32, BF16), ("pure bf16", BF16, None)):
        model = tiny_model(tokenizer, seed=12).to(weights)
        trainer = PolicyTrainer(model, PolicyConfig(lr=1e-6, kl_coef=0.0, lr_schedule="constant"), 2,
                                tokenizer.pad_token_id, compute_dtype=compute)
        start = trainer.snapshot()
        trainer.step(rollouts)
        state = trainer.optimizer.state[trainer.params[0]]
        assert state["exp_avg"].dtype == weights
        grads = torch.cat([p.grad.flatten() for p in trainer.params]) != 0  # kept until the next step
        moved = torch.cat([(p.detach() != start[n]).flatten() for n, p in trainer.model.named_parameters()])
        changed[name] = (moved & grads).sum().item() / grads.sum().item()  # share of the weights with a gradient that moved
    assert changed["mixed"] > 0.99, changed  # every weight with a gradient moved by ~lr
    assert changed["pure bf16"] < 0.2, changed  # most lr=1e-6 steps vanish below bf16's resolution


@pytest.mark.parametrize("role", ["teacher", "student"])
@pytest.mark.parametrize("preset", ["paper-math", "paper-harp"])
def test_the_paper_presets_precision_keeps_lr_1e5_updates(tokenizer, preset, role):
    """Each paper preset's model.dtype / compute_dtype and its lr (1e-5): one AdamW step moves >= 99% of the
    weights that have a gradient (pure bf16 weights would keep under 20%, the test above)."""
    import dataclasses

    from soar.config import load_config

    cfg = load_config(preset)
    policy = dataclasses.replace(getattr(cfg, role), kl_coef=0.0, warmup_steps=0, micro_batch_size=8)
    assert policy.lr == 1e-5
    compute = models.compute_dtype(dataclasses.replace(cfg.model, device="cpu"))
    model = tiny_model(tokenizer, seed=13).to(getattr(torch, cfg.model.dtype))
    trainer = PolicyTrainer(model, policy, 10, tokenizer.pad_token_id, compute_dtype=compute)
    assert compute == BF16 and next(trainer.model.parameters()).dtype == torch.float32
    prompt = [tokenizer("Say something.", add_special_tokens=False)["input_ids"]] * 2
    start = trainer.snapshot()
    trainer.step(Rollouts(prompt, [[11, 12, 13], [14, 15]], [1.0, -1.0]))
    grads = torch.cat([p.grad.flatten() for p in trainer.params]) != 0
    moved = torch.cat([(p.detach() != start[n]).flatten() for n, p in trainer.model.named_parameters()])
    assert (moved & grads).sum().item() / grads.sum().item() >= 0.99


def test_rloo_learns_with_bf16_matmuls(tokenizer):
    """The learning test of test_rloo_learning, with bf16 matmuls: the reward must still rise."""
    model = tiny_model(tokenizer, seed=1, init_std=0.5)
    allowed = set(range(len(tokenizer) // 4))
    prompts = ["Say something.", "Hello there", "Write a number:", "Go."]
    cfg = PolicyConfig(lr=3e-2, lr_schedule="constant", warmup_steps=0, kl_coef=0.001, micro_batch_size=16)
    trainer = PolicyTrainer(model, cfg, total_steps=25, pad_token_id=tokenizer.pad_token_id, compute_dtype=BF16)
    generator = HFGenerator(trainer.model, tokenizer, compute_dtype=BF16)
    prompt_ids = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]

    def reward(ids):
        return sum(t in allowed for t in ids[:4]) / 4

    def mean_reward(seed):
        groups = generator.generate(prompts, 16, SamplingParams(max_new_tokens=4, seed=seed))
        return sum(reward(c.token_ids) for g in groups for c in g) / 64

    before = mean_reward(123)
    for step in range(25):
        groups = generator.generate(prompts, 8, SamplingParams(max_new_tokens=4, seed=step))
        advantages = leave_one_out_advantages([[reward(c.token_ids) for c in g] for g in groups])
        trainer.step(Rollouts([prompt_ids[i] for i, g in enumerate(groups) for _ in g],
                              [c.token_ids for g in groups for c in g], [a for row in advantages for a in row]))
    after = mean_reward(123)
    assert 0.1 < before < 0.45 and after > before + 0.3 and after > 0.6, (before, after)


def test_the_kl_reference_runs_under_the_same_autocast(tokenizer):
    """Policy and reference agree at the start: the KL term is exactly zero, as in float32."""
    model = tiny_model(tokenizer, seed=13, init_std=0.5)
    trainer = PolicyTrainer(model, PolicyConfig(kl_coef=0.1), 1, tokenizer.pad_token_id, compute_dtype=BF16)
    generator = HFGenerator(trainer.model, tokenizer, compute_dtype=BF16)
    assert all(b.dtype == torch.float32 for b in generator._cast.buffers())  # RoPE frequencies are not rounded
    prompts = ["Say something.", "Hello there my friend"]
    groups = generator.generate(prompts, 2, SamplingParams(max_new_tokens=6, seed=0))
    prompt_ids = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    completions = [c for g in groups for c in g]
    stats = trainer.step(Rollouts([prompt_ids[c.prompt_index] for c in completions], [c.token_ids for c in completions],
                                  [1.0, -1.0, 0.5, -0.5]))
    assert stats["kl"] == 0.0


def test_a_bf16_kl_reference_is_half_the_bytes_and_stays_close_under_bf16_matmuls(tokenizer):
    """``reference_dtype: bfloat16`` (the paper presets' memory choice): the reference's weights are bf16 while the
    policy's stay fp32; under bf16 matmuls its log-probs differ from the fp32 reference's only by the rounding of
    its weights, so the KL at the start is small, not zero; a promotion's copy into it still works."""
    prompts = ["Say something.", "Hello there my friend"]
    prompt_ids = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    rollouts = Rollouts([prompt_ids[0], prompt_ids[0], prompt_ids[1], prompt_ids[1]], [[11, 12, 13], [14, 15], [16], [17, 18]],
                        [1.0, -1.0, 0.5, -0.5])
    kl = {}
    for dtype in (None, "bfloat16"):
        model = tiny_model(tokenizer, seed=13, init_std=0.5)
        trainer = PolicyTrainer(model, PolicyConfig(kl_coef=0.1, reference_dtype=dtype, lr=1e-3), 2,
                                tokenizer.pad_token_id, compute_dtype=BF16)
        weights = {p.dtype for p in trainer.reference.parameters()}
        assert weights == {BF16 if dtype else torch.float32} and next(trainer.model.parameters()).dtype == torch.float32
        kl[dtype] = trainer.step(rollouts)["kl"]
        trainer.set_reference_to_current()  # a promotion: the new weights, rounded to the reference's dtype
        current = dict(trainer.model.named_parameters())
        assert all(torch.equal(p, current[n].to(p.dtype)) for n, p in trainer.reference.named_parameters())
    # measured 0.009 (k3 KL summed over a reply of 1-3 tokens, this sharp random model): the size of the gaps bf16
    # itself makes between decoder and trainer (docs/gpu: log-probs within 0.2 nats)
    assert kl[None] == 0.0 and 0.0 < kl["bfloat16"] < 0.05, kl


def test_compute_dtype_resolution(monkeypatch):
    assert models.compute_dtype(ModelConfig()) is None  # default: the weights' dtype
    assert models.compute_dtype(ModelConfig(dtype="bfloat16", compute_dtype="bfloat16")) is None  # nothing to mix
    assert models.compute_dtype(ModelConfig(compute_dtype="bfloat16")) == BF16
    monkeypatch.setattr(models, "cpu_has_native", lambda dtype: True)
    assert models.compute_dtype(ModelConfig(compute_dtype="auto", device="cpu")) == BF16
    assert models.matmul_dtype_name(ModelConfig(compute_dtype="auto", device="cpu")) == "bfloat16"
    monkeypatch.setattr(models, "cpu_has_native", lambda dtype: False)
    assert models.compute_dtype(ModelConfig(compute_dtype="auto", device="cpu")) is None
    assert models.matmul_dtype_name(ModelConfig(compute_dtype="auto", device="cpu")) == "float32"
    with pytest.raises(SoarError, match="float32 weights"):
        models.compute_dtype(ModelConfig(dtype="bfloat16", compute_dtype="float32"))
