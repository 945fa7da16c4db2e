"""The ``motiongpt`` command line: one module per command group over the Python API and the core.

``app`` (global options, errors, warnings) lives in :mod:`.app`; importing this package registers every command.
Nothing here imports torch or the text encoders at import time, so ``motiongpt --help`` is instant.
"""

from __future__ import annotations

from . import edit, export, generate, prompt, train  # noqa: F401  (each registers its commands on app)
from .app import app
from .config import config_app
from .data import data_app
from .evaluate import evaluate_app
from .index import index_app
from .model import model_app

app.add_typer(config_app, name="config")
app.add_typer(data_app, name="data")
app.add_typer(index_app, name="index")
app.add_typer(evaluate_app, name="evaluate")
app.add_typer(model_app, name="model")

__all__ = ["app", "main"]


def main() -> None:
    """Console-script entry point."""
    app()
