r"""Parsing teacher rollouts into question/answer pairs (Appendix B.2).

The paper keeps a rollout only if it

1. contains opening and closing question/answer tags,
2. contains the ``\boxed`` notation (denoting an answer), and
3. the boxed content is parsable by a symbolic math verifier,

and resamples until it has g * n such rollouts.

Choices where the paper is silent:
- The paper's own prompt writes the question's closing tag as ``<question>``
  (a typo for ``</question>``); both are accepted as the closing tag.
- The answer tag must follow the question's closing tag; ``\boxed{}`` must be
  inside ``<answer>...</answer>``; its content is taken with nested braces
  (``\boxed{\frac{1}{2}}`` gives ``\frac{1}{2}``); with several boxes in one
  answer the last one counts.
- Text outside the tags is ignored.  With several problems in one output, the
  first complete question/answer pair is used (later ones are ignored).
- A question that is empty after stripping whitespace is rejected.
- "Parsable" means Math-Verify turns the boxed content into a math object
  (not merely a string fallback); it is checked in the verifier's process pool
  with a hard timeout, and a timeout counts as unparseable.

CPU-testbed option (``teacher.answer_format: number``, off in the paper
presets): the boxed answer must also be a plain number (:func:`is_number`:
an integer, a decimal, a fraction ``a/b`` or ``\\frac{a}{b}``, with an optional
sign and thousands commas).  Math-Verify parses ``[answer]`` and ``Question 1``
as symbols, so in a numeric domain the B.2 rule alone accepts answers that no
student can ever match.  With ``teacher.prompt_examples`` (also CPU-testbed
only), a question that repeats an example's question (whitespace aside) is
rejected: the prompt asks for an original problem, and SmolLM2-135M copied
the first example in most drafts of a measured first step.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum

from soar.math.extract import last_boxed
from soar.types import QAPair


class Rejection(str, Enum):
    """Why a rollout was rejected (counted per outer step)."""

    MISSING_QUESTION_TAGS = "missing_question_tags"
    EMPTY_QUESTION = "empty_question"
    MISSING_ANSWER_TAGS = "missing_answer_tags"
    MISSING_BOXED = "missing_boxed"
    UNPARSEABLE_ANSWER = "unparseable_answer"
    NON_NUMERIC_ANSWER = "non_numeric_answer"
    COPIED_EXAMPLE = "copied_example"


@dataclass(frozen=True)
class ParseResult:
    pair: QAPair | None
    rejection: Rejection | None

    @property
    def ok(self) -> bool:
        return self.pair is not None


_NUMBER = re.compile(r"^[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:\s*/\s*\d+)?$|^[-+]?\.\d+$")
_FRAC = re.compile(r"^[-+]?\\[dt]?frac\{\s*\d+\s*\}\{\s*\d+\s*\}$")


def is_number(text: str) -> bool:
    """A plain number: ``12``, ``-3``, ``1,398``, ``2.5``, ``3/4``, ``\\frac{3}{4}`` (``$`` signs and spaces around
    it are ignored); not an expression, a symbol or words."""
    core = text.strip().strip("$").strip()
    return bool(_NUMBER.match(core) or _FRAC.match(core))


def _words(text: str) -> str:
    return " ".join(text.split())


_QUESTION = re.compile(r"<question>(.*?)(?:</question>|<question>)", re.DOTALL)
_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)

Parseable = Callable[[Sequence[str]], list[bool]]
"""Batch check that Math-Verify can parse each answer."""


def _default_parseable(answers: Sequence[str]) -> list[bool]:
    from soar.math.verify import default_verifier

    return default_verifier().parseable_many(answers)


def _structure(text: str) -> tuple[QAPair | None, Rejection | None]:
    """Tags and ``\\boxed`` only (rules 1-2); the verifier check comes after."""
    question_match = _QUESTION.search(text)
    if question_match is None:
        return None, Rejection.MISSING_QUESTION_TAGS
    question = question_match.group(1).strip()
    if not question:
        return None, Rejection.EMPTY_QUESTION
    next_question = text.find("<question>", question_match.end())  # an answer belongs to its own question
    answer_match = _ANSWER.search(text, question_match.end(), next_question if next_question >= 0 else len(text))
    if answer_match is None:
        return None, Rejection.MISSING_ANSWER_TAGS
    boxed = last_boxed(answer_match.group(1))
    if boxed is None or not boxed.strip():
        return None, Rejection.MISSING_BOXED
    return QAPair(question=question, answer=boxed.strip()), None


def parse_teacher_outputs(texts: Sequence[str], parseable: Parseable | None = None, numeric: bool = False,
                          examples: Sequence[str] = ()) -> list[ParseResult]:
    """Parse many rollouts; the verifier check runs as one batch.  ``numeric``: the answer must also be a plain
    number (:func:`is_number`; ``teacher.answer_format: number``); ``examples``: the prompt's example outputs,
    whose questions may not be repeated (``teacher.prompt_examples``)."""
    structured = [_structure(t) for t in texts]
    if numeric:
        structured = [(None, Rejection.NON_NUMERIC_ANSWER) if pair is not None and not is_number(pair.answer)
                      else (pair, rejection) for pair, rejection in structured]
    if examples:
        seen = {_words(pair.question) for pair, _ in map(_structure, examples) if pair is not None}
        structured = [(None, Rejection.COPIED_EXAMPLE) if pair is not None and _words(pair.question) in seen
                      else (pair, rejection) for pair, rejection in structured]
    candidates = [pair.answer for pair, _ in structured if pair is not None]
    verdicts = iter((parseable or _default_parseable)(candidates) if candidates else [])
    results = []
    for pair, rejection in structured:
        if pair is None:
            results.append(ParseResult(None, rejection))
        elif next(verdicts):
            results.append(ParseResult(pair, None))
        else:
            results.append(ParseResult(None, Rejection.UNPARSEABLE_ANSWER))
    return results


def parse_teacher_output(text: str, parseable: Parseable | None = None) -> QAPair | None:
    """The question/answer pair in one teacher rollout, or ``None`` if it is rejected.

    Use :func:`parse_teacher_outputs` to learn why a rollout was rejected.
    """
    return parse_teacher_outputs([text], parseable)[0].pair


def rejection_counts(results: Sequence[ParseResult]) -> dict[str, int]:
    """``{reason: count}`` over rejected results (empty when all were accepted)."""
    return dict(Counter(r.rejection.value for r in results if r.rejection is not None))
