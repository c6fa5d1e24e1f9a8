"""Generation behind one small interface, and its transformers implementation.

``Generator.generate(prompts, n, sampling)`` returns, for every prompt, ``n``
:class:`Completion` records (text, generated token ids, per-token log-probs
under the unmodified policy, i.e. temperature 1).  Implementations: ``hf``
(here: transformers with KV cache, left padding, batching by prompt length) and
``vllm`` (optional extra).  Prompts are already rendered (chat template applied).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 256
    stop: tuple[str, ...] = ()
    """Generation of a sequence ends after any of these strings (kept in the text)."""
    greedy: bool = False
    seed: int | None = None


@dataclass
class Completion:
    prompt_index: int
    text: str
    token_ids: list[int]
    logprobs: list[float] = field(default_factory=list)
    finish_reason: str = "length"
    """``stop`` (EOS or a stop string) or ``length`` (hit max_new_tokens)."""


class Generator(Protocol):
    def generate(self, prompts: list[str], n: int, sampling: SamplingParams) -> list[list[Completion]]: ...


class HFGenerator:
    """transformers ``generate`` with a KV cache, left padding and length-sorted batches."""

    def __init__(self, model: Any, tokenizer: Any, batch_size: int = 32) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size

    def generate(self, prompts: list[str], n: int, sampling: SamplingParams) -> list[list[Completion]]:
        import torch

        encoded = [self.tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
        jobs = sorted(((i, s) for i in range(len(prompts)) for s in range(n)), key=lambda job: len(encoded[job[0]]))
        out: list[list[Completion]] = [[] for _ in prompts]
        if sampling.seed is not None:
            torch.manual_seed(sampling.seed)
        for start in range(0, len(jobs), self.batch_size):
            chunk = jobs[start:start + self.batch_size]
            for (index, _), completion in zip(chunk, self._batch([encoded[i] for i, _ in chunk], sampling)):
                completion.prompt_index = index
                out[index].append(completion)
        return out

    def _batch(self, prompt_ids: list[list[int]], sampling: SamplingParams) -> list[Completion]:
        import torch

        from soar.algo.losses import token_logprobs

        tok = self.tokenizer
        width = max(len(ids) for ids in prompt_ids)
        pad = tok.pad_token_id
        input_ids = torch.tensor([[pad] * (width - len(ids)) + ids for ids in prompt_ids], device=self.model.device)
        attention = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in prompt_ids], device=self.model.device)
        kwargs: dict[str, Any] = dict(
            max_new_tokens=sampling.max_new_tokens,
            pad_token_id=pad,
            return_dict_in_generate=True,
            output_logits=True,
        )
        if sampling.greedy or sampling.temperature == 0:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        else:
            kwargs.update(do_sample=True, temperature=sampling.temperature, top_p=sampling.top_p, top_k=0)
        if sampling.stop:
            kwargs.update(stop_strings=list(sampling.stop), tokenizer=tok)
        was_training = self.model.training
        self.model.eval()
        with torch.no_grad():
            result = self.model.generate(input_ids=input_ids, attention_mask=attention, **kwargs)
        if was_training:
            self.model.train()
        new_tokens = result.sequences[:, width:]
        logprobs = token_logprobs(torch.stack(result.logits, dim=1), new_tokens)  # unprocessed logits
        eos = set(_eos_ids(self.model, tok))
        completions = []
        for row, row_logprobs in zip(new_tokens.tolist(), logprobs.tolist()):
            length, reason = len(row), "length"
            for t, token in enumerate(row):
                if token in eos:
                    length, reason = t + 1, "stop"
                    break
            else:  # a row that a stop string ended is padded up to the batch's longest row
                while sampling.stop and length and row[length - 1] == tok.pad_token_id:
                    length -= 1
            ids = row[:length]
            text = tok.decode(ids, skip_special_tokens=True)
            for stop in sampling.stop:
                cut = text.find(stop)
                if cut >= 0:
                    text, reason = text[: cut + len(stop)], "stop"
            completions.append(Completion(-1, text, ids, row_logprobs[:length], reason))
        return completions


def _eos_ids(model: Any, tokenizer: Any) -> list[int]:
    ids = model.generation_config.eos_token_id if getattr(model, "generation_config", None) else None
    ids = list(ids) if isinstance(ids, list) else [ids] if ids is not None else []  # never the config's own list
    if tokenizer.eos_token_id is not None:
        ids.append(tokenizer.eos_token_id)
    return [i for i in ids if i is not None]
