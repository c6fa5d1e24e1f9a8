"""Build the designed world's base model from scratch: a character-level tokenizer and a small Llama, seeded.

The shipped world (``model.name: world``, :class:`~soar.world.family.WorldSpec`'s defaults) is not built: its
weights ship in the package (:data:`SHIPPED`, 2.6 MB), so every machine runs the same model.  Floating-point
results differ between CPU kinds (AVX2 against AVX-512), and a world rebuilt on another kind is another world:
issue 34 measured a rebuild whose teacher no longer beat junk.  Any other spec (``world:SEED``) is built on
first use and cached under ``model.cache_dir``, with a progress bar; ``soar world --build DIR`` rebuilds any spec,
the shipped one included, to check the recipe.  The folder loads as any Hugging Face model folder: the engines,
batched LoRA and CUDA-graph decoding serve it unchanged, because it is a plain ``LlamaForCausalLM``.

Why a tokenizer of its own rather than SmolLM2's: with SmolLM2's 49,152-token vocabulary the output layer alone
would be many times the rest of this 3-layer model: measured for the first world in one run on one thread
(``benchmarks/world_tokenizer.py``), a training step 21.8x slower and a decoding step 7.1x.  The world's text
needs ~100 characters and 5 tags (``<question>``, ``</question>``, ``<answer>``, ``</answer>``, ``\\boxed{``),
each one token.

The training loop (:func:`pretrain`): AdamW, linear warm-up then cosine, gradient clipping at 1, batches of
right-padded texts (no attention mask is needed: padding only follows a text).  A warm phase comes first
(:attr:`~soar.world.family.WorldSpec.warm_steps`): mostly teacher-format texts, which break the long plateau of
learning to add, ended once the teacher format answers 90% of 50 problems right.

Deterministic: the same spec gives the same weights on one machine kind.  The texts come from
``random.Random(spec.seed)`` and the initialisation from ``torch.manual_seed``; the build runs on one thread
whatever the core count and records the thread count, torch version, loss and time in ``world.json``.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from soar.world.family import DIGITS, TEACHER_PROMPT, WorldSpec, distinct_questions, solve, training_text

TAGS = ("<question>", "</question>", "<answer>", "</answer>", "\\boxed{")
"""Multi-character pieces of the formats that are one token each."""
PAD, EOS, UNK = "<pad>", "<eos>", "<unk>"
SHIPPED = Path(__file__).with_name("model")
"""The shipped world's folder (built by :func:`pretrain` from ``WorldSpec()``; its ``world.json`` says how)."""


