"""The ``motiongpt`` command line: parses flags, loads settings, calls the library, prints results.

Only wiring lives here. stdout carries results (paths, or JSON lines with ``--json``); stderr carries logs, warnings
and errors. Library errors become one ``Error: ...`` line (plus ``Hint: ...``) and exit 1; usage errors exit 2;
Ctrl-C exits 130. A traceback is shown only with ``--debug`` or ``MOTIONGPT_DEBUG=1``.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup

from . import __version__
from .errors import MotionGPTError


@dataclass
class AppState:
    settings: Any  # settings.Settings, loaded lazily per command
    debug: bool
    quiet: bool


def _debug_requested(ctx: typer.Context | None) -> bool:
    if os.environ.get("MOTIONGPT_DEBUG", "").strip().lower() in {"1", "true", "yes", "on"}:
        return True
    state = ctx.find_object(AppState) if ctx is not None else None
    return bool(state and state.debug)


def print_error(message: str, hint: str | None = None) -> None:
    typer.echo(f"Error: {message}", err=True)
    if hint:
        typer.echo(f"Hint: {hint}", err=True)


class _Group(TyperGroup):
    """Maps library errors to one ``Error:`` line and an exit code, in one place."""

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MotionGPTError as exc:
            if _debug_requested(ctx):
                raise
            print_error(str(exc), exc.hint)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            typer.echo("Interrupted.", err=True)
            raise typer.Exit(130) from None
        except (typer.Exit, typer.Abort, typer.TyperException):  # usage errors, --help, explicit exits
            raise
        except Exception as exc:  # an unexpected failure: still one line unless debugging
            if _debug_requested(ctx):
                raise
            print_error(f"unexpected {type(exc).__name__}: {exc}", "run again with --debug for a traceback")
            raise typer.Exit(1) from None


app = typer.Typer(
    name="motiongpt",
    cls=_Group,
    help="Generate, train, evaluate and export 3D human motion from text (MotionGPT, WACV 2024).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
config_app = typer.Typer(help="Inspect the effective settings.", no_args_is_help=True)
app.add_typer(config_app, name="config")
data_app = typer.Typer(help="Build training data: the dual-text dataset from HumanML3D + BABEL.", no_args_is_help=True)
app.add_typer(data_app, name="data")


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"motiongpt {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    ctx: typer.Context,
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Print the version and exit."
    ),
    config: Path | None = typer.Option(
        None, "--config", help="Read settings from this TOML file only.", dir_okay=False, envvar="MOTIONGPT_CONFIG"
    ),
    no_config: bool = typer.Option(False, "--no-config", help="Ignore every settings file."),
    device: str | None = typer.Option(None, "--device", help="auto | cpu | cuda (auto picks CUDA when present)."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only output paths."),
) -> None:
    from platformdirs import user_config_dir

    from .settings import load_settings

    state = AppState(settings=None, debug=debug, quiet=quiet)
    ctx.obj = state
    try:
        state.settings = load_settings(
            env=os.environ,
            flags={"device": device},
            config_path=config,
            no_config=no_config,
            cwd=Path.cwd(),
            user_config_dir=Path(user_config_dir("motiongpt")),
        )
    except MotionGPTError as exc:
        if _debug_requested(ctx) or debug:
            raise
        print_error(str(exc), exc.hint)
        raise typer.Exit(exc.exit_code) from None


def _state(ctx: typer.Context) -> AppState:
    state = ctx.find_object(AppState)
    assert state is not None  # set by main_callback
    return state


# ----------------------------------------------------------------------------------------------- config
@config_app.command("show")
def config_show(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="One JSON object.")) -> None:
    """Print the effective settings and where each value came from (secrets masked)."""
    rows = _state(ctx).settings.rows()
    if as_json:
        typer.echo(json.dumps({key: {"value": value, "source": src} for key, value, src in rows}))
        return
    width = max(len(key) for key, _, _ in rows)
    vwidth = max(len(value) for _, value, _ in rows)
    for key, value, src in rows:
        typer.echo(f"{key:<{width}}  {value:<{vwidth}}  {src}")


# ----------------------------------------------------------------------------------------------- export
def read_stdin_lines() -> list[str]:
    if sys.stdin is None:
        return []
    return [line.strip() for line in sys.stdin.read().splitlines() if line.strip() and not line.startswith("#")]


@app.command("export")
def export_cmd(
    ctx: typer.Context,
    inputs: list[str] = typer.Argument(
        ...,
        metavar="INPUT...",
        help="Feature .npy (N,263), joints .npy (N,22,3) or motiongpt .npz files; '-' reads paths from stdin.",
    ),
    formats: str | None = typer.Option(
        None, "--format", "-f", help="Comma-separated: npz,bvh,gif,mp4 [default: setting export.formats]."
    ),
    out_dir: Path = typer.Option(Path("."), "--output", "-o", help="Output folder (created if missing)."),
    fps: int | None = typer.Option(None, "--fps", min=1, help="Frame rate [default: the input's, else 20]."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing output files."),
    normalized: bool = typer.Option(
        False, "--normalized", help="Feature inputs are z-normalised (needs --mean/--std)."
    ),
    mean: Path | None = typer.Option(None, "--mean", help="Mean.npy (263,) to de-normalise features."),
    std: Path | None = typer.Option(None, "--std", help="Std.npy (263,) to de-normalise features."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object per input."),
) -> None:
    """Convert motions to .npz / .bvh / .gif / .mp4 (e.g. MDM, T2M-GPT or MoMask outputs to BVH)."""
    from .convert import ExportOptions, export_motion, validate_formats

    state = _state(ctx)
    settings = state.settings
    fmt_list = formats.split(",") if formats is not None else settings["export.formats"]
    if fps is None and settings.sources["export.fps"] != "default":
        fps = settings["export.fps"]  # a configured rate wins over the input's own
    options = ExportOptions(
        formats=validate_formats(fmt_list),
        out_dir=out_dir,
        fps=fps,
        overwrite=overwrite,
        normalized=normalized,
        mean_path=mean,
        std_path=std,
    )
    if normalized:  # fail once, up front, rather than once per input
        from .convert import load_normalization

        load_normalization(mean, std)
    paths: list[str] = []
    for item in inputs:
        paths.extend(read_stdin_lines() if item == "-" else [item])
    if not paths:
        raise MotionGPTError("no input files given")
    failed = 0
    claimed: dict[Path, Path] = {}
    for raw in paths:
        path = Path(raw)
        try:
            clash = [p for p in (out_dir / f"{path.stem}.{f}" for f in options.formats) if p in claimed]
            if clash:
                raise MotionGPTError(f"output {clash[0]} would also be written for {claimed[clash[0]]}")
            result = export_motion(path, options)
        except MotionGPTError as exc:
            if state.debug:
                raise
            failed += 1
            message = str(exc) if str(path) in str(exc) else f"{path}: {exc}"
            print_error(message, exc.hint)
            continue
        for target in result.outputs.values():
            claimed[target] = path
        if as_json:
            typer.echo(
                json.dumps(
                    {
                        "input": str(path),
                        "kind": result.kind,
                        "frames": result.frames,
                        "fps": result.fps,
                        "outputs": {k: str(v) for k, v in result.outputs.items()},
                    }
                )
            )
        elif state.quiet:
            for target in result.outputs.values():
                typer.echo(str(target))
        else:
            written = ", ".join(str(p) for p in result.outputs.values())
            typer.echo(f"{path} -> {written} ({result.frames} frames, {result.fps} fps)")
    if failed:
        if not state.quiet:
            typer.echo(f"{failed} of {len(paths)} inputs failed", err=True)
        raise typer.Exit(1)


# ----------------------------------------------------------------------------------------------- data
@data_app.command("synth")
def data_synth(
    ctx: typer.Context,
    out: Path = typer.Option(..., "--output", "-o", help="Folder to create (HumanML3D layout + babel/ + index.csv)."),
    clips: int = typer.Option(4000, "--clips", min=1, help="Clips to synthesise (each also gets a mirrored copy)."),
    seed: int = typer.Option(0, "--seed", help="Random seed; the same seed gives the same corpus."),
    min_seconds: float = typer.Option(2.0, "--min-seconds", help="Shortest clip."),
    max_seconds: float = typer.Option(9.8, "--max-seconds", help="Longest clip."),
    workers: int = typer.Option(2, "--workers", min=1, help="Processes to use."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing non-empty folder."),
    as_json: bool = typer.Option(False, "--json", help="Print the statistics as one JSON object."),
) -> None:
    """Synthesise a dual-text motion corpus (high-level intents, low-level action labels) for offline training."""
    from .data.corpus import generate_corpus

    state = _state(ctx)
    stats = generate_corpus(
        out,
        clips=clips,
        seed=seed,
        min_seconds=min_seconds,
        max_seconds=max_seconds,
        workers=workers,
        overwrite=overwrite,
    )
    summary = {
        "output": str(out),
        "clips": stats.clips,
        "mirrored": stats.mirrored,
        "seconds": {"min": stats.seconds_min, "mean": round(stats.seconds_mean, 3), "max": stats.seconds_max},
        "foot_slide_cm": round(stats.foot_slide_cm, 3),
        "foot_skating_ratio": round(stats.foot_skating_ratio, 4),
        "actions": dict(stats.actions.most_common()),
        "intents": dict(stats.intents.most_common()),
        "elapsed_s": round(stats.elapsed, 1),
    }
    if as_json:
        typer.echo(json.dumps(summary))
        return
    typer.echo(str(out))
    if state.quiet:
        return
    typer.echo(
        f"{stats.clips} clips + {stats.mirrored} mirrored, {stats.seconds_min:.1f}-{stats.seconds_max:.1f} s "
        f"(mean {stats.seconds_mean:.1f} s), {stats.elapsed:.0f} s",
        err=True,
    )
    typer.echo(
        f"foot skating: {stats.foot_skating_ratio:.1%} of grounded foot frames slide > 2.5 cm "
        f"(mean slide {stats.foot_slide_cm:.2f} cm/frame)",
        err=True,
    )
    for label, count in stats.actions.most_common():
        typer.echo(f"  {count:6d}  {label}", err=True)


@data_app.command("prepare")
def data_prepare(
    ctx: typer.Context,
    humanml3d: Path = typer.Option(..., "--humanml3d", help="HumanML3D folder (new_joint_vecs/, texts/, splits)."),
    babel: Path = typer.Option(..., "--babel", help="Folder with BABEL's train/val/test(/extra_*) .json files."),
    index: Path | None = typer.Option(
        None, "--index", help="index.csv mapping clips to AMASS files [default: in DIR]."
    ),
    out: Path = typer.Option(..., "--output", "-o", help="Dataset JSONL to write."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output file."),
    as_json: bool = typer.Option(False, "--json", help="Print the statistics as one JSON object."),
) -> None:
    """Align BABEL labels to HumanML3D clips: one record per clip with high- and low-level texts."""
    from .data.prepare import prepare_dataset

    state = _state(ctx)
    stats = prepare_dataset(humanml3d, babel, out, index=index, overwrite=overwrite)
    summary = {
        "output": str(out),
        "records": stats.records,
        "splits": {
            split: {**dict(counts), "coverage": round(stats.coverage(split), 4)}
            for split, counts in stats.per_split.items()
        },
        "skipped": dict(stats.skipped),
    }
    if as_json:
        typer.echo(json.dumps(summary))
        return
    typer.echo(str(out))
    if state.quiet:
        return
    for split, counts in stats.per_split.items():
        total = sum(counts.values())
        typer.echo(
            f"{split:>5}: {total} records, low-level text from labels {stats.coverage(split):.1%} "
            f"(babel {counts['babel']}, synthetic {counts['synthetic']}, fallback {counts['fallback']})",
            err=True,
        )
    for reason, count in stats.skipped.items():
        typer.echo(f"skipped {count}: {reason}", err=True)


# ----------------------------------------------------------------------------------------------- shared helpers
def cache_dir() -> Path:
    """Embedding and response caches: ``$MOTIONGPT_HOME/cache`` or the platform's user cache folder."""
    home = os.environ.get("MOTIONGPT_HOME")
    if home:
        return Path(home) / "cache"
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("motiongpt"))


