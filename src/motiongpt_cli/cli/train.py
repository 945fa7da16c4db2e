"""``motiongpt train``: one process, or many under ``torchrun``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer

from .. import validation
from ..errors import MotionGPTError
from .app import app, device_of, get_state, show_progress
from .types import number


@app.command("train")
def train_cmd(
    ctx: typer.Context,
    data: Path = typer.Option(..., "--data", help="Dataset JSONL from `motiongpt data prepare`.", dir_okay=False),
    config: Path | None = typer.Option(
        None, "--config", "-c", help="Training TOML ([model], [text], [diffusion], [train], [loss]) [default: MDM]; "
        "with --distill, a [distill] table."
    ),
    distill: Path | None = typer.Option(None, "--distill", metavar="TEACHER_DIR",
                                        help="Distil this trained model into a few-step (lcm) sampler with its "
                                        "guidance built in, instead of training from scratch."),  # fmt: skip
    out: Path = typer.Option(..., "--output", "-o", help="Run folder: model/ (the model directory) + metrics.jsonl."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in the output folder exactly."),
    steps: int | None = typer.Option(None, "--steps", parser=number(validation.TRAIN_STEPS),
                                     help="Total steps (overrides the config; extends on resume)."),  # fmt: skip
    decay_steps: int | None = typer.Option(None, "--decay-steps", parser=number(validation.DECAY_STEPS),
                                           help="Lower the learning rate to train.lr_min along a half cosine over "
                                           "the run's last N steps (overrides the config; on resume, only steps "
                                           "not yet taken)."),  # fmt: skip
    as_json: bool = typer.Option(False, "--json", help="Print one JSON line per logged step and a summary."),
) -> None:
    """Train the dual-conditioned diffusion model (one process, or many with torchrun), or distil one (--distill)."""
    from ..data.prepare import load_dataset
    from ..paths import cache_dir
    from ..training import load_run_config, process_group, train

    state = get_state(ctx)
    if distill is not None:
        from ..distill import load_distill_config

        run, distill_config = None, load_distill_config(config)
        total = distill_config.steps
    else:
        run = load_run_config(config)
        total = run.train.steps
    records, mean, std = load_dataset(data)
    with process_group(device_of(state), os.environ) as (dist, device):
        progress = None
        if show_progress(state) and dist.is_main and not as_json:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            progress = Progress(TextColumn("training"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("{task.fields[info]}"), TimeRemainingColumn(), transient=True)  # fmt: skip
            progress.start()
            task = progress.add_task("train", total=total if steps is None else steps, info="")

        def on_step(report) -> None:
            if as_json and dist.is_main:
                typer.echo(json.dumps({"step": report.step, "lr": report.lr,
                                       "steps_per_second": report.steps_per_second,
                                       **{f"loss_{k}": v for k, v in report.losses.items()}}))  # fmt: skip
            if progress is not None:
                info = f"loss {report.losses['total']:.4f}  {report.steps_per_second:.2f} steps/s"
                progress.update(task, completed=report.step, total=report.total_steps, info=info)

        try:
            if distill is not None:
                from ..distill import distill as run_distillation

                if dist.world_size > 1:
                    raise MotionGPTError("distillation runs in one process (not under torchrun)")
                if decay_steps is not None:
                    raise MotionGPTError("--decay-steps is for training; a distillation keeps its learning rate")
                result = run_distillation(distill, records, out, distill_config, resume=resume, device=device,
                                          cache_dir=cache_dir(), on_step=on_step, steps=steps)  # fmt: skip
            else:
                result = train(run, records, mean, std, out, resume=resume, device=device, dist=dist,
                               cache_dir=cache_dir(), on_step=on_step, steps=steps,
                               decay_steps=decay_steps)  # fmt: skip
        finally:
            if progress is not None:
                progress.stop()
    if not dist.is_main:
        return
    summary = {"model": str(result.model_dir), "steps": result.steps, "final_loss": result.final_loss,
               "wall_seconds": round(result.wall_seconds, 1), "resumed_from": result.resumed_from}  # fmt: skip
    if as_json:
        typer.echo(json.dumps(summary))
        return
    typer.echo(str(result.model_dir))
    if not state.quiet:
        typer.echo(f"{result.steps} steps (from {result.resumed_from}), final loss {result.final_loss:.4f}, "
                   f"{result.wall_seconds:.0f} s", err=True)  # fmt: skip
