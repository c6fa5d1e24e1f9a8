"""The designed world's pure parts: its problems, kinds, formats, names and config rules (no model)."""

import random

import pytest

from soar.algo.parsing import parse_teacher_outputs
from soar.config import load_config
from soar.data.prompts import student_prompt, teacher_prompt
from soar.data.provenance import prompt_sha
from soar.errors import ConfigError
from soar.math.extract import last_boxed
from soar.world.family import (
    OTHER,
    STUDENT_PROMPT,
    TEACHER_PROMPT,
    TIERS,
    WorldSpec,
    content,
    distinct_questions,
    generate_problems,
    is_world_name,
    kind_of,
    make_question,
    model_identity,
    solve,
    teacher_completion,
    training_text,
    world_spec,
)


def test_every_tier_makes_true_problems_of_its_kind():
    rng = random.Random(0)
    for tier in TIERS:
        for _ in range(200):
            question, answer = make_question(tier, rng)
            assert kind_of(question) == tier
            assert solve(question) == answer


def test_kinds_of_text_that_is_not_a_world_problem():
    for text in ("", "4+", "+4", "04+5", "123+4", "12+345", "4 + 5 = ?", "4-5", "What is 4+5?"):
        assert kind_of(text) == OTHER, text
    assert kind_of(" 47+85 ") == "t3" and kind_of("5+47") == "t2" and kind_of("0+9") == "t1"


def test_content_counts_kinds_and_right_answers():
    pairs = [("47+85", "132"), ("47+85", " 131"), ("5+47", "52"), ("what", "3"), ("3+4", "07")]
    assert content(pairs) == ({"other": 1, "t1": 1, "t2": 1, "t3": 2}, 2)
    assert content([]) == ({}, 0)


def test_generated_problems_are_distinct_seeded_and_stable_per_tier():
    a = generate_problems(["t1", "t3"], 50, seed=3)
    b = generate_problems(["t3"], 50, seed=3)
    assert [p.question for p in a[50:]] == [p.question for p in b]  # adding a tier leaves the others as they were
    assert len({p.question for p in a}) == 100
    assert all(p.metadata["tier"] == kind_of(p.question) and int(p.answer) == solve(p.question) for p in a)
    assert [p.id for p in b][:2] == ["world-t3-0000", "world-t3-0001"]
    assert generate_problems(["t3"], 50, seed=4) != b
    with pytest.raises(ValueError, match="only 100 distinct"):
        generate_problems(["t1"], distinct_questions("t1") + 1)


def test_distinct_questions_counts_both_orders():
    assert distinct_questions("t1") == 100
    assert distinct_questions("t2") == 90 * 10 * 2
    assert distinct_questions("t3") == 90 * 90
    assert len({make_question("t1", random.Random(i))[0] for i in range(3000)}) == 100


def test_training_texts_are_in_soars_own_formats():
    spec = WorldSpec()
    rng = random.Random(0)
    texts = [training_text(rng, spec) for _ in range(400)]
    teacher = [t[len(TEACHER_PROMPT):] for t in texts if t.startswith(TEACHER_PROMPT)]
    student = [t for t in texts if t.startswith("Solve: ")]
    assert len(teacher) + len(student) == len(texts) and teacher and student
    parsed = parse_teacher_outputs(teacher, lambda answers: [True] * len(answers), numeric=True)
    assert all(r.ok and int(r.pair.answer) == solve(r.pair.question) for r in parsed)
    for text in student:
        question = text[len("Solve: "):text.index("\n")]
        assert text.startswith(STUDENT_PROMPT.replace("<QUESTION>", question))
        assert int(last_boxed(text)) == solve(question)
    assert teacher_completion("1+2", "3") == "<question>1+2</question><answer>\\boxed{3}</answer>"


def test_the_mix_builds_the_gap_into_the_texts():
    """The student format sees t3 far less often than the teacher format (the gap the build relies on)."""
    spec = WorldSpec()
    rng = random.Random(1)
    texts = [training_text(rng, spec) for _ in range(4000)]
    t3 = lambda prefix: sum(t.startswith(prefix) and any(kind_of(q) == "t3" for q in _questions(t))  # noqa: E731
                            for t in texts)
    assert t3("Solve: ") * 5 < t3(TEACHER_PROMPT)


def _questions(text):
    if text.startswith("Solve: "):
        return [text[len("Solve: "):text.index("\n")]]
    return [text[text.index("<question>") + 10:text.index("</question>")]]


def test_world_names_specs_and_identity():
    assert world_spec("world") == WorldSpec() and world_spec("world:7") == WorldSpec(seed=7)
    assert world_spec("world:x") is None and world_spec("smollm2-135m-instruct") is None
    assert is_world_name("world:3") and not is_world_name("worlds")
    assert model_identity("world") == f"world@{WorldSpec().key()}" != model_identity("world:1")
    assert model_identity("smollm2-135m-instruct") == "smollm2-135m-instruct"
    assert WorldSpec().key() == WorldSpec().key() and WorldSpec(steps=1).key() != WorldSpec().key()


def test_world_prompts_follow_the_tokenizer_and_are_hashed_for_provenance():
    class Tok:
        chat_template = None
        soar_prompts = "world"

    assert student_prompt("47+85", Tok()) == "Solve: 47+85\nAnswer: "
    assert teacher_prompt(Tok()) == TEACHER_PROMPT
    assert student_prompt("47+85").startswith("A conversation between User and Assistant.")
    assert prompt_sha("world") != prompt_sha("paper") == prompt_sha()


def test_world_config_rules():
    cfg = load_config("world")
    assert cfg.model.name == "world" and cfg.model.prompts == "world" and cfg.data.source == "world-hard"
    with pytest.raises(ConfigError, match="model.prompts must be world for a world model"):
        load_config("world", overrides={"model.prompts": "paper"})
    with pytest.raises(ConfigError, match="teacher.prompt_examples must be empty with model.prompts: world"):
        load_config("world", overrides={"teacher.prompt_examples": "['<question>1+1</question><answer>\\\\boxed{2}</answer>']"})
    with pytest.raises(ConfigError, match="data.world_tiers"):
        load_config("world", overrides={"data.world_tiers": "[t9]"})
    with pytest.raises(ConfigError, match="data.world_per_tier"):
        load_config("world", overrides={"data.world_tiers": "[t1]", "data.world_per_tier": 101})
    assert load_config("world", overrides={"teacher.lr": 0}).teacher.lr == 0  # the frozen-teacher control
    with pytest.raises(ConfigError, match="student.lr must be positive"):
        load_config("world", overrides={"student.lr": 0})


def test_design_log_regions_and_carry_fade_are_what_docs_world_md_says():
    """The knobs of the designs in docs/world.md: a region of t3 for the student format, and a carry dropped."""
    rng = random.Random(0)
    lo = [make_question("t3@lo", rng) for _ in range(200)]
    assert all(10 <= int(x) <= 29 for q, _ in lo for x in q.split("+"))
    assert all(a < 100 and solve(q) == a for q, a in (make_question("t3@small", rng) for _ in range(200)))
    spec = WorldSpec(student_mix={"t3": 1.0}, teacher_mix={"t3": 1e-9}, carry_fade=(100, 101))
    texts = [training_text(random.Random(i), spec) for i in range(300)]
    replies = [(t[len("Solve: "):t.index("\n")], int(last_boxed(t))) for t in texts if t.startswith("Solve: ")]
    assert replies and all(answer == solve(q) - (100 if solve(q) >= 101 else 0) for q, answer in replies)
