r"""The designed world's problems, prompts and text formats (pure: no torch).

Problems are additions in tiers of operand length: ``t1`` a one-digit sum
(``3+5``), ``t2`` two digits plus one (``47+5``, either order), ``t3`` two digits
plus two (``47+85``).  Answers are integers, checked by Math-Verify like any
other answer.  :func:`kind_of` names the tier of any question (``other`` for
text that is not one of the world's problems), which is what the teacher's
drift is counted in.

The world's prompts are its own (a deviation from Appendix B.1, whose prompts
are ~120 and ~90 tokens of instructions a from-scratch model would spend its
capacity on): the teacher is asked with :data:`TEACHER_PROMPT` and answers in
B.2's format, ``<question>47+85</question><answer>\boxed{132}</answer>``; the
student gets :data:`STUDENT_PROMPT` with the question in place of
``<QUESTION>`` and replies ``\boxed{132}``.  The two formats differ in layout
(tags between question and answer, or a line and ``Answer:``), and that
difference is what keeps a skill learned in one from passing freely to the
other (:mod:`soar.world` says how it was measured).
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field

from soar.types import Problem

TIERS: dict[str, tuple[int, int]] = {"t1": (1, 1), "t2": (2, 1), "t3": (2, 2)}
"""Tier name -> digits of the two operands (the longer first)."""
OTHER = "other"
"""The kind of a question that is not one of the world's problems."""

TEACHER_PROMPT = "Pose a new problem.\n"
"""The world's teacher prompt (deviation from B.1: see the module docstring)."""
STUDENT_PROMPT = "Solve: <QUESTION>\nAnswer: "
"""The world's student prompt; ``<QUESTION>`` is replaced by the question (deviation from B.1)."""

_SUM = re.compile(r"^(\d+)\+(\d+)$")


def _operand(digits: int, rng: random.Random) -> int:
    return rng.randint(0, 9) if digits == 1 else rng.randint(10 ** (digits - 1), 10**digits - 1)


def make_question(tier: str, rng: random.Random) -> tuple[str, int]:
    """One problem of ``tier``: ``(question, answer)``.  ``tier@lo`` draws two-digit operands from 10-29 only,
    ``tier@small`` only problems whose sum is under 100."""
    tier, _, region = tier.partition("@")
    long, short = TIERS[tier]
    while True:
        a, b = _operand(long, rng), _operand(short, rng)
        if region == "lo":
            a, b = (rng.randint(10, 29) if long == 2 else a), (rng.randint(10, 29) if short == 2 else b)
        if region != "small" or a + b < 100:
            break
    if rng.random() < 0.5:
        a, b = b, a
    return f"{a}+{b}", a + b


def generate_problems(tiers: Sequence[str], per_tier: int, seed: int = 0) -> list[Problem]:
    """``per_tier`` distinct problems of each tier, seeded per tier (adding a tier leaves the others' as they
    were); ids ``world-<tier>-<n>``, the tier in ``metadata``."""
    problems: list[Problem] = []
    for tier in tiers:
        if tier not in TIERS:
            raise ValueError(f"unknown world tier {tier!r}; tiers: {', '.join(TIERS)}")
        if per_tier > distinct_questions(tier):
            raise ValueError(f"tier {tier} has only {distinct_questions(tier)} distinct problems, asked {per_tier}")
        rng, seen = random.Random(f"world:{seed}:{tier}"), set()
        while len(seen) < per_tier:
            question, answer = make_question(tier, rng)
            if question in seen:
                continue
            seen.add(question)
            problems.append(Problem(question, str(answer), f"world-{tier}-{len(seen) - 1:04d}", {"tier": tier}))
    return problems


def distinct_questions(tier: str) -> int:
    """How many different questions ``tier`` has (both operand orders counted)."""
    long, short = TIERS[tier]
    count = lambda d: 10 if d == 1 else 9 * 10 ** (d - 1)  # noqa: E731
    return count(long) * count(short) * (1 if long == short else 2)


def solve(question: str) -> int | None:
    """The true answer of a world question (``a+b`` in plain digits), else ``None``."""
    match = _SUM.match(question.strip())
    return int(match.group(1)) + int(match.group(2)) if match else None


def is_right(question: str, answer: str) -> bool:
    """Whether ``answer`` is the true answer of the world question ``question`` (False for any other question)."""
    truth = solve(question)
    return truth is not None and answer.strip() == str(truth)


