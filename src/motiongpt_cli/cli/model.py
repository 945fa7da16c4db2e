"""``motiongpt model import``: MDM's and the seed's released checkpoints as our model directory; ``model fit-length``:
a length-from-text predictor for a model directory."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from ..errors import InvalidValueError
from .app import get_state

model_app = typer.Typer(help="Model directories: import released checkpoints (MDM, the MotionGPT seed), add a "
                        "length predictor.", no_args_is_help=True)  # fmt: skip


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
    clip: Path | None = typer.Option(None, "--clip", help="CLIP weights to keep in the model: OpenAI's ViT-B-32.pt "
                                     "(~/.cache/clip; read without running its code) or open_clip's "
                                     "open_clip_pytorch_model.bin / .safetensors [default: the checkpoint's own "
                                     "clip_model.*, else downloaded on first use]."),  # fmt: skip
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
    if clip is not None and not clip.is_file():
        raise typer.BadParameter(f"{clip} is not a file", param_hint="--clip")
    options = ImportOptions(kind=kind, args=args, mean=mean, std=std, humanml3d=humanml3d, name=name,  # type: ignore[arg-type]
                            overwrite=overwrite, clip=clip)  # fmt: skip
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


@model_app.command("fit-length")
def model_fit_length(
    ctx: typer.Context,
    model: Path = typer.Argument(..., help="Model directory (or training run) to add the predictor to.",
                                 file_okay=False),  # fmt: skip
    data: Path = typer.Option(..., "--data", help="Prepared dataset JSONL (train/val/test splits) whose clip "
                              "lengths it learns.", dir_okay=False),  # fmt: skip
    as_json: bool = typer.Option(False, "--json", help="Print the measured errors as JSON."),
) -> None:
    """Fit a length-from-text predictor to MODEL's high-level text encoder and DATA's clip lengths, and store it in
    the model directory (no retraining of the denoiser). `generate` then gives each text its predicted length
    when neither --seconds nor --frames is given."""
    from ..checkpoint import load_model
    from ..data.prepare import read_records
    from ..generation import MIN_FRAMES
    from ..length import add_length_predictor, fit_length_predictor
    from ..paths import cache_dir
    from ..text.encoders import load_encoder

    loaded = load_model(model)
    records = read_records(data)
    encoder = load_encoder(loaded.text.high_encoder, device="cpu", cache_dir=cache_dir(), model_dir=loaded.path,
                           weights=loaded.text.high_weights)  # fmt: skip
    predictor = fit_length_predictor(encoder, records, min_frames=MIN_FRAMES, max_frames=loaded.model.config.max_frames)
    add_length_predictor(loaded.path, predictor)
    m = predictor.metrics
    if as_json:
        typer.echo(json.dumps({"model": str(loaded.path), **m}))
    else:
        typer.echo(str(loaded.path))
        if not get_state(ctx).quiet and m:
            typer.echo(f"length predictor on the {m['split']} split ({m['pairs']} captions): mean absolute error "
                       f"{m['mae_seconds']:.2f} s, against {m['constant_mae_seconds']:.2f} s for a constant "
                       f"{m['constant_frames'] / 20:.1f} s", err=True)  # fmt: skip
