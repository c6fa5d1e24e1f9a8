"""An algorithm-blind policy-gradient trainer: full fine-tuning or LoRA, loss passed in.

The trainer turns sampled sequences into per-token log-probabilities (current
policy, and a frozen reference for the KL term), hands them with the
advantages to a loss function (default :func:`soar.algo.losses.rloo_loss`),
and takes one optimiser step: AdamW (weight decay 0), linear warm-up then
cosine decay (or constant), gradient-norm clipping, and gradient accumulation
over micro-batches so a group of 32 x 1024 tokens fits in memory.

Reference policy: in full mode a frozen copy of the weights the trainer
started from; in LoRA mode the base model with the adapter switched off (no
copy).  Micro-batch losses are weighted by their share of the batch, so the
accumulated gradient equals the gradient of the whole-batch loss.

Student copies: :meth:`PolicyTrainer.snapshot` keeps the trainable weights
(all of them, or only the adapter) and :meth:`restore` puts them back in place
and resets the optimiser and schedule, so "copy the baseline, train, evaluate,
reset" needs no reload from disk and no new engine.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from soar.algo.losses import LossStats, rloo_loss, token_logprobs
from soar.config import PolicyConfig

LossFn = Callable[..., tuple[torch.Tensor, LossStats]]


@dataclass
class Rollouts:
    """Sampled sequences with one advantage each (tokens as ids, not tensors)."""

    prompt_ids: list[list[int]]
    completion_ids: list[list[int]]
    advantages: list[float]
    completion_mask: list[list[int]] | None = None
    """1 where the policy sampled the token, 0 where it was forced (template text)."""


class PolicyTrainer:
    def __init__(
        self,
        model: Any,
        cfg: PolicyConfig,
        total_steps: int,
        pad_token_id: int,
        loss_fn: LossFn = rloo_loss,
    ) -> None:
        self.cfg = cfg
        self.total_steps = max(1, total_steps)
        self.pad_token_id = pad_token_id
        self.loss_fn = loss_fn
        if cfg.finetune == "lora":
            from peft import LoraConfig, get_peft_model

            lora = LoraConfig(r=cfg.lora_rank, lora_alpha=cfg.lora_alpha, lora_dropout=0.0,
                              target_modules="all-linear", task_type="CAUSAL_LM")
            self.model = get_peft_model(model, lora)
            self.reference = None
        else:
            self.model = model
            self.reference = copy.deepcopy(model).eval().requires_grad_(False) if cfg.kl_coef else None
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self._reset_optimiser()

    # -- student copies ----------------------------------------------------
    def snapshot(self) -> dict[str, torch.Tensor]:
        """The trainable weights, cloned (the whole model in full mode, the adapter in LoRA)."""
        return {n: p.detach().clone() for n, p in self.model.named_parameters() if p.requires_grad}

    def restore(self, snapshot: dict[str, torch.Tensor]) -> None:
        """Put ``snapshot`` back in place and restart the optimiser and schedule."""
        with torch.no_grad():
            for name, param in self.model.named_parameters():
                if name in snapshot:
                    param.copy_(snapshot[name])
        self._reset_optimiser()

    def _reset_optimiser(self) -> None:
        from transformers import get_constant_schedule_with_warmup, get_cosine_schedule_with_warmup

        self.optimizer = torch.optim.AdamW(self.params, lr=self.cfg.lr, weight_decay=0.0)
        if self.cfg.lr_schedule == "cosine":
            self.scheduler = get_cosine_schedule_with_warmup(self.optimizer, self.cfg.warmup_steps, self.total_steps)
        else:
            self.scheduler = get_constant_schedule_with_warmup(self.optimizer, self.cfg.warmup_steps)
        self.steps_done = 0

    # -- training ----------------------------------------------------------
    def step(self, rollouts: Rollouts) -> dict[str, float]:
        """One optimiser step on ``rollouts``; returns loss, KL, grad norm, lr, tokens."""
        n = len(rollouts.advantages)
        if not n:
            raise ValueError("no rollouts to train on")
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        totals = {"loss": 0.0, "policy_loss": 0.0, "kl": 0.0, "tokens": 0.0}
        size = max(1, self.cfg.micro_batch_size)
        for start in range(0, n, size):
            index = list(range(start, min(n, start + size)))
            logprobs, ref_logprobs, mask = self._logprobs(rollouts, index)
            advantages = torch.tensor([rollouts.advantages[i] for i in index], device=logprobs.device)
            loss, stats = self.loss_fn(logprobs, ref_logprobs, mask, advantages, kl_coef=self.cfg.kl_coef)
            weight = len(index) / n
            (loss * weight).backward()
            for key in ("loss", "policy_loss", "kl"):
                totals[key] += getattr(stats, key) * weight
            totals["tokens"] += stats.tokens
        grad_norm = torch.nn.utils.clip_grad_norm_(self.params, self.cfg.grad_clip)
        totals["grad_norm"] = float(grad_norm)
        totals["lr"] = self.scheduler.get_last_lr()[0]
        self.optimizer.step()
        self.scheduler.step()
        self.steps_done += 1
        self.model.eval()
        return totals

    def _logprobs(self, r: Rollouts, index: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """Per-token log-probs of the completions (policy, reference) and the loss mask.

        Layout: prompts left-padded to P, completions right-padded to C, so the
        completion tokens sit in columns P..P+C-1 of every row and only the
        last C+1 positions' logits are computed.
        """
        device = next(self.model.parameters()).device
        pad = self.pad_token_id
        P = max(len(r.prompt_ids[i]) for i in index)
        C = max(max(len(r.completion_ids[i]) for i in index), 1)
        ids, attention, mask = [], [], []
        for i in index:
            prompt, completion = r.prompt_ids[i], r.completion_ids[i]
            forced = r.completion_mask[i] if r.completion_mask is not None else [1] * len(completion)
            ids.append([pad] * (P - len(prompt)) + prompt + completion + [pad] * (C - len(completion)))
            attention.append([0] * (P - len(prompt)) + [1] * (len(prompt) + len(completion)) + [0] * (C - len(completion)))
            mask.append(list(forced) + [0] * (C - len(completion)))
        ids_t = torch.tensor(ids, device=device)
        attention_t = torch.tensor(attention, device=device)
        positions = (attention_t.cumsum(dim=1) - 1).clamp(min=0)
        targets = ids_t[:, P:]

        def forward(model: Any) -> torch.Tensor:
            out = model(input_ids=ids_t, attention_mask=attention_t, position_ids=positions, logits_to_keep=C + 1)
            return token_logprobs(out.logits[:, :-1], targets)

        logprobs = forward(self.model)
        ref = None
        if self.cfg.kl_coef:
            with torch.no_grad():
                if self.reference is not None:
                    ref = forward(self.reference)
                else:
                    with self.model.disable_adapter():
                        ref = forward(self.model)
        return logprobs, ref, torch.tensor(mask, device=device, dtype=logprobs.dtype)
