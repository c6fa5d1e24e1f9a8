"""Build the designed world's base model from scratch: a character-level tokenizer and a small Llama, seeded, cached.

``model.name: world`` (``world:SEED`` for another seed) makes :func:`soar.engines.models.load_model` call
:func:`world_model`.  That returns the cached folder, or builds it first: a progress bar on the console, 2,500
batches of 64 texts on one thread, 6-7.5 minutes measured on a 2-core AVX2 EPYC with another job on the other
core.  The folder then loads as any Hugging Face model folder: the engines, batched LoRA and CUDA-graph decoding
serve it unchanged, because it is a plain ``LlamaForCausalLM``.

Why a tokenizer of its own rather than SmolLM2's: with SmolLM2's 49,152-token vocabulary the output layer alone
(4.7M weights) would be ~13x the rest of this 3-layer, 96-wide model (0.36M): measured in one run on one thread
(``benchmarks/world_tokenizer.py``), a training step 21.8x slower and a decoding step 7.1x.
The world's text needs ~100 characters and 5 tags (``<question>``, ``</question>``, ``<answer>``,
``</answer>``, ``\\boxed{``), each one token.

Deterministic: the same :class:`~soar.world.family.WorldSpec` gives the same weights on one machine.  The texts
come from ``random.Random(spec.seed)`` and the initialisation from ``torch.manual_seed``.  The build runs on one
thread whatever the core count, and records the thread count, torch version, loss and time in ``world.json``.
Machines with other matmul kernels (AVX2 vs AVX-512) may round differently, so a hard set is filtered for the
model built on the machine that uses it (``soar filter``, as for any model).
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from soar.world.family import WorldSpec, training_text

TAGS = ("<question>", "</question>", "<answer>", "</answer>", "\\boxed{")
"""Multi-character pieces of the formats that are one token each."""
PAD, EOS, UNK = "<pad>", "<eos>", "<unk>"


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

    config = LlamaConfig(vocab_size=vocab_size, hidden_size=spec.hidden, intermediate_size=3 * spec.hidden,
                         num_hidden_layers=spec.layers, num_attention_heads=spec.heads,
                         num_key_value_heads=spec.heads, max_position_embeddings=256, tie_word_embeddings=True,
                         bos_token_id=None, eos_token_id=1, pad_token_id=0)
    torch.manual_seed(spec.seed)
    return LlamaForCausalLM(config)


def world_model(spec: WorldSpec, cache_dir: str | Path,
                progress: Callable[[int, int, float], None] | None = None) -> Path:
    """The folder of the world model built from ``spec``: cached, or built now (``progress(step, steps, loss)``)."""
    target = Path(cache_dir).expanduser() / f"world-{spec.key()}"
    if (target / "world.json").exists():
        return target
    tmp = target.with_name(f"{target.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    report = pretrain(spec, tmp, progress)
    (tmp / "world.json").write_text(json.dumps(report, indent=1))
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)  # atomic: a half-built model is never mistaken for a built one
    return target


def pretrain(spec: WorldSpec, folder: Path, progress: Callable[[int, int, float], None] | None = None,
             threads: int | None = None) -> dict[str, Any]:
    """Train the world's base model from scratch on :func:`~soar.world.family.training_text` and save it (a plain
    Hugging Face folder) in ``folder``; returns what ``world.json`` records.  ``threads``: torch threads (default 1:
    the weights depend on the thread count, so one thread makes them the same on machines with more cores)."""
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
        started, loss_value = time.perf_counter(), float("nan")
        eos = tokenizer.eos_token_id
        for step in range(spec.steps):
            encoded = [tokenizer(training_text(rng, spec), add_special_tokens=False)["input_ids"] + [eos]
                       for _ in range(spec.batch)]
            width = max(map(len, encoded))
            ids = torch.tensor([row + [0] * (width - len(row)) for row in encoded])
            mask = torch.tensor([[1] * len(row) + [0] * (width - len(row)) for row in encoded])
            lr = spec.lr * min(1.0, (step + 1) / spec.warmup) * 0.5 * (1 + math.cos(math.pi * step / spec.steps))
            for group in optimizer.param_groups:
                group["lr"] = lr
            loss = model(input_ids=ids, attention_mask=mask, labels=ids.masked_fill(mask == 0, -100)).loss
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
    return {"spec": asdict(spec), "key": spec.key(), "parameters": sum(p.numel() for p in model.parameters()),
            "final_loss": loss_value, "seconds": round(seconds, 1), "threads": threads,
            "torch": torch.__version__}
