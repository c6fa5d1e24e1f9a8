"""Student pools: the :class:`~soar.types.StudentPool` contract over one worker in this process, or Ray workers.

Both pools cut a step's jobs into the same *batches* (:func:`batches`: at
most ``compute.student_batch`` jobs, one student at a time when it is 1) and
hand each batch to a worker (``soar.students.worker``); the in-process pool
runs them one after another, the Ray pool spreads them over warm workers.
Given the same batches, a worker's results depend only on the baseline and
the jobs, so both pools return the same results for the same seeds.

Promotion: a worker trains students and keeps each one's trainable weights
while :class:`~soar.algo.promotion.PromotionCandidates` says the rule may
still choose it; results travel without weights.  In this process the pool
keeps them (at most r + 1 per batch in flight).  On Ray every worker keeps its
own students' weights and the driver tells it which to drop, so no student's
weights reach the driver during the student phase.  On ``promote`` only the
chosen student's weights travel: once from its worker into Ray's object store,
from there to every other worker (``adopt``), and once to the driver, which
keeps them as the baseline for the checkpoint and for replacement workers.
Then the new baseline is scored again on Q_R (the re-check).  Q_R is scored
in ``compute.workers`` parts (:func:`score_parts`), on Ray one part per worker
at once, in this process one after another, so both pools score alike; a
promotion's ``adopt`` and a resume's baseline go to every worker at once,
each read from the object store (put there once).  Driver memory
is thus one student's weights plus the baseline, whatever the fan-out (issue
26: returning every student's weights cost ~12.9 GB per 3B student, ~411 GB
per outer step of ``paper-math``).

Ray (``compute.pool: ray``; why Ray: warm actors that keep a model loaded,
fractional GPUs, one API from a laptop to a cluster): ``compute.workers``
actors, each with ``compute.worker_cpus`` CPUs and ``compute.worker_gpus``
GPUs (fractions allowed), loads the student model once and keeps it.  A
worker that dies (``RayActorError``: killed, out of memory, node lost) is
replaced by a new one built from the current baseline, and its batch runs
again; other workers' results are kept.  A chosen student whose worker died
after training it is trained again, with its batch, on the replacement (same
batch, same seeds: the same student on the same hardware; the re-check
records any difference).  Replacements for the same work are bounded by
``compute.worker_retries``; past them the run stops with one line naming the
worker and its last error.  Each worker has its own Math-Verify
process pool with its hard timeouts.  ``compute.teacher_gpus`` holds GPUs
for the teacher (the driver) on its node (:func:`reserve_teacher_gpus`), so
no worker shares the teacher's GPU.  ``compute.ray_address`` joins an
existing cluster (``ray start --head`` on one machine, ``ray start --address``
on the others); empty starts a local one.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from soar.algo.promotion import PromotionCandidates
from soar.config import SoarConfig
from soar.types import StudentJob, StudentResult


def batches(jobs: list[StudentJob], size: int) -> list[list[StudentJob]]:
    """``jobs`` in order, cut into batches of at most ``size`` (students trained together)."""
    size = max(1, size)
    return [jobs[i:i + size] for i in range(0, len(jobs), size)]


def score_parts(questions: list[dict[str, Any]], parts: int) -> list[list[dict[str, Any]]]:
    """``questions`` cut into at most ``parts`` contiguous, near-equal, non-empty parts (scored one per worker)."""
    parts = max(1, min(parts, len(questions)))
    size, extra = divmod(len(questions), parts)
    cuts = [i * size + min(i, extra) for i in range(parts + 1)]
    return [questions[a:b] for a, b in zip(cuts, cuts[1:])]


def merge_scores(job_id: str, results: list[StudentResult]) -> StudentResult:
    """One greedy score from the scores of its parts (in order): the correct counts joined, accuracy over all,
    the time of the slowest part (the parts ran at once)."""
    correct = [c for r in results for c in r.correct]
    return StudentResult(job_id, sum(correct) / max(1, len(correct)), correct,
                         eval_seconds=max((r.eval_seconds for r in results), default=0.0))


class _Keeper:
    """What the pool keeps of each trained student the promotion rule may still choose: its weights (in this
    process) or where they are (on Ray: the worker that holds them)."""

    def __init__(self, repeats: int, baseline_accuracy: float) -> None:
        self.candidates = PromotionCandidates(repeats)
        self.baseline_accuracy = baseline_accuracy
        self.kept: dict[tuple[int, int], tuple[str, Any]] = {}

    def add(self, job: StudentJob, result: StudentResult, value: Any) -> list[tuple[tuple[int, int], Any]]:
        """Keep ``value`` for ``job``; returns the ``(key, value)`` of the students that can no longer be chosen."""
        self.kept[(job.dataset_index, job.student_index)] = (job.job_id, value)
        dropped = []
        for key in self.candidates.add(job.dataset_index, job.student_index, result.accuracy - self.baseline_accuracy):
            if key in self.kept:
                dropped.append((key, self.kept.pop(key)[1]))
        return dropped

    def take(self, job: StudentJob) -> Any:
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
        self.parts = cfg.compute.workers
        """Q_R is scored in as many parts as a Ray pool of this config has workers (the same numbers)."""
        self.name = "inprocess" + ("+batched" if self.batch > 1 else "")

    def _evaluate(self, job_id: str, questions: list[dict[str, Any]]) -> StudentResult:
        scores = [self.worker.evaluate(job_id, part) for part in score_parts(questions, self.parts)]
        merged = merge_scores(job_id, scores)
        merged.eval_seconds = sum(score.eval_seconds for score in scores)  # one after another here
        return merged

    @property
    def baseline_version(self) -> int:
        return self.worker.baseline_version

    def baseline_accuracy(self, reward_questions: list[dict[str, Any]]) -> StudentResult:
        return self._evaluate("baseline", reward_questions)

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

    def success_rates(self, datasets: list[list[dict[str, Any]]], samples: int, seeds: list[int]) -> list[list[float]]:
        """The baseline's sampled success rate on each question of each dataset (learnability, B.4), one dataset
        after another; ``seeds[k]`` seeds dataset ``k``'s sampling."""
        return [self.worker.success_rates(dataset, samples, seed) for dataset, seed in zip(datasets, seeds)]

    def memory(self) -> dict[str, Any]:
        """Peak resident memory of the processes that train students (none apart from this one)."""
        return {"workers_peak_rss_bytes": [], "workers_peak_kept": []}

    def promote(self, job: StudentJob) -> StudentResult:
        """Make ``job``'s trained student, as it was measured, the new baseline; returns its accuracy on the job's
        Q_R scored again (the re-check)."""
        self.worker.adopt(self.keeper.take(job))
        return self._evaluate(f"{job.job_id}-recheck", job.reward_questions)

    def baseline_weights(self) -> dict[str, Any]:
        return self.worker.baseline_weights()

    def state_dict(self) -> dict[str, Any]:
        return self.worker.baseline_state()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.worker.load_baseline_state(state)

    def close(self) -> None:
        pass


