"""The inner loop: train copies of the baseline student on synthetic datasets, score them on Q_R.

A *student worker* owns one engine (model, trainer, generator) and the
verifier, holds the baseline, and runs jobs; pools (``soar.students.pool``)
hand it :class:`~soar.types.StudentJob` lists, in this process or on Ray
workers.  Two workers:

* :class:`SequentialWorker`: one student at a time on a
  :class:`~soar.engines.trainer.PolicyTrainer` (full fine-tuning, or a PEFT
  LoRA adapter): each job restores the baseline snapshot (no reload, no new
  engine), trains, is scored.
* :class:`BatchedLoRAWorker`: up to ``compute.student_batch`` LoRA students at
  once on :class:`~soar.engines.lora.BatchedLoRATrainer`: their sampling,
  log-probs, backward and AdamW steps run in shared batches over one base
  model, and they are scored on Q_R in one greedy batch.

Inner RLOO step (3.3, Table 3 student column; :func:`soar.students.inner.rloo_step`, one function for both
workers): ``student.batch_size`` questions of the dataset (a seeded shuffle, cycled), ``student.group_size``
samples each with the student prompt, the B.3 reward against the teacher's answer, leave-one-out advantages per
question, one optimiser step (cosine over the job's steps).  A student is scored by greedy accuracy on the reward
questions (Section 3.2, B.6).

Choices where the paper is silent:

* The student's KL reference is the baseline it started from (the promoted
  student after a promotion).  PEFT LoRA students (sequential) keep the base
  model as reference and the promoted adapter as their start; batched LoRA
  students merge the promoted adapter into the base, which becomes start and
  reference (the issue's reading; a fresh adapter has ``B = 0``).
* Promotion uses the chosen student's weights as they were measured, never a
  re-run: a worker returns each student's trainable weights (on the CPU) with
  its result, and the pool keeps them while
  :class:`~soar.algo.promotion.PromotionCandidates` says they could still be
  chosen.  ``adopt`` puts them in place and the pool scores them again on Q_R;
  the re-check is recorded, so any difference (GPU non-determinism) shows.
* Batched students share one sampling random stream per batch (seeded from
  the batch's jobs), so a student's samples depend on which students share its
  batch; the same jobs in the same batches give the same results (that is what
  the Ray pool's equality with the in-process pool rests on).
"""

from __future__ import annotations

import random
import time
from typing import Any, Protocol

from soar.algo.seeds import derive_seed
from soar.config import SoarConfig, StudentConfig
from soar.data.prompts import student_prompt
from soar.engines.base import SamplingParams
from soar.engines.evaluation import Reward, greedy_accuracy, sampled_correct
from soar.engines.trainer import PolicyTrainer
from soar.math.verify import Verifier
from soar.students.inner import one_student, rloo_step
from soar.types import Problem, StudentJob, StudentPool, StudentResult

__all__ = ["BatchedLoRAWorker", "SequentialWorker", "StudentJob", "StudentPool", "StudentResult", "StudentWorker",
           "build_worker"]


class StudentWorker(Protocol):
    """One engine's worth of students; what a pool drives (in this process or inside a Ray actor)."""

    baseline_version: int
    weights_format: str

    def evaluate(self, job_id: str, questions: list[dict[str, Any]]) -> StudentResult: ...

    def train(self, jobs: list[StudentJob]) -> list[tuple[StudentResult, dict[str, Any]]]: ...

    def success_rates(self, dataset: list[dict[str, Any]], samples: int, seed: int) -> list[float]: ...

    def adopt(self, weights: dict[str, Any]) -> None: ...

    def baseline_weights(self) -> dict[str, Any]: ...

    def baseline_state(self) -> dict[str, Any]: ...

    def load_baseline_state(self, state: dict[str, Any]) -> None: ...


def build_worker(cfg: SoarConfig, model: Any, tokenizer: Any, verifier: Verifier) -> StudentWorker:
    """The worker ``cfg`` asks for: batched LoRA students when ``compute.student_batch`` > 1, else sequential.

    The matmul dtype comes from ``cfg.model`` here and nowhere else, so the in-process pool and every Ray worker
    train in the same precision (a caller that could pass its own once made the two pools differ on bf16 CPUs)."""
    from soar.engines.models import compute_dtype as resolve_compute_dtype

    compute_dtype = resolve_compute_dtype(cfg.model)
    if cfg.compute.student_batch > 1:
        return BatchedLoRAWorker(model, tokenizer, cfg, verifier, compute_dtype)
    return SequentialWorker(model, tokenizer, cfg, verifier, compute_dtype)


