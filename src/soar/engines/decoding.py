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

import functools
import inspect
from dataclasses import dataclass
from typing import Any

import torch
from transformers.cache_utils import Cache, DynamicCache, DynamicLayer


class _BufferLayer(DynamicLayer):
    """A cache layer with a fixed-size buffer: ``update`` writes in place, no concatenation."""

    def __init__(self, capacity: int) -> None:
        super().__init__()
        self.capacity = capacity
        self.length = 0

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        self.dtype, self.device = key_states.dtype, key_states.device
        b, h, _, d = key_states.shape
        self.key_buffer = key_states.new_empty(b, h, self.capacity, d)
        self.value_buffer = value_states.new_empty(b, value_states.shape[1], self.capacity, value_states.shape[3])
        self.is_initialized = True

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        end = self.length + key_states.shape[-2]
        if end > self.capacity:
            raise RuntimeError(f"KV buffer full: {end} > {self.capacity} positions")
        self.key_buffer[:, :, self.length:end] = key_states
        self.value_buffer[:, :, self.length:end] = value_states
        self.length = end
        self.keys, self.values = self.key_buffer[:, :, :end], self.value_buffer[:, :, :end]
        return self.keys, self.values

    def get_seq_length(self) -> int:
        return self.length

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        if self.is_initialized:
            self.key_buffer, self.value_buffer = self.key_buffer[indices], self.value_buffer[indices]
            self.keys, self.values = self.key_buffer[:, :, :self.length], self.value_buffer[:, :, :self.length]


class BufferCache(DynamicCache):
    def __init__(self, num_layers: int, capacity: int) -> None:  # noqa: D107 - skip DynamicCache's own init
        Cache.__init__(self, layers=[_BufferLayer(capacity) for _ in range(num_layers)])


def sample_next(logits: torch.Tensor, temperature: float, top_p: float, greedy: bool,
                rng: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(tokens, logprobs)`` for one step: ``logits`` (rows, vocab), float32.

    ``logprobs`` are under the raw logits (temperature 1), whatever the sampling temperature.
    """
    logits = logits.float()
    log_norm = torch.logsumexp(logits, dim=-1)
    if greedy or temperature <= 0:
        tokens = logits.argmax(dim=-1)
    else:
        scaled = logits / temperature if temperature != 1.0 else logits
        probs = torch.softmax(scaled, dim=-1)
        order = None
        if top_p < 1.0:
            probs, order = probs.sort(dim=-1, descending=True)
            mass_before = probs.cumsum(dim=-1) - probs
            probs = probs.masked_fill(mass_before >= top_p, 0.0)  # keep the smallest prefix with mass >= top_p
        cdf = probs.double().cumsum(dim=-1)  # float64: no tail token lost to rounding over a 49k vocabulary
        u = torch.rand(cdf.shape[0], 1, generator=rng, device=cdf.device, dtype=torch.float32).double() * cdf[:, -1:]
        tokens = torch.searchsorted(cdf, u, right=True).squeeze(1).clamp_(max=cdf.shape[1] - 1)
        if order is not None:
            tokens = order.gather(1, tokens[:, None]).squeeze(1)
    logprobs = logits.gather(1, tokens[:, None]).squeeze(1) - log_norm
    return tokens, logprobs


@functools.cache
def _cache_name(model_class: type) -> str:
    params = inspect.signature(model_class.forward).parameters
    return "cache" if "cache" in params else "past_key_values"  # transformers >= 5.2x renamed it


def cache_kwarg(model: Any) -> str:
    """The forward keyword for a KV cache: ``cache`` (newer transformers) or ``past_key_values``."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model  # a PEFT wrapper passes it through
    return _cache_name(type(base))


SHARED_PREFIX_MIN = 16
"""A common prefix shorter than this is not worth a separate forward pass."""


@dataclass
class Prefilled:
    logits: torch.Tensor
    """(prompts, 1, vocab): the logits after each prompt's last token."""
    attention: torch.Tensor
    """(prompts, width): 1 on prompt tokens, 0 on padding (between the shared prefix and a shorter suffix)."""
    positions: torch.Tensor
    """(prompts, width): position ids (0 from each prompt's first real token)."""


def prefill(model: Any, prompts: list[list[int]], cache: Any, pad_id: int, device: Any,
            students: list[int] | None = None, rows: Any = None) -> Prefilled:
    """Run ``prompts`` through ``model`` into ``cache``, sharing the prefix they all have in common.

    With two or more prompts sharing at least :data:`SHARED_PREFIX_MIN` tokens,
    the prefix runs once (one row), its cache is repeated for every prompt,
    and the remaining suffixes run on top of it, left-padded so that they all
    end in the last column (the padding sits between prefix and suffix,
    masked out, with positions counted over real tokens only).  Otherwise the
    prompts run left-padded in one pass.  Either way the result is the same
    computation as running each prompt alone; gradients flow through the
    shared prefix when called outside ``no_grad``.

    Student adapters (``soar.engines.lora``): ``rows`` is the model's
    ``RowStudents`` and ``students[i]`` the student of prompt ``i``; the shared
    prefix then runs once per distinct student (their adapters differ), and
    ``rows.index`` is set for every call (``students`` None: adapters off) and
    put back afterwards.
    """
    shared = 0
    if len(prompts) > 1:
        shortest = min(len(p) for p in prompts)
        while shared < shortest - 1 and all(p[shared] == prompts[0][shared] for p in prompts):
            shared += 1  # the last token of every prompt stays in its suffix (its logits are needed)
        if shared < SHARED_PREFIX_MIN:
            shared = 0
    kw = cache_kwarg(model)
    previous = rows.index if rows is not None else None
    try:
        if shared:
            heads = sorted(set(students)) if students is not None else [0]
            head = torch.tensor([prompts[0][:shared]] * len(heads), device=device)
            if rows is not None:
                rows.index = torch.tensor(heads, device=device) if students is not None else None
            model(input_ids=head, attention_mask=torch.ones_like(head),
                  position_ids=torch.arange(shared, device=device)[None].expand(len(heads), -1),
                  **{kw: cache}, use_cache=True, logits_to_keep=1)
            spread = [heads.index(s) for s in students] if students is not None else [0] * len(prompts)
            cache.batch_select_indices(torch.tensor(spread, dtype=torch.long, device=device))
        if rows is not None:
            rows.index = torch.tensor(students, device=device) if students is not None else None
        return _prefill_suffixes(model, prompts, shared, cache, pad_id, device, kw)
    finally:
        if rows is not None:
            rows.index = previous


def _prefill_suffixes(model: Any, prompts: list[list[int]], shared: int, cache: Any, pad_id: int, device: Any,
                      kw: str) -> Prefilled:
    suffixes = [p[shared:] for p in prompts]
    width = max(len(s) for s in suffixes)
    ids = torch.tensor([[pad_id] * (width - len(s)) + s for s in suffixes], device=device)
    suffix_attention = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in suffixes], device=device)
    attention = torch.cat([torch.ones(len(prompts), shared, dtype=torch.long, device=device), suffix_attention], dim=1)
    positions = (attention.cumsum(dim=1) - 1).clamp(min=0)
    out = model(input_ids=ids, attention_mask=attention, position_ids=positions[:, shared:], **{kw: cache},
                use_cache=True, logits_to_keep=1)
    return Prefilled(out.logits, attention, positions)


