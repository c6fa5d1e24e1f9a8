"""The ``soar`` command line.

Heavy imports (torch, transformers, datasets, math-verify) happen inside the
commands, so ``soar --help`` is instant.  Errors in the user's input
(:class:`~soar.errors.SoarError`) print one line and exit with status 2.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Optional

import typer

from soar.config import preset_names
from soar.errors import ConfigError, SoarError

app = typer.Typer(
    help="SOAR: a teacher model learns by meta-RL to write stepping-stone problems "
    "for a student stuck on hard problems (arXiv 2601.18778).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
config_app = typer.Typer(help="Show the shipped config presets.", no_args_is_help=True)
data_app = typer.Typer(help="Load problem sets and make train/test splits.", no_args_is_help=True)
analyze_app = typer.Typer(help="Analyses of what a teacher writes.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(data_app, name="data")
app.add_typer(analyze_app, name="analyze")

OVERRIDES = {"allow_extra_args": True, "ignore_unknown_options": True}
PresetOption = typer.Option(None, "--preset", "-p", help=f"A shipped preset: {', '.join(preset_names())}.")
ConfigOption = typer.Option(None, "--config", "-c", help="A YAML config file.")


def parse_overrides(args: list[str]) -> dict[str, str]:
    """``['--a.b', '1', '--c=2']`` -> ``{'a.b': '1', 'c': '2'}``; values are read as YAML later."""
    overrides: dict[str, str] = {}
    i = 0
    while i < len(args):
        token = args[i]
        if not token.startswith("--") or len(token) == 2:
            raise ConfigError(f"unexpected argument {token!r}: overrides look like --section.key VALUE")
        key = token[2:]
        if "=" in key:
            key, value = key.split("=", 1)
        else:
            if i + 1 >= len(args):
                raise ConfigError(f"override --{key} needs a value")
            i += 1
            value = args[i]
        overrides[key] = value
        i += 1
    return overrides


def resolve_config(preset: str | None, config: Path | None, extra: list[str], default: str | None = "world"):
    from soar.config import load_config

    if preset is None and config is None:
        preset = default
    return load_config(preset=preset, file=config, overrides=parse_overrides(extra))


def files_and_overrides(files: list[str], extra: list[str]) -> tuple[list[Path], list[str]]:
    """Split a variadic FILE argument from the ``--section.key VALUE`` overrides click handed it along with the
    files (unknown options are kept as arguments, and a variadic argument takes them all; it is typed ``str``, as
    a ``Path`` would fold the ``//`` of a URL value)."""
    tokens, paths, overrides, index = list(files), [], [], 0
    while index < len(tokens):
        token = tokens[index]
        if token.startswith("--"):
            overrides.append(token)
            if "=" not in token and index + 1 < len(tokens):
                overrides.append(tokens[index + 1])
                index += 1
        else:
            paths.append(Path(token))
        index += 1
    return paths, overrides + list(extra)


def invocation(preset: str | None, config: Path | None, extra: list[str]) -> str:
    """The config words of this command line (``--preset NAME`` or ``--config FILE``, overrides), for hints that
    name another command to run with the same config."""
    words = [f"--config {config}"] if config is not None else [f"--preset {preset or 'world'}"]
    return " ".join(words + list(extra))


@config_app.command("show", context_settings=OVERRIDES)
def config_show(
    ctx: typer.Context,
    name: Optional[str] = typer.Argument(None, help="Preset name (default: world)."),
    config: Optional[Path] = ConfigOption,
    doc: bool = typer.Option(False, "--doc", help="Put every key's documentation above it, as YAML comments."),
) -> None:
    """Print a preset (or a config file), with any --section.key overrides, resolved as YAML."""
    from soar.config import to_yaml, to_yaml_with_docs

    resolved = resolve_config(name, config, ctx.args)
    typer.echo((to_yaml_with_docs if doc else to_yaml)(resolved), nl=False)



@config_app.command("list")
def config_list() -> None:
    """List the shipped presets."""
    from soar.config import preset_names

    for name in preset_names():
        typer.echo(name)


@data_app.command("split", context_settings=OVERRIDES)
def data_split(ctx: typer.Context, preset: Optional[str] = PresetOption, config: Optional[Path] = ConfigOption) -> None:
    """Load the config's problem set and write (or reuse) its seeded train/test split."""
    from soar.data.load import load_hard_set

    cfg = resolve_config(preset, config, ctx.args)
    split = load_hard_set(cfg.data)
    typer.echo(f"{len(split.train)} train / {len(split.test)} test problems in {split.directory}")


@app.command("world", context_settings=OVERRIDES)
def world(
    ctx: typer.Context,
    preset: Optional[str] = PresetOption,
    config: Optional[Path] = ConfigOption,
    per_kind: int = typer.Option(200, "--per-kind", help="Problems per kind for the gap table."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Also write the gap (or the build's report) as "
                                       "JSON to this file."),
    build: Optional[Path] = typer.Option(None, "--build", help="Rebuild the world model from its recipe into this "
                                         "new folder (one thread, ~10 min) and say whether it equals the shipped one."),
    hard_pool: Optional[Path] = typer.Option(None, "--hard-pool", help="Write the problems of data.world_kinds x "
                                             "data.world_per_kind whose student exact success is below --hard-max "
                                             "to this JSONL file, for soar filter."),
    hard_max: float = typer.Option(1e-5, "--hard-max", help="The exact-success bound of --hard-pool."),
) -> None:
    """The designed world: print the gap it was built with (per kind, what it answers as a teacher and as a
    student, the student's exact success, what it writes as a teacher), or rebuild it, or make a hard pool."""
    from rich.console import Console

    from soar.loops.world import hard_pool as make_hard_pool
    from soar.loops.world import measure_gap, rebuild, render_gap, write_json

    cfg = resolve_config(preset, config, ctx.args, default="world")
    if cfg.model.prompts != "world":
        raise ConfigError(f"soar world measures a world model (model.prompts: world); got model.name {cfg.model.name!r}")
    if per_kind < 1:
        raise ConfigError(f"--per-kind must be at least 1, got {per_kind}")
    if build is not None and hard_pool is not None:
        raise ConfigError("give --build or --hard-pool, not both")
    if build is not None:
        report = rebuild(cfg, build, Console())
        same = report.get("equals_shipped")
        typer.echo(f"built {cfg.model.name} in {report['seconds']} s (warm phase ended at batch {report['warm_done']},"
                   f" loss {report['final_loss']:.4f}) -> {build}; weights sha256 {report['sha256'][:16]}"
                   + ("" if same is None else f"; equal to the shipped weights: {same}"))
    elif hard_pool is not None:
        kept, drawn = make_hard_pool(cfg, hard_pool, hard_max)
        typer.echo(f"{kept} of {drawn} problems ({', '.join(cfg.data.world_kinds)}) with student exact success "
                   f"< {hard_max:g} -> {hard_pool}; next: soar filter --preset world --data.source {hard_pool}")
        return
    else:
        report = measure_gap(cfg, per_kind=per_kind)
        typer.echo(render_gap(report))
    if out is not None:
        write_json(report, out)


@app.command("smoke", context_settings=OVERRIDES)
def smoke(
    ctx: typer.Context,
    preset: Optional[str] = PresetOption,
    config: Optional[Path] = ConfigOption,
    problems: int = typer.Option(16, help="How many hard train problems to try."),
    samples: int = typer.Option(4, help="Samples per problem (temperature from student config)."),
) -> None:
    """Load the model, answer hard train problems with the student prompt, score them, print pass@k."""
    from soar.loops.smoke import run_smoke

    cfg = resolve_config(preset, config, ctx.args)
    run_smoke(cfg, n_problems=problems, n_samples=samples)


@app.command("filter", context_settings=OVERRIDES)
def filter_(
    ctx: typer.Context,
    preset: Optional[str] = PresetOption,
    config: Optional[Path] = ConfigOption,
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output folder (default: out_dir/filter-SOURCE-failK); "
                                       "run the same command again to continue an interrupted filter."),
    max_problems: Optional[int] = typer.Option(None, help="Stop after this many problems (a partial, resumable result)."),
) -> None:
    """Keep the problems the model fails k times out of k (data.fail_at_k): the hard set, its split, stats."""
    from soar.data.provenance import filter_out_dir
    from soar.loops.filter import run_filter

    cfg = resolve_config(preset, config, ctx.args)
    if out is None:
        out = filter_out_dir(cfg.data, cfg.out_dir)
    run_filter(cfg, out, max_problems=max_problems)


@app.command("train", context_settings=OVERRIDES)
def train(
    ctx: typer.Context,
    preset: Optional[str] = PresetOption,
    config: Optional[Path] = ConfigOption,
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Run directory (default: out_dir/soar-DATE-TIME)."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue the run in this directory from its last checkpoint."),
) -> None:
    """Run SOAR (Algorithm 1): teacher generation, inner student RL, grounded rewards, promotion, teacher RL."""
    if resume is not None:
        if preset or config or out:
            raise ConfigError("--resume continues a run with its saved config; drop --preset/--config/--out")
        from soar.config import resume_overrides

        overrides = resume_overrides(parse_overrides(ctx.args))  # checkpoint.keep etc.; the rest is refused
        from soar.loops.train import train as run_train

        run_train(resume=resume, resume_overrides=overrides)
    else:
        from soar.data.provenance import require_provenance

        cfg, words = resolve_config(preset, config, ctx.args), invocation(preset, config, ctx.args)
        require_provenance(cfg.data, cfg.model, words, cfg.out_dir)  # bad input fails before torch is imported
        from soar.loops.train import train as run_train

        run_train(cfg, out=out, invocation=words)


