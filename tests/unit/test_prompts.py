from pathlib import Path

from soar.data.prompts import (
    STUDENT_PROMPT,
    TEACHER_PROMPT,
    render,
    student_prompt,
    student_prompt_text,
    teacher_prompt,
)

PAPER = Path(__file__).resolve().parents[2] / "docs" / "paper" / "appendix-b1-prompts.md"  # the paper's B.1, verbatim


def _tokenizer(chat_template):
    """A real transformers fast tokenizer (word-level vocab built here), with a chat template."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    raw = Tokenizer(models.WordLevel({"<unk>": 0, "hello": 1}, unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=raw, unk_token="<unk>")
    tok.chat_template = chat_template
    return tok


def test_prompts_hold_the_papers_text():
    assert TEACHER_PROMPT.startswith("You are generating a new math problem for a math assistant.")
    assert "<question>[full math question]<question><answer>\\boxed{[answer]}</answer>" in TEACHER_PROMPT
    assert "require at least 2--3 steps of reasoning." in TEACHER_PROMPT
    assert TEACHER_PROMPT.endswith("Begin now:")
    assert STUDENT_PROMPT.startswith("A conversation between User and Assistant.")
    assert "The final answer is: \\boxed{[answer]}'." in STUDENT_PROMPT
    assert student_prompt_text("What is 2+2?").endswith("User: What is 2+2? Assistant: ")


def test_prompts_are_verbatim_from_appendix_b1():
    paper = PAPER.read_text()
    for paragraph in TEACHER_PROMPT.split("\n\n"):
        assert paragraph in paper, paragraph
    first_line, second_line = STUDENT_PROMPT.split("\n")
    assert first_line in paper
    assert second_line + '"' in paper  # the paper's closing quote is typesetting, left out


def test_chat_template_applied_when_present():
    template = "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}"
    tok = _tokenizer(template)
    assert student_prompt("What is 2+2?", tok) == f"<|user|>{student_prompt_text('What is 2+2?')}<|end|><|assistant|>"
    assert teacher_prompt(tok) == f"<|user|>{TEACHER_PROMPT}<|end|><|assistant|>"


def test_raw_text_without_chat_template():
    tok = _tokenizer(None)
    assert render("hello", tok) == "hello"
    assert teacher_prompt(None) == TEACHER_PROMPT


def test_prompt_examples_go_before_begin_now_and_default_is_verbatim():
    from soar.data.prompts import EXAMPLES_HEADER, teacher_prompt_text

    assert teacher_prompt_text() == TEACHER_PROMPT == teacher_prompt_text([])
    example = "<question>What is 2 + 3?</question><answer>\\boxed{5}</answer>"
    text = teacher_prompt_text([example, example.replace("2", "4")])
    body = TEACHER_PROMPT[: TEACHER_PROMPT.rindex("Begin now:")]
    assert text.startswith(body) and text.endswith(f"{EXAMPLES_HEADER}\n\n{example}\n"
                                                   f"{example.replace('2', '4')}\n\nBegin now:")
