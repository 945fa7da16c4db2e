"""Option types: numbers checked against :mod:`motiongpt_cli.validation`'s bounds at parse time, so a bad value is
a usage error naming the option (exit 2) before any work starts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import typer

from .. import validation
from ..errors import InvalidValueError
from ..validation import Bounds


def number(bounds: Bounds) -> Callable[[object], int | float]:
    """A Typer ``parser`` for a number within ``bounds`` (NaN and infinities refused)."""

    def parse(value: object) -> int | float:
        if isinstance(value, str):
            text = value.strip()
            try:
                value = int(text) if bounds.integer else float(text)
            except ValueError:
                raise typer.BadParameter(f"must be {bounds.describe()}, got {text!r}") from None
        problem = bounds.problem(value)
        if problem:
            raise typer.BadParameter(problem)
        return int(value) if bounds.integer else float(value)  # type: ignore[arg-type]

    parse.__name__ = "integer" if bounds.integer else "float"  # the metavar --help shows
    return parse


# the --smpl-* options of generate and export (one declaration, shared)
SMPL_LAYOUT = typer.Option("smplh", "--smpl-layout", help="smpl (72) | smplh (156, AMASS) | smplx (165) poses in "
                           "--format smpl files.")  # fmt: skip
SMPL_UP = typer.Option("z", "--up", help="z (AMASS) | y (HumanML3D) axes of --format smpl files.")
SMPL_FPS = typer.Option(None, "--smpl-fps", parser=number(validation.FPS), help="Resample --format smpl files to "
                        "this rate (30 or 60 for the SMPL-X Blender add-on) [default: the motion's].")  # fmt: skip
SMPL_MODEL = typer.Option(None, "--smpl-model", help="Your SMPL model file (SMPL_NEUTRAL.pkl or .npz): its rest "
                          "skeleton for --format smpl, its meshes for --format obj (needed there).")  # fmt: skip
FIT_SHAPE = typer.Option(False, "--fit-shape", help="Fit betas to the motion's bone lengths (needs --smpl-model); "
                         "--format smpl stores them, --format obj poses that shape.")  # fmt: skip


def smpl_options(layout: str, up: str, smpl_fps: int | None, smpl_model: Path | None, fit_shape: bool):
    """The ``--smpl-*`` flags of generate and export as :class:`~motiongpt_cli.motion.amass.SMPLOutputOptions`."""
    from ..motion.amass import SMPLOutputOptions

    if smpl_model is not None and not smpl_model.is_file():
        raise typer.BadParameter(f"{smpl_model} is not a file", param_hint="--smpl-model")
    try:
        return SMPLOutputOptions(layout=layout, up=up, target_fps=smpl_fps, model_path=smpl_model, fit_shape=fit_shape)
    except InvalidValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def _precision(value: str) -> str:
    from ..diffusion.precision import PRECISIONS

    if value not in PRECISIONS:
        raise typer.BadParameter(f"must be one of {', '.join(PRECISIONS)}, got {value!r}")
    return value


# the denoiser's arithmetic, for generate and edit (auto) and evaluate (fp32: metrics comparable across machines)
PRECISION = typer.Option("auto", "--precision", callback=_precision, help="auto | fp32 | bf16 | int8: the "
                         "denoiser's arithmetic (auto: bf16 on CPUs with AVX-512 BF16, and on CPUs with AMX for "
                         "MDM-size models or batches of 16; else fp32).")  # fmt: skip
EVAL_PRECISION = typer.Option("fp32", "--precision", callback=_precision, help="fp32 | bf16 | int8 | auto: the "
                              "denoiser's arithmetic.")  # fmt: skip


def batch_or_auto(value: object) -> int | str:
    """A Typer ``parser`` for ``--batch-size``: ``auto`` or a number within the batch bounds."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    return number(validation.BATCH_SIZE)(value)


batch_or_auto.__name__ = "integer|auto"


def check_generation_usage(low: str | None, no_low: bool, seconds, frames, sampler: str) -> None:
    """The usage checks generate and edit share: one line each, exit 2."""
    if low is not None and no_low:
        raise typer.BadParameter("--low and --no-low exclude each other")
    if seconds is not None and frames is not None:
        raise typer.BadParameter("--seconds and --frames exclude each other")
    if sampler not in ("auto", "ddim", "ddpm", "lcm"):
        raise typer.BadParameter("must be auto, ddim, ddpm or lcm", param_hint="--sampler")
