"""``soar train``: Algorithm 1, the SOAR outer loop, resumable.

Per outer step t: sample B*g*n accepted QA pairs from the teacher; partition
into B*g datasets X_k (B RLOO groups of g, ``teacher.batch_size`` and
``group_size``; the reading is in ``soar.loops.teacher``); draw M reward
questions Q_R from the hard train split; score the baseline student on Q_R
once; train r students per dataset from the baseline (``StudentPool``), score
each greedily on Q_R; R_kj = acc - baseline, R_k = mean_j R_kj (``grounded``),
or the B.4 learnability of X_k for the baseline student (``learnability``);
update the promotion state over all B*g datasets and maybe promote the
measured median student of the best one; one teacher RLOO update, leave-one-out
within each group; write the step's records and a checkpoint.

Choices where the paper is silent (see also ``soar.algo.promotion`` and
``soar.students.worker``):

* Every random choice is seeded by hashing (compute.seed, phase, step, group,
  dataset, student) (``soar.algo.seeds``), so a resumed run needs no RNG state
  to reproduce an uninterrupted one (torch's RNG state is saved all the same).
* A promoted student is also scored greedily on the whole hard train split and
  kept under ``promoted/``: PS is the one with the best such accuracy (4.3).
* Teacher and student start as two copies of the same base model.
* ``learnability`` trains no students, so nothing can be promoted: promotion is
  off in that mode (Intrinsic-T's teacher is evaluated by sampling, 4.5).
"""

from __future__ import annotations

import copy
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from soar.algo.parsing import Parseable
from soar.algo.promotion import (
    Decision,
    PromotionState,
    decide_promotion,
    grounded_rewards,
    inner_steps,
    learnability_reward,
    partition,
)
from soar.algo.seeds import derive_seed
from soar.analysis.diversity import ngram_kernel, vendi_score
from soar.config import SoarConfig, load_config, resume_overrides, to_yaml
from soar.data.load import load_hard_set
from soar.data.provenance import require_provenance
from soar.engines.base import Generator, push_weights
from soar.errors import ConfigError, SoarError
from soar.io import format_bytes
from soar.loops.run_dir import RunDir
from soar.loops.setup import setup
from soar.loops.teacher import AcceptanceError, TeacherRollout, TeacherSample, sample_teacher, teacher_update
from soar.students.pool import pool_description
from soar.types import Problem, StepRecord, StudentJob, StudentPool, StudentResult


@dataclass
class Summary:
    run_dir: Path
    steps: int
    promotions: int
    promotion_questions: int