def _picks(dataset: list[Problem], seed: int, step: int, size: int) -> list[Problem]:
    """The ``size`` questions of inner step ``step``: a shuffle seeded by the job, cycled."""
    order = list(range(len(dataset)))
    random.Random(seed).shuffle(order)
    return [dataset[order[(step * size + i) % len(order)]] for i in range(size)]


class SequentialWorker:
    """Every student on one :class:`PolicyTrainer`, one after another."""

    def __init__(self, model: Any, tokenizer: Any, cfg: SoarConfig, verifier: Verifier, compute_dtype: Any = None) -> None:
        from soar.engines.generation import trainer_generator

        self.cfg, self.tokenizer, self.reward = cfg, tokenizer, Reward.of(cfg.reward, verifier)
        self.trainer = PolicyTrainer(model, cfg.student, cfg.inner.steps, tokenizer.pad_token_id,
                                     compute_dtype=compute_dtype)
        # compute.generator's engine (vllm: full weights pushed after every step, restore and promotion)
        self.generator = trainer_generator(cfg.compute, self.trainer, tokenizer, compute_dtype)
        self.baseline = self.trainer.snapshot(device="cpu")  # on the host: each student starts from a copy of it
        self.baseline_version = 0
        self.weights_format = "adapter" if cfg.student.finetune == "lora" else "full"

    def evaluate(self, job_id: str, questions: list[dict[str, Any]]) -> StudentResult:
        """The baseline's greedy accuracy on ``questions``."""
        self.trainer.restore(self.baseline)
        return self._evaluate(job_id, questions)

    def train(self, jobs: list[StudentJob]) -> list[tuple[StudentResult, dict[str, Any]]]:
        return [self._train_one(job) for job in jobs]

    def success_rates(self, dataset: list[dict[str, Any]], samples: int, seed: int) -> list[float]:
        """The baseline's sampled success rate on each question of ``dataset`` (learnability, B.4)."""
        self.trainer.restore(self.baseline)
        return _success_rates(self.generator, self.tokenizer, self.reward, self.cfg.student, dataset, samples, seed)

    def adopt(self, weights: dict[str, Any]) -> None:
        """A promoted student's weights become the baseline (and, full fine-tuning, the KL reference)."""
        self.trainer.restore(weights)
        self.baseline = self.trainer.snapshot(device="cpu")
        self.baseline_version += 1
        self.trainer.set_reference_to_current()

    def baseline_weights(self) -> dict[str, Any]:
        return self.baseline

    def baseline_state(self) -> dict[str, Any]:
        """The baseline for a checkpoint; before the first promotion it is the base model every worker loads, so
        no weights are stored (a checkpoint's students part: a few bytes instead of a model's fp32 weights)."""
        return {"weights": self.baseline if self.baseline_version else None, "version": self.baseline_version}

    def load_baseline_state(self, state: dict[str, Any]) -> None:
        from soar.errors import SoarError

        if "weights" not in state:
            raise SoarError("this checkpoint holds batched-LoRA students (compute.student_batch > 1); resume it "
                            "with the run's own config")
        if state["weights"] is None:  # the base model: what this worker was built from
            if self.baseline_version:
                raise SoarError("a worker loads a base-model baseline only before its first promotion")
            self.trainer.restore(self.baseline)
            return
        self.baseline = {k: v.clone() for k, v in state["weights"].items()}
        self.baseline_version = int(state["version"])
        self.trainer.restore(self.baseline)
        self.trainer.set_reference_to_current()

    def _train_one(self, job: StudentJob) -> tuple[StudentResult, dict[str, Any]]:
        import torch

        _check_version(job, self.baseline_version)
        started = time.perf_counter()
        self.trainer.restore(self.baseline, total_steps=job.steps)
        torch.manual_seed(job.seed)
        dataset = [Problem.from_dict(d) for d in job.dataset]
        per_step, tokens, skipped = [], 0, self.trainer.skipped_steps
        for step in range(job.steps):
            (done,) = rloo_step(one_student(self.trainer), self.generator, self.tokenizer, self.reward,
                                [_picks(dataset, job.seed, step, self.cfg.student.batch_size)], self.cfg.student,
                                seed=derive_seed(job.seed, "inner_step", step))
            per_step.append(done.reward)
            tokens += done.tokens
        train_seconds = time.perf_counter() - started
        result = self._evaluate(job.job_id, job.reward_questions)
        result.train_rewards, result.train_seconds, result.tokens = per_step, train_seconds, tokens
        result.skipped_steps = self.trainer.skipped_steps - skipped
        return result, self.trainer.snapshot(device="cpu")

    def _evaluate(self, job_id: str, reward_questions: list[dict[str, Any]]) -> StudentResult:
        return _greedy(self.generator, self.tokenizer, self.reward, self.cfg.student, job_id, reward_questions)


