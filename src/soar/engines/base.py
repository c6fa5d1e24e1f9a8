"""The generation contract every engine implements: what goes in, what comes out, how new weights get there.

``Generator.generate(prompts, n, sampling)`` returns, for every prompt, ``n``
:class:`Completion` records (text, generated token ids, per-token log-probs
under the unmodified policy, i.e. temperature 1).  ``generate_tokens`` takes
prompts as token ids (exactly the context a trainer will score).

Weights: a trainer changes the policy between calls, and a generator that
does not share the trainer's module (vLLM, a generator in another process or
on another GPU) must be told.  :meth:`Generator.update_weights` takes a
:class:`WeightUpdate`: full tensors by Hugging Face name, or a LoRA adapter's
tensors (soar's own engine only; vLLM takes full weights), with a version
number so an engine can tell a stale update from a new one (prime-rl's
``WeightBroadcast``, verl's ``update_weights``).  A generator that samples from
the trainer's own module (``HFGenerator``) copies nothing when the update's
tensors already are its parameters.  A generator colocated with a
trainer on one device sleeps (:meth:`~Generator.sleep`) while the trainer runs
and wakes (:meth:`~Generator.wake`) before it generates again.

This module imports no engine, so the ``hf`` and ``vllm`` generators both
depend on it and not on each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol


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


@dataclass(frozen=True)
class WeightUpdate:
    """New policy weights for a generator."""

    kind: Literal["full", "adapter"]
    """``full``: model weights by Hugging Face name (all, or the ones that changed); ``adapter``: a LoRA adapter."""
    tensors: dict[str, Any] = field(default_factory=dict)
    """Name -> tensor.  For ``adapter``, PEFT names (``...lora_A.weight``)."""
    version: int = 0
    """Increases with every update of a policy; an engine may skip an update older than what it holds."""


class Generator(Protocol):
    def generate(self, prompts: list[str], n: int, sampling: SamplingParams) -> list[list[Completion]]: ...

    def generate_tokens(self, prompt_ids: list[list[int]], n: int, sampling: SamplingParams) -> list[list[Completion]]: ...

    def update_weights(self, update: WeightUpdate) -> None: ...

    def sleep(self) -> None:
        """Give the device to the trainer until :meth:`wake` (vLLM colocated: sleep level 1; else nothing)."""

    def wake(self) -> None:
        """Ready to generate again, with the weights held before :meth:`sleep`."""


def push_weights(generator: Generator, model: Any, version: int) -> None:
    """``model``'s full weights to the generator that samples it, awake: in place for vLLM (then its prefix cache
    is reset), nothing copied for the ``hf`` generator when it samples ``model`` itself."""
    generator.wake()
    generator.update_weights(WeightUpdate("full", dict(model.named_parameters()), version=version))


class TrainerGenerator:
    """A :class:`Generator` that always samples a trainer's current weights: before generating it pushes them
    (:func:`push_weights`) when ``trainer.version`` moved since the last push.

    What the students use: their weights change at every inner step and every restore, and an engine with its
    own copy of them (vLLM) must receive each change before it samples again; the ``hf`` generator samples the
    trainer's own module, so a push there copies nothing.  :meth:`sleep` (before a training step) frees a
    colocated engine's memory; the next push wakes it.
    """

    def __init__(self, generator: Generator, trainer: Any) -> None:
        self.generator, self.trainer = generator, trainer
        self.pushed: int | None = None  # trainer.version at the last push; None: the engine holds the base model

    def sync(self) -> None:
        """Push the trainer's weights unless the engine already holds this version (always wakes it)."""
        if self.pushed != self.trainer.version:
            push_weights(self.generator, self.trainer.model, version=self.trainer.version + 1)  # versions from 1
            self.pushed = self.trainer.version
        self.generator.wake()

    def generate(self, prompts: list[str], n: int, sampling: SamplingParams) -> list[list[Completion]]:
        self.sync()
        return self.generator.generate(prompts, n, sampling)

    def generate_tokens(self, prompt_ids: list[list[int]], n: int, sampling: SamplingParams) -> list[list[Completion]]:
        self.sync()
        return self.generator.generate_tokens(prompt_ids, n, sampling)

    def update_weights(self, update: WeightUpdate) -> None:
        self.generator.update_weights(update)

    def sleep(self) -> None:
        self.generator.sleep()

    def wake(self) -> None:
        self.generator.wake()
