"""A fake ``vllm`` package for CPU tests: the part of vLLM's API soar uses, with vLLM's rules enforced.

vLLM cannot run here (no CUDA), so :class:`soar.engines.vllm_generator.VLLMGenerator`
is tested against this stand-in.  It is not a mock that records calls: it
loads the model folder, holds its own copy of the weights in vLLM's layout
(fused ``qkv_proj`` and ``gate_up_proj``, no ``lm_head`` when tied), maps
Hugging Face names onto it the way vLLM's Llama ``load_weights`` does
(``LLAMA_STACKED_PARAMS_MAPPING``; an unknown name is a ``KeyError``), and
generates real completions from those weights with soar's own decoder.

It raises :class:`ContractError` where real vLLM would silently do the wrong
thing (the failures TRL, verl and NeMo-RL users reported):

* a generate while the engine holds other weights than the watched trainer
  module (:meth:`LLM.watch`): a change not pushed (TRL #5312: training
  silently sampled the base model);
* a generate after a push without ``reset_prefix_cache()`` (stale KV blocks);
* a generate or push while asleep, and after a level-2 sleep, a generate
  before every weight was pushed again (vLLM #29341);
* the weights are read from disk once, when the engine is built
  (``LLM.loads_from_disk`` counts it; nothing reloads them on wake).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

STACKED = [(".qkv_proj", ".q_proj", "q"), (".qkv_proj", ".k_proj", "k"), (".qkv_proj", ".v_proj", "v"),
           (".gate_up_proj", ".gate_proj", 0), (".gate_up_proj", ".up_proj", 1)]
"""vLLM's ``LLAMA_STACKED_PARAMS_MAPPING``: (fused parameter, checkpoint shard, shard id)."""


class ContractError(AssertionError):
    """A rule real vLLM does not check (it would serve stale or wrong weights) was broken."""


@dataclass
class SamplingParams:
    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 16
    stop: list[str] | None = None
    ignore_eos: bool = False
    include_stop_str_in_output: bool = False
    seed: int | None = None
    logprobs: int | None = None


@dataclass
class Logprob:
    logprob: float


@dataclass
class CompletionOutput:
    index: int
    text: str
    token_ids: list[int]
    logprobs: list[dict[int, Logprob]] | None
    finish_reason: str


@dataclass
class RequestOutput:
    outputs: list[CompletionOutput]


class _EngineModel:
    """The engine's weights in vLLM's layout, and vLLM's Llama ``load_weights``."""

    def __init__(self, llm: "LLM", hf_model: Any) -> None:
        import torch

        self.llm, self.config = llm, hf_model.config
        self.tied = bool(getattr(hf_model.config, "tie_word_embeddings", False))
        c = hf_model.config
        head = c.hidden_size // c.num_attention_heads
        self.q, self.kv = c.num_attention_heads * head, c.num_key_value_heads * head
        self.params: dict[str, Any] = {}
        with torch.no_grad():
            for name, tensor in hf_model.state_dict().items():
                if "rotary_emb" in name or (self.tied and name == "lm_head.weight"):
                    continue
                fused = self._fused(name)
                if fused is None:
                    self.params[name] = tensor.detach().clone()
                else:
                    target, shard = fused
                    parts = self.params.setdefault(target, {})
                    parts[shard] = tensor.detach().clone()
            for name, value in list(self.params.items()):
                if isinstance(value, dict):
                    order = ["q", "k", "v"] if name.endswith("qkv_proj.weight") else [0, 1]
                    self.params[name] = torch.cat([value[k] for k in order], 0)
        self.pushed: set[str] = set()

    @staticmethod
    def _fused(name: str) -> tuple[str, Any] | None:
        for param, shard, shard_id in STACKED:
            if shard in name:
                return name.replace(shard, param), shard_id
        return None

    def _slice(self, fused: str, shard: Any) -> tuple[int, int]:
        if fused.endswith("qkv_proj.weight"):
            return {"q": (0, self.q), "k": (self.q, self.q + self.kv), "v": (self.q + self.kv, self.q + 2 * self.kv)}[shard]
        half = self.params[fused].shape[0] // 2
        return (0, half) if shard == 0 else (half, 2 * half)

    def load_weights(self, weights: Any) -> set[str]:
        """vLLM's Llama ``load_weights``: HF names in, fused parameters filled; returns the names loaded."""
        import torch

        if self.llm.asleep:
            raise ContractError("weights pushed while the engine sleeps")
        loaded = set()
        with torch.no_grad():
            for name, tensor in weights:
                if "rotary_emb.inv_freq" in name or (self.tied and "lm_head.weight" in name):
                    continue
                fused = self._fused(name)
                if fused is None:
                    self.params[name].copy_(tensor)  # KeyError for a name vLLM does not have, as vLLM
                    loaded.add(name)
                else:
                    target, shard = fused
                    start, end = self._slice(target, shard)
                    self.params[target][start:end].copy_(tensor)
                    loaded.add(f"{target}[{shard}]")
        self.pushed |= loaded
        self.llm._changed()
        return loaded

    def value(self, name: str) -> Any:
        """The engine's tensor for a Hugging Face weight name (a slice of a fused weight)."""
        fused = self._fused(name)
        if fused is None:
            return self.params[name]
        start, end = self._slice(*fused)
        return self.params[fused[0]][start:end]

    def to_hf(self, hf_model: Any) -> None:
        """Write the engine's weights into a Hugging Face module (for generation)."""
        import torch

        with torch.no_grad():
            for name, param in hf_model.named_parameters():
                if not (self.tied and name == "lm_head.weight"):
                    param.copy_(self.value(name))

    def all_names(self) -> set[str]:
        names = set()
        for name in self.params:
            if name.endswith("qkv_proj.weight"):
                names |= {f"{name}[{s}]" for s in "qkv"}
            elif name.endswith("gate_up_proj.weight"):
                names |= {f"{name}[{s}]" for s in (0, 1)}
            else:
                names.add(name)
        return names


