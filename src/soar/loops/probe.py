"""``soar probe``: reward controls, the grounded reward of datasets of known quality.

For one fixed baseline student and one fixed set of reward questions Q_R (M
hard train problems), train r students on each control dataset with the very
inner loop ``soar train`` runs (the config's student, inner and compute
settings, the same :class:`~soar.types.StudentPool`), and report the grounded
reward R_kj = ACC_kj - ACC_baseline of each student:

* ``oracle``: hard train problems with their own answers, disjoint from Q_R
  (the best a teacher could write: the hard set itself);
* ``stepping``: easier problems of the same domain (for the bundled
  ``arithmetic`` sources, the tiers easier than the hard set's; otherwise a
  problem file given with ``--stepping``);
* ``junk``: well-formed but wrongly answered, the oracle's questions with
  wrong answers (a numeric answer moved by 1-9, any other answer swapped with
  another problem's), so junk and oracle differ only in being right;
* ``teacher``: pairs sampled from the base teacher, exactly as ``soar train``'s
  first step samples them (prompt, ``teacher.sampling``, parser);
* for the designed world (``model.prompts: world``) one kind per world kind
  (``add-c0`` .. ``add-c8``, additions with that many carries; by default the
  stepping stones ``add-c1``, ``add-c2``, ``add-c3``): fresh problems of that
  kind with their true answers, none of them in the hard set; and each teacher
  dataset's content (its questions' kinds, its right answers) beside its
  reward, with the correlation of the reward and each kind's share, since the
  teacher's RLOO can only follow a reward that follows what its datasets hold.

Each kind gets ``--datasets`` datasets of n = ``inner.dataset_size`` pairs and
r = ``inner.repeats`` students each; student j of every kind trains with the
same seed (common random numbers), so differences between kinds are the
datasets'.  The table gives mean R +- standard error over the kind's students
and whether it separates from junk: mean - mean_junk > 2 * sqrt(se^2 +
se_junk^2).  It is the tool to size an inner loop: a budget (steps, batch,
group, learning rate, M, r) where the oracle does not separate from junk gives
the teacher no reward to learn from, whatever it writes.

The folder gets ``settings.json``, ``datasets.json`` (every control dataset and
Q_R), ``results.jsonl`` (one line per student as it finishes) and
``probe.json`` (the table).  Run the same command again to continue: finished
students are kept, and a folder made with other settings is refused.
"""

from __future__ import annotations

import json
import math
import random
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from soar.algo.seeds import derive_seed
from soar.analysis.learning import mean_se
from soar.config import SoarConfig, to_yaml
from soar.errors import ConfigError
from soar.types import Problem, StudentJob

KINDS = ("oracle", "stepping", "junk", "teacher")
"""The control datasets, in the order they are reported."""
_INTEGER = re.compile(r"^-?\d+$")


@dataclass
class ControlRow:
    """One kind's rewards and how they compare with junk."""

    kind: str
    rewards: list[float]
    """R_kj of every student of every dataset of the kind."""
    mean: float
    se: float
    """Standard error of the mean (sample SD / sqrt(count)); 0 for a single student."""
    delta: float | None = None
    """mean - mean of junk (``None`` for junk itself)."""
    z: float | None = None
    """delta / sqrt(se^2 + se_junk^2) (``inf`` when both SEs are 0 and delta is not)."""
    separates: bool | None = None
    """Above junk by more than two standard errors of the difference."""


def kind_order(tiers: Sequence[str] = ()) -> list[str]:
    """The kinds in report order: oracle, stepping, the world's kinds (if any), junk, teacher."""
    return ["oracle", "stepping", *tiers, "junk", "teacher"]


def control_table(rewards: dict[str, list[float]], tiers: Sequence[str] = ()) -> list[ControlRow]:
    """One row per kind present (:func:`kind_order`), compared with ``junk`` when junk is there."""
    rows = [ControlRow(kind, list(values), *mean_se(values)) for kind in kind_order(tiers)
            if (values := rewards.get(kind))]
    junk = next((row for row in rows if row.kind == "junk"), None)
    if junk is None:
        return rows
    for row in rows:
        if row is junk:
            continue
        row.delta = row.mean - junk.mean
        spread = math.sqrt(row.se ** 2 + junk.se ** 2)
        row.z = row.delta / spread if spread else (math.inf if row.delta > 0 else -math.inf if row.delta < 0 else 0.0)
        row.separates = row.delta > 2 * spread
    return rows


