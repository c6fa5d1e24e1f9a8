"""The inner loop: train a copy of the baseline student on one synthetic dataset, score it on Q_R.

``StudentJob`` and ``StudentResult`` are plain, serialisable records (no
tensors, no engines), so a pool can ship jobs to other processes or machines;
:class:`InProcessStudentPool` runs them one after another on one engine: each
job restores the baseline snapshot (no reload, no new engine), trains
``steps`` RLOO steps on its dataset, and is scored by greedy accuracy on the
reward questions (Section 3.2, B.6).

Inner RLOO step (3.3, Table 3 student column): ``student.batch_size``
questions of the dataset (a seeded shuffle, cycled), ``student.group_size``
samples each with the student prompt, the B.3 reward against the teacher's
answer, leave-one-out advantages per question, one optimiser step (cosine over
the job's steps).

Choices where the paper is silent:

* The student's KL reference is the baseline it started from (the promoted
  student after a promotion); in LoRA mode it stays the base model.
* Promotion uses the chosen student's weights as they were measured, never a
  re-run: after each job the pool keeps the student's trainable weights on the
  CPU while :class:`~soar.algo.promotion.PromotionCandidates` says it could
  still be the one promoted (at most the students of an unfinished dataset
  plus one: r + 1 copies in this sequential pool) and drops the rest.
  ``promote`` puts the kept weights in place and scores them again on Q_R; the
  re-check is recorded, so any difference (GPU non-determinism) is visible.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from soar.algo.promotion import PromotionCandidates
from soar.algo.rloo import leave_one_out_advantages
from soar.algo.seeds import derive_seed
from soar.config import SoarConfig
from soar.data.prompts import student_prompt
from soar.engines.evaluation import greedy_accuracy, sampled_correct
from soar.engines.generation import HFGenerator, SamplingParams
from soar.engines.trainer import PolicyTrainer, Rollouts
from soar.math.verify import Verifier
from soar.types import Problem


@dataclass(frozen=True)
class StudentJob:
    job_id: str
    baseline: int
    """Version (promotion stage) of the baseline the student starts from."""
    dataset: list[dict[str, Any]]
    """The synthetic QA pairs X_k, as ``Problem.to_dict()`` records."""
    reward_questions: list[dict[str, Any]]
    """Q_R, as ``Problem.to_dict()`` records."""
    seed: int
    steps: int
    dataset_index: int = 0
    """k: which of the step's B*g datasets the job trains on."""
    student_index: int = 0
    """j: which of the dataset's r students this is."""


