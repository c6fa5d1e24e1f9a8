r"""Answer verification and the student reward of Appendix B.3, on Math-Verify.

Paper (B.3): with y the completion and a the gold answer,

    R(y, a) = 120  if has_boxed(y) and verify(y, a)
               20  if has_boxed(y) and not verify(y, a) and a in y_ans
               10  if has_boxed(y) and not verify(y, a) and a not in y_ans
                0  otherwise

Choices where the paper is silent:
- ``y_ans`` is the raw content of the *last* ``\boxed{}`` of the completion, and
  ``a in y_ans`` is a substring test after removing whitespace from both.
- ``kind="binary"`` gives 1/0 for verified/not (a variant selectable in config).
- ``require_boxed=False`` (our addition for small models that never write
  ``\boxed``; the paper presets keep ``True``): a completion without ``\boxed``
  is scored on the answer Math-Verify extracts from the free text (its last
  number or LaTeX expression): 120 (or 1) if it matches, else 0.  A completion
  with ``\boxed`` is scored exactly as the paper says.
- ``numeric=True`` (``reward.numeric_answers``, our addition, off in the paper
  presets): when the gold answer parses to a number, the reply's answer must
  parse to a number too (a SymPy ``Number``: ``14931``, ``1/2``, ``0.5``), not
  an unevaluated expression.  Math-Verify evaluates ``63 \times 237`` and
  calls it equal to ``14931``, so on computation problems restating the
  question is otherwise a correct answer.  A boxed expression then scores as a
  wrong boxed answer (20 or 10).
- Plain integers on both sides (the gold answer and the reply's last box, each
  ``-?digits`` after stripping spaces) are compared as integers in this process,
  without a round trip to the pool: Math-Verify parses both to SymPy
  ``Integer`` and calls them equal exactly when their values are (a test
  checks the verdicts against the pool's on thousands of pairs).  Small models
  on computation problems answer this way almost always, and the pool's
  ~1,000 answers/s would otherwise bound the designed world's inner loop
  (``soar.world``).
- Verification runs in a :class:`~soar.math.pool.KillablePool` of worker
  processes with a hard per-call timeout; a timeout, crash or checker error
  counts as "no match" (reward 0 for that completion).

Nothing here ``eval``s a string: Math-Verify parses LaTeX/expressions with its
own parser into sympy objects.
"""

from __future__ import annotations

import atexit
import logging
import os
import re
import threading
from collections.abc import Sequence
from typing import Literal

from soar.math.extract import last_boxed
from soar.math.pool import KillablePool

RewardKind = Literal["paper", "binary"]
PAPER_CORRECT, PAPER_CONTAINS_GOLD, PAPER_WRONG, PAPER_NO_BOXED = 120.0, 20.0, 10.0, 0.0


def full_marks(kind: str) -> float:
    """The reward of a correct answer under ``reward.kind`` (what "solved" means in every accuracy)."""
    return 1.0 if kind == "binary" else PAPER_CORRECT


# Math-Verify's own (signal-based) timeouts, used inside workers; the pool's
# hard timeout sits above them for inputs that ignore signals.
_SOFT_TIMEOUT_S = 3
_MAX_INPUT_CHARS = 20_000  # longer answers are not answers; reject before parsing
logging.getLogger("math_verify").setLevel(logging.CRITICAL)  # its timeouts are counted, not printed


# ---------------------------------------------------------------------------
# In-process checks.  They run inside the workers (``op_*``) and are the
# reference the benchmark compares the pool against.  Call them directly only
# from a main thread, and only on trusted input.
# ---------------------------------------------------------------------------


def worker_init() -> None:
    """Import Math-Verify (and sympy) once when a pool worker starts."""
    import math_verify  # noqa: F401


def _as_math(text: str) -> str:
    """Wrap a bare answer in ``$..$`` so Math-Verify reads it as LaTeX."""
    text = text.strip()
    return text if text.startswith("$") else f"${text}$"


def _parse(text: str, *, free_text: bool = False) -> list:
    from math_verify import parse

    if len(text) > _MAX_INPUT_CHARS:
        return []
    return parse(
        text if free_text else _as_math(text),
        fallback_mode="no_fallback",
        parsing_timeout=_SOFT_TIMEOUT_S,
    )


def _verify(gold: list, predicted: list) -> bool:
    from math_verify import verify

    if not gold or not predicted:
        return False
    return bool(verify(gold, predicted, timeout_seconds=_SOFT_TIMEOUT_S))


def _squash(text: str) -> str:
    return "".join(text.split())


def op_match(predicted: str, gold: str) -> bool:
    """Whether a bare predicted answer equals the gold answer (in-process)."""
    return _verify(_parse(gold), _parse(predicted))


def op_parseable(answer: str) -> bool:
    """Whether Math-Verify turns ``answer`` into a math object, not just a string."""
    return bool(_parse(answer))


