"""Option types: numbers checked against :mod:`motiongpt_cli.validation`'s bounds at parse time, so a bad value is
a usage error naming the option (exit 2) before any work starts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import typer

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


def smpl_options(layout: str, up: str, smpl_fps: int | None, smpl_model: Path | None, fit_shape: bool):
    """The ``--smpl-*`` flags of generate and export as :class:`~motiongpt_cli.motion.amass.SMPLOutputOptions`."""
    from ..motion.amass import SMPLOutputOptions

    if smpl_model is not None and not smpl_model.is_file():
        raise typer.BadParameter(f"{smpl_model} is not a file", param_hint="--smpl-model")
    try:
        return SMPLOutputOptions(layout=layout, up=up, target_fps=smpl_fps, model_path=smpl_model, fit_shape=fit_shape)
    except InvalidValueError as exc:
        raise typer.BadParameter(str(exc)) from None
