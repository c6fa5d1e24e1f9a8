"""GPU check: soar's engines on one CUDA device, at the paper's 3B shape, with random weights.

    python benchmarks/gpu_check.py [--shape 3b|tiny] [--sections generation,training,outer,parity] [--json FILE] ...

No network and no model download: the model is a Llama-3.2-3B-shaped network
(28 layers, hidden 3072, MLP 8192, 24 heads / 8 KV heads, vocabulary 128,256)
made on the device with random weights, which gives true throughput (every
token costs what a trained model's would; EOS is ignored so the work is fixed).
Token ids are random; a stub tokenizer stands in for the real one, which
cannot be brought to a machine without network (``--shape tiny`` runs the
whole script on a CPU in seconds, to check it before spending device time; on a
CPU the "CUDA graphs" rows run the eager loop).

Sections (each prints its rows as it finishes and adds them to the JSON; an
error, out-of-memory included, is recorded and the next section runs):

* ``generation``: greedy parity between soar's two decoders (CUDA graphs,
  ``soar.engines.graphs``, and the eager loop) on the same bf16 weights, then
  sampled tokens/s of the CUDA-graph decoder and of the ``--references``
  (``eager``: soar's eager loop; ``generate``: ``transformers.generate``) at the
  student shape (8 prompts x 32 samples, ``--new-tokens``) and the teacher
  shape (one prompt, 256 samples, ``--teacher-tokens``).
* ``training``: trained tokens/s and peak memory of one RLOO step (one
  question x 32 samples, prompt 200 + ``--train-tokens`` completion tokens) for
  each of ``--train-modes`` (``full``, ``lora``, and ``+memory``: gradient
  checkpointing and log-prob chunks of 256, as the paper presets' students), and
  16 batched LoRA students in one step (``soar.engines.lora``, 4 samples each,
  ``--micro-batch`` rows per pass).
* ``outer``: two outer steps of ``paper-math``'s loop on a tiny Llama trained
  for seconds to write SOAR's formats (``tests/helpers/formatted.py``), with
  the lengths and counts of ``tests.helpers.formatted.PAPER_MATH_CUTS``, every phase on the device:
  per-phase seconds.  Needs a tokenizer with a chat template (``--tokenizer``;
  ``scripts/gpu_bundle.sh`` brings SmolLM2's).
* ``placement``: ``soar plan``'s placement on this node: the teacher phase, then
  4 students on the GPUs it has, with the teacher's state gone (``own``:
  ``compute.teacher_gpus 1``) or kept (``shared``); measured peak per GPU
  beside the plan's figure.
* ``parity``: log-probs of sampled tokens from the decoder (bf16 copy of the
  weights) against the trainer's (fp32 master weights under bf16 autocast) on
  the same text: max and mean |delta|.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import torch

SHAPES = {
    "3b": dict(hidden_size=3072, intermediate_size=8192, num_hidden_layers=28, num_attention_heads=24,
               num_key_value_heads=8, vocab_size=128256, rope_theta=500000.0),
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, vocab_size=512, rope_theta=10000.0),
}


class StubTokenizer:
    """What the engines ask of a tokenizer, over random ids (no network here for a real one)."""

    pad_token_id, eos_token_id, bos_token_id = 0, 1, 2
    all_special_ids = [0, 1, 2]

    def decode(self, ids: Any, skip_special_tokens: bool = False) -> str:
        return " ".join(str(int(i)) for i in ids)


def make_model(shape: str, device: str) -> Any:
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(**SHAPES[shape], max_position_embeddings=4096, tie_word_embeddings=True,
                         bos_token_id=2, eos_token_id=1, pad_token_id=0, torch_dtype="float32")
    torch.manual_seed(0)
    with torch.device(device):
        model = LlamaForCausalLM(config)
    return model.eval()


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def peak_gib(device: str) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**30 if device.startswith("cuda") else None


def reset_peak(device: str) -> None:
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
        for index in range(torch.cuda.device_count()):
            torch.cuda.reset_peak_memory_stats(index)


def prompts(count: int, length: int, vocab: int, seed: int) -> list[list[int]]:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(3, vocab, (count, length), generator=g).tolist()


def section_parity(args: Any, out: list[dict[str, Any]]) -> None:
    from soar.config import PolicyConfig
    from soar.engines.batch import Rollouts
    from soar.engines.generation import HFGenerator, SamplingParams
    from soar.engines.trainer import PolicyTrainer

    model = make_model(args.shape, args.device)
    vocab = model.config.vocab_size
    tok = StubTokenizer()
    gen = HFGenerator(model, tok, batch_size=64, compute_dtype=torch.bfloat16)
    ps = prompts(4, 64, vocab, 1)
    groups = gen.generate_tokens(ps, 2, SamplingParams(max_new_tokens=64, seed=0, ignore_eos=True))
    trainer = PolicyTrainer(model, PolicyConfig(lr=1e-6, kl_coef=0.0, micro_batch_size=8), 1, 0,
                            compute_dtype=torch.bfloat16)
    rows = [(ps[i], c) for i, g in enumerate(groups) for c in g]
    r = Rollouts([p for p, _ in rows], [c.token_ids for _, c in rows], [0.0] * len(rows))
    with torch.no_grad():
        logprobs, _, mask = trainer._logprobs(r, list(range(len(rows))))
    decoder = torch.tensor([c.logprobs for _, c in rows], device=logprobs.device, dtype=torch.float32)
    delta = (logprobs.float() - decoder).abs()[mask.bool()]
    out.append({"section": "parity", "what": "decoder (bf16 copy) vs trainer (fp32 + bf16 autocast) log-probs",
                "max_abs_delta": float(delta.max()), "mean_abs_delta": float(delta.mean()),
                "tokens": int(mask.sum())})


def _timed_generate(gen: Any, ps: list[list[int]], samples: int, new: int, device: str) -> tuple[float, int, Any]:
    from soar.engines.generation import SamplingParams

    gen.generate_tokens(ps[:1], 2, SamplingParams(max_new_tokens=4, seed=0, ignore_eos=True))  # warm-up
    reset_peak(device)
    sync(device)
    started = time.perf_counter()
    groups = gen.generate_tokens(ps, samples, SamplingParams(max_new_tokens=new, seed=0, ignore_eos=True))
    sync(device)
    seconds = time.perf_counter() - started
    return seconds, sum(len(c.token_ids) for g in groups for c in g), groups


def section_generation(args: Any, out: list[dict[str, Any]]) -> None:
    """soar's decoder with CUDA graphs (soar.engines.graphs) and without (the eager loop), and optionally
    ``transformers.generate``, on the same bf16 weights; first a greedy parity row between the two decoders."""
    from soar.engines.generation import HFGenerator, SamplingParams

    model = make_model(args.shape, args.device)
    vocab = model.config.vocab_size
    tok = StubTokenizer()
    graphed = HFGenerator(model, tok, batch_size=256, compute_dtype=torch.bfloat16, cuda_graphs=True)
    eager = HFGenerator(model, tok, batch_size=256, compute_dtype=torch.bfloat16, cuda_graphs=False)
    eager._cast = graphed._cast  # one bf16 copy of the weights for both
    ps = prompts(8, 64, vocab, 4)
    greedy = SamplingParams(max_new_tokens=64, greedy=True, ignore_eos=True)
    a = [g[0] for g in graphed.generate_tokens(ps, 1, greedy)]
    b = [g[0] for g in eager.generate_tokens(ps, 1, greedy)]
    agree = [next((i for i, (x, y) in enumerate(zip(c.token_ids, d.token_ids)) if x != y), len(c.token_ids))
             for c, d in zip(a, b)]
    deltas = [abs(x - y) for c, d, n in zip(a, b, agree) for x, y in zip(c.logprobs[:n], d.logprobs[:n])]
    out.append({"section": "generation", "what": "greedy parity, CUDA graphs vs eager loop (bf16, 8 x 64 tokens)",
                "tokens_before_first_difference": agree, "max_abs_delta_logprob": max(deltas, default=0.0)})
    print_row(out[-1])
    shapes = [("student", 8, 32, args.prompt_tokens, args.new_tokens),
              ("teacher", 1, 256, args.prompt_tokens, args.teacher_tokens)]
    references = set(args.references.split(",")) if args.references else set()
    for name, n_prompts, samples, prompt_len, new in shapes:
        ps = prompts(n_prompts, prompt_len, vocab, 2)
        rows = n_prompts * samples
        engines = [("soar decode, CUDA graphs", graphed)]
        if "eager" in references:
            engines.append(("soar decode, eager", eager))
        for engine, gen in engines:
            gen.batch_size = rows
            seconds, tokens, _ = _timed_generate(gen, ps, samples, new, args.device)
            out.append({"section": "generation", "engine": engine, "shape": name, "rows": rows,
                        "new_tokens": new, "seconds": seconds, "tokens_per_s": tokens / seconds,
                        "peak_gib": peak_gib(args.device)})
            print_row(out[-1])
        if "generate" not in references:
            continue
        sampler = graphed._sampling_model()
        ids = torch.tensor(ps, device=args.device)
        reset_peak(args.device)
        sync(args.device)
        started = time.perf_counter()
        with torch.no_grad():
            result = sampler.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=True,
                                      num_return_sequences=samples, max_new_tokens=new, min_new_tokens=new,
                                      pad_token_id=0, eos_token_id=None)
        sync(args.device)
        seconds = time.perf_counter() - started
        tokens = (result.shape[1] - ids.shape[1]) * result.shape[0]
        out.append({"section": "generation", "engine": "transformers generate", "shape": name, "rows": rows,
                    "new_tokens": new, "seconds": seconds, "tokens_per_s": tokens / seconds,
                    "peak_gib": peak_gib(args.device)})
        print_row(out[-1])
        del result
    del graphed, eager
    reset_peak(args.device)


def _rollouts(vocab: int, samples: int, prompt_len: int, completion: int, seed: int) -> Any:
    from soar.engines.batch import Rollouts

    p = prompts(1, prompt_len, vocab, seed)[0]
    comps = prompts(samples, completion, vocab, seed + 1)
    advantages = [(-1.0) ** i for i in range(samples)]
    return Rollouts([p] * samples, comps, advantages)


def _timed_steps(step: Any, device: str, tokens: int) -> tuple[float, float | None]:
    step()  # warm-up (optimiser state, autocast caches)
    reset_peak(device)
    sync(device)
    started = time.perf_counter()
    step()
    sync(device)
    seconds = time.perf_counter() - started
    return tokens / seconds, peak_gib(device)


def section_training(args: Any, out: list[dict[str, Any]]) -> None:
    from soar.config import PolicyConfig
    from soar.engines.lora import BatchedLoRATrainer
    from soar.engines.trainer import PolicyTrainer

    samples, prompt_len, completion = 32, args.prompt_tokens, args.train_tokens
    tokens = samples * completion
    for mode in args.train_modes.split(","):  # +memory: the paper presets' memory options
        model = make_model(args.shape, args.device)
        vocab = model.config.vocab_size
        memory = {"gradient_checkpointing": True, "logprob_chunk": 256} if mode.endswith("+memory") else {}
        cfg = PolicyConfig(lr=1e-5, kl_coef=0.001, micro_batch_size=args.micro_batch, finetune=mode.split("+")[0],
                           lora_rank=16, lora_alpha=32, **memory)
        try:
            trainer = PolicyTrainer(model, cfg, 10, 0, compute_dtype=torch.bfloat16)
            r = _rollouts(vocab, samples, prompt_len, completion, 3)
            rate, peak = _timed_steps(lambda: trainer.step(r), args.device, tokens)
            out.append({"section": "training", "mode": mode, "sequences": samples, "completion_tokens": completion,
                        "prompt_tokens": prompt_len, "micro_batch": args.micro_batch, "tokens_per_s": rate,
                        "peak_gib": peak})
        except torch.OutOfMemoryError as exc:
            out.append({"section": "training", "mode": mode, "error": f"out of memory: {str(exc)[:120]}"})
        print_row(out[-1])
        del model
        trainer = None
        reset_peak(args.device)
    if not args.batched:
        return
    students, per = 16, 4
    model = make_model(args.shape, args.device)
    vocab = model.config.vocab_size
    cfg = PolicyConfig(lr=1e-4, kl_coef=0.001, micro_batch_size=args.micro_batch, finetune="lora", lora_rank=16,
                       lora_alpha=32)
    try:
        # rows of all students per pass bounded like one student's micro-batch (unbounded, 64 rows ran out of memory)
        engine = BatchedLoRATrainer(model, cfg, students, 0, compute_dtype=torch.bfloat16,
                                    rows_per_pass=args.micro_batch)
        engine.begin(students, 10)
        batch = [_rollouts(vocab, per, prompt_len, completion, 10 + s) for s in range(students)]
        rate, peak = _timed_steps(lambda: engine.step(batch), args.device, students * per * completion)
        out.append({"section": "training", "mode": f"batched lora x{students}", "sequences": students * per,
                    "completion_tokens": completion, "prompt_tokens": prompt_len, "micro_batch": args.micro_batch,
                    "tokens_per_s": rate, "peak_gib": peak})
    except torch.OutOfMemoryError as exc:
        out.append({"section": "training", "mode": f"batched lora x{students}", "error": f"out of memory: {str(exc)[:120]}"})
    print_row(out[-1])




def section_outer(args: Any, out: list[dict[str, Any]]) -> None:
    """Two outer steps of ``paper-math``'s loop (``tests.helpers.formatted.PAPER_MATH_CUTS``) on a tiny random Llama with a real
    tokenizer (``--tokenizer``: a saved transformers tokenizer folder, e.g. SmolLM2's from
    ``scripts/gpu_bundle.sh``), every phase on ``--device``; per-phase seconds of each step."""
    import tempfile

    from rich.console import Console
    from transformers import AutoTokenizer

    from soar.config import load_config
    from soar.loops.train import train

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: tests.helpers
    from tests.helpers.formatted import PAPER_MATH_CUTS, formatted_tiny_model_dir  # shared with the fan-out test

    if not (Path(args.tokenizer) / "tokenizer_config.json").exists():
        raise FileNotFoundError(f"no tokenizer at {args.tokenizer}: make build/gpu-bundle with scripts/gpu_bundle.sh "
                                f"where PyPI is reachable and carry it along, or pass --tokenizer")
    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    with tempfile.TemporaryDirectory() as tmp:
        # a random network never closes a <question> span: a few seconds of training on SOAR's formats (on CPU)
        formatted_tiny_model_dir(Path(tmp) / "model", tokenizer=tokenizer)
        overrides = dict(PAPER_MATH_CUTS, **{"model.name": f"{tmp}/model", "model.device": args.device,
                                             "data.splits_dir": f"{tmp}/splits"})
        overrides.update(item.split("=", 1) for item in args.outer_set)
        if not args.device.startswith("cuda"):
            overrides["model.compute_dtype"] = "float32"
        cfg = load_config("paper-math", overrides=overrides)
        started = time.perf_counter()
        summary = train(cfg, out=f"{tmp}/run", console=Console(quiet=True))
        wall = time.perf_counter() - started
        records = [json.loads(line) for line in (summary.run_dir / "metrics.jsonl").read_text().splitlines()]
    for record in records:
        students = sum(len(parts) for parts in record["student_rewards"])
        out.append({"section": "outer", "step": record["step"], "students": students,
                    "student_tokens": record["student_tokens"], "teacher_tokens": record["teacher_tokens"],
                    "step_seconds": record.get("step_wall", sum(record["seconds"].values())),
                    "phase_seconds": {k: round(v, 2) for k, v in record["seconds"].items()}})
        print_row(out[-1])
    out.append({"section": "outer", "what": "run wall incl. model load and splits", "seconds": wall})
    print_row(out[-1])


def section_placement(args: Any, out: list[dict[str, Any]]) -> None:
    """``soar plan``'s placement, measured: the teacher phase (one RLOO step of ``paper-math``'s teacher settings),
    then ``--placement-students`` students, each one RLOO step of the student settings from its fp32 baseline copy
    (as a sequential worker keeps it), spread over the GPUs this node has, a GPU's students one after another.

    ``own`` (``compute.teacher_gpus 1``): the teacher's model and optimiser leave before the students come (they
    live on a GPU of their own).  ``shared`` (0): they stay, as on the worker GPU that also holds the teacher.
    Each row has the measured peak per GPU beside ``soar plan``'s figure (3b shape only)."""
    from soar.config import load_config
    from soar.engines.trainer import PolicyTrainer
    from soar.loops.plan import plan

    cfg = load_config("paper-math")
    gpus = max(1, torch.cuda.device_count()) if args.device.startswith("cuda") else 1
    devices = [f"cuda:{i}" for i in range(gpus)] if args.device.startswith("cuda") else [args.device]
    predicted = plan(cfg) if args.shape == "3b" else None
    gib = 2**30
    for mode in args.placement_modes.split(","):
        row: dict[str, Any] = {"section": "placement", "mode": mode, "gpus": gpus, "students": args.placement_students}
        if predicted is not None:
            row["plan_teacher_gib"] = predicted["memory"]["teacher"]["total"] / gib
            row["plan_student_gib"] = predicted["student_peak"] / gib
            teacher_b, student_b = predicted["memory"]["teacher"]["total"], predicted["student_peak"]
            row["plan_peak_gib"] = (max(teacher_b, student_b) if mode == "own" else teacher_b + student_b) / gib
        teacher = trainer = None
        try:
            reset_peak(args.device)
            teacher = make_model(args.shape, devices[0])
            vocab = teacher.config.vocab_size
            trainer = PolicyTrainer(teacher, cfg.teacher, 10, 0, compute_dtype=torch.bfloat16)
            r = _rollouts(vocab, 32, args.prompt_tokens, args.teacher_tokens, 5)
            _, row["teacher_peak_gib"] = _timed_steps(lambda: trainer.step(r), args.device, 1)
            if mode == "own":
                teacher = trainer = None
                reset_peak(args.device)
            peaks: list[float | None] = []
            for k in range(args.placement_students):
                device = devices[k % gpus]
                reset_peak(args.device)  # each student's own peak (a resident teacher still counts: it is allocated)
                student = make_model(args.shape, device)
                baseline = {name: t.detach().clone() for name, t in student.state_dict().items()}  # fp32, on device
                s_trainer = PolicyTrainer(student, cfg.student, 10, 0, compute_dtype=torch.bfloat16)
                r = _rollouts(vocab, 32, args.prompt_tokens, args.train_tokens, 20 + k)
                s_trainer.step(r)
                sync(args.device)
                peaks.append(peak_gib(device))
                student.load_state_dict(baseline)  # the next student on this GPU starts from the baseline
                del student, s_trainer, baseline
                gc.collect()
            row["student_peaks_gib"] = peaks
            row["peak_per_gpu_gib"] = max((p for p in peaks if p is not None), default=None)
        except torch.OutOfMemoryError as exc:
            row["error"] = f"out of memory: {str(exc)[:120]}"
        teacher = trainer = None
        out.append(row)
        print_row(out[-1])
        reset_peak(args.device)

