"""Option types: numbers checked against :mod:`motiongpt_cli.validation`'s bounds at parse time, so a bad value is
a usage error naming the option (exit 2) before any work starts."""

from __future__ import annotations

from collections.abc import Callable

import typer

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