def train(cfg: SoarConfig | None = None, out: str | Path | None = None, resume: str | Path | None = None,
          console: Console | None = None, invocation: str = "--config CONFIG.yaml",
          resume_overrides: dict[str, Any] | None = None) -> Summary:
    """Run (or, with ``resume``, continue) Algorithm 1.  ``invocation``: the ``--preset``/``--config`` words a hint
    to run ``soar filter`` repeats; ``resume_overrides``: settings of :data:`soar.config.RESUME_SETTINGS` the
    resumed run takes from now on (written into its ``config.yaml``)."""
    from soar.engines.generation import build_generator
    from soar.engines.models import matmul_dtype_name
    from soar.engines.trainer import PolicyTrainer

    console = console or Console()
    run, cfg, hard = _open_run(cfg, out, resume, invocation, resume_overrides)
    B, g, n, r = cfg.teacher.batch_size, cfg.teacher.group_size, cfg.inner.dataset_size, cfg.inner.repeats
    console.print(f"run {run.path}  |  hard set {len(hard.train)} train / {len(hard.test)} test  |  B={B} g={g} n={n} "
                  f"r={r}: {B * g} datasets, {B * g * r} students per outer step")
    started = time.perf_counter()
    _seat, device = _teacher_seat(cfg, console)  # held until train() returns
    with setup(cfg, device=device, seed=True) as s:
        student_model = copy.deepcopy(s.model) if cfg.compute.pool == "inprocess" else None  # Ray workers: their own
        teacher = PolicyTrainer(s.model, cfg.teacher, cfg.outer_steps, s.tokenizer.pad_token_id,
                                compute_dtype=s.precision)
        generator = build_generator(cfg.compute, teacher.model, s.tokenizer, compute_dtype=s.precision)
        console.print(f"model {cfg.model.name} loaded in {time.perf_counter() - started:.1f} s  |  weights "
                      f"{cfg.model.dtype}, matmuls {matmul_dtype_name(cfg.model)}")
        with s.student_pool(student_model, worker_log=run.path / "workers.log") as pool:
            console.print(f"students: {pool_description(cfg)}")
            promotion, first = _resume(run, resume, teacher, generator, pool, console)
            parts = Teacher(teacher, generator, s.tokenizer, s.verifier.parseable_many)
            with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                          console=console, transient=True) as progress:
                tasks = (progress.add_task("outer steps", total=cfg.outer_steps, completed=first),
                         progress.add_task("teacher QA pairs", total=B * g * n),
                         progress.add_task("students", total=B * g * r))
                after = _AfterStep(cfg, run, teacher, pool, console, first)
                for step in range(first, cfg.outer_steps):
                    book = StepBook(progress, tasks[1], tasks[2], run, step)
                    try:
                        outcome = outer_step(cfg, step, hard.train, parts, pool, promotion, book)
                    except AcceptanceError as exc:
                        raise AcceptanceError(f"{exc} To go on: raise teacher.max_attempts_factor in "
                                              f"{run.path / 'config.yaml'}, then soar train --resume {run.path}") from None
                    promotion = outcome.promotion
                    after.step(record_step(cfg, outcome, run, pool, hard.train, book), promotion)
                    progress.advance(tasks[0])

    run.set_status(cfg.outer_steps - 1, "done")
    summary = Summary(run.path, cfg.outer_steps, promotion.stage, len(run.read("promotion_questions.jsonl")))
    console.print(f"done: {summary.steps} outer steps, {summary.promotions} promotions, {summary.promotion_questions} "
                  f"promotion questions\n  PQ      {run.path / 'promotion_questions.jsonl'}\n  metrics "
                  f"{run.path / 'metrics.jsonl'}\n  resume  soar train --resume {run.path}")
    return summary


def _open_run(cfg: SoarConfig | None, out: str | Path | None, resume: str | Path | None,
              invocation: str, overrides: dict[str, Any] | None = None) -> tuple[RunDir, SoarConfig, Any]:
    """The run folder (created, or the one to resume, with its own config and ``overrides``) and the hard set,
    after every check that can refuse the run (nothing is written before them)."""
    if resume is not None:
        run = RunDir(resume)
        cfg = run.config(resume_overrides(overrides or {}))
    else:
        cfg = cfg or load_config("world")
        run = RunDir(out or Path(cfg.out_dir) / time.strftime("soar-%Y%m%d-%H%M%S"))
    if cfg.compute.generator == "vllm" and cfg.teacher.finetune != "full":  # before anything is written
        raise ConfigError("compute.generator: vllm takes the teacher's full weights after every update; "
                          "set teacher.finetune: full (a LoRA teacher is not pushed to vLLM yet)")
    require_provenance(cfg.data, cfg.model, invocation, cfg.out_dir)
    hard = load_hard_set(cfg.data)
    if cfg.inner.reward_questions > len(hard.train):
        raise ConfigError(f"inner.reward_questions must be at most the hard train split ({len(hard.train)} "
                          f"problems of {cfg.data.source}), got {cfg.inner.reward_questions}")
    _require_checkpoint_space(cfg, run)  # before anything is written
    if resume is None:
        run.create(to_yaml(cfg))
    elif overrides:
        run.update_config(to_yaml(cfg))
    return run, cfg, hard


def _resume(run: RunDir, resume: str | Path | None, teacher: Any, generator: Generator, pool: StudentPool,
            console: Console) -> tuple[PromotionState, int]:
    """The promotion state and first step: from the last complete checkpoint when resuming (teacher, students and
    RNG put back, later records dropped), else a fresh start."""
    import torch

    if resume is None:
        return PromotionState(), 0
    promotion, first = PromotionState(), 0
    checkpoint = run.latest_checkpoint(warn=console.print)
    if checkpoint is not None:
        tensors, state = run.load_checkpoint(checkpoint)
        teacher.load_state_dict(tensors["teacher"])
        push_weights(generator, teacher.model, version=state["step"] + 1)  # an engine built from the base
        pool.load_state_dict(tensors["students"])
        torch.set_rng_state(tensors["rng"])
        promotion = PromotionState(**state["promotion"])
        first = state["step"] + 1
        console.print(f"resuming after step {state['step']} (stage {promotion.stage})")
    run.truncate_after(first - 1)
    return promotion, first


