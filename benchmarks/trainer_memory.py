"""Peak memory and time of one RLOO step, by memory option: gradient checkpointing, chunked log-probs.

    python benchmarks/trainer_memory.py [--layers 8] [--hidden 512] [--rows 8] [--prompt 128] [--completion 512]

A random Llama with SmolLM2's vocabulary (49,152) and the given shape, full
fine-tuning, fp32, one ``PolicyTrainer.step`` of ``rows`` sequences in one
micro-batch (KL on, so the reference forward runs too).  Each option runs in
its own process; "peak" is the growth of the process's maximum resident set
during the step (model and optimiser state are allocated before, by a step on
one two-token row), so it is the step's activations and logits.  The
reference in the same run is the default path (shared prompt cache, whole
logits).  On a GPU the same options bound ``torch.cuda.max_memory_allocated``;
``scripts/gpu_check.sh`` is where that is measured.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

OPTIONS = {
    "default": {},
    "gradient checkpointing": {"gradient_checkpointing": True},
    "chunked log-probs (64)": {"logprob_chunk": 64},
    "both": {"gradient_checkpointing": True, "logprob_chunk": 64},
}


def one(args: argparse.Namespace, name: str) -> dict[str, float]:
    from dataclasses import replace

    import torch

    from soar.config import PolicyConfig
    from soar.engines.batch import Rollouts
    from soar.engines.tiny import default_tokenizer, tiny_model
    from soar.engines.trainer import PolicyTrainer

    torch.set_num_threads(2)
    tokenizer = default_tokenizer()
    model = tiny_model(tokenizer, layers=args.layers, hidden=args.hidden, heads=args.hidden // 64, seed=0)
    cfg = replace(PolicyConfig(lr=1e-5, kl_coef=0.001, micro_batch_size=args.rows), **OPTIONS[name])
    trainer = PolicyTrainer(model, cfg, 10, tokenizer.pad_token_id)
    g = torch.Generator().manual_seed(0)
    prompt = torch.randint(10, 40000, (args.prompt,), generator=g).tolist()
    rollouts = Rollouts([prompt] * args.rows,
                        [torch.randint(10, 40000, (args.completion,), generator=g).tolist() for _ in range(args.rows)],
                        [float(x) for x in torch.randn(args.rows, generator=g)])
    trainer.step(Rollouts([prompt[:8]], [[5, 6]], [1.0]))  # AdamW state allocated, with (almost) no activations
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    trainer.step(rollouts)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    return {"seconds": seconds, "peak_mib": peak / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--rows", type=int, default=8)
    parser.add_argument("--prompt", type=int, default=128)
    parser.add_argument("--completion", type=int, default=512)
    parser.add_argument("--only", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.only:
        print(json.dumps(one(args, args.only)))
        return
    passed = [f"--{k}={v}" for k, v in vars(args).items() if k != "only"]
    print(f"one RLOO step, full fine-tuning, fp32: {args.layers} layers, hidden {args.hidden}, vocab 49,152; "
          f"{args.rows} rows x ({args.prompt} + {args.completion}) tokens in one micro-batch")
    print("| option | step s | peak growth MiB | vs default |")
    print("|---|---|---|---|")
    reference = None
    for name in OPTIONS:
        out = subprocess.run([sys.executable, __file__, *passed, f"--only={name}"], capture_output=True, text=True,
                             check=True)
        row = json.loads(out.stdout.strip().splitlines()[-1])
        reference = reference or row
        print(f"| {name} | {row['seconds']:.2f} | {row['peak_mib']:,.0f} | "
              f"{row['peak_mib'] / max(reference['peak_mib'], 1):.2f}x memory, "
              f"{row['seconds'] / reference['seconds']:.2f}x time |", flush=True)


if __name__ == "__main__":
    main()
