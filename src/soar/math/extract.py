r"""Extraction of ``\boxed{...}`` contents with nested braces.

Written by hand because Math-Verify extracts *and normalises* an answer, while
SOAR also needs the raw boxed string: the teacher parser keeps it as the
synthetic answer (Appendix B.2), and the B.3 reward's 20-point level tests
whether the gold answer occurs in the student's raw boxed answer.

Pure string scanning, linear time, no recursion, no ``eval``.
"""

from __future__ import annotations

import re

_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")


def boxed_spans(text: str) -> list[str]:
    r"""Contents of every *closed* ``\boxed{...}`` / ``\fbox{...}`` in ``text``, in order.

    Braces are matched by depth, so ``\boxed{\frac{1}{2}}`` gives ``\frac{1}{2}``.
    Escaped braces (``\{``, ``\}``) do not count towards the depth.  An opening
    without its closing brace (unbalanced) is skipped.
    """
    spans: list[str] = []
    pos = 0
    while True:
        match = _BOXED.search(text, pos)
        if match is None:
            return spans
        start = match.end()
        end = _matching_brace(text, start)
        if end is None:  # unbalanced: no later \boxed can close either
            return spans
        spans.append(text[start:end])
        pos = end + 1


def last_boxed(text: str) -> str | None:
    r"""Content of the last closed ``\boxed{...}`` in ``text``, or ``None``."""
    spans = boxed_spans(text)
    return spans[-1] if spans else None


_NUMBER = re.compile(r"(?:(?<![\w)])-)?\d[\d,]*(?:\.\d+)?")  # a minus after a word or ")" is an operator


def final_answer(text: str) -> str | None:
    r"""A reply's answer as a solver states it: its last ``\boxed{}`` (when not empty), else its last number
    (thousands commas dropped, a trailing full stop not part of it), else ``None``."""
    boxed = last_boxed(text)
    if boxed is not None and boxed.strip():
        return boxed.strip()
    numbers = _NUMBER.findall(text)
    return numbers[-1].replace(",", "") if numbers else None


def has_boxed(text: str) -> bool:
    r"""Whether ``text`` contains at least one closed ``\boxed{...}``."""
    return last_boxed(text) is not None


def _matching_brace(text: str, start: int) -> int | None:
    """Index of the ``}`` closing the group whose content starts at ``start``."""
    depth = 1
    i = start
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "\\":
            i += 2  # skip the escaped character (\{, \}, \\)
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return None
