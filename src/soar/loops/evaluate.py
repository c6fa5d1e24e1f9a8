"""``soar evaluate``: train a fresh student on a question source + the hard train split, report test pass@k.

Sections 4.3-4.5 and Appendix B.6.  A *question source* is any problem file:
a run's ``promotion_questions.jsonl`` (PQ), a ``soar sample`` file (Base-T,
Grounded-T, Intrinsic-T), a curated problem set (the oracle bound), or none
(Hard-Only).  For each seed a fresh student (the base model) is trained with
the inner loop's RLOO step (``soar.students.inner.rloo_step``) for
``evaluation.max_steps`` steps:

* ``curriculum``: synthetic questions only for ``synthetic_warmup_steps``
  steps, then hard train questions only; ``mixed``: both, drawn from one pool.
* Every ``eval_every`` steps (and at step 0 and the last step) pass@k on the
  hard *test* split, ``samples_per_problem`` samples per problem, k in ``ks``.
* The training reward is logged every step; the B.6 stop
  (``soar.algo.early_stopping``) picks the step, and test pass@k is averaged
  over the evaluations in ``[stop, stop + average_window]``; the fixed-step
  report (OlympiadBench protocol) is the evaluation at ``fixed_step``.

Promoted Student (PS): of the run's promoted students (``promoted/``), the
one with the best greedy accuracy on the hard train split (4.3), pass@k on the
test split, inference only, one sampling seed per seed.

Output (one folder per method)::

    EVAL/config.yaml  EVAL/source.json  EVAL/summary.json (mean ± SD over seeds)
    EVAL/seed_N/train.jsonl   step, reward (mean B.3 reward of the step's samples), phase
    EVAL/seed_N/evals.jsonl   step, pass@k
    EVAL/seed_N/summary.json  stop step, early-stopped and fixed-step pass@k

Choices where the paper is silent:

* In ``curriculum`` mode the stopping rule reads the reward curve of the hard
  phase only (the switch from synthetic to hard questions is a drop in reward,
  not a plateau); with no synthetic questions the whole curve is used.
* The student's learning rate follows ``student.lr`` with the cosine schedule
  over ``max_steps`` and ``evaluation.warmup_steps`` of warm-up (B.6), or
  ``evaluation.curriculum_warmup_steps`` (B.7: zero) when a curriculum starts
  with synthetic questions.  B.7 states zero for PQ; it is applied to every
  curriculum question source (Base-T, Grounded-T too), so the methods differ
  only in their questions.
* Resumable by seed: a seed with a ``summary.json`` is kept; a seed cut short
  is run again from its start.  An output folder is reused only for the same
  source (method, mixing, and the questions' content) and the same settings,
  up to those that change how it runs, not what it measures
  (``EXECUTION_ONLY``: seeds, threads, batch size, verifier workers).
* Students are sampled with ``compute.generator``'s engine as they train; a
  ``vllm`` engine gets the student's full weights after every step and restore
  (LoRA students sample with ``hf``: ``soar.engines.generation.trainer_generator``),
  and PS's promoted weights once.
* Aggregation over seeds: mean ± sample SD, as Appendix B.8 and Tables 4-6
  state (Section 4.1's text says median).
* A hard set needs matching ``soar filter`` provenance when
  ``data.fail_at_k`` is set (``soar.data.provenance``), as in ``soar train``.
"""

from __future__ import annotations

import dataclasses
import json
import random
import shutil
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from soar.algo.early_stopping import aggregate_seeds, early_stopping_step, window_average
from soar.algo.seeds import derive_seed
from soar.config import SoarConfig, to_yaml
from soar.data.load import load_hard_set
from soar.data.provenance import require_provenance
from soar.data.splits import content_key
from soar.engines.evaluation import Reward
from soar.errors import SoarError
from soar.io import write_atomic
from soar.loops.run_dir import RunDir, load_part
from soar.math.passk import mean_pass_at_k
from soar.types import Problem