@dataclass
class StudentResult:
    job_id: str
    accuracy: float
    correct: list[int]
    train_rewards: list[float] = field(default_factory=list)
    """Mean B.3 reward of the student's samples at each inner step."""
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
    tokens: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class StudentPool(Protocol):
    baseline_version: int

    def baseline_accuracy(self, reward_questions: list[dict[str, Any]]) -> StudentResult: ...

    def run(self, jobs: list[StudentJob], baseline_accuracy: float,
            progress: Callable[[StudentResult], None] | None = None) -> list[StudentResult]: ...

    def success_rates(self, dataset: list[dict[str, Any]], samples: int, seed: int) -> list[float]: ...

    def promote(self, job: StudentJob) -> StudentResult: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class InProcessStudentPool:
    """Every student on one engine in this process, one after another."""

    def __init__(self, model: Any, tokenizer: Any, cfg: SoarConfig, verifier: Verifier, compute_dtype: Any = None) -> None:
        self.cfg, self.tokenizer, self.verifier = cfg, tokenizer, verifier
        self.trainer = PolicyTrainer(model, cfg.student, cfg.inner.steps, tokenizer.pad_token_id,
                                     compute_dtype=compute_dtype)
        self.generator = HFGenerator(self.trainer.model, tokenizer, batch_size=cfg.compute.generation_batch_size,
                                     compute_dtype=compute_dtype)
        self.baseline = self.trainer.snapshot()
        self.baseline_version = 0
        self.kept: dict[tuple[int, int], tuple[str, dict[str, Any]]] = {}
        """Trained students that may still be promoted: (k, j) -> (job id, trainable weights on the CPU)."""

    def baseline_accuracy(self, reward_questions: list[dict[str, Any]]) -> StudentResult:
        self.trainer.restore(self.baseline)
        return self._evaluate("baseline", reward_questions)

    def run(self, jobs: list[StudentJob], baseline_accuracy: float,
            progress: Callable[[StudentResult], None] | None = None) -> list[StudentResult]:
        """Train and score ``jobs`` one after another, keeping the weights of every student the promotion rule
        may still choose (R_kj = accuracy - ``baseline_accuracy``: the numbers the rule itself sees)."""
        results, self.kept = [], {}
        candidates = PromotionCandidates(self.cfg.inner.repeats)
        for job in jobs:
            result = self._train_and_evaluate(job)
            results.append(result)
            self.kept[(job.dataset_index, job.student_index)] = (job.job_id, self.trainer.snapshot(device="cpu"))
            for key in candidates.add(job.dataset_index, job.student_index, result.accuracy - baseline_accuracy):
                self.kept.pop(key, None)
            if progress:
                progress(result)
        return results

    def success_rates(self, dataset: list[dict[str, Any]], samples: int, seed: int) -> list[float]:
        """The baseline's sampled success rate on each question of ``dataset`` (learnability, B.4)."""
        self.trainer.restore(self.baseline)
        s = self.cfg.student
        scored = sampled_correct(self.generator, self.tokenizer, [Problem.from_dict(d) for d in dataset], self.verifier,
                                 n=samples, sampling=SamplingParams(temperature=s.temperature, top_p=s.top_p,
                                                                    max_new_tokens=s.max_new_tokens, seed=seed),
                                 require_boxed=self.cfg.reward.require_boxed, kind=self.cfg.reward.kind)
        return [c / samples for c in scored.correct]

    def promote(self, job: StudentJob) -> StudentResult:
        """Make ``job``'s trained student, as it was measured, the new baseline (and KL reference); returns its
        accuracy on the job's Q_R scored again after loading (the re-check)."""
        kept = self.kept.get((job.dataset_index, job.student_index))
        if kept is None or kept[0] != job.job_id:
            raise RuntimeError(f"student {job.job_id} was not kept; the pool keeps only the students the promotion "
                               f"rule can still choose ({sorted(name for name, _ in self.kept.values())})")
        self.trainer.restore(kept[1])
        self.kept = {}
        self.baseline = self.trainer.snapshot()
        self.baseline_version += 1
        self.trainer.set_reference_to_current()
        return self._evaluate(f"{job.job_id}-recheck", job.reward_questions)

    def state_dict(self) -> dict[str, Any]:
        return {"weights": self.baseline, "version": self.baseline_version}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.baseline = {k: v.clone() for k, v in state["weights"].items()}
        self.baseline_version = int(state["version"])
        self.trainer.restore(self.baseline)
        self.trainer.set_reference_to_current()

    # -- one student -----------------------------------------------------------
    def _train_and_evaluate(self, job: StudentJob) -> StudentResult:
        import torch

        if job.baseline != self.baseline_version:
            raise ValueError(f"job {job.job_id} wants baseline {job.baseline}, the pool holds {self.baseline_version}")
        started = time.perf_counter()
        self.trainer.restore(self.baseline, total_steps=job.steps)
        torch.manual_seed(job.seed)
        dataset = [Problem.from_dict(d) for d in job.dataset]
        order = list(range(len(dataset)))
        random.Random(job.seed).shuffle(order)
        per_step, tokens, size = [], 0, self.cfg.student.batch_size
        for step in range(job.steps):
            picks = [dataset[order[(step * size + i) % len(order)]] for i in range(size)]
            reward, used = rloo_step(self.trainer, self.generator, self.tokenizer, self.verifier, picks, self.cfg,
                                     seed=derive_seed(job.seed, "inner_step", step))
            per_step.append(reward)
            tokens += used
        train_seconds = time.perf_counter() - started
        result = self._evaluate(job.job_id, job.reward_questions)
        result.train_rewards, result.train_seconds, result.tokens = per_step, train_seconds, tokens
        return result

    def _evaluate(self, job_id: str, reward_questions: list[dict[str, Any]]) -> StudentResult:
        started = time.perf_counter()
        scored = greedy_accuracy(self.generator, self.tokenizer, [Problem.from_dict(d) for d in reward_questions],
                                 self.verifier, max_new_tokens=self.cfg.student.max_new_tokens,
                                 require_boxed=self.cfg.reward.require_boxed, kind=self.cfg.reward.kind)
        return StudentResult(job_id, scored.accuracy, scored.correct, eval_seconds=time.perf_counter() - started)


def rloo_step(trainer: PolicyTrainer, generator: HFGenerator, tokenizer: Any, verifier: Verifier,
              problems: list[Problem], cfg: SoarConfig, seed: int) -> tuple[float, int]:
    """One student RLOO step on ``problems``: ``student.group_size`` samples each (student prompt),
    B.3 rewards against their answers, leave-one-out advantages per problem, one optimiser step.

    Returns the mean reward of the samples and the number of tokens sampled.
    """
    s = cfg.student
    prompt_ids = [tokenizer(student_prompt(p.question, tokenizer), add_special_tokens=False)["input_ids"]
                  for p in problems]
    sampling = SamplingParams(temperature=s.temperature, top_p=s.top_p, max_new_tokens=s.max_new_tokens, seed=seed)
    groups = generator.generate_tokens(prompt_ids, s.group_size, sampling)
    completions = [c for g in groups for c in g]
    flat = verifier.math_rewards([c.text for c in completions], [p.answer for p, g in zip(problems, groups) for _ in g],
                                 require_boxed=cfg.reward.require_boxed, kind=cfg.reward.kind)
    advantages = leave_one_out_advantages([flat[i * s.group_size:(i + 1) * s.group_size] for i in range(len(problems))])
    trainer.step(Rollouts([prompt_ids[c.prompt_index] for c in completions], [c.token_ids for c in completions],
                          [a for row in advantages for a in row]))
    return sum(flat) / len(flat), sum(len(c.token_ids) for c in completions)