class BatchedLoRAWorker:
    """Up to ``compute.student_batch`` LoRA students trained and scored together over one base model."""

    weights_format = "full"  # the baseline is the base model with every promoted adapter merged in

    def __init__(self, model: Any, tokenizer: Any, cfg: SoarConfig, verifier: Verifier, compute_dtype: Any = None) -> None:
        from soar.engines.generation import hf_generator
        from soar.engines.lora import BatchedLoRATrainer

        if cfg.student.finetune != "lora":
            from soar.errors import ConfigError

            raise ConfigError("compute.student_batch > 1 trains LoRA students: set student.finetune: lora")
        self.cfg, self.tokenizer, self.reward = cfg, tokenizer, Reward.of(cfg.reward, verifier)
        self.engine = BatchedLoRATrainer(model, cfg.student, cfg.compute.student_batch, tokenizer.pad_token_id,
                                         seed=derive_seed(cfg.compute.seed, "lora_init"), compute_dtype=compute_dtype,
                                         rows_per_pass=cfg.compute.batched_rows)
        self.generator = hf_generator(cfg.compute, self.engine.model, tokenizer, compute_dtype)
        self.merges: list[dict[str, Any]] = []
        self.baseline_version = 0

    @property
    def capacity(self) -> int:
        return self.engine.capacity

    def evaluate(self, job_id: str, questions: list[dict[str, Any]]) -> StudentResult:
        """The baseline's (the base model's, adapters off) greedy accuracy on ``questions``."""
        return _greedy(self.generator, self.tokenizer, self.reward, self.cfg.student, job_id, questions)

    def success_rates(self, dataset: list[dict[str, Any]], samples: int, seed: int) -> list[float]:
        return _success_rates(self.generator, self.tokenizer, self.reward, self.cfg.student, dataset, samples, seed)

    def train(self, jobs: list[StudentJob]) -> list[tuple[StudentResult, dict[str, Any]]]:
        """Train ``jobs`` in batches of at most ``compute.student_batch``; each result with its adapter."""
        out = []
        for start in range(0, len(jobs), self.capacity):
            out.extend(self._train_batch(jobs[start:start + self.capacity]))
        return out

    def _train_batch(self, jobs: list[StudentJob]) -> list[tuple[StudentResult, dict[str, Any]]]:
        import torch

        for job in jobs:
            _check_version(job, self.baseline_version)
        steps = {job.steps for job in jobs}
        if len(steps) != 1:
            raise ValueError(f"a batch of students trains one number of steps, got {sorted(steps)}")
        total = steps.pop()
        started = time.perf_counter()
        n, s = len(jobs), self.cfg.student
        self.engine.begin(n, total)
        batch_seed = derive_seed(jobs[0].seed, "batch", *[job.seed for job in jobs])
        torch.manual_seed(batch_seed)
        datasets = [[Problem.from_dict(d) for d in job.dataset] for job in jobs]
        per_step: list[list[float]] = [[] for _ in jobs]
        tokens, skipped = [0] * n, [0] * n
        for step in range(total):
            picks = [_picks(datasets[i], job.seed, step, s.batch_size) for i, job in enumerate(jobs)]
            # fresh students are all the base model exactly: sampled together with adapters off
            done = rloo_step(self.engine.step, self.generator, self.tokenizer, self.reward, picks, s,
                             seed=derive_seed(batch_seed, "inner_step", step), route=not self.engine.fresh)
            for i, part in enumerate(done):
                per_step[i].append(part.reward)
                tokens[i] += part.tokens
                skipped[i] += int(part.stats.get("skipped", 0.0))
        train_seconds = time.perf_counter() - started
        results = self._score(jobs)
        out = []
        for i, (job, result) in enumerate(zip(jobs, results)):
            result.train_rewards, result.train_seconds, result.tokens = per_step[i], train_seconds / n, tokens[i]
            result.skipped_steps = skipped[i]
            out.append((result, {"adapter": self.engine.adapter(i)}))
        return out

    def _score(self, jobs: list[StudentJob]) -> list[StudentResult]:
        """Every student of the batch, greedy on its own Q_R, in one generation."""
        started = time.perf_counter()
        tok = self.tokenizer
        questions = [[Problem.from_dict(d) for d in job.reward_questions] for job in jobs]
        prompt_ids = [tok(student_prompt(p.question, tok), add_special_tokens=False)["input_ids"]
                      for qs in questions for p in qs]
        owners = [i for i, qs in enumerate(questions) for _ in qs]
        groups = self.generator.generate_tokens(prompt_ids, 1, SamplingParams(max_new_tokens=self.cfg.student.max_new_tokens,
                                                                              greedy=True), students=owners)
        rewards = self.reward([g[0].text for g in groups], [p.answer for qs in questions for p in qs])
        full = self.reward.full
        seconds = (time.perf_counter() - started) / len(jobs)
        results, at = [], 0
        for job, qs in zip(jobs, questions):
            correct = [int(r == full) for r in rewards[at:at + len(qs)]]
            at += len(qs)
            results.append(StudentResult(job.job_id, sum(correct) / len(correct) if correct else 0.0, correct,
                                         eval_seconds=seconds))
        return results

    def adopt(self, weights: dict[str, Any]) -> None:
        """Merge a promoted student's adapter into the base: the new baseline and KL reference."""
        self.engine.merge(weights["adapter"])
        self.merges.append(weights["adapter"])
        self.baseline_version += 1

    def baseline_weights(self) -> dict[str, Any]:
        from soar.engines.lora import merged_weights

        return merged_weights(self.engine.model)

    def baseline_state(self) -> dict[str, Any]:
        return {"merges": list(self.merges), "version": self.baseline_version}

    def load_baseline_state(self, state: dict[str, Any]) -> None:
        """Replay the run's merges on this worker's (fresh) base model."""
        from soar.errors import SoarError

        if "merges" not in state:
            raise SoarError("this checkpoint holds one-at-a-time students (compute.student_batch 1); resume it with "
                            "the run's own config")
        if self.merges or self.baseline_version:
            raise SoarError("a batched-LoRA worker loads a baseline only before its first promotion")
        for adapter in state["merges"]:
            self.adopt({"adapter": adapter})
        self.baseline_version = int(state["version"])