def evaluate(cfg: SoarConfig, out: str | Path, method: str, questions: list[Problem] | None = None,
             promoted_run: str | Path | None = None, console: Console | None = None,
             invocation: str = "--config CONFIG.yaml") -> dict[str, Any]:
    """Evaluate one method over ``cfg.evaluation.seeds``; returns (and writes) its ``summary.json``."""
    import torch

    from soar.loops.setup import setup

    console = console or Console()
    require_provenance(cfg.data, cfg.model, invocation, cfg.out_dir)
    hard = load_hard_set(cfg.data)
    promoted = _check_promoted_run(RunDir(promoted_run), cfg, hard.test) if promoted_run is not None else None
    out = Path(out)  # everything is checked before anything is written here
    questions = list(questions or [])
    source = {"method": method, "kind": "promoted" if promoted_run else "train", "questions": len(questions),
              "questions_key": content_key(questions, 0, 0.0) if questions else None,
              "mixing": cfg.evaluation.mixing, "promoted_run": str(promoted_run) if promoted_run else None,
              "promoted_stage": promoted[1]["stage"] if promoted else None}
    _check_same_settings(out, cfg)
    if (out / "source.json").exists() and json.loads((out / "source.json").read_text()) != source:
        raise SoarError(f"{out} holds an evaluation of another source ({(out / 'source.json').read_text().strip()}); "
                        f"use another --out")
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "config.yaml", to_yaml(cfg))
    write_atomic(out / "source.json", json.dumps(source, indent=1) + "\n")

    with setup(cfg) as s:
        trainer, generator, fresh = _policy(cfg, s, promoted, promoted_run, bool(questions), console)
        console.print(f"{method}: {len(questions)} synthetic questions, hard set {len(hard.train)} train / "
                      f"{len(hard.test)} test, seeds {cfg.evaluation.seeds}, into {out}")
        per_seed = []
        for seed in cfg.evaluation.seeds:
            folder = out / f"seed_{seed}"
            if (folder / "summary.json").exists():
                per_seed.append(json.loads((folder / "summary.json").read_text()))
                continue
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            torch.manual_seed(seed)
            context = (cfg, s.tokenizer, generator, s.reward, hard.test, folder, seed)
            if trainer is None:
                summary = _promoted(*context)
            else:
                trainer.restore(fresh, total_steps=cfg.evaluation.max_steps)
                summary = _train_seed(*context, trainer, questions, hard.train, console)
            write_atomic(folder / "summary.json", json.dumps(summary, indent=1) + "\n")
            per_seed.append(summary)
            console.print(f"  seed {seed}: stop at step {summary['stop_step']}  "
                          + "  ".join(f"pass@{k} {v:.3f}" for k, v in summary["early_stopped"].items()))
    result = {**source, "seeds": [s["seed"] for s in per_seed],
              "early_stopped": _aggregate([s["early_stopped"] for s in per_seed]),
              "fixed_step": _aggregate([s["fixed_step"] for s in per_seed])}
    write_atomic(out / "summary.json", json.dumps(result, indent=1) + "\n")
    console.print(f"{method}: " + "  ".join(f"pass@{k} {v['mean']:.3f} ± {v['sd']:.3f}"
                                            for k, v in result["early_stopped"].items())
                  + f"  ({len(per_seed)} seeds)\n  summary {out / 'summary.json'}")
    return result


def warmup_steps(evaluation: Any, has_questions: bool) -> int:
    """A fresh student's learning-rate warm-up: B.7's zero (``curriculum_warmup_steps``) when a curriculum starts with
    synthetic questions, Table 3's ``warmup_steps`` otherwise (Hard-Only, mixed)."""
    if evaluation.mixing == "curriculum" and has_questions:
        return evaluation.curriculum_warmup_steps
    return evaluation.warmup_steps


# Settings that change how an evaluation runs, not what it measures: a resumed evaluation may change them.
EXECUTION_ONLY = ("evaluation.seeds", "compute.threads", "compute.generation_batch_size", "reward.verify_workers",
                  "compute.cuda_graphs", "out_dir")
EXECUTION_ONLY_SECTIONS = ("checkpoint", "judge")  # what a training run keeps, and soar analyze judge


