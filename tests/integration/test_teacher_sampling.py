"""Structured teacher sampling keeps the parsed text equal to the sampled token ids."""

import pytest

from soar.config import TeacherConfig
from soar.engines.generation import Completion
from soar.engines.tiny import default_tokenizer
from soar.errors import SoarError
from soar.loops.teacher import sample_teacher


class ScriptedTeacher:
    """Returns fixed spans in order, cut at the stop string in ``text`` as HFGenerator does (ids keep whole tokens)."""

    def __init__(self, tokenizer, spans):
        self.tokenizer, self.spans, self.calls = tokenizer, list(spans), 0

    def generate_tokens(self, prompt_ids, n, sampling):
        out = []
        for index, _ in enumerate(prompt_ids):
            ids = self.tokenizer(self.spans[self.calls], add_special_tokens=False)["input_ids"]
            text = self.tokenizer.decode(ids, skip_special_tokens=True)
            for stop in sampling.stop:
                cut = text.find(stop)
                text = text[:cut + len(stop)] if cut >= 0 else text
            out.append([Completion(index, text, ids, [0.0] * len(ids), "stop")])
        self.calls += 1
        return out


def test_nested_braces_split_inside_a_token_give_the_sampled_answer(verifier):
    tokenizer = default_tokenizer()
    assert "}}" in tokenizer.convert_ids_to_tokens(tokenizer("25}}", add_special_tokens=False)["input_ids"])
    spans = ["What is 1/25 in lowest terms?", "\\frac{1}{", "25}}"]  # the first "}" closes only the \frac part
    teacher = ScriptedTeacher(tokenizer, spans)
    cfg = TeacherConfig(sampling="structured", max_new_tokens=64, max_attempts_factor=1)
    sample = sample_teacher(teacher, tokenizer, cfg, 1, seed=0, parseable=verifier.parseable_many)
    (rollout,) = sample.rollouts
    assert rollout.pair.answer == "\\frac{1}{25}" and rollout.pair.question == "What is 1/25 in lowest terms?"
    text = tokenizer.decode(rollout.completion_ids)
    assert text == "<question>What is 1/25 in lowest terms?</question><answer>\\boxed{\\frac{1}{25}}</answer>"
    sampled = [t for t, m in zip(rollout.completion_ids, rollout.completion_mask) if m]
    assert tokenizer.decode(sampled) == "".join(spans)  # forced template tokens are masked out


@pytest.mark.parametrize("eos", ["<|im_end|>", "<|endoftext|>"])  # the tokenizer's EOS, and the model's other stop id
def test_an_end_of_sequence_closes_the_question_and_ends_the_answer(verifier, eos):
    tokenizer = default_tokenizer()
    eos_id = tokenizer.convert_tokens_to_ids(eos)
    cfg = TeacherConfig(sampling="structured", max_new_tokens=64, max_attempts_factor=1)
    # in the question span, an EOS is where the model ended its question: dropped, and </question> forced
    teacher = ScriptedTeacher(tokenizer, ["Find x if 2x = 6." + eos, "3}"])
    (rollout,) = sample_teacher(teacher, tokenizer, cfg, 1, seed=0, parseable=verifier.parseable_many).rollouts
    assert (rollout.pair.question, rollout.pair.answer) == ("Find x if 2x = 6.", "3")
    assert eos_id not in rollout.completion_ids  # nothing follows an end of sequence
    assert tokenizer.decode(rollout.completion_ids) == "<question>Find x if 2x = 6.</question><answer>\\boxed{3}</answer>"
    # in the answer span, an EOS before the box closes ends the draft: rejected
    spans = ["Find x?", "3" + eos] * 4
    with pytest.raises(SoarError, match=r"accepted 0 of 1 .*missing_answer_tags"):
        sample_teacher(ScriptedTeacher(tokenizer, spans), tokenizer, cfg, 1, seed=0, parseable=verifier.parseable_many)


@pytest.mark.parametrize("question, answer, reason", [("Name the answer?", "x}", "non_numeric_answer"),
                                                     ("What is 64  - 29?", "35}", "copied_example")])