@app.command("probe", context_settings=OVERRIDES)
def probe(
    ctx: typer.Context,
    out: Path = typer.Option(..., "--out", "-o", help="Probe folder (run the same command again to continue)."),
    datasets: int = typer.Option(2, "--datasets", help="Datasets per kind (each trains inner.repeats students)."),
    kinds: Optional[str] = typer.Option(None, "--kinds", help="Comma-separated control kinds (default: oracle, "
                                        "stepping, junk, teacher; for a world config oracle, add-c1, add-c2, add-c3, junk, "
                                        "teacher, and any add-cK may be named)."),
    stepping: Optional[Path] = typer.Option(None, "--stepping", help="A problem file of easier problems of the "
                                            "domain (default: the easier arithmetic tiers, for arithmetic sources)."),
    preset: Optional[str] = PresetOption,
    config: Optional[Path] = ConfigOption,
) -> None:
    """Reward controls: the grounded reward of oracle, stepping-stone, junk and base-teacher datasets for one
    baseline student and Q_R; sizes an inner-loop budget before a run."""
    from soar.data.provenance import require_provenance

    cfg, words = resolve_config(preset, config, ctx.args), invocation(preset, config, ctx.args)
    require_provenance(cfg.data, cfg.model, words, cfg.out_dir)
    from soar.loops.probe import run_probe

    run_probe(cfg, out, datasets=datasets, kinds=None if kinds is None else [k.strip() for k in kinds.split(",")
                                                                             if k.strip()],
              stepping_file=str(stepping) if stepping else None, invocation=words)


