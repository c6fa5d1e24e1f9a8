"""Greedy accuracy and sampled counts: real Math-Verify on known replies, and on a real (tiny) model."""

from soar.engines.evaluation import Reward, greedy_accuracy, sampled_correct
from soar.engines.generation import Completion, HFGenerator, SamplingParams
from soar.engines.tiny import default_tokenizer, tiny_model
from soar.math.passk import mean_pass_at_k
from soar.types import Problem


class ScriptedStudent:
    """A Generator whose replies are fixed per question: checks the bookkeeping, not a model."""

    def __init__(self, replies: dict[str, list[str]]) -> None:
        self.replies = replies
        self.calls: list[tuple[int, SamplingParams]] = []

    def generate(self, prompts, n, sampling):
        self.calls.append((n, sampling))
        out = []
        for index, prompt in enumerate(prompts):
            question = next(q for q in self.replies if q in prompt)
            out.append([Completion(index, text, [], []) for text in self.replies[question][:n]])
        return out


PROBLEMS = [Problem("Add 2 and 2.", "4"), Problem("Halve one.", "\\frac{1}{2}"), Problem("Seven squared?", "49")]


def test_greedy_accuracy_counts_full_marks_only(verifier):
    student = ScriptedStudent({
        "Add 2 and 2.": ["so \\boxed{4}"],
        "Halve one.": ["it is \\boxed{0.5}"],          # equivalent form: correct
        "Seven squared?": ["49"],                        # right but not boxed: 0 under the paper's reward
    })
    scored = greedy_accuracy(student, None, PROBLEMS, Reward(verifier), max_new_tokens=32)
    assert scored.correct == [1, 1, 0] and abs(scored.accuracy - 2 / 3) < 1e-9
    assert student.calls[0][0] == 1 and student.calls[0][1].greedy and student.calls[0][1].max_new_tokens == 32
    lenient = greedy_accuracy(student, None, PROBLEMS, Reward(verifier, require_boxed=False, kind="binary"),
                              max_new_tokens=32)
    assert lenient.correct == [1, 1, 1]


def test_sampled_correct_feeds_pass_at_k(verifier):
    student = ScriptedStudent({
        "Add 2 and 2.": ["\\boxed{4}", "\\boxed{5}", "\\boxed{4}", "no idea"],
        "Halve one.": ["\\boxed{2}"] * 4,
        "Seven squared?": ["\\boxed{49}"] * 4,
    })
    scored = sampled_correct(student, None, PROBLEMS, Reward(verifier), n=4, sampling=SamplingParams(seed=0))
    assert scored.correct == [2, 0, 4] and scored.accuracy == 0.5
    assert mean_pass_at_k(scored.correct, n=4, ks=[1])[1] == 0.5


def test_greedy_accuracy_on_a_real_model_scores_its_own_replies(verifier):
    tokenizer = default_tokenizer()
    generator = HFGenerator(tiny_model(tokenizer, seed=7), tokenizer)
    scored = greedy_accuracy(generator, tokenizer, PROBLEMS, Reward(verifier), max_new_tokens=8)
    again = greedy_accuracy(generator, tokenizer, PROBLEMS, Reward(verifier), max_new_tokens=8)
    assert scored.replies == again.replies and all(len(r) == 1 for r in scored.replies)
    assert scored.correct == [0, 0, 0]  # a random network writes no boxed answers
