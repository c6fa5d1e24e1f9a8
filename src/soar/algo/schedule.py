"""The one learning-rate schedule of every trainer (teacher, sequential students, batched LoRA students).

Linear warm-up over ``warmup`` steps, then cosine decay to 0 at ``total`` steps (``cosine``) or the base rate
(``constant``): the formulas of transformers' ``get_cosine_schedule_with_warmup`` (half a cycle) and
``get_constant_schedule_with_warmup``, written once here so that :class:`~soar.engines.trainer.PolicyTrainer`
(through ``torch.optim.lr_scheduler.LambdaLR``) and :class:`~soar.engines.lora.BatchedLoRATrainer` (one rate per
student, each at its own step) read the same function; ``tests/unit/test_rloo.py`` checks it against transformers'.
"""

from __future__ import annotations

import math


def lr_factor(step: int, total: int, warmup: int, schedule: str) -> float:
    """The multiplier of the base learning rate for optimiser step ``step`` (0-based) of ``total``."""
    if step < warmup:
        return step / max(1, warmup)
    if schedule != "cosine":
        return 1.0
    progress = (step - warmup) / max(1, total - warmup)
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))
