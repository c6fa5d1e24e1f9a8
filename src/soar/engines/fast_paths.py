"""Two fast paths for transformers models on CPU; same results up to rounding.

Written by hand because these are slow paths inside PyTorch's CPU kernels that
transformers walks into, measured on SmolLM2-135M (2-core AMD EPYC with
AVX512-BF16).  On CUDA the attention goes to sdpa as before and the head's
reshape costs nothing.

* **Output head input** (:func:`flat_output_head`).  transformers takes the last
  position with ``hidden[:, -1:, :]`` (``logits_to_keep``) and hands that strided
  3-D slice to ``lm_head``; PyTorch's CPU matmul then copies the whole transposed
  49k x 576 weight first: 75 ms instead of 18 ms in float32, 750 ms instead of
  5 ms in bfloat16, for 16 rows.  Hooks reshape the input to (rows, hidden) and
  the logits back.
* **Single-token attention** (:func:`decode_attention`).  For one query token per
  row (every decoding step), ``scaled_dot_product_attention``'s CPU kernel took
  4.3 ms per layer at 64 rows x 170 keys (bfloat16: 5.4 ms), 57% of a decoding
  step; two batched matmuls and a float32 softmax over the key/value heads (no
  ``repeat_kv`` copy for grouped-query attention) take 0.8 ms.  In bf16 the
  scores are rounded to bf16 before the float32 softmax (eager attention's
  precision): a test checks the result is as close to float32 as sdpa's own
  bf16 kernel.  Prompts (several query tokens) and CUDA tensors still go to
  transformers' ``sdpa``.  It is registered with transformers'
  ``AttentionInterface`` as ``soar_cpu_decode`` (with ``sdpa``'s mask format)
  and used only by models whose attention is ``sdpa``.

Both live on the model (module hooks, config), so ``copy.deepcopy`` keeps them.
"""

from __future__ import annotations

from typing import Any

ATTENTION = "soar_cpu_decode"


def cpu_fast_paths(model: Any) -> Any:
    """Apply both fast paths to ``model`` (in place, idempotent); returns it."""
    flat_output_head(model)
    _use_decode_attention(model)
    return model


def flat_output_head(model: Any) -> Any:
    """Feed the output head 2-D, contiguous input (see the module doc); returns ``model``."""
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if head is None or _flatten_input in head._forward_pre_hooks.values():
        return model
    head.register_forward_pre_hook(_flatten_input)
    head.register_forward_hook(_restore_shape)
    return model


def _flatten_input(module: Any, args: tuple) -> tuple:
    hidden = args[0]
    module._soar_leading_shape = hidden.shape[:-1]
    return (hidden.reshape(-1, hidden.shape[-1]).contiguous(), *args[1:])


def _restore_shape(module: Any, args: tuple, output: Any) -> Any:
    return output.reshape(*module._soar_leading_shape, output.shape[-1])


def decode_attention(module: Any, query: Any, key: Any, value: Any, attention_mask: Any, dropout: float = 0.0,
                     scaling: float | None = None, **kwargs: Any) -> tuple[Any, None]:
    """transformers' attention signature: query (B, H, q, D), key/value (B, KV, L, D), mask (B, 1, q, L)
    boolean (True: attend) or additive, or None; returns ((B, q, H, D), None)."""
    import torch
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    batch, heads, q_len, dim = query.shape
    kv_heads = key.shape[1]
    if q_len != 1 or query.device.type != "cpu" or dropout or kwargs.get("softcap") is not None \
            or kwargs.get("position_bias") is not None or heads % kv_heads:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    scale = dim ** -0.5 if scaling is None else scaling
    grouped = query.reshape(batch, kv_heads, heads // kv_heads, dim)  # the query heads that share a key/value head
    scores = torch.matmul(grouped, key.transpose(-1, -2)).float() * scale  # (B, KV, G, L)
    if attention_mask is not None:
        mask = attention_mask[:, :, -1:, : key.shape[2]]  # (B, 1, 1, L)
        scores = scores.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else scores + mask.float()
    probs = torch.softmax(scores, dim=-1).to(value.dtype)
    out = torch.matmul(probs, value)  # (B, KV, G, D)
    return out.reshape(batch, 1, heads, dim), None


def _use_decode_attention(model: Any) -> None:
    config = getattr(model, "config", None)
    if config is None or getattr(config, "_attn_implementation", None) != "sdpa":
        return
    try:
        from transformers import AttentionInterface
        from transformers.masking_utils import AttentionMaskInterface, sdpa_mask
    except ImportError:  # an older transformers: keep sdpa
        return
    AttentionInterface.register(ATTENTION, decode_attention)
    AttentionMaskInterface.register(ATTENTION, sdpa_mask)
    model.set_attn_implementation(ATTENTION)