def resolve_device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise MotionGPTError("--device cuda was asked for, but PyTorch sees no CUDA device", hint="use --device cpu")
    return name


def show_progress(state: AppState) -> bool:
    return bool(state.settings["progress"]) and not state.quiet and sys.stderr.isatty()


# ----------------------------------------------------------------------------------------------- train
@app.command("train")
def train_cmd(
    ctx: typer.Context,
    data: Path = typer.Option(..., "--data", help="Dataset JSONL from `motiongpt data prepare`.", dir_okay=False),
    config: Path | None = typer.Option(
        None, "--config", "-c", help="Training TOML ([model], [text], [diffusion], [train], [loss]) [default: MDM]."
    ),
    out: Path = typer.Option(..., "--output", "-o", help="Run folder: model/ (the model directory) + metrics.jsonl."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in the output folder exactly."),
    steps: int | None = typer.Option(None, "--steps", help="Total steps (overrides the config; extends on resume)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON line per logged step and a summary."),
) -> None:
    """Train the dual-conditioned diffusion model (one process, or many with torchrun)."""
    from .data.prepare import load_dataset
    from .training import DistInfo, load_run_config, train

    state = _state(ctx)
    run = load_run_config(config)
    records, mean, std = load_dataset(data)
    dist = DistInfo(
        rank=int(os.environ.get("RANK", 0)),
        world_size=int(os.environ.get("WORLD_SIZE", 1)),
        local_rank=int(os.environ.get("LOCAL_RANK", 0)),
    )
    device = resolve_device(state.settings["device"])
    if dist.world_size > 1:
        import torch.distributed

        if device.startswith("cuda"):
            import torch

            device = f"cuda:{dist.local_rank}"
            torch.cuda.set_device(dist.local_rank)
        torch.distributed.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")
    progress = None
    task = None
    if show_progress(state) and dist.is_main and not as_json:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        progress = Progress(
            TextColumn("training"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
            TimeRemainingColumn(), transient=True,
        )  # fmt: skip
        progress.start()
        task = progress.add_task("train", total=run.train.steps if steps is None else steps, info="")

    def on_step(report) -> None:
        if as_json and dist.is_main:
            typer.echo(json.dumps({"step": report.step, "lr": report.lr, "steps_per_second": report.steps_per_second,
                                   **{f"loss_{k}": v for k, v in report.losses.items()}}))  # fmt: skip
        if progress is not None:
            info = f"loss {report.losses['total']:.4f}  {report.steps_per_second:.2f} steps/s"
            progress.update(task, completed=report.step, total=report.total_steps, info=info)

    try:
        result = train(
            run, records, mean, std, out, resume=resume, device=device, dist=dist, cache_dir=cache_dir(),
            on_step=on_step, steps=steps,
        )  # fmt: skip
    finally:
        if progress is not None:
            progress.stop()
        if dist.world_size > 1:
            import torch.distributed

            torch.distributed.destroy_process_group()
    if not dist.is_main:
        return
    summary = {"model": str(result.model_dir), "steps": result.steps, "final_loss": result.final_loss,
               "wall_seconds": round(result.wall_seconds, 1), "resumed_from": result.resumed_from}  # fmt: skip
    if as_json:
        typer.echo(json.dumps(summary))
    else:
        typer.echo(str(result.model_dir))
        if not state.quiet:
            typer.echo(
                f"{result.steps} steps (from {result.resumed_from}), final loss {result.final_loss:.4f}, "
                f"{result.wall_seconds:.0f} s",
                err=True,
            )


def main() -> None:
    """Console-script entry point."""
    app()
