"""Decoding on CUDA with a static KV cache and CUDA graphs (Llama-architecture models).

Why: on an H200 (``docs/gpu``) the eager loop of :mod:`soar.engines.decoding`
took ~64 ms a token for 256 rows of a 3B model at any context length: the
GPU's work per token is a few ms (the bf16 weights once, the KV cache once),
the rest is Python and the launch of ~450 small kernels per token.  A CUDA
graph replays a whole decoding step in one launch.  The alternatives, chosen
against: ``transformers.generate`` with a static cache and ``torch.compile``
(``reduce-overhead``) compiles for minutes per shape, and every SOAR call has
a new prompt length; vLLM does this best but cannot run on the machines soar is
tested on (it stays behind the ``Generator`` contract, ``compute.generator:
vllm``).

What is written here and what is not: the model's own modules run the step
(embedding, RMSNorm, rotary embedding, q/k/v/o projections, MLP, final norm,
``lm_head``), called as they are on the sampling copy of the weights (so a
weight refresh in place reaches the graphs); only the attention over the cache
is new, because transformers' mask construction inspects tensor values (a host
sync, which cannot be captured):

* the prompt is prefilled by the eager path (:func:`soar.engines.batch.prefill`,
  shared prefix once) into a preallocated buffer of ``rows x (prompt +
  max_new_tokens)`` positions, which then *is* the static cache;
* one step writes the new key/value at column ``length`` (a device tensor, so
  the graph is reused as the column moves) and attends over the first ``L``
  columns, ``L`` rounded up to :data:`LENGTH_BUCKET`, with a boolean mask
  (padding between a shared prefix and a shorter suffix, and columns not yet
  written, are off).  Grouped-query attention folds the query heads of a
  key/value head into the query-length axis of ``scaled_dot_product_attention``
  (no ``repeat_kv`` copy of the cache);
* a graph is captured per (rows, ``L``) the first time it is needed, all in one
  memory pool; when finished rows are dropped (half of them done, as in the
  eager loop) the live rows move to the front of the same buffers and the
  smaller row count gets its graphs;
* sampling (:func:`soar.engines.batch.sample_next`) runs eagerly between
  replays, and the sampled tokens travel to the host while the next step's
  graph already runs (the host's bookkeeping overlaps the GPU's step; a row
  that finished decodes one step more, discarded).

Sampled continuations follow the same distribution as the eager loop (greedy
ones are the same tokens up to rounding; tested on CPU against it, where the
same step runs without graphs), but not the same random draws.  Used for plain
(non-PEFT, no student adapters) Llama-architecture models on CUDA unless
``compute.cuda_graphs`` is false; everything else keeps the eager loop.
"""

from __future__ import annotations

from typing import Any

import torch

LENGTH_BUCKET = 256
"""Attention covers the written columns rounded up to this many (fewer graphs; at most this many columns wasted)."""


def supports(model: Any) -> bool:
    """Whether :func:`decode_static` can run ``model``: a plain transformers Llama-architecture causal LM (not
    PEFT-wrapped) whose RoPE frequencies do not depend on the sequence (default, ``linear``, ``llama3``)."""
    config = getattr(model, "config", None)
    inner = getattr(model, "model", None)
    if getattr(config, "model_type", None) != "llama" or hasattr(model, "peft_config"):
        return False
    if not (hasattr(inner, "layers") and hasattr(inner, "rotary_emb") and hasattr(inner, "embed_tokens")):
        return False
    rope = getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None) or {}
    return rope.get("rope_type", rope.get("type", "default")) in ("default", "linear", "llama3")


