"""RLOO learns: with a tiny random model, a reward the policy can learn rises well above chance."""

import copy

import pytest

from soar.algo.rloo import leave_one_out_advantages
from soar.config import PolicyConfig
from soar.engines.batch import Rollouts
from soar.engines.generation import HFGenerator, SamplingParams
from soar.engines.tiny import default_tokenizer, tiny_model
from soar.engines.trainer import PolicyTrainer


@pytest.fixture(scope="module")
def tokenizer():
    return default_tokenizer()


def _mean_reward(generator, prompts, allowed, new_tokens, seed):
    groups = generator.generate(prompts, 16, SamplingParams(max_new_tokens=new_tokens, seed=seed))
    return sum(_reward(c.token_ids, allowed, new_tokens) for g in groups for c in g) / sum(len(g) for g in groups)


def _reward(token_ids, allowed, new_tokens):
    """Fraction of the first ``new_tokens`` generated tokens that lie in the allowed quarter of the vocabulary."""
    return sum(t in allowed for t in token_ids[:new_tokens]) / new_tokens


@pytest.mark.parametrize("mode", ["full", "lora"])
def test_reward_rises_well_above_chance(tokenizer, mode):
    """Both modes learn to put most tokens in an arbitrary quarter of the vocabulary.

    ``init_std=0.5`` gives the random model embeddings large enough that a
    change of the hidden state can move the output distribution; LoRA cannot
    touch the (tied) embeddings, and with the usual 0.02 the logits are nearly
    flat whatever the hidden state (measured: LoRA then stays at chance).
    """
    lr = 3e-2
    model = tiny_model(tokenizer, seed=1, init_std=0.5)
    allowed = set(range(len(tokenizer) // 4))  # chance ~ 0.25 per token
    new_tokens, group, steps = 4, 8, 25
    prompts = ["Say something.", "Hello there", "Write a number:", "Go."]
    cfg = PolicyConfig(lr=lr, lr_schedule="constant", warmup_steps=0, kl_coef=0.001, micro_batch_size=16,
                       finetune=mode, lora_rank=8, lora_alpha=16)
    trainer = PolicyTrainer(model, cfg, total_steps=steps, pad_token_id=tokenizer.pad_token_id)
    generator = HFGenerator(trainer.model, tokenizer)
    prompt_ids = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]

    before = _mean_reward(generator, prompts, allowed, new_tokens, seed=123)
    kls = []
    for step in range(steps):
        groups = generator.generate(prompts, group, SamplingParams(max_new_tokens=new_tokens, seed=step))
        rewards = [[_reward(c.token_ids, allowed, new_tokens) for c in g] for g in groups]
        advantages = leave_one_out_advantages(rewards)
        rollouts = Rollouts(
            prompt_ids=[prompt_ids[i] for i, g in enumerate(groups) for _ in g],
            completion_ids=[c.token_ids for g in groups for c in g],
            advantages=[a for row in advantages for a in row],
        )
        stats = trainer.step(rollouts)
        assert stats["tokens"] > 0
        kls.append(stats["kl"])
    after = _mean_reward(generator, prompts, allowed, new_tokens, seed=123)
    assert 0.1 < before < 0.45, before  # near chance (0.25) before training
    assert after > before + 0.3 and after > 0.6, (before, after)
    # beta 0.001 (Table 3) weighs the KL of whole replies: zero at the reference, above zero once the policy moved
    assert kls[0] == 0.0 and min(kls[-5:]) > 0.01, kls


def test_snapshot_restore_resets_the_student(tokenizer):
    import torch

    model = tiny_model(tokenizer, seed=2)
    trainer = PolicyTrainer(model, PolicyConfig(lr=1e-2, kl_coef=0.0, lr_schedule="constant"), 5, tokenizer.pad_token_id)
    baseline = trainer.snapshot()
    rollouts = Rollouts([[1, 2, 3]] * 2, [[4, 5], [6]], [1.0, -1.0])
    trainer.step(rollouts)
    changed = any(not torch.equal(p, baseline[n]) for n, p in trainer.model.named_parameters())
    assert changed
    trainer.restore(baseline)
    assert all(torch.equal(p, baseline[n]) for n, p in trainer.model.named_parameters())
    assert trainer.steps_done == 0
    # the optimiser is reset too (its buffers zeroed in place): the next steps equal a brand-new trainer's
    other = Rollouts([[1, 2, 3]] * 2, [[7, 8], [9]], [-1.0, 1.0])
    for _ in range(2):
        trainer.step(other)
    fresh = PolicyTrainer(tiny_model(tokenizer, seed=2), PolicyConfig(lr=1e-2, kl_coef=0.0, lr_schedule="constant"), 5,
                          tokenizer.pad_token_id)
    for _ in range(2):
        fresh.step(other)
    assert all(torch.equal(p, q) for p, q in zip(trainer.model.parameters(), fresh.model.parameters()))


def test_trainer_logprobs_equal_generator_logprobs(tokenizer):
    """The trainer's left-pad/right-pad layout scores sampled tokens exactly as sampling saw them."""
    import torch

    model = tiny_model(tokenizer, seed=3)
    trainer = PolicyTrainer(model, PolicyConfig(kl_coef=0.001), 1, tokenizer.pad_token_id)
    prompts = ["Say something.", "Hello there my good friend, how are you"]  # different lengths
    groups = HFGenerator(model, tokenizer).generate(prompts, 2, SamplingParams(max_new_tokens=6, seed=0))
    prompt_ids = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    completions = [c for g in groups for c in g]
    rollouts = Rollouts([prompt_ids[c.prompt_index] for c in completions], [c.token_ids for c in completions], [0.0] * 4)
    logprobs, ref, mask = trainer._logprobs(rollouts, range(4))
    for row, c in enumerate(completions):
        n = len(c.token_ids)
        assert torch.allclose(logprobs[row, :n], torch.tensor(c.logprobs), atol=1e-4)
        assert mask[row, :n].sum() == n and mask[row, n:].sum() == 0
    assert torch.allclose(logprobs * mask, ref * mask)  # reference = policy before any step


def test_generator_stop_strings_and_greedy(tokenizer):
    model = tiny_model(tokenizer, seed=4)
    generator = HFGenerator(model, tokenizer, batch_size=4)
    groups = generator.generate(["hi", "hello there"], 3, SamplingParams(max_new_tokens=30, stop=("e",), seed=0))
    assert [len(g) for g in groups] == [3, 3]
    for index, group in enumerate(groups):
        for c in group:
            assert c.prompt_index == index and len(c.token_ids) == len(c.logprobs) >= 1
            if c.finish_reason == "stop":
                assert c.text.endswith("e") and c.text.count("e") == 1
            assert tokenizer.pad_token_id not in c.token_ids[:-1]
    greedy = generator.generate(["hi"], 2, SamplingParams(max_new_tokens=8, greedy=True))
    assert greedy[0][0].token_ids == greedy[0][1].token_ids


@pytest.mark.parametrize("head", ["", "A long preamble that every prompt of the batch shares, word for word: "])
def test_shared_prompt_forward_gives_the_same_update_as_separate_rows(tokenizer, head):
    """Samples of one prompt share its forward pass (and prompts their common prefix); the step must
    equal running every row alone."""
    import torch

    prompts = [tokenizer(head + t, add_special_tokens=False)["input_ids"] for t in ["Say something.", "Hello there my friend"]]
    rollouts = Rollouts([prompts[0]] * 3 + [prompts[1]] * 2, [[11, 12, 13], [14], [15, 16], [17, 18, 19, 20], [21]],
                        [0.5, -1.0, 0.5, 1.0, -1.0])
    grads = []
    for micro in (1, 8):  # 1: no sharing at all; 8: the whole batch in one micro-batch, prompts shared
        cfg = PolicyConfig(lr=1e-2, kl_coef=0.1, lr_schedule="constant", micro_batch_size=micro)
        trainer = PolicyTrainer(tiny_model(tokenizer, seed=8), cfg, 2, tokenizer.pad_token_id)
        trainer.step(rollouts)
        grads.append({n: p.grad.clone() for n, p in trainer.model.named_parameters()})  # kept until the next step
    for name, grad in grads[0].items():
        scale = grad.abs().max().item()
        assert scale > 0 and torch.allclose(grad, grads[1][name], atol=1e-4 * scale), name


@pytest.mark.parametrize("all_zero", [False, True])
def test_dropping_zero_advantage_rows_leaves_the_step_unchanged(tokenizer, all_zero):
    """:func:`soar.students.inner.informative`: without a KL term, a step on the rows with a nonzero advantage
    (scaled by kept / all) moves the weights as the step on every row does; with none, one row is kept so AdamW
    still steps on its moments.  Two steps, so the second runs on moments the first left."""
    import torch

    from soar.students.inner import informative

    cfg = PolicyConfig(lr=1e-2, lr_schedule="constant", warmup_steps=0, kl_coef=0.0, micro_batch_size=3)
    prompts = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in ("Say something.", "Go.")]
    completions = [[5, 6, 7], [8, 9], [10], [11, 12, 13, 14], [15, 16], [17]]
    first = Rollouts([prompts[i // 3] for i in range(6)], completions, [0.0, 0.5, -0.5, 0.0, 0.0, 0.0])
    second = Rollouts(first.prompt_ids, completions, [0.0] * 6 if all_zero else [0.0, 0.0, 0.0, 1.0, -0.5, -0.5])
    trainer = PolicyTrainer(tiny_model(tokenizer, seed=2), cfg, total_steps=2, pad_token_id=tokenizer.pad_token_id)
    start = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    for rollouts in (first, second):  # each step from the same state: the full rows, and the informative ones
        twin = copy.deepcopy(trainer)
        trainer.step(rollouts)
        twin.step(informative(rollouts, cfg.kl_coef))
        full, pruned = (dict((k, p.grad) for k, p in t.model.named_parameters() if p.grad is not None)
                        for t in (trainer, twin))
        assert full.keys() == pruned.keys()
        scale = max(g.abs().max() for g in full.values())
        assert all(torch.allclose(full[k], pruned[k], atol=1e-5 * scale, rtol=1e-4) for k in full)
        assert scale > 0 or rollouts is second and all_zero
        if all_zero and rollouts is second:  # a zero gradient: AdamW moves both on the same moments
            after = (t.model.state_dict() for t in (trainer, twin))
            assert all(torch.equal(a, b) for a, b in zip(*(d.values() for d in after)))
    assert trainer.steps_done == 2 == twin.steps_done
    assert len(informative(first, 0.0).advantages) == 2 and informative(first, 0.0).advantages[0] == 0.5 * 2 / 6
    assert len(informative(second, 0.0).advantages) == (1 if all_zero else 3)
    assert informative(first, 0.001) is first  # with a KL term every row counts
    assert max((v - start[k]).abs().max() for k, v in trainer.model.state_dict().items()) > 1e-3