def wrong_answer(problem: Problem, others: Sequence[Problem], rng: random.Random) -> str:
    """An answer to ``problem`` that is wrong: an integer moved by 1-9 either way, anything else swapped with a
    different answer of ``others`` (``problem.answer + " + 1"`` when none differs)."""
    answer = problem.answer.strip()
    if _INTEGER.match(answer):
        return str(int(answer) + rng.choice([-1, 1]) * rng.randint(1, 9))
    choices = [p.answer for p in others if p.answer.strip() != answer]
    return rng.choice(choices) if choices else answer + " + 1"


def control_datasets(hard_train: Sequence[Problem], reward_ids: set[str], stepping: Sequence[Problem], n: int,
                     count: int, seed: int) -> dict[str, list[list[Problem]]]:
    """``count`` datasets of ``n`` problems for oracle, junk and (when ``stepping`` is given) stepping.

    Oracle datasets are disjoint from Q_R and from each other while the hard train split allows (then they
    wrap around); junk datasets are the oracle's questions with :func:`wrong_answer`."""
    pool = [p for p in hard_train if p.id not in reward_ids]
    if len(pool) < n:
        raise ConfigError(f"the hard train split has {len(pool)} problems outside Q_R (inner.reward_questions), "
                          f"fewer than inner.dataset_size = {n}: lower one of them")
    rng = random.Random(seed)
    order = rng.sample(pool, len(pool))
    oracle = [[order[(d * n + i) % len(order)] for i in range(n)] for d in range(count)]
    junk = [[Problem(p.question, wrong_answer(p, pool, rng), p.id + "-wrong", {"control": "junk"}) for p in dataset]
            for dataset in oracle]
    out = {"oracle": oracle, "junk": junk}
    if stepping:
        easy = random.Random(seed + 1).sample(list(stepping), len(stepping))
        if len(easy) < n:
            raise ConfigError(f"the stepping-stone problems are {len(easy)}, fewer than inner.dataset_size = {n}")
        out["stepping"] = [[easy[(d * n + i) % len(easy)] for i in range(n)] for d in range(count)]
    return out


def world_datasets(tiers: Sequence[str], exclude: set[str], n: int, count: int, seed: int
                  ) -> dict[str, list[list[Problem]]]:
    """``count`` datasets of ``n`` fresh problems of each world kind, true answers, no question of ``exclude``,
    distinct across datasets (every kind has millions of problems)."""
    from soar.world.family import make_question

    out: dict[str, list[list[Problem]]] = {}
    for tier in tiers:
        rng, seen, problems = random.Random(derive_seed(seed, "probe_tier", tier)), set(exclude), []
        while len(problems) < n * count:
            question, answer = make_question(tier, rng)
            if question not in seen:
                seen.add(question)
                problems.append(Problem(question, answer, f"{tier}-{len(problems)}", {"control": tier}))
        out[tier] = [problems[d * n:(d + 1) * n] for d in range(count)]
    return out


def content_rows(datasets: Sequence[Sequence[Problem]], rewards: Sequence[float]) -> dict[str, Any]:
    """Each teacher dataset's kinds, right answers and reward; and per kind, the correlation (Pearson) of the
    reward with the kind's share of the dataset (None where either does not vary)."""
    from soar.world.family import content

    rows = [{"kinds": kinds, "right": right, "size": len(d), "reward": r}
            for d, r in zip(datasets, rewards) for kinds, right in [content((p.question, p.answer) for p in d)]]
    kinds = sorted({k for row in rows for k in row["kinds"]})
    return {"datasets": rows, "correlation": {k: pearson([row["kinds"].get(k, 0) / row["size"] for row in rows],
                                                         [row["reward"] for row in rows]) for k in kinds}}


