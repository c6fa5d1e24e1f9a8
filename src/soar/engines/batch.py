"""Decoding and batching primitives under every engine: the preallocated KV cache, prefill of shared prompt
prefixes, sampling, per-row results (:mod:`soar.engines.decoding`, :mod:`soar.engines.graphs`), the trainer's
``Rollouts`` and padding (:mod:`soar.engines.trainer`, :mod:`soar.engines.lora`), and which student adapter each
batch row runs (:class:`RowStudents`).  Its own floor so that the decoders and trainers import it and not each
other: see :mod:`soar.engines.decoding`'s docstring for why these are hand-written rather than
``model.generate``'s.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from transformers.cache_utils import Cache, DynamicCache, DynamicLayer

SHARED_PREFIX_MIN = 16
"""A common prefix shorter than this is not worth a separate forward pass."""

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


@dataclass
class Rollouts:
    """Sampled sequences with one advantage each (tokens as ids, not tensors)."""

    prompt_ids: list[list[int]]
    completion_ids: list[list[int]]
    advantages: list[float]
    completion_mask: list[list[int]] | None = None
    """1 where the policy sampled the token, 0 where it was forced (template text)."""


def pad_completions(r: Rollouts, index: Sequence[int], pad: int
                    ) -> tuple[int, list[list[int]], list[list[int]], list[list[int]]]:
    """Completions ``index`` of ``r`` right-padded to a common width C: ``(C, ids, attention, loss mask)``; the
    mask is 1 on sampled tokens (``completion_mask``, default all) and 0 on padding."""
    C = max(max(len(r.completion_ids[i]) for i in index), 1)
    ids, attention, mask = [], [], []
    for i in index:
        completion = r.completion_ids[i]
        forced = r.completion_mask[i] if r.completion_mask is not None else [1] * len(completion)
        ids.append(completion + [pad] * (C - len(completion)))
        attention.append([1] * len(completion) + [0] * (C - len(completion)))
        mask.append(list(forced) + [0] * (C - len(completion)))
    return C, ids, attention, mask


class RowStudents:
    """The student of every row of the batch being run; ``index`` None runs the base model (adapters off).

    ``blocks`` is worked out once per ``index`` (not once per layer): when the rows are consecutive students
    s0..s0+S-1 in order, ``c`` rows each (how the trainer lays out a batch, and the generator each chunk of
    one), every layer runs its adapters as one batched matmul over views of its stacked weights, with no
    per-row copy of them.  (Measured: a generation chunk of students 2-3 that took the per-row gather
    instead spent most of a probe's time there.)
    """

    def __init__(self) -> None:
        self._index: torch.Tensor | None = None
        self.blocks: tuple[int, int, int] | None = None
        """(s0, S, c): rows are students s0..s0+S-1, c consecutive rows each; None: rows in any order (gathered)."""

    @property
    def index(self) -> torch.Tensor | None:
        return self._index

    @index.setter
    def index(self, value: torch.Tensor | None) -> None:
        self._index, self.blocks = value, None
        if value is not None and value.numel():
            first = int(value[0])
            students = int(value[-1]) - first + 1
            if students >= 1 and value.numel() % students == 0:
                per = value.numel() // students
                expected = torch.arange(first, first + students, device=value.device).repeat_interleave(per)
                if torch.equal(value, expected):
                    self.blocks = (first, students, per)


def student_rows(model: Any) -> RowStudents | None:
    """The :class:`RowStudents` of a model with student adapters (None for a plain model)."""
    for module in model.modules():  # soar.engines.lora's StudentLoRALinear layers each hold the shared RowStudents
        rows = getattr(module, "rows", None)
        if isinstance(rows, RowStudents):
            return rows
    return None