def test_prompt_examples_reach_the_prompt_and_bad_pairs_are_rejected(verifier, question, answer, reason):
    """The testbed's levers in the loop's own sampler: examples in the prompt the rollouts are trained on; a
    symbol answer that Math-Verify parses is rejected as non-numeric, a copy of an example (spacing aside) as
    copied; the next round's new numeric pair is accepted."""
    from soar.data.prompts import teacher_prompt

    tokenizer = default_tokenizer()
    example = "<question>What is 64 - 29?</question><answer>\\boxed{35}</answer>"
    cfg = TeacherConfig(sampling="structured", max_new_tokens=64, max_attempts_factor=8, prompt_examples=[example],
                        answer_format="number")
    spans = [question, answer, "What is 12 + 30?", "42}"]  # per call: a round's question, then its answer
    sample = sample_teacher(ScriptedTeacher(tokenizer, spans), tokenizer, cfg, 1, seed=0,
                            parseable=verifier.parseable_many)
    (rollout,) = sample.rollouts
    assert (rollout.pair.question, rollout.pair.answer) == ("What is 12 + 30?", "42")
    assert sample.rejections == {reason: 4} and sample.attempts == 8  # a round draws 4 drafts
    prompt = tokenizer.decode(rollout.prompt_ids)
    assert example in prompt and prompt == teacher_prompt(tokenizer, [example])


class ScriptedSolver(ScriptedTeacher):
    """A ScriptedTeacher that also answers ``generate`` (string prompts) with ``replies[question]``."""

    def __init__(self, tokenizer, spans, replies):
        super().__init__(tokenizer, spans)
        self.replies, self.asked = replies, []

    def generate(self, prompts, n, sampling):
        self.asked.append((prompts, sampling))
        out = []
        for index, prompt in enumerate(prompts):
            (question,) = [q for q in self.replies if q in prompt]
            text = self.replies[question]
            out.append([Completion(index, text, self.tokenizer(text, add_special_tokens=False)["input_ids"])] * n)
        return out


def test_solver_answers_are_the_greedy_student_replies_forced_and_masked(verifier):
    from soar.data.prompts import student_prompt

    tokenizer = default_tokenizer()
    cfg = TeacherConfig(sampling="structured", answers="solver", solver_max_new_tokens=24, max_new_tokens=64,
                        max_attempts_factor=8, answer_format="number")
    replies = {"What is 6 + 7?": "6 + 7 = 13\nThe final answer is 13.", "Name a colour?": "Blue, of course."}
    spans = ["Name a colour?", "What is 6 + 7?"]  # round 1 (4 drafts): no number in the reply; round 2: 13
    solver = ScriptedSolver(tokenizer, spans, replies)
    sample = sample_teacher(solver, tokenizer, cfg, 1, seed=0, parseable=verifier.parseable_many)
    (rollout,) = sample.rollouts
    assert (rollout.pair.question, rollout.pair.answer) == ("What is 6 + 7?", "13")
    assert sample.rejections == {"missing_answer_tags": 4}
    prompts, sampling = solver.asked[-1]
    assert prompts == [student_prompt("What is 6 + 7?", tokenizer)] * 4
    assert sampling.greedy and sampling.max_new_tokens == 24
    assert tokenizer.decode(rollout.completion_ids) == "<question>What is 6 + 7?</question><answer>\\boxed{13}</answer>"
    sampled = [t for t, m in zip(rollout.completion_ids, rollout.completion_mask) if m]
    assert tokenizer.decode(sampled) == "What is 6 + 7?"  # only the question is the teacher's to learn


def test_a_question_prefix_is_forced_masked_and_part_of_the_question(verifier):
    """``teacher.question_prefix`` (CPU testbed): the question starts with the forced text, which the solver sees
    and the policy gradient does not."""
    tokenizer = default_tokenizer()
    cfg = TeacherConfig(sampling="structured", answers="solver", question_prefix="What is", max_new_tokens=64,
                        max_attempts_factor=1, answer_format="number")
    solver = ScriptedSolver(tokenizer, [" 6 + 7?"], {"What is 6 + 7?": "The final answer is 13."})
    (rollout,) = sample_teacher(solver, tokenizer, cfg, 1, seed=0, parseable=verifier.parseable_many).rollouts
    assert (rollout.pair.question, rollout.pair.answer) == ("What is 6 + 7?", "13")
    assert tokenizer.decode(rollout.completion_ids) == "<question>What is 6 + 7?</question><answer>\\boxed{13}</answer>"
    sampled = [t for t, m in zip(rollout.completion_ids, rollout.completion_mask) if m]
    assert tokenizer.decode(sampled) == " 6 + 7?"
