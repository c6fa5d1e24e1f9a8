"""From a :class:`~soar.config.DataConfig` to the hard set's train/test split."""

from __future__ import annotations

from soar.config import DataConfig
from soar.data.problems import Fields, load_problems
from soar.data.splits import Split, load_or_make_split


def load_pool(data: DataConfig) -> list:
    """All problems the config's source names (before any split)."""
    fields = Fields(data.question_field, data.answer_field, data.solution_field, data.id_field)
    arithmetic = {"tiers": data.arithmetic_tiers, "per_tier": data.arithmetic_per_tier, "seed": data.arithmetic_seed}
    world = {"kinds": data.world_kinds, "per_kind": data.world_per_kind, "seed": data.world_seed}
    return load_problems(data.source, fields, hf_split=data.hf_split, hf_config=data.hf_config, arithmetic=arithmetic,
                         world=world)


def load_hard_set(data: DataConfig) -> Split:
    """The config's problems, split train/test with its seed (reusing a saved split)."""
    name = {"arithmetic": "arithmetic-" + "-".join(data.arithmetic_tiers),
            "world": f"world-{'-'.join(data.world_kinds)}-{data.world_per_kind}-{data.world_seed}"}.get(data.source, data.source)
    return load_or_make_split(load_pool(data), data.splits_dir, name, data.split_seed, data.test_fraction)