def _greedy(generator: Any, tokenizer: Any, reward: Reward, student: StudentConfig, job_id: str,
            questions: list[dict[str, Any]]) -> StudentResult:
    """The generator's policy scored greedily on ``questions`` (student prompt, B.3 reward), timed."""
    started = time.perf_counter()
    scored = greedy_accuracy(generator, tokenizer, [Problem.from_dict(d) for d in questions], reward,
                             max_new_tokens=student.max_new_tokens)
    return StudentResult(job_id, scored.accuracy, scored.correct, eval_seconds=time.perf_counter() - started)


def _success_rates(generator: Any, tokenizer: Any, reward: Reward, student: StudentConfig,
                   dataset: list[dict[str, Any]], samples: int, seed: int) -> list[float]:
    """The generator's sampled success rate on each question of ``dataset`` (learnability, B.4)."""
    s = student
    scored = sampled_correct(generator, tokenizer, [Problem.from_dict(d) for d in dataset], reward, n=samples,
                             sampling=SamplingParams(temperature=s.temperature, top_p=s.top_p,
                                                     max_new_tokens=s.max_new_tokens, seed=seed))
    return [c / samples for c in scored.correct]


def _check_version(job: StudentJob, version: int) -> None:
    if job.baseline != version:
        raise ValueError(f"job {job.job_id} wants baseline {job.baseline}, the worker holds {version}")
