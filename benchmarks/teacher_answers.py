"""Can the teacher answer what it writes?  Right-answer share of the teacher's answer span, by template.

    python benchmarks/teacher_answers.py [--preset laptop] [--count 24] [--tiers add1,mul1x1,add2x1,add2,mul1x2]
    python benchmarks/teacher_answers.py --tiers add1,mul1x1,add2x1 --count 8 --seed 7 --write FILE

``--write FILE`` only writes those questions with their answers as a problem
file and exits: easier problems of the domain for ``soar probe --stepping``.

In an arithmetic domain a dataset with wrong answers gives a student nothing
to learn (its samples almost never match the wrong answer, so RLOO has no
advantage to push), so a teacher whose answers are wrong writes junk whatever
its questions.  This script measures, for one-operation questions of growing
difficulty (known answers), how often the model states the right answer:

* ``teacher box``: the teacher prompt of the preset (with its prompt examples),
  the question forced, then ``</question><answer>\\boxed{`` forced and the
  answer sampled up to the ``}`` -- exactly how ``teacher.sampling:
  structured`` samples an answer;
* ``teacher restate``: the same, but the prompt examples show the computation
  before the box (``47 + 8 = \\boxed{55}``) and only ``<answer>`` is forced, so
  the model may write the expression first;
* ``student``: the B.1 student prompt and the run's reward (``reward.scoring()``),
  i.e. the model answering as a solver: the reference in the same run.

Each at greedy and at temperature 1 (the teacher's sampling temperature,
Table 3).  Questions are built here from ``random.Random(seed)``; nothing is
evaluated (the answers are computed from the integers that made the question).
"""

from __future__ import annotations

import argparse
import random
import re
import time

TIERS = {
    "add1": lambda r: _op(r, (2, 9), (2, 9), "+"),
    "mul1x1": lambda r: _op(r, (2, 9), (2, 9), "\\times"),
    "add2x1": lambda r: _op(r, (10, 99), (2, 9), "+"),
    "add2": lambda r: _op(r, (10, 99), (10, 99), "+"),
    "mul1x2": lambda r: _op(r, (2, 9), (10, 99), "\\times"),
}
RESTATE_EXAMPLES = [
    "<question>What is 47 + 8?</question><answer>47 + 8 = \\boxed{55}</answer>",
    "<question>What is 36 - 9?</question><answer>36 - 9 = \\boxed{27}</answer>",
    "<question>What is 6 \\times 7?</question><answer>6 \\times 7 = \\boxed{42}</answer>",
]


def _op(rng: random.Random, a_range: tuple[int, int], b_range: tuple[int, int], op: str) -> tuple[str, int]:
    a, b = rng.randint(*a_range), rng.randint(*b_range)
    return f"What is {a} {op} {b}?", a + b if op == "+" else a * b


def _boxed(text: str) -> str | None:
    match = re.search(r"\\boxed\{([^{}]*)\}?", text)
    return match.group(1).strip().replace(",", "") if match else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="laptop")
    parser.add_argument("--count", type=int, default=24, help="questions per tier")
    parser.add_argument("--tiers", default=",".join(TIERS))
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--write", metavar="FILE", help="write the questions as a problem file (JSONL) and exit")
    args = parser.parse_args()
    tiers = args.tiers.split(",")
    unknown = [t for t in tiers if t not in TIERS]
    if unknown:
        parser.error(f"--tiers: unknown tier {unknown[0]!r}; tiers: {', '.join(TIERS)}")
    if args.write:
        from pathlib import Path

        from soar.data.files import write_jsonl
        from soar.types import Problem

        rng = random.Random(args.seed)
        problems = [Problem(q, str(a), f"{tier}-{i:04d}", {"tier": tier})
                    for tier in tiers for i, (q, a) in enumerate(TIERS[tier](rng) for _ in range(args.count))]
        write_jsonl(Path(args.write), problems)
        print(f"{len(problems)} problems ({', '.join(tiers)}) in {args.write}")
        return

    import torch

    from soar.config import load_config
    from soar.data.prompts import teacher_prompt
    from soar.engines.evaluation import Reward, greedy_accuracy, sampled_correct
    from soar.engines.generation import SamplingParams, build_generator
    from soar.engines.models import compute_dtype, load_model
    from soar.math.verify import Verifier
    from soar.types import Problem

    cfg = load_config(preset=args.preset)
    if cfg.compute.threads:
        torch.set_num_threads(cfg.compute.threads)
    start = time.perf_counter()
    model, tokenizer = load_model(cfg.model)
    generator = build_generator(cfg.compute, model, tokenizer, compute_dtype=compute_dtype(cfg.model))
    templates = {"teacher box": (teacher_prompt(tokenizer, cfg.teacher.prompt_examples), "<answer>\\boxed{"),
                 "teacher restate": (teacher_prompt(tokenizer, RESTATE_EXAMPLES), "<answer>")}
    rng = random.Random(args.seed)
    rows = []
    with Verifier(cfg.reward.verify_workers, cfg.reward.verify_timeout_s) as verifier:
        for tier in tiers:
            items = [TIERS[tier](rng) for _ in range(args.count)]
            row = {"tier": tier, "example": items[0][0]}
            for name, (prompt, forced) in templates.items():
                ids = [tokenizer(f"{prompt}<question>{q}</question>{forced}", add_special_tokens=False)["input_ids"]
                       for q, _ in items]
                for label, sampling in (("greedy", SamplingParams(max_new_tokens=24, greedy=True, stop=("}",))),
                                        ("T=1", SamplingParams(temperature=cfg.teacher.temperature,
                                                               max_new_tokens=24, stop=("}",), seed=args.seed))):
                    outs = generator.generate_tokens(ids, 1, sampling)
                    texts = [tokenizer.decode(o[0].token_ids, skip_special_tokens=True) for o in outs]
                    if forced.endswith("{"):
                        texts = ["\\boxed{" + t for t in texts]
                    row[f"{name} {label}"] = sum(_boxed(t) == str(a) for t, (_, a) in zip(texts, items))
            problems = [Problem(q, str(a), f"{tier}-{i}") for i, (q, a) in enumerate(items)]
            reward = Reward.of(cfg.reward, verifier)
            row["student greedy"] = sum(greedy_accuracy(generator, tokenizer, problems, reward,
                                                        max_new_tokens=cfg.student.max_new_tokens).correct)
            scored = sampled_correct(generator, tokenizer, problems, reward, n=1,
                                     sampling=SamplingParams(temperature=cfg.student.temperature,
                                                             max_new_tokens=cfg.student.max_new_tokens,
                                                             seed=args.seed))
            row["student T=1"] = sum(scored.correct)
            rows.append(row)
            print(f"  {tier} done ({time.perf_counter() - start:.0f} s)", flush=True)

    columns = [c for c in rows[0] if c not in ("tier", "example")]
    print(f"\nright answers of {args.count} per tier, preset {args.preset} ({cfg.model.name}), "
          f"{time.perf_counter() - start:.0f} s in all")
    print("| tier | e.g. | " + " | ".join(columns) + " |")
    print("|---|---|" + "---|" * len(columns))
    for row in rows:
        print(f"| {row['tier']} | `{row['example']}` | " + " | ".join(str(row[c]) for c in columns) + " |")


if __name__ == "__main__":
    main()
