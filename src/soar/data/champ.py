"""CHAMP: 270 human-written competition problems with answers (MIT licence).

Read from the JSON file that the ``champ-dataset`` PyPI package ships, so it
works offline.  The package's own loader is not used: it parses every model
conversation in the 72 MB file, of which SOAR needs only the problem text,
its final answer and its category.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from soar.errors import DataError
from soar.types import Problem


def champ_file() -> Path:
    spec = importlib.util.find_spec("champ_dataset")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("CHAMP needs the 'champ-dataset' package: pip install champ-dataset")
    path = Path(next(iter(spec.submodule_search_locations))) / "dataset_files" / "v0.json"
    if not path.is_file():
        raise DataError(f"CHAMP data file not found at {path}; reinstall champ-dataset")
    return path


def load_champ() -> list[Problem]:
    """All 270 CHAMP problems, in the package's order."""
    path = champ_file()
    records = json.loads(path.read_text(encoding="utf-8"))["problems"]
    problems = []
    for key, record in records.items():
        answer = str(record.get("_answer") or "").strip()
        question = str(record.get("_text") or "").strip()
        if not question or not answer:
            raise DataError(f"{path}: problem {key} has no text or no answer")
        problems.append(
            Problem(
                question=question,
                answer=answer,
                id=str(record.get("identifier", key)),
                metadata={"category": record.get("category", ""), "source": "champ"},
            )
        )
    return problems
