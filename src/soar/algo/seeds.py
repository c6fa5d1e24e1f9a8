"""Seeds derived by hashing: one function turns (run seed, phase, step, ...) into a seed.

``derive_seed(seed, "student", step, group, dataset, student)`` hashes its
parts (BLAKE2b over their ``repr``, joined by a separator no part can contain
unescaped) into a 62-bit integer: distinct tuples give distinct seeds with
overwhelming probability, so seeds never collide across steps, runs, groups or
phases, as arithmetic seeds such as ``seed * 1_000_003 + step * 10_000 + k`` do
(step 1 of run 0 meets run 1's step 0 well before any realistic size).  It is
stable across processes and Python versions (no ``hash()`` randomisation), so a
resumed run, a Ray worker and an uninterrupted run draw the same numbers.

The phase names in use: ``teacher`` (teacher sampling of a step),
``reward_questions`` (Q_R), ``student`` (one inner-loop student),
``learnability`` (B.4 success rates), ``filter`` (a fail@k block),
``sample`` (``soar sample``), ``eval_train`` / ``eval_test`` / ``eval_ps``
(``soar evaluate``).
"""

from __future__ import annotations

import hashlib

SEED_BITS = 62
"""Seeds fit torch's, Python's and NumPy's generators (all accept < 2**63)."""


def derive_seed(seed: int, phase: str, *parts: int | str) -> int:
    """A seed for ``phase`` of the run seeded ``seed`` at ``parts`` (step, group, dataset, student...)."""
    text = "\x1f".join(repr(p) for p in (int(seed), phase, *parts))
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> (64 - SEED_BITS)
