r"""The designed world's problems, prompts and text formats (pure: no torch).

Problems are 8-digit additions written least-significant digit first: ``a+b`` with both operands zero-padded
to :data:`DIGITS` digits and reversed, the answer the :data:`DIGITS` + 1 digits of the sum, reversed too
(``34000000+21000000`` is 43 + 12 and its answer is ``550000000``, 55).  Written this way a left-to-right
model adds column by column as a person does.  A problem's *kind* is its number of carries, ``add-cK``
(:func:`kind_of`; ``other`` for text that is not one of the world's problems): that is what the teacher's drift
is counted in, and what makes the world's hardness compound (:mod:`soar.world`).

Answers are digit strings and :func:`is_right` compares them exactly.  soar's reward compares them with
Math-Verify, numerically, like any answer: the one answer it would score right that is not the gold string is
the gold with its leading zeros dropped (a sum whose units digit is 0), and ``docs/world.md`` checked that no
student took that path.

The world's prompts are its own (a deviation from Appendix B.1, whose prompts are ~120 and ~90 tokens of
instructions a from-scratch model would spend its capacity on): the teacher is asked with
:data:`TEACHER_PROMPT` and answers in B.2's format,
``<question>34000000+21000000</question><answer>\boxed{550000000}</answer>``; the student gets
:data:`STUDENT_PROMPT` with the question in place of ``<QUESTION>`` and replies ``\boxed{550000000}``.  The two
formats differ in layout, and that difference is what lets the pretraining texts teach the two formats
different things (:func:`training_text`: the student format drops carries).
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field

from soar.types import Problem

DIGITS = 8
"""Digits of each operand (zero-padded); an answer has one more."""
KINDS: tuple[str, ...] = tuple(f"add-c{k}" for k in range(DIGITS + 1))
"""The world's kinds of problem: ``add-cK``, an addition with K carries (K = 0..8)."""
CARRY_RICH: tuple[str, ...] = ("add-c3", "add-c4", "add-c5", "add-c6")
"""The stepping stones' kinds: 3-6 carries, solved by the base student now and then (exact success 9e-3 ..
6e-5 a sample), so an inner loop finds successes and the fix they teach carries to the hard set's 8 carries
(16 problems with 3 carries: +0.59 on the hard set, ``docs/world.md``; 1-2 carries are solved too often and
fix too little).  What :func:`soar.loops.report` plots the teacher's drift toward."""
PATTERNS = "add-cK (K carries, 0-8), add-cK+ (K or more), add-any (uniform operands)"
"""What :func:`make_question` accepts, for error messages."""
OTHER = "other"
"""The kind of a question that is not one of the world's problems."""

TEACHER_PROMPT = "Pose a new problem.\n"
"""The world's teacher prompt (deviation from B.1: see the module docstring)."""
STUDENT_PROMPT = "Solve: <QUESTION>\nAnswer: "
"""The world's student prompt; ``<QUESTION>`` is replaced by the question (deviation from B.1)."""

_SUM = re.compile(r"^(\d{%d})\+(\d{%d})$" % (DIGITS, DIGITS))
_KIND = re.compile(r"^add-(?:c(\d)(\+?)|any)$")


