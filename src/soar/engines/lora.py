"""Student-indexed LoRA: many students share one base model, each its own adapter, trained together.

Why by hand: PEFT gives one model one active adapter per forward (its
``adapter_names`` mixed-batch inference has no backward pass and no
per-adapter optimiser), so S students cost S forward/backward passes of S
small batches.  Here every targeted ``nn.Linear`` (all of them but the output
head, as PEFT's ``all-linear``) becomes a :class:`StudentLoRALinear` holding
the stacked adapters of S students, ``A: (S, in, r)`` and ``B: (S, r, out)``;
each batch row carries the index of its student (:class:`RowStudents`, one
object shared by all layers of a model) and the adapter term is two batched
matmuls over the rows' own adapters:

    y = x W^T + (alpha / r) * (x A[s(row)]) B[s(row)]

(PEFT's formula, with ``A = lora_A.weight^T``, ``B = lora_B.weight^T``.)  The
base model runs once for all rows, sampling, log-probs and backward of all
students together.  The KL reference is the same model with adapters off.

Per student (:class:`BatchedLoRATrainer`): the loss is each student's own
``rloo_loss`` over its own rows, summed over students, so a student's
gradient is exactly what it would be alone; gradient clipping by the
student's own norm; AdamW (PyTorch's update rule, weight decay 0) with the
student's own moments, step count and learning-rate schedule.  A student that
is given no rollouts in a step is left untouched.

Promotion (:func:`merge_adapter`) adds the chosen student's ``(alpha/r) A B``
into the base weights, which then are the new baseline and KL reference; every
student restarts from the initial adapter (``B = 0``, so a fresh student is
exactly the merged model).  The sequence of merged adapters is the baseline's
whole state (a few MB instead of the model), and replaying it on the base
model rebuilds the promoted student.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from soar.algo.losses import LossStats, finite_step, rloo_loss, token_logprobs
from soar.algo.schedule import lr_factor
from soar.config import PolicyConfig
from soar.engines.batch import Rollouts, RowStudents, cache_kwarg, pad_completions, prefill

Adapter = dict[str, tuple[torch.Tensor, torch.Tensor]]
"""One student's adapter: layer name -> (A (in, r), B (r, out))."""


class StudentLoRALinear(nn.Module):
    """A frozen ``nn.Linear`` plus S stacked LoRA adapters, each row of the input through its student's."""

    def __init__(self, base: nn.Linear, students: int, rank: int, alpha: float, rows: RowStudents) -> None:
        super().__init__()
        self.base = base.requires_grad_(False)
        self.rows = rows
        self.scaling = alpha / rank
        weight = base.weight
        self.lora_A = nn.Parameter(torch.zeros(students, base.in_features, rank, dtype=weight.dtype, device=weight.device))
        self.lora_B = nn.Parameter(torch.zeros(students, rank, base.out_features, dtype=weight.dtype, device=weight.device))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.base(x)
        index = self.rows.index
        if index is None:
            return y
        blocks = self.rows.blocks
        if blocks is not None:  # students s0..s0+S-1 in blocks of c rows: views of the stacked weights, no copies
            first, students = blocks[0], blocks[1]
            a, b = self.lora_A[first:first + students], self.lora_B[first:first + students]
            flat = x.reshape(students, -1, x.shape[-1])  # (S, c * tokens, in)
        else:
            a, b = self.lora_A.index_select(0, index), self.lora_B.index_select(0, index)
            flat = x.reshape(x.shape[0], -1, x.shape[-1])  # (rows, tokens, in)
        low = torch.bmm(flat, a) * self.scaling  # (.., r): the scaling on the rank-r product is the cheap place
        # under autocast the bmm's run in its dtype, as the base matmul does
        return torch.baddbmm(y.reshape(flat.shape[0], -1, y.shape[-1]), low, b.to(low.dtype)).reshape(y.shape)


