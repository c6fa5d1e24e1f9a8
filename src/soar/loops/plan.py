"""``soar plan``: the work, memory and device-hours of a config, computed without loading a model.

For one outer step, the whole run and one evaluation run it counts what
Algorithm 1 and B.6 do (teacher drafts, datasets, student jobs, sampled and
trained tokens, greedy evaluation tokens), sizes the memory each device needs
for the teacher and for one student (weights, gradients, AdamW moments, the KL
reference copy, the bf16 copy generation runs on, the KV cache of one
generation batch; activations are not counted), the checkpoint on disk, and
turns token counts into device-hours with a throughput table.

Token counts are upper bounds scaled by ``length_fraction`` (the share of
``max_new_tokens`` a reply uses on average: an assumption, printed).  Teacher
drafts follow from an assumed acceptance rate.  Throughput comes from a
``scripts/gpu_check.sh`` JSON given with ``--measured`` (soar's decoder at the
student shape, the RLOO step of the students' fine-tuning mode), else from
:data:`THROUGHPUT`: CPU figures measured here by ``benchmarks/engines.py``,
GPU figures marked *assumed*; either is scaled by parameter count to the
config's model, and each figure can be overridden (``--gen-tok-s``,
``--train-tok-s``).  On GPUs the teacher holds
a GPU of its own and the other ``devices - 1`` are student workers (default
``devices``: one per student plus the teacher's, so one round of students per
step); the step's time counts the rounds of students each worker trains one
after another, and the teacher's generation and update while the students wait
(as in Algorithm 1: the phases are sequential).

Model shapes come from a local ``config.json`` (a directory, or the cached
conversion of a GGUF model) or from :data:`KNOWN_MODELS` (no network).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from soar.config import SoarConfig
from soar.errors import ConfigError
from soar.io import format_bytes

PAPER_GPU_HOURS = (1536, 1920)
"""B.9: 4 nodes x 8 GPUs for 48-60 hours per SOAR training run."""
PROMPT_TOKENS = 160
"""Prompt length assumed for KV-cache sizing (the B.1 student prompt is ~110 tokens plus the question)."""


@dataclass(frozen=True)
class ModelShape:
    """What memory and FLOPs depend on."""

    layers: int
    hidden: int
    intermediate: int
    heads: int
    kv_heads: int
    vocab: int
    tied: bool

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    @property
    def params(self) -> int:
        h, kv = self.hidden, self.kv_heads * self.head_dim
        layer = 2 * h * h + 2 * h * kv + 3 * h * self.intermediate + 2 * h
        return self.vocab * h * (1 if self.tied else 2) + self.layers * layer + h

    def lora_params(self, rank: int) -> int:
        """A LoRA adapter of ``rank`` over every linear layer of the blocks."""
        h, kv, i = self.hidden, self.kv_heads * self.head_dim, self.intermediate
        shapes = [(h, h), (h, kv), (h, kv), (h, h), (h, i), (h, i), (i, h)]
        return self.layers * sum(rank * (a + b) for a, b in shapes)

    def kv_bytes_per_token(self, dtype_bytes: int) -> int:
        return 2 * self.layers * self.kv_heads * self.head_dim * dtype_bytes


KNOWN_MODELS = {
    "meta-llama/Llama-3.2-3B-Instruct": ModelShape(28, 3072, 8192, 24, 8, 128256, True),
    "meta-llama/Llama-3.2-1B-Instruct": ModelShape(16, 2048, 8192, 32, 8, 128256, True),
    "smollm2-135m-instruct": ModelShape(30, 576, 1536, 9, 3, 49152, True),
    "HuggingFaceTB/SmolLM2-135M-Instruct": ModelShape(30, 576, 1536, 9, 3, 49152, True),
}


@dataclass(frozen=True)
class Throughput:
    gen_tok_s: float
    """Sampled tokens per second per device (batched decoding)."""
    train_tok_s: float
    """RLOO-trained tokens per second per device (policy forward + backward + reference forward)."""
    source: str


THROUGHPUT = {
    # Measured on a 2-core AMD EPYC (AVX2, no bf16 units), fp32, SmolLM2-135M: generation by benchmarks/engines.py
    # (batch 64, 64 new tokens: 155 tok/s); training, one RLOO step of 8 rows x 64 tokens with the KL reference
    # (47 tok/s).  The tiny preset's small batches run below these: its measured outer step took 279 s where the
    # plan says ~100 s (prefill of ~125-token prompts for 32-token replies, per-call overheads).
    ("cpu", "135m"): Throughput(155.0, 47.0, "measured (2-core AVX2 CPU, fp32, batch 64; small batches run slower)"),
    # Assumed until measured on the device: soar's hf engine, bf16 compute, 3B model, batch 64.
    ("gpu", "3b"): Throughput(3000.0, 8000.0, "assumed (no GPU measurement yet)"),
}


def model_shape(cfg: SoarConfig) -> ModelShape:
    """The config's model shape: a local config.json, the converted GGUF copy, or the known table."""
    name = cfg.model.name
    folders = [Path(name).expanduser()]
    if name == "smollm2-135m-instruct" or name.endswith(".gguf"):
        folders += sorted(Path(cfg.model.cache_dir).expanduser().glob(f"{Path(name).stem}*"))
    for folder in folders:
        config = folder / "config.json"
        if config.is_file():
            c = json.loads(config.read_text())
            try:
                return ModelShape(c["num_hidden_layers"], c["hidden_size"], c["intermediate_size"],
                                  c["num_attention_heads"], c.get("num_key_value_heads", c["num_attention_heads"]),
                                  c["vocab_size"], bool(c.get("tie_word_embeddings", False)))
            except KeyError:
                break
    if name in KNOWN_MODELS:
        return KNOWN_MODELS[name]
    raise ConfigError(f"soar plan does not know the shape of model.name {name!r}: give a local model directory "
                      f"(with config.json) or one of {', '.join(KNOWN_MODELS)}")


