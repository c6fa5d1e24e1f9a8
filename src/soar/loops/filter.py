"""``soar filter``: keep the problems a model fails k times out of k (fail@k, Sections 3 and 4.1, B.5).

For every problem of the config's source, sample ``data.fail_at_k`` replies
with the student prompt (``data.filter_temperature``,
``data.filter_max_new_tokens``; the paper: 128 samples, temperature 1.0, 1024
tokens), score them with the B.3 reward (a success is full marks, as
everywhere else in soar), and keep the problems with 0 successes.  The output
folder holds::

    OUT/results.jsonl   one record per problem: id, question, answer, successes, k
    OUT/hard.jsonl      the fail@k set (problems with 0/k), in pool order
    OUT/train.jsonl     its seeded split (``data.split_seed``, ``data.test_fraction``;
    OUT/test.jsonl      the same function and seed ``soar train`` uses)
    OUT/stats.json      pool size, kept, settings, per-problem success counts, problems/s, and the
                        provenance ``soar train`` checks (prompt hash, hash of hard.jsonl's problems;
                        ``soar.data.provenance``)

Resumable: problems are sampled in fixed blocks (in pool order) and each
block's records are appended and fsynced as soon as it is scored, so an
interrupted filter continues with the first block it had not finished.  Every
block's sampling seed comes from ``compute.seed`` and the block's index, so a
resumed filter writes what an uninterrupted one would have.  A results file
written with other settings (model, k, temperature, tokens, seed, pool) is
refused rather than mixed.

Choice where the paper is silent: every problem gets all k samples (no early
exit after its first success), so the stats give the true success counts.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from soar.algo.seeds import derive_seed
from soar.config import SoarConfig
from soar.data.files import write_jsonl
from soar.data.load import load_pool
from soar.data.provenance import PROVENANCE_VERSION, problems_key, prompt_sha
from soar.data.splits import content_key, split_problems
from soar.errors import ConfigError, SoarError
from soar.io import append_jsonl, read_jsonl
from soar.types import Problem
from soar.world.family import model_identity


@dataclass
class FilterSummary:
    out_dir: Path
    pool: int
    kept: int
    seconds: float
    """Wall time of the sampling this call did (not of blocks a previous call finished)."""
    sampled: int
    """Problems this call sampled."""

    @property
    def problems_per_second(self) -> float:
        return self.sampled / self.seconds if self.seconds > 0 else 0.0


def filter_settings(cfg: SoarConfig, pool: list[Problem]) -> dict[str, Any]:
    """What a results file must agree on to be continued."""
    from soar.engines.models import matmul_dtype_name

    d = cfg.data
    return {"model": model_identity(cfg.model.name), "dtype": cfg.model.dtype, "matmuls": matmul_dtype_name(cfg.model), "k": d.fail_at_k, "temperature": d.filter_temperature,
            "top_p": cfg.student.top_p, "max_new_tokens": d.filter_max_new_tokens, "seed": cfg.compute.seed,
            "require_boxed": cfg.reward.require_boxed, "reward": cfg.reward.kind,
            **({"numeric_answers": True} if cfg.reward.numeric_answers else {}), "pool": content_key(pool, 0, 0.5),
            "block": _block_size(d.fail_at_k, cfg.compute.generation_batch_size)}


def run_filter(cfg: SoarConfig, out_dir: str | Path, console: Console | None = None,
               max_problems: int | None = None) -> FilterSummary:
    """Filter the config's pool into ``out_dir`` (continuing a previous call there); see the module doc.

    ``max_problems`` stops after that many problems in total (a partial, resumable result).
    """
    from soar.engines.evaluation import sampled_correct
    from soar.engines.generation import SamplingParams, build_generator
    from soar.loops.setup import setup

    console = console or Console()
    if cfg.data.fail_at_k is None:
        raise ConfigError("data.fail_at_k is null: soar filter needs the k of fail@k (e.g. --data.fail_at_k 128)")
    out = Path(out_dir)
    pool = load_pool(cfg.data)
    settings = filter_settings(cfg, pool)
    k, block = cfg.data.fail_at_k, settings["block"]
    done = _read_results(out, settings, len(pool))
    target = len(pool) if max_problems is None else min(len(pool), -(-max_problems // block) * block)
    console.print(f"fail@{k} filter of {len(pool)} problems ({cfg.data.source}) into {out}"
                  + (f"; {len(done)} already done" if done else ""))
    sampled, seconds = 0, 0.0
    if len(done) < target:
        with setup(cfg) as s, Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                         TimeRemainingColumn(), TextColumn("{task.fields[rate]}"), console=console) as progress:
            task = progress.add_task(f"fail@{k}", total=target, completed=len(done), rate="")
            generator = build_generator(cfg.compute, s.model, s.tokenizer, compute_dtype=s.precision)
            started = time.perf_counter()
            for first in range(len(done), target, block):
                problems = pool[first:min(first + block, target)]
                sampling = SamplingParams(temperature=cfg.data.filter_temperature, top_p=cfg.student.top_p,
                                          max_new_tokens=cfg.data.filter_max_new_tokens,
                                          seed=derive_seed(cfg.compute.seed, "filter", first // block))
                scored = sampled_correct(generator, s.tokenizer, problems, s.reward, n=k, sampling=sampling)
                records = [{"index": first + i, "id": p.id, "question": p.question, "answer": p.answer,
                            "metadata": p.metadata, "successes": c, "k": k}
                           for i, (p, c) in enumerate(zip(problems, scored.correct))]
                if not done:
                    _rewrite(out / "results.jsonl", settings, [])
                append_jsonl(out / "results.jsonl", records)
                done.extend(records)
                sampled += len(problems)
                seconds = time.perf_counter() - started
                progress.update(task, completed=len(done), rate=f"{sampled / seconds:.2f} problems/s")
    summary = _write_outputs(cfg, out, pool, done, settings, sampled, seconds)
    rate = f", {summary.problems_per_second:.2f} problems/s" if sampled else ""
    status = "" if len(done) == len(pool) else f" (partial: {len(done)}/{len(pool)}; run again to continue)"
    console.print(f"kept {summary.kept} of {len(done)} problems with 0/{k} successes{status}{rate}\n"
                  f"  hard set {out / 'hard.jsonl'}\n  split    {out / 'train.jsonl'}, {out / 'test.jsonl'}\n"
                  f"  stats    {out / 'stats.json'}")
    return summary


def _block_size(k: int, batch: int) -> int:
    """Problems per block: enough rows (problems x k) to fill a generation batch, at least one problem."""
    return max(1, batch // k)


def _read_results(out: Path, settings: dict[str, Any], pool_size: int) -> list[dict[str, Any]]:
    """The records of finished blocks (a block a kill cut short is dropped from the file and redone)."""
    path = out / "results.jsonl"
    if not path.exists():
        return []
    lines = read_jsonl(path)  # the one rule: a line torn by a kill (the last) is skipped
    header = lines[0] if lines else {}
    if header.get("settings") != settings:
        raise SoarError(f"{path} was written with other settings ({header.get('settings')}); "
                        f"use another output folder, or delete it to start over")
    records = lines[1:]
    if records and records[-1]["index"] != len(records) - 1:
        raise SoarError(f"{path}: records are not the pool's problems in order; delete it to start over")
    whole = len(records) if len(records) == pool_size else len(records) - len(records) % settings["block"]
    if whole < len(records) or (lines and not path.read_bytes().endswith(b"\n")):
        records = records[:whole]
        _rewrite(path, settings, records)
    return records


def _lines(records: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def _rewrite(path: Path, settings: dict[str, Any], records: list[dict[str, Any]]) -> None:
    """Header and ``records``, atomically (temp file + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".jsonl.tmp")
    tmp.write_text(json.dumps({"settings": settings}) + "\n" + _lines(records), encoding="utf-8")
    tmp.replace(path)