class _Namespace:
    pass


class LLM:
    loads_from_disk = 0
    """Times any engine read weights from disk (once per engine built)."""

    def __init__(self, model: str, dtype: str = "auto", seed: int = 0, gpu_memory_utilization: float = 0.9,
                 max_model_len: int | None = None, enable_sleep_mode: bool = False, **kwargs: Any) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        LLM.loads_from_disk += 1
        self.path = Path(model)
        self._hf = AutoModelForCausalLM.from_pretrained(self.path).eval()
        self._tokenizer = AutoTokenizer.from_pretrained(self.path)
        self.enable_sleep_mode = enable_sleep_mode
        self.asleep = False
        self.level = 0
        self._model = _EngineModel(self, self._hf)
        self._cache_stale = False
        self._watched: Any = None
        self.pushes = self.resets = self.sleeps = 0
        runner = _Namespace()
        runner.model = self._model
        worker = _Namespace()
        worker.model_runner = runner
        executor = _Namespace()
        executor.driver_worker = worker
        self.llm_engine = _Namespace()
        self.llm_engine.model_executor = executor

    # -- what soar calls ------------------------------------------------------------------------------------------
    def get_tokenizer(self) -> Any:
        return self._tokenizer

    def reset_prefix_cache(self) -> bool:
        self._cache_stale = False
        self.resets += 1
        return True

    def sleep(self, level: int = 1) -> None:
        if not self.enable_sleep_mode:
            raise ContractError("sleep() on an engine built without enable_sleep_mode")
        self.asleep, self.level = True, level
        self.sleeps += 1
        if level == 2:
            self._model.pushed = set()  # weights discarded: all must be pushed again

    def wake_up(self, tags: list[str] | None = None) -> None:
        self.asleep = False  # level 1: the weights come back from host memory, not from disk

    def generate(self, inputs: list[dict[str, Any]], params: list[SamplingParams],
                 use_tqdm: bool = False) -> list[RequestOutput]:
        from soar.engines.base import SamplingParams as SoarParams
        from soar.engines.generation import HFGenerator

        if self.asleep:
            raise ContractError("generate() while the engine sleeps")
        if self.level == 2 and self._model.pushed != self._model.all_names():
            raise ContractError("generate() after a level-2 sleep before every weight was pushed again")
        if self._cache_stale:
            raise ContractError("generate() after a weight push without reset_prefix_cache()")
        self._check_watched()
        model = self._hf
        self._model.to_hf(model)
        generator = HFGenerator(model, self._tokenizer, batch_size=64)
        out = []
        for item, p in zip(inputs, params):
            greedy = p.temperature == 0
            sampling = SoarParams(temperature=p.temperature if not greedy else 1.0, top_p=p.top_p,
                                  max_new_tokens=p.max_tokens, stop=tuple(p.stop or ()), greedy=greedy, seed=p.seed,
                                  ignore_eos=p.ignore_eos)
            (group,) = generator.generate_tokens([list(item["prompt_token_ids"])], p.n, sampling)
            out.append(RequestOutput([CompletionOutput(i, c.text, list(c.token_ids),
                                                       [{t: Logprob(lp)} for t, lp in zip(c.token_ids, c.logprobs)],
                                                       c.finish_reason) for i, c in enumerate(group)]))
        return out

    # -- test hooks (not vLLM API) -------------------------------------------------------------------------------
    def watch(self, module: Any) -> None:
        """Hold generation to ``module``'s weights: a generate while the engine holds other weights raises."""
        self._watched = module

    # -- internals ------------------------------------------------------------------------------------------------
    def _changed(self) -> None:
        self.pushes += 1
        self._cache_stale = True

    def _check_watched(self) -> None:
        if self._watched is None:
            return
        import torch

        for name, param in self._watched.named_parameters():
            name = name.removeprefix("_orig_mod.")
            if self._model.tied and name == "lm_head.weight":
                continue
            if not torch.equal(param.detach().to(self._model.value(name).dtype), self._model.value(name)):
                raise ContractError(f"generate() while the engine holds other weights than the trainer's "
                                    f"({name}): a change was not pushed, and the engine would sample the old policy")
