"""A seeded procedural arithmetic problem set with difficulty tiers.

Its frontier suits tiny models: measured on this project's CPU machines,
SmolLM2-135M-Instruct, greedy, student prompt, last number of the reply as its
answer, 32 problems per tier: add2 11/32, mul1x2 7/32, mul2x2 4/32, and
add3, sub3, mul2x3 all 0/32.  The last three make the ``tiny`` preset's hard set.

``arithmetic-hard`` (the ``tiny`` preset's hard set) is the fail@16 subset of
the default pool (add3, sub3, mul2x3, 64 each) for the default model, made
by ``soar filter`` and shipped as ``bundled/arithmetic-hard.jsonl`` with its
``stats.json`` (settings and per-problem success counts) beside it; a test
checks that every problem in it is the pool's problem of that id.

Problems are generated from ``random.Random(f"{seed}:{tier}")`` so a tier's
problems do not change when other tiers are added.  Questions are written in
words and symbols the way a competition problem states a computation; answers
are integers.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Sequence
from importlib import resources

from soar.errors import DataError
from soar.types import Problem


def _digits(rng: random.Random, n: int) -> int:
    return rng.randint(10 ** (n - 1), 10**n - 1)


def _add2(rng: random.Random) -> tuple[str, int]:
    a, b = _digits(rng, 2), _digits(rng, 2)
    return f"What is {a} + {b}?", a + b


def _add3(rng: random.Random) -> tuple[str, int]:
    a, b = _digits(rng, 3), _digits(rng, 3)
    return f"What is {a} + {b}?", a + b


def _sub3(rng: random.Random) -> tuple[str, int]:
    a, b = sorted((_digits(rng, 3), _digits(rng, 3)), reverse=True)
    return f"What is {a} - {b}?", a - b


def _mul(da: int, db: int) -> Callable[[random.Random], tuple[str, int]]:
    def make(rng: random.Random) -> tuple[str, int]:
        a, b = _digits(rng, da), _digits(rng, db)
        return f"What is {a} \\times {b}?", a * b

    return make


def _multistep(rng: random.Random) -> tuple[str, int]:
    a, b, c = _digits(rng, 2), _digits(rng, 2), rng.randint(2, 9)
    d = rng.randint(2, 99)
    return f"Compute ({a} + {b}) \\times {c} - {d}.", (a + b) * c - d


TIERS: dict[str, Callable[[random.Random], tuple[str, int]]] = {
    "add2": _add2,
    "mul1x2": _mul(1, 2),
    "mul2x2": _mul(2, 2),
    "add3": _add3,
    "sub3": _sub3,
    "mul2x3": _mul(2, 3),
    "multistep": _multistep,
}
"""Tier name -> generator, roughly easiest first."""


def generate_problems(
    tiers: Sequence[str] = ("add3", "sub3", "mul2x3"), per_tier: int = 64, seed: int = 0
) -> list[Problem]:
    """``per_tier`` distinct problems from each tier, deterministic in ``seed``."""
    unknown = [t for t in tiers if t not in TIERS]
    if unknown:
        raise DataError(f"unknown arithmetic tier {unknown[0]!r}; tiers: {', '.join(TIERS)}")
    problems: list[Problem] = []
    for tier in tiers:
        rng = random.Random(f"{seed}:{tier}")
        seen: set[str] = set()
        while len(seen) < per_tier:
            question, answer = TIERS[tier](rng)
            if question in seen:
                continue
            seen.add(question)
            problems.append(
                Problem(
                    question=question,
                    answer=str(answer),
                    id=f"{tier}-{len(seen) - 1:04d}",
                    metadata={"tier": tier, "source": "arithmetic", "seed": seed},
                )
            )
    return problems


_STATEMENT = re.compile(r"^\s*What is\s+(-?\d+)\s*(\+|-|\\times|\*|x)\s*(-?\d+)\s*\?\s*$", re.IGNORECASE)


def arithmetic_answer(question: str) -> int | None:
    """The value of a one-operation question in this module's format (``What is 47 + 8?``, ``-``, ``\\times``),
    parsed with a regular expression (nothing is evaluated); None for any other text.  Used to report how many
    of a teacher's arithmetic pairs are answered correctly."""
    match = _STATEMENT.match(question)
    if match is None:
        return None
    a, op, b = int(match.group(1)), match.group(2), int(match.group(3))
    return a + b if op == "+" else a - b if op == "-" else a * b


def load_arithmetic_hard() -> list[Problem]:
    """The shipped fail@k-filtered arithmetic set (see the module doc)."""
    text = (resources.files("soar") / "data" / "bundled" / "arithmetic-hard.jsonl").read_text(encoding="utf-8")
    return [Problem.from_dict(json.loads(line)) for line in text.splitlines() if line.strip()]
