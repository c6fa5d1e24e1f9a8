"""Batched LoRA students (soar.engines.lora) against PEFT students trained one after another."""

from dataclasses import replace

import pytest
import torch

from soar.config import PolicyConfig
from soar.engines.batch import Rollouts
from soar.engines.generation import HFGenerator, SamplingParams
from soar.engines.lora import BatchedLoRATrainer, from_peft, to_peft
from soar.engines.tiny import default_tokenizer, tiny_model
from soar.engines.trainer import PolicyTrainer

CFG = PolicyConfig(finetune="lora", lr=2e-2, warmup_steps=1, lr_schedule="cosine", kl_coef=0.05, lora_rank=4,
                   lora_alpha=8, micro_batch_size=3, grad_clip=1.0)
MEAN_TOLERANCE = 1e-6
"""Mean |difference| allowed between batched and PEFT adapter entries after 3 steps, float32 (measured ~5e-8,
against ~1.2e-2 that the entries move)."""
MAX_TOLERANCE = 0.02 * CFG.lr
"""Largest single |difference|: 2% of one AdamW step (measured up to 2e-4 = 1% of lr).  Batched and single
matmuls round differently (~1e-7 relative); AdamW divides the first moment by the root of the second, which
magnifies that on entries whose gradients nearly cancel between steps."""


@pytest.fixture(scope="module")
def tokenizer():
    return default_tokenizer()


def _rollouts(tokenizer, student, step, scale=1.0):
    """Fixed rollouts for (student, step): two prompts, two completions each, of different lengths."""
    g = torch.Generator().manual_seed(1000 * student + step)
    prompts = [tokenizer(f"Question {student}-{q}: what is {q} + {student}?")["input_ids"] for q in range(2)]
    ids, comps, adv = [], [], []
    for q, prompt in enumerate(prompts):
        for k in range(2):
            length = 3 + int(torch.randint(0, 4, (1,), generator=g))
            ids.append(prompt)
            comps.append(torch.randint(10, 5000, (length,), generator=g).tolist())
            adv.append(float(torch.randn(1, generator=g)) * scale)
    return Rollouts(ids, comps, adv)


def _peft_students(tokenizer, cfg, steps, rollouts_of):
    model = tiny_model(tokenizer, seed=3)
    trainer = PolicyTrainer(model, cfg, steps, tokenizer.pad_token_id)
    start = trainer.snapshot()
    adapters = []
    for s in range(3):
        trainer.restore(start, total_steps=steps)
        for step in range(steps):
            trainer.step(rollouts_of(s, step))
        adapters.append(from_peft(trainer.snapshot()))
    return from_peft(start), adapters


def _batched_students(tokenizer, cfg, steps, rollouts_of, initial):
    engine = BatchedLoRATrainer(tiny_model(tokenizer, seed=3), cfg, students=3, pad_token_id=tokenizer.pad_token_id)
    engine.initial = initial
    engine.begin(3, steps)
    for step in range(steps):
        engine.step([rollouts_of(s, step) for s in range(3)])
    return engine, [engine.adapter(s) for s in range(3)]


def _mean_diff(a, b):
    total = sum(float((a[n][i] - b[n][i]).abs().sum()) for n in a for i in (0, 1))
    return total / sum(a[n][i].numel() for n in a for i in (0, 1))


def _max_diff(a, b):
    return max(float((a[n][i] - b[n][i]).abs().max()) for n in a for i in (0, 1))


def test_three_batched_students_match_three_peft_students(tokenizer):
    """Same start, same rollouts, 3 steps (warm-up, cosine, clipping, KL): same adapters within TOLERANCE."""
    rollouts_of = lambda s, step: _rollouts(tokenizer, s, step)  # noqa: E731
    initial, peft = _peft_students(tokenizer, CFG, 3, rollouts_of)
    _, batched = _batched_students(tokenizer, CFG, 3, rollouts_of, initial)
    for s in range(3):
        moved = _max_diff(peft[s], initial)
        assert moved > 1e-3  # they trained
        assert _mean_diff(batched[s], peft[s]) < MEAN_TOLERANCE, s
        assert _max_diff(batched[s], peft[s]) < MAX_TOLERANCE, s
    assert _max_diff(batched[0], batched[1]) > 1e-3  # and each its own way
    assert set(to_peft(batched[0])) == set(to_peft(initial))


def test_a_huge_loss_on_one_student_leaves_the_others_exactly_alone(tokenizer):
    normal = lambda s, step: _rollouts(tokenizer, s, step)  # noqa: E731
    huge = lambda s, step: _rollouts(tokenizer, s, step, scale=1e6 if s == 1 else 1.0)  # noqa: E731
    initial = from_peft(PolicyTrainer(tiny_model(tokenizer, seed=3), CFG, 3, tokenizer.pad_token_id).snapshot())
    _, base = _batched_students(tokenizer, CFG, 3, normal, initial)
    _, hit = _batched_students(tokenizer, CFG, 3, huge, initial)
    for s in (0, 2):
        assert _max_diff(base[s], hit[s]) == 0.0
    assert _max_diff(base[1], hit[1]) > 1e-3