def attach(model: Any, students: int, rank: int, alpha: float) -> dict[str, StudentLoRALinear]:
    """Replace every linear layer of ``model`` but the output head by a :class:`StudentLoRALinear` (in place);
    returns them by name.  The base weights are frozen; only the stacked adapters train."""
    model.requires_grad_(False)
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    rows = RowStudents()
    targets = [(name, module) for name, module in model.named_modules()
               if isinstance(module, nn.Linear) and module is not head]
    layers = {}
    for name, module in targets:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        layer = StudentLoRALinear(module, students, rank, alpha, rows)
        setattr(parent, child, layer)
        layers[name] = layer
    return layers


def initial_adapter(layers: dict[str, StudentLoRALinear], rank: int, seed: int) -> Adapter:
    """PEFT's initialisation, seeded: ``lora_A`` Kaiming-uniform (a = sqrt 5) on its (r, in) weight, ``lora_B`` 0."""
    generator = torch.Generator().manual_seed(seed)
    adapter = {}
    for name, layer in layers.items():
        weight = torch.empty(rank, layer.base.in_features)
        bound = 1 / math.sqrt(layer.base.in_features)  # kaiming_uniform_(a=sqrt(5)) on fan_in = in_features
        weight.uniform_(-bound, bound, generator=generator)
        adapter[name] = (weight.t().contiguous().to(layer.lora_A.dtype), torch.zeros(rank, layer.base.out_features,
                                                                                     dtype=layer.lora_B.dtype))
    return adapter


def to_peft(adapter: Adapter, prefix: str = "base_model.model.") -> dict[str, torch.Tensor]:
    """``adapter`` under the names and layouts of a PEFT model's parameters (``...q_proj.lora_A.default.weight``:
    (r, in); ``lora_B``: (out, r))."""
    out = {}
    for name, (a, b) in adapter.items():
        out[f"{prefix}{name}.lora_A.default.weight"] = a.t().contiguous()
        out[f"{prefix}{name}.lora_B.default.weight"] = b.t().contiguous()
    return out


def from_peft(weights: dict[str, torch.Tensor], prefix: str = "base_model.model.") -> Adapter:
    """The inverse of :func:`to_peft` (PEFT's ``.default`` adapter names accepted)."""
    adapter: dict[str, list[Any]] = {}
    for key, tensor in weights.items():
        name = key.removeprefix(prefix).replace(".default", "")
        for part, slot in ((".lora_A.weight", 0), (".lora_B.weight", 1)):
            if name.endswith(part):
                adapter.setdefault(name[: -len(part)], [None, None])[slot] = tensor.t().contiguous()
    return {name: (a, b) for name, (a, b) in adapter.items()}


@torch.no_grad()
def merge_adapter(layers: dict[str, StudentLoRALinear], adapter: Adapter) -> None:
    """Add ``adapter`` (one student's) into the base weights: W += (alpha / r) (A B)^T."""
    for name, (a, b) in adapter.items():
        layer = layers[name]
        delta = (a.to(torch.float32) @ b.to(torch.float32)).t() * layer.scaling
        layer.base.weight.add_(delta.to(layer.base.weight.dtype).to(layer.base.weight.device))


def merged_weights(model: Any) -> dict[str, torch.Tensor]:
    """The plain model's weights (Hugging Face names, CPU copies) of a model with student adapters, adapters
    left out: the baseline with every merge in it, loadable as a full fine-tuned student."""
    out = {}
    for name, param in model.named_parameters():
        if ".lora_A" in name or ".lora_B" in name:
            continue
        out[name.replace(".base.", ".")] = param.detach().to("cpu", copy=True)
    return out


# ---------------------------------------------------------------------------
# Training many students at once
# ---------------------------------------------------------------------------

@dataclass
class _Moments:
    exp_avg: torch.Tensor
    exp_avg_sq: torch.Tensor


