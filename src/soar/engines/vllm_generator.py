"""Generation with vLLM (the optional ``vllm`` extra), behind the same interface as ``HFGenerator``.

``VLLMGenerator.generate(prompts, n, sampling)`` returns, for every prompt, ``n``
:class:`~soar.engines.generation.Completion` records like the transformers
generator: prompts tokenized without special tokens, stop strings kept in the
text, EOS kept in ``token_ids``, one log-prob per generated token.  The engine
lives in this process next to the trainer ("colocate" mode) and is refreshed in
place after each optimiser step (:meth:`load_weights`).  Full weights only: soar
has no vLLM LoRA path (a LoRA teacher on vLLM is refused at start-up, and LoRA
students always sample through soar's own engine, which holds their adapters),
so there is one way to sample each kind of policy.

Written against vLLM's public API as documented for 0.8-0.11 (V1 engine),
checked against the 0.14-0.2x docs, and on 2026-12-03 against the source of the
0.29.0 and 0.34.0 wheels (every call below unchanged in name and argument form;
V0 is gone, so only V1 paths matter): ``vllm.LLM(model, dtype, seed,
gpu_memory_utilization, max_model_len)``,
``LLM.generate(prompts, sampling_params, use_tqdm)`` with
``{"prompt_token_ids": ...}`` prompts, ``vllm.SamplingParams(n, temperature, top_p,
max_tokens, stop, include_stop_str_in_output, seed, logprobs=0)``,
``CompletionOutput.{text, token_ids, logprobs, finish_reason}`` and ``LLM.reset_prefix_cache()``.

Version-sensitive calls:

* Weight refresh copies TRL's colocate mode (``trl/generation/vllm_generation.py``,
  ``VLLMGeneration.sync_weights``; formerly ``GRPOTrainer._move_model_to_vllm``):
  ``llm.llm_engine.model_executor.driver_worker.model_runner.model.load_weights(...)``
  then ``llm.reset_prefix_cache()``.  That private path exists in V0 and in V1 only
  while the engine core runs in this process, so an engine built here sets
  ``VLLM_ENABLE_V1_MULTIPROCESSING=0`` (unless already set) and looks the path up
  once at start-up: a vLLM that moved it stops there in one line naming its version.  When the model is in
  another process (a user-supplied multiprocess ``LLM``) the weights go through
  ``LLM.collective_rpc(callable)`` as CPU tensors, which vLLM >= 0.9 allows only with
  ``VLLM_ALLOW_INSECURE_SERIALIZATION=1``.
* Colocation: built with ``enable_sleep_mode``, :meth:`sleep` calls
  ``LLM.sleep(level=1)`` (weights to host memory, KV cache freed) while the
  trainer uses the GPU and :meth:`wake` calls ``LLM.wake_up()``; weights are
  pushed only while awake.  Level 2 is not used (it discards the weights, and
  an engine woken from it serves garbage until every weight is pushed again).

The rules this class keeps (CPU tests hold it to them with a fake ``vllm``
package, ``tests/fakes/vllm``, that raises when one is broken): new weights are
pushed before any generation that follows a change; the prefix cache is reset
after every push; nothing is reloaded from disk
after the first load; no generation or push while asleep.

Deviations from ``HFGenerator``:

* Log-probs are vLLM's: the V1 engine returns raw log-probs (temperature-1 logits,
  before top-p; ``logprobs_mode="raw_logprobs"``, the default since 0.10), as here.
  The legacy V0 engine (``VLLM_USE_V1=0``, vLLM < 0.11) returns log-probs *after*
  temperature and top-p, which differ whenever ``temperature != 1`` or ``top_p < 1``.
* Greedy decoding (``sampling.greedy`` or temperature < 1e-5) generates once and repeats
  the completion ``n`` times, since vLLM refuses ``n > 1`` with temperature 0.
* ``seed`` is per request: prompt ``i`` uses seeds ``seed + i*n`` .. ``seed + i*n + n-1``,
  so results are reproducible but not the same samples as ``HFGenerator`` draws.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from soar.engines.base import Completion, SamplingParams, WeightUpdate
from soar.errors import SoarError

Weights = Mapping[str, Any] | Iterable[tuple[str, Any]]


def _import_vllm() -> Any:
    try:
        import vllm
    except ImportError as exc:
        raise SoarError(
            f"the vLLM generator needs vLLM, which is not installed ({exc}); "
            "install it on a GPU machine with: pip install 'soar[vllm]'"
        ) from None
    return vllm


def _require_device() -> None:
    """One line when vLLM found no device it can run on (``vllm.platforms.current_platform``: an unspecified
    platform has no ``device_type``), instead of the traceback engine start-up would end in."""
    try:
        from vllm.platforms import current_platform
    except ImportError:  # a vLLM without this module: let it speak for itself
        return
    if not getattr(current_platform, "device_type", ""):
        raise SoarError("compute.generator: vllm found no GPU (or other device vLLM supports) on this machine; "
                        "use compute.generator: hf here")


class VLLMGenerator:
    """vLLM ``LLM.generate`` with per-token log-probs and in-place refresh of full weights."""

    def __init__(
        self,
        model: str | os.PathLike[str] | Any,
        *,
        dtype: str = "bfloat16",
        gpu_memory_utilization: float = 0.5,
        max_model_len: int | None = None,
        seed: int = 0,
        enable_sleep_mode: bool = False,
        **engine_kwargs: Any,
    ) -> None:
        """``model``: a model directory (e.g. ``converted_copy``'s) or hub id, or an existing ``vllm.LLM``.

        The remaining arguments go to ``vllm.LLM`` when it is built here (and
        are ignored for an existing one); ``engine_kwargs`` passes anything else
        (``enforce_eager=True``, ``max_num_seqs``...).
        """
        building = isinstance(model, (str, os.PathLike))
        if building:  # keep the engine core in this process, so load_weights can reach the model
            os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        self._vllm = _import_vllm()
        if building:
            _require_device()
            if enable_sleep_mode:
                engine_kwargs["enable_sleep_mode"] = True
            model = self._vllm.LLM(
                model=str(model), dtype=dtype, seed=seed, gpu_memory_utilization=gpu_memory_utilization,
                max_model_len=max_model_len, **engine_kwargs,
            )
        self.llm = model
        self._in_process = building and os.environ.get("VLLM_ENABLE_V1_MULTIPROCESSING") == "0"
        """Built here with the engine core in this process: the weights go in through :meth:`_local_model`, and
        a vLLM where that private path moved is one line at start-up, never a silent fallback."""
        if self._in_process:
            self._local_model()
        self.tokenizer = self.llm.get_tokenizer()
        self._sleep_mode = enable_sleep_mode
        self.asleep = False
        self.weights_version = 0
        """Version of the last full-weight update loaded (:class:`WeightUpdate.version`)."""

    # -- colocation ----------------------------------------------------------
    def sleep(self) -> None:
        """Free the GPU for training (sleep level 1: weights offloaded to host memory, KV cache dropped).
        A no-op unless the engine was built with ``enable_sleep_mode``.  Level 2 (weights discarded) is never
        used: it needs a full re-push of every weight after waking (vLLM #29341)."""
        if self._sleep_mode and not self.asleep:
            self.llm.sleep(level=1)
            self.asleep = True

    def wake(self) -> None:
        """Back from :meth:`sleep`, with the weights it held (nothing is reloaded from disk).  The trainer's freed
        blocks go back to the device first (``torch.cuda.empty_cache()``, as TRL does before waking): vLLM
        re-allocates its KV cache from what the driver reports free, and blocks torch's caching allocator still
        holds after a teacher update count as taken, an out-of-memory on wake on a full GPU."""
        if self.asleep:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            self.llm.wake_up()
            self.asleep = False

    # -- generation --------------------------------------------------------
    def generate(self, prompts: list[str], n: int, sampling: SamplingParams) -> list[list[Completion]]:
        return self.generate_tokens([self.tokenizer.encode(p, add_special_tokens=False) for p in prompts], n, sampling)

    def generate_tokens(self, prompt_ids: list[list[int]], n: int, sampling: SamplingParams) -> list[list[Completion]]:
        if self.asleep:
            raise SoarError("the vllm generator is asleep: wake() it before generating")
        greedy = sampling.greedy or sampling.temperature < 1e-5  # vLLM's own threshold for greedy
        params = [self._params(sampling, greedy, n, i) for i in range(len(prompt_ids))]
        inputs = [{"prompt_token_ids": list(ids)} for ids in prompt_ids]
        results = self.llm.generate(inputs, params, use_tqdm=False)
        out: list[list[Completion]] = []
        for index, result in enumerate(results):
            completions = [_completion(index, c) for c in result.outputs]
            if greedy:  # one deterministic completion, repeated (as independent copies)
                completions = [replace(completions[0], token_ids=list(completions[0].token_ids),
                                       logprobs=list(completions[0].logprobs)) for _ in range(n)]
            out.append(completions)
        return out

    def _params(self, sampling: SamplingParams, greedy: bool, n: int, index: int) -> Any:
        return self._vllm.SamplingParams(
            n=1 if greedy else n,
            temperature=0.0 if greedy else sampling.temperature,
            top_p=1.0 if greedy else sampling.top_p,
            max_tokens=sampling.max_new_tokens,
            stop=list(sampling.stop) or None,
            ignore_eos=sampling.ignore_eos,
            include_stop_str_in_output=True,
            seed=None if sampling.seed is None else sampling.seed + index * n,
            logprobs=0,  # only the sampled token's log-prob
        )

    # -- weight refresh ------------------------------------------------------
    def update_weights(self, update: WeightUpdate) -> None:
        """The :class:`~soar.engines.base.Generator` contract for full weights (through :meth:`load_weights`);
        an adapter is refused in one line (soar has no vLLM LoRA path)."""
        if update.kind != "full":
            raise SoarError("the vllm generator takes full weights only: LoRA policies sample through soar's own "
                            "engine (compute.generator: hf)")
        if update.version and update.version <= self.weights_version:
            return  # stale: the engine already holds these weights or newer ones
        if self.asleep:
            raise SoarError("the vllm generator is asleep: wake() it before pushing weights")
        self.load_weights(update.tensors)
        self.weights_version = update.version

    def load_weights(self, named_tensors: Weights) -> None:
        """Copy full-model weights (``named_parameters()`` or a state dict) into the engine, in place.

        Names are Hugging Face names; vLLM's ``load_weights`` maps them onto its
        fused layers (``qkv_proj``, ``gate_up_proj``) and skips a tied ``lm_head``.
        The prefix cache is reset, since cached KV blocks came from the old weights.
        """
        items = named_tensors.items() if isinstance(named_tensors, Mapping) else named_tensors
        weights = [(name.removeprefix("_orig_mod."), tensor.detach()) for name, tensor in items]
        model = self._local_model()
        if model is not None:
            model.load_weights(weights)
        else:
            self.llm.collective_rpc(_load_on_worker, args=([(n, t.cpu()) for n, t in weights],))
        self.llm.reset_prefix_cache()

    def _local_model(self) -> Any:
        """The engine's ``nn.Module`` when it lives in this process (V0, or V1 without multiprocessing); None for
        a user's multiprocess ``LLM`` (weights then go through ``collective_rpc``).  An engine built here whose
        model is not at that path is an error naming the vLLM version, not a fallback."""
        try:
            return self.llm.llm_engine.model_executor.driver_worker.model_runner.model
        except AttributeError:
            if self._in_process:
                version = getattr(self._vllm, "__version__", "?")
                raise SoarError(f"vLLM {version}: the engine's model is not at llm.llm_engine.model_executor."
                                f"driver_worker.model_runner.model (TRL's colocate path; soar was checked against "
                                f"vLLM 0.8-0.34), so weights cannot be pushed in place; use a vLLM in that range or "
                                f"compute.generator: hf") from None
            return None


def _completion(index: int, output: Any) -> Completion:
    ids = list(output.token_ids)
    steps = output.logprobs or []
    logprobs = [float(step[token].logprob) for token, step in zip(ids, steps)]
    reason = "stop" if output.finish_reason == "stop" else "length"
    return Completion(index, output.text, ids, logprobs, reason)


def _load_on_worker(worker: Any, weights: list[tuple[str, Any]]) -> None:
    """Runs inside a vLLM worker process (``collective_rpc``): load ``weights`` into its model."""
    worker.model_runner.model.load_weights(weights)
