"""Math verification and the B.3 reward, on real Math-Verify in the real process pool."""

import time

import pytest

from soar.math.pool import KillablePool
from soar.math.verify import answers_match, math_reward

EQUIVALENT = [
    ("0.5", r"\frac{1}{2}"),
    (r"\frac12", "1/2"),
    ("1/4", "0.25"),
    (r"\dfrac{3}{4}", "0.75"),
    (r"2\sqrt{2}", r"\sqrt{8}"),
    (r"\left[1, 2\right)", "[1,2)"),
    (r"(-\infty, 3]", r"(-\infty,3]"),
    (r"\{2, 1\}", r"\{1,2\}"),
    ("(x+1)^2", "x^2+2x+1"),
    (r"\pi", r"\pi"),
    ("122", "122"),
    (r"10\%", "10"),
]
DIFFERENT = [
    ("3", "4"),
    ("0.5", r"\frac{1}{3}"),
    ("[1,2)", "[1,2]"),
    (r"\{1,2\}", r"\{1,3\}"),
    ("(x+1)^2", "x^2+1"),
    ("-5", "5"),
]


def test_equivalent_forms_match(verifier):
    assert verifier.answers_match_many(EQUIVALENT) == [True] * len(EQUIVALENT)


def test_different_answers_do_not_match(verifier):
    assert verifier.answers_match_many(DIFFERENT) == [False] * len(DIFFERENT)


def test_module_level_helpers():
    assert answers_match("0.5", r"\frac{1}{2}") is True
    assert answers_match("2", "3") is False
    assert math_reward(r"so \boxed{122}", "122") == 120.0


def test_four_paper_reward_levels(verifier):
    completions = [
        r"59 + 63 = 122. The final answer is: \boxed{122}",  # verified
        r"The final answer is: \boxed{1220}",  # wrong, but the gold string is in the boxed answer
        r"The final answer is: \boxed{7}",  # wrong
        "59 + 63 = 122.",  # no \boxed at all
    ]
    rewards = verifier.math_rewards(completions, ["122"] * 4)
    assert rewards == [120.0, 20.0, 10.0, 0.0]


def test_equivalent_boxed_form_gets_full_reward(verifier):
    assert verifier.math_rewards([r"\boxed{0.5}"], [r"\frac{1}{2}"]) == [120.0]
    # the last box is the answer
    assert verifier.math_rewards([r"\boxed{3} no wait \boxed{4}"], ["4"]) == [120.0]


def test_binary_and_free_text_variants(verifier):
    completions = [r"\boxed{122}", r"\boxed{1220}", "59 + 63 = 122.", "I think 120."]
    assert verifier.math_rewards(completions, ["122"] * 4, kind="binary") == [1.0, 0.0, 0.0, 0.0]
    free = verifier.math_rewards(completions, ["122"] * 4, require_boxed=False)
    assert free == [120.0, 20.0, 120.0, 0.0]
    free_binary = verifier.math_rewards(completions, ["122"] * 4, require_boxed=False, kind="binary")
    assert free_binary == [1.0, 0.0, 1.0, 0.0]


def test_bad_arguments(verifier):
    with pytest.raises(ValueError):
        verifier.math_rewards(["a"], ["1", "2"])
    with pytest.raises(ValueError):
        verifier.math_rewards(["a"], ["1"], kind="shaped")


ADVERSARIAL = [
    "$" + "9^" * 40 + "9$",  # exponent tower
    r"\boxed{" + "9^{" * 30 + "9" + "}" * 30 + "}",
    "{" * 5000 + "1" + "}" * 5000,  # deeply nested braces
    r"\boxed{" + "{" * 3000 + "}",  # unbalanced
    "}}}{{{" * 100,
    "1" * 1_000_000,  # 1 MB string
    r"\boxed{" + "x+" * 300_000 + "1}",  # 1 MB inside a box
    "π² ≈ 9.87, ∑ √ ∞ 答案是 ５",  # non-ASCII
    "\x00\x01\ufffd",
    r"\frac{\frac{\frac{\frac{1}{2}}{3}}{4}}",
]