def pearson(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Pearson's correlation, or None when either side does not vary."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sx = math.sqrt(sum((x - mx) ** 2 for x in xs))
    sy = math.sqrt(sum((y - my) ** 2 for y in ys))
    if sx == 0 or sy == 0:
        return None
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / (sx * sy)


def stepping_stones(cfg: SoarConfig, count: int) -> list[Problem]:
    """Easier problems of the hard set's domain, for the bundled arithmetic sources: the tiers before the
    hardest-first of ``data.arithmetic_tiers`` that are not hard tiers (e.g. add2, mul1x2 for the tiny preset);
    empty for other sources."""
    from soar.data.arithmetic import TIERS, generate_problems

    if cfg.data.source not in ("arithmetic", "arithmetic-hard"):
        return []
    names = list(TIERS)
    hard = [t for t in cfg.data.arithmetic_tiers if t in TIERS]
    first = min((names.index(t) for t in hard), default=len(names))
    easier = [t for t in names[:first] if t not in hard]
    if not easier:
        return []
    per_tier = math.ceil(count / len(easier))
    return generate_problems(easier, per_tier=per_tier, seed=cfg.data.arithmetic_seed + 1)


def run_probe(cfg: SoarConfig, out: str | Path, datasets: int = 2, kinds: Sequence[str] | None = None,
              stepping_file: str | None = None, console: Any = None, invocation: str = "--preset tiny"
              ) -> dict[str, Any]:
    """Train and score every control student (continuing a folder with the same settings); returns probe.json."""
    from rich.console import Console

    from soar.data.load import load_hard_set
    from soar.data.problems import load_problems
    from soar.data.provenance import require_provenance
    from soar.loops.setup import setup

    console = console or Console()
    tiers = list(world_kinds(cfg))
    kinds = _check_kinds(cfg, tiers, kinds, datasets)
    require_provenance(cfg.data, cfg.model, invocation, cfg.out_dir)
    hard = load_hard_set(cfg.data)
    M, n, r = cfg.inner.reward_questions, cfg.inner.dataset_size, cfg.inner.repeats
    if M > len(hard.train):
        raise ConfigError(f"inner.reward_questions must be at most the hard train split ({len(hard.train)}), got {M}")
    stepping = load_problems(stepping_file) if stepping_file else stepping_stones(cfg, datasets * n)
    if "stepping" in kinds and not stepping:
        console.print("no stepping stones for this source: give --stepping FILE (easier problems of the domain); "
                      "the stepping row is left out")
    kinds = [k for k in kinds if k != "stepping" or stepping]
    folder = Path(out)
    settings = {"config": to_yaml(cfg), "datasets": datasets, "kinds": list(kinds), "stepping_file": stepping_file}
    if (folder / "settings.json").exists():
        if json.loads((folder / "settings.json").read_text()) != settings:
            raise ConfigError(f"{folder} holds a probe with other settings (config, --datasets, --kinds or "
                              f"--stepping); give another --out")
    folder.mkdir(parents=True, exist_ok=True)

    seed = cfg.compute.seed
    picks = random.Random(derive_seed(seed, "probe_reward_questions")).sample(range(len(hard.train)), M)
    reward_questions = [hard.train[i] for i in sorted(picks)]
    with setup(cfg, seed=True) as s:  # one verifier for the teacher and the students
        controls = _controls(s, folder, settings, hard, reward_questions, stepping, kinds, tiers, datasets, console)
        qr = [p.to_dict() for p in reward_questions]
        jobs = [StudentJob(f"{kind}-d{d}-j{j}", 0, [p.to_dict() for p in dataset], qr,
                           derive_seed(seed, "probe_student", d, j), cfg.inner.steps, ki * datasets + d, j)
                for ki, kind in enumerate(kinds) for d, dataset in enumerate(controls[kind]) for j in range(r)]
        student_model = s.model if cfg.compute.pool == "inprocess" else None  # the teacher is done with it
        s.model = None
        baseline, done = _train_students(s, student_model, folder / "results.jsonl", jobs, qr, console,
                                         f"probe {folder}  |  Q_R {M} hard train problems  |  {len(kinds)} kinds x "
                                         f"{datasets} datasets of {n} x {r} students = {len(jobs)} students, "
                                         f"{cfg.inner.steps} inner steps")
    rewards = {kind: [done[f"{kind}-d{d}-j{j}"]["accuracy"] - baseline
                      for d in range(datasets) for j in range(r)] for kind in kinds}
    return _report(cfg, folder, controls, rewards, baseline, kinds, tiers, datasets, console)


def _check_kinds(cfg: SoarConfig, tiers: list[str], kinds: Sequence[str] | None, datasets: int) -> list[str]:
    """The kinds asked for, in report order; a bad ``--kinds`` or ``--datasets`` is one line."""
    known = kind_order(tiers)
    default = ([k for k in kind_order([t for t in tiers if t in WORLD_DEFAULT_KINDS]) if k != "stepping"]
               if tiers else known)
    asked = list(default if kinds is None else kinds)
    unknown = [k for k in asked if k not in known]
    if unknown or not asked:
        raise ConfigError(f"--kinds: unknown kind {unknown[0]!r}; kinds: {', '.join(known)}" if unknown
                          else "--kinds: name at least one kind")
    if datasets < 1:
        raise ConfigError(f"--datasets must be at least 1, got {datasets}")
    if cfg.teacher.reward != "grounded":
        raise ConfigError("soar probe measures the grounded reward: set teacher.reward: grounded")
    return [k for k in known if k in asked]


def _controls(s: Any, folder: Path, settings: dict[str, Any], hard: Any, reward_questions: list[Problem],
              stepping: list[Problem], kinds: list[str], tiers: list[str], datasets: int,
              console: Any) -> dict[str, list[list[Problem]]]:
    """Every control dataset: read back from ``datasets.json``, or made (the base teacher sampled for ``teacher``)
    and written with ``settings.json``."""
    from soar.algo.promotion import partition
    from soar.engines.generation import build_generator
    from soar.io import write_atomic
    from soar.loops.teacher import sample_teacher

    cfg, n, seed = s.cfg, s.cfg.inner.dataset_size, s.cfg.compute.seed
    saved = folder / "datasets.json"
    if saved.exists():
        return {k: [[Problem.from_dict(p) for p in d] for d in ds]
                for k, ds in json.loads(saved.read_text())["controls"].items()}
    controls = control_datasets(hard.train, {p.id for p in reward_questions}, stepping, n, datasets,
                                derive_seed(seed, "probe_datasets"))
    controls.update(world_datasets([k for k in kinds if k in tiers],
                                  {p.question for p in hard.train + hard.test}, n, datasets, seed))
    if "teacher" in kinds:  # the base teacher, before any student adapter touches the model
        generator = build_generator(cfg.compute, s.model, s.tokenizer, compute_dtype=s.precision)
        with console.status("sampling the base teacher"):
            sample = sample_teacher(generator, s.tokenizer, cfg.teacher, datasets * n,
                                    derive_seed(seed, "teacher", 0), s.verifier.parseable_many)
        controls["teacher"] = [[r.pair.to_problem(f"teacher-{d}-{i}") for i, r in enumerate(part)]
                               for d, part in enumerate(partition(sample.rollouts, datasets, n))]
        console.print(f"base teacher: {len(sample.rollouts)} pairs accepted of {sample.attempts} drafts "
                      f"({sample.acceptance_rate:.0%})")
    controls = {k: controls[k] for k in kinds}
    write_atomic(saved, json.dumps({"reward_questions": [p.to_dict() for p in reward_questions],
                                    "controls": {k: [[p.to_dict() for p in d] for d in ds]
                                                 for k, ds in controls.items()}}, indent=1))
    write_atomic(folder / "settings.json", json.dumps(settings, indent=1))
    return controls


def _train_students(s: Any, student_model: Any, results_file: Path, jobs: list[StudentJob], qr: list[dict[str, Any]],
                    console: Any, headline: str) -> tuple[float, dict[str, dict[str, Any]]]:
    """The baseline's accuracy on Q_R and every job's record: those in ``results_file`` kept, the rest trained and
    appended as each finishes (a line torn by a kill is cut first)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from soar.io import append_jsonl, read_jsonl
    from soar.students.pool import pool_description

    done = {record["job_id"]: record for record in read_jsonl(results_file, repair=True)}
    todo = [job for job in jobs if job.job_id not in done]
    console.print(f"{headline} ({len(jobs) - len(todo)} done before)")
    with s.student_pool(student_model) as pool:
        console.print(f"students: {pool_description(s.cfg)}")
        baseline = pool.baseline_accuracy(qr).accuracy
        if todo:
            with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                          console=console, transient=True) as progress:
                task = progress.add_task("students", total=len(todo))

                def finished(result: Any) -> None:
                    record = {"job_id": result.job_id, "accuracy": result.accuracy,
                              "reward": result.accuracy - baseline, "train_rewards": result.train_rewards,
                              "train_seconds": result.train_seconds, "eval_seconds": result.eval_seconds}
                    append_jsonl(results_file, [record])
                    done[result.job_id] = record
                    progress.console.print(f"  {result.job_id:<16} accuracy {result.accuracy:.3f}  R "
                                           f"{record['reward']:+.3f}")
                    progress.advance(task)

                pool.run(todo, baseline, progress=finished)
    return baseline, done


def _report(cfg: SoarConfig, folder: Path, controls: dict[str, list[list[Problem]]],
            rewards: dict[str, list[float]], baseline: float, kinds: list[str], tiers: list[str], datasets: int,
            console: Any) -> dict[str, Any]:
    """``probe.json`` and the printed table."""
    from soar.io import write_atomic

    r, n = cfg.inner.repeats, cfg.inner.dataset_size
    rows = control_table(rewards, tiers)
    content = None
    if "teacher" in kinds and tiers:
        content = content_rows(controls["teacher"], [sum(rewards["teacher"][d * r:(d + 1) * r]) / r
                                                       for d in range(datasets)])
    report = {"baseline_accuracy": baseline, "reward_questions": cfg.inner.reward_questions, "datasets": datasets,
              "dataset_size": n, "students": r, "inner_steps": cfg.inner.steps,
              "numeric_answers": {k: numeric_share([p.answer for d in controls[k] for p in d]) for k in kinds},
              "arithmetic_statements_correct": {k: arithmetic_check([p for d in controls[k] for p in d],
                                                                    world=bool(tiers)) for k in kinds},
              "rows": [asdict(row) for row in rows], **({"teacher_content": content} if content else {})}
    write_atomic(folder / "probe.json", json.dumps(report, indent=1))
    console.print(render_table(rows, baseline))
    if content:
        console.print(render_content(content))
    for kind in kinds:
        example = controls[kind][0][0]
        statements, correct = report["arithmetic_statements_correct"][kind]
        what = "world additions" if tiers else "arithmetic statements"
        console.print(f"  {kind:<9} numeric answers {report['numeric_answers'][kind]:.0%}, {what} {statements} "
                      f"({correct} answered right); e.g. {example.question[:60]!r} -> {example.answer!r}")
    return report


def arithmetic_check(problems: Sequence[Problem], world: bool = False) -> tuple[int, int]:
    """``(statements, correct)``: how many questions are one-operation arithmetic statements
    (:func:`soar.data.arithmetic.arithmetic_answer`) and how many of those carry the right answer; with ``world``,
    how many are the designed world's additions and how many are answered right digit for digit
    (:func:`soar.world.family.is_right`: the world's answers are digit strings, leading zeros and all)."""
    from soar.data.arithmetic import arithmetic_answer

    if world:
        from soar.world.family import is_right, parse

        added = [p for p in problems if parse(p.question) is not None]
        return len(added), sum(is_right(p.question, p.answer) for p in added)
    statements = correct = 0
    for p in problems:
        value = arithmetic_answer(p.question)
        if value is None:
            continue
        statements += 1
        answer = p.answer.strip().strip("$").replace(",", "")
        correct += bool(_INTEGER.match(answer)) and int(answer) == value
    return statements, correct


def numeric_share(answers: Sequence[str]) -> float:
    """Share of answers that are plain numbers (integers, decimals, fractions a/b or \\frac{a}{b})."""
    from soar.algo.parsing import is_number

    return sum(is_number(a) for a in answers) / len(answers) if answers else 0.0


WORLD_DEFAULT_KINDS = ("add-c1", "add-c2", "add-c3")
"""The world's kinds a probe trains on when ``--kinds`` is not given: its stepping stones."""


def world_kinds(cfg: SoarConfig) -> Sequence[str]:
    """The designed world's kinds (``add-c0`` .. ``add-c8``) when ``cfg`` is a world config, else none."""
    if cfg.model.prompts != "world":
        return ()
    from soar.world.family import KINDS

    return KINDS


def render_content(content: dict[str, Any]) -> str:
    """The teacher datasets' content beside their rewards, and the correlations."""
    lines = ["teacher datasets: kinds of their questions, right answers, mean R of their students"]
    for i, row in enumerate(content["datasets"]):
        kinds = " ".join(f"{k} {v}" for k, v in row["kinds"].items())
        lines.append(f"  d{i:<3} {kinds:<28} right {row['right']}/{row['size']}  R {row['reward']:+.3f}")
    corr = "  ".join(f"{k} {'n/a' if v is None else f'{v:+.2f}'}" for k, v in content["correlation"].items())
    lines.append(f"correlation of R with each tier's share: {corr}")
    return "\n".join(lines)


def render_table(rows: Sequence[ControlRow], baseline: float) -> str:
    """The probe table as text."""
    lines = [f"baseline accuracy on Q_R {baseline:.3f}",
             f"{'kind':<9} {'students':>8} {'mean R':>8} {'± SE':>7} {'min':>7} {'max':>7} {'Δ junk':>8} {'z':>6}  separates"]
    for row in rows:
        delta = "" if row.delta is None else f"{row.delta:+.3f}"
        z = "" if row.z is None else f"{row.z:.1f}"
        sep = "" if row.separates is None else ("yes" if row.separates else "no")
        lines.append(f"{row.kind:<9} {len(row.rewards):>8} {row.mean:>+8.3f} {row.se:>7.3f} {min(row.rewards):>+7.3f} "
                     f"{max(row.rewards):>+7.3f} {delta:>8} {z:>6}  {sep}")
    return "\n".join(lines)
