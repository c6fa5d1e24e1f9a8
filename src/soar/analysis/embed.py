"""Sentence embeddings from a local causal LM: the mean of its last hidden states over a text's tokens.

The paper's embedders (Qwen3-8B, EmbeddingGemma-300M) need the Hub, which is
out of reach offline; any model ``soar.engines.models.load_model`` can load
works here, by default the run's own model.  Scores made with one embedder
are comparable with each other only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def embed(texts: Sequence[str], model: Any, tokenizer: Any, batch_size: int = 32) -> np.ndarray:
    """``[len(texts), hidden]`` float64: mean-pooled last hidden states (padding excluded), no gradients."""
    import torch

    device = next(model.parameters()).device
    decoder = model.get_decoder() if hasattr(model, "get_decoder") else model
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    out = []
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            encoded = [tokenizer(t, add_special_tokens=False)["input_ids"] or [pad] for t in texts[start:start + batch_size]]
            width = max(len(ids) for ids in encoded)
            ids = torch.tensor([e + [pad] * (width - len(e)) for e in encoded], device=device)
            mask = torch.tensor([[1] * len(e) + [0] * (width - len(e)) for e in encoded], device=device)
            hidden = decoder(input_ids=ids, attention_mask=mask).last_hidden_state.float()
            pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
            out.append(pooled.cpu().double().numpy())
    return np.concatenate(out) if out else np.zeros((0, 1))