def _is_number(parsed: list) -> bool:
    import sympy

    return bool(parsed) and isinstance(parsed[0], sympy.Number)


def _matches(gold: list, predicted: list, numeric: bool) -> bool:
    if numeric and _is_number(gold) and not _is_number(predicted):
        return False  # an expression that evaluates to the number is not the number (module docstring)
    return _verify(gold, predicted)


_INTEGER = re.compile(r"^-?\d+$")


def integer_reward(completion: str, gold: str, kind: str) -> float | None:
    """The B.3 reward when the gold answer and the completion's last box are both plain integers (what Math-Verify
    would give, without it), else ``None``."""
    gold = gold.strip()
    if not _INTEGER.match(gold):
        return None
    boxed = last_boxed(completion)
    if boxed is None or not _INTEGER.match(boxed.strip()):
        return None
    if int(boxed.strip()) == int(gold):
        return full_marks(kind)
    if kind == "binary":
        return 0.0
    return PAPER_CONTAINS_GOLD if gold in _squash(boxed) else PAPER_WRONG


def op_reward(completion: str, gold: str, require_boxed: bool, kind: str, numeric: bool = False) -> float:
    """The B.3 reward of one completion (in-process); see the module docstring."""
    correct_value = full_marks(kind)
    boxed = last_boxed(completion)
    if boxed is not None:
        if _matches(_parse(gold), _parse(boxed), numeric):
            return correct_value
        if kind == "binary":
            return 0.0
        gold_squashed = _squash(gold)
        return PAPER_CONTAINS_GOLD if gold_squashed and gold_squashed in _squash(boxed) else PAPER_WRONG
    if require_boxed:
        return PAPER_NO_BOXED
    return correct_value if _matches(_parse(gold), _parse(completion, free_text=True), numeric) else 0.0


# ---------------------------------------------------------------------------
# The pooled API.
# ---------------------------------------------------------------------------


class Verifier:
    """Batch scoring on a pool of killable worker processes."""

    def __init__(self, workers: int = 2, timeout_s: float = 10.0) -> None:
        self.pool = KillablePool("soar.math.verify", workers=workers, timeout_s=timeout_s)

    def answers_match_many(self, pairs: Sequence[tuple[str, str]]) -> list[bool]:
        """``[answers_match(predicted, gold) for predicted, gold in pairs]``."""
        results = self.pool.map("match", [(str(p), str(g)) for p, g in pairs])
        return [bool(r) for r in results]

    def parseable_many(self, answers: Sequence[str]) -> list[bool]:
        plain = [bool(_INTEGER.match(str(a).strip())) for a in answers]  # an integer always parses
        results = iter(self.pool.map("parseable", [(str(a),) for a, p in zip(answers, plain) if not p]))
        return [True if p else bool(next(results)) for p in plain]

    def math_rewards(
        self,
        completions: Sequence[str],
        golds: Sequence[str],
        *,
        require_boxed: bool = True,
        kind: RewardKind = "paper",
        numeric: bool = False,
    ) -> list[float]:
        """The B.3 reward of each completion against its gold answer (``numeric``: see the module docstring)."""
        if len(completions) != len(golds):
            raise ValueError(f"{len(completions)} completions but {len(golds)} gold answers")
        if kind not in ("paper", "binary"):
            raise ValueError(f"unknown reward kind {kind!r}: expected 'paper' or 'binary'")
        fast = [integer_reward(str(c), str(g), kind) for c, g in zip(completions, golds)]
        args = [(str(c), str(g), bool(require_boxed), kind, bool(numeric))
                for c, g, f in zip(completions, golds, fast) if f is None]
        pooled = iter(self.pool.map("reward", args) if args else [])
        return [f if f is not None else float(next(pooled) or 0.0) for f in fast]

    def close(self) -> None:
        self.pool.close()

    def __enter__(self) -> "Verifier":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_default: Verifier | None = None
_default_lock = threading.Lock()


def default_verifier() -> Verifier:
    """A process-wide :class:`Verifier`, started on first use, closed at exit."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Verifier(workers=max(1, min(2, os.cpu_count() or 1)))
            atexit.register(_default.close)
        return _default


def answers_match(predicted: str, gold: str) -> bool:
    """Whether ``predicted`` and ``gold`` are the same answer, by Math-Verify.

    Equivalent forms match (``\\frac{1}{2}`` and ``0.5``, intervals, sets,
    expressions).  Runs in the default verifier pool with a hard timeout; a
    timeout counts as no match.
    """
    return default_verifier().answers_match_many([(predicted, gold)])[0]


def math_reward(
    completion: str, gold: str, *, require_boxed: bool = True, kind: RewardKind = "paper", numeric: bool = False
) -> float:
    """The Appendix B.3 reward of one student completion (120/20/10/0, or 1/0)."""
    return default_verifier().math_rewards(
        [completion], [gold], require_boxed=require_boxed, kind=kind, numeric=numeric
    )[0]
