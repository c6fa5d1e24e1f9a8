"""Hard-set provenance: what ``soar filter`` measured, kept beside the hard set, and checked before training.

A hard set is "hard" only for the model, k, prompt and reply budget it was
filtered with (Sections 3, 4.1, B.5).  ``soar filter`` writes its settings, the
per-problem success counts, a hash of the student prompt and a hash of the
kept problems into ``stats.json`` beside ``hard.jsonl`` (any other hard-set
file ``X.jsonl`` carries its own as ``X.stats.json``; the bundled
``arithmetic-hard`` ships one).  ``soar train`` and ``soar evaluate`` with
``data.fail_at_k`` set call :func:`require_provenance` before they load a
model or write a file: a set without provenance, filtered for another model,
with a smaller k or another prompt, or edited since (its content no longer
hashes to what the filter kept) is refused with one line that names the
``soar filter`` command to run.  ``data.allow_unfiltered: true`` accepts such
a set on purpose.

Not compared: the filter's dtype and matmul precision, temperature and reply
budget (they are recorded; a filter at another precision of the same model is
still that model's fail@k set, as the bundled set, filtered with bf16 matmuls,
is used on CPUs without bf16 units).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from soar.config import DataConfig, ModelConfig
from soar.errors import ConfigError

PROVENANCE_VERSION = 1


def prompt_sha(prompts: str = "paper") -> str:
    """Hash of the student prompt every filter, inner loop and evaluation uses (``model.prompts``: B.1's, or the
    world's)."""
    from soar.data.prompts import student_template

    return hashlib.sha256(student_template(prompts).encode("utf-8")).hexdigest()[:16]


def problems_key(problems: list[Any]) -> str:
    """Hash of a problem list's content (ids, questions, answers, in order)."""
    from soar.data.splits import content_key

    return content_key(problems, 0, 0.0)


def provenance_file(source: str) -> Path | None:
    """Where the provenance of ``source`` lives, or None where it cannot exist (``hf:``, a pool, a folder)."""
    if source == "arithmetic-hard":
        from importlib import resources

        return Path(str(resources.files("soar") / "data" / "bundled" / "arithmetic-hard.stats.json"))
    if source == "world-hard":
        from soar.data.problems import world_hard_dir

        return world_hard_dir() / "stats.json"
    if source.startswith("hf:") or source in ("arithmetic", "champ", "world"):
        return None
    path = Path(source).expanduser()
    candidates = [path.with_name(path.stem + ".stats.json")]
    if path.stem == "hard":
        candidates.append(path.with_name("stats.json"))
    return next((c for c in candidates if c.is_file()), candidates[-1])


def filter_out_dir(data: DataConfig, out_dir: str) -> Path:
    """Where ``soar filter`` writes when no ``--out`` is given: ``out_dir/filter-SOURCE-failK``."""
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in Path(data.source).stem)
    return Path(out_dir) / f"filter-{name}-fail{data.fail_at_k}"


def filter_command(data: DataConfig, invocation: str, out_dir: str) -> tuple[str, str]:
    """(the ``soar filter`` command that makes the hard set of ``data``, the ``hard.jsonl`` it writes)."""
    out = filter_out_dir(data, out_dir)
    source = "" if "--data.source" in invocation else f"--data.source {data.source}"
    return " ".join(w for w in ("soar filter", invocation, source, f"--out {out}") if w), f"{out}/hard.jsonl"


def require_provenance(data: DataConfig, model: ModelConfig, invocation: str = "--config CONFIG.yaml",
                       out_dir: str = "runs") -> dict[str, Any] | None:
    """Refuse a hard set whose fail@k provenance is missing or does not match (see the module doc).

    Returns the provenance when it was checked, None when no check applies (``data.fail_at_k`` null or
    ``data.allow_unfiltered``).  ``invocation``: the ``--preset``/``--config`` words to repeat in the hint.
    The model is compared by :func:`~soar.world.family.model_identity` (a world model's name and build key).
    """
    from soar.world.family import model_identity

    if data.fail_at_k is None or data.allow_unfiltered:
        return None
    model_name = model_identity(model.name)
    k = data.fail_at_k
    command, hard = filter_command(data, invocation, out_dir)
    fix = (f"make it with `{command}`, then use --data.source {hard} (or set data.allow_unfiltered: true to train "
           f"on it unfiltered on purpose)")
    file = provenance_file(data.source)
    if file is None or not file.is_file():
        where = f" ({file} is missing)" if file is not None else ""
        raise ConfigError(f"data.source {data.source} is not a fail@{k} hard set: it has no soar filter "
                          f"provenance{where}; {fix}")
    try:
        stats = json.loads(file.read_text(encoding="utf-8"))
        settings = stats["settings"]
        found = {"model": settings["model"], "k": int(settings["k"]), "prompt": stats["prompt_sha"],
                 "key": stats["hard_key"]}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{file}: not a soar filter provenance file (missing {exc}); {fix}") from None
    if found["model"] != model_name:
        raise ConfigError(f"data.source {data.source} was filtered for model {found['model']!r} ({file}), not "
                          f"model.name {model_name!r}; {fix}")
    if found["k"] < k:
        raise ConfigError(f"data.source {data.source} is a fail@{found['k']} set ({file}), weaker than "
                          f"data.fail_at_k {k}; {fix}")
    if found["prompt"] != prompt_sha(model.prompts):
        raise ConfigError(f"data.source {data.source} was filtered with another student prompt ({file}); {fix}")
    from soar.data.load import load_pool

    if problems_key(load_pool(data)) != found["key"]:
        raise ConfigError(f"data.source {data.source} is not the set soar filter kept (its content changed since "
                          f"{file} was written); {fix}")
    return stats