@app.command("plan", context_settings=OVERRIDES)
def plan(
    ctx: typer.Context,
    preset: Optional[str] = PresetOption,
    config: Optional[Path] = ConfigOption,
    devices: Optional[int] = typer.Option(None, "--devices", help="Devices the students share (default: one per "
                                          "student on GPU, 1 on CPU)."),
    length_fraction: float = typer.Option(0.5, "--length-fraction", help="Share of max_new_tokens a reply uses on "
                                          "average (assumed)."),
    acceptance: Optional[float] = typer.Option(None, "--acceptance", help="Teacher acceptance rate (assumed: 0.5 "
                                               "rejection, 0.4 otherwise)."),
    gen_tok_s: Optional[float] = typer.Option(None, "--gen-tok-s", help="Sampled tokens/s per device (overrides "
                                              "the table)."),
    train_tok_s: Optional[float] = typer.Option(None, "--train-tok-s", help="Trained tokens/s per device "
                                                "(overrides the table)."),
    hard_problems: Optional[int] = typer.Option(None, "--hard-problems", help="Hard-set size, when it has no "
                                                "filter provenance yet."),
    measured: Optional[Path] = typer.Option(None, "--measured", help="Throughput measured by scripts/gpu_check.sh "
                                            "(its JSON; e.g. docs/gpu/gpu_check-h200-2026-11-26.json)."),
) -> None:
    """Work, memory per device and device-hours of one outer step, the whole run and one evaluation (no model loaded)."""
    from soar.loops.plan import measured_throughput, render_plan
    from soar.loops.plan import plan as make_plan

    cfg = resolve_config(preset, config, ctx.args)
    memory = cfg.student.gradient_checkpointing or bool(cfg.student.logprob_chunk)
    speed = (measured_throughput(measured, cfg.student.finetune, memory, cfg.compute.cuda_graphs)
             if measured is not None else None)
    typer.echo(render_plan(cfg, make_plan(cfg, devices, length_fraction, acceptance, gen_tok_s, train_tok_s,
                                          hard_problems, speed)))