class _WorkerHost:
    """What runs inside a Ray actor: its own model, verifier and student worker (built once, kept warm), and the
    weights of its trained students that the promotion rule may still choose."""

    def __init__(self, cfg: SoarConfig, state: dict[str, Any] | None, threads: int) -> None:
        import torch

        from soar.engines.models import load_model
        from soar.math.verify import Verifier
        from soar.students.worker import build_worker

        self.output = _Captured()  # what this worker prints, also kept for the driver's workers.log
        sys.stdout, sys.stderr = _Tee(sys.stdout, self.output), _Tee(sys.stderr, self.output)
        if threads:
            torch.set_num_threads(threads)
        model, tokenizer = load_model(cfg.model)
        self.verifier = Verifier(cfg.reward.verify_workers, cfg.reward.verify_timeout_s).__enter__()
        self.worker = build_worker(cfg, model, tokenizer, self.verifier)
        if state is not None and state.get("version"):
            self.worker.load_baseline_state(state)
        self.kept: dict[tuple[int, int], tuple[str, dict[str, Any]]] = {}
        self.peak_kept = 0
        """The most students' weights this worker has held at once (tests and memory reports)."""

    def ready(self) -> tuple[int, str]:
        """This worker's process id and its node's address (named in the driver's error lines)."""
        import ray

        return os.getpid(), ray.util.get_node_ip_address()

    def weights_format(self) -> str:
        return self.worker.weights_format

    def peak_rss_bytes(self) -> int:
        """This worker process's peak resident memory (Linux reports KiB)."""
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    def call(self, method: str, *args: Any) -> Any:
        return getattr(self.worker, method)(*args)

    def train(self, jobs: list[StudentJob]) -> list[StudentResult]:
        """Train ``jobs``; keep each student's weights here, return the results alone."""
        out = self.worker.train(jobs)
        for job, (_, weights) in zip(jobs, out):
            self.kept[(job.dataset_index, job.student_index)] = (job.job_id, weights)
        self.peak_kept = max(self.peak_kept, len(self.kept))
        return [result for result, _ in out]

    def drop(self, keys: list[tuple[int, int]]) -> None:
        for key in keys:
            self.kept.pop(tuple(key), None)  # type: ignore[arg-type]

    def clear(self) -> None:
        self.kept.clear()

    def take(self, key: tuple[int, int], job_id: str) -> dict[str, Any]:
        """The kept weights of student ``key`` (the chosen one); everything else kept here is dropped."""
        kept = self.kept.get(tuple(key))  # type: ignore[arg-type]
        if kept is None or kept[0] != job_id:
            raise RuntimeError(f"worker {os.getpid()} does not hold student {job_id}")
        self.kept.clear()
        return kept[1]

    def gpu_ids(self) -> list[int]:
        return _ray_gpu_ids()

    def drain_output(self) -> str:
        """What this worker's Python code printed (stdout and stderr: warnings, tracebacks it logged) since the
        last call, at most :data:`_Captured.LIMIT` characters of it."""
        return self.output.drain()

    def kept_keys(self) -> list[tuple[int, int]]:
        return sorted(self.kept)

    def memory(self) -> tuple[int, int]:
        """This worker's peak resident memory and the most students' weights it has held at once."""
        return self.peak_rss_bytes(), self.peak_kept


