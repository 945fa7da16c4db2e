"""``motiongpt model import``: MDM's and the seed's released checkpoints as our model directory."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from ..errors import InvalidValueError
from .app import get_state

model_app = typer.Typer(help="Import released checkpoints (MDM, the MotionGPT seed).", no_args_is_help=True)


@model_app.command("import")
def model_import(
    ctx: typer.Context,
    kind: str = typer.Argument(..., help="mdm | motiongpt | auto (recognised from the checkpoint's keys)."),
    checkpoint: Path = typer.Argument(..., help="The .pt file, e.g. save/humanml_trans_enc_512/model000475000.pt.",
                                      dir_okay=False),  # fmt: skip
    out: Path = typer.Option(..., "--output", "-o", help="Model directory to write."),
    args: Path | None = typer.Option(None, "--args", help="Training args.json [default: beside the checkpoint].",
                                     dir_okay=False),  # fmt: skip
    humanml3d: Path | None = typer.Option(None, "--humanml3d", help="HumanML3D folder holding Mean.npy and Std.npy.",
                                          file_okay=False),  # fmt: skip
    mean: Path | None = typer.Option(None, "--mean", help="HumanML3D Mean.npy (263,).", dir_okay=False),
    std: Path | None = typer.Option(None, "--std", help="HumanML3D Std.npy (263,).", dir_okay=False),
    name: str | None = typer.Option(None, "--name", help="Model name [default: the checkpoint's folder]."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing model directory."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary."),
) -> None:
    """Convert CHECKPOINT into a model directory; the file is read with weights_only (no code runs)."""
    from ..model_import import KINDS, ImportOptions, import_checkpoint

    if kind not in KINDS:
        raise InvalidValueError(f"KIND must be one of {', '.join(KINDS)}, got {kind!r}")
    if (mean is None) != (std is None):
        raise InvalidValueError("give both --mean and --std (or --humanml3d DIR)")
    options = ImportOptions(kind=kind, args=args, mean=mean, std=std, humanml3d=humanml3d, name=name,  # type: ignore[arg-type]
                            overwrite=overwrite)  # fmt: skip
    result = import_checkpoint(checkpoint, out, options)
    if as_json:
        typer.echo(json.dumps({"model": str(result.path), "family": result.family, "sha256": result.sha256,
                               "diffusion_steps": result.diffusion_steps, "high_encoder": result.high_encoder,
                               "low_encoder": result.low_encoder, "notes": result.notes}))  # fmt: skip
        return
    typer.echo(str(result.path))
    if not get_state(ctx).quiet:
        for note in result.notes:
            typer.echo(note, err=True)
        typer.echo(f"{result.family} model, {result.diffusion_steps} diffusion steps, text: {result.high_encoder}"
                   + (f" + {result.low_encoder}" if result.low_encoder else ""), err=True)  # fmt: skip
