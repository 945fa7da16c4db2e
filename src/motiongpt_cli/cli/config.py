"""``motiongpt config show``."""

from __future__ import annotations

import json

import typer

from .app import get_state

config_app = typer.Typer(help="Inspect the effective settings.", no_args_is_help=True)


@config_app.command("show")
def config_show(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="One JSON object.")) -> None:
    """Print the effective settings and where each value came from (secrets masked)."""
    rows = get_state(ctx).settings.rows()
    if as_json:
        typer.echo(json.dumps({key: {"value": value, "source": src} for key, value, src in rows}))
        return
    width = max(len(key) for key, _, _ in rows)
    vwidth = max(len(value) for _, value, _ in rows)
    for key, value, src in rows:
        typer.echo(f"{key:<{width}}  {value:<{vwidth}}  {src}")
