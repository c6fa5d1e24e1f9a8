r"""The teacher and student prompts of Appendix B.1, verbatim.

The teacher always gets the same prompt (no seed questions: the setup is
data-free).  The student prompt is used for fail@k filtering, inner-loop
training and evaluation alike, with ``<QUESTION>`` replaced by the question.

Both are given to the model as the user turn of its chat template, when the
tokenizer has one (``add_generation_prompt=True``), and as raw text otherwise.
Every template is rendered with one fixed date (``model.prompt_date``, which
``load_model`` sets on the tokenizer; default :data:`DEFAULT_PROMPT_DATE`):
Llama 3.x templates print "Today Date: <today>" through ``strftime_now``, so
prompts, and with them filter, training and evaluation, would otherwise change
from one day to the next, even inside one run.  Both ways a template can ask
for the date are pinned: the ``date_string`` variable is passed, and every
``strftime_now("<format>")`` call in the template text is replaced by the fixed
date in that format (transformers 5 turns callables passed to a template into
strings, so the function itself cannot be replaced).

A model trained on other prompts says so with ``model.prompts``: ``world`` (the designed world, whose
model was trained from scratch on its own short prompts, :mod:`soar.world.family`) replaces both texts;
``load_model`` records the choice on the tokenizer (``soar_prompts``, beside ``soar_prompt_date``), so every
caller that renders a prompt for that tokenizer gets the model's own.

Deviations: the paper's typeset student prompt ends ``Assistant: "``; the
closing double quote is the end of the string literal in the typesetting, not
prompt text, so it is left out.  Everything else, the teacher prompt's
``<question>...<question>`` typo included, is character for character.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Sequence
from typing import Any, Protocol

from soar.config import parse_prompt_date

TEACHER_PROMPT = """You are generating a new math problem for a math assistant.

Allowed topics: Algebra, Counting and Probability, Geometry, Intermediate Algebra, Number Theory, Prealgebra, or Precalculus.

Output rules (follow EXACTLY):

- Provide the final formatted problem in this structure: <question>[full math question]<question><answer>\\boxed{[answer]}</answer>
- Any explanations, steps, or reasoning about the problem goes OUTSIDE the <question> and <answer> tags.

Constraints:

- The problem must be original, challenging, and require at least 2--3 steps of reasoning.
- Output exactly ONE problem. You MUST follow the specified format EXACTLY.

Begin now:"""

STUDENT_PROMPT = (
    "A conversation between User and Assistant. The user asks a question, and the Assistant "
    "solves it. The assistant first shows the complete reasoning process step by step, then "
    "provides the final answer in \\boxed{[answer]}. The assistant must always follow the "
    "format: 'User: [question] Assistant: [detailed reasoning] The final answer is: "
    "\\boxed{[answer]}'.\nUser: <QUESTION> Assistant: "
)


DEFAULT_PROMPT_DATE = "2024-07-26"
"""Llama 3.x templates' own fallback date (26 Jul 2024)."""


class ChatTokenizer(Protocol):
    chat_template: Any

    def apply_chat_template(self, conversation: Any, **kwargs: Any) -> Any: ...


def prompts_of(tokenizer: Any) -> str:
    """``model.prompts`` of the model ``tokenizer`` belongs to (``paper`` unless ``load_model`` said otherwise)."""
    return getattr(tokenizer, "soar_prompts", "paper")


def student_template(prompts: str = "paper") -> str:
    """The student prompt with ``<QUESTION>`` in place of the question: B.1's, or the world's."""
    if prompts == "world":
        from soar.world.family import STUDENT_PROMPT as WORLD_STUDENT_PROMPT

        return WORLD_STUDENT_PROMPT
    return STUDENT_PROMPT


def student_prompt_text(question: str, prompts: str = "paper") -> str:
    """The student prompt for ``question`` (before any chat template): B.1's, or the world's."""
    return student_template(prompts).replace("<QUESTION>", question)


def render(text: str, tokenizer: ChatTokenizer | None, history: Sequence[tuple[str, str]] = ()) -> str:
    """``text`` as the user turn of the tokenizer's chat template, ready for generation.

    ``history``: earlier (user, assistant) turns.  Without a chat template the
    turns are joined with newlines.
    """
    if tokenizer is None or not getattr(tokenizer, "chat_template", None):
        return "".join(f"{user}\n{assistant}\n" for user, assistant in history) + text
    messages = [{"role": role, "content": content} for turn in history
                for role, content in zip(("user", "assistant"), turn)]
    date = getattr(tokenizer, "soar_prompt_date", DEFAULT_PROMPT_DATE)
    template = pinned_template(tokenizer.chat_template, date)
    day = parse_prompt_date(date)
    return tokenizer.apply_chat_template(
        messages + [{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True,
        chat_template=template, date_string=day.strftime("%d %b %Y"),
    )


@functools.lru_cache(maxsize=32)
def pinned_template(template: str, date: str) -> str:
    """``template`` with each ``strftime_now("<format>")`` call replaced by ``date`` (YYYY-MM-DD) in that format."""
    day = parse_prompt_date(date)
    return _STRFTIME.sub(lambda m: json.dumps(day.strftime(m.group(2))), template)


_STRFTIME = re.compile(r"""strftime_now\(\s*(['"])(.*?)\1\s*\)""")


EXAMPLES_HEADER = "Examples of the format (write a new problem, not one of these):"


def teacher_prompt_text(examples: Sequence[str] = (), prompts: str = "paper") -> str:
    """The B.1 teacher prompt (or the world's); with ``examples`` (``teacher.prompt_examples``, a CPU-testbed
    deviation, empty in the paper presets) a block of formatted example outputs goes before ``Begin now:``."""
    if prompts == "world":
        from soar.world.family import TEACHER_PROMPT as WORLD_TEACHER_PROMPT

        return WORLD_TEACHER_PROMPT  # no examples: validation refuses them with the world's prompts
    if not examples:
        return TEACHER_PROMPT
    body, begin = TEACHER_PROMPT.rsplit("\n\n", 1)
    return body + "\n\n" + EXAMPLES_HEADER + "\n\n" + "\n".join(examples) + "\n\n" + begin


def teacher_prompt(tokenizer: ChatTokenizer | None = None, examples: Sequence[str] = ()) -> str:
    return render(teacher_prompt_text(examples, prompts_of(tokenizer)), tokenizer)


def student_prompt(question: str, tokenizer: ChatTokenizer | None = None) -> str:
    return render(student_prompt_text(question, prompts_of(tokenizer)), tokenizer)
