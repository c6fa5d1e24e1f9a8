r"""Load problem sets: JSONL, JSON, CSV, Parquet, Hugging Face datasets, bundled sets.

Every loader returns ``list[Problem]``.  Field names are configurable
(``question_field``, ``answer_field``, ``solution_field``, ``id_field``); a
record without an answer gets one from the last ``\boxed{...}`` of its solution
(MATH style).  Remaining fields are kept as metadata.  A record that lacks the
configured question field but has soar's own ``question`` and ``answer`` (the
files soar writes: ``soar filter``'s hard set, ``soar sample``, PQ) is read
with soar's names, so one config (say ``paper-math``, whose pool names its
fields ``problem`` / ``expected_answer``) serves both the filter, which reads
the pool, and training, which reads the filtered set.

Bad input raises :class:`~soar.errors.DataError` naming the file and the line
(JSONL, CSV) or record index (JSON, Parquet, datasets) at fault.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from soar.data.files import READERS
from soar.data.olympiad import PREFIX as OLYMPIAD_PREFIX
from soar.errors import DataError
from soar.math.extract import last_boxed
from soar.types import Problem

BUNDLED = ("arithmetic", "arithmetic-hard", "champ", "world", "world-hard")


def world_hard_dir() -> Path:
    """The shipped world's hard set, the ``world-hard`` source: ``hard.jsonl`` and its ``soar filter`` provenance
    ``stats.json``, shipped in the package beside the model (``soar.world``, ``docs/world.md`` says how it was made)."""
    from importlib import resources

    return Path(str(resources.files("soar") / "world" / "hard"))


@dataclass(frozen=True)
class Fields:
    question: str = "question"
    answer: str = "answer"
    solution: str = "solution"
    id: str = "id"


def load_problems(
    source: str,
    fields: Fields = Fields(),
    *,
    hf_split: str = "test",
    hf_config: str | None = None,
    arithmetic: Mapping[str, Any] | None = None,
    world: Mapping[str, Any] | None = None,
) -> list[Problem]:
    """Problems from a file path, ``hf:<name>``, ``olympiadbench:<file>`` (its released format,
    ``soar.data.olympiad``), or a bundled name (``arithmetic``, ``arithmetic-hard``, ``champ``, ``world``,
    ``world-hard``)."""
    if source == "world":
        from soar.world.family import generate_problems as world_problems

        return world_problems(**dict(world or {}))
    if source == "world-hard":
        source = str(world_hard_dir() / "hard.jsonl")
    if source == "arithmetic":
        from soar.data.arithmetic import generate_problems

        return generate_problems(**dict(arithmetic or {}))
    if source == "arithmetic-hard":
        from soar.data.arithmetic import load_arithmetic_hard

        return load_arithmetic_hard()
    if source == "champ":
        from soar.data.champ import load_champ

        return load_champ()
    if source.startswith("hf:"):
        return load_hf_dataset(source[3:], hf_split, fields, config=hf_config)
    if source.startswith(OLYMPIAD_PREFIX):
        from soar.data.olympiad import load_olympiadbench

        return load_olympiadbench(source.removeprefix(OLYMPIAD_PREFIX))[0]
    path = Path(source).expanduser()
    if not path.exists():
        raise DataError(
            f"problem source not found: {source!r} (expected a file, hf:<dataset>, "
            f"or one of {', '.join(BUNDLED)})"
        )
    if path.is_dir():  # a local Hugging Face dataset (saved or a folder of data files)
        return load_hf_dataset(str(path), hf_split, fields, config=hf_config)
    suffix = path.suffix.lower()
    readers = READERS
    if suffix not in readers:
        raise DataError(f"{path}: unsupported file type {suffix!r}; use .jsonl, .json, .csv or .parquet")
    problems = [record_to_problem(rec, fields, where) for where, rec in readers[suffix](path)]
    if not problems:
        raise DataError(f"{path}: no problems in file")
    return problems


def record_to_problem(record: Any, fields: Fields, where: str) -> Problem:
    """One record as a :class:`Problem`; ``where`` names it in errors (``file:line``)."""
    if not isinstance(record, Mapping):
        raise DataError(f"{where}: expected an object with fields, got {type(record).__name__}")
    if fields.question not in record and "question" in record and "answer" in record:
        fields = Fields()  # a file soar wrote
    question = record.get(fields.question)
    if not isinstance(question, str) or not question.strip():
        raise DataError(f"{where}: missing or empty question field {fields.question!r}")
    answer = record.get(fields.answer)
    if answer is None or (isinstance(answer, str) and not answer.strip()):
        solution = record.get(fields.solution)
        answer = last_boxed(solution) if isinstance(solution, str) else None
        if answer is None or not answer.strip():
            raise DataError(
                f"{where}: no answer: field {fields.answer!r} is missing or empty and field "
                f"{fields.solution!r} has no \\boxed{{...}} answer"
            )
    if isinstance(answer, (dict, list)) or isinstance(answer, bool):
        raise DataError(f"{where}: answer field {fields.answer!r} must be text or a number, got {answer!r}")
    used = {fields.question, fields.answer, fields.id}
    metadata = {k: v for k, v in record.items() if k not in used and _plain(v)}
    return Problem(
        question=question.strip(),
        answer=str(answer).strip(),
        id="" if record.get(fields.id) is None else str(record.get(fields.id)),
        metadata=metadata,
    )


def _plain(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def load_hf_dataset(name: str, split: str, fields: Fields, config: str | None = None) -> list[Problem]:
    """A Hugging Face dataset by hub name or local path (``load_dataset`` / ``load_from_disk``)."""
    import datasets

    local = Path(name).expanduser()
    try:
        saved = ("dataset_dict.json", "state.json")  # written by save_to_disk
        if local.is_dir() and any((local / marker).exists() for marker in saved):
            loaded = datasets.load_from_disk(str(local))
            data = loaded[split] if isinstance(loaded, datasets.DatasetDict) else loaded
        else:
            data = datasets.load_dataset(name, config, split=split)
    except Exception as exc:  # network, missing split, bad files: one clear line
        raise DataError(f"Hugging Face dataset {name!r} (split {split!r}) could not be loaded: {exc}") from None
    return [record_to_problem(rec, fields, f"{name}[{split}] record {i}") for i, rec in enumerate(data)]