def print_row(row: dict[str, Any]) -> None:
    print("  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()), flush=True)


SECTIONS = {"parity": section_parity, "generation": section_generation, "training": section_training,
            "outer": section_outer, "placement": section_placement}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="3b", choices=sorted(SHAPES))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--new-tokens", type=int, default=1024, help="Student generation length.")
    parser.add_argument("--teacher-tokens", type=int, default=512)
    parser.add_argument("--prompt-tokens", type=int, default=200)
    parser.add_argument("--train-tokens", type=int, default=1024, help="Completion tokens per trained sequence.")
    parser.add_argument("--micro-batch", type=int, default=4)
    parser.add_argument("--sections", default="generation,training,outer,parity,placement")
    parser.add_argument("--placement-students", type=int, default=4, help="Students after the teacher phase.")
    parser.add_argument("--placement-modes", default="own,shared",
                        help="own: the teacher leaves the GPU before the students (compute.teacher_gpus 1); shared: it stays.")
    parser.add_argument("--references", default="eager",
                        help="Reference decoders timed beside the CUDA-graph one: eager,generate (empty: none).")
    parser.add_argument("--train-modes", default="full,full+memory,lora,lora+memory")
    parser.add_argument("--batched", type=int, default=1, help="Also time 16 batched LoRA students (1/0).")
    parser.add_argument("--tokenizer", default="build/gpu-bundle/tokenizer",
                        help="A saved tokenizer with a chat template, for the outer section.")
    parser.add_argument("--outer-set", action="append", default=[], metavar="KEY=VALUE",
                        help="A config override of the outer section on top of its own (repeatable).")
    parser.add_argument("--json", default="gpu_check.json")
    args = parser.parse_args()
    import transformers

    from soar.loops.plan import ModelShape

    c = SHAPES[args.shape]
    params = ModelShape(c["num_hidden_layers"], c["hidden_size"], c["intermediate_size"], c["num_attention_heads"],
                        c["num_key_value_heads"], c["vocab_size"], True).params  # soar plan scales from it
    info = {"device": torch.cuda.get_device_name() if args.device.startswith("cuda") else platform.processor(),
            "torch": torch.__version__, "transformers": transformers.__version__, "shape": args.shape,
            "params": params, "args": vars(args)}
    print(json.dumps(info), flush=True)
    rows: list[dict[str, Any]] = []
    for name in args.sections.split(","):
        started = time.perf_counter()
        try:
            SECTIONS[name](args, rows)
        except Exception as exc:  # record and go on: one failed section must not lose the others
            rows.append({"section": name, "error": f"{type(exc).__name__}: {exc}"[:300]})
            traceback.print_exc()
        if rows and rows[-1].get("section") == name and name == "parity":
            print_row(rows[-1])
        print(f"# {name}: {time.perf_counter() - started:.1f} s", flush=True)
        reset_peak(args.device)
        Path(args.json).write_text(json.dumps({"info": info, "rows": rows}, indent=1))
    print_table(info, rows)
    print(f"rows written to {args.json}", flush=True)


