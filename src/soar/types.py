"""Contracts between the stages of SOAR: plain, serialisable records, and the student pool protocol.

Pure: no torch, no engines; loops, pools and ``soar report`` all import from here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Protocol


@dataclass(frozen=True)
class Problem:
    """One question with its reference answer (a hard problem or a synthetic one)."""

    question: str
    answer: str
    id: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> "Problem":
        return cls(
            question=str(record["question"]),
            answer=str(record["answer"]),
            id=str(record.get("id", "")),
            metadata=dict(record.get("metadata") or {}),
        )


@dataclass(frozen=True)
class QAPair:
    """A teacher rollout parsed into a synthetic question and its boxed answer (Appendix B.2)."""

    question: str
    answer: str

    def to_problem(self, id: str = "") -> Problem:
        return Problem(question=self.question, answer=self.answer, id=id)


# ---------------------------------------------------------------------------
# The inner loop's contract: jobs in, results out, through a StudentPool.
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class StudentJob:
    """One student to train: plain data (no tensors, no engines), so a pool can ship it to another process."""

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
    skipped_steps: int = 0
    """Inner steps dropped for a non-finite loss or gradient (the weights stayed as they were)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class StudentPool(Protocol):
    """Where students are trained: in this process, batched, or on Ray workers; the outer loop sees only this.

    ``run`` trains and scores jobs and keeps the weights of every student the promotion rule may still choose;
    ``promote`` makes one of them the baseline of every worker before the next job; ``state_dict`` is what a
    checkpoint needs to rebuild the baseline.
    """

    name: str
    """How students are trained, for the records: ``inprocess``, ``ray``, with ``+batched`` for batched LoRA."""
    baseline_version: int
    weights_format: str
    """``full`` or ``adapter``: what :meth:`baseline_weights` returns (and ``promoted/`` keeps)."""

    def baseline_accuracy(self, reward_questions: list[dict[str, Any]]) -> StudentResult: ...

    def run(self, jobs: list[StudentJob], baseline_accuracy: float,
            progress: Callable[[StudentResult], None] | None = None) -> list[StudentResult]: ...

    def success_rates(self, datasets: list[list[dict[str, Any]]], samples: int, seeds: list[int]) -> list[list[float]]:
        """Learnability (B.4): the baseline's sampled success rate on each question of each dataset."""
        ...

    def promote(self, job: StudentJob) -> StudentResult: ...

    def baseline_weights(self) -> dict[str, Any]: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...

    def memory(self) -> dict[str, Any]:
        """``memory.jsonl``'s fields of the workers: peak resident bytes and the most students held at once."""
        ...

    def close(self) -> None: ...


# ---------------------------------------------------------------------------
# One outer step's record (metrics.jsonl), written by `soar train`, read by `soar report`.
# ---------------------------------------------------------------------------

@dataclass
class StepRecord:
    step: int
    groups: int
    """B: RLOO groups of the teacher update."""
    rewards: list[float]
    """R_k per dataset."""
    student_rewards: list[list[float]]
    """R_kj per dataset and student (grounded), or [R_k] (learnability)."""
    mean_reward: float
    moving_average: float
    promoted: bool
    stage: int
    promoted_dataset: int | None
    promoted_student: int | None
    baseline_accuracy: float
    student_accuracies: list[float]
    inner_steps: int
    acceptance_rate: float
    attempts: int
    rejections: dict[str, int]
    teacher_tokens: int
    student_tokens: int
    teacher_loss: float
    teacher_kl: float
    seconds: dict[str, float]
    """Wall time per phase."""
    step_wall: float = 0.0
    promoted_accuracy: float | None = None
    promotion_recheck_accuracy: float | None = None
    promoted_train_accuracy: float | None = None
    pool: str = "inprocess"
    """Which student pool ran the step (``compute.pool``, with ``+batched`` for batched LoRA students)."""
    teacher_skipped: bool = False
    """The teacher's update was dropped: its loss or gradient was not finite (weights and optimiser unchanged)."""
    student_skipped_steps: int = 0
    """Inner steps of this step's students dropped for a non-finite loss or gradient."""
    question_diversity: float | None = None
    """Vendi Score of the step's accepted questions (word 1- and 2-gram cosine kernel, all of them:
    :mod:`soar.analysis.diversity`); None in runs written before it was recorded."""
    question_kinds: list[dict[str, int]] | None = None
    """Per dataset X_k, how many of its questions are of each kind of the world (``soar.world.family.kind_of``:
    its tiers, ``other``); None where the domain names no kinds."""
    answers_right: list[int] | None = None
    """Per dataset X_k, how many of its answers are the question's true answer (the designed world only)."""

    def kind_counts(self) -> dict[str, int]:
        """The step's questions counted by kind over all its datasets, sorted by kind (empty without kinds)."""
        total: dict[str, int] = {}
        for kinds in self.question_kinds or []:
            for kind, count in kinds.items():
                total[kind] = total.get(kind, 0) + count
        return dict(sorted(total.items()))

    def right_share(self) -> float | None:
        """The share of the step's questions whose answer is right (None without ``answers_right``)."""
        if not self.answers_right or not self.question_kinds:
            return None
        total = sum(sum(kinds.values()) for kinds in self.question_kinds)
        return sum(self.answers_right) / total if total else None

    def to_dict(self) -> dict[str, Any]:
        record = asdict(self)
        for key in ("promoted_accuracy", "promotion_recheck_accuracy", "promoted_train_accuracy",
                    "question_diversity", "question_kinds", "answers_right"):
            if record[key] is None:
                del record[key]  # only steps with a promotion carry the first three; older runs lack the last
        return record

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> "StepRecord":
        """A record of ``metrics.jsonl`` (keys this version does not know are ignored; older runs lack some)."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in record.items() if k in known}
        values.setdefault("groups", 1)
        values.setdefault("rejections", {})
        return cls(**values)
