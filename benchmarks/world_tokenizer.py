"""Why the designed world has its own tokenizer: the same 3-layer, 96-wide Llama with the world's ~106-token
vocabulary and with SmolLM2's 49,152, timed in one run (a training step on 64 texts of 35 tokens, and one decoding
step of 256 rows), on one thread, the world build's setting.

    python benchmarks/world_tokenizer.py
"""

from __future__ import annotations

import subprocess
import time

import torch

from soar.engines.batch import cache_kwarg
from soar.world.build import make_model, make_tokenizer
from soar.world.family import WorldSpec


def timed(fn, repeats: int = 10) -> float:
    fn()
    started = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - started) / repeats


def main() -> None:
    torch.set_num_threads(1)
    flags = subprocess.run(["sh", "-c", "grep -o -w 'avx2\\|avx512f\\|avx512_bf16\\|amx_bf16' /proc/cpuinfo | sort -u"],
                           capture_output=True, text=True).stdout.split()
    print(f"CPU flags: {' '.join(flags) or 'unknown'}; torch {torch.__version__}; 1 thread")
    print("| vocabulary | parameters | training step (64 x 35) ms | decoding step (256 rows) ms |")
    print("|---|---|---|---|")
    rows = {}
    for name, vocab in (("world", len(make_tokenizer())), ("SmolLM2", 49152)):
        model = make_model(WorldSpec(), vocab)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        ids = torch.randint(3, vocab, (64, 35))

        def train_step() -> None:
            loss = model(input_ids=ids, labels=ids).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

        train_s = timed(train_step)
        with torch.no_grad():
            prompt = torch.randint(3, vocab, (256, 20))
            token = torch.randint(3, vocab, (256, 1))

            cache = model(input_ids=prompt, use_cache=True).past_key_values  # grows by one position per call
            rows[name] = (train_s, timed(lambda: model(input_ids=token, use_cache=True, **{cache_kwarg(model): cache})))
        print(f"| {name} ({vocab:,}) | {sum(p.numel() for p in model.parameters()):,} | {rows[name][0] * 1000:.1f} | "
              f"{rows[name][1] * 1000:.2f} |")
    print(f"SmolLM2's vocabulary is {rows['SmolLM2'][0] / rows['world'][0]:.1f}x slower to train and "
          f"{rows['SmolLM2'][1] / rows['world'][1]:.1f}x slower to decode, same run")


if __name__ == "__main__":
    main()
