"""Crash-safe file IO, the floor every other module stands on: atomic writes, one JSONL appender and one JSONL
reader with one rule for a line torn by a kill, disk-space errors and byte sizes for people.

Written by hand (not a library) because SOAR's resume contract rests on three exact properties that no small
library states together: a file is replaced whole or not at all (``write_atomic``: temporary file, fsync, rename,
fsync of the folder); an appended record is on disk before the call returns (``append_jsonl``); and a reader
knows the one thing a kill can leave behind, a last line cut short, and nothing else (:func:`read_jsonl`).

No torch at import time (``save_atomic`` imports it when called): data, analysis and the CLI use this module.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from soar.errors import SoarError

SPACE_MARGIN = 64 * 2**20
"""Bytes kept free beyond a write's tensors (file headers, pickled metadata, the filesystem's own needs)."""


class DiskSpaceError(SoarError):
    """Too little free disk for a write (checked before it, or the write itself failed)."""


def payload_bytes(value: Any) -> int:
    """Bytes of the tensors in ``value`` (nested dicts, lists, tuples); other leaves count as nothing."""
    if hasattr(value, "element_size") and hasattr(value, "numel"):
        return int(value.element_size() * value.numel())
    if isinstance(value, dict):
        return sum(payload_bytes(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(payload_bytes(v) for v in value)
    return 0


def require_space(folder: Path, needed: int, what: str, hint: str = "") -> None:
    """:class:`DiskSpaceError` unless the disk of ``folder`` (or of its nearest existing parent) has ``needed``
    bytes plus :data:`SPACE_MARGIN` free; ``what`` names the write, ``hint`` says how to go on."""
    folder = folder.resolve()
    while not folder.exists() and folder != folder.parent:  # a folder not created yet: the disk it will be on
        folder = folder.parent
    free = shutil.disk_usage(folder).free
    if free < needed + SPACE_MARGIN:
        raise DiskSpaceError(f"{what} needs {format_bytes(needed + SPACE_MARGIN)} free on its disk, "
                             f"{format_bytes(free)} are free" + (f"; free some space, then: {hint}" if hint else ""))


def write_failed(path: Path, exc: BaseException, hint: str) -> DiskSpaceError:
    """The one-line error of a write to ``path`` that failed with ``exc`` (a full disk, a quota), with the free space
    now and ``hint`` (how to go on)."""
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    try:
        free = f"; {format_bytes(shutil.disk_usage(path.parent).free)} free now"
    except OSError:
        free = ""
    return DiskSpaceError(f"writing {path} failed ({reason[:160]}){free}; nothing was left half-written and the "
                          f"previous copy is intact" + (f"; free some space, then: {hint}" if hint else ""))


def save_atomic(value: Any, path: Path, hint: str = "") -> None:
    """``torch.save`` through a temporary file, fsynced, renamed into place (see :func:`replace_atomic`)."""
    import torch

    replace_atomic(path, lambda tmp: torch.save(value, tmp), hint)


def fsync(path: Path) -> None:
    """Flush a file's (or a folder's entries') bytes to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def append_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    """The one way records are added to a JSONL file: one line each, flushed and fsynced before returning (a kill
    can tear only the last line, which readers skip)."""
    with open(path, "a", encoding="utf-8") as f:
        f.write("".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records))
        f.flush()
        os.fsync(f.fileno())


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    replace_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def replace_atomic(path: Path, write: Any, hint: str = "") -> None:
    """The one way a file is written safely: ``write(tmp)`` beside ``path``, fsync, rename over ``path``, fsync the
    folder (so a kill or a power cut leaves the old file or the new one, never part of one).  A failed write
    removes ``tmp`` and raises :class:`DiskSpaceError`."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        write(tmp)
        fsync(tmp)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, (OSError, RuntimeError)):
            raise write_failed(path, exc, hint) from None
        raise
    os.replace(tmp, path)
    fsync(path.parent)


def format_bytes(n: float) -> str:
    """A size for people: ``513.2 MiB``, ``1.50 GiB``."""
    if n >= 2**30:
        return f"{n / 2**30:.2f} GiB"
    for unit, size in (("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n:.0f} B"


def iter_jsonl(path: Path, torn_tail: bool = True) -> Iterator[tuple[int, Any]]:
    """``(line number, record)`` for each non-blank line of a JSONL file, and the one rule for a damaged line.

    A kill during :func:`append_jsonl` can leave only the file's last line cut short, and such a line has no
    newline after it.  So with ``torn_tail`` (files soar appends to) that line, when it does not parse, is skipped;
    any other line that does not parse is an error naming ``path:line``.  Files a person wrote (``torn_tail``
    False) get the error for every line."""
    with open(path, encoding="utf-8") as handle:
        records, _ = _parse(handle.read(), path, torn_tail)
    yield from records


def read_jsonl(path: Path, repair: bool = False) -> list[Any]:
    """The records of a JSONL file soar appends to ([] when it does not exist), by :func:`iter_jsonl`'s rule.
    ``repair``: cut a torn last line off the file too, so that the next :func:`append_jsonl` starts on a line of its
    own (a reader that goes on appending, as a resumed probe or filter does, must)."""
    path = Path(path)
    if not path.exists():
        return []
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    records, torn = _parse(text, path, torn_tail=True)
    if repair and torn:
        with open(path, "r+b") as handle:  # keep every byte up to the last newline
            handle.truncate(len(text[:text.rfind("\n") + 1].encode("utf-8")))
            handle.flush()
            os.fsync(handle.fileno())
    return [record for _, record in records]


def _parse(text: str, path: Path, torn_tail: bool) -> tuple[list[tuple[int, Any]], bool]:
    """``iter_jsonl``'s rule over a file's text: its ``(line number, record)`` pairs, and whether a torn last line
    was skipped."""
    lines = text.split("\n")
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            records.append((number, json.loads(line)))
        except json.JSONDecodeError as exc:
            if torn_tail and number == len(lines):  # the last piece has no newline after it: a torn append
                return records, True
            raise SoarError(f"{path}:{number}: not valid JSON: {exc.msg}") from None
    return records, False
