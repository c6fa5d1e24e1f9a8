"""Gradient checkpointing and chunked log-probs change memory, not maths: same log-probs, same step."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from soar.config import PolicyConfig
from soar.engines.batch import Rollouts
from soar.engines.tiny import default_tokenizer, tiny_model
from soar.engines.trainer import PolicyTrainer

BASE = PolicyConfig(lr=1e-2, warmup_steps=0, kl_coef=0.05, micro_batch_size=3, lora_rank=4, lora_alpha=8)


@pytest.fixture(scope="module")
def tokenizer():
    return default_tokenizer()


def _rollouts(tokenizer):
    g = torch.Generator().manual_seed(7)
    prompts = [tokenizer(f"Question {q}: what is {q} + 4?")["input_ids"] for q in range(2)]
    ids, comps, adv = [], [], []
    for prompt in prompts:
        for _ in range(3):  # completions of different lengths: padding inside a micro-batch
            ids.append(prompt)
            comps.append(torch.randint(10, 5000, (3 + int(torch.randint(0, 6, (1,), generator=g)),), generator=g).tolist())
            adv.append(float(torch.randn(1, generator=g)))
    return Rollouts(ids, comps, adv, [[1] * (len(c) - 1) + [0] for c in comps])  # a forced last token


@pytest.mark.parametrize("finetune", ["full", "lora"])
@pytest.mark.parametrize("memory", [{"gradient_checkpointing": True}, {"logprob_chunk": 2},
                                    {"gradient_checkpointing": True, "logprob_chunk": 3}])
def test_memory_options_leave_logprobs_and_the_step_unchanged(tokenizer, finetune, memory):
    rollouts = _rollouts(tokenizer)
    results = []
    for cfg in (replace(BASE, finetune=finetune), replace(BASE, finetune=finetune, **memory)):
        trainer = PolicyTrainer(tiny_model(tokenizer, seed=2, init_std=0.2), cfg, 4, tokenizer.pad_token_id)
        base = trainer.model.get_base_model() if finetune == "lora" else trainer.model
        assert base.is_activation_checkpointing == cfg.gradient_checkpointing  # really on where asked
        trainer.model.train()
        logprobs, ref, mask = trainer._logprobs(rollouts, list(range(len(rollouts.advantages))))
        stats = trainer.step(rollouts)
        grads = {n: p.grad.clone() for n, p in trainer.model.named_parameters() if p.requires_grad}
        results.append((logprobs.detach(), ref, mask, stats, grads))
    (lp, ref, mask, stats, grads), (lp2, ref2, mask2, stats2, grads2) = results
    assert torch.equal(mask, mask2)
    assert (lp - lp2).mul(mask).abs().max() < 1e-5 and (ref - ref2).mul(mask).abs().max() < 1e-5
    assert stats["loss"] == pytest.approx(stats2["loss"], abs=1e-6)
    assert stats["grad_norm"] == pytest.approx(stats2["grad_norm"], rel=1e-5) and stats["grad_norm"] > 0
    largest = max(float(g.abs().max()) for g in grads.values())
    # the gradient (clipped, as the optimiser saw it), entry by entry; AdamW's first step would magnify
    # rounding on entries whose gradient is ~0 (it moves every entry by ~lr whatever its size)
    assert max(float((grads[n] - grads2[n]).abs().max()) for n in grads) < 1e-5 * largest


def test_embedding_diversity_of_identical_and_different_questions(tokenizer):
    from soar.analysis.diversity import diversity
    from soar.analysis.embed import embed

    model = tiny_model(tokenizer, seed=0, init_std=0.5)
    same = embed(["What is 6 + 7?"] * 3, model, tokenizer)
    assert same.shape == (3, model.config.hidden_size) and diversity(same)["vendi"] == pytest.approx(1.0, abs=1e-6)
    varied = embed(["What is 6 + 7?", "Name a prime above 90.", "A train leaves at noon; when?"], model, tokenizer)
    assert 1.05 < diversity(varied)["vendi"] <= 3.0
    # padding does not change a text's embedding
    assert np.allclose(embed(["Hi", "A much longer question text"], model, tokenizer)[0], embed(["Hi"], model, tokenizer)[0],
                       atol=1e-5)