@app.command("sample", context_settings=OVERRIDES)
def sample(
    ctx: typer.Context,
    out: Path = typer.Option(..., "--out", "-o", help="JSONL file to write the accepted question/answer pairs to."),
    count: int = typer.Option(128, "--count", "-n", help="Accepted questions to write (the paper samples 128)."),
    teacher: Optional[Path] = typer.Option(None, "--teacher", help="A soar train run directory: sample its teacher "
                                           "(last checkpoint, the run's config). Without it: the base model (Base-T)."),
    preset: Optional[str] = PresetOption,
    config: Optional[Path] = ConfigOption,
    seed: Optional[int] = typer.Option(None, help="Sampling seed (default compute.seed)."),
    step: Optional[int] = typer.Option(None, "--step", help="With --teacher: the teacher after this outer step "
                                       "(1-based, as B.7's 'step 170'; kept every checkpoint.teacher_every steps). "
                                       "Default: the run's last checkpoint."),
) -> None:
    """Sample questions from a teacher with the training prompt and format filtering; write JSONL."""
    from soar.loops.run_dir import RunDir
    from soar.loops.sample import sample_questions

    if teacher is not None:
        if preset or config:
            raise ConfigError("--teacher uses the run's saved config; drop --preset/--config (overrides still apply)")
        cfg = RunDir(teacher).config(overrides=parse_overrides(ctx.args))
    else:
        cfg = resolve_config(preset, config, ctx.args)
    if step is not None and teacher is None:
        raise ConfigError("--step picks a step of a run's teacher: give --teacher RUN_DIR too")
    sample_questions(cfg, count, out, teacher_run=teacher, seed=seed, teacher_step=step)


