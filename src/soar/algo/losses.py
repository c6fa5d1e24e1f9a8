r"""The RLOO policy loss with a KL penalty to a frozen reference policy.

Given, for a batch of B sampled sequences, the per-token log-probabilities of
the sampled tokens under the current policy (``logprobs``) and under the
reference policy (``ref_logprobs``), a mask that is 1 on *generated* tokens
only (prompt, padding and forced template tokens are 0), and one RLOO
advantage per sequence:

    pg_i  = -A_i * sum_t mask_it * logp_it
    kl_i  =  sum_t mask_it * k3_it
    k3_it =  exp(ref_it - logp_it) - (ref_it - logp_it) - 1
    loss  =  mean_i (pg_i + beta * kl_i) / norm

Normalisation (``norm``), a choice the paper does not state:
- ``"sequence"`` (default): norm = 1, so the gradient is exactly the RLOO
  estimator mean_i A_i * grad log pi(y_i), with log pi(y) the summed token
  log-probs.  This is the quantity Proposition 1 and Appendix D.3 reason about.
- ``"token"``: norm = the mean number of generated tokens per sequence, which
  keeps the step size independent of completion length (a constant rescaling
  of the same direction within a batch).

KL: the "k3" estimator (Schulman, 2020), non-negative per token, unbiased for
KL(pi || ref) under samples from pi, and exactly zero where pi = ref, with
coefficient beta (Table 3: 0.001).  It is summed over each reply's generated
tokens and divided by the same ``norm`` as the policy term, so the two keep one
scale whatever the reply length: beta weighs the KL of a whole reply against
its summed log-probability, as in TRL's RLOO (``kl.sum(1)`` subtracted from the
score) and verl (the KL loss aggregated as the policy loss is).  An earlier
version averaged the KL over tokens while summing the policy term, which made
beta act as ~beta / T for replies of T tokens (issue 26: the paper's 0.001
anchored nothing; docs/world.md measured a teacher's answers decaying).
``LossStats.kl`` is the mean KL of a whole reply (before ``norm`` and beta).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

Normalisation = Literal["sequence", "token"]


@dataclass(frozen=True)
class LossStats:
    loss: float
    policy_loss: float
    kl: float
    tokens: int


def token_logprobs(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """log p(tokens[b, t]) from ``logits[b, t, :]`` (already aligned: logits predict tokens)."""
    logits = logits.float()
    picked = logits.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
    return picked - torch.logsumexp(logits, dim=-1)  # no full log-softmax tensor: a vocabulary-wide copy saved


def finite_step(stats: dict[str, float]) -> bool:
    """Whether an optimiser step may be taken: its loss, KL and gradient norm are all finite (a NaN or inf
    must never reach weights or optimiser moments)."""
    return all(math.isfinite(stats[key]) for key in ("loss", "kl", "grad_norm"))


def kl_k3(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """Per-token k3 estimate of KL(pi || ref): ``exp(r) - r - 1`` with ``r = ref - logp``."""
    log_ratio = ref_logprobs - logprobs
    return torch.exp(log_ratio) - log_ratio - 1.0


def rloo_loss(
    logprobs: torch.Tensor,
    ref_logprobs: torch.Tensor | None,
    mask: torch.Tensor,
    advantages: torch.Tensor,
    kl_coef: float = 0.0,
    normalisation: Normalisation = "sequence",
) -> tuple[torch.Tensor, LossStats]:
    """The loss above for a (micro-)batch; shapes (B, T), (B, T), (B, T), (B,)."""
    mask = mask.to(logprobs.dtype)
    lengths = mask.sum(dim=1)
    seq_logprob = (logprobs * mask).sum(dim=1)
    if normalisation == "token":
        norm = lengths.mean().clamp(min=1.0)
    elif normalisation == "sequence":
        norm = torch.ones((), dtype=logprobs.dtype, device=logprobs.device)
    else:
        raise ValueError(f"unknown normalisation {normalisation!r}")
    policy_loss = (-(advantages.to(logprobs.dtype) * seq_logprob) / norm).mean()
    if ref_logprobs is not None and kl_coef:
        kl = (kl_k3(logprobs, ref_logprobs.detach()) * mask).sum(dim=1).mean()  # per reply, summed over tokens
    else:
        kl = torch.zeros((), dtype=logprobs.dtype, device=logprobs.device)
    loss = policy_loss + kl_coef * kl / norm
    stats = LossStats(float(loss.detach()), float(policy_loss.detach()), float(kl.detach()), int(mask.sum()))
    return loss, stats