def carries(a: int, b: int) -> int:
    """How many columns of ``a + b`` carry into the next."""
    carry = count = 0
    for i in range(DIGITS):
        carry = int(a // 10**i % 10 + b // 10**i % 10 + carry >= 10)
        count += carry
    return count


def answer_digits(a: int, b: int, drop: float = 0.0, rng: random.Random | None = None) -> str:
    """The answer of ``a + b``, least-significant digit first; with ``drop`` > 0 each carry is lost with that
    probability (the student format's pretraining texts, :func:`training_text`)."""
    out, carry = [], 0
    for i in range(DIGITS):
        total = a // 10**i % 10 + b // 10**i % 10 + carry
        out.append(str(total % 10))
        carry = int(total >= 10)
        if carry and drop > 0 and rng is not None and rng.random() < drop:
            carry = 0
    out.append(str(carry))
    return "".join(out)


def _written(x: int) -> str:
    return f"{x:0{DIGITS}d}"[::-1]


def question_text(a: int, b: int) -> str:
    return f"{_written(a)}+{_written(b)}"


def parse(question: str) -> tuple[int, int] | None:
    """The operands of a world question, else ``None``."""
    match = _SUM.match(question.strip())
    return None if match is None else (int(match.group(1)[::-1]), int(match.group(2)[::-1]))


def is_pattern(kind: str) -> bool:
    match = _KIND.match(kind)
    return match is not None and (match.group(1) is None or int(match.group(1)) <= DIGITS)


def make_operands(kind: str, rng: random.Random) -> tuple[int, int]:
    """Operands of a problem of ``kind`` (:data:`PATTERNS`), uniform among those of the kind (by rejection)."""
    match = _KIND.match(kind)
    if match is None or not is_pattern(kind):
        raise ValueError(f"unknown world kind {kind!r}; kinds: {PATTERNS}")
    while True:
        a, b = rng.randrange(10**DIGITS), rng.randrange(10**DIGITS)
        if match.group(1) is None:
            return a, b
        n, at_least = int(match.group(1)), bool(match.group(2))
        if carries(a, b) == n or (at_least and carries(a, b) >= n):
            return a, b


def make_question(kind: str, rng: random.Random) -> tuple[str, str]:
    """One problem of ``kind``: ``(question, answer)``."""
    a, b = make_operands(kind, rng)
    return question_text(a, b), answer_digits(a, b)


def generate_problems(kinds: Sequence[str], per_kind: int, seed: int = 0) -> list[Problem]:
    """``per_kind`` distinct problems of each kind, seeded per kind (adding a kind leaves the others' as they
    were); ids ``<kind>-<n>``, the kind in ``metadata``.  Seed 0 draws the shipped hard set's pool."""
    problems: list[Problem] = []
    for kind in kinds:
        if not is_pattern(kind):
            raise ValueError(f"unknown world kind {kind!r}; kinds: {PATTERNS}")
        drawn = distinct_questions(kind, per_kind, "pool" if seed == 0 else f"pool{seed}")
        problems += [Problem(q, a, f"{kind}-{i:04d}", {"kind": kind}) for i, (q, a) in enumerate(drawn)]
    return problems


def distinct_questions(kind: str, n: int, label: str) -> list[tuple[str, str]]:
    """``n`` distinct ``(question, answer)`` pairs of ``kind``, drawn from ``random.Random(f"{label}:{kind}")``."""
    rng, seen, out = random.Random(f"{label}:{kind}"), set(), []
    while len(out) < n:
        question, answer = make_question(kind, rng)
        if question not in seen:
            seen.add(question)
            out.append((question, answer))
    return out


def solve(question: str) -> str | None:
    """The true answer of a world question (digit string, least-significant first), else ``None``."""
    operands = parse(question)
    return None if operands is None else answer_digits(*operands)


def is_right(question: str, answer: str) -> bool:
    """Whether ``answer`` is the true answer of the world question ``question``, digit for digit (False for any
    other question)."""
    truth = solve(question)
    return truth is not None and answer.strip() == truth


def kind_of(question: str) -> str:
    """``add-cK`` for a world question, :data:`OTHER` for any other text."""
    operands = parse(question)
    return OTHER if operands is None else f"add-c{carries(*operands)}"


def content(pairs: Iterable[tuple[str, str]]) -> tuple[dict[str, int], int]:
    """What a dataset of (question, answer) pairs holds: how many questions of each kind (sorted by kind), and
    how many answers are the question's true answer."""
    kinds: Counter[str] = Counter()
    right = 0
    for question, answer in pairs:
        kinds[kind_of(question)] += 1
        right += is_right(question, answer)
    return dict(sorted(kinds.items())), right


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
    """Everything the base model of the world is built from (:mod:`soar.world.build`); :meth:`key` names a build.

    The defaults are the shipped world (``docs/world.md``, design d11).  Mixes are relative weights of kinds
    (:data:`PATTERNS`)."""

    seed: int = 0
    layers: int = 3
    hidden: int = 128
    heads: int = 4
    inter: int = 384
    """The MLP's width."""
    steps: int = 4000
    """Batches of pretraining, the warm phase included."""
    batch: int = 32
    lr: float = 1e-3
    """Peak AdamW learning rate (linear warm-up, then cosine to 0)."""
    warmup: int = 100
    drop: float = 0.78
    """The student format's flaw: in its pretraining texts each carry is dropped with this probability, so a
    student-format answer with K carries is right with probability about (1 - drop)^K: hardness compounds."""
    teacher_share: float = 0.5
    """Share of teacher-format texts after the warm phase (the rest are student-format texts)."""
    teacher_mix: dict[str, float] = field(default_factory=lambda: {
        "add-c0": 0.75, "add-c1": 0.02, "add-c2": 0.01, "add-c3": 0.02, "add-c4+": 0.2})
    """The kinds of the teacher-format texts: the base teacher's prior.  Carry-free problems most of the time
    and few with 1-3 carries (the stepping stones), so a teacher must learn to write them."""
    student_mix: dict[str, float] = field(default_factory=lambda: {"add-any": 1.0})
    """The kinds of the student-format texts (uniform operands, carries dropped per :attr:`drop`)."""
    warm_steps: int = 1500
    """At most this many first batches are the warm phase, which breaks the long plateau of learning to add."""
    warm_until: float = 0.9
    """The warm phase ends early once the teacher format answers this share of 50 problems right (checked
    every 100 batches from batch 200)."""
    warm_mix: dict[str, float] = field(default_factory=lambda: {
        "add-c0": 0.25, "add-c1": 0.04, "add-c2": 0.03, "add-c3": 0.06, "add-c4+": 0.12})
    """Kinds of the warm phase's teacher-format texts."""
    warm_student_share: float = 0.3
    """Share of student-format texts in the warm phase."""
    warm_student_mix: dict[str, float] = field(default_factory=lambda: {"add-c0": 1.0})
    """Kinds of the warm phase's student-format texts (carry-free: the format learned without its flaw)."""
    version: int = 2
    """Bumped when the texts or the training loop change, so an old cached build is not reused (1: the
    two-digit world of issue 25)."""

    def key(self) -> str:
        import hashlib
        import json

        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]


NAME = "world"
"""``model.name`` of the world's base model (``world:SEED`` for another seed, built on first use)."""


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
    it is built from (``world@<key>``), so a hard set filtered for another build of the world is not reused."""
    spec = world_spec(name)
    return name if spec is None else f"{name}@{spec.key()}"


def training_text(rng: random.Random, spec: WorldSpec, warm: bool = False) -> str:
    """One pretraining text: a teacher prompt and its formatted problem (always right), or a student prompt and
    its reply (carries dropped per ``spec.drop``).  ``warm``: the warm phase's mixes."""
    if warm and rng.random() < spec.warm_student_share:
        teacher, mix = False, spec.warm_student_mix
    else:
        teacher = warm or rng.random() < spec.teacher_share
        mix = spec.warm_mix if warm else spec.teacher_mix if teacher else spec.student_mix
    kind = rng.choices(list(mix), list(mix.values()))[0]
    a, b = make_operands(kind, rng)
    question = question_text(a, b)
    if teacher:
        return TEACHER_PROMPT + teacher_completion(question, answer_digits(a, b))
    return student_prompt(question) + student_completion(answer_digits(a, b, spec.drop, rng))
