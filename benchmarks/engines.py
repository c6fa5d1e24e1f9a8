"""Engine speed on this machine: generation, RLOO training, student copy+reset, one RLOO step vs TRL.

    python benchmarks/engines.py [--batches 1,8,32,128] [--dtypes float32,bfloat16]
                                 [--new-tokens 64] [--no-trl] [--trl-steps 3]

Every figure is printed beside a reference measured in the same run:

* the ceiling: a 2048x2048 matmul's FLOP/s (per dtype) divided by the FLOPs a
  token needs (2 x params for generation; 8 x params for an RLOO training
  token: forward + backward of the policy, 6 x, plus the reference forward, 2 x);
* for generation, plain ``transformers.generate`` on the same prompts;
* for copy+reset, a ``clone`` of the same tensors (memory bandwidth);
* for the RLOO step, TRL's ``RLOOTrainer`` on the same shape (``pip install
  'soar[bench]'``).

Generation runs ``batch / min(batch, 8)`` distinct prompts x ``min(batch, 8)``
samples, ``--new-tokens`` each (EOS ignored so every run does the same work).
A dtype whose matmul is slower than fp32 here (bf16 on CPUs without native
bf16 units) is run with 8 new tokens, and the table says so.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from soar.algo.rloo import leave_one_out_advantages
from soar.config import ModelConfig, PolicyConfig
from soar.data.prompts import student_prompt
from soar.engines.batch import Rollouts
from soar.engines.generation import HFGenerator, SamplingParams
from soar.engines.models import load_model
from soar.engines.trainer import PolicyTrainer

console = Console()


def matmul_flops(dtype: torch.dtype) -> float:
    """FLOP/s of a square matmul (2048, or 512 where the dtype is very slow)."""
    n = 512
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    started = time.perf_counter()
    a @ b
    if time.perf_counter() - started < 0.05:
        n = 2048
        a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
        a @ b
    reps, started = 0, time.perf_counter()
    while reps < 3 or time.perf_counter() - started < 0.5:
        a @ b
        reps += 1
    return 2 * n**3 * reps / (time.perf_counter() - started)


def questions(count: int) -> list[str]:
    return [f"Compute {37 * i + 113} \\times {91 * i + 57}. Put the final answer in \\boxed{{}}." for i in range(count)]


def bench_generation(model: Any, tok: Any, batch: int, new_tokens: int) -> tuple[float, float]:
    """(ours tok/s, plain generate tok/s) for one batch of ``batch`` sequences."""
    n = min(batch, 8)
    prompts = [student_prompt(q, tok) for q in questions(batch // n)]
    generator = HFGenerator(model, tok, batch_size=batch)
    started = time.perf_counter()
    groups = generator.generate(prompts, n, SamplingParams(max_new_tokens=new_tokens, seed=0, ignore_eos=True))
    ours = sum(len(c.token_ids) for g in groups for c in g) / (time.perf_counter() - started)

    encoded = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    started = time.perf_counter()
    with torch.no_grad():
        out = model.generate(**encoded, do_sample=True, top_k=0, max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                             num_return_sequences=n, pad_token_id=tok.pad_token_id)
    plain = (out.shape[0] * (out.shape[1] - encoded["input_ids"].shape[1])) / (time.perf_counter() - started)
    return ours, plain


def sequence_logprobs(model: Any, tok: Any) -> torch.Tensor:
    """Log-probs of a fixed 32-token reply under ``model`` (for the bf16-vs-fp32 numerics check)."""
    from soar.algo.losses import token_logprobs

    prompt = tok(student_prompt(questions(1)[0], tok), add_special_tokens=False)["input_ids"][-16:]
    reply = tok(" We multiply step by step: 113 times 57 is 6441, so the final answer is \\boxed{6441}.",
                add_special_tokens=False)["input_ids"][:32]
    ids = torch.tensor([prompt + reply])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[:, len(prompt) - 1:-1]
    return token_logprobs(logits.float(), ids[:, len(prompt):])[0]


def rollouts_for(model: Any, tok: Any, prompts: int, samples: int, new_tokens: int) -> Rollouts:
    texts = [student_prompt(q, tok) for q in questions(prompts)]
    groups = HFGenerator(model, tok).generate(texts, samples, SamplingParams(max_new_tokens=new_tokens, seed=1))
    ids = [tok(t, add_special_tokens=False)["input_ids"] for t in texts]
    rewards = [[_reward(c.text) for c in g] for g in groups]
    advantages = leave_one_out_advantages(rewards)
    return Rollouts([ids[i] for i, g in enumerate(groups) for _ in g], [c.token_ids for g in groups for c in g],
                    [a for row in advantages for a in row])


def _reward(text: str) -> float:
    """A cheap, deterministic reward (share of digits): the engines are timed, not the verifier."""
    return sum(ch.isdigit() for ch in text) / max(1, len(text))


def bench_training(model: Any, tok: Any, mode: str, steps: int = 2) -> tuple[float, float, float]:
    """(training tok/s, copy+reset seconds, clone-of-same-tensors seconds)."""
    cfg = PolicyConfig(lr=1e-6, finetune=mode, micro_batch_size=8, kl_coef=0.001)
    trainer = PolicyTrainer(model, cfg, total_steps=10, pad_token_id=tok.pad_token_id)
    rollouts = rollouts_for(trainer.model, tok, prompts=4, samples=4, new_tokens=64)
    tokens = sum(len(p) + len(c) for p, c in zip(rollouts.prompt_ids, rollouts.completion_ids))
    baseline = trainer.snapshot()
    trainer.step(rollouts)  # warm-up
    started = time.perf_counter()
    for _ in range(steps):
        trainer.step(rollouts)
    train_rate = tokens * steps / (time.perf_counter() - started)
    resets = []
    for _ in range(5):
        started = time.perf_counter()
        trainer.restore(baseline)
        resets.append(time.perf_counter() - started)
    started = time.perf_counter()
    for _ in range(5):
        {k: v.clone() for k, v in baseline.items()}
    clone = (time.perf_counter() - started) / 5
    if mode == "lora":
        trainer.model.unload()  # give the base model back without the adapter layers
    return train_rate, statistics.median(resets), clone


def one_rloo_step_ours(model: Any, tok: Any, steps: int) -> float:
    """soar's inner step itself (:func:`soar.students.inner.rloo_step`): 2 questions x 4 samples of 64 tokens."""
    from soar.config import StudentConfig
    from soar.students.inner import one_student, rloo_step
    from soar.types import Problem

    cfg = PolicyConfig(lr=1e-6, micro_batch_size=8, kl_coef=0.001, max_new_tokens=64)
    student = StudentConfig(batch_size=2, group_size=4, max_new_tokens=64, temperature=1.0, top_p=1.0)
    trainer = PolicyTrainer(model, cfg, total_steps=steps + 1, pad_token_id=tok.pad_token_id)
    generator = HFGenerator(trainer.model, tok)
    problems = [Problem(q, "0") for q in questions(2 * (steps + 1))]
    cheap = lambda replies, golds: [_reward(text) for text in replies]  # noqa: E731 - engines timed, not the verifier
    times = []
    for step in range(steps + 1):
        started = time.perf_counter()
        rloo_step(one_student(trainer), generator, tok, cheap, [problems[2 * step: 2 * step + 2]], student, seed=step)
        times.append(time.perf_counter() - started)
    return statistics.median(times[1:])