class _Captured:
    """Text written to a worker's streams since the last :meth:`drain` (the newest :data:`LIMIT` characters)."""

    LIMIT = 1_000_000

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.size = 0

    def write(self, text: str) -> None:
        self.parts.append(text)
        self.size += len(text)
        if self.size > 2 * self.LIMIT:
            kept = "".join(self.parts)[-self.LIMIT:]
            self.parts, self.size = [kept], len(kept)

    def drain(self) -> str:
        text = "".join(self.parts)[-self.LIMIT:]
        self.parts, self.size = [], 0
        return text


class _Tee:
    """A text stream that writes through to ``stream`` (Ray's per-worker log files) and into ``captured``."""

    def __init__(self, stream: Any, captured: _Captured) -> None:
        self.stream, self.captured = stream, captured

    def write(self, text: str) -> int:
        self.captured.write(text)
        return self.stream.write(text)

    def __getattr__(self, name: str) -> Any:  # flush, fileno, isatty, encoding ... of the real stream
        return getattr(self.stream, name)


class _TeacherSeat:
    """An actor that only holds ``compute.teacher_gpus`` on the driver's node, so that Ray places no student
    worker on the teacher's GPU."""

    def gpu_ids(self) -> list[int]:
        return _ray_gpu_ids()


def _ray_gpu_ids() -> list[int]:
    """The GPUs Ray assigned to the calling actor."""
    import ray

    return [int(i) for i in ray.get_gpu_ids()]


def connect_ray(cfg: SoarConfig) -> Any:
    """Ray, joined to ``compute.ray_address`` or started locally (once per process)."""
    import ray

    c = cfg.compute
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"address": c.ray_address} if c.ray_address else {
            "num_cpus": max(os.cpu_count() or 1, c.workers * c.worker_cpus), "include_dashboard": False}
        if not c.ray_address:  # a local cluster: its workers train the students, so they run at the driver's
            os.environ.setdefault("RAY_worker_niceness", "0")  # priority (Ray's default, 15, starved them 18x
            # beside two busy processes on 2 cores: a 33 s test took 596 s)
        ray.init(ignore_reinit_error=True, log_to_driver=False, configure_logging=False, **kwargs)
    return ray


