"""``outer_step`` (Algorithm 1) on fakes, in milliseconds: a scripted teacher engine, a pool with set accuracies.

What it checks against the paper: R_k = mean_j ACC_kj - ACC_baseline for every dataset, the per-student gains, the
students' jobs (datasets X_k from the teacher's pairs in order, seeds derived per (step, group, dataset, student)),
the promoted job (best dataset, its median student), and the teacher's advantages (leave-one-out within each of the
B groups, every rollout of X_k carrying A_k)."""

from __future__ import annotations

from dataclasses import dataclass, field

from soar.algo.promotion import PromotionState
from soar.algo.seeds import derive_seed
from soar.config import load_config
from soar.engines.base import Completion
from soar.loops.train import StepBook, Teacher, outer_step
from soar.types import Problem, StudentJob, StudentResult

BASELINE = 0.25
ACCURACY = [[0.5, 0.25, 0.75], [0.25, 0.25, 0.25], [0.0, 0.25, 0.5], [1.0, 0.75, 0.5]]  # ACC_kj: 4 datasets x r=3
RATES = [[0.0, 0.5], [1.0, 1.0], [0.25, 0.0], [0.75, 0.5]]  # the baseline's success rate per question, 4 datasets x 2


class CharTokenizer:
    """One token per character; no chat template (prompts are the raw text)."""

    chat_template = None
    all_special_ids: list[int] = []

    def __call__(self, text: str, add_special_tokens: bool = False) -> dict[str, list[int]]:
        return {"input_ids": [ord(c) for c in text]}

    def decode(self, ids: list[int], skip_special_tokens: bool = False) -> str:
        return "".join(chr(i) for i in ids)


@dataclass
class ScriptedEngine:
    """Writes QA pair number i on its i-th draft; records wake/sleep and weight pushes."""

    drawn: int = 0
    events: list[str] = field(default_factory=list)

    def generate_tokens(self, prompt_ids, n, sampling):
        out = []
        for index, _ in enumerate(prompt_ids):
            text = f"<question>What is {self.drawn} + 1?</question><answer>\\boxed{{{self.drawn + 1}}}</answer>"
            self.drawn += 1
            out.append([Completion(index, text, [ord(c) for c in text], finish_reason="stop")])
        return out

    def generate(self, prompts, n, sampling):
        raise AssertionError("rejection sampling draws token ids")

    def update_weights(self, update):
        self.events.append(f"weights v{update.version}")

    def wake(self):
        self.events.append("wake")

    def sleep(self):
        self.events.append("sleep")


class RecordingTrainer:
    model = type("Model", (), {"named_parameters": lambda self: iter(())})()

    def __init__(self):
        self.rollouts = None

    def step(self, rollouts):
        self.rollouts = rollouts
        return {"loss": 0.5, "kl": 0.0}


class SetPool:
    """A StudentPool whose students score ACCURACY[k][j] on Q_R; the baseline BASELINE."""

    name, weights_format = "fake", "full"

    def __init__(self):
        self.baseline_version, self.jobs, self.promoted, self.evaluated, self.sampled = 0, [], None, [], []

    def baseline_accuracy(self, questions):
        self.evaluated.append(len(questions))
        return StudentResult("baseline", BASELINE, [0] * len(questions))

    def run(self, jobs, baseline_accuracy, progress=None):
        self.jobs = jobs
        return [StudentResult(j.job_id, ACCURACY[j.dataset_index][j.student_index], []) for j in jobs]

    def success_rates(self, datasets, samples, seeds):
        """Learnability (B.4): dataset k's questions solved at rates RATES[k] (one call for all datasets)."""
        self.sampled.append((len(datasets), samples, list(seeds)))
        return [RATES[k][:len(dataset)] for k, dataset in enumerate(datasets)]

    def promote(self, job: StudentJob) -> StudentResult:
        self.promoted, self.baseline_version = job, self.baseline_version + 1
        return StudentResult(job.job_id, ACCURACY[job.dataset_index][job.student_index], [])