@app.command("evaluate", context_settings=OVERRIDES)
def evaluate(
    ctx: typer.Context,
    out: Path = typer.Option(..., "--out", "-o", help="Evaluation folder (seeds already finished there are kept)."),
    questions: Optional[Path] = typer.Option(None, "--questions", "-q", help="Question source: a PQ file, a soar "
                                             "sample file or any problem file. Without it: Hard-Only."),
    promoted_student: Optional[Path] = typer.Option(None, "--promoted-student", help="Evaluate this run's promoted "
                                                    "baseline student (PS), inference only."),
    name: Optional[str] = typer.Option(None, "--name", help="Method name in reports (default from the source)."),
    preset: Optional[str] = PresetOption,
    config: Optional[Path] = ConfigOption,
) -> None:
    """Train fresh students (RLOO) on a question source + the hard train split; pass@k on the hard test split."""
    from soar.data.problems import load_problems
    from soar.loops.evaluate import evaluate as run_evaluate

    if questions is not None and promoted_student is not None:
        raise ConfigError("give --questions (train a fresh student) or --promoted-student (inference only), not both")
    cfg = resolve_config(preset, config, ctx.args)
    problems = load_problems(str(questions)) if questions is not None else None
    if name is None:
        name = "PS" if promoted_student else "Hard-Only" if questions is None else \
            "PQ" if questions.name == "promotion_questions.jsonl" else questions.stem
    run_evaluate(cfg, out, name, problems, promoted_run=promoted_student,
                 invocation=invocation(preset, config, ctx.args))


@app.command("report")
def report(
    dirs: list[Path] = typer.Argument(..., help="soar train run directories and soar evaluate folders."),
    out: Path = typer.Option(Path("report"), "--out", "-o", help="Folder for table.md, table.csv and the PNG plots."),
    html: bool = typer.Option(False, "--html", help="Also report.html: everything in one self-contained page, with "
                              "every step's questions and the promotion questions."),
) -> None:
    """Tables (method x pass@k, mean ± SD) and plots (teacher rewards, student pass@k, acceptance)."""
    from soar.loops.report import write_report

    for path in write_report(dirs, out, html=html):
        typer.echo(str(path))


def main(argv: list[str] | None = None) -> Any:
    try:
        return app(args=argv, prog_name="soar")
    except SoarError as exc:
        typer.echo(f"soar: error: {exc}", err=True)
        sys.exit(2)


@analyze_app.command("diversity", context_settings=OVERRIDES)
def analyze_diversity(
    ctx: typer.Context,
    files: list[str] = typer.Argument(..., help="Question files (JSONL with a 'question' field per line: soar "
                                       "sample output, promotion_questions.jsonl, a run's questions/step_N.jsonl)."),
    kernel: str = typer.Option("ngram", "--kernel", help="ngram (word 1- and 2-grams, no model) or embedding "
                               "(mean-pooled hidden states of the config's model)."),
    size: int = typer.Option(128, "--size", help="Questions per draw (Table 1: 128)."),
    iterations: int = typer.Option(100, "--iterations", help="Draws without replacement (Table 1: 100)."),
    seed: int = typer.Option(0, "--seed"),
    preset: Optional[str] = PresetOption,
    config: Optional[Path] = ConfigOption,
) -> None:
    """Vendi Score (mean ± SD over draws) and mean pairwise cosine distance of each file's questions."""
    from soar.analysis.diversity import diversity, ngram_matrix
    from soar.data.problems import load_problems

    files, extra = files_and_overrides(files, ctx.args)
    if kernel not in ("ngram", "embedding"):
        raise ConfigError(f"--kernel must be ngram or embedding, got {kernel!r}")
    if size < 1 or iterations < 1:
        raise ConfigError(f"--size and --iterations must be at least 1, got {size} and {iterations}")
    sets = []
    for file in files:
        questions = [p.question for p in load_problems(str(file))]
        if not questions:
            raise SoarError(f"{file}: no questions")
        sets.append((file, questions))
    vectors_of, described = ngram_matrix, "word 1- and 2-grams, cosine"
    if kernel == "embedding":
        import torch

        from soar.analysis.embed import embed
        from soar.engines.models import load_model

        cfg = resolve_config(preset, config, extra)
        if cfg.compute.threads:
            torch.set_num_threads(cfg.compute.threads)
        model, tokenizer = load_model(cfg.model)
        vectors_of = lambda texts: embed(texts, model, tokenizer)  # noqa: E731
        described = f"{cfg.model.name}, mean-pooled last hidden states, cosine"
    typer.echo(f"kernel: {kernel} ({described}); Vendi Score over {iterations} draws of {size} questions without "
               f"replacement (a set of at most {size}: scored once)")
    typer.echo(f"{'file':<48} {'questions':>9} {'VS':>8} {'± SD':>7} {'pairwise cos dist':>18}")
    for file, questions in sets:
        d = diversity(vectors_of(questions), size, iterations, seed)
        name = str(file) if len(str(file)) <= 48 else "..." + str(file)[-45:]
        typer.echo(f"{name:<48} {len(questions):>9} {d['vendi']:>8.2f} {d['vendi_sd']:>7.2f} "
                   f"{d['pairwise_cosine_distance']:>18.3f}")


