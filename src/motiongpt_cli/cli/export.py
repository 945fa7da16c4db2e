"""``motiongpt export``: motion files to .npz / .bvh / .gif / .mp4."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from .. import validation
from ..errors import MotionGPTError
from .app import app, get_state, print_error, read_stdin_lines
from .types import FIT_SHAPE, SMPL_FPS, SMPL_LAYOUT, SMPL_MODEL, SMPL_UP, number, smpl_options


@app.command("export")
def export_cmd(
    ctx: typer.Context,
    inputs: list[str] = typer.Argument(
        ...,
        metavar="INPUT...",
        help="Feature .npy (N,263), joints .npy (N,22,3), motiongpt .npz or MDM results.npy files; '-' reads "
        "paths from stdin.",
    ),
    formats: str | None = typer.Option(
        None,
        "--format",
        "-f",
        help="Comma-separated: npz,bvh,gif,mp4,smpl,glb,fbx,obj (obj needs --smpl-model) "
        "[default: setting export.formats].",
    ),
    out_dir: Path = typer.Option(Path("."), "--output", "-o", help="Output folder (created if missing)."),
    fps: int | None = typer.Option(None, "--fps", parser=number(validation.FPS),
                                   help="Frame rate [default: the input's, else 20]."),  # fmt: skip
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing output files."),
    normalized: bool = typer.Option(
        False, "--normalized", help="Feature inputs are z-normalised (needs --mean/--std)."
    ),
    mean: Path | None = typer.Option(None, "--mean", help="Mean.npy (263,) to de-normalise features."),
    std: Path | None = typer.Option(None, "--std", help="Std.npy (263,) to de-normalise features."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object per input."),
    smpl_layout: str = SMPL_LAYOUT,
    up: str = SMPL_UP,
    smpl_fps: int | None = SMPL_FPS,
    smpl_model: Path | None = SMPL_MODEL,
    fit_shape: bool = FIT_SHAPE,
) -> None:
    """Convert motions (MDM's results.npy too) to .npz / .bvh / .gif / .mp4 / SMPL .npz / .glb / .fbx / OBJ meshes."""
    from ..convert import ExportOptions, export_motion, load_normalization, plan_exports, validate_formats

    state = get_state(ctx)
    settings = state.settings
    if fps is None and settings.sources["export.fps"] != "default":
        fps = settings["export.fps"]  # a configured rate wins over the input's own
    options = ExportOptions(
        formats=validate_formats(formats.split(",") if formats is not None else settings["export.formats"]),
        out_dir=out_dir, fps=fps, overwrite=overwrite, normalized=normalized, mean_path=mean, std_path=std,
        smpl=smpl_options(smpl_layout, up, smpl_fps, smpl_model, fit_shape),
    )  # fmt: skip
    if normalized:  # fail once, up front, rather than once per input
        load_normalization(mean, std)
    paths: list[Path] = []
    for item in inputs:
        paths.extend(Path(p) for p in (read_stdin_lines() if item == "-" else [item]))
    if not paths:
        raise MotionGPTError("no input files given")
    failed = 0
    for path, refused in plan_exports(paths, options):
        try:
            if refused:
                raise MotionGPTError(refused)
            results = export_motion(path, options)
        except MotionGPTError as exc:
            if state.debug:
                raise
            failed += 1
            print_error(str(exc) if str(path) in str(exc) else f"{path}: {exc}", exc.hint)
            continue
        for result in results:
            if as_json:
                typer.echo(json.dumps({"input": str(path), "kind": result.kind, "frames": result.frames,
                                       "fps": result.fps, "outputs": {k: str(v) for k, v in result.outputs.items()}}))
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