def test_outer_step_computes_rewards_jobs_promotion_and_teacher_advantages():
    cfg = load_config("tiny", overrides={
        "teacher.sampling": "rejection", "teacher.batch_size": "2", "teacher.group_size": "2",
        "inner.dataset_size": "2", "inner.repeats": "3", "inner.reward_questions": "2", "inner.steps": "3",
        "teacher.max_new_tokens": "200", "promotion.tau": "0.01", "promotion.window": "3"})
    hard_train = [Problem(f"hard {i}", str(i), f"h{i}") for i in range(6)]
    engine, trainer, pool = ScriptedEngine(), RecordingTrainer(), SetPool()
    teacher = Teacher(trainer, engine, CharTokenizer(), parseable=lambda answers: [True] * len(answers))

    out = outer_step(cfg, 4, hard_train, teacher, pool, PromotionState(), StepBook())

    # 1. B*g*n = 8 accepted pairs, partitioned in draw order into 4 datasets of 2
    assert [[r.pair.question for r in d] for d in out.datasets] == [
        [f"What is {i} + 1?", f"What is {i + 1} + 1?"] for i in (0, 2, 4, 6)]
    # 2-3. R_kj = ACC_kj - ACC_baseline, R_k their mean
    assert out.per_student == [[a - BASELINE for a in row] for row in ACCURACY]
    assert out.rewards == [0.25, 0.0, 0.0, 0.5]
    assert pool.evaluated[0] == 2  # Q_R: M = 2 questions, scored on the baseline once
    assert [(j.dataset_index, j.student_index) for j in pool.jobs] == [(k, j) for k in range(4) for j in range(3)]
    assert [j.seed for j in pool.jobs] == [derive_seed(cfg.compute.seed, "student", 4, k // 2, k % 2, j)
                                           for k in range(4) for j in range(3)]
    assert len({j.seed for j in pool.jobs}) == 12 and all(j.steps == 3 for j in pool.jobs)
    assert pool.jobs[7].dataset == [p.pair.to_problem(f"4-2-{i}").to_dict() for i, p in enumerate(out.datasets[2])]
    # 4. the best dataset (k=3, mean gain 0.5) promotes its median student (gains 0.75, 0.5, 0.25 -> j=1)
    assert out.decision.promote and (out.decision.dataset, out.decision.student) == (3, 1)
    assert out.promoted.job.job_id == "step4-k3-j1" == pool.promoted.job_id
    assert out.promotion.stage == 1 and pool.evaluated[1] == len(hard_train)  # then scored on the whole train split
    # 5. leave-one-out within each of B=2 groups of g=2; every rollout of X_k carries A_k
    assert trainer.rollouts.advantages == [0.25, 0.25, -0.25, -0.25, -0.5, -0.5, 0.5, 0.5]
    assert engine.events == ["wake", "sleep", "wake", "weights v5"]  # phi reaches the engine after the update


def test_no_promotion_below_the_threshold_and_learning_goes_on():
    cfg = load_config("tiny", overrides={
        "teacher.sampling": "rejection", "teacher.batch_size": "1", "teacher.group_size": "4",
        "inner.dataset_size": "2", "inner.repeats": "3", "inner.reward_questions": "2",
        "teacher.max_new_tokens": "200", "promotion.tau": "0.5"})
    pool, trainer = SetPool(), RecordingTrainer()
    teacher = Teacher(trainer, ScriptedEngine(), CharTokenizer(), parseable=lambda answers: [True] * len(answers))
    out = outer_step(cfg, 0, [Problem(f"q{i}", "1") for i in range(4)], teacher, pool, PromotionState())
    assert not out.decision.promote and out.promoted is None and pool.promoted is None
    # one group of 4: A_k = R_k - mean of the other three
    expected = [r - (sum(out.rewards) - r) / 3 for r in out.rewards]
    assert trainer.rollouts.advantages == [a for a in expected for _ in range(2)]


def test_learnability_reward_asks_the_pool_once_for_every_dataset_and_trains_no_student():
    """Intrinsic-T (B.4): R_k = mean over X_k's questions of (1 - s) where the baseline's success rate s > 0, else 0;
    one pool call for all datasets (a Ray pool spreads them over its workers), each dataset with its own seed."""
    cfg = load_config("tiny", overrides={
        "teacher.sampling": "rejection", "teacher.batch_size": "1", "teacher.group_size": "4",
        "inner.dataset_size": "2", "inner.repeats": "2", "inner.reward_questions": "2",
        "teacher.max_new_tokens": "200", "teacher.reward": "learnability", "promotion.tau": "0.0"})
    pool, trainer = SetPool(), RecordingTrainer()
    teacher = Teacher(trainer, ScriptedEngine(), CharTokenizer(), parseable=lambda answers: [True] * len(answers))
    out = outer_step(cfg, 3, [Problem(f"q{i}", "1") for i in range(4)], teacher, pool, PromotionState())
    assert out.rewards == [0.25, 0.0, 0.375, 0.375]
    assert pool.sampled == [(4, cfg.teacher.learnability_samples,
                             [derive_seed(cfg.compute.seed, "learnability", 3, k) for k in range(4)])]
    assert pool.jobs == [] and out.promoted is None and pool.promoted is None  # no student trained, none promoted