def _bytes(dtype: str | None) -> int:
    return {"float32": 4, "bfloat16": 2, "float16": 2}.get(dtype or "float32", 4)


def _snapshots(cfg: SoarConfig) -> str:
    """How many teacher snapshots a full run keeps (``checkpoint.teacher_every``, ``checkpoint.teacher_keep``)."""
    c = cfg.checkpoint
    made = cfg.outer_steps // c.teacher_every if c.teacher_every else 0
    kept = min(made, c.teacher_keep) if c.teacher_keep else made
    return f"{kept} of {made} kept" + (f" (checkpoint.teacher_keep {c.teacher_keep})" if c.teacher_keep else "")


def _device_kind(cfg: SoarConfig) -> str:
    return "cpu" if cfg.model.device == "cpu" else "gpu"


@dataclass(frozen=True)
class Measured:
    """Throughput read from a ``scripts/gpu_check.sh`` JSON (``benchmarks/gpu_check.py``)."""

    throughput: Throughput
    params: int
    """Parameters of the model it was measured on (figures are scaled from it to the config's model)."""


GPU_CHECK_PARAMS = {"3b": KNOWN_MODELS["meta-llama/Llama-3.2-3B-Instruct"].params}
"""Parameters of gpu_check's ``--shape`` models, for JSON written before it recorded ``info.params``."""