@dataclass
class Decoded:
    token_ids: list[int]
    logprobs: list[float]
    stopped: bool


@torch.inference_mode()
def decode(model: Any, tokenizer: Any, prompts: list[list[int]], rows: list[int], *, max_new_tokens: int,
           temperature: float, top_p: float, greedy: bool, stop: tuple[str, ...], eos_ids: set[int],
           pad_id: int, rng: torch.Generator | None, students: list[int] | None = None,
           cuda_graphs: bool = False) -> list[Decoded]:
    """Sample one continuation per entry of ``rows`` (an index into ``prompts``); ``students[i]``: the student
    adapter prompt ``i`` runs through (a model with ``soar.engines.lora`` adapters), None for a plain model.
    ``cuda_graphs``: a plain Llama-architecture model on CUDA decodes with :mod:`soar.engines.graphs`."""
    from soar.engines import graphs
    from soar.engines.lora import student_rows

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


def record_step(results: list[Decoded], alive: list[int], tokens: list[int], logprobs: list[float], eos_ids: set[int],
                stop: tuple[str, ...], tokenizer: Any, tail: int) -> list[int]:
    """Append one step's token and log-prob to the result of each batch row (``alive[row]``: its result), mark the
    rows that end (EOS or a stop string); returns the rows still going.  A row that finished earlier and is still
    in the batch (until the next compaction) is skipped."""
    keep = []
    for row, (token, logprob) in enumerate(zip(tokens, logprobs)):
        result = results[alive[row]]
        if result.stopped:
            continue
        result.token_ids.append(token)
        result.logprobs.append(logprob)
        if token in eos_ids or (stop and _hits_stop(tokenizer, result.token_ids[-tail:], stop)):
            result.stopped = True
        else:
            keep.append(row)
    return keep


def _hits_stop(tokenizer: Any, tail_ids: list[int], stop: tuple[str, ...]) -> bool:
    text = tokenizer.decode(tail_ids, skip_special_tokens=True)
    return any(s in text for s in stop)
