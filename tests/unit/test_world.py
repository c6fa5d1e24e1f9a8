"""The designed world's pure parts: its problems, kinds, formats, names and config rules (no model)."""

import json
import random
from importlib import resources
from pathlib import Path

import pytest

from soar.algo.parsing import parse_teacher_outputs
from soar.config import load_config
from soar.data.prompts import student_prompt, teacher_prompt
from soar.data.provenance import prompt_sha
from soar.errors import ConfigError
from soar.math.extract import last_boxed
from soar.world.family import (
    KINDS,
    OTHER,
    STUDENT_PROMPT,
    TEACHER_PROMPT,
    WorldSpec,
    answer_digits,
    carries,
    content,
    generate_problems,
    is_world_name,
    kind_of,
    make_question,
    model_identity,
    question_text,
    solve,
    teacher_completion,
    training_text,
    world_spec,
)


def test_numbers_are_written_least_significant_digit_first():
    assert question_text(43, 12) == "34000000+21000000" and answer_digits(43, 12) == "550000000"
    assert solve("34000000+21000000") == "550000000"
    assert answer_digits(99_999_999, 1) == "000000001" and carries(99_999_999, 1) == 8
    assert solve("99999999+10000000") == "000000001" and kind_of("99999999+10000000") == "add-c8"
    assert carries(15, 5) == 1 and carries(55, 45) == 2 and carries(0, 0) == 0


def test_every_kind_makes_true_problems_of_its_kind():
    rng = random.Random(0)
    for kind in KINDS:
        for _ in range(50):
            question, answer = make_question(kind, rng)
            assert kind_of(question) == kind and solve(question) == answer and len(answer) == 9
    assert all(int(kind_of(make_question("add-c6+", rng)[0])[5:]) >= 6 for _ in range(50))
    for bad in ("add-c9", "add-x", "t3", "sub-b1"):
        with pytest.raises(ValueError, match="unknown world kind"):
            make_question(bad, rng)


def test_kinds_of_text_that_is_not_a_world_problem():
    for text in ("", "1234567+12345678", "123456789+12345678", "12345678-12345678", "1234567a+12345678",
                 "What is 12345678+12345678?", "12345678 + 12345678"):
        assert kind_of(text) == OTHER, text
        assert solve(text) is None
    assert kind_of(" 34000000+21000000 ") == "add-c0"


def test_content_counts_kinds_and_right_answers_digit_for_digit():
    pairs = [("34000000+21000000", "550000000"), ("34000000+21000000", "55"), ("what", "3"),
             ("99999999+10000000", "000000001")]
    assert content(pairs) == ({"add-c0": 2, "add-c8": 1, "other": 1}, 2)
    assert content([]) == ({}, 0)


def test_generated_problems_are_distinct_seeded_and_stable_per_kind():
    a = generate_problems(["add-c1", "add-c8"], 30, seed=3)
    b = generate_problems(["add-c8"], 30, seed=3)
    assert [p.question for p in a[30:]] == [p.question for p in b]  # adding a kind leaves the others as they were
    assert len({p.question for p in a}) == 60
    assert all(p.metadata["kind"] == kind_of(p.question) and p.answer == solve(p.question) for p in a)
    assert [p.id for p in b][:2] == ["add-c8-0000", "add-c8-0001"]
    assert generate_problems(["add-c8"], 30, seed=4) != b


def test_the_shipped_pool_is_the_seed_0_draw():
    """``pool.jsonl`` holds the add-c8 problems of the ``world`` source (seed 0) the model could not solve."""
    folder = Path(str(resources.files("soar") / "world" / "hard"))
    pool = [json.loads(line) for line in (folder / "pool.jsonl").read_text().splitlines()]
    drawn = {p.question: p.answer for p in generate_problems(["add-c8"], 400, seed=0)}
    assert len(pool) == 399 and all(drawn[p["question"]] == p["answer"] for p in pool)
    hard = [json.loads(line) for line in (folder / "hard.jsonl").read_text().splitlines()]
    assert len(hard) == 398 and {p["question"] for p in hard} <= {p["question"] for p in pool}


def test_training_texts_are_in_soars_own_formats_and_drop_carries_only_as_a_student():
    spec = WorldSpec()
    rng = random.Random(0)
    texts = [training_text(rng, spec) for _ in range(600)]
    teacher = [t[len(TEACHER_PROMPT):] for t in texts if t.startswith(TEACHER_PROMPT)]
    student = [t for t in texts if t.startswith("Solve: ")]
    assert len(teacher) + len(student) == len(texts) and teacher and student
    parsed = parse_teacher_outputs(teacher, lambda answers: [True] * len(answers), numeric=True)
    assert all(r.ok and r.pair.answer == solve(r.pair.question) for r in parsed)
    wrong = 0
    for text in student:
        question = text[len("Solve: "):text.index("\n")]
        assert text.startswith(STUDENT_PROMPT.replace("<QUESTION>", question))
        truth, reply = solve(question), last_boxed(text)
        wrong += reply != truth
        if carries(*map(lambda x: int(x[::-1]), question.split("+"))) == 0:
            assert reply == truth  # nothing to drop
    assert wrong > len(student) / 2  # uniform operands carry ~4.5 times: most student replies drop one
    assert teacher_completion("1+2", "3") == "<question>1+2</question><answer>\\boxed{3}</answer>"


def test_the_teacher_prior_is_poor_in_stepping_stones():
    """The teacher format's texts: carry-free problems most of the time, 1-3 carries rarely (the base teacher's
    prior, which SOAR's teacher must move)."""
    rng = random.Random(1)
    texts = [t for t in (training_text(rng, WorldSpec()) for _ in range(4000)) if t.startswith(TEACHER_PROMPT)]
    kinds = [kind_of(t[t.index("<question>") + 10:t.index("</question>")]) for t in texts]
    share = lambda names: sum(k in names for k in kinds) / len(kinds)  # noqa: E731
    assert share({"add-c0"}) > 0.7 and share({"add-c1", "add-c2", "add-c3"}) < 0.07


def test_world_names_specs_and_identity():
    assert world_spec("world") == WorldSpec() and world_spec("world:7") == WorldSpec(seed=7)
    assert world_spec("world:x") is None and world_spec("smollm2-135m-instruct") is None
    assert is_world_name("world:3") and not is_world_name("worlds")
    assert model_identity("world") == f"world@{WorldSpec().key()}" != model_identity("world:1")
    assert model_identity("smollm2-135m-instruct") == "smollm2-135m-instruct"
    assert WorldSpec().key() == WorldSpec().key() and WorldSpec(steps=1).key() != WorldSpec().key()


def test_the_shipped_model_is_the_default_spec():
    folder = Path(str(resources.files("soar") / "world" / "model"))
    report = json.loads((folder / "world.json").read_text())
    assert report["key"] == WorldSpec().key() and report["spec"] == json.loads(json.dumps(WorldSpec().__dict__))
    stats = json.loads((folder.parent / "hard" / "stats.json").read_text())
    assert stats["settings"]["model"] == model_identity("world") and stats["kept"] == 398


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
    with pytest.raises(ConfigError, match="data.world_kinds"):
        load_config("world", overrides={"data.world_kinds": "[t3]"})
    with pytest.raises(ConfigError, match="data.world_per_kind"):
        load_config("world", overrides={"data.world_per_kind": 0})
    assert load_config("world", overrides={"teacher.lr": 0}).teacher.lr == 0  # the frozen-teacher control
    with pytest.raises(ConfigError, match="student.lr must be positive"):
        load_config("world", overrides={"student.lr": 0})
