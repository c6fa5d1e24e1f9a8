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
    ignore_eos: bool = False
    """Keep sampling past EOS up to ``max_new_tokens`` (benchmarks: a fixed amount of work)."""


@dataclass
class Completion:
    prompt_index: int
    text: str
    token_ids: list[int]
    logprobs: list[float] = field(default_factory=list)
    finish_reason: str = "length"
    """``stop`` (EOS or a stop string) or ``length`` (hit max_new_tokens).

    ``text`` ends at the first stop string; ``token_ids`` keep the whole token that
    contained it (a stop ``}`` can sit inside a ``}}`` token), so code that needs
    text and ids to agree decodes ``token_ids`` itself (see ``soar.loops.teacher``)."""


class Generator(Protocol):
    def generate(self, prompts: list[str], n: int, sampling: SamplingParams) -> list[list[Completion]]: ...

    def generate_tokens(self, prompt_ids: list[list[int]], n: int, sampling: SamplingParams) -> list[list[Completion]]: ...


class HFGenerator:
    """A transformers model sampled by :func:`soar.engines.decoding.decode`.

    Jobs (prompt, sample) are sorted by prompt length and cut into batches of
    ``batch_size`` rows; in each batch every distinct prompt is prefilled once.
    Greedy decoding runs one row per prompt and copies it ``n`` times.

    ``compute_dtype`` (mixed precision, e.g. bf16 over fp32 weights): sampling
    runs on a copy of ``model`` cast to it, whose weights are refreshed from
    ``model`` at the start of every call (a trainer may have changed them; 25 ms
    for 135M parameters), so samples always come from the current policy.  A
    copy beats autocast here: autocast re-casts every weight at every decoded
    token.  Only parameters are cast; buffers such as the RoPE frequencies keep
    their precision.  Unlike autocast, the copy also runs embeddings, norms and
    the residual stream in ``compute_dtype``: sampling is slightly off the
    trainer's policy (its log-probs are never used in the loss; the trainer
    scores every sample itself).
    """

    def __init__(self, model: Any, tokenizer: Any, batch_size: int = 64, compute_dtype: Any = None) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self._cast = None
        if compute_dtype is not None and compute_dtype != next(model.parameters()).dtype:
            import copy

            self._cast = copy.deepcopy(model).eval().requires_grad_(False)
            for param in self._cast.parameters():  # parameters only: buffers (RoPE frequencies) keep their precision
                param.data, param.grad = param.data.to(compute_dtype), None

    def _sampling_model(self) -> Any:
        """The model to sample from: ``model`` itself, or its cast copy brought up to date."""
        if self._cast is None:
            return self.model
        import torch

        with torch.no_grad():
            for copy_, param in zip(self._cast.parameters(), self.model.parameters(), strict=True):
                copy_.copy_(param)
        return self._cast

    def generate(self, prompts: list[str], n: int, sampling: SamplingParams) -> list[list[Completion]]:
        encoded = [self.tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
        return self.generate_tokens(encoded, n, sampling)

    def generate_tokens(self, prompt_ids: list[list[int]], n: int, sampling: SamplingParams) -> list[list[Completion]]:
        """:meth:`generate` on prompts given as token ids (exactly the context the trainer will see)."""
        import torch

        greedy = sampling.greedy or sampling.temperature == 0
        draws = 1 if greedy else n
        jobs = sorted(((i, s) for i in range(len(prompt_ids)) for s in range(draws)), key=lambda job: (len(prompt_ids[job[0]]), prompt_ids[job[0]]))
        out: list[list[Completion]] = [[] for _ in prompt_ids]
        device = next(self.model.parameters()).device
        rng = torch.Generator(device=device).manual_seed(sampling.seed) if sampling.seed is not None else None
        model = self._sampling_model()
        was_training = model.training
        model.eval()
        try:
            for start in range(0, len(jobs), self.batch_size):
                chunk = [index for index, _ in jobs[start:start + self.batch_size]]
                distinct: dict[tuple[int, ...], int] = {}  # identical prompts are prefilled once
                rows = [distinct.setdefault(tuple(prompt_ids[i]), len(distinct)) for i in chunk]
                batch = self._batch(model, [list(p) for p in distinct], rows, sampling, greedy, rng)
                for index, completion in zip(chunk, batch):
                    completion.prompt_index = index
                    out[index].extend([_copy(completion) for _ in range(n)] if greedy else [completion])
        finally:
            if was_training:
                model.train()
        return out

    def _batch(self, model: Any, prompt_ids: list[list[int]], rows: list[int], sampling: SamplingParams, greedy: bool,
               rng: Any) -> list[Completion]:
        from soar.engines.decoding import decode

        tok = self.tokenizer
        decoded = decode(model, tok, prompt_ids, rows, max_new_tokens=sampling.max_new_tokens,
                         temperature=sampling.temperature, top_p=sampling.top_p, greedy=greedy,
                         stop=tuple(sampling.stop), eos_ids=set() if sampling.ignore_eos else set(_eos_ids(model, tok)), pad_id=tok.pad_token_id,
                         rng=rng)
        completions = []
        for d in decoded:
            text = tok.decode(d.token_ids, skip_special_tokens=True)
            for stop in sampling.stop:
                cut = text.find(stop)
                if cut >= 0:
                    text = text[: cut + len(stop)]
            completions.append(Completion(-1, text, d.token_ids, d.logprobs, "stop" if d.stopped else "length"))
        return completions


def _copy(c: Completion) -> Completion:
    return Completion(c.prompt_index, c.text, list(c.token_ids), list(c.logprobs), c.finish_reason)


def _eos_ids(model: Any, tokenizer: Any) -> list[int]:
    ids = model.generation_config.eos_token_id if getattr(model, "generation_config", None) else None
    ids = list(ids) if isinstance(ids, list) else [ids] if ids is not None else []  # never the config's own list
    if tokenizer.eos_token_id is not None:
        ids.append(tokenizer.eos_token_id)
    return [i for i in ids if i is not None]


def build_generator(compute: Any, model: Any, tokenizer: Any, model_path: str | None = None,
                    compute_dtype: Any = None) -> Generator:
    """The generator ``compute.generator`` names, over ``model`` (``hf``) or ``model_path`` (``vllm``);
    ``compute_dtype``: see :class:`HFGenerator` (:func:`soar.engines.models.compute_dtype` resolves it)."""
    if compute.generator == "vllm":
        from soar.engines.vllm_generator import VLLMGenerator

        return VLLMGenerator(model_path or model.name_or_path, gpu_memory_utilization=compute.vllm_gpu_memory_utilization,
                             seed=compute.seed)
    return HFGenerator(model, tokenizer, batch_size=compute.generation_batch_size, compute_dtype=compute_dtype)
