"""A lean sampling loop for transformers causal LMs (what ``HFGenerator`` runs).

Why by hand rather than ``model.generate``: profiled on SmolLM2-135M, batch
128, 2-core CPU, ``generate`` spent 37% of its time growing the KV cache with
``torch.cat`` (the whole cache is copied every token), 19% drawing 49k
exponentials per row inside ``torch.multinomial``, re-ran the prompt prefill
once per sample although SOAR draws 8-32 samples of each prompt, and kept
finished rows in the batch.  This loop keeps the model's own forward pass and
attention kernels and changes only those four things:

* a preallocated KV cache (a ``DynamicLayer`` whose ``update`` writes into a
  buffer sized prompt + max_new_tokens and returns views);
* each distinct prompt is prefilled once and its cache rows are repeated for
  its samples, and a prefix that every prompt of the batch shares (the chat
  template's system turn and the student prompt's instructions: 109 of the
  126 tokens of a ``tiny`` student prompt) is prefilled once for all of them
  (:func:`prefill`, also used by the trainer);
* sampling by inverse CDF (one uniform per row, ``searchsorted`` on the
  cumulative probabilities), exact for the same distribution; top-p by sorting;
* finished rows (EOS or a stop string) are dropped from the batch once half of
  them are done.

Log-probs are those of the sampled token under the unmodified (temperature-1)
policy, as the trainer computes them, so they can be compared directly.
"""

from __future__ import annotations

from typing import Any

import torch

from soar.engines.batch import BufferCache, Decoded, cache_kwarg, prefill, record_step, sample_next, student_rows


@torch.inference_mode()
def decode(model: Any, tokenizer: Any, prompts: list[list[int]], rows: list[int], *, max_new_tokens: int,
           temperature: float, top_p: float, greedy: bool, stop: tuple[str, ...], eos_ids: set[int],
           pad_id: int, rng: torch.Generator | None, students: list[int] | None = None,
           cuda_graphs: bool = False) -> list[Decoded]:
    """Sample one continuation per entry of ``rows`` (an index into ``prompts``); ``students[i]``: the student
    adapter prompt ``i`` runs through (a model with ``soar.engines.lora`` adapters), None for a plain model.
    ``cuda_graphs``: a plain Llama-architecture model on CUDA decodes with :mod:`soar.engines.graphs`."""
    from soar.engines import graphs

    holder = student_rows(model) if students is not None else None
    if (holder is None and cuda_graphs and next(model.parameters()).device.type == "cuda"
            and graphs.supports(model)):
        return graphs.decode_static(model, tokenizer, prompts, rows, max_new_tokens=max_new_tokens,
                                    temperature=temperature, top_p=top_p, greedy=greedy, stop=stop, eos_ids=eos_ids,
                                    pad_id=pad_id, rng=rng)
    if holder is None:
        return _decode(model, tokenizer, prompts, rows, max_new_tokens, temperature, top_p, greedy, stop, eos_ids,
                       pad_id, rng, None, None)
    previous = holder.index
    try:
        return _decode(model, tokenizer, prompts, rows, max_new_tokens, temperature, top_p, greedy, stop, eos_ids,
                       pad_id, rng, students, holder)
    finally:
        holder.index = previous


def _decode(model: Any, tokenizer: Any, prompts: list[list[int]], rows: list[int], max_new_tokens: int,
            temperature: float, top_p: float, greedy: bool, stop: tuple[str, ...], eos_ids: set[int], pad_id: int,
            rng: torch.Generator | None, students: list[int] | None, holder: Any) -> list[Decoded]:
    device = next(model.parameters()).device
    capacity = max(len(p) for p in prompts) + max_new_tokens  # >= the prefilled width, shared prefix or not
    cache = BufferCache(model.config.get_text_config().num_hidden_layers, capacity)
    kw = cache_kwarg(model)
    first = prefill(model, prompts, cache, pad_id, device, students, holder)  # each distinct prompt once, a shared prefix once
    width = first.attention.shape[1]
    mask = torch.zeros(len(prompts), capacity, dtype=torch.long, device=device)
    mask[:, :width] = first.attention
    select = torch.tensor(rows, device=device)
    cache.batch_select_indices(select)
    if holder is not None:
        holder.index = torch.tensor(students, device=device)[select]
    logits, mask, position = first.logits[:, -1][select], mask[select], first.positions[:, -1][select]
    del first

    results = [Decoded([], [], False) for _ in rows]
    alive = list(range(len(rows)))  # result index of each batch row
    tail = max((len(s) for s in stop), default=0) + 2
    length = width
    for step in range(max_new_tokens):
        tokens, logprobs = sample_next(logits, temperature, top_p, greedy, rng)
        keep = record_step(results, alive, tokens.tolist(), logprobs.tolist(), eos_ids, stop, tokenizer, tail)
        if not keep or step == max_new_tokens - 1:
            break
        if len(keep) <= len(alive) // 2:  # drop finished rows
            index = torch.tensor(keep, device=device)
            cache.batch_select_indices(index)
            tokens, mask, position = tokens[index], mask[index], position[index]
            alive = [alive[row] for row in keep]
            if holder is not None:
                holder.index = holder.index[index]
        mask[:, length] = 1
        length += 1
        position = position + 1
        out = model(input_ids=tokens[:, None], attention_mask=mask[:, :length], position_ids=position[:, None],
                    **{kw: cache}, use_cache=True)
        logits = out.logits[:, -1]
    return results


