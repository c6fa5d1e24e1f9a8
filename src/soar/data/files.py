"""Record files: the readers of a problem file's records (JSONL, JSON, CSV, Parquet) and the one writer of problem
sets.  Each reader yields ``(where, record)``, ``where`` naming the file and line or record for error messages;
a malformed file is a :class:`~soar.errors.DataError` in one line.  Below :mod:`soar.data.problems` and
:mod:`soar.data.olympiad`, which both read through it."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from soar.errors import DataError, SoarError
from soar.io import iter_jsonl, write_atomic
from soar.types import Problem


def read_jsonl_records(path: Path) -> Iterable[tuple[str, Any]]:
    try:
        for number, record in iter_jsonl(path, torn_tail=False):  # a person's file: every bad line is an error
            yield f"{path}:{number}", record
    except SoarError as exc:
        raise DataError(str(exc)) from None


def read_json_records(path: Path) -> Iterable[tuple[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from None
    if isinstance(data, dict):  # {"problems": [...]} or {"data": [...]}
        lists = [v for v in data.values() if isinstance(v, list)]
        if len(lists) != 1:
            raise DataError(f"{path}: expected a list of records, or an object holding exactly one list")
        data = lists[0]
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a list of records")
    for index, record in enumerate(data):
        yield f"{path}: record {index}", record


def read_csv_records(path: Path) -> Iterable[tuple[str, Any]]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        for record in reader:
            if None in record:  # more cells than header columns
                raise DataError(f"{path}:{reader.line_num}: more values than header columns")
            yield f"{path}:{reader.line_num}", record


def read_parquet_records(path: Path) -> Iterable[tuple[str, Any]]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise DataError(f"{path}: not a readable Parquet file: {exc}") from None
    for index, record in enumerate(table.to_pylist()):
        yield f"{path}: row {index}", record


READERS = {".jsonl": read_jsonl_records, ".json": read_json_records, ".csv": read_csv_records,
           ".parquet": read_parquet_records}
"""The reader of each file suffix soar loads problems from."""


def write_jsonl(path: Path, problems: Iterable[Problem]) -> None:
    """Write problems as JSONL atomically (:func:`soar.io.write_atomic`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, "".join(json.dumps(p.to_dict(), ensure_ascii=False) + "\n" for p in problems))