class _AfterStep:
    """What follows each step's records: the kept teacher, memory, the checkpoint, TensorBoard, the printed line,
    and the stop after too many dropped teacher updates in a row."""

    def __init__(self, cfg: SoarConfig, run: RunDir, teacher: Any, pool: StudentPool, console: Console,
                 first: int) -> None:
        self.cfg, self.run, self.teacher, self.pool, self.console = cfg, run, teacher, pool, console
        self.tensorboard = _tensorboard(run.path / "tensorboard", purge_step=first)
        self.sizes: dict[str, int] = {}
        self.dropped = 0  # teacher updates in a row dropped for a non-finite loss or gradient

    def step(self, record: StepRecord, promotion: PromotionState) -> None:
        import torch

        cfg, run, step = self.cfg, self.run, record.step
        every = cfg.checkpoint.teacher_every
        if every and (step + 1) % every == 0:
            run.save_teacher(step, self.teacher.snapshot(device="cpu"), cfg.checkpoint.teacher_keep)
        run.append("memory.jsonl", [_memory(step, self.pool)])
        self.dropped = self.dropped + 1 if record.teacher_skipped else 0
        stop = bool(cfg.compute.nonfinite_limit) and self.dropped >= cfg.compute.nonfinite_limit
        written = {}
        if (step + 1) % cfg.checkpoint.every == 0 or step + 1 == cfg.outer_steps or stop:
            run.set_status(step, "checkpoint")
            written = run.save_checkpoint(step, {"teacher": self.teacher.state_dict(),
                                                 "students": self.pool.state_dict, "rng": torch.get_rng_state()},
                                          {"step": step, "promotion": asdict(promotion)},
                                          keep=cfg.checkpoint.keep, checksums=cfg.checkpoint.checksums,
                                          tags={"students": f"baseline {self.pool.baseline_version}"})
            # the students' part changes only with a promotion: until then it is linked, not fetched and rewritten
        if self.tensorboard is not None:
            for key in ("mean_reward", "moving_average", "baseline_accuracy", "acceptance_rate"):
                self.tensorboard.add_scalar(key, getattr(record, key), step)
            self.tensorboard.flush()
        self.console.print(_line(record))
        if stop:
            raise SoarError(f"step {step}: the teacher's update was dropped {self.dropped} times in a row for a "
                            f"NaN or inf in its loss or gradient (weights unchanged; the run is saved "
                            f"through this step): lower teacher.lr or raise compute.nonfinite_limit in "
                            f"{run.path / 'config.yaml'}, then soar train --resume {run.path}")
        if written and not self.sizes:
            self.sizes = written
            self.console.print("checkpoint " + ", ".join(f"{part} {format_bytes(b)}" for part, b in written.items())
                               + f" (total {format_bytes(sum(written.values()))}; the newest "
                                 f"{cfg.checkpoint.keep} kept)")


class StepBook:
    """Bookkeeping beside an outer step: phase timers and progress bars (none of it changes what the step does)."""

    def __init__(self, progress: Any = None, drafts_task: Any = None, students_task: Any = None,
                 run: RunDir | None = None, step: int = 0) -> None:
        self.progress, self.drafts_task, self.students_task = progress, drafts_task, students_task
        self.run, self.step = run, step
        self.times: dict[str, float] = {}
        self.started = time.perf_counter()

    @contextmanager
    def timed(self, phase: str) -> Iterator[None]:
        if self.run is not None:
            self.run.set_status(self.step, phase)
        clock = time.perf_counter()
        try:
            yield
        finally:
            self.times[phase] = self.times.get(phase, 0.0) + time.perf_counter() - clock

    def drafts(self, total: int) -> Callable[[int, int], None] | None:
        if self.progress is None:
            return None
        self.progress.reset(self.drafts_task, total=total)
        return lambda accepted, attempts: self.progress.update(
            self.drafts_task, completed=accepted, description=f"teacher QA pairs ({attempts} drafts)")

    def students(self, total: int) -> Callable[[Any], None] | None:
        if self.progress is None:
            return None
        self.progress.reset(self.students_task, total=total)
        return lambda _: self.progress.advance(self.students_task)

    def seconds(self) -> dict[str, float]:
        return {k: round(v, 3) for k, v in self.times.items()}

    def wall(self) -> float:
        return round(time.perf_counter() - self.started, 3)