class StaticStep:
    """One decoding step of ``model`` over a static cache: ``run(rows, columns)`` reads ``tokens``, ``positions``,
    ``column`` and ``mask`` and writes ``logits``; with ``graphs``, each (rows, columns) is captured once and
    replayed."""

    def __init__(self, model: Any, keys: list[torch.Tensor], values: list[torch.Tensor], mask: torch.Tensor,
                 graphs: bool) -> None:
        self.model, self.keys, self.values, self.mask = model, keys, values, mask
        self.inner = model.model
        rows = keys[0].shape[0]
        device = keys[0].device
        self.tokens = torch.zeros(rows, dtype=torch.long, device=device)
        self.positions = torch.zeros(rows, dtype=torch.long, device=device)
        self.column = torch.zeros(1, dtype=torch.long, device=device)
        self.logits = torch.empty(rows, model.config.vocab_size, dtype=torch.float32, device=device)
        self.graphs = graphs
        self._captured: dict[tuple[int, int], torch.cuda.CUDAGraph] = {}
        self._pool = torch.cuda.graph_pool_handle() if graphs else None

    def run(self, rows: int, columns: int) -> None:
        if not self.graphs:
            self._forward(rows, columns)
            return
        graph = self._captured.get((rows, columns))
        if graph is None:
            graph = self._capture(rows, columns)
        graph.replay()

    def _capture(self, rows: int, columns: int) -> torch.cuda.CUDAGraph:
        # Warm-up on a side stream (cuBLAS workspaces, lazy inits), then capture.  Both execute or record the very
        # step about to run with the inputs already in place, so what they write is what the replay writes.
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            self._forward(rows, columns)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self._pool):
            self._forward(rows, columns)
        self._captured[(rows, columns)] = graph
        return graph

    def drop_rows(self, keep: torch.Tensor) -> None:
        """Move rows ``keep`` to the front of every static buffer (in place: the captured addresses stay valid)."""
        n = keep.shape[0]
        for buffer in (*self.keys, *self.values, self.mask, self.tokens, self.positions, self.logits):
            buffer[:n] = buffer[keep]

    def _forward(self, rows: int, columns: int) -> None:
        inner = self.inner
        ids, positions = self.tokens[:rows, None], self.positions[:rows, None]
        hidden = inner.embed_tokens(ids)  # (rows, 1, hidden)
        cos, sin = inner.rotary_emb(hidden, positions)  # (rows, 1, head_dim)
        cos, sin = cos[:, None], sin[:, None]
        visible = self.mask[:rows, None, None, :columns]  # (rows, 1, 1, columns)
        for index, layer in enumerate(inner.layers):
            attention = layer.self_attn
            head_dim = attention.head_dim
            normed = layer.input_layernorm(hidden)
            q = attention.q_proj(normed).view(rows, -1, 1, head_dim)
            k = attention.k_proj(normed).view(rows, -1, 1, head_dim)
            v = attention.v_proj(normed).view(rows, -1, 1, head_dim)
            q = q * cos + _rotate_half(q) * sin
            k = k * cos + _rotate_half(k) * sin
            cache_k, cache_v = self.keys[index][:rows], self.values[index][:rows]
            cache_k.index_copy_(2, self.column, k.to(cache_k.dtype))
            cache_v.index_copy_(2, self.column, v.to(cache_v.dtype))
            kv_heads = cache_k.shape[1]
            grouped = q.view(rows, kv_heads, -1, head_dim)  # query head h reads key/value head h // groups
            out = torch.nn.functional.scaled_dot_product_attention(
                grouped, cache_k[:, :, :columns], cache_v[:, :, :columns], attn_mask=visible,
                scale=attention.scaling)
            out = out.reshape(rows, 1, -1)
            hidden = hidden + attention.o_proj(out)
            hidden = hidden + layer.mlp(layer.post_attention_layernorm(hidden))
        hidden = inner.norm(hidden)
        self.logits[:rows].copy_(self.model.lm_head(hidden[:, 0]))


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def _bucket(length: int, capacity: int) -> int:
    return min(capacity, -(-length // LENGTH_BUCKET) * LENGTH_BUCKET)


@torch.inference_mode()
def decode_static(model: Any, tokenizer: Any, prompts: list[list[int]], rows: list[int], *, max_new_tokens: int,
                  temperature: float, top_p: float, greedy: bool, stop: tuple[str, ...], eos_ids: set[int],
                  pad_id: int, rng: torch.Generator | None, graphs: bool = True) -> list[Any]:
    """:func:`soar.engines.decoding.decode` for a plain model (:func:`supports`), the step replayed as a CUDA graph
    (``graphs=False``: the same static step run eagerly, e.g. on CPU, for tests)."""
    from soar.engines.batch import BufferCache, Decoded, prefill, record_step, sample_next

    device = next(model.parameters()).device
    capacity = max(len(p) for p in prompts) + max_new_tokens
    cache = BufferCache(model.config.num_hidden_layers, capacity)
    first = prefill(model, prompts, cache, pad_id, device)
    width = first.attention.shape[1]
    select = torch.tensor(rows, device=device)
    cache.batch_select_indices(select)
    mask = torch.zeros(len(rows), capacity, dtype=torch.bool, device=device)
    mask[:, :width] = first.attention[select].bool()
    keys = [layer.key_buffer for layer in cache.layers]
    values = [layer.value_buffer for layer in cache.layers]
    for buffer in (*keys, *values):  # unwritten columns are masked, but a masked NaN still poisons probs @ values
        buffer[:, :, width:].zero_()
    step = StaticStep(model, keys, values, mask, graphs and device.type == "cuda")
    step.positions.copy_(first.positions[:, -1][select])
    logits = first.logits[:, -1][select].float()
    del first, cache

    results = [Decoded([], [], False) for _ in rows]
    alive = list(range(len(rows)))  # result index of each live batch row
    tail = max((len(s) for s in stop), default=0) + 2
    length = width
    pinned = device.type == "cuda"
    host_tokens = torch.empty(len(rows), dtype=torch.long, pin_memory=pinned)
    host_logprobs = torch.empty(len(rows), dtype=torch.float32, pin_memory=pinned)
    copied = torch.cuda.Event() if pinned else None
    for index in range(max_new_tokens):
        n = len(alive)
        tokens, logprobs = sample_next(logits[:n], temperature, top_p, greedy, rng)
        host_tokens[:n].copy_(tokens, non_blocking=pinned)
        host_logprobs[:n].copy_(logprobs, non_blocking=pinned)
        if copied is not None:
            copied.record()
        last = index == max_new_tokens - 1
        if not last:  # the next step starts on the GPU before the host looks at this one's tokens
            step.tokens[:n].copy_(tokens)
            step.positions[:n] += 1
            step.mask[:n, length] = True
            step.column.fill_(length)
            length += 1
            step.run(n, _bucket(length, capacity))
            logits = step.logits
        if copied is not None:
            copied.synchronize()
        keep = record_step(results, alive, host_tokens[:n].tolist(), host_logprobs[:n].tolist(), eos_ids, stop,
                           tokenizer, tail)
        if not keep or last:
            break
        if len(keep) <= n // 2:  # live rows to the front; the step already run for the others is discarded
            step.drop_rows(torch.tensor(keep, device=device))
            alive = [alive[row] for row in keep]
    return results
