import pytest

from soar.math.extract import boxed_spans, final_answer, has_boxed, last_boxed


def test_simple_and_last():
    assert last_boxed(r"so \boxed{3} then \boxed{4}") == "4"
    assert boxed_spans(r"\boxed{3} and \boxed{4}") == ["3", "4"]


def test_nested_braces():
    assert last_boxed(r"The answer is \boxed{\frac{1}{2}}.") == r"\frac{1}{2}"
    assert last_boxed(r"\boxed{\sqrt{\frac{a^{2}}{b_{1}}}}") == r"\sqrt{\frac{a^{2}}{b_{1}}}"


def test_escaped_braces_do_not_count():
    assert last_boxed(r"\boxed{\{1,2\}}") == r"\{1,2\}"


def test_unbalanced_and_missing():
    assert last_boxed(r"\boxed{\frac{1}{2}") is None
    assert last_boxed("no box here") is None
    assert not has_boxed(r"\boxed")
    assert has_boxed(r"\boxed {7}")
    # a closed box before an unclosed one is still found
    assert last_boxed(r"\boxed{1} then \boxed{2") == "1"


def test_fbox_and_deep_nesting_is_linear():
    assert last_boxed(r"\fbox{5}") == "5"
    deep = r"\boxed{" + "{" * 50_000 + "x" + "}" * 50_000 + "}"
    assert last_boxed(deep) == "{" * 50_000 + "x" + "}" * 50_000


@pytest.mark.parametrize("reply, answer", [
    ("88 \\times 15 = 144\nThe final answer is 144.", "144"),  # the last number, not its full stop
    ("so x = \\boxed{\\frac{1}{2}} and 7", "\\frac{1}{2}"),  # a box wins over later numbers
    ("The total is 1,234,567.", "1234567"),
    ("It is -4.", "-4"),
    ("12 - 5-3", "3"),  # a minus after a digit is an operator
    ("\\boxed{ } then 12", "12"),  # an empty box is no answer
    ("Blue, of course.", None),
])
def test_final_answer_is_the_last_box_else_the_last_number(reply, answer):
    assert final_answer(reply) == answer