def measured_throughput(path: str | Path, finetune: str, memory_options: bool = False,
                        cuda_graphs: bool = True) -> Measured:
    """The sampled and trained tok/s of a gpu_check JSON: soar's decoder at the student shape (the
    bulk of a step's tokens; ``cuda_graphs``: the CUDA-graph decoder's row where there is one, else the eager
    loop's, as the run would decode) and the RLOO step of the students' fine-tuning mode (``full`` or ``lora``;
    ``memory_options``: the row measured with gradient checkpointing and chunked log-probs where there is one)."""
    file = Path(path)
    try:
        data = json.loads(file.read_text())
    except FileNotFoundError:
        raise ConfigError(f"--measured: no such file: {file}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"--measured: {file} is not a gpu_check JSON file ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("info"), dict) or not isinstance(data.get("rows"), list):
        raise ConfigError(f"--measured: {file} is not a gpu_check JSON file (no 'info' and 'rows')")
    info, rows = data["info"], [r for r in data["rows"] if isinstance(r, dict) and "error" not in r]

    def rate(row: dict[str, Any]) -> float | None:
        value = row.get("tokens_per_s")
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 else None

    gen, engine = [], "soar decode"
    eager = ["soar decode, eager", "soar decode"]  # "soar decode": checks from before CUDA graphs
    for engine in (["soar decode, CUDA graphs", *eager] if cuda_graphs else eager):
        gen = [rate(r) for r in rows if r.get("section") == "generation" and r.get("engine") == engine
               and r.get("shape") == "student" and rate(r)]
        if gen:
            break
    train, mode = [], finetune
    for mode in ([f"{finetune}+memory", finetune] if memory_options else [finetune]):
        train = [rate(r) for r in rows if r.get("section") == "training" and r.get("mode") == mode and rate(r)]
        if train:
            break
    if not gen or not train:
        missing = "'soar decode' student-shape generation row" if not gen else f"'{finetune}' training row"
        raise ConfigError(f"--measured: {file} has no {missing} with tokens_per_s (rerun scripts/gpu_check.sh "
                          f"with the generation and training sections)")
    params = info.get("params", GPU_CHECK_PARAMS.get(str(info.get("shape"))))
    if not isinstance(params, int) or params <= 0:
        raise ConfigError(f"--measured: {file} does not say which model it measured (info.params or info.shape "
                          f"{', '.join(GPU_CHECK_PARAMS)})")
    source = f"measured on {info.get('device') or 'an unnamed device'} ({file.name}: {engine}, {mode} RLOO step)"
    return Measured(Throughput(max(gen), max(train), source), params)


def throughput(cfg: SoarConfig, shape: ModelShape, gen: float | None = None, train: float | None = None,
               measured: Measured | None = None) -> Throughput:
    """The measured figures, else the table's for this device kind, scaled by model size from the model they
    were measured on; command-line figures win."""
    kind = _device_kind(cfg)
    reference, params = (("cpu", "135m"), 134_515_008) if kind == "cpu" else (("gpu", "3b"), 3_212_749_824)
    base = THROUGHPUT[reference]
    if measured is not None:
        base, params = measured.throughput, measured.params
    scale = params / shape.params
    source = base.source if abs(scale - 1) < 0.05 else f"{base.source}, scaled by model size x{scale:.2f}"
    if gen is not None or train is not None:
        source = "given on the command line" + ("" if gen is not None and train is not None else f"; else {source}")
    return Throughput(gen if gen is not None else base.gen_tok_s * scale,
                      train if train is not None else base.train_tok_s * scale, source)


def hard_set_size(cfg: SoarConfig) -> tuple[int | None, str]:
    """Problems in the hard set, from its filter provenance when there is one (no model, no download)."""
    from soar.data.provenance import provenance_file

    file = provenance_file(cfg.data.source)
    if file is not None and file.is_file():
        try:
            return int(json.loads(file.read_text())["kept"]), f"from {file}"
        except (ValueError, KeyError):
            pass
    return None, "unknown until soar filter has run"


