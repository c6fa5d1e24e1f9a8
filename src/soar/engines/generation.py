"""The transformers implementation of the :class:`~soar.engines.base.Generator` contract, and the one place
that builds a generator from config.

Implementations: ``hf`` (here: transformers with KV cache, left padding,
batching by prompt length) and ``vllm`` (optional extra,
``soar.engines.vllm_generator``).  Prompts are already rendered (chat template
applied).  The contract's types live in ``soar.engines.base`` and are
re-exported here.
"""

from __future__ import annotations

from typing import Any

from soar.engines.base import Completion, Generator, SamplingParams, WeightUpdate

__all__ = ["Completion", "Generator", "HFGenerator", "SamplingParams", "WeightUpdate", "build_generator", "hf_generator",
           "trainer_generator"]


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

    def __init__(self, model: Any, tokenizer: Any, batch_size: int = 64, compute_dtype: Any = None,
                 cuda_graphs: bool = True) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.cuda_graphs = cuda_graphs
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

    def sleep(self) -> None:
        """Nothing to free: the generator samples from the trainer's own module."""

    def wake(self) -> None:
        """Nothing to restore (see :meth:`sleep`)."""

    def update_weights(self, update: WeightUpdate) -> None:
        """Copy ``update``'s tensors into the sampled module by name (full weights, or the PEFT adapter of a
        PEFT-wrapped module); a tensor that already is the module's parameter (a trainer sharing the module)
        is skipped.  Every name must exist with its shape."""
        import torch

        from soar.errors import SoarError

        params = dict(self.model.named_parameters())
        unknown = sorted(n for n, t in update.tensors.items() if n not in params or params[n].shape != t.shape)
        if unknown:
            raise SoarError(f"weight update does not fit this model: {len(unknown)} names unknown or of another "
                            f"shape, e.g. {unknown[:2]}")
        with torch.no_grad():
            for name, tensor in update.tensors.items():
                if params[name] is not tensor:
                    params[name].copy_(tensor)

    def generate(self, prompts: list[str], n: int, sampling: SamplingParams) -> list[list[Completion]]:
        encoded = [self.tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
        return self.generate_tokens(encoded, n, sampling)

    def generate_tokens(self, prompt_ids: list[list[int]], n: int, sampling: SamplingParams,
                        students: list[int] | None = None) -> list[list[Completion]]:
        """:meth:`generate` on prompts given as token ids (exactly the context the trainer will see).

        ``students[i]``: the student adapter prompt ``i`` is sampled through, for a model with
        ``soar.engines.lora`` adapters (many students in one batch); None for a plain model."""
        import torch

        greedy = sampling.greedy or sampling.temperature == 0
        draws = 1 if greedy else n
        owner = students if students is not None else [0] * len(prompt_ids)
        # by length (little padding); with students, by student first, so a batch's rows come in blocks of one
        # student each (the adapters then run as one batched matmul; soar.engines.lora.RowStudents)
        jobs = sorted(((i, s) for i in range(len(prompt_ids)) for s in range(draws)),
                      key=lambda job: (owner[job[0]], len(prompt_ids[job[0]]), prompt_ids[job[0]]))
        out: list[list[Completion]] = [[] for _ in prompt_ids]
        device = next(self.model.parameters()).device
        rng = torch.Generator(device=device).manual_seed(sampling.seed) if sampling.seed is not None else None
        model = self._sampling_model()
        was_training = model.training
        model.eval()
        try:
            for start in range(0, len(jobs), self.batch_size):
                chunk = [index for index, _ in jobs[start:start + self.batch_size]]
                distinct: dict[tuple[int, tuple[int, ...]], int] = {}  # identical prompts of a student: prefilled once
                rows = [distinct.setdefault((owner[i], tuple(prompt_ids[i])), len(distinct)) for i in chunk]
                batch = self._batch(model, [list(p) for _, p in distinct], rows, sampling, greedy, rng,
                                    [s for s, _ in distinct] if students is not None else None)
                for index, completion in zip(chunk, batch):
                    completion.prompt_index = index
                    out[index].extend([_copy(completion) for _ in range(n)] if greedy else [completion])
        finally:
            if was_training:
                model.train()
        return out

    def _batch(self, model: Any, prompt_ids: list[list[int]], rows: list[int], sampling: SamplingParams, greedy: bool,
               rng: Any, students: list[int] | None = None) -> list[Completion]:
        from soar.engines.decoding import decode

        tok = self.tokenizer
        decoded = decode(model, tok, prompt_ids, rows, max_new_tokens=sampling.max_new_tokens,
                         temperature=sampling.temperature, top_p=sampling.top_p, greedy=greedy,
                         stop=tuple(sampling.stop), eos_ids=set() if sampling.ignore_eos else set(_eos_ids(model, tok)), pad_id=tok.pad_token_id,
                         rng=rng, students=students, cuda_graphs=self.cuda_graphs)
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
                             seed=compute.seed, enable_sleep_mode=True)  # colocated with its trainer
    return hf_generator(compute, model, tokenizer, compute_dtype)


def trainer_generator(compute: Any, trainer: Any, tokenizer: Any, compute_dtype: Any = None) -> Any:
    """A generator that samples ``trainer``'s current weights (a student's, as it trains): ``compute.generator``'s
    engine for a fully fine-tuned trainer, the ``hf`` one for a LoRA trainer (its adapter lives in soar's engine),
    wrapped in :class:`~soar.engines.base.TrainerGenerator`, which pushes every change before the next sample."""
    from soar.engines.base import TrainerGenerator

    full = trainer.cfg.finetune == "full"
    engine = (build_generator(compute, trainer.model, tokenizer, compute_dtype=compute_dtype) if full
              else hf_generator(compute, trainer.model, tokenizer, compute_dtype))
    return TrainerGenerator(engine, trainer)


def hf_generator(compute: Any, model: Any, tokenizer: Any, compute_dtype: Any = None) -> HFGenerator:
    """An :class:`HFGenerator` over ``model`` with ``compute``'s batch size and CUDA-graph setting (students, and
    the teacher unless ``compute.generator`` is ``vllm``)."""
    return HFGenerator(model, tokenizer, batch_size=compute.generation_batch_size, compute_dtype=compute_dtype,
                       cuda_graphs=compute.cuda_graphs)
