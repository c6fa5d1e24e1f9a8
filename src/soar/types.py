"""Contracts between the stages of SOAR: plain, serialisable records."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


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
