"""Generate docs/cli.md from the command tree (`python scripts/gen_cli_docs.py`); tests fail when it drifts."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from motiongpt_cli.cli import app

HEADER = (
    "# Command reference\n\n"
    "Generated from the command definitions by `python scripts/gen_cli_docs.py`; do not edit by hand.\n"
    "See the per-command pages for explanations and examples.\n"
)


def _param_row(param) -> str:
    is_argument = param.param_type_name == "argument"
    if is_argument:
        name, kind = f"`{param.name.upper()}`", "argument"
    else:
        name = ", ".join(f"`{o}`" for o in (*param.opts, *param.secondary_opts))
        kind = "flag" if getattr(param, "is_flag", False) else "value"
    help_text = (getattr(param, "help", None) or "").replace("|", "\\|").replace("\n", " ")
    default = param.default
    shown = "" if default is None or default is False or is_argument or callable(default) else f"`{default}`"
    return f"| {name} | {kind} | {shown} | {help_text} |"


def _document(cmd, path: list[str], out: list[str]) -> None:
    title = " ".join(path)
    out.append(f"\n## `{title}`\n")
    if cmd.help:
        out.append(cmd.help.strip() + "\n")
    ctx = typer.Context(cmd, info_name=title)
    out.append(f"```\n{cmd.get_usage(ctx).strip()}\n```\n")
    params = [p for p in cmd.params if not getattr(p, "hidden", False)]
    if params:
        out.append("| name | type | default | help |\n|---|---|---|---|")
        out.extend(_param_row(p) for p in params)
    if hasattr(cmd, "list_commands"):
        for name in sorted(cmd.list_commands(ctx)):
            sub = cmd.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                _document(sub, [*path, name], out)


def render() -> str:
    out = [HEADER]
    _document(typer.main.get_command(app), ["motiongpt"], out)
    return "\n".join(out).rstrip() + "\n"


if __name__ == "__main__":
    target = Path(__file__).resolve().parents[1] / "docs" / "cli.md"
    target.write_text(render())
    sys.stdout.write(f"wrote {target}\n")
