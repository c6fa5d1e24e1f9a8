"""A tiny model taught, by a few seconds of supervised training, to answer in SOAR's formats.

A random tiny network never closes a ``<question>`` span or writes ``}``, so
every teacher rollout would be rejected; after ~150 steps of next-token
training on examples of the teacher's and the student's output formats it
writes well-formed (if silly) QA pairs and boxed answers, which lets the whole
loop run for real in seconds.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path
from typing import Any

import torch

from soar.data.prompts import render, student_prompt, teacher_prompt
from soar.engines.tiny import default_tokenizer, tiny_model
from soar.loops.teacher import MULTITURN_ANSWER, MULTITURN_QUESTION

_MADE: dict[tuple[int, int], Path] = {}
"""Folders already made in this process, by (steps, seed): training is deterministic, so a later call copies one
(a dozen test modules each want this model; training it took 10-25 s each on 2 cores)."""


def formatted_tiny_model_dir(folder: Path, steps: int = 120, seed: int = 0, tokenizer: object = None) -> Path:
    """Train and save the model (and ``tokenizer``, SmolLM2's by default) into ``folder``."""
    made = _MADE.get((steps, seed)) if tokenizer is None else None
    if made is not None and (made / "config.json").exists():
        shutil.copytree(made, folder, dirs_exist_ok=True)
        return folder
    folder = _train(folder, steps, seed, tokenizer or default_tokenizer())
    if tokenizer is None:
        _MADE[(steps, seed)] = folder
    return folder


def _train(folder: Path, steps: int, seed: int, tokenizer: Any) -> Path:
    model = tiny_model(tokenizer, layers=2, hidden=64, seed=seed, init_std=0.1).train()
    rng = random.Random(seed)
    teacher = tokenizer(teacher_prompt(tokenizer), add_special_tokens=False)["input_ids"]
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    eos = tokenizer.eos_token
    for _ in range(steps):
        rows = []
        for _ in range(8):
            a, b = rng.randint(1, 9), rng.randint(1, 9)
            kind = rng.random()
            question = f"What is {a} + {b}?"
            if kind < 0.4:
                prompt, target = teacher, f"<question>{question}</question><answer>\\boxed{{{a + b}}}</answer>{eos}"
            elif kind < 0.55:
                prompt = tokenizer(render(MULTITURN_QUESTION, tokenizer), add_special_tokens=False)["input_ids"]
                target = question + eos
            elif kind < 0.7:
                context = render(MULTITURN_ANSWER, tokenizer, history=[(MULTITURN_QUESTION, question)])
                prompt, target = tokenizer(context, add_special_tokens=False)["input_ids"], f"\\boxed{{{a + b}}}{eos}"
            else:
                prompt = tokenizer(student_prompt(f"What is {a} + {b}?", tokenizer), add_special_tokens=False)["input_ids"]
                target = f"The final answer is: \\boxed{{{a + b}}}{eos}"
            rows.append((prompt, tokenizer(target, add_special_tokens=False)["input_ids"]))
        width = max(len(p) + len(t) for p, t in rows)
        ids = torch.full((len(rows), width), tokenizer.pad_token_id)
        rows_at, cols_at, targets = [], [], []
        for i, (p, t) in enumerate(rows):
            ids[i, :len(p) + len(t)] = torch.tensor(p + t)
            rows_at += [i] * len(t)
            cols_at += range(len(p) - 1, len(p) + len(t) - 1)
            targets += t
        hidden = model.model(input_ids=ids).last_hidden_state[rows_at, cols_at]  # only the target positions
        loss = torch.nn.functional.cross_entropy(model.lm_head(hidden), torch.tensor(targets))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


PAPER_MATH_CUTS = {
    # overrides of paper-math: its shape of a step (B=2 groups x g=4 datasets x r=4 = 32 full-fine-tuned students, student batch
    # 8 x 32 samples, rejection sampling of drafts) with lengths and counts cut so that two steps of a tiny model
    # take about a minute: what is measured is that every phase runs on the device, and their shares
    "data.source": "arithmetic", "data.allow_unfiltered": "true", "data.arithmetic_tiers": "[add3]",
    "data.arithmetic_per_tier": "64", "data.fail_at_k": "null",
    "teacher.max_new_tokens": "48", "teacher.warmup_steps": "1",
    "student.max_new_tokens": "48", "inner.steps": "2", "inner.steps_after_promotion": "1", "inner.max_steps": "3",
    "inner.dataset_size": "8", "inner.reward_questions": "16", "checkpoint.teacher_every": "0", "outer_steps": "2",
}
"""What ``benchmarks/gpu_check.py``'s outer section and ``tests/integration/test_paper_fanout.py`` override in
``paper-math`` to run its loop shape on a tiny model."""
