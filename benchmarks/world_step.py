"""Where an outer step of the world preset spends its time (issue 34, item 6: the target is 5 s on 2 cores).

Three tables, all measured in this run:

1. the machine's fp32 matmul rate, large (1024^3) and at the world model's own shapes (128 rows x 128 x 384),
   on 1 and 2 threads;
2. one inner loop (one student: 20 RLOO steps on 16 questions with 3 carries x 8 samples, then its greedy score
   on Q_R), split into sampling, the update and the score, with the FLOPs each does (counted from the shapes:
   2 per parameter per token forward, 6 forward and backward) and the rate that makes;
3. whole outer steps of ``soar train --preset world`` (8 students), in this process on 1 and 2 threads, and on
   Ray with 2 workers when Ray is installed: the second step's phases from ``metrics.jsonl``.

    python benchmarks/world_step.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch


def flags() -> str:
    out = subprocess.run(["sh", "-c", "grep -o -w 'avx2\\|avx512f\\|avx512_bf16\\|amx_bf16' /proc/cpuinfo | sort -u"],
                         capture_output=True, text=True).stdout.split()
    return " ".join(out) or "unknown"


def matmul_rate(m: int, k: int, n: int, threads: int, seconds: float = 1.0) -> float:
    torch.set_num_threads(threads)
    a, b = torch.randn(m, k), torch.randn(k, n)
    a @ b
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        a @ b
        count += 1
    return 2 * m * k * n * count / (time.perf_counter() - started) / 1e9


def inner_loop(threads: int) -> dict[str, float]:
    """One student's inner loop on the shipped world, phases timed, FLOPs counted."""
    from soar.algo.seeds import derive_seed
    from soar.config import load_config
    from soar.loops.setup import setup
    from soar.students.worker import build_worker
    from soar.types import StudentJob
    from soar.world.family import generate_problems

    torch.set_num_threads(threads)
    cfg = load_config("world", overrides={"reward.verify_workers": "1"})
    with setup(cfg) as env:
        worker = build_worker(cfg, env.model, env.tokenizer, env.verifier)
        params = sum(p.numel() for n, p in env.model.named_parameters() if "embed" not in n)
        clock = {"sampling": 0.0, "update": 0.0}
        flops = {"sampling": 0.0, "update": 0.0}
        rows = {"all": 0, "trained": 0}
        generate, step = worker.generator.generate_tokens, worker.trainer.step

        def timed_generate(prompt_ids, n, sampling, **kw):
            started = time.perf_counter()
            out = generate(prompt_ids, n, sampling, **kw)
            clock["sampling"] += time.perf_counter() - started
            sampled = sum(len(c.token_ids) for group in out for c in group)
            prefilled = sum(len(p) for p in {tuple(p) for p in prompt_ids})  # each distinct prompt once
            flops["sampling"] += 2 * params * (sampled + prefilled)
            return out

        def timed_step(rollouts):
            started = time.perf_counter()
            stats = step(rollouts)
            clock["update"] += time.perf_counter() - started
            prompts = {tuple(p) for p in rollouts.prompt_ids}
            tokens = sum(len(c) for c in rollouts.completion_ids) + sum(len(p) for p in prompts)
            flops["update"] += 6 * params * tokens
            rows["trained"] += len(rollouts.advantages)
            return stats

        import soar.students.inner as inner

        counted = inner.informative

        def counting(rollouts, kl_coef):
            rows["all"] += len(rollouts.advantages)
            return counted(rollouts, kl_coef)

        worker.generator.generate_tokens, worker.trainer.step, inner.informative = timed_generate, timed_step, counting
        try:
            hard = [p.to_dict() for p in generate_problems(["add-c8"], 100, seed=9)]
            dataset = [p.to_dict() for p in generate_problems(["add-c3"], 16, seed=9)]
            job = StudentJob("bench", 0, dataset, hard, derive_seed(0, "bench"), cfg.inner.steps, 0, 0)
            started = time.perf_counter()
            (result, _), = worker.train([job])
            total = time.perf_counter() - started
        finally:
            inner.informative = counted
    return {"total": total, "sampling": clock["sampling"], "update": clock["update"],
            "score": result.eval_seconds, "sampling_flop": flops["sampling"], "update_flop": flops["update"],
            "rows": rows["all"], "trained_rows": rows["trained"], "accuracy": result.accuracy}


def outer_steps(args: list[str]) -> dict[str, float] | None:
    with tempfile.TemporaryDirectory() as tmp:
        run = subprocess.run([sys.executable, "-m", "soar", "train", "--preset", "world", "--outer_steps", "2",
                              "--out", f"{tmp}/run", *args], capture_output=True, text=True)
        if run.returncode != 0:
            print(f"  ({' '.join(args)}: failed: {run.stderr.strip().splitlines()[-1:]})")
            return None
        records = [json.loads(line) for line in Path(f"{tmp}/run/metrics.jsonl").read_text().splitlines()]
    return {"step": records[-1]["step_wall"], **records[-1]["seconds"]}


def main() -> None:
    print(f"CPU flags: {flags()}; torch {torch.__version__}")
    print("\n| fp32 matmul | 1 thread GFLOP/s | 2 threads GFLOP/s |\n|---|---|---|")
    for m, k, n in ((1024, 1024, 1024), (128, 128, 384), (128, 384, 128)):
        print(f"| {m} x {k} x {n} | {matmul_rate(m, k, n, 1):.1f} | {matmul_rate(m, k, n, 2):.1f} |")

    print("\n| one inner loop (20 steps + score), threads | total s | sampling s | update s | score s | "
          "sampling GFLOP/s | update GFLOP/s | rows trained / sampled |\n|---|---|---|---|---|---|---|---|")
    for threads in (1, 2):
        r = inner_loop(threads)
        print(f"| {threads} | {r['total'] + r['score']:.2f} | {r['sampling']:.2f} | {r['update']:.2f} | "
              f"{r['score']:.2f} | {r['sampling_flop'] / r['sampling'] / 1e9:.1f} | "
              f"{r['update_flop'] / r['update'] / 1e9:.1f} | {r['trained_rows']} / {r['rows']} |")

    print("\n| outer step (8 students), how | step s | students s | teacher sampling s | teacher update s |"
          "\n|---|---|---|---|---|")
    runs = [("in process, 1 thread", ["--compute.threads", "1"]), ("in process, 2 threads", ["--compute.threads", "2"])]
    try:
        import ray  # noqa: F401

        runs.append(("Ray, 2 workers x 1 CPU", ["--compute.pool", "ray", "--compute.workers", "2"]))
    except ImportError:
        pass
    for name, args in runs:
        r = outer_steps(args)
        if r is not None:
            print(f"| {name} | {r['step']:.1f} | {r['students']:.1f} | {r['teacher_generation']:.2f} | "
                  f"{r['teacher_update']:.2f} |")


if __name__ == "__main__":
    main()
