"""OlympiadBench (He et al., 2024) from a local file in its released format, for the paper's held-out evaluation.

The paper (B.5) takes the English, text-only, automatically verifiable math
subset (674 problems: the ``OE_TO_maths_en_COMP`` file of the OlympiadBench
release, or that config of the ``Hothan/OlympiadBench`` mirror), filters it
to fail@128 and splits it 50/50.  Hub downloads are not assumed: point
``data.source`` at ``olympiadbench:PATH``, where ``PATH`` is the release's
JSON file (a list of records), or a JSONL or Parquet export of the same
records.

A record's fields, as released: ``id``, ``question``, ``context`` (shared
text some problems start from; put before the question), ``final_answer`` (a
list of LaTeX strings, usually one, ``$``-delimited), ``is_multiple_answer``,
``unit``, ``answer_type``, ``subfield``, ``solution`` and, in the multimodal
files, ``image_1`` ... ``image_5``.  A record with an image (a non-null
``image_N`` field or an ``<image`` tag in its text) or without a final answer
is left out and counted; several final answers are joined with ", " (what
Math-Verify compares as a set).  ``unit``, ``answer_type`` and ``subfield``
stay as metadata.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from soar.errors import DataError
from soar.types import Problem

PREFIX = "olympiadbench:"


def load_olympiadbench(path: str | Path) -> tuple[list[Problem], dict[str, int]]:
    """The text-only, answerable problems of an OlympiadBench file, and how many records were left out why."""
    from soar.data.files import read_json_records, read_jsonl_records, read_parquet_records

    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"OlympiadBench file not found: {path} (the release's OE_TO_maths_en_COMP.json)")
    readers = {".json": read_json_records, ".jsonl": read_jsonl_records, ".parquet": read_parquet_records}
    reader = readers.get(path.suffix.lower())
    if reader is None:
        raise DataError(f"{path}: unsupported file type {path.suffix!r} for OlympiadBench; use .json, .jsonl or "
                        ".parquet")
    problems, skipped = [], {"with an image": 0, "without a final answer": 0}
    for where, record in reader(path):
        if not isinstance(record, Mapping):
            raise DataError(f"{where}: expected an OlympiadBench record, got {type(record).__name__}")
        question, context = record.get("question"), record.get("context")
        if not isinstance(question, str) or not question.strip():
            raise DataError(f"{where}: missing or empty 'question' (is this an OlympiadBench file?)")
        text = f"{context.strip()}\n\n{question.strip()}" if isinstance(context, str) and context.strip() else question
        if any(record.get(f"image_{i}") for i in range(1, 10)) or "<image" in text:
            skipped["with an image"] += 1
            continue
        final = record.get("final_answer")
        answers = [final] if isinstance(final, str) else list(final) if isinstance(final, list) else []
        answers = [_strip_dollars(a) for a in answers if isinstance(a, str) and _strip_dollars(a)]
        if not answers:
            skipped["without a final answer"] += 1
            continue
        metadata = {k: record[k] for k in ("unit", "answer_type", "subfield", "is_multiple_answer")
                    if record.get(k) is not None}
        problems.append(Problem(question=text.strip(), answer=", ".join(answers),
                                id="" if record.get("id") is None else str(record["id"]),
                                metadata={**metadata, "source": "olympiadbench"}))
    if not problems:
        raise DataError(f"{path}: no text-only OlympiadBench problem with a final answer "
                        f"({', '.join(f'{n} {why}' for why, n in skipped.items())})")
    return problems, skipped


def _strip_dollars(answer: str) -> str:
    answer = answer.strip()
    while len(answer) >= 2 and answer.startswith("$") and answer.endswith("$"):
        answer = answer[1:-1].strip()
    return answer