def _what(row: dict[str, Any]) -> str:
    if row.get("section") == "placement":
        return (f"placement {row['mode']}: teacher phase, then {row['students']} students on {row['gpus']} GPU(s)")
    if "engine" in row:
        return f"generation {row['shape']} ({row['rows']} rows x {row['new_tokens']} tokens): {row['engine']}"
    if "mode" in row:
        return f"RLOO step {row['mode']} ({row.get('sequences', '?')} x {row.get('completion_tokens', '?')} tokens)"
    if "step" in row:
        return f"outer step {row['step']} ({row['students']} students): " + ", ".join(
            f"{k} {v:.1f} s" for k, v in row["phase_seconds"].items())
    return row.get("what", row["section"])


def _result(row: dict[str, Any]) -> str:
    if "error" in row:
        return f"error: {row['error'][:80]}"
    if "tokens_per_s" in row:
        peak = f", peak {row['peak_gib']:.1f} GiB" if row.get("peak_gib") is not None else ""
        return f"{row['tokens_per_s']:,.0f} tok/s{peak}"
    if "max_abs_delta" in row:
        return f"max abs delta {row['max_abs_delta']:.3g}, mean {row['mean_abs_delta']:.3g}"
    if "max_abs_delta_logprob" in row:
        return (f"first differing token {row['tokens_before_first_difference']}, max abs delta log-prob before it "
                f"{row['max_abs_delta_logprob']:.3g}")
    if row.get("section") == "placement" and "error" not in row:
        plan = f" (soar plan: {row['plan_peak_gib']:.1f})" if "plan_peak_gib" in row else ""
        peak = row.get("peak_per_gpu_gib")
        return f"peak per GPU {'?' if peak is None else f'{peak:.1f}'} GiB{plan}"
    if "step_seconds" in row:
        return f"{row['step_seconds']:.1f} s"
    return f"{row['seconds']:.1f} s" if "seconds" in row else ""


def print_table(info: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    """The whole check as one table (the JSON has every field)."""
    print(f"\n{info['device']}, torch {info['torch']}, transformers {info['transformers']}, shape {info['shape']} "
          f"({info['params'] / 1e9:.2f} B parameters)\n\n| what | result |\n|---|---|")
    for row in rows:
        print(f"| {_what(row)} | {_result(row)} |")


if __name__ == "__main__":
    main()