def _write_outputs(cfg: SoarConfig, out: Path, pool: list[Problem], done: list[dict[str, Any]],
                   settings: dict[str, Any], sampled: int, seconds: float) -> FilterSummary:
    hard = [Problem(r["question"], r["answer"], r["id"], dict(r.get("metadata") or {}, successes_at_k=0))
            for r in done if r["successes"] == 0]
    write_jsonl(out / "hard.jsonl", hard)
    if len(hard) >= 2:
        train, test = split_problems(hard, cfg.data.split_seed, cfg.data.test_fraction)
        write_jsonl(out / "train.jsonl", train)
        write_jsonl(out / "test.jsonl", test)
    earlier = 0.0  # sampling time of previous calls that this call continued
    if len(done) > sampled and (out / "stats.json").exists():
        earlier = json.loads((out / "stats.json").read_text()).get("seconds", 0.0)
    total_seconds = earlier + seconds
    stats = {"source": cfg.data.source, "pool": len(pool), "filtered": len(done), "complete": len(done) == len(pool),
             "kept": len(hard), "settings": settings, "prompt_sha": prompt_sha(cfg.model.prompts), "hard_key": problems_key(hard),
             "provenance": PROVENANCE_VERSION, "split_seed": cfg.data.split_seed,
             "test_fraction": cfg.data.test_fraction, "seconds": round(total_seconds, 2),
             "problems_per_second": round(len(done) / total_seconds, 4) if total_seconds else None,
             "successes": {r["id"] or str(r["index"]): r["successes"] for r in done}}
    tmp = out / "stats.json.tmp"
    tmp.write_text(json.dumps(stats, indent=1) + "\n")
    tmp.replace(out / "stats.json")
    return FilterSummary(out, len(pool), len(hard), seconds, sampled)