def plan(cfg: SoarConfig, devices: int | None = None, length_fraction: float = 0.5, acceptance: float | None = None,
         gen_tok_s: float | None = None, train_tok_s: float | None = None,
         hard_problems: int | None = None, measured: Measured | None = None) -> dict[str, Any]:
    """Every figure ``soar plan`` prints, as a dict (see the module doc).

    Long on purpose (~90 lines): one piece of accounting (work, time, memory, placement, checkpoint sizes) whose
    figures feed each other; kept in one body so that each formula sits beside the numbers it uses."""
    if not 0 < length_fraction <= 1:
        raise ConfigError(f"--length-fraction must be in (0, 1], got {length_fraction}")
    t, s, i, e = cfg.teacher, cfg.student, cfg.inner, cfg.evaluation
    B, g, n, r, M = t.batch_size, t.group_size, i.dataset_size, i.repeats, i.reward_questions
    datasets, students = B * g, B * g * r
    acceptance = acceptance if acceptance is not None else (0.5 if t.sampling == "rejection" else 0.4)
    if not 0 < acceptance <= 1:
        raise ConfigError(f"--acceptance must be in (0, 1], got {acceptance}")
    shape = model_shape(cfg)
    speed = throughput(cfg, shape, gen_tok_s, train_tok_s, measured)
    gpu = _device_kind(cfg) == "gpu"
    devices = devices or (students + 1 if gpu else 1)
    if devices < 1:
        raise ConfigError(f"--devices must be at least 1, got {devices}")
    # on GPUs the teacher holds one of its own (no GPU fits a 3B teacher and student together) and the other
    # devices are student workers; one device (a CPU) runs everything
    workers = devices - 1 if gpu and devices > 1 else devices
    rounds = math.ceil(students / workers)  # students each worker trains one after another in a step
    hard, hard_source = (hard_problems, "given") if hard_problems else hard_set_size(cfg)
    train_split = None if hard is None else hard - round(hard * cfg.data.test_fraction)
    test_split = None if hard is None else hard - train_split

    def step_work(inner_steps: int) -> dict[str, float]:
        drafts = math.ceil(datasets * n / acceptance)
        rollouts = students * inner_steps * s.batch_size * s.group_size
        return {
            "teacher_drafts": drafts,
            "teacher_gen_tokens": drafts * t.max_new_tokens * length_fraction,
            "teacher_train_tokens": datasets * n * t.max_new_tokens * length_fraction,
            "student_rollouts": rollouts,
            "student_gen_tokens": rollouts * s.max_new_tokens * length_fraction,
            "student_train_tokens": rollouts * s.max_new_tokens * length_fraction,
            "eval_tokens": (students + 1) * M * s.max_new_tokens * length_fraction,
        }

    def hours(work: dict[str, float]) -> dict[str, float]:
        student_s = rounds * ((work["student_gen_tokens"] + work["eval_tokens"]) / students / speed.gen_tok_s
                              + work["student_train_tokens"] / students / speed.train_tok_s)
        teacher_s = work["teacher_gen_tokens"] / speed.gen_tok_s + work["teacher_train_tokens"] / speed.train_tok_s
        wall = student_s + teacher_s
        return {"wall_s": wall, "device_hours": wall * devices / 3600}

    first, longest = step_work(i.steps), step_work(i.max_steps)
    run_steps = cfg.outer_steps
    run = {key: first[key] * run_steps for key in first}  # no promotion: inner.steps every step
    run_time = hours(first)
    run_hours = {"wall_s": run_time["wall_s"] * run_steps, "device_hours": run_time["device_hours"] * run_steps}

    evals = e.max_steps // e.eval_every + 1
    eval_rollouts = e.max_steps * s.batch_size * s.group_size
    eval_work = {"student_rollouts": eval_rollouts,
                 "train_tokens": eval_rollouts * s.max_new_tokens * length_fraction,
                 "test_tokens": None if test_split is None else
                 evals * test_split * e.samples_per_problem * s.max_new_tokens * length_fraction}
    eval_s = (eval_work["train_tokens"] / speed.gen_tok_s + eval_work["train_tokens"] / speed.train_tok_s
              + (eval_work["test_tokens"] or 0) / speed.gen_tok_s)

    w = _bytes(cfg.model.dtype)
    compute = _bytes(cfg.model.compute_dtype) if cfg.model.compute_dtype not in (None, "auto") else w
    if cfg.model.compute_dtype == "auto":
        compute = 2 if _device_kind(cfg) == "gpu" else w
    memory = {role: _device_memory(shape, policy, w, compute, cfg.compute.generation_batch_size)
              for role, policy in (("teacher", t), ("student", s))}
    student_trainable = shape.lora_params(s.lora_rank) if s.finetune == "lora" else shape.params
    teacher_trainable = shape.lora_params(t.lora_rank) if t.finetune == "lora" else shape.params
    host_kept = (r + 1) * student_trainable * w  # students kept for promotion (PromotionCandidates), on the host
    # a sequential worker keeps its baseline's trainable weights on the host to restore each student from;
    # batched LoRA merges promotions into the base, which is the baseline
    baseline_copy = student_trainable * w if cfg.compute.student_batch == 1 else 0
    student_peak = memory["student"]["total"]
    placements = [placement(students, gpus, memory["teacher"]["total"], student_peak, own)
                  for gpus in sorted({devices, students, students + 1}) for own in (True, False)]
    checkpoint = {"teacher": 3 * teacher_trainable * w, "students": student_trainable * w}
    return {
        "shape": shape, "params": shape.params, "speed": speed, "devices": devices, "acceptance": acceptance,
        "length_fraction": length_fraction, "B": B, "g": g, "n": n, "r": r, "M": M, "datasets": datasets,
        "students": students, "workers": workers, "rounds": rounds, "step": first, "step_longest": longest, "step_time": run_time, "run": run,
        "run_time": run_hours, "outer_steps": run_steps, "evaluation": eval_work, "evaluation_hours": eval_s / 3600,
        "hard": hard, "hard_source": hard_source, "train_split": train_split, "test_split": test_split,
        "memory": memory, "host_kept_students": host_kept, "checkpoint": checkpoint,
        "baseline_copy": baseline_copy, "student_peak": student_peak, "placements": placements,
        "teacher_snapshot": teacher_trainable * w,
    }


