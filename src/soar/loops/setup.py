"""The one setup of every command that runs a model: threads and seed, the model and tokenizer, the matmul dtype,
Math-Verify's process pool and the B.3 reward bound to it, and, where students are trained, the student pool.

``with setup(cfg) as s:`` gives a :class:`Setup`; the verifier's processes and any pool close with the block.
Generators are built by each command from the module it samples (the teacher's trainer may wrap the model).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from soar.config import SoarConfig
from soar.engines.evaluation import Reward
from soar.types import StudentPool


@dataclass
class Setup:
    cfg: SoarConfig
    model: Any
    tokenizer: Any
    precision: Any
    """The matmul dtype (``model.compute_dtype`` resolved for this machine)."""
    verifier: Any
    """The Math-Verify process pool (:class:`soar.math.verify.Verifier`)."""
    reward: Reward

    @contextmanager
    def student_pool(self, model: Any, worker_log: Path | None = None) -> Iterator[StudentPool]:
        """``compute.pool``'s students over ``model`` (in-process; Ray workers load their own and ignore it);
        ``worker_log``: where Ray workers' output is appended after each step's students."""
        from soar.students.pool import build_pool

        with closing(build_pool(self.cfg, model, self.tokenizer, self.verifier, worker_log)) as pool:
            yield pool


@contextmanager
def setup(cfg: SoarConfig, device: str | None = None, seed: bool = False) -> Iterator[Setup]:
    """Set threads (and, with ``seed``, torch's global seed: ``train`` and ``probe``, whose LoRA initialisations
    draw from it), load the model (on ``device``, else ``model.device``), start the verifier."""
    import torch

    from soar.engines.models import compute_dtype, load_model
    from soar.math.verify import Verifier

    if cfg.compute.threads:
        torch.set_num_threads(cfg.compute.threads)
    if seed:
        torch.manual_seed(cfg.compute.seed)
    model, tokenizer = load_model(cfg.model, device=device)
    with Verifier(cfg.reward.verify_workers, cfg.reward.verify_timeout_s) as verifier:
        yield Setup(cfg, model, tokenizer, compute_dtype(cfg.model), verifier, Reward.of(cfg.reward, verifier))
