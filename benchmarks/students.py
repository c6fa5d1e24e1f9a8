"""The student phase of one outer step, by how students are trained: sequential full, sequential LoRA,
batched LoRA, and a Ray pool of 2 workers.

    python benchmarks/students.py [--shapes tiny,large] [--modes sequential-full,sequential-lora,batched-lora,ray]

What is timed: scoring the baseline on Q_R once, then training r students on
each of B*g datasets and scoring each on Q_R (``pool.baseline_accuracy`` +
``pool.run``: the part of ``outer_step`` the pool does), with the ``tiny``
preset's model (SmolLM2-135M) and settings.  The datasets are questions of the
hard set's own train split (a dataset that can teach), the same for every
mode.  Model loading and Ray worker start-up (once per run, not per step) are
reported apart.  Each mode runs in its own process, so peak memory is its own
(Ray: driver plus both workers).

Shapes: ``tiny`` is the preset's inner loop (4 students; per inner step 2
questions x 4 samples, 4 steps, 32 new tokens, 16 reward questions);
``large`` gives each student twice the samples (4 questions x 4 samples per
step); by default only ``sequential-full`` and ``batched-lora`` run there
(all four modes at both shapes take ~35 minutes on 2 cores; ``--large-modes``).  The reference in
the same run is ``sequential-full`` (soar before batching) and, as a ceiling,
the fp32 matmul rate of this CPU: "model GFLOP/s" counts 2P FLOPs per sampled
or scored token and 6P (full) or 4P (LoRA: no weight gradients) per trained
token, with P the model's parameters outside the embedding.

The last line is ``speedup batched-lora vs sequential-full: N.NN×`` at the tiny shape.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time

MODES = ("sequential-full", "sequential-lora", "batched-lora", "ray")
SHAPES = {
    "tiny": {},
    "large": {"student.batch_size": "4"},
}


def _overrides(mode: str, shape: str, students: int, extra: dict[str, str]) -> dict[str, str]:
    o = dict(SHAPES[shape])
    if mode == "sequential-full":
        o.update({"student.finetune": "full", "compute.student_batch": "1", "student.lr": "5.0e-5"})
    elif mode == "sequential-lora":
        o.update({"student.finetune": "lora", "compute.student_batch": "1"})
    else:
        o.update({"student.finetune": "lora", "compute.student_batch": str(students)})
    if mode == "ray":
        o.update({"compute.pool": "ray", "compute.workers": "2", "compute.worker_cpus": "1"})
    else:
        o["compute.pool"] = "inprocess"
    return o | extra


def child(mode: str, shape: str, extra: dict[str, str]) -> None:
    """Run one mode in this process and print its figures as one JSON line."""
    import resource

    import torch

    from soar.algo.seeds import derive_seed
    from soar.config import load_config
    from soar.data.load import load_hard_set
    from soar.engines.models import load_model
    from soar.math.verify import Verifier
    from soar.students.pool import build_pool
    from soar.types import StudentJob

    base = load_config("tiny")
    students = base.teacher.batch_size * base.teacher.group_size * base.inner.repeats
    cfg = load_config("tiny", overrides=_overrides(mode, shape, students, extra))
    hard = load_hard_set(cfg.data)
    rng = random.Random(derive_seed(0, "benchmark"))
    picks = rng.sample(range(len(hard.train)), cfg.inner.reward_questions)
    reward_questions = [hard.train[i].to_dict() for i in sorted(picks)]
    k_count, r, n = students // cfg.inner.repeats, cfg.inner.repeats, cfg.inner.dataset_size
    datasets = [[hard.train[i].to_dict() for i in rng.sample(range(len(hard.train)), n)] for _ in range(k_count)]
    jobs = [StudentJob(f"k{k}-j{j}", 0, datasets[k], reward_questions, derive_seed(0, "student", 0, 0, k, j),
                       cfg.inner.steps, k, j) for k in range(k_count) for j in range(r)]
    started = time.perf_counter()
    model, tokenizer = (None, None)
    if cfg.compute.pool == "inprocess":
        model, tokenizer = load_model(cfg.model)
    with Verifier(cfg.reward.verify_workers, cfg.reward.verify_timeout_s) as verifier:
        pool = build_pool(cfg, model, tokenizer, verifier)
        setup = time.perf_counter() - started
        clock = time.perf_counter()
        baseline = pool.baseline_accuracy(reward_questions)
        results = pool.run(jobs, baseline.accuracy)
        wall = time.perf_counter() - clock
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        if cfg.compute.pool == "ray":
            import ray

            peak += sum(ray.get([a.peak_rss_bytes.remote() for a in pool.actors]))
        pool.close()
    params = sum(p.numel() for name, p in (model or load_model(cfg.model)[0]).named_parameters() if "embed" not in name)
    sampled = sum(res.tokens for res in results)
    trained = sampled  # every sampled token is scored by the trainer once per step
    scored = len(reward_questions) * (len(jobs) + 1) * cfg.student.max_new_tokens  # greedy Q_R replies, at most
    # forward 2P, backward 4P (full: input and weight gradients) or 2P (LoRA: input gradients only), and the
    # KL reference's forward 2P
    per_train = 8 if cfg.student.finetune == "full" else 6
    flops = 2 * params * (sampled + scored) + per_train * params * trained
    print(json.dumps({"mode": mode, "shape": shape, "students": len(jobs), "wall": wall, "setup": setup,
                      "sampled_tokens": sampled, "peak_bytes": peak, "model_gflops": flops / wall / 1e9,
                      "baseline": baseline.accuracy, "accuracies": [res.accuracy for res in results],
                      "mean_gain": sum(res.accuracy for res in results) / len(results) - baseline.accuracy,
                      "threads": torch.get_num_threads()}))


def matmul_gflops() -> float:
    import torch

    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    for _ in range(2):
        a @ b
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * 2048 ** 3 / best / 1e9


def cpu_flags() -> str:
    try:
        flags = open("/proc/cpuinfo").read().split()
    except OSError:
        return "unknown"
    wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")
    return " ".join(f for f in wanted if f in flags) or "none of avx2/avx512/amx"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default="tiny,large")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--large-modes", default="sequential-full,batched-lora",
                        help="modes run at the large shape (all four take ~2x the 25-minute budget on 2 cores)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a config override for every mode, e.g. --set student.lr=1e-3")
    parser.add_argument("--json", help="also write the rows to this file")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "SHAPE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    extra = dict(item.split("=", 1) for item in args.set)
    if args.child:
        child(*args.child, extra)
        return
    from rich.console import Console
    from rich.table import Table

    console = Console(width=200)
    ceiling = matmul_gflops()
    console.print(f"CPU flags: {cpu_flags()}  |  fp32 matmul 2048^3: {ceiling:.0f} GFLOP/s  |  cores: "
                  f"{__import__('os').cpu_count()}")
    rows = []
    for shape in args.shapes.split(","):
        modes = args.modes.split(",") if shape == "tiny" else [m for m in args.large_modes.split(",")
                                                               if m in args.modes.split(",")]
        for mode in modes:
            console.print(f"[dim]running {mode} at the {shape} shape...[/dim]")
            out = subprocess.run([sys.executable, __file__, "--child", mode, shape,
                                  *[f"--set={item}" for item in args.set]], capture_output=True, text=True)
            lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
            if out.returncode or not lines:
                console.print(f"[red]{mode} at {shape} failed[/red]\n{out.stderr[-3000:]}")
                continue
            rows.append(json.loads(lines[-1]))
    table = Table(title="student phase of one outer step (baseline on Q_R + every student trained and scored)")
    for col in ("shape", "mode", "students", "wall s", "setup s", "sampled tok/s", "peak mem", "model GFLOP/s",
                "% of matmul", "gain (R)", "vs sequential-full"):
        table.add_column(col, justify="right")
    reference = {row["shape"]: row["wall"] for row in rows if row["mode"] == "sequential-full"}
    for row in rows:
        ref = reference.get(row["shape"])
        table.add_row(row["shape"], row["mode"], str(row["students"]), f"{row['wall']:.1f}", f"{row['setup']:.1f}",
                      f"{row['sampled_tokens'] / row['wall']:.0f}", f"{row['peak_bytes'] / 2**30:.2f} GiB",
                      f"{row['model_gflops']:.1f}", f"{100 * row['model_gflops'] / ceiling:.0f}%",
                      f"{row['mean_gain']:+.3f}", f"{ref / row['wall']:.2f}×" if ref else "-")
    console.print(table)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"matmul_gflops": ceiling, "cpu_flags": cpu_flags(), "rows": rows}, f, indent=1)
    console.print("gain: mean student accuracy on Q_R minus the baseline's (R_kj averaged), datasets of hard-train "
                  "questions; setup: model load (in-process) or Ray start and worker model loads (ray)")
    tiny = {row["mode"]: row["wall"] for row in rows if row["shape"] == "tiny"}
    if "sequential-full" in tiny and "batched-lora" in tiny:
        print(f"speedup batched-lora vs sequential-full: {tiny['sequential-full'] / tiny['batched-lora']:.2f}×")
    else:
        print("speedup batched-lora vs sequential-full: not measured (a mode failed)")


if __name__ == "__main__":
    main()
