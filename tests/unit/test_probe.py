"""Reward controls (``soar probe``): the pure parts, datasets, statistics and the separation rule."""

import math
import random

import pytest

from soar.config import load_config
from soar.errors import ConfigError
from soar.loops.probe import control_datasets, control_table, mean_se, render_table, stepping_stones, wrong_answer
from soar.types import Problem


def _hard(count):
    return [Problem(f"What is {i} + {i}?", str(2 * i), f"h{i}") for i in range(count)]


def test_mean_and_standard_error():
    assert mean_se([0.5]) == (0.5, 0.0)
    mean, se = mean_se([0.0, 0.25, 0.5, 0.25])
    assert mean == 0.25
    assert se == pytest.approx(math.sqrt(sum((v - 0.25) ** 2 for v in [0, 0.25, 0.5, 0.25]) / 3 / 4))
    with pytest.raises(ValueError):
        mean_se([])


def test_separation_needs_more_than_two_standard_errors_of_the_difference():
    rows = {row.kind: row for row in control_table({
        "oracle": [0.3, 0.4, 0.35, 0.45], "junk": [0.0, 0.05, -0.05, 0.0], "teacher": [0.0, 0.1, 0.0, 0.05],
        "stepping": [0.0, 0.0, 0.0, 0.0]})}
    assert [r for r in rows] == ["oracle", "stepping", "junk", "teacher"]  # report order
    assert rows["junk"].delta is None and rows["junk"].separates is None
    oracle, junk = rows["oracle"], rows["junk"]
    spread = math.sqrt(oracle.se ** 2 + junk.se ** 2)
    assert oracle.delta == pytest.approx(0.375) and oracle.z == pytest.approx(0.375 / spread)
    assert oracle.separates and not rows["teacher"].separates and not rows["stepping"].separates
    # a difference of exactly two standard errors does not separate; zero spread separates on any gain
    exact = control_table({"oracle": [1.0, 3.0], "junk": [0.0, 0.0]})[0]
    assert exact.z == pytest.approx(2.0) and not exact.separates
    flat = control_table({"oracle": [0.1, 0.1], "junk": [0.0, 0.0]})[0]
    assert flat.z == math.inf and flat.separates
    assert "separates" in render_table(list(rows.values()), 0.0)
    assert control_table({"oracle": [0.1]})[0].separates is None  # nothing to compare with


def test_wrong_answers_are_wrong():
    rng = random.Random(0)
    others = [Problem("q", "x + 1"), Problem("r", "\\pi")]
    for _ in range(200):
        moved = wrong_answer(Problem("q", "1398"), others, rng)
        assert moved != "1398" and 1 <= abs(int(moved) - 1398) <= 9
    assert wrong_answer(Problem("q", "x + 1"), others, rng) == "\\pi"
    assert wrong_answer(Problem("q", "y"), [Problem("q", "y")], rng) == "y + 1"


def test_control_datasets_are_disjoint_from_the_reward_questions():
    hard = _hard(20)
    reward_ids = {f"h{i}" for i in range(8)}
    easy = [Problem(f"What is {i} + 1?", str(i + 1), f"e{i}") for i in range(10)]
    out = control_datasets(hard, reward_ids, easy, n=4, count=3, seed=1)
    assert set(out) == {"oracle", "junk", "stepping"}
    oracle_ids = [p.id for d in out["oracle"] for p in d]
    assert len(oracle_ids) == 12 and len(set(oracle_ids)) == 12 and not set(oracle_ids) & reward_ids
    for oracle, junk in zip(out["oracle"], out["junk"]):  # junk: the oracle's questions, every answer wrong
        assert [p.question for p in oracle] == [p.question for p in junk]
        assert all(j.answer != o.answer for o, j in zip(oracle, junk))
    assert all(p.id.startswith("e") for d in out["stepping"] for p in d)
    assert control_datasets(hard, reward_ids, easy, 4, 3, seed=1) == out  # seeded
    assert "stepping" not in control_datasets(hard, reward_ids, [], 4, 1, seed=1)
    wrapped = control_datasets(hard, reward_ids, [], n=8, count=3, seed=1)  # 12 outside Q_R: draws wrap around
    assert all(len(d) == 8 for d in wrapped["oracle"])
    with pytest.raises(ConfigError, match="fewer than inner.dataset_size"):
        control_datasets(hard, reward_ids, [], n=13, count=1, seed=1)


def test_stepping_stones_are_the_easier_arithmetic_tiers():
    tiny = load_config("tiny")  # hard tiers add3, sub3, mul2x2, mul2x3
    easy = stepping_stones(tiny, 10)
    assert {p.metadata["tier"] for p in easy} == {"add2", "mul1x2"} and len(easy) >= 10
    hard_questions = {p.question for p in stepping_stones(tiny, 10)}
    assert hard_questions == {p.question for p in easy}  # seeded
    assert stepping_stones(load_config("tiny", overrides={"data.source": "champ"}), 10) == []


def test_arithmetic_statements_are_checked_without_evaluating_text():
    from soar.data.arithmetic import arithmetic_answer
    from soar.loops.probe import arithmetic_check

    assert arithmetic_answer("What is 47 + 8?") == 55 and arithmetic_answer("What is 6 \\times 7?") == 42
    assert arithmetic_answer("What is 36 - 9?") == 27 and arithmetic_answer("what is 2 x 3 ?") == 6
    for other in ("Is 36 + 11 = ?", "What is 2 + 3 + 4?", "What is __import__('os').getcwd()?", ""):
        assert arithmetic_answer(other) is None, other
    pairs = [Problem("What is 2 \\times 3?", "3"), Problem("What is 42 + 3?", "45"), Problem("What is 1,000 + 1?", "x"),
             Problem("What is 999 + 2?", "1,001"), Problem("A coin is flipped?", "51")]
    assert arithmetic_check(pairs) == (3, 2)  # "1,000" is not a statement of this format; "1,001" reads as 1001
    # the designed world's additions (digits least-significant first): the junk kind's one wrong digit is caught
    world = [Problem("34000000+21000000", "550000000"), Problem("34000000+21000000", "550000001"),
             Problem("What is 2 + 2?", "4")]
    assert arithmetic_check(world, world=True) == (2, 1)


@pytest.mark.timeout(20)
def test_world_kind_datasets_are_fresh_true_and_skip_the_hard_set():
    from soar.loops.probe import world_datasets
    from soar.world.family import generate_problems, kind_of, solve

    hard = {p.question for p in generate_problems(["add-c1"], 5, seed=0)}
    out = world_datasets(["add-c1", "add-c3"], hard, n=16, count=4, seed=0)
    for kind, datasets in out.items():
        assert len(datasets) == 4 and all(len(d) == 16 for d in datasets)
        questions = [p.question for d in datasets for p in d]
        assert all(kind_of(q) == kind for q in questions) and not hard & set(questions)
        assert len(set(questions)) == 64 and all(solve(p.question) == p.answer for d in datasets for p in d)
