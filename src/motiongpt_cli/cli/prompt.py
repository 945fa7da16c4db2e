"""``motiongpt prompt``: low-level texts for high-level ones (KATE examples + an LLM, or retrieval offline)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer

from .. import validation
from .app import AppState, app, device_of, get_state, read_texts
from .types import number


def build_prompter(state: AppState, index: Path | None, **overrides):
    """The core's prompter from settings, flags (``overrides``; None = not given) and the environment."""
    from ..paths import cache_dir, default_index_path
    from ..text.prompting import PromptConfig, make_prompter

    no_cache = overrides.pop("no_cache", False)
    config = PromptConfig.from_settings(state.settings, cache=not no_cache, **overrides)
    return make_prompter(index or default_index_path(), config, env=os.environ, cache_dir=cache_dir(),
                         device=device_of(state))  # fmt: skip


@app.command("prompt")
def prompt_cmd(
    ctx: typer.Context,
    texts: list[str] = typer.Argument(None, help="High-level descriptions ('-' reads stdin, one per line)."),
    from_file: Path | None = typer.Option(None, "--from-file", "-f", help="Read texts from FILE ('-' = stdin)."),
    k: int | None = typer.Option(None, "-k", parser=number(validation.NEIGHBOURS),
                                 help="Training pairs retrieved as examples [default: 10]."),  # fmt: skip
    n: int = typer.Option(3, "-n", parser=number(validation.SAMPLES), help="Low-level descriptions per text."),
    backend: str | None = typer.Option(None, "--backend", help="openai | retrieval [default: openai if a base URL "
                                       "is configured, else retrieval]."),  # fmt: skip
    model: str | None = typer.Option(None, "--model", help="Chat model (openai backend)."),
    base_url: str | None = typer.Option(None, "--base-url", help="OpenAI-compatible endpoint, e.g. "
                                        "http://127.0.0.1:8080/v1."),  # fmt: skip
    temperature: float | None = typer.Option(None, "--temperature", parser=number(validation.LLM_TEMPERATURE),
                                             help="LLM temperature, or the retrieval softmax temperature."),
    seed: int | None = typer.Option(None, "--seed", parser=number(validation.SEED),
                                    help="Make the answers reproducible."),  # fmt: skip
    index: Path | None = typer.Option(None, "--index", help="Retrieval index [default: the embedded one]."),
    on_error: str | None = typer.Option(None, "--on-error", help="fallback | fail, when the LLM fails."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Always ask the LLM (skip the response cache)."),
    show_prompt: bool = typer.Option(False, "--show-prompt", help="Print each prompt to stderr."),
    seconds: bool = typer.Option(False, "--seconds", help="Also ask the LLM for each motion's duration (openai "
                                 "backend, an index with durations): --json adds `seconds`, text output a tab and "
                                 "the seconds (none when unknown)."),  # fmt: skip
    as_json: bool = typer.Option(False, "--json", help="One JSON line per text: query, low texts, backend, examples."),
) -> None:
    """Low-level descriptions for high-level texts: KATE examples + an LLM, or retrieval sampling offline."""
    queries = read_texts(texts or [], from_file)
    if not queries:
        raise typer.BadParameter("give at least one text (arguments, --from-file FILE, or - for stdin)")
    if backend is not None and backend not in ("openai", "retrieval"):
        raise typer.BadParameter(f"unknown backend {backend!r} (openai or retrieval)", param_hint="--backend")
    if on_error is not None and on_error not in ("fallback", "fail"):
        raise typer.BadParameter("must be fallback or fail", param_hint="--on-error")
    prompter = build_prompter(get_state(ctx), index, examples=k, backend=backend, model=model, base_url=base_url,
                              temperature=temperature, on_error=on_error, no_cache=no_cache)  # fmt: skip
    for result in prompter.run(queries, n=n, seed=seed, durations=seconds):
        if show_prompt and result.prompt:
            typer.echo(result.prompt, err=True)
        if as_json:
            typer.echo(json.dumps(result.to_json(seconds=seconds)))
        elif seconds:
            for low, sec in zip(result.lows, result.seconds, strict=True):
                typer.echo(f"{low}\t{'none' if sec is None else f'{sec:g}'}")
        else:
            for low in result.lows:
                typer.echo(low)
