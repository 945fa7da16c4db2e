"""The ``motiongpt`` app: global options, and the one place where errors and warnings become lines on stderr.

stdout carries results (paths, or JSON lines with ``--json``); stderr carries logs, warnings and errors. A library
error becomes one ``Error: ...`` line (plus ``Hint: ...``) and exit 1; a usage error (a bad option or value) exit 2;
Ctrl-C exit 130; anything unexpected one line and exit 1. A traceback only with ``--debug`` or ``MOTIONGPT_DEBUG=1``.
Library warnings (:class:`~motiongpt_cli.errors.MotionGPTWarning`) print as ``Warning: ...`` lines.
"""

from __future__ import annotations

import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup

from .. import __version__
from ..errors import MotionGPTError, MotionGPTWarning


@dataclass
class AppState:
    settings: Any  # settings.Settings
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


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    if issubclass(category, MotionGPTWarning):
        typer.echo(f"Warning: {message}", err=True)
    else:  # other libraries' warnings keep their usual form
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


class _Group(TyperGroup):
    """Maps errors to one ``Error:`` line and an exit code, and warnings to ``Warning:`` lines, in one place."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra) -> Any:
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except typer.Abort:
            typer.echo("Aborted.", err=True)
            code = 1
        except typer.TyperException as exc:  # usage errors: bad options or values (Typer would draw a box)
            ctx = getattr(exc, "ctx", None)
            print_error(exc.format_message(), f"see '{ctx.command_path} --help'" if ctx is not None else None)
            code = getattr(exc, "exit_code", 2)
        code = code if isinstance(code, int) else 0
        if standalone_mode:
            sys.exit(code)
        return code

    def invoke(self, ctx: typer.Context) -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("always", MotionGPTWarning)
            warnings.showwarning = _show_warning
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
            except BrokenPipeError:  # the reader went away (`motiongpt ... | head`): stop quietly
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
                raise typer.Exit(1) from None
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
    rich_markup_mode="markdown",  # help texts hold literal brackets ("[default: 6]")
    context_settings={"help_option_names": ["-h", "--help"]},
)


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

    from ..settings import load_settings

    state = AppState(settings=None, debug=debug, quiet=quiet)
    ctx.obj = state  # set before loading, so a settings error is reported (or raised with --debug) by _Group
    state.settings = load_settings(
        env=os.environ,
        flags={"device": device},
        config_path=config,
        no_config=no_config,
        cwd=Path.cwd(),
        user_config_dir=Path(user_config_dir("motiongpt")),
    )


def get_state(ctx: typer.Context) -> AppState:
    state = ctx.find_object(AppState)
    assert state is not None  # set by main_callback
    return state


def device_of(state: AppState) -> str:
    from ..paths import resolve_device

    return resolve_device(state.settings["device"])


def show_progress(state: AppState) -> bool:
    return bool(state.settings["progress"]) and not state.quiet and sys.stderr.isatty()


def read_stdin_lines() -> list[str]:
    if sys.stdin is None:
        return []
    return [line.strip() for line in sys.stdin.read().splitlines() if line.strip() and not line.startswith("#")]


def read_texts(texts: list[str], from_file: Path | None) -> list[str]:
    """Texts from arguments, ``--from-file FILE`` (``-`` = stdin) or a lone ``-`` argument; one per line."""
    if from_file is not None and texts:
        raise typer.BadParameter("give texts as arguments or with --from-file, not both")
    lines: list[str]
    if from_file is not None and str(from_file) != "-":
        try:
            lines = from_file.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise MotionGPTError(f"cannot read {from_file}: {exc.strerror}") from None
    elif (from_file is not None and str(from_file) == "-") or texts == ["-"]:
        lines = read_stdin_lines()
    else:
        return [t.strip() for t in texts]
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def emit_motion(motion, sampling, *, as_json: bool, **extra) -> None:
    """A finished motion on stdout: its output paths, or with ``--json`` one manifest line (``extra`` added)."""
    import json

    if as_json:
        manifest = {"high": motion.text_high, "low": motion.text_low or None, "low_source": motion.low_source,
                    "seed": motion.seed, "frames": motion.frames, "model": motion.model, "steps": sampling.steps,
                    "sampler": sampling.sampler, "guidance": sampling.guidance, "precision": sampling.precision,
                    **extra,
                    "outputs": {k: str(v) for k, v in motion.paths.items()}}  # fmt: skip
        typer.echo(json.dumps(manifest))
    else:
        for path in motion.paths.values():
            typer.echo(str(path))
