"""Student pools: the :class:`~soar.types.StudentPool` contract over one worker in this process, or Ray workers.

Both pools cut a step's jobs into the same *batches* (:func:`batches`: at
most ``compute.student_batch`` jobs, one student at a time when it is 1) and
hand each batch to a worker (``soar.loops.student``); the in-process pool
runs them one after another, the Ray pool spreads them over warm workers.
Given the same batches, a worker's results depend only on the baseline and
the jobs, so both pools return the same results for the same seeds.

Promotion: workers return every student's trainable weights with its result;
the pool keeps those that :class:`~soar.algo.promotion.PromotionCandidates`
says the rule may still choose (at most r + 1 per batch in flight) and, on
``promote``, sends the chosen weights to every worker (``adopt``) before the
next job, then scores the new baseline again on Q_R (the re-check).

Ray (``compute.pool: ray``; why Ray: warm actors that keep a model loaded,
fractional GPUs, one API from a laptop to a cluster): ``compute.workers``
actors, each with ``compute.worker_cpus`` CPUs and ``compute.worker_gpus``
GPUs (fractions allowed), loads the student model once and keeps it.  A
worker that dies (``RayActorError``: killed, out of memory, node lost) is
replaced by a new one built from the current baseline, and its batch runs
again; other workers' results are kept.  Each worker has its own Math-Verify
process pool with its hard timeouts.  ``compute.ray_address`` joins an
existing cluster (``ray start --head`` on one machine, ``ray start --address``
on the others); empty starts a local one.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

from soar.algo.promotion import PromotionCandidates
from soar.config import SoarConfig
from soar.types import StudentJob, StudentResult


def batches(jobs: list[StudentJob], size: int) -> list[list[StudentJob]]:
    """``jobs`` in order, cut into batches of at most ``size`` (students trained together)."""
    size = max(1, size)
    return [jobs[i:i + size] for i in range(0, len(jobs), size)]


class _Keeper:
    """The weights of the trained students the promotion rule may still choose."""

    def __init__(self, repeats: int, baseline_accuracy: float) -> None:
        self.candidates = PromotionCandidates(repeats)
        self.baseline_accuracy = baseline_accuracy
        self.kept: dict[tuple[int, int], tuple[str, dict[str, Any]]] = {}

    def add(self, job: StudentJob, result: StudentResult, weights: dict[str, Any]) -> None:
        self.kept[(job.dataset_index, job.student_index)] = (job.job_id, weights)
        for key in self.candidates.add(job.dataset_index, job.student_index, result.accuracy - self.baseline_accuracy):
            self.kept.pop(key, None)

    def take(self, job: StudentJob) -> dict[str, Any]:
        kept = self.kept.get((job.dataset_index, job.student_index))
        if kept is None or kept[0] != job.job_id:
            raise RuntimeError(f"student {job.job_id} was not kept; the pool keeps only the students the promotion "
                               f"rule can still choose ({sorted(name for name, _ in self.kept.values())})")
        self.kept = {}
        return kept[1]


class InProcessStudentPool:
    """Every student on one worker in this process (batched LoRA students, or one at a time)."""

    def __init__(self, worker: Any, cfg: SoarConfig) -> None:
        self.worker = worker
        self.repeats, self.batch = cfg.inner.repeats, cfg.compute.student_batch
        self.keeper = _Keeper(self.repeats, 0.0)
        self.weights_format = worker.weights_format
        self.name = "inprocess" + ("+batched" if self.batch > 1 else "")

    @property
    def baseline_version(self) -> int:
        return self.worker.baseline_version

    def baseline_accuracy(self, reward_questions: list[dict[str, Any]]) -> StudentResult:
        return self.worker.evaluate("baseline", reward_questions)

    def run(self, jobs: list[StudentJob], baseline_accuracy: float,
            progress: Callable[[StudentResult], None] | None = None) -> list[StudentResult]:
        """Train and score ``jobs`` batch by batch, keeping the weights of every student the promotion rule may
        still choose (R_kj = accuracy - ``baseline_accuracy``: the numbers the rule itself sees)."""
        self.keeper = _Keeper(self.repeats, baseline_accuracy)
        results = []
        for batch in batches(jobs, self.batch):
            for job, (result, weights) in zip(batch, self.worker.train(batch)):
                self.keeper.add(job, result, weights)
                results.append(result)
                if progress:
                    progress(result)
        return results

    def success_rates(self, dataset: list[dict[str, Any]], samples: int, seed: int) -> list[float]:
        return self.worker.success_rates(dataset, samples, seed)

    def promote(self, job: StudentJob) -> StudentResult:
        """Make ``job``'s trained student, as it was measured, the new baseline; returns its accuracy on the job's
        Q_R scored again (the re-check)."""
        self.worker.adopt(self.keeper.take(job))
        return self.worker.evaluate(f"{job.job_id}-recheck", job.reward_questions)

    def baseline_weights(self) -> dict[str, Any]:
        return self.worker.baseline_weights()

    def state_dict(self) -> dict[str, Any]:
        return self.worker.baseline_state()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.worker.load_baseline_state(state)

    def close(self) -> None:
        pass


class _WorkerHost:
    """What runs inside a Ray actor: its own model, verifier and student worker (built once, kept warm)."""

    def __init__(self, cfg: SoarConfig, state: dict[str, Any] | None, threads: int) -> None:
        import torch

        from soar.engines.models import compute_dtype, load_model
        from soar.loops.student import build_worker
        from soar.math.verify import Verifier

        if threads:
            torch.set_num_threads(threads)
        model, tokenizer = load_model(cfg.model)
        self.verifier = Verifier(cfg.reward.verify_workers, cfg.reward.verify_timeout_s).__enter__()
        self.worker = build_worker(cfg, model, tokenizer, self.verifier, compute_dtype(cfg.model))
        if state is not None and state.get("version"):
            self.worker.load_baseline_state(state)

    def ready(self) -> int:
        return os.getpid()

    def weights_format(self) -> str:
        return self.worker.weights_format

    def peak_rss_bytes(self) -> int:
        """This worker process's peak resident memory (Linux reports KiB)."""
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    def call(self, method: str, *args: Any) -> Any:
        return getattr(self.worker, method)(*args)


