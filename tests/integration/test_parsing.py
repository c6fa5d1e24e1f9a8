"""Teacher-output parsing (Appendix B.2), with the real Math-Verify parse check."""

import pytest

from soar.algo.parsing import Rejection, parse_teacher_output, parse_teacher_outputs, rejection_counts
from soar.types import QAPair


@pytest.fixture
def parseable(verifier):
    return verifier.parseable_many


def test_well_formed(parseable):
    text = "Here is one.\n<question>What is 2 + 3?</question><answer>\\boxed{5}</answer>\nDone."
    assert parse_teacher_output(text, parseable) == QAPair("What is 2 + 3?", "5")


def test_papers_typo_closing_tag(parseable):
    text = "<question>How many primes are below 10?<question><answer>\\boxed{4}</answer>"
    assert parse_teacher_output(text, parseable) == QAPair("How many primes are below 10?", "4")


def test_nested_braces_in_boxed(parseable):
    text = "<question>Half of one?</question><answer>It is \\boxed{\\frac{1}{2}}</answer>"
    assert parse_teacher_output(text, parseable) == QAPair("Half of one?", "\\frac{1}{2}")


def test_text_outside_tags_ignored_and_multiline(parseable):
    text = "Reasoning: x=3 so \\boxed{99}.\n<question>\nFind x if\n2x = 6.\n</question>\n<answer>\\boxed{3}</answer> trailing \\boxed{7}"
    assert parse_teacher_output(text, parseable) == QAPair("Find x if\n2x = 6.", "3")


def test_several_problems_takes_the_first(parseable):
    text = (
        "<question>Q one?</question><answer>\\boxed{1}</answer>"
        "<question>Q two?</question><answer>\\boxed{2}</answer>"
    )
    assert parse_teacher_output(text, parseable) == QAPair("Q one?", "1")


@pytest.mark.parametrize(
    "text, reason",
    [
        ("What is 2+2? \\boxed{4}", Rejection.MISSING_QUESTION_TAGS),
        ("<question>What is 2+2?<answer>\\boxed{4}</answer>", Rejection.MISSING_QUESTION_TAGS),
        ("<question>What is 2+2?</question> \\boxed{4}", Rejection.MISSING_ANSWER_TAGS),
        ("<question>What is 2+2?</question><answer>\\boxed{4}", Rejection.MISSING_ANSWER_TAGS),
        ("<answer>\\boxed{4}</answer><question>What is 2+2?</question>", Rejection.MISSING_ANSWER_TAGS),
        ("<question>What is 2+2?</question><answer>4</answer>", Rejection.MISSING_BOXED),
        ("<question>What is 2+2?</question><answer>\\boxed{}</answer>", Rejection.MISSING_BOXED),
        ("<question>What?</question><answer>\\boxed{\\frac{1}{2}</answer>", Rejection.MISSING_BOXED),
        ("<question>   </question><answer>\\boxed{4}</answer>", Rejection.EMPTY_QUESTION),
        ("<question>Name it.</question><answer>\\boxed{}}{{}</answer>", Rejection.MISSING_BOXED),
        ("<question>Name it.</question><answer>\\boxed{\\frac{}{}}</answer>", Rejection.UNPARSEABLE_ANSWER),
        ("<question>Name it.</question><answer>\\boxed{=}</answer>", Rejection.UNPARSEABLE_ANSWER),
    ],
)
def test_rejections_with_reasons(text, reason, parseable):
    [result] = parse_teacher_outputs([text], parseable)
    assert result.pair is None and not result.ok
    assert result.rejection == reason
    assert parse_teacher_output(text, parseable) is None


def test_batch_counts_reasons(parseable):
    texts = [
        "<question>A?</question><answer>\\boxed{1}</answer>",
        "nothing",
        "also nothing",
        "<question>B?</question><answer>no box</answer>",
        "<question>C?</question><answer>\\boxed{\\frac{}{}}</answer>",
    ]
    results = parse_teacher_outputs(texts, parseable)
    assert [r.ok for r in results] == [True, False, False, False, False]
    assert rejection_counts(results) == {
        "missing_question_tags": 2,
        "missing_boxed": 1,
        "unparseable_answer": 1,
    }


def test_default_parse_check_uses_the_shared_pool():
    assert parse_teacher_output("<question>A?</question><answer>\\boxed{0.5}</answer>") == QAPair("A?", "0.5")


def test_answer_is_never_borrowed_from_a_later_problem(parseable):
    text = "<question>Q one?</question> no answer here <question>Q two?</question><answer>\\boxed{2}</answer>"
    [result] = parse_teacher_outputs([text], parseable)
    assert result.rejection == Rejection.MISSING_ANSWER_TAGS
    [result] = parse_teacher_outputs(["<question> </question>"], parseable)
    assert result.rejection == Rejection.EMPTY_QUESTION


@pytest.mark.parametrize("text, ok", [("12", True), ("-3", True), ("+7", True), ("1,398", True), ("2.5", True),
                                      (".5", True), ("3/4", True), ("\\frac{3}{4}", True), ("-\\dfrac{1}{2}", True),
                                      ("$42$", True), (" 8 ", True), ("[answer]", False), ("Question 1", False),
                                      ("x + 1", False), ("1,39", False), ("2^3", False), ("", False), ("\\pi", False)])
def test_is_number(text, ok):
    from soar.algo.parsing import is_number

    assert is_number(text) is ok


def test_numeric_answer_format_rejects_symbols_math_verify_accepts(parseable):
    texts = ["<question>Name it?</question><answer>\\boxed{[answer]}</answer>",
             "<question>What is 2 + 3?</question><answer>\\boxed{5}</answer>",
             "<question>Which one?</question><answer>\\boxed{Question 1}</answer>",
             "<question>No box?</question><answer>five</answer>"]
    lenient = parse_teacher_outputs(texts, parseable)
    assert [r.ok for r in lenient] == [True, True, True, False]  # B.2's rule: Math-Verify parses the symbols
    strict = parse_teacher_outputs(texts, parseable, numeric=True)
    assert [r.rejection for r in strict] == [Rejection.NON_NUMERIC_ANSWER, None, Rejection.NON_NUMERIC_ANSWER,
                                             Rejection.MISSING_BOXED]
    assert rejection_counts(strict) == {"non_numeric_answer": 2, "missing_boxed": 1}


def test_a_question_copied_from_the_prompt_examples_is_rejected(parseable):
    example = "<question>What is 64 - 29?</question><answer>\\boxed{35}</answer>"
    texts = ["<question>What is 64 -  29?</question><answer>\\boxed{35}</answer>",  # the example, spacing aside
             "<question>What is 64 - 28?</question><answer>\\boxed{36}</answer>"]
    results = parse_teacher_outputs(texts, parseable, examples=[example])
    assert [r.rejection for r in results] == [Rejection.COPIED_EXAMPLE, None]
    assert all(r.ok for r in parse_teacher_outputs(texts, parseable))  # no examples: nothing to copy