def test_adversarial_inputs_return_within_timeout(verifier):
    started = time.monotonic()
    matches = verifier.answers_match_many([(text, "5") for text in ADVERSARIAL])
    rewards = verifier.math_rewards(ADVERSARIAL, ["5"] * len(ADVERSARIAL), require_boxed=False)
    parseable = verifier.parseable_many(ADVERSARIAL)
    elapsed = time.monotonic() - started
    assert len(matches) == len(rewards) == len(parseable) == len(ADVERSARIAL)
    assert not any(matches)
    assert all(r in (0.0, 10.0, 20.0) for r in rewards)
    # each call is bounded by the 10 s hard timeout; 2 workers share 30 calls
    assert elapsed < 10.0 * len(ADVERSARIAL) * 3 / 2 + 10
    # and the pool still works afterwards
    assert verifier.answers_match_many([("0.5", r"\frac{1}{2}")]) == [True]


def test_stuck_worker_is_killed_and_replaced():
    """A call that ignores signals and never returns is killed at the hard timeout."""
    with KillablePool("tests.integration.hanging_ops", workers=1, timeout_s=1.0) as pool:
        started = time.monotonic()
        results = pool.map("echo_or_hang", [("a",), ("hang",), ("b",), ("crash",), ("c",)])
        elapsed = time.monotonic() - started
        assert results == ["a", None, "b", None, "c"]
        assert pool.stats.timeouts == 1
        assert pool.stats.crashes == 1
        assert pool.stats.restarts == 2
        assert elapsed < 15


def test_workers_are_recycled():
    with KillablePool("tests.integration.hanging_ops", workers=1, timeout_s=5.0, max_calls_per_worker=2) as pool:
        assert pool.map("echo_or_hang", [(str(i),) for i in range(5)]) == [str(i) for i in range(5)]
        assert pool.stats.restarts == 2


def test_numeric_answers_refuse_an_expression_that_evaluates_to_the_gold_number(verifier):
    """Math-Verify judges ``63 \\times 237`` equal to 14931: restating a computation question is "correct" under
    B.3 as written; ``numeric`` (reward.numeric_answers) asks for the number itself."""
    replies = ["So \\boxed{63 \\times 237}", "The answer is 63 * 237", "So \\boxed{14931}", "It is 14931.",
               "So \\boxed{14,931}"]
    golds = ["14931"] * len(replies)
    assert verifier.math_rewards(replies, golds, require_boxed=False) == [120.0, 120.0, 120.0, 120.0, 120.0]
    strict = verifier.math_rewards(replies, golds, require_boxed=False, numeric=True)
    assert strict == [10.0, 0.0, 120.0, 120.0, 120.0]  # a boxed expression is a wrong boxed answer
    # answers that are numbers in another form still match; non-numeric golds are judged as before
    assert verifier.math_rewards(["\\boxed{0.5}", "\\boxed{\\frac{1}{2}}", "\\boxed{x+1}"], ["\\frac{1}{2}", "0.5", "1+x"],
                                 numeric=True) == [120.0, 120.0, 120.0]


def test_integer_fast_path_agrees_with_math_verify():
    """The in-process integer comparison gives Math-Verify's verdict (``op_reward``, what the pool runs) on plain
    integers: equal, different, negative, leading zeros, one containing the other, both reward kinds."""
    import random

    from soar.math.verify import integer_reward, op_reward

    rng = random.Random(0)
    pairs = [("7", "007"), ("-5", "5"), ("12", "123"), ("0", "-0"), ("10", "10"), ("3", " 3 ")]
    for _ in range(400):
        gold = str(rng.choice([rng.randint(0, 200), rng.randint(-50, 50)]))
        boxed = rng.choice([gold, str(int(gold) + rng.randint(-3, 3)), gold + str(rng.randint(0, 9)), "0" + gold.lstrip("-")])
        pairs.append((gold, boxed))
    checked = 0
    for gold, boxed in pairs:
        completion = f"so the answer is \\boxed{{{boxed}}}"
        for kind in ("paper", "binary"):
            fast = integer_reward(completion, gold, kind)
            assert fast is not None, (gold, boxed)
            assert fast == op_reward(completion, gold, True, kind), (gold, boxed, kind)
            checked += 1
    assert checked == 2 * len(pairs)
    assert integer_reward("\\boxed{1/2}", "0.5", "paper") is None  # anything else goes to the pool
    assert integer_reward("no box", "5", "paper") is None
