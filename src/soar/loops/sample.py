"""``soar sample``: questions from a teacher, with the training prompt and format filtering (Section 4.5).

The teacher is the base model (Base-T) or the teacher of a ``soar train`` run
directory, from its last checkpoint (Grounded-T, or Intrinsic-T when the run
used ``teacher.reward: learnability``).  Sampling is exactly the loop's
(``soar.loops.teacher.sample_teacher``: the B.1 prompt, the run's
``teacher.sampling`` mode, the B.2 parser, the same rejection rules); the
accepted pairs are written as a problem file that ``soar evaluate
--questions`` reads.

With a run directory, its saved config is used (model, teacher settings,
reward), so the teacher is sampled as it was trained; ``--preset`` /
``--config`` and overrides apply to Base-T.

Grounded-T is the teacher of the run's last finished step, or of the step
``--step N`` names (the paper samples the teacher where its rewards plateau,
B.7: step 200 on MATH, 170 on HARP): a run keeps the teacher's weights every
``checkpoint.teacher_every`` steps under ``teachers/``.  Steps count from 1
there, as in the paper (``--step 170`` is the teacher after 170 outer steps).
With ``compute.generator: vllm`` the engine loads the base model and the
trained teacher's weights are pushed into it before sampling (a fully
fine-tuned teacher; a LoRA teacher is sampled with ``hf``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from rich.console import Console

from soar.algo.seeds import derive_seed
from soar.config import SoarConfig
from soar.errors import ConfigError, SoarError
from soar.io import write_atomic
from soar.loops.run_dir import RunDir


def sample_questions(cfg: SoarConfig, count: int, out: str | Path, teacher_run: str | Path | None = None,
                     seed: int | None = None, console: Console | None = None,
                     teacher_step: int | None = None) -> dict[str, float]:
    """Write ``count`` accepted QA pairs to ``out`` (JSONL); returns acceptance rate, attempts, seconds."""
    import torch

    from soar.engines.base import push_weights
    from soar.engines.generation import build_generator
    from soar.engines.trainer import load_trained
    from soar.loops.run_dir import load_part
    from soar.loops.setup import setup
    from soar.loops.teacher import AcceptanceError, sample_teacher

    console = console or Console()
    if count < 1:
        raise SoarError(f"--count must be at least 1, got {count}")
    checkpoint = RunDir(teacher_run).require_checkpoint(console.print) if teacher_run is not None else None
    weights_file, step_label = None, checkpoint.name if checkpoint is not None else ""
    if checkpoint is not None and teacher_step is not None:
        weights_file, step_label = _teacher_at(RunDir(teacher_run), teacher_step)
    if checkpoint is not None and cfg.compute.generator == "vllm" and cfg.teacher.finetune != "full":
        raise ConfigError("soar sample --teacher with compute.generator: vllm pushes a fully fine-tuned teacher's "
                          "weights; sample a LoRA teacher with compute.generator: hf")
    seed = cfg.compute.seed if seed is None else seed
    with setup(cfg) as s:
        model, label = s.model, "Base-T"
        if checkpoint is not None:
            if weights_file is not None:
                weights = torch.load(weights_file, weights_only=True, map_location="cpu")
            else:
                weights = load_part(checkpoint, "teacher")["weights"]
            model = load_trained(model, cfg.teacher, weights)
            label = f"{'Intrinsic' if cfg.teacher.reward == 'learnability' else 'Grounded'}-T ({step_label})"
        generator = build_generator(cfg.compute, model, s.tokenizer, compute_dtype=s.precision)
        if checkpoint is not None:  # vllm loaded the base model from disk; hf samples ``model`` itself (nothing copied)
            push_weights(generator, model, version=1)
        started = time.perf_counter()
        with console.status(f"sampling {count} questions from {label}"):
            try:
                sample = sample_teacher(generator, s.tokenizer, cfg.teacher, count, derive_seed(seed, "sample"),
                                        s.verifier.parseable_many)
            except AcceptanceError as exc:
                raise AcceptanceError(f"{exc} Raise it with --teacher.max_attempts_factor N.") from None
    seconds = time.perf_counter() - started
    records = [dict(r.pair.to_problem(f"{i:05d}").to_dict(), teacher=label) for i, r in enumerate(sample.rollouts)]
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    console.print(f"{label}: {len(records)} questions in {seconds:.0f} s, acceptance {sample.acceptance_rate:.0%} "
                  f"of {sample.attempts} drafts; rejections {sample.rejections or 'none'}\n  questions {path}")
    return {"acceptance_rate": sample.acceptance_rate, "attempts": sample.attempts, "seconds": seconds}


def _teacher_at(run: RunDir, step: int) -> tuple[Path | None, str]:
    """The weights file of the teacher after outer step ``step`` (1-based) and its label; None: the latest
    checkpoint's.  A step that was not kept is an error listing the ones that were."""
    latest = run.completed_step() + 1
    if step == latest:
        return None, f"step {step}"
    file = run.teachers / f"step_{step - 1:04d}.pt"
    if file.exists():
        return file, f"step {step}"
    kept = [s + 1 for s in run.teacher_steps()] + [latest]
    raise SoarError(f"{run.path} kept no teacher after step {step}; kept: {', '.join(map(str, sorted(set(kept))))} "
                    f"(checkpoint.teacher_every)")