class RayStudentPool:
    """Students on ``compute.workers`` warm Ray actors; see the module doc."""

    def __init__(self, cfg: SoarConfig, state: dict[str, Any] | None = None) -> None:
        import ray

        self.ray = ray
        self.cfg = cfg
        c = cfg.compute
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"address": c.ray_address} if c.ray_address else {
                "num_cpus": max(os.cpu_count() or 1, c.workers * c.worker_cpus), "include_dashboard": False}
            ray.init(ignore_reinit_error=True, log_to_driver=False, configure_logging=False, **kwargs)
        self.remote = ray.remote(num_cpus=c.worker_cpus, num_gpus=c.worker_gpus, max_restarts=0)(_WorkerHost)
        self.threads = c.threads or max(1, int(c.worker_cpus))
        self.repeats, self.batch = cfg.inner.repeats, cfg.compute.student_batch
        self.keeper = _Keeper(self.repeats, 0.0)
        self.state = state or {"version": 0}
        self.actors = [self._spawn() for _ in range(c.workers)]
        ray.get([a.ready.remote() for a in self.actors])
        self.weights_format = ray.get(self.actors[0].weights_format.remote())
        self.baseline_version = int(self.state.get("version", 0))
        self.replaced = 0
        """Workers replaced after dying."""
        self.in_flight: dict[Any, tuple[int, int, list[StudentJob]]] = {}
        """The batches on workers now: object ref -> (worker index, batch number, jobs)."""
        self.name = "ray" + ("+batched" if self.batch > 1 else "")

    def _spawn(self) -> Any:
        return self.remote.remote(self.cfg, self.state, self.threads)

    def _on_any(self, method: str, *args: Any) -> Any:
        """``method`` on one worker, replacing dead workers until one answers."""
        while True:
            try:
                return self.ray.get(self.actors[0].call.remote(method, *args))
            except self.ray.exceptions.RayActorError:
                self._replace(0)

    def _replace(self, index: int) -> None:
        self.ray.kill(self.actors[index], no_restart=True)
        self.actors[index] = self._spawn()
        self.replaced += 1

    def baseline_accuracy(self, reward_questions: list[dict[str, Any]]) -> StudentResult:
        return self._on_any("evaluate", "baseline", reward_questions)

    def run(self, jobs: list[StudentJob], baseline_accuracy: float,
            progress: Callable[[StudentResult], None] | None = None) -> list[StudentResult]:
        """Spread ``jobs``' batches over the workers (a batch is at most ``compute.student_batch`` jobs, and no
        larger than an even share per worker); a batch whose worker dies runs again on its replacement."""
        ray = self.ray
        self.keeper = _Keeper(self.repeats, baseline_accuracy)
        size = min(self.batch, max(1, math.ceil(len(jobs) / len(self.actors))))
        pending = list(enumerate(batches(jobs, size)))
        done: dict[int, list[tuple[StudentResult, dict[str, Any]]]] = {}
        running: dict[Any, tuple[int, int, list[StudentJob]]] = {}  # ref -> (actor, batch number, batch)
        self.in_flight = running  # visible while run() works (progress displays, tests)
        idle = list(range(len(self.actors)))
        while pending or running:
            while pending and idle:
                actor = idle.pop(0)
                number, batch = pending.pop(0)
                running[self.actors[actor].call.remote("train", batch)] = (actor, number, batch)
            ready, _ = ray.wait(list(running), num_returns=1)
            actor, number, batch = running.pop(ready[0])
            try:
                done[number] = ray.get(ready[0])
            except ray.exceptions.RayActorError:
                self._replace(actor)
                pending.insert(0, (number, batch))
            else:
                for job, (result, weights) in zip(batch, done[number]):
                    self.keeper.add(job, result, weights)
                    if progress:
                        progress(result)
            idle.append(actor)
        return [result for number in sorted(done) for result, _ in done[number]]

    def success_rates(self, dataset: list[dict[str, Any]], samples: int, seed: int) -> list[float]:
        return self._on_any("success_rates", dataset, samples, seed)

    def promote(self, job: StudentJob) -> StudentResult:
        """Every worker adopts ``job``'s student before anything else runs; returns the re-check on Q_R."""
        weights = self.keeper.take(job)
        self.baseline_version += 1
        self.state = {**self._driver_state(weights), "version": self.baseline_version}
        for index in range(len(self.actors)):
            try:
                self.ray.get(self.actors[index].call.remote("adopt", weights))
            except self.ray.exceptions.RayActorError:
                self._replace(index)  # built from self.state, which already holds the promotion
        return self._on_any("evaluate", f"{job.job_id}-recheck", job.reward_questions)

    def _driver_state(self, weights: dict[str, Any]) -> dict[str, Any]:
        """The baseline state after adopting ``weights`` (what a replacement worker is built from)."""
        if "adapter" in weights:  # batched LoRA: the merges so far plus this one
            return {"merges": [*self.state.get("merges", []), weights["adapter"]]}
        return {"weights": weights}

    def baseline_weights(self) -> dict[str, Any]:
        return self._on_any("baseline_weights")

    def state_dict(self) -> dict[str, Any]:
        return self._on_any("baseline_state")

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Every (fresh) worker takes ``state`` as its baseline (a resumed run); replacements are built from it."""
        self.state = state
        self.baseline_version = int(state.get("version", 0))
        for index in range(len(self.actors)):
            try:
                self.ray.get(self.actors[index].call.remote("load_baseline_state", state))
            except self.ray.exceptions.RayActorError:
                self._replace(index)

    def close(self) -> None:
        for actor in self.actors:
            self.ray.kill(actor, no_restart=True)
        self.actors = []


def pool_description(cfg: SoarConfig) -> str:
    """How the students of a step are trained, in words (the train log's first lines)."""
    c, s = cfg.compute, cfg.student
    how = (f"batched LoRA, up to {c.student_batch} at once (rank {s.lora_rank})" if c.student_batch > 1 else
           f"one at a time, {'LoRA' if s.finetune == 'lora' else 'full fine-tuning'}")
    where = (f"on {c.workers} Ray workers ({c.worker_cpus:g} CPU, {c.worker_gpus:g} GPU each"
             f"{', cluster ' + c.ray_address if c.ray_address else ', local'})" if c.pool == "ray" else "in this process")
    return f"{how}, {where}"


def build_pool(cfg: SoarConfig, model: Any, tokenizer: Any, verifier: Any, compute_dtype: Any = None) -> Any:
    """The pool ``compute.pool`` names (``model``: the student's copy, used by the in-process pool only)."""
    if cfg.compute.pool == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            from soar.errors import ConfigError

            raise ConfigError("compute.pool: ray needs Ray: pip install 'ray[default]' (or the soar[ray] extra)") from None
        return RayStudentPool(cfg)
    from soar.loops.student import build_worker

    return InProcessStudentPool(build_worker(cfg, model, tokenizer, verifier, compute_dtype), cfg)