def _check_same_settings(out: Path, cfg: SoarConfig) -> None:
    """Finished seeds are reused only under the same settings (the seed list may grow)."""
    from soar.config import changed_keys, load_config, to_dict

    if not (out / "config.yaml").exists():
        return
    changed = [key for key in changed_keys(to_dict(load_config(file=out / "config.yaml")), to_dict(cfg))
               if key not in EXECUTION_ONLY and key.split(".")[0] not in EXECUTION_ONLY_SECTIONS]
    if changed:
        raise SoarError(f"{out} holds an evaluation with other settings ({', '.join(changed)}); use another --out")


def _check_promoted_run(run: RunDir, cfg: SoarConfig, test: list[Problem]) -> tuple[Path, dict[str, Any]]:
    """PS is scored on the test split of the hard set its run trained on, with the run's model and fine-tuning
    mode; returns the folder of the run's best promoted student (4.3) and its info."""
    from soar.config import changed_keys, to_dict
    from soar.data.load import load_pool
    from soar.data.splits import split_problems

    run.require_checkpoint()
    run_cfg = run.config()
    hint = f"evaluate its promoted student with the run's settings, e.g. --config {run.path / 'config.yaml'}"
    keys = [key for key in changed_keys(to_dict(run_cfg), to_dict(cfg))
            if key == "model.name" or key.startswith(("student.finetune", "student.lora_"))]
    if keys:
        raise SoarError(f"{run.path} trained another student ({', '.join(keys)} differ); {hint}")
    try:  # the split is a function of the problems, the seed and the fraction: recompute the run's
        _, run_test = split_problems(load_pool(run_cfg.data), run_cfg.data.split_seed, run_cfg.data.test_fraction)
    except SoarError as exc:
        raise SoarError(f"cannot load the hard set {run.path} was trained on: {exc}") from None
    if content_key(run_test, 0, 0.0) != content_key(test, 0, 0.0):
        raise SoarError(f"{run.path} was trained on another hard set (its test split differs from this config's); "
                        f"{hint}")
    return run.best_promoted()



def _policy(cfg: SoarConfig, s: Any, promoted: Any, promoted_run: Any, synthetic: bool,
            console: Console) -> tuple[Any, Any, Any]:
    """``(trainer, generator, fresh weights)`` of the evaluated policy: PS, inference only (no trainer), or a fresh
    student trained with the method's warm-up (``synthetic``: the method has synthetic questions)."""
    from soar.engines.base import push_weights
    from soar.engines.generation import build_generator, trainer_generator
    from soar.engines.trainer import PolicyTrainer, load_trained

    if promoted is not None:  # PS: inference only
        # batched LoRA runs keep the promoted student as full weights (every promoted adapter merged in)
        as_saved = dataclasses.replace(cfg.student, finetune="full") if promoted[1].get("weights") == "full" \
            else cfg.student
        model = load_trained(s.model, as_saved, load_part(promoted[0], "student"))
        if cfg.compute.generator == "vllm" and hasattr(model, "merge_and_unload"):
            model = model.merge_and_unload()  # inference only: vLLM takes the adapter merged, as full weights
        generator = build_generator(cfg.compute, model, s.tokenizer, compute_dtype=s.precision)
        push_weights(generator, model, version=1)  # a vllm engine loaded the base model: the promoted one replaces it
        console.print(f"PS: promoted student {promoted[1]['stage']} of {promoted_run} (step {promoted[1]['step']}, "
                      f"hard-train accuracy {promoted[1]['train_accuracy']:.3f})")
        return None, generator, None
    student_cfg = dataclasses.replace(cfg.student, warmup_steps=warmup_steps(cfg.evaluation, synthetic))
    trainer = PolicyTrainer(s.model, student_cfg, cfg.evaluation.max_steps, s.tokenizer.pad_token_id,
                            compute_dtype=s.precision)
    fresh = trainer.snapshot()
    return trainer, trainer_generator(cfg.compute, trainer, s.tokenizer, s.precision), fresh