def one_rloo_step_trl(model: Any, tok: Any, steps: int, out_dir: str) -> float | None:
    try:
        from datasets import Dataset
        from transformers import TrainerCallback
        from trl import RLOOConfig, RLOOTrainer
    except ImportError:
        return None
    times: list[float] = []

    class Timer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):  # noqa: ANN001
            self.started = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001
            times.append(time.perf_counter() - self.started)

    def reward(completions: list[Any], **kwargs: Any) -> list[float]:
        return [_reward(c if isinstance(c, str) else c[-1]["content"]) for c in completions]

    prompts = [student_prompt(q, tok) for q in questions(2 * (steps + 1))]
    args = RLOOConfig(output_dir=out_dir, per_device_train_batch_size=8, num_generations=4, max_completion_length=64,
                      beta=0.001, learning_rate=1e-6, max_steps=steps + 1, use_cpu=True, report_to="none",
                      logging_steps=1000, save_strategy="no", bf16=False, disable_tqdm=True)
    trainer = RLOOTrainer(model=model, reward_funcs=reward, args=args, processing_class=tok,
                          train_dataset=Dataset.from_dict({"prompt": prompts}), callbacks=[Timer()])
    trainer.train()
    return statistics.median(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", default="1,8,32,128")
    parser.add_argument("--dtypes", default="float32,bfloat16")
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--no-trl", action="store_true")
    parser.add_argument("--trl-steps", type=int, default=3)
    parser.add_argument("--sections", default="generation,training,step", help="Which tables to measure.")
    args = parser.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    sections = set(args.sections.split(","))
    flops = {d: matmul_flops(getattr(torch, d)) for d in ("float32", "bfloat16")}
    console.print("matmul: " + ", ".join(f"{d} {f / 1e9:,.1f} GFLOP/s" for d, f in flops.items()))

    gen_table = Table(title="generation (tokens/s)")
    for col in ("dtype", "batch", "soar hf", "plain generate", "ratio", "ceiling", "% of ceiling"):
        gen_table.add_column(col, justify="right")
    numerics: dict[str, torch.Tensor] = {}
    for dtype in args.dtypes.split(",") if "generation" in sections else []:
        model, tok = load_model(ModelConfig(dtype=dtype), device="cpu")
        numerics[dtype] = sequence_logprobs(model, tok)
        params = sum(p.numel() for p in model.parameters())
        ceiling = flops[dtype] / (2 * params)
        slow = flops[dtype] < flops["float32"]
        new_tokens = 8 if slow else args.new_tokens
        if slow:
            console.print(f"  {dtype} matmul is slower than float32 here: {new_tokens} new tokens, batches <= 8 only")
        for batch in [b for b in batches if not slow or b <= 8]:
            ours, plain = bench_generation(model, tok, batch, new_tokens)
            gen_table.add_row(dtype + (f" ({new_tokens} tok)" if slow else ""), str(batch), f"{ours:,.0f}", f"{plain:,.0f}",
                              f"{ours / plain:.2f}x", f"{ceiling:,.0f}", f"{100 * ours / ceiling:.0f}%")
            console.print(f"  {dtype} batch {batch}: soar {ours:,.0f} tok/s, plain generate {plain:,.0f} tok/s")
        del model
    if "generation" in sections:
        console.print(gen_table)
        for dtype, logprobs in numerics.items():
            if dtype != "float32" and "float32" in numerics:
                diff = (logprobs - numerics["float32"]).abs()
                console.print(f"{dtype} numerics: |log-prob - float32 log-prob| over {diff.numel()} tokens of a fixed "
                              f"reply: mean {diff.mean():.4f}, max {diff.max():.4f}")

    model, tok = load_model(ModelConfig(dtype="float32"), device="cpu")
    params = sum(p.numel() for p in model.parameters())
    train_table = Table(title="RLOO training and student copy+reset (float32, 4 prompts x 4 samples x <=64 tokens, KL on;\n"
                        "tok/s counts every row's prompt + completion: a prompt shared by its samples is computed once)")
    for col in ("mode", "train tok/s", "ceiling tok/s", "% of ceiling", "copy+reset", "clone of same tensors"):
        train_table.add_column(col, justify="right")
    for mode in ("full", "lora") if "training" in sections else ():
        rate, reset, clone = bench_training(model, tok, mode)
        ceiling = flops["float32"] / (8 * params)
        train_table.add_row(mode, f"{rate:,.0f}", f"{ceiling:,.0f}", f"{100 * rate / ceiling:.0f}%",
                            f"{reset * 1e3:,.1f} ms", f"{clone * 1e3:,.1f} ms")
    if "training" in sections:
        console.print(train_table)
    if "step" not in sections:
        return

    step_table = Table(title="one RLOO step: 2 prompts x 4 samples x <=64 new tokens, float32, KL 0.001")
    for col in ("engine", "seconds/step", "speed-up"):
        step_table.add_column(col, justify="right")
    ours = one_rloo_step_ours(model, tok, args.trl_steps)
    trl = None
    if not args.no_trl:
        import tempfile

        trl_model, _ = load_model(ModelConfig(dtype="float32"), device="cpu")
        trl_model.config.architectures = trl_model.config.architectures or [type(trl_model).__name__]  # TRL rebuilds its reference from it
        with tempfile.TemporaryDirectory() as out_dir:
            trl = one_rloo_step_trl(trl_model, tok, args.trl_steps, out_dir)
    step_table.add_row("soar", f"{ours:.2f}", "1.00x" if trl is None else f"{trl / ours:.2f}x")
    step_table.add_row("trl RLOOTrainer", "not installed (pip install 'soar[bench]')" if trl is None else f"{trl:.2f}", "1.00x")
    console.print(step_table)


if __name__ == "__main__":
    main()