def _teacher_seat(cfg: SoarConfig, console: Console) -> tuple[Any, str | None]:
    """With ``compute.pool: ray`` and ``compute.teacher_gpus``: the Ray actor holding the teacher's GPU on this node
    (kept for the run; Ray frees it with this process) and the teacher's device (``cuda:<id>`` when the model goes to
    a GPU); otherwise nothing changes."""
    if cfg.compute.pool != "ray" or not cfg.compute.teacher_gpus:
        return None, None
    import os

    from soar.engines.models import cuda_device_of, resolve_device
    from soar.students.pool import reserve_teacher_gpus

    seat, ids = reserve_teacher_gpus(cfg)
    device = None
    if ids and resolve_device(cfg.model.device).startswith("cuda"):
        import torch

        device = cuda_device_of(ids[0], os.environ.get("CUDA_VISIBLE_DEVICES"))
        torch.cuda.set_device(device)  # before any CUDA work: the CUDA-graph decoder's streams take the current device
    console.print(f"teacher: Ray GPU {', '.join(map(str, ids)) or '-'} held for it on this node"
                  + (f", on {device}" if device else f" (the model runs on {cfg.model.device})"))
    return seat, device


def _memory(step: int, pool: Any) -> dict[str, Any]:
    """``memory.jsonl``'s record of a step: the peak resident memory of this process (the driver) and of each
    student worker, and the most student weights each worker held at once (Linux reports ru_maxrss in KiB)."""
    import resource

    workers = pool.memory()
    return {"step": step, "driver_peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            **workers}


def _require_checkpoint_space(cfg: SoarConfig, run: RunDir) -> None:
    """Refuse to start without room for one checkpoint, sized as ``soar plan`` sizes it (each checkpoint is
    checked again against its real size before it is written)."""
    from soar.loops.plan import plan as make_plan

    try:
        estimate = make_plan(cfg)["checkpoint"]
    except ConfigError:  # a model whose shape soar plan does not know: checked at each checkpoint only
        return
    run.require_space(estimate["teacher"] + estimate["students"], "one checkpoint (as soar plan sizes it)")


@dataclass
class Teacher:
    """The teacher's side of an outer step: its trainer (``step(Rollouts)`` and ``model``), the engine that samples
    it, the tokenizer, and the parse check of B.2 (Math-Verify's, ``Verifier.parseable_many``)."""

    trainer: Any
    generator: Generator
    tokenizer: Any
    parseable: Parseable


@dataclass
class Promoted:
    """The student promoted in a step: its job, its Q_R accuracy re-checked on the new baseline, and the new
    baseline's accuracy on the whole hard train split (PS is the promoted student with the best, 4.3)."""

    job: StudentJob
    accuracy: float
    recheck: StudentResult
    on_train: StudentResult


@dataclass
class StepOutcome:
    """Everything one outer step decided and measured; :func:`record_step` writes it down."""

    step: int
    sample: TeacherSample
    datasets: list[list[TeacherRollout]]
    baseline: StudentResult
    inner_steps: int
    jobs: list[StudentJob]
    results: list[StudentResult]
    per_student: list[list[float]]
    rewards: list[float]
    decision: Decision
    promotion: PromotionState
    promoted: Promoted | None
    teacher_stats: dict[str, float]


def outer_step(cfg: SoarConfig, step: int, hard_train: list[Problem], teacher: Teacher, pool: StudentPool,
               promotion: PromotionState, book: StepBook | None = None) -> StepOutcome:
    """One step of Algorithm 1, its numbered blocks and nothing else (``book`` times and shows it)."""
    book = book or StepBook()
    B, g, n, r, seed = (cfg.teacher.batch_size, cfg.teacher.group_size, cfg.inner.dataset_size, cfg.inner.repeats,
                        cfg.compute.seed)

    # 1. The teacher writes B*g*n accepted QA pairs: B RLOO groups of g datasets X_k of n pairs.
    with book.timed("teacher_generation"):
        teacher.generator.wake()
        sample = sample_teacher(teacher.generator, teacher.tokenizer, cfg.teacher, B * g * n,
                                derive_seed(seed, "teacher", step), teacher.parseable, progress=book.drafts(B * g * n))
        datasets = partition(sample.rollouts, B * g, n)
        teacher.generator.sleep()  # colocated (vLLM): the students and the teacher update get the device

    # 2. Q_R: M hard train questions; the baseline student's greedy accuracy on them, once.
    picks = random.Random(derive_seed(seed, "reward_questions", step)).sample(range(len(hard_train)),
                                                                            cfg.inner.reward_questions)
    reward_questions = [hard_train[i].to_dict() for i in sorted(picks)]  # Q_R in split order
    baseline = pool.baseline_accuracy(reward_questions)

    # 3. r students per dataset, trained from the baseline and scored on Q_R: R_k = mean_j ACC_kj - ACC_baseline.
    steps_now = inner_steps(promotion.stage, cfg.inner.steps, cfg.inner.steps_after_promotion, cfg.inner.max_steps)
    jobs = [StudentJob(f"step{step}-k{k}-j{j}", pool.baseline_version,
                       [rollout.pair.to_problem(f"{step}-{k}-{i}").to_dict() for i, rollout in enumerate(dataset)],
                       reward_questions, derive_seed(seed, "student", step, k // g, k % g, j), steps_now, k, j)
            for k, dataset in enumerate(datasets) for j in range(r)]
    with book.timed("students"):
        if cfg.teacher.reward == "grounded":
            results = pool.run(jobs, baseline.accuracy, progress=book.students(len(jobs)))
            per_student, rewards = grounded_rewards([[res.accuracy for res in results[k * r:(k + 1) * r]]
                                                     for k in range(B * g)], baseline.accuracy)
        else:  # Intrinsic-T (B.4): the learnability of X_k for the baseline student; no students trained
            results = []
            rates = pool.success_rates([job.dataset for job in jobs[::r]], cfg.teacher.learnability_samples,
                                       [derive_seed(seed, "learnability", step, job.dataset_index) for job in jobs[::r]])
            rewards = [learnability_reward(per_question) for per_question in rates]
            per_student = [[reward] for reward in rewards]

    # 4. Promotion: moving average over every dataset of the step; promote the measured median student of k*.
    enabled = cfg.promotion.enabled and cfg.teacher.reward == "grounded"
    decision, promotion = decide_promotion(promotion, per_student, cfg.promotion.tau, cfg.promotion.window, enabled)
    promoted = None
    if decision.promote:
        with book.timed("promotion"):
            k_j = decision.dataset * r + decision.student
            promoted = Promoted(jobs[k_j], results[k_j].accuracy, pool.promote(jobs[k_j]),
                                pool.baseline_accuracy([p.to_dict() for p in hard_train]))

    # 5. One teacher RLOO step: leave-one-out within each group, every rollout of X_k carries A_k.
    with book.timed("teacher_update"):
        stats = teacher_update(teacher.trainer, datasets, rewards, groups=B)
        push_weights(teacher.generator, teacher.trainer.model, version=step + 1)  # phi reaches its sampling engine
    return StepOutcome(step, sample, datasets, baseline, steps_now, jobs, results, per_student, rewards, decision,
                       promotion, promoted, stats)


def record_step(cfg: SoarConfig, outcome: StepOutcome, run: RunDir, pool: StudentPool, hard_train: list[Problem],
                book: StepBook) -> StepRecord:
    """Write one step down: the promoted student and its questions, the step's questions, its metrics record."""
    o, g = outcome, cfg.teacher.group_size
    extra: dict[str, Any] = {}
    if o.promoted is not None:
        with book.timed("promotion"):
            p, d = o.promoted, o.decision
            run.save_promoted(o.promotion.stage, pool.baseline_weights(),
                              {"step": o.step, "dataset": d.dataset, "student": d.student, "job": p.job.job_id,
                               "weights": pool.weights_format, "reward_accuracy": p.accuracy,
                               "recheck_accuracy": p.recheck.accuracy, "train_accuracy": p.on_train.accuracy,
                               "train_problems": len(hard_train)})
            run.append("promotion_questions.jsonl", [dict(q, step=o.step, stage=o.promotion.stage, dataset=d.dataset)
                                                     for q in p.job.dataset])
        extra = {"promoted_accuracy": p.accuracy, "promotion_recheck_accuracy": p.recheck.accuracy,
                 "promoted_train_accuracy": p.on_train.accuracy}
    run.write_questions(o.step, [dict(rollout.pair.to_problem().to_dict(), dataset=k, group=k // g,
                                      reward=o.rewards[k]) for k, dataset in enumerate(o.datasets) for rollout in dataset])
    book.times["student_training"] = sum(res.train_seconds for res in o.results)
    book.times["student_evaluation"] = o.baseline.eval_seconds + sum(res.eval_seconds for res in o.results)
    record = StepRecord(
        step=o.step, groups=cfg.teacher.batch_size, rewards=o.rewards, student_rewards=o.per_student,
        mean_reward=o.decision.mean_reward, moving_average=o.decision.moving_average, promoted=o.decision.promote,
        stage=o.promotion.stage, promoted_dataset=o.decision.dataset, promoted_student=o.decision.student,
        baseline_accuracy=o.baseline.accuracy, student_accuracies=[res.accuracy for res in o.results],
        inner_steps=o.inner_steps, acceptance_rate=o.sample.acceptance_rate, attempts=o.sample.attempts,
        rejections=o.sample.rejections, teacher_tokens=o.sample.tokens,
        student_tokens=sum(res.tokens for res in o.results), teacher_loss=o.teacher_stats["loss"],
        teacher_kl=o.teacher_stats["kl"], seconds=book.seconds(), step_wall=book.wall(),
        pool=pool.name,
        question_diversity=vendi_score(ngram_kernel([x.pair.question for d in o.datasets for x in d])),
        **world_content(cfg, [[x.pair for x in d] for d in o.datasets]),
        teacher_skipped=bool(o.teacher_stats.get("skipped", 0.0)),
        student_skipped_steps=sum(res.skipped_steps for res in o.results), **extra)
    run.append("metrics.jsonl", [record.to_dict()])
    return record


def world_content(cfg: SoarConfig, datasets: list[list[Any]]) -> dict[str, Any]:
    """What each dataset holds, for the designed world (``model.prompts: world``): its questions' kinds and how many
    answers are right (``StepRecord.question_kinds`` / ``answers_right``); empty elsewhere."""
    if cfg.model.prompts != "world":
        return {}
    from soar.world.family import content

    held = [content((p.question, p.answer) for p in d) for d in datasets]
    return {"question_kinds": [kinds for kinds, _ in held], "answers_right": [right for _, right in held]}


def _line(record: StepRecord) -> str:
    rewards = " ".join(f"{x:+.3f}" for x in record.rewards)
    kinds = " ".join(f"{kind} {count}" for kind, count in sorted(record.kind_counts().items()))
    right = record.right_share()
    kinds += f"  right {right:.0%}" if right is not None else ""
    flag = f"  PROMOTED dataset {record.promoted_dataset} -> stage {record.stage}" if record.promoted else ""
    if record.teacher_skipped or record.student_skipped_steps:
        flag += ("  NON-FINITE: teacher update dropped" if record.teacher_skipped else "  NON-FINITE:") + (
            f" {record.student_skipped_steps} student steps dropped" if record.student_skipped_steps else "")
    return (f"step {record.step:>4}  R_k [{rewards}]  mean {record.mean_reward:+.3f}  avg "
            f"{record.moving_average:+.3f}  baseline acc {record.baseline_accuracy:.3f}  accepted "
            f"{record.acceptance_rate:.0%}{'  kinds ' + kinds if kinds else ''}  {record.step_wall:.1f} s{flag}")


def _tensorboard(path: Path, purge_step: int) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is the `analysis` extra
        return None
    return SummaryWriter(str(path), purge_step=purge_step or None)  # a resumed run drops replayed steps
