"""``motiongpt evaluate`` (the field's metrics, quality gates) and ``motiongpt evaluate train-evaluator``."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from .. import validation
from ..errors import MotionGPTError
from .app import device_of, get_state, show_progress
from .types import EVAL_PRECISION, number

evaluate_app = typer.Typer(
    help="Evaluate a model with the standard text-to-motion metrics (or train an evaluator).",
    invoke_without_command=True,
)
METRIC_LABELS = {"r_precision_top1": "R@1", "r_precision_top2": "R@2", "r_precision_top3": "R@3", "fid": "FID",
                 "mm_dist": "MM-Dist", "diversity": "Diversity", "multimodality": "MModality"}  # fmt: skip


@evaluate_app.callback()
def evaluate_cmd(
    ctx: typer.Context,
    model: Path | None = typer.Option(None, "--model", help="Model directory or training run [default: embedded]."),
    data: Path | None = typer.Option(None, "--data", help="Dataset JSONL from `motiongpt data prepare`.",
                                     dir_okay=False),  # fmt: skip
    evaluator: Path | None = typer.Option(None, "--evaluator", help="An evaluator made by train-evaluator, or the "
                                          "T2M evaluator (finest.tar or its folder) [default: the one shipped beside "
                                          "the embedded model]."),  # fmt: skip
    glove: Path | None = typer.Option(None, "--glove", help="GloVe folder (our_vab_*) for the T2M evaluator "
                                      "[default: found beside it]."),  # fmt: skip
    protocol: str = typer.Option("standard", "--protocol", help="standard (caption-length fix, whole split) or "
                                 "legacy (MDM's original computation)."),  # fmt: skip
    split: str = typer.Option("test", "--split", help="Dataset split to evaluate on."),
    replications: int = typer.Option(20, "--replications", "-r", parser=number(validation.REPLICATIONS),
                                     help="Independent repetitions (95% CI)."),  # fmt: skip
    low_source: str = typer.Option("gt", "--low-source", help="gt | prompt | none: the low-level text used."),
    sampler: str = typer.Option("auto", "--sampler", help="auto | ddim | ddpm | lcm (ddpm: an imported model's own "
                                "loop, all of its diffusion steps unless --steps; auto: lcm for a distilled model, "
                                "else ddim)."),  # fmt: skip
    steps: int | None = typer.Option(None, "--steps", parser=number(validation.STEPS),
                                     help="Denoising steps [default: DDIM 50, or the model's measured default "
                                     "(config.json sampling.steps); lcm the student's own; DDPM the "
                                     "model's]."),  # fmt: skip
    eta: float = typer.Option(0.0, "--eta", parser=number(validation.ETA), help="DDIM noise."),
    precision: str = EVAL_PRECISION,
    guidance: float | None = typer.Option(None, "--guidance", parser=number(validation.GUIDANCE),
                                          help="Classifier-free guidance [default: the model's, 2.5]."),  # fmt: skip
    limit: int | None = typer.Option(None, "--limit", parser=number(validation.EVAL_LIMIT),
                                     help="Clips per replication (>= 32) [default: the whole split]."),  # fmt: skip
    mm_texts: int = typer.Option(0, "--mm-texts", parser=number(validation.MM_TEXTS),
                                 help="Texts for MultiModality (0: skip; the field uses 100)."),  # fmt: skip
    mm_repeats: int = typer.Option(30, "--mm-repeats", parser=number(validation.MM_REPEATS),
                                   help="Motions per MultiModality text (>= 10)."),  # fmt: skip
    seed: int = typer.Option(0, "--seed", parser=number(validation.SEED), help="Everything random derives from it."),
    index: Path | None = typer.Option(None, "--index", help="Retrieval index for --low-source prompt "
                                      "[default: the model's own]."),  # fmt: skip
    backend: str | None = typer.Option(None, "--backend", help="openai | retrieval, for --low-source prompt."),
    base_url: str | None = typer.Option(None, "--base-url", help="OpenAI-compatible endpoint for --backend openai."),
    llm_model: str | None = typer.Option(None, "--llm-model", help="Chat model for --backend openai."),
    real_only: bool = typer.Option(False, "--real-only", help="Only the real-motion row (no model)."),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the results as JSON to this file ('-': "
                                         "stdout)."),  # fmt: skip
    fail_if: list[str] = typer.Option([], "--fail-if", help='Exit 1 when a condition holds, e.g. "fid>0.5", "r1<0.3" '
                                      "(repeatable)."),  # fmt: skip
) -> None:
    """Evaluate a model: R-precision, FID, MM-Dist, Diversity (and MultiModality) against real motion."""
    if ctx.invoked_subcommand is not None:
        return
    from ..api import Pipeline
    from ..atomic import atomic_write_text
    from ..data.prepare import load_dataset
    from ..evaluation.runner import EvalOptions, evaluate, failed_gates, open_evaluator, parse_gate
    from ..paths import cache_dir, default_evaluator_dir
    from ..text.prompting import PromptConfig

    state = get_state(ctx)
    if data is None:
        raise typer.BadParameter("is required", param_hint="--data")
    if backend is not None and backend not in ("openai", "retrieval"):
        raise typer.BadParameter(f"unknown backend {backend!r} (openai or retrieval)", param_hint="--backend")
    try:
        options = EvalOptions(split=split, replications=replications, low_source=low_source, steps=steps,
                              sampler=sampler, eta=eta, precision=precision, guidance=guidance, limit=limit,
                              mm_texts=mm_texts, mm_repeats=mm_repeats, seed=seed, protocol=protocol)  # fmt: skip
    except MotionGPTError as exc:  # a choice option's bad value: a usage error naming it
        raise typer.BadParameter(str(exc)) from None
    gates = [parse_gate(text) for text in fail_if]
    device = device_of(state)
    ev = open_evaluator(evaluator or default_evaluator_dir(), glove=glove, device=device, cache_dir=cache_dir())
    records, mean, std = load_dataset(data)
    pipe = None
    if not real_only:
        prompt = PromptConfig.from_settings(state.settings, backend=backend, base_url=base_url, model=llm_model)
        pipe = Pipeline.from_pretrained(model, device=device, index=index, prompt=prompt, cache_dir=cache_dir(),
                                        sampler=sampler, steps=steps)  # fmt: skip
    progress = None
    if show_progress(state):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        progress = Progress(TextColumn("evaluating"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                            transient=True)  # fmt: skip
        progress.start()
        task = progress.add_task("eval", total=None)
    try:
        result = evaluate(None if pipe is None else pipe.loaded, records, mean, std, ev, options,
                          prompter=pipe.prompter if pipe is not None and low_source == "prompt" else None,
                          device=device, encoders=None if pipe is None else pipe.encoders,
                          on_progress=(lambda d, t: progress.update(task, completed=d, total=t)) if progress else None)
    finally:
        if progress is not None:
            progress.stop()
    payload = result.to_json()
    payload["model"] = None if pipe is None else pipe.name
    payload["evaluator"] = ev.name
    if json_out is not None:
        text = json.dumps(payload, indent=1)
        if str(json_out) == "-":
            typer.echo(text)
        else:
            atomic_write_text(json_out, text + "\n")
    if str(json_out) != "-" and not state.quiet:
        _print_table(result, payload)
    failures = failed_gates(result, gates)
    if failures:
        raise MotionGPTError("quality gate failed: " + "; ".join(failures))


def _print_table(result, payload) -> None:
    from rich.console import Console
    from rich.table import Table

    metrics = [m for m in METRIC_LABELS if any(m in row for row in result.rows.values())]
    table = Table(title=f"{payload['model'] or 'real motion'} on {payload['split']} ({result.clips} clips x "
                        f"{payload['replications']} replications, low-level: {payload['low_source']}, "
                        f"evaluator {payload['evaluator']}, {payload['protocol']} protocol)")  # fmt: skip
    table.add_column("")
    for m in metrics:
        table.add_column(METRIC_LABELS[m], justify="right")
    for name, row in result.rows.items():
        table.add_row(name, *[f"{row[m][0]:.3f} ±{row[m][1]:.3f}" if m in row else "-" for m in metrics])
    Console(width=160).print(table)


@evaluate_app.command("train-evaluator")
def train_evaluator_cmd(
    ctx: typer.Context,
    data: Path = typer.Option(..., "--data", help="Dataset JSONL from `motiongpt data prepare`.", dir_okay=False),
    out: Path = typer.Option(..., "--output", "-o", help="Evaluator directory to write."),
    config: Path | None = typer.Option(None, "--config", "-c", help="TOML with an [evaluator] table (sizes, steps, "
                                       "lr, text_encoder, ...)."),  # fmt: skip
    steps: int | None = typer.Option(None, "--steps", parser=number(validation.TRAIN_STEPS),
                                     help="Training steps (overrides the config)."),  # fmt: skip
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing evaluator directory."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary."),
) -> None:
    """Train a contrastive evaluator (T2M motion encoder + a sentence-embedding text side) for any dataset."""
    import time

    from ..data.prepare import load_dataset
    from ..evaluation.learned import EvaluatorConfig, train_evaluator
    from ..paths import cache_dir

    state = get_state(ctx)
    if out.exists() and not overwrite:
        raise MotionGPTError(f"{out} already exists", hint="pass --overwrite, or another -o folder")
    cfg = EvaluatorConfig.from_toml(config, steps=steps)
    records, mean, std = load_dataset(data)
    last = {"t": 0.0}

    def on_step(step: int, loss: float) -> None:
        if not state.quiet and (time.monotonic() - last["t"] > 10 or step == cfg.steps):
            last["t"] = time.monotonic()
            typer.echo(f"step {step}/{cfg.steps} loss {loss:.4f}", err=True)

    result = train_evaluator(records, mean, std, out, cfg, device=device_of(state), cache_dir=cache_dir(),
                             on_step=on_step)  # fmt: skip
    summary = {"evaluator": str(result.path), "steps": result.steps, "final_loss": round(result.final_loss, 5),
               "seconds": round(result.seconds, 1), "validation": result.val}  # fmt: skip
    typer.echo(json.dumps(summary) if as_json else f"wrote {result.path}: val {result.val}")