def make_tokenizer() -> Any:
    """Printable ASCII and newline, one token per character, the tags one token each; ``<pad>``, ``<eos>``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {PAD: 0, EOS: 1, UNK: 2}
    for char in "\n" + "".join(chr(c) for c in range(32, 127)):
        vocab.setdefault(char, len(vocab))
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    core.pre_tokenizer = pre_tokenizers.Split("", behavior="isolated")
    core.decoder = decoders.Fuse()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, pad_token=PAD, eos_token=EOS, unk_token=UNK)
    tokenizer.add_tokens(list(TAGS))
    tokenizer.padding_side = "left"
    return tokenizer


def make_model(spec: WorldSpec, vocab_size: int) -> Any:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=vocab_size, hidden_size=spec.hidden, intermediate_size=spec.inter,
                         num_hidden_layers=spec.layers, num_attention_heads=spec.heads,
                         num_key_value_heads=spec.heads, max_position_embeddings=256, tie_word_embeddings=True,
                         bos_token_id=None, eos_token_id=1, pad_token_id=0)
    torch.manual_seed(spec.seed)
    return LlamaForCausalLM(config)


def world_model(spec: WorldSpec, cache_dir: str | Path,
                progress: Callable[[int, int, float], None] | None = None) -> Path:
    """The folder of the world model of ``spec``: the shipped one, a cached build, or built now
    (``progress(step, steps, loss)``)."""
    if spec == WorldSpec() and (SHIPPED / "world.json").is_file():
        return SHIPPED
    target = Path(cache_dir).expanduser() / f"world-{spec.key()}"
    if (target / "world.json").exists():
        return target
    tmp = target.with_name(f"{target.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    pretrain(spec, tmp, progress)
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)  # atomic: a half-built model is never mistaken for a built one
    return target


def pretrain(spec: WorldSpec, folder: Path, progress: Callable[[int, int, float], None] | None = None,
             threads: int | None = None) -> dict[str, Any]:
    """Train the world's base model from scratch on :func:`~soar.world.family.training_text` and save it (a plain
    Hugging Face folder, ``world.json`` beside it) in ``folder``; returns what ``world.json`` records.
    ``threads``: torch threads (default 1: the weights depend on the thread count)."""
    import torch

    threads = threads or 1
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        tokenizer = make_tokenizer()
        model = make_model(spec, len(tokenizer))
        model.train()
        rng = random.Random(spec.seed)
        optimizer = torch.optim.AdamW(model.parameters(), lr=spec.lr, weight_decay=0.01, betas=(0.9, 0.98))
        started, loss_value, warm_done = time.perf_counter(), float("nan"), None
        eos = tokenizer.eos_token_id
        monitor = [question for question, _ in distinct_questions("add-any", 50, "mon")]
        for step in range(spec.steps):
            warm = warm_done is None and step < spec.warm_steps
            if warm and step >= 200 and step % 100 == 0:
                model.eval()
                if teacher_accuracy(model, tokenizer, monitor) >= spec.warm_until:
                    warm_done, warm = step, False
                model.train()
            if not warm and warm_done is None:
                warm_done = step
            encoded = [tokenizer(training_text(rng, spec, warm), add_special_tokens=False)["input_ids"] + [eos]
                       for _ in range(spec.batch)]
            width = max(map(len, encoded))
            ids = torch.tensor([row + [0] * (width - len(row)) for row in encoded])
            mask = torch.tensor([[1] * len(row) + [0] * (width - len(row)) for row in encoded])
            lr = spec.lr * min(1.0, (step + 1) / spec.warmup) * 0.5 * (1 + math.cos(math.pi * step / spec.steps))
            for group in optimizer.param_groups:
                group["lr"] = lr
            loss = model(input_ids=ids, labels=ids.masked_fill(mask == 0, -100)).loss  # right padding: no mask
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            loss_value = loss.item()
            if progress is not None and (step % 25 == 0 or step == spec.steps - 1):
                progress(step + 1, spec.steps, loss_value)
        seconds = time.perf_counter() - started
    finally:
        torch.set_num_threads(before)
    model.eval()
    import transformers

    transformers.utils.logging.disable_progress_bar()  # the caller's bar says what is happening
    model.config.architectures = ["LlamaForCausalLM"]
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    report = {"spec": asdict(spec), "key": spec.key(), "parameters": sum(p.numel() for p in model.parameters()),
              "final_loss": loss_value, "warm_done": warm_done, "seconds": round(seconds, 1), "threads": threads,
              "torch": torch.__version__}
    (folder / "world.json").write_text(json.dumps(report, indent=1))
    return report


_BOXED = re.compile(r"\\boxed\{([^}]*)\}")


def teacher_accuracy(model: Any, tokenizer: Any, questions: list[str]) -> float:
    """Share of ``questions`` the model answers right, greedily, in the teacher format (the question forced):
    the warm phase's check.  A plain decoding loop: this runs inside the build, before any engine exists."""
    import torch

    prompts = [f"{TEACHER_PROMPT}<question>{q}</question><answer>" for q in questions]
    ids = torch.tensor([tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts])  # equal lengths
    with torch.no_grad():
        out = model(input_ids=ids, use_cache=True)
        past, logits = out.past_key_values, out.logits[:, -1]
        new = torch.zeros(len(questions), DIGITS + 7, dtype=torch.long)
        done = torch.zeros(len(questions), dtype=torch.bool)
        for t in range(DIGITS + 7):
            token = logits.argmax(-1).masked_fill(done, 0)
            new[:, t] = token
            done |= token == 1
            if bool(done.all()):
                break
            out = model(input_ids=token[:, None], past_key_values=past, use_cache=True)
            past, logits = out.past_key_values, out.logits[:, -1]
    right = 0
    for question, row in zip(questions, new.tolist()):
        row = row[: row.index(1)] if 1 in row else row
        match = _BOXED.search(tokenizer.decode([i for i in row if i != 0]))
        right += match is not None and match.group(1) == solve(question)
    return right / len(questions)