def test_batched_greedy_generation_matches_each_peft_student(tokenizer):
    """Generation through student-indexed adapters equals each student alone (its adapter in a PEFT model)."""
    rollouts_of = lambda s, step: _rollouts(tokenizer, s, step)  # noqa: E731
    initial, peft = _peft_students(tokenizer, replace(CFG, lr=0.2), 2, rollouts_of)
    engine, batched = _batched_students(tokenizer, replace(CFG, lr=0.2), 2, rollouts_of, initial)
    prompts = [tokenizer(f"Say {w}")["input_ids"] for w in ("one", "two thing", "three")]
    sampling = SamplingParams(max_new_tokens=6, greedy=True)
    together = HFGenerator(engine.model, tokenizer, batch_size=4).generate_tokens(
        prompts * 3, 1, sampling, students=[s for s in range(3) for _ in prompts])
    alone_model = PolicyTrainer(tiny_model(tokenizer, seed=3), CFG, 2, tokenizer.pad_token_id)
    for s in range(3):
        alone_model.restore(to_peft(peft[s]))
        alone = HFGenerator(alone_model.model, tokenizer).generate_tokens(prompts, 1, sampling)
        assert [c[0].token_ids for c in alone] == [c[0].token_ids for c in together[s * 3:(s + 1) * 3]], s
    assert [c[0].token_ids for c in together[:3]] != [c[0].token_ids for c in together[3:6]]


def _quarter_reward(token_ids, allowed, new_tokens):
    return sum(t in allowed for t in token_ids[:new_tokens]) / new_tokens


def test_batched_students_each_learn_their_own_task(tokenizer):
    """Three students in one batch, each rewarded for another quarter of the vocabulary: every one rises from
    chance to mostly its own quarter (and not the others')."""
    from soar.algo.rloo import leave_one_out_advantages

    cfg = PolicyConfig(finetune="lora", lr=3e-2, lr_schedule="constant", warmup_steps=0, kl_coef=0.001,
                       micro_batch_size=16, lora_rank=8, lora_alpha=16)
    engine = BatchedLoRATrainer(tiny_model(tokenizer, seed=1, init_std=0.5), cfg, 3, tokenizer.pad_token_id, seed=1)
    engine.begin(3, 25)
    quarter = len(tokenizer) // 4
    allowed = [set(range(s * quarter, (s + 1) * quarter)) for s in range(3)]
    prompts = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in ["Say something.", "Hello there", "Go."]]
    generator = HFGenerator(engine.model, tokenizer)
    owners = [s for s in range(3) for _ in prompts]

    def rewards(seed):
        groups = generator.generate_tokens(prompts * 3, 16, SamplingParams(max_new_tokens=4, seed=seed),
                                           students=owners)
        per = [[[_quarter_reward(c.token_ids, allowed[s], 4) for c in groups[s * 3 + q]] for q in range(3)]
               for s in range(3)]
        return groups, per

    _, before = rewards(123)
    for step in range(25):
        groups, per = rewards(step)
        batch = []
        for s in range(3):
            advantages = leave_one_out_advantages(per[s])
            mine = [c for q in range(3) for c in groups[s * 3 + q]]
            batch.append(Rollouts([prompts[c.prompt_index % 3] for c in mine], [c.token_ids for c in mine],
                                  [a for row in advantages for a in row]))
        engine.step(batch)
    _, after = rewards(123)
    mean = lambda rows: sum(map(sum, rows)) / sum(map(len, rows))  # noqa: E731
    for s in range(3):
        assert 0.1 < mean(before[s]) < 0.45, (s, mean(before[s]))  # chance is 0.25
        assert mean(after[s]) > mean(before[s]) + 0.3 and mean(after[s]) > 0.6, (s, mean(before[s]), mean(after[s]))


def test_rows_per_pass_bounds_memory_not_maths(tokenizer, monkeypatch):
    """Three students with 4 rows each in passes of 5 rows (a pass holds rows of two students) train to the
    adapters of passes of 3 rows per student."""
    rollouts_of = lambda s, step: _rollouts(tokenizer, s, step)  # noqa: E731
    initial = from_peft(PolicyTrainer(tiny_model(tokenizer, seed=3), CFG, 3, tokenizer.pad_token_id).snapshot())
    _, wide = _batched_students(tokenizer, CFG, 3, rollouts_of, initial)
    engine = BatchedLoRATrainer(tiny_model(tokenizer, seed=3), CFG, 3, tokenizer.pad_token_id, rows_per_pass=5)
    passes = []
    real = engine._logprobs
    monkeypatch.setattr(engine, "_logprobs", lambda per, part: passes.append(len(part)) or real(per, part))
    engine.initial = initial
    engine.begin(3, 3)
    for step in range(3):
        engine.step([rollouts_of(s, step) for s in range(3)])
    assert passes == [5, 5, 2] * 3
    for s in range(3):
        assert _mean_diff(engine.adapter(s), wide[s]) < MEAN_TOLERANCE
        assert _max_diff(engine.adapter(s), wide[s]) < MAX_TOLERANCE