def reserve_teacher_gpus(cfg: SoarConfig, timeout_s: float = 120.0) -> tuple[Any, list[int]]:
    """Hold ``compute.teacher_gpus`` on this process's Ray node for the teacher; returns the holding actor (keep it
    for the run) and the GPU ids Ray gave it (the teacher's device)."""
    ray = connect_ray(cfg)
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from soar.errors import SoarError

    here = ray.get_runtime_context().get_node_id()
    seat = ray.remote(num_cpus=0, num_gpus=cfg.compute.teacher_gpus,
                      scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=False))(_TeacherSeat).remote()
    try:
        return seat, ray.get(seat.gpu_ids.remote(), timeout=timeout_s)
    except ray.exceptions.GetTimeoutError:
        ray.kill(seat)
        raise SoarError(f"compute.teacher_gpus {cfg.compute.teacher_gpus:g}: no free GPU on this Ray node for the "
                        f"teacher within {timeout_s:.0f} s") from None


class _Deadlines:
    """How long the driver waits on Ray for each kind of call: ``compute.worker_timeout_s``, or with 0, 4x the
    longest wait of that kind measured so far in this run and never under :attr:`FLOOR_S`."""

    FLOOR_S = 1800.0

    def __init__(self, fixed_s: float) -> None:
        self.fixed_s = fixed_s
        self.longest: dict[str, float] = {}

    def limit(self, kind: str) -> float:
        return self.fixed_s if self.fixed_s > 0 else max(self.FLOOR_S, 4 * self.longest.get(kind, 0.0))

    def setting(self) -> str:
        """The setting behind the limits, for error lines."""
        if self.fixed_s > 0:
            return f"compute.worker_timeout_s {self.fixed_s:g}"
        return "compute.worker_timeout_s 0: 4x the longest wait so far, at least 30 min"

    def record(self, kind: str, seconds: float) -> None:
        self.longest[kind] = max(self.longest.get(kind, 0.0), seconds)


def _out_of_memory(error: BaseException) -> bool:
    """Whether a task error raised inside a worker is an out-of-memory (CUDA's, or the host's ``MemoryError``)."""
    cause = getattr(error, "cause", None) or error
    return any(type(x).__name__ in ("OutOfMemoryError", "MemoryError") or isinstance(x, MemoryError)
               for x in (cause, error))


class _Holder:
    """Where a kept student's weights are: the worker (slot and incarnation) and the batch that trained it."""

    def __init__(self, slot: int, incarnation: int, batch: list[StudentJob]) -> None:
        self.slot, self.incarnation, self.batch = slot, incarnation, batch