def _device_memory(shape: ModelShape, policy: Any, w: int, compute: int, generation_rows: int) -> dict[str, int]:
    """The bytes one device holds for a policy (teacher or student) at its peak: what stays all step (weights,
    AdamW moments, the KL reference, the generation copy) plus the larger of the two phases (generation: the KV
    cache of one batch; training: gradients, activations and logits of one micro-batch).

    Activations, per micro-batch of ``m = policy.micro_batch_size`` rows of ``T = PROMPT_TOKENS + max_new_tokens``
    tokens, counted from the shapes (what autocast's backward keeps): a decoder layer saves per token
    ``w * 2h + c * (8h + 3kv + 4i)`` bytes (the two norms' inputs in the weights' dtype ``w``; in the matmul
    dtype ``c``: the q/k/v/gate/up inputs, q/k/v and the rotated q/k, the attention output, gate, up, SiLU and
    product), and without ``gradient_checkpointing`` the weights' matmul-dtype copies (``P * c``) stay alive for
    the backward too.  With ``gradient_checkpointing`` only each layer's input is kept (``L * m * T * h * w``)
    plus one layer recomputed.  Logits: ``m * C * V * (c + 8)`` bytes for ``C`` tokens at once (the matmul-dtype
    logits, their float32 copy and its gradient), ``C = logprob_chunk`` or the whole reply.
    Checked against the two peaks measured on an H200 (``docs/gpu``: a 3B full fine-tune, micro-batch 4, 200 +
    1,024 tokens): 63.5 GiB counted where 69.0 were measured with checkpointing and chunks of 256, 89.3 where
    93.5 without; so :func:`placement` asks for :data:`HEADROOM` on top (allocator slack, temporaries)."""
    trainable = shape.lora_params(policy.lora_rank) if policy.finetune == "lora" else shape.params
    m, reply = policy.micro_batch_size, policy.max_new_tokens
    tokens, kv = PROMPT_TOKENS + reply, shape.kv_heads * shape.head_dim
    layer_token = w * 2 * shape.hidden + compute * (8 * shape.hidden + 3 * kv + 4 * shape.intermediate)
    casts = shape.params * compute if compute != w else 0  # the weights' matmul-dtype copies autocast keeps
    if policy.gradient_checkpointing:
        activations = (shape.layers * m * tokens * shape.hidden * w + m * tokens * layer_token
                       + casts // shape.layers)
    else:
        activations = shape.layers * m * tokens * layer_token + casts
    chunk = min(policy.logprob_chunk or reply, reply)
    reference = _bytes(policy.reference_dtype) if policy.reference_dtype else w
    kept = {"weights": shape.params * w, "adamw": 2 * trainable * w,
            "kl_reference": shape.params * reference if policy.finetune == "full" and policy.kl_coef else 0,
            "generation_copy": shape.params * compute if compute != w else 0}
    generation = {"kv_cache": generation_rows * tokens * shape.kv_bytes_per_token(compute)}
    training = {"gradients": trainable * w, "activations": activations,
                "logits": m * chunk * shape.vocab * (compute + 8)}
    peak = sum(kept.values()) + max(sum(generation.values()), sum(training.values()))
    return {**kept, **generation, **training, "kept": sum(kept.values()),
            "generation_phase": sum(generation.values()), "training_phase": sum(training.values()), "total": peak}


GPU_MEMORY = {"H100 80 GB": 81_559 * 2**20, "H200 141 GB": 143_771 * 2**20}
"""What ``nvidia-smi`` reports as each GPU's memory (MiB): 79.6 GiB and 140.4 GiB."""
HEADROOM = 1.10
"""A placement fits a GPU when its counted peak times this is within the GPU's memory: the count came 4-8% under
the peaks measured on an H200 (:func:`_device_memory`)."""


def placement(students: int, gpus: int, teacher: int, student: int, own: bool) -> dict[str, Any]:
    """Where the teacher and the student workers go on ``gpus`` one-GPU slots, and the peak bytes per GPU.

    ``own``: the teacher holds a GPU of its own (``compute.teacher_gpus 1``) and ``gpus - 1`` workers train the
    students; otherwise every GPU has a worker and one of them also holds the teacher (its weights, optimiser
    state and reference stay there through the student phase)."""
    workers = gpus - 1 if own else gpus
    peak = max(teacher, student) if own else teacher + student
    return {"gpus": gpus, "teacher_gpus": 1 if own else 0, "workers": workers,
            "rounds": math.ceil(students / workers) if workers else None, "peak": peak if workers else None,
            "fits": {name: workers > 0 and peak * HEADROOM <= size for name, size in GPU_MEMORY.items()}}


def _n(x: float | None) -> str:
    if x is None:
        return "?"
    for unit, size in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= size:
            return f"{x / size:.2f}{unit}"
    return f"{x:.0f}"


def render_plan(cfg: SoarConfig, p: dict[str, Any]) -> str:
    """The plan as the lines ``soar plan`` prints."""
    s, lines = p["step"], []
    add = lines.append
    add(f"model {cfg.model.name}: {_n(p['params'])} parameters; weights {cfg.model.dtype}, matmuls "
        f"{cfg.model.compute_dtype or cfg.model.dtype}; device {cfg.model.device}")
    add(f"hard set {cfg.data.source}: {p['hard'] if p['hard'] else '?'} problems ({p['hard_source']}); "
        f"train {p['train_split'] if p['train_split'] is not None else '?'} / test "
        f"{p['test_split'] if p['test_split'] is not None else '?'}")
    add("")
    add(f"one outer step: B={p['B']} groups x g={p['g']} datasets x n={p['n']} questions; r={p['r']} students each")
    add(f"  students per outer step: {p['students']}   ({p['datasets']} datasets x r={p['r']})")
    add(f"  teacher: {_n(s['teacher_drafts'])} drafts (acceptance {p['acceptance']:.0%} assumed) -> "
        f"{_n(s['teacher_gen_tokens'])} tokens sampled, {_n(s['teacher_train_tokens'])} trained")
    add(f"  students: {_n(s['student_rollouts'])} rollouts ({cfg.inner.steps} inner steps x {cfg.student.batch_size} "
        f"questions x {cfg.student.group_size} samples each), {_n(s['student_gen_tokens'])} tokens sampled and trained "
        f"({_n(p['step_longest']['student_gen_tokens'])} at {cfg.inner.max_steps} inner steps)")
    add(f"  Q_R greedy evaluation: {p['students'] + 1} students x M={p['M']} -> {_n(s['eval_tokens'])} tokens")
    add(f"  token counts assume replies use {p['length_fraction']:.0%} of max_new_tokens (--length-fraction)")
    add(f"whole run ({p['outer_steps']} outer steps, no promotion): {_n(p['run']['student_rollouts'])} student "
        f"rollouts, {_n(p['run']['student_gen_tokens'] + p['run']['teacher_gen_tokens'])} tokens sampled")
    ev = p["evaluation"]
    add(f"one evaluation run ({cfg.evaluation.max_steps} steps, per seed): {_n(ev['student_rollouts'])} rollouts, "
        f"{_n(ev['train_tokens'])} train tokens, {_n(ev['test_tokens'])} test-sampling tokens")
    add("")
    add("memory per device at its peak (kept all step + the larger phase; activations estimated from the shapes):")
    for role, policy in (("teacher", cfg.teacher), ("student", cfg.student)):
        m = p["memory"][role]
        name = lambda k: k.replace("_", " ") + (f" ({policy.reference_dtype})" if k == "kl_reference"  # noqa: E731
                                                and policy.reference_dtype else "")
        kept = ", ".join(f"{name(k)} {format_bytes(m[k])}" for k in ("weights", "adamw", "kl_reference",
                                                                    "generation_copy") if m[k])
        train = ", ".join(f"{k} {format_bytes(m[k])}" for k in ("gradients", "activations", "logits"))
        add(f"  {role:<8} {format_bytes(m['total']):>10}  = kept {format_bytes(m['kept'])} ({kept})")
        add(f"  {'':<8} {'':>10}    + training {format_bytes(m['training_phase'])} ({train}; micro-batch "
            f"{policy.micro_batch_size}, checkpointing {'on' if policy.gradient_checkpointing else 'off'}, "
            f"log-prob chunk {policy.logprob_chunk or 'off'})")
        add(f"  {'':<8} {'':>10}    or generation {format_bytes(m['generation_phase'])} (kv cache of "
            f"{cfg.compute.generation_batch_size} rows)")
    add(f"  host memory for students kept for promotion (r + 1 copies): {format_bytes(p['host_kept_students'])}, "
        f"and each worker's baseline copy: {format_bytes(p['baseline_copy'])}")
    if _device_kind(cfg) == "gpu":
        add(f"  a student worker's peak: {format_bytes(p['student_peak'])}")
        add("placement (compute.teacher_gpus: 1 = the teacher on a GPU of its own, 0 = it shares one with a worker):")
        add(f"  {'GPUs':>4}  {'teacher_gpus':>12}  {'workers':>7}  {'rounds':>6}  {'peak per GPU':>12}  "
            + "  ".join(f"{name:>11}" for name in GPU_MEMORY))
        for row in p["placements"]:
            add(f"  {row['gpus']:>4}  {row['teacher_gpus']:>12}  {row['workers']:>7}  {row['rounds'] or '-':>6}  "
                f"{format_bytes(row['peak']) if row['peak'] else '-':>12}  "
                + "  ".join(f"{'fits' if row['fits'][name] else 'no':>11}" for name in GPU_MEMORY))
        add(f"  rounds: students each worker trains one after another in a step (the student phase's length); "
            f"fits: the peak plus {HEADROOM - 1:.0%} headroom")
    add(f"checkpoint on disk (written every {cfg.checkpoint.every} steps, checkpoint.every): teacher "
        f"{format_bytes(p['checkpoint']['teacher'])} (weights + AdamW), students "
        f"{format_bytes(p['checkpoint']['students'])}; each kept teacher snapshot {format_bytes(p['teacher_snapshot'])} "
        f"(every {cfg.checkpoint.teacher_every} steps, {_snapshots(cfg)}), each promoted student "
        f"{format_bytes(p['checkpoint']['students'])}")
    add("")
    speed = p["speed"]
    kind = "GPU" if _device_kind(cfg) == "gpu" else "CPU"
    add(f"throughput per device: {speed.gen_tok_s:,.0f} sampled tok/s, {speed.train_tok_s:,.0f} trained tok/s "
        f"({speed.source})")
    if "assumed" in speed.source and _device_kind(cfg) == "gpu":
        add("  measure them: bash scripts/gpu_check.sh on one GPU, then soar plan --measured gpu_check.json "
            "(one H200 run: docs/gpu/)")
    if _device_kind(cfg) == "gpu" and p["devices"] > 1:
        add(f"devices: {p['devices']} GPUs (--devices): the teacher on one of its own, {p['workers']} student workers, "
            f"{p['rounds']} round{'s' if p['rounds'] > 1 else ''} of students per step")
    else:
        add(f"devices: {p['devices']} (the students one after another: {p['rounds']} rounds, the teacher phases "
            f"on the same device)")
    step_h = p["step_time"]["wall_s"] / 3600
    hours = p["run_time"]["device_hours"]
    add(f"estimate ({p['rounds']} round{'s' if p['rounds'] > 1 else ''} of students): {step_h * 60:.1f} min per outer step; whole run {p['run_time']['wall_s'] / 3600:.1f} h wall "
        f"= {hours:,.0f} {kind}-hours" if hours >= 10 else
        f"estimate ({p['rounds']} rounds of students): {step_h * 60:.1f} min per outer step; whole run "
        f"{p['run_time']['wall_s'] / 3600:.2f} h wall "
        f"= {hours:.2f} {kind}-hours")
    add(f"one evaluation run (per seed): {p['evaluation_hours']:.1f} {kind}-hours")
    if cfg.model.name == "meta-llama/Llama-3.2-3B-Instruct" and _device_kind(cfg) == "gpu":
        low, high = PAPER_GPU_HOURS
        add(f"paper (B.9): 4 nodes x 8 GPUs for 48-60 h = {low:,}-{high:,} GPU-hours per training run")
    return "\n".join(lines)