class BatchedLoRATrainer:
    """S LoRA students over one base model: batched log-probs, per-student loss, clipping, AdamW and schedule.

    ``begin(n, total_steps)`` starts ``n`` fresh students (slots 0..n-1) from the initial adapter;
    ``step(per_student)`` takes one optimiser step for every student given rollouts.
    """

    betas = (0.9, 0.999)
    eps = 1e-8  # torch.optim.AdamW's defaults, as PolicyTrainer's optimiser uses

    def __init__(self, model: Any, cfg: PolicyConfig, students: int, pad_token_id: int, seed: int = 0,
                 loss_fn: Callable[..., tuple[torch.Tensor, LossStats]] = rloo_loss,
                 compute_dtype: torch.dtype | None = None, rows_per_pass: int = 0) -> None:
        """``rows_per_pass``: sequences of all students in one forward/backward (0: ``cfg.micro_batch_size`` per
        student stepped); memory only, the step's result is the same."""
        self.cfg = cfg
        self.rows_per_pass = rows_per_pass
        self.capacity = students
        self.pad_token_id = pad_token_id
        self.loss_fn = loss_fn
        weights_dtype = next(model.parameters()).dtype
        self.compute_dtype = compute_dtype if compute_dtype not in (None, weights_dtype) else None
        self.model = model
        self.layers = attach(model, students, cfg.lora_rank, cfg.lora_alpha)
        self.rows = next(iter(self.layers.values())).rows
        self.initial: Adapter = initial_adapter(self.layers, cfg.lora_rank, seed)
        self.params = [p for layer in self.layers.values() for p in (layer.lora_A, layer.lora_B)]
        self.moments = [_Moments(torch.zeros_like(p), torch.zeros_like(p)) for p in self.params]
        self.steps_done = torch.zeros(students, dtype=torch.long)
        self.total_steps = [1] * students
        self.active = 0
        self.begin(students, 1)

    # -- students ------------------------------------------------------------
    @torch.no_grad()
    def begin(self, n: int, total_steps: int) -> None:
        """Slots 0..n-1 become fresh students from the initial adapter, with fresh optimisers and schedules."""
        if not 0 < n <= self.capacity:
            raise ValueError(f"{n} students for an engine of {self.capacity}")
        for name, layer in self.layers.items():
            a, b = self.initial[name]
            layer.lora_A[:n].copy_(a.expand(n, *a.shape))
            layer.lora_B[:n].copy_(b.expand(n, *b.shape))
        for m in self.moments:
            m.exp_avg[:n].zero_()
            m.exp_avg_sq[:n].zero_()
        self.steps_done[:n] = 0
        self.total_steps[:n] = [max(1, total_steps)] * n
        self.active = n

    @property
    def fresh(self) -> bool:
        """Whether every begun student still is the base model exactly: no step taken, and an initial adapter
        with ``B = 0`` (its term adds exact zeros).  Sampling may then run with adapters off, and the KL
        reference forward is skipped (KL and its gradient are exactly 0 where policy = reference)."""
        return bool((self.steps_done[:self.active] == 0).all()) and all(
            not b.any() for _, b in self.initial.values())

    def adapter(self, student: int) -> Adapter:
        """Student ``student``'s adapter, copied to the CPU."""
        return {name: (layer.lora_A[student].detach().to("cpu", copy=True),
                       layer.lora_B[student].detach().to("cpu", copy=True)) for name, layer in self.layers.items()}

    @torch.no_grad()
    def load_adapter(self, student: int, adapter: Adapter) -> None:
        missing = sorted(self.layers.keys() - adapter.keys())
        if missing or adapter.keys() - self.layers.keys():
            from soar.errors import SoarError

            raise SoarError(f"the adapter does not fit this model (e.g. {missing[:1]} missing)")
        for name, (a, b) in adapter.items():
            self.layers[name].lora_A[student].copy_(a)
            self.layers[name].lora_B[student].copy_(b)

    def merge(self, adapter: Adapter) -> None:
        """Merge ``adapter`` into the base (promotion): the base is the new baseline and KL reference."""
        merge_adapter(self.layers, adapter)

    @contextmanager
    def students(self, index: torch.Tensor | None) -> Iterator[None]:
        """Run the model with row ``i`` through student ``index[i]`` (None: the base model)."""
        previous, self.rows.index = self.rows.index, index
        try:
            yield
        finally:
            self.rows.index = previous

    def lr(self, student: int) -> float:
        """Student ``student``'s learning rate for its next step (PolicyTrainer's schedules, by formula)."""
        return self.cfg.lr * lr_factor(int(self.steps_done[student]), self.total_steps[student], self.cfg.warmup_steps,
                                       self.cfg.lr_schedule)

    # -- training ------------------------------------------------------------
    def step(self, per_student: Sequence[Rollouts | None]) -> list[dict[str, float]]:
        """One optimiser step for every student ``s`` with ``per_student[s]``; returns each one's stats."""
        chosen = [s for s, r in enumerate(per_student) if r is not None and r.advantages]
        if not chosen:
            raise ValueError("no rollouts to train on")
        if max(chosen) >= self.active:
            raise ValueError(f"student {max(chosen)} was not begun ({self.active} active)")
        self.model.train()
        for p in self.params:
            p.grad = None
        stats: dict[int, dict[str, float]] = {s: {"loss": 0.0, "policy_loss": 0.0, "kl": 0.0, "tokens": 0.0}
                                              for s in chosen}
        # micro-batches: rows of several students, each student's loss weighted by its share of its own rows
        rows = [(s, i) for s in chosen for i in range(len(per_student[s].advantages))]
        size = self.rows_per_pass or max(1, self.cfg.micro_batch_size) * max(1, len(chosen))
        for start in range(0, len(rows), size):
            part = rows[start:start + size]
            logprobs, ref, mask = self._logprobs(per_student, part)
            total = None
            for s in chosen:
                picks = [k for k, (owner, _) in enumerate(part) if owner == s]
                if not picks:
                    continue
                pick = torch.tensor(picks, device=logprobs.device)
                advantages = torch.tensor([per_student[s].advantages[part[k][1]] for k in picks], device=logprobs.device)
                loss, st = self.loss_fn(logprobs[pick], None if ref is None else ref[pick], mask[pick], advantages,
                                        kl_coef=self.cfg.kl_coef)
                weight = len(picks) / len(per_student[s].advantages)
                total = loss * weight if total is None else total + loss * weight
                for key in ("loss", "policy_loss", "kl"):
                    stats[s][key] += getattr(st, key) * weight
                stats[s]["tokens"] += st.tokens
            total.backward()
        self._clip_and_update(chosen, stats)
        self.model.eval()
        return [stats.get(s, {}) for s in range(len(per_student))]

    @torch.no_grad()
    def _clip_and_update(self, chosen: list[int], stats: dict[int, dict[str, float]]) -> None:
        index = torch.tensor(chosen)
        squares = torch.zeros(len(chosen), dtype=torch.float64)
        for p in self.params:
            if p.grad is not None:
                squares += p.grad[index].double().pow(2).flatten(1).sum(dim=1).cpu()
        norms = squares.sqrt()
        beta1, beta2 = self.betas
        for k, s in enumerate(chosen):
            stats[s]["grad_norm"] = float(norms[k])
            stats[s]["lr"] = self.lr(s)
            stats[s]["skipped"] = float(not finite_step(stats[s]))  # nothing non-finite reaches this student
        keep = [k for k, s in enumerate(chosen) if not stats[s]["skipped"]]
        if len(keep) < len(chosen):
            chosen, norms = [chosen[k] for k in keep], norms[keep]
            index = torch.tensor(chosen, dtype=torch.long)
            if not chosen:
                return
        clip = (self.cfg.grad_clip / (norms + 1e-6)).clamp(max=1.0)  # torch.nn.utils.clip_grad_norm_'s rule
        lrs = torch.tensor([self.lr(s) for s in chosen], dtype=torch.float64)
        self.steps_done[index] += 1
        steps = self.steps_done[index].double()
        step_size = (lrs / (1 - beta1 ** steps)).tolist()
        root_bc2 = (1 - beta2 ** steps).sqrt().tolist()
        n = len(chosen)
        contiguous = chosen == list(range(n))  # the usual case: every begun student steps; one vectorised update
        if contiguous:
            shape = (n,) + (1,) * (self.params[0].dim() - 1)
            clip_v = clip.to(self.params[0].dtype).view(shape)
            size_v = torch.tensor(step_size, dtype=self.params[0].dtype).view(shape)
            root_v = torch.tensor(root_bc2, dtype=self.params[0].dtype).view(shape)
        for p, m in zip(self.params, self.moments):
            if p.grad is None:
                continue
            if contiguous:
                grad = p.grad[:n] * clip_v.to(p.device)
                m.exp_avg[:n].lerp_(grad, 1 - beta1)
                m.exp_avg_sq[:n].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                denom = (m.exp_avg_sq[:n].sqrt() / root_v.to(p.device)).add_(self.eps)
                p[:n].sub_(m.exp_avg[:n] / denom * size_v.to(p.device))
                continue
            for k, s in enumerate(chosen):
                grad = p.grad[s] * clip[k].to(p.dtype) if clip[k] < 1.0 else p.grad[s]
                m.exp_avg[s].lerp_(grad, 1 - beta1)
                m.exp_avg_sq[s].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                denom = (m.exp_avg_sq[s].sqrt() / root_bc2[k]).add_(self.eps)
                p[s].addcdiv_(m.exp_avg[s], denom, value=-step_size[k])

    def _logprobs(self, per_student: Sequence[Rollouts | None], part: list[tuple[int, int]]
                  ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """Per-token log-probs of the rows ``part`` ((student, rollout) pairs), policy and reference, and the
        loss mask: each distinct (student, prompt) is prefilled once, as in ``PolicyTrainer._logprobs``."""
        device = next(self.model.parameters()).device
        pad = self.pad_token_id
        distinct: dict[tuple[int, tuple[int, ...]], int] = {}
        select = [distinct.setdefault((s, tuple(per_student[s].prompt_ids[i])), len(distinct)) for s, i in part]
        prompt_students = [s for s, _ in distinct]
        prompts = [list(p) for _, p in distinct]
        flat = Rollouts([], [per_student[s].completion_ids[i] for s, i in part], [],
                        [(per_student[s].completion_mask[i] if per_student[s].completion_mask is not None
                          else [1] * len(per_student[s].completion_ids[i])) for s, i in part])
        C, ids, attention, mask = pad_completions(flat, range(len(part)), pad)
        targets = torch.tensor(ids, device=device)
        select_t = torch.tensor(select, device=device)
        completion_attention = torch.tensor(attention, device=device)
        row_students = torch.tensor([s for s, _ in part], device=device)

        def forward(students: list[int] | None) -> torch.Tensor:
            from transformers import DynamicCache

            cache, kw = DynamicCache(), cache_kwarg(self.model)
            head = prefill(self.model, prompts, cache, pad, device, students=students, rows=self.rows)
            cache.batch_select_indices(select_t)
            if C == 1:
                return token_logprobs(head.logits[select_t], targets)
            attention_t = torch.cat([head.attention[select_t], completion_attention], dim=1)
            positions = head.positions[select_t, -1:] + 1 + torch.arange(C, device=device)
            with self.students(row_students if students is not None else None):
                tail = self.model(input_ids=targets[:, :-1], attention_mask=attention_t[:, :-1],
                                  position_ids=positions[:, :-1], **{kw: cache}, use_cache=True)
            # scored apart and joined as (rows, C): no copy of the (rows, C, vocab) logits
            return torch.cat([token_logprobs(head.logits[select_t], targets[:, :1]),
                              token_logprobs(tail.logits, targets[:, 1:])], dim=1)

        precision = torch.autocast(device.type, dtype=self.compute_dtype, enabled=self.compute_dtype is not None)
        with precision:
            logprobs = forward(prompt_students)
        ref = None
        if self.cfg.kl_coef and self.fresh:
            ref = logprobs.detach()  # policy = reference exactly: the same numbers without a second forward
        elif self.cfg.kl_coef:
            with torch.no_grad(), precision:
                ref = forward(None)  # the base model: adapters off
        return logprobs, ref, torch.tensor(mask, device=device, dtype=logprobs.dtype)