@analyze_app.command("judge", context_settings=OVERRIDES)
def analyze_judge(
    ctx: typer.Context,
    files: list[str] = typer.Argument(..., help="Question files (JSONL with 'question' and 'answer' per line: soar "
                                       "sample output, promotion_questions.jsonl, a run's questions/step_N.jsonl)."),
    cache: Path = typer.Option(Path("~/.cache/soar/judge.jsonl"), "--cache",
                               help="Verdicts by judge model and prompt, appended as they arrive (resumable)."),
    preset: Optional[str] = PresetOption,
    config: Optional[Path] = ConfigOption,
) -> None:
    """Appendix C.4's judge taxonomy (Table 7) of each file's QA pairs: judge.base_url, judge.model, the API key
    from the environment variable judge.api_key_env."""
    from rich.progress import Progress

    from soar.analysis.judge import ROWS, ChatEndpoint, JudgeCache, LocalJudge, judge_all, taxonomy
    from soar.data.problems import load_problems

    files, extra = files_and_overrides(files, ctx.args)
    cfg = resolve_config(preset, config, extra)
    j = cfg.judge
    if not j.base_url or not j.model:
        raise ConfigError("soar analyze judge needs --judge.base_url (an OpenAI-compatible API, e.g. "
                          "https://api.openai.com/v1, or local) and --judge.model")
    sets = []
    for file in files:
        items = [(p.question, p.answer) for p in load_problems(str(file))]
        if not items:
            raise SoarError(f"{file}: no questions")
        sets.append((file, items))
    complete = (LocalJudge(j.model, j.max_tokens, cfg.model).complete if j.base_url == "local"
                else ChatEndpoint(j.base_url, j.model, j.api_key_env, j.timeout_s, j.max_tokens).complete)
    store = JudgeCache(cache.expanduser())
    results = []
    with Progress(transient=True) as progress:
        for file, items in sets:
            task = progress.add_task(f"judging {file.name}", total=len(items))
            verdicts = judge_all(items, complete, j.model, store, j.concurrency, j.retries, j.backoff_s,
                                 progress=lambda: progress.advance(task))
            results.append((file, taxonomy(verdicts)))
    typer.echo(f"judge: {j.model} ({j.base_url}); Appendix C.4 prompt; % of all samples; verdicts cached in {cache}")
    names = [f.name if len(f.name) <= 24 else f.name[:21] + "..." for f, _ in results]
    typer.echo(f"{'category':<22}" + "".join(f"{n:>26}" for n in names))
    for label, key in ROWS:
        typer.echo(f"{label:<22}" + "".join(f"{t['percent'][key]:>25.1f}%" for _, t in results))
    typer.echo(f"{'Total Samples':<22}" + "".join(f"{t['total']:>26}" for _, t in results))
    typer.echo(f"{'Unjudged':<22}" + "".join(f"{t['unjudged']:>26}" for _, t in results))


if __name__ == "__main__":
    main()
