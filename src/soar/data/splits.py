"""Seeded train/test splits of a hard set, written to disk and reused.

The paper splits each fail@128 set 50/50 at random (Section 4.1).  A split is
keyed by a hash of the problems' content, the seed and the test fraction, and
saved as ``train.jsonl`` / ``test.jsonl`` (plus ``split.json`` with the key)
under the splits directory, so every later run over the same problems reuses
exactly the same split, and a changed problem set never silently reuses a
stale one.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path

from soar.data.files import write_jsonl
from soar.errors import DataError
from soar.io import iter_jsonl
from soar.types import Problem


@dataclass(frozen=True)
class Split:
    train: list[Problem]
    test: list[Problem]
    directory: Path


def content_key(problems: list[Problem], seed: int, test_fraction: float) -> str:
    digest = hashlib.sha256()
    for problem in problems:
        digest.update(json.dumps([problem.id, problem.question, problem.answer]).encode())
    digest.update(f"|{seed}|{test_fraction}".encode())
    return digest.hexdigest()[:16]


def split_problems(problems: list[Problem], seed: int, test_fraction: float = 0.5) -> tuple[list[Problem], list[Problem]]:
    """Shuffle with ``random.Random(seed)`` and cut: ``round(len * test_fraction)`` go to test
    (at least one problem on each side)."""
    if len(problems) < 2:
        raise DataError(f"need at least 2 problems to split, got {len(problems)}")
    if not 0.0 < test_fraction < 1.0:
        raise DataError(f"data.test_fraction must be between 0 and 1, got {test_fraction}")
    order = list(range(len(problems)))
    random.Random(seed).shuffle(order)
    n_test = min(max(round(len(problems) * test_fraction), 1), len(problems) - 1)  # both sides non-empty
    test = [problems[i] for i in order[:n_test]]
    train = [problems[i] for i in order[n_test:]]
    return train, test


def load_or_make_split(
    problems: list[Problem], splits_dir: str | Path, name: str, seed: int, test_fraction: float = 0.5
) -> Split:
    """The saved split of ``problems`` if one exists, else a new one, saved."""
    if len(problems) < 2:
        raise DataError(f"need at least 2 problems to split, got {len(problems)}")
    key = content_key(problems, seed, test_fraction)
    safe_name = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[-60:]
    directory = Path(splits_dir).expanduser() / f"{safe_name}-{key}"
    train_path, test_path, meta_path = directory / "train.jsonl", directory / "test.jsonl", directory / "split.json"
    if meta_path.exists():
        return Split(train=_read_split(train_path), test=_read_split(test_path), directory=directory)
    train, test = split_problems(problems, seed, test_fraction)
    write_jsonl(train_path, train)
    write_jsonl(test_path, test)
    meta = {"name": name, "key": key, "seed": seed, "test_fraction": test_fraction,
            "train": len(train), "test": len(test)}
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")  # written last: marks the split complete
    return Split(train=train, test=test, directory=directory)


def _read_split(path: Path) -> list[Problem]:
    """Read back what :func:`write_jsonl` wrote (the exact inverse, metadata included)."""
    return [Problem.from_dict(record) for _, record in iter_jsonl(path, torn_tail=False)]