def _pass_at_k(cfg: SoarConfig, tokenizer: Any, generator: Any, reward: Reward, test: list[Problem],
               seed: int) -> dict[int, float]:
    from soar.engines.evaluation import sampled_correct
    from soar.engines.generation import SamplingParams

    e, s = cfg.evaluation, cfg.student
    sampling = SamplingParams(temperature=s.temperature, top_p=s.top_p, max_new_tokens=s.max_new_tokens, seed=seed)
    scored = sampled_correct(generator, tokenizer, test, reward, n=e.samples_per_problem, sampling=sampling)
    return mean_pass_at_k(scored.correct, n=e.samples_per_problem, ks=[k for k in e.ks if k <= e.samples_per_problem])


def _promoted(cfg: SoarConfig, tokenizer: Any, generator: Any, reward: Reward, test: list[Problem], folder: Path,
              seed: int) -> dict[str, Any]:
    passk = _pass_at_k(cfg, tokenizer, generator, reward, test, derive_seed(seed, "eval_ps"))
    RunDir(folder).append("evals.jsonl", [{"step": 0, "pass_at_k": passk}])
    return {"seed": seed, "stop_step": 0, "early_stopped": _keys(passk), "fixed_step": _keys(passk)}


def _train_seed(cfg: SoarConfig, tokenizer: Any, generator: Any, reward: Reward, test: list[Problem], folder: Path,
                seed: int, trainer: Any, questions: list[Problem], hard_train: list[Problem],
                console: Console) -> dict[str, Any]:
    from soar.students.inner import one_student, rloo_step

    e, size = cfg.evaluation, cfg.student.batch_size
    pools = {"synthetic": questions, "hard": hard_train, "mixed": questions + hard_train}
    orders = {name: random.Random(f"{seed}:{name}").sample(range(len(pool)), len(pool)) for name, pool in pools.items()}
    drawn = dict.fromkeys(pools, 0)
    rewards, evals = [], {}
    started = time.perf_counter()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as progress:
        task = progress.add_task(f"seed {seed}", total=e.max_steps)
        for step in range(e.max_steps + 1):
            if step % e.eval_every == 0 or step == e.max_steps:
                evals[step] = _pass_at_k(cfg, tokenizer, generator, reward, test, derive_seed(seed, "eval_test", step))
                RunDir(folder).append("evals.jsonl", [{"step": step, "pass_at_k": evals[step]}])
            if step == e.max_steps:
                break
            if e.mixing == "mixed":
                phase = "mixed"
            else:
                phase = "synthetic" if questions and step < e.synthetic_warmup_steps else "hard"
            pool, order = pools[phase], orders[phase]
            picks = [pool[order[(drawn[phase] + i) % len(order)]] for i in range(size)]
            drawn[phase] += size
            (done,) = rloo_step(one_student(trainer), generator, tokenizer, reward, [picks], cfg.student,
                                derive_seed(seed, "eval_train", step))
            rewards.append(done.reward)
            RunDir(folder).append("train.jsonl", [{"step": step, "reward": done.reward, "phase": phase}])
            progress.advance(task)
    start = e.synthetic_warmup_steps if questions and e.mixing == "curriculum" else 0
    start = start if start < len(rewards) else 0  # no hard phase: read the whole curve
    stop = start + early_stopping_step(rewards[start:], e.smoothing_window, e.slope_threshold).step
    return {"seed": seed, "stop_step": stop, "early_stopped": _keys(window_average(evals, stop, e.average_window)),
            "fixed_step": _keys(window_average(evals, e.fixed_step, 0)),
            "seconds": round(time.perf_counter() - started, 1)}


def _keys(passk: dict[int, float]) -> dict[str, float]:
    """pass@k with text keys, as JSON stores them (a seed read back from disk looks the same)."""
    return {str(k): v for k, v in passk.items()}


def _aggregate(rows: list[dict[Any, float]]) -> dict[str, dict[str, float]]:
    out = {}
    for k in rows[0]:
        agg = aggregate_seeds([row[k] for row in rows])
        out[k] = {"mean": agg.mean, "sd": agg.sd, "n": agg.n}
    return out