class RayStudentPool:
    """Students on ``compute.workers`` warm Ray actors; see the module doc."""

    def __init__(self, cfg: SoarConfig, state: dict[str, Any] | None = None, worker_log: Path | None = None) -> None:
        ray = connect_ray(cfg)
        self.worker_log = worker_log
        """Where what the workers print is appended after each step's students (``RUN/workers.log``), or None."""
        self.ray = ray
        self.cfg = cfg
        c = cfg.compute
        self.remote = ray.remote(num_cpus=c.worker_cpus, num_gpus=c.worker_gpus, max_restarts=0)(_WorkerHost)
        self.threads = c.threads or max(1, int(c.worker_cpus))
        self.repeats, self.batch = cfg.inner.repeats, cfg.compute.student_batch
        self.retries = c.worker_retries
        self.keeper = _Keeper(self.repeats, 0.0)
        self.state = state or {"version": 0}
        """The baseline a replacement worker is built from; after a promotion it holds the promoted weights (the
        one copy of them in the driver, also what checkpoints and ``promoted/`` are written from)."""
        self.deadlines = _Deadlines(c.worker_timeout_s)
        self._stored: tuple[dict[str, Any], Any] | None = None
        """(the state, its object ref) while ``self.state`` is that state."""
        self.actors = [self._spawn() for _ in range(c.workers)]
        self.incarnations = [0] * c.workers
        self.nodes = [""] * c.workers
        """Each worker's node address, as it reported it when it started."""
        self._await_ready(list(range(c.workers)))
        self.weights_format = ray.get(self.actors[0].weights_format.remote())
        self.baseline_version = int(self.state.get("version", 0))
        self.replaced = 0
        """Workers replaced after dying."""
        self.in_flight: dict[Any, tuple[int, int, list[StudentJob]]] = {}
        """The batches on workers now: object ref -> (worker index, batch number, jobs)."""
        self.name = "ray" + ("+batched" if self.batch > 1 else "")

    def _spawn(self) -> Any:
        return self.remote.remote(self.cfg, self._stored_state(), self.threads)

    def _stored_state(self) -> Any:
        """``self.state`` in Ray's object store, put there once per baseline (workers read it from there: a
        baseline sent to N workers is not serialised N times)."""
        if self._stored is None or self._stored[0] is not self.state:
            self._stored = (self.state, self.ray.put(self.state))
        return self._stored[1]

    def _await_ready(self, slots: list[int]) -> None:
        """Wait for the workers in ``slots`` to start (placed by Ray, model loaded); one that does not within the
        start deadline stops the run with one line naming what it asks for and what the cluster has free."""
        from soar.errors import SoarError

        started, limit = time.perf_counter(), self.deadlines.limit("start")
        refs = {self.actors[i].ready.remote(): i for i in slots}
        ready, waiting = self.ray.wait(list(refs), num_returns=len(refs), timeout=limit)
        for ref in ready:
            try:
                self.nodes[refs[ref]] = self.ray.get(ref)[1]
            except self.ray.exceptions.RayActorError:
                pass  # died as it started (placed on a node being lost): its next call replaces it, within retries
        if waiting:
            c = self.cfg.compute
            free, total = self.ray.available_resources(), self.ray.cluster_resources()
            has = ", ".join(f"{free.get(k, 0):g} of {total.get(k, 0):g} {k}" for k in ("CPU", "GPU"))
            self.close()
            raise SoarError(f"Ray did not start worker {', '.join(str(refs[r]) for r in waiting)} within {limit:.0f} s: "
                            f"each asks for {c.worker_cpus:g} CPU and {c.worker_gpus:g} GPU (compute.worker_cpus, "
                            f"compute.worker_gpus) and the cluster has {has} free; add nodes, lower "
                            f"those settings or compute.workers, or raise compute.worker_timeout_s")
        self.deadlines.record("start", time.perf_counter() - started)

    def _wait(self, ref: Any, kind: str, what: str, index: int) -> Any:
        """``ray.get(ref)`` within the deadline of ``kind``; a worker that does not answer, or runs out of memory,
        stops the run with one line (Ray actor deaths pass through to the caller, which replaces the worker)."""
        from soar.errors import SoarError

        started, limit = time.perf_counter(), self.deadlines.limit(kind)
        try:
            value = self.ray.get(ref, timeout=limit)
        except self.ray.exceptions.GetTimeoutError:
            raise SoarError(f"Ray worker {index} ({self.nodes[index] or 'node unknown'}) did not finish {what} "
                            f"within {limit:.0f} s ({self.deadlines.setting()}); a node lost for good or a hung "
                            f"worker? The last checkpoint is kept: soar train --resume continues") from None
        except self.ray.exceptions.RayTaskError as error:
            if not _out_of_memory(error):
                raise
            raise self._oom(index, what) from None
        self.deadlines.record(kind, time.perf_counter() - started)
        return value

    def _oom(self, index: int, what: str) -> Exception:
        from soar.errors import SoarError

        return SoarError(f"Ray worker {index} ({self.nodes[index] or 'node unknown'}) ran out of memory running "
                         f"{what}: lower student.micro_batch_size (or compute.batched_rows, compute.student_batch), "
                         f"or give each worker more of a device (compute.worker_gpus); the last checkpoint is kept")

    def _get(self, index: int, method: str, *args: Any, what: str) -> Any:
        """The host method ``method`` on worker ``index``, replacing the worker when it dies, at most
        ``compute.worker_retries`` times (``what``: the work, for the error line)."""
        deaths = 0
        while True:
            try:
                return self._wait(getattr(self.actors[index], method).remote(*args), "call", what, index)
            except self.ray.exceptions.RayActorError as error:
                deaths += 1
                self._replace(index, error, deaths, what)

    def _on_all(self, method: str, *args: Any, what: str) -> None:
        """The student-worker method ``method`` on every worker at once (each call is sent before any is waited
        for); a worker that dies is replaced, built from ``self.state`` (which already holds what ``method``
        would have put in place).  Pass large arguments as object refs: each is then read from the store."""
        refs = [actor.call.remote(method, *args) for actor in self.actors]
        for index, ref in enumerate(refs):
            try:
                self._wait(ref, "call", what, index)
            except self.ray.exceptions.RayActorError as error:
                self._replace(index, error, 1, what)

    def _replace(self, index: int, error: BaseException, deaths: int, what: str) -> None:
        """A new worker in slot ``index`` (built from the current baseline), unless this work has used its retries."""
        last = (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
        if deaths > self.retries:
            from soar.errors import SoarError

            raise SoarError(f"Ray worker {index} died {deaths} times running {what} (compute.worker_retries "
                            f"{self.retries}); last error: {last}")
        print(f"Ray worker {index} died running {what} ({last}); replacing it (retry {deaths} of {self.retries})",
              file=sys.stderr, flush=True)
        self.ray.kill(self.actors[index], no_restart=True)
        self.actors[index] = self._spawn()
        self.incarnations[index] += 1
        self.replaced += 1
        self._await_ready([index])  # a replacement Ray cannot place (a lost node, a full cluster) stops the run

    def baseline_accuracy(self, reward_questions: list[dict[str, Any]]) -> StudentResult:
        return self._evaluate("baseline", reward_questions, "the baseline's evaluation")

    def _evaluate(self, job_id: str, questions: list[dict[str, Any]], what: str) -> StudentResult:
        """The baseline scored on ``questions``, one part per worker, all at once (:func:`score_parts`); a worker
        that dies is replaced and scores its part again."""
        parts = score_parts(questions, len(self.actors))
        return merge_scores(job_id, self._scatter([("evaluate", job_id, part) for part in parts], what))

    def _scatter(self, calls: list[tuple[Any, ...]], what: str) -> list[Any]:
        """Worker method calls ``(method, *args)``, call ``i`` on worker ``i % workers``, all sent before any is
        waited for; their answers in order.  A worker that dies is replaced (once, though several of its calls
        were in flight) and runs its calls again."""
        n = len(self.actors)
        sent = [self.incarnations[i % n] for i in range(len(calls))]
        refs = [self.actors[i % n].call.remote(*call) for i, call in enumerate(calls)]
        answers = []
        for i, (ref, call) in enumerate(zip(refs, calls)):
            index = i % n
            try:
                answers.append(self._wait(ref, "call", what, index))
            except self.ray.exceptions.RayActorError as error:
                if self.incarnations[index] == sent[i]:  # not replaced yet for an earlier call of this batch
                    self._replace(index, error, 1, what)
                answers.append(self._get(index, "call", *call, what=what))
        return answers

    def run(self, jobs: list[StudentJob], baseline_accuracy: float,
            progress: Callable[[StudentResult], None] | None = None) -> list[StudentResult]:
        """Spread ``jobs``' batches over the workers (a batch is at most ``compute.student_batch`` jobs, and no
        larger than an even share per worker); a batch whose worker dies runs again on its replacement.  Workers
        keep their students' weights; as results arrive they are told which can no longer be chosen."""
        ray = self.ray
        self.keeper = _Keeper(self.repeats, baseline_accuracy)
        for actor in self.actors:
            actor.clear.remote()  # ordered before the step's first batch on each worker
        size = min(self.batch, max(1, math.ceil(len(jobs) / len(self.actors))))
        pending = list(enumerate(batches(jobs, size)))
        deaths: dict[int, int] = {}
        done: dict[int, list[StudentResult]] = {}
        running: dict[Any, tuple[int, int, list[StudentJob]]] = {}  # ref -> (actor, batch number, batch)
        started: dict[int, float] = {}  # batch number -> when it went to its worker
        self.in_flight = running  # visible while run() works (progress displays, tests)
        idle = list(range(len(self.actors)))
        while pending or running:
            while pending and idle:
                actor = idle.pop(0)
                number, batch = pending.pop(0)
                running[self.actors[actor].train.remote(batch)] = (actor, number, batch)
                started[number] = time.perf_counter()
            limit = self.deadlines.limit("batch")
            ready, _ = ray.wait(list(running), num_returns=1, timeout=limit)
            if not ready:
                from soar.errors import SoarError

                late = ", ".join(f"worker {a} ({self.nodes[a] or 'node unknown'}) students {b[0].job_id}.."
                                 f"{b[-1].job_id}" for a, _, b in running.values())
                raise SoarError(f"no batch of students finished within {limit:.0f} s ({late}; "
                                f"{self.deadlines.setting()}): a node lost for good or a "
                                f"hung worker? The last checkpoint is kept: soar train --resume continues")
            actor, number, batch = running.pop(ready[0])
            try:
                done[number] = ray.get(ready[0])
                self.deadlines.record("batch", time.perf_counter() - started[number])
            except ray.exceptions.RayTaskError as error:
                if not _out_of_memory(error):
                    raise
                raise self._oom(actor, f"students {batch[0].job_id}..{batch[-1].job_id}") from None
            except ray.exceptions.RayActorError as error:
                deaths[number] = deaths.get(number, 0) + 1
                self._replace(actor, error, deaths[number], f"students {batch[0].job_id}..{batch[-1].job_id}")
                pending.insert(0, (number, batch))
            else:
                drops: dict[int, list[tuple[int, int]]] = {}
                for job, result in zip(batch, done[number]):
                    for key, holder in self.keeper.add(job, result, _Holder(actor, self.incarnations[actor], batch)):
                        if self.incarnations[holder.slot] == holder.incarnation:
                            drops.setdefault(holder.slot, []).append(key)
                for slot, keys in drops.items():
                    self.actors[slot].drop.remote(keys)  # no reply needed: a worker runs its calls in order
                if progress:
                    for result in done[number]:
                        progress(result)
            idle.append(actor)
        self.drain_output()  # the step's worker output into workers.log, while the teacher's phase is next
        return [result for number in sorted(done) for result in done[number]]

    def success_rates(self, datasets: list[list[dict[str, Any]]], samples: int, seeds: list[int]) -> list[list[float]]:
        """Learnability (B.4): dataset ``k`` sampled by worker ``k % workers``, all at once (each worker holds the
        same baseline, so the rates do not depend on which one samples)."""
        return self._scatter([("success_rates", dataset, samples, seed) for dataset, seed in zip(datasets, seeds)],
                             "the learnability reward")

    def promote(self, job: StudentJob) -> StudentResult:
        """Every worker adopts ``job``'s student before anything else runs; returns the re-check on Q_R.

        The weights leave the worker that holds them once, into Ray's object store; the other workers read them
        from there, and the driver once, for the checkpoint and for replacement workers."""
        holder: _Holder = self.keeper.take(job)
        key = (job.dataset_index, job.student_index)
        deaths = 0
        while True:
            try:
                if self.incarnations[holder.slot] != holder.incarnation:  # its worker died since: train it again
                    self._wait(self.actors[holder.slot].train.remote(holder.batch), "batch",
                               f"students {holder.batch[0].job_id}..{holder.batch[-1].job_id}", holder.slot)
                    holder.incarnation = self.incarnations[holder.slot]
                ref = self.actors[holder.slot].take.remote(key, job.job_id)
                weights = self._wait(ref, "call", f"the promotion of {job.job_id}", holder.slot)
                break
            except self.ray.exceptions.RayActorError as error:
                deaths += 1
                self._replace(holder.slot, error, deaths, f"the promotion of {job.job_id}")
        self.baseline_version += 1
        self.state = {**self._driver_state(weights), "version": self.baseline_version}
        self._on_all("adopt", ref, what=f"the promotion of {job.job_id}")  # each worker reads the stored weights
        return self._evaluate(f"{job.job_id}-recheck", job.reward_questions, "the re-check")

    def _driver_state(self, weights: dict[str, Any]) -> dict[str, Any]:
        """The baseline state after adopting ``weights`` (what a replacement worker is built from)."""
        if "adapter" in weights:  # batched LoRA: the merges so far plus this one
            return {"merges": [*self.state.get("merges", []), weights["adapter"]]}
        return {"weights": weights}

    def baseline_weights(self) -> dict[str, Any]:
        """The baseline's weights: the driver's copy after a promotion of full or LoRA students; batched-LoRA
        baselines (the base with adapters merged) are read from a worker."""
        if "weights" in self.state and self.state.get("weights") is not None:
            return self.state["weights"]
        return self._get(0, "call", "baseline_weights", what="reading the baseline")

    def state_dict(self) -> dict[str, Any]:
        """The baseline for a checkpoint: the driver's own state once promoted (no copy fetched), else a worker's
        (before any promotion it holds no weights)."""
        if self.baseline_version and ("weights" in self.state or "merges" in self.state):
            return dict(self.state)
        return self._get(0, "call", "baseline_state", what="reading the baseline")

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Every (fresh) worker takes ``state`` as its baseline (a resumed run); replacements are built from it."""
        self.state = state
        self.baseline_version = int(state.get("version", 0))
        self._on_all("load_baseline_state", self._stored_state(), what="loading the checkpoint's baseline")

    def memory(self) -> dict[str, Any]:
        """Per worker, its peak resident memory and the most students' weights it has held at once."""
        rows = [self._get(i, "memory", what="reading its memory") for i in range(len(self.actors))]
        return {"workers_peak_rss_bytes": [rss for rss, _ in rows], "workers_peak_kept": [kept for _, kept in rows]}

    def drain_output(self, timeout_s: float = 60.0) -> None:
        """Append what every worker printed since the last drain to ``worker_log``, one block per worker headed
        by its index and node.  A worker that does not answer within ``timeout_s`` (hung, or died and took its
        output with it) is passed over: Ray's session logs keep a copy, and the run's own deadlines name it."""
        if self.worker_log is None or not self.actors:
            return
        refs = [actor.drain_output.remote() for actor in self.actors]
        ready = set(self.ray.wait(refs, num_returns=len(refs), timeout=timeout_s)[0])
        blocks = []
        for index, ref in enumerate(refs):
            try:
                text = self.ray.get(ref) if ref in ready else ""
            except self.ray.exceptions.RayActorError:
                continue
            if text:
                blocks.append(f"== worker {index} ({self.nodes[index] or 'node unknown'}) ==\n{text.rstrip()}\n")
        if blocks:
            with open(self.worker_log, "a", encoding="utf-8") as handle:
                handle.write("".join(blocks))

    def close(self) -> None:
        if self.actors:
            try:
                self.drain_output(timeout_s=10.0)
            except Exception:  # closing after a failure: what was printed is in Ray's session logs too
                pass
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


def build_pool(cfg: SoarConfig, model: Any, tokenizer: Any, verifier: Any, worker_log: Path | None = None) -> Any:
    """The pool ``compute.pool`` names (``model``: the student's copy, used by the in-process pool only;
    ``worker_log``: where Ray workers' output is appended, see :meth:`RayStudentPool.drain_output`)."""
    if cfg.compute.pool == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            from soar.errors import ConfigError

            raise ConfigError("compute.pool: ray needs Ray: pip install 'ray[default]' (or the soar[ray] extra)") from None
        return RayStudentPool(cfg, worker_log=worker_log)
    from soar.students.worker import build_worker

    return InProcessStudentPool(build_worker(cfg, model, tokenizer, verifier), cfg)