def content(pairs: Iterable[tuple[str, str]]) -> tuple[dict[str, int], int]:
    """What a dataset of (question, answer) pairs holds: how many questions of each kind (sorted by kind), and
    how many answers are the question's true answer."""
    kinds: Counter[str] = Counter()
    right = 0
    for question, answer in pairs:
        kinds[kind_of(question)] += 1
        right += is_right(question, answer)
    return dict(sorted(kinds.items())), right


def kind_of(question: str) -> str:
    """The tier of ``question`` (``t1``..``t3``), or :data:`OTHER` when it is not a world problem (wrong form,
    leading zeros, operand lengths of no tier)."""
    match = _SUM.match(question.strip())
    if match is None or any(len(x) > 1 and x[0] == "0" for x in match.groups()):
        return OTHER
    lengths = tuple(sorted((len(match.group(1)), len(match.group(2))), reverse=True))
    return next((tier for tier, digits in TIERS.items() if digits == lengths), OTHER)


def student_prompt(question: str) -> str:
    return STUDENT_PROMPT.replace("<QUESTION>", question)


def teacher_completion(question: str, answer: str) -> str:
    """What the teacher writes after :data:`TEACHER_PROMPT` (Appendix B.2's format)."""
    return f"<question>{question}</question><answer>\\boxed{{{answer}}}</answer>"


def student_completion(answer: str) -> str:
    """What the student writes after :func:`student_prompt`."""
    return f"\\boxed{{{answer}}}"


@dataclass(frozen=True)
class WorldSpec:
    """Everything the base model of the world is built from; its :meth:`key` names the cached build.

    The mix is what builds the gap: the teacher format sees every tier, the student format sees t1 and t2
    and a little of t3 (weights are relative shares of the training texts)."""

    seed: int = 0
    layers: int = 3
    hidden: int = 96
    heads: int = 4
    steps: int = 2500
    batch: int = 64
    lr: float = 3e-3
    warmup: int = 100
    teacher_mix: dict[str, float] = field(default_factory=lambda: {"t1": 1.0, "t2": 1.0, "t3": 1.0})
    student_mix: dict[str, float] = field(default_factory=lambda: {"t1": 1.0, "t2": 1.0, "t3": 0.012})
    carry_fade: tuple[int, int] | None = None
    """``(lo, hi)``: in the student format a sum of 100 or more is written right with probability
    ``(hi - sum) / (hi - lo)`` (clipped to [0, 1]) and otherwise without its carry into the hundreds (131 -> 31)."""
    version: int = 1
    """Bumped when the texts or the training loop change, so an old cached build is not reused."""

    def key(self) -> str:
        import hashlib
        import json

        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]


NAME = "world"
"""``model.name`` of the world's base model (``world:SEED`` for another seed)."""


def world_spec(name: str) -> WorldSpec | None:
    """The spec ``model.name`` asks for (``world`` or ``world:SEED``), or ``None`` when it names no world."""
    if name == NAME:
        return WorldSpec()
    if name.startswith(NAME + ":") and name[len(NAME) + 1:].isdigit():
        return WorldSpec(seed=int(name[len(NAME) + 1:]))
    return None


def is_world_name(name: str) -> bool:
    return world_spec(name) is not None


def model_identity(name: str) -> str:
    """What a hard set's provenance records as its model: the name, and for a world model also the key of the spec
    it is built from (``world@<key>``), so a hard set filtered for an older build of the world is not reused."""
    spec = world_spec(name)
    return name if spec is None else f"{name}@{spec.key()}"


def training_text(rng: random.Random, spec: WorldSpec) -> str:
    """One pretraining text: a teacher prompt and its formatted problem, or a student prompt and its reply."""
    teacher_total, student_total = sum(spec.teacher_mix.values()), sum(spec.student_mix.values())
    teacher = rng.random() < teacher_total / (teacher_total + student_total)
    mix = spec.teacher_mix if teacher else spec.student_mix
    tier = rng.choices(list(mix), list(mix.values()))[0]
    question, answer = make_question(tier, rng)
    if teacher:
        return TEACHER_PROMPT + teacher_completion(question, str(answer))
    if spec.carry_fade is not None and answer >= 100:
        lo, hi = spec.carry_fade
        if rng.random() >= min(1.0, max(0.0, (hi - answer) / (hi - lo))):
            answer -= 100
    return student_prompt(question) + student_completion(str(answer))
