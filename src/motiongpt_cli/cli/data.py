"""``motiongpt data synth`` and ``motiongpt data prepare``: build training data."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from .. import validation
from .app import get_state
from .types import number

data_app = typer.Typer(help="Build training data: the dual-text dataset from HumanML3D + BABEL.", no_args_is_help=True)


@data_app.command("synth")
def data_synth(
    ctx: typer.Context,
    out: Path = typer.Option(..., "--output", "-o", help="Folder to create (HumanML3D layout + babel/ + index.csv)."),
    clips: int = typer.Option(4000, "--clips", parser=number(validation.CLIPS),
                              help="Clips to synthesise (each also gets a mirrored copy)."),  # fmt: skip
    seed: int = typer.Option(0, "--seed", parser=number(validation.SEED),
                           help="Random seed; the same seed gives the same corpus."),  # fmt: skip
    min_seconds: float = typer.Option(2.0, "--min-seconds", parser=number(validation.CLIP_SECONDS),
                                      help="Shortest clip."),  # fmt: skip
    max_seconds: float = typer.Option(9.8, "--max-seconds", parser=number(validation.CLIP_SECONDS),
                                      help="Longest clip."),  # fmt: skip
    workers: int = typer.Option(2, "--workers", parser=number(validation.WORKERS), help="Processes to use."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing non-empty folder."),
    as_json: bool = typer.Option(False, "--json", help="Print the statistics as one JSON object."),
) -> None:
    """Synthesise a dual-text motion corpus (high-level intents, low-level action labels) for offline training."""
    from ..data.corpus import generate_corpus

    state = get_state(ctx)
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
    from ..data.prepare import prepare_dataset

    state = get_state(ctx)
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
