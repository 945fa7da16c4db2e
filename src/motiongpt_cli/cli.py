"""The ``motiongpt`` command line: parses flags, loads settings, calls the library, prints results.

Only wiring lives here. stdout carries results (paths, or JSON lines with ``--json``); stderr carries logs, warnings
and errors. Library errors become one ``Error: ...`` line (plus ``Hint: ...``) and exit 1; usage errors exit 2;
Ctrl-C exits 130. A traceback is shown only with ``--debug`` or ``MOTIONGPT_DEBUG=1``.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup

from . import __version__
from .errors import MotionGPTError


@dataclass
class AppState:
    settings: Any  # settings.Settings, loaded lazily per command
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


class _Group(TyperGroup):
    """Maps library errors to one ``Error:`` line and an exit code, in one place."""

    def invoke(self, ctx: typer.Context) -> Any:
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
    context_settings={"help_option_names": ["-h", "--help"]},
)
config_app = typer.Typer(help="Inspect the effective settings.", no_args_is_help=True)
app.add_typer(config_app, name="config")
data_app = typer.Typer(help="Build training data: the dual-text dataset from HumanML3D + BABEL.", no_args_is_help=True)
app.add_typer(data_app, name="data")
index_app = typer.Typer(help="The retrieval index of training (high, low) text pairs.", no_args_is_help=True)
app.add_typer(index_app, name="index")
evaluate_app = typer.Typer(
    help="Evaluate a model with the standard text-to-motion metrics (or train an evaluator).",
    invoke_without_command=True,
)
app.add_typer(evaluate_app, name="evaluate")


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

    from .settings import load_settings

    state = AppState(settings=None, debug=debug, quiet=quiet)
    ctx.obj = state
    try:
        state.settings = load_settings(
            env=os.environ,
            flags={"device": device},
            config_path=config,
            no_config=no_config,
            cwd=Path.cwd(),
            user_config_dir=Path(user_config_dir("motiongpt")),
        )
    except MotionGPTError as exc:
        if _debug_requested(ctx) or debug:
            raise
        print_error(str(exc), exc.hint)
        raise typer.Exit(exc.exit_code) from None


def _state(ctx: typer.Context) -> AppState:
    state = ctx.find_object(AppState)
    assert state is not None  # set by main_callback
    return state


# ----------------------------------------------------------------------------------------------- config
@config_app.command("show")
def config_show(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="One JSON object.")) -> None:
    """Print the effective settings and where each value came from (secrets masked)."""
    rows = _state(ctx).settings.rows()
    if as_json:
        typer.echo(json.dumps({key: {"value": value, "source": src} for key, value, src in rows}))
        return
    width = max(len(key) for key, _, _ in rows)
    vwidth = max(len(value) for _, value, _ in rows)
    for key, value, src in rows:
        typer.echo(f"{key:<{width}}  {value:<{vwidth}}  {src}")


# ----------------------------------------------------------------------------------------------- export
def read_stdin_lines() -> list[str]:
    if sys.stdin is None:
        return []
    return [line.strip() for line in sys.stdin.read().splitlines() if line.strip() and not line.startswith("#")]


@app.command("export")
def export_cmd(
    ctx: typer.Context,
    inputs: list[str] = typer.Argument(
        ...,
        metavar="INPUT...",
        help="Feature .npy (N,263), joints .npy (N,22,3) or motiongpt .npz files; '-' reads paths from stdin.",
    ),
    formats: str | None = typer.Option(
        None, "--format", "-f", help="Comma-separated: npz,bvh,gif,mp4 [default: setting export.formats]."
    ),
    out_dir: Path = typer.Option(Path("."), "--output", "-o", help="Output folder (created if missing)."),
    fps: int | None = typer.Option(None, "--fps", min=1, help="Frame rate [default: the input's, else 20]."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing output files."),
    normalized: bool = typer.Option(
        False, "--normalized", help="Feature inputs are z-normalised (needs --mean/--std)."
    ),
    mean: Path | None = typer.Option(None, "--mean", help="Mean.npy (263,) to de-normalise features."),
    std: Path | None = typer.Option(None, "--std", help="Std.npy (263,) to de-normalise features."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object per input."),
) -> None:
    """Convert motions to .npz / .bvh / .gif / .mp4 (e.g. MDM, T2M-GPT or MoMask outputs to BVH)."""
    from .convert import ExportOptions, export_motion, validate_formats

    state = _state(ctx)
    settings = state.settings
    fmt_list = formats.split(",") if formats is not None else settings["export.formats"]
    if fps is None and settings.sources["export.fps"] != "default":
        fps = settings["export.fps"]  # a configured rate wins over the input's own
    options = ExportOptions(
        formats=validate_formats(fmt_list),
        out_dir=out_dir,
        fps=fps,
        overwrite=overwrite,
        normalized=normalized,
        mean_path=mean,
        std_path=std,
    )
    if normalized:  # fail once, up front, rather than once per input
        from .convert import load_normalization

        load_normalization(mean, std)
    paths: list[str] = []
    for item in inputs:
        paths.extend(read_stdin_lines() if item == "-" else [item])
    if not paths:
        raise MotionGPTError("no input files given")
    failed = 0
    claimed: dict[Path, Path] = {}
    for raw in paths:
        path = Path(raw)
        try:
            clash = [p for p in (out_dir / f"{path.stem}.{f}" for f in options.formats) if p in claimed]
            if clash:
                raise MotionGPTError(f"output {clash[0]} would also be written for {claimed[clash[0]]}")
            result = export_motion(path, options)
        except MotionGPTError as exc:
            if state.debug:
                raise
            failed += 1
            message = str(exc) if str(path) in str(exc) else f"{path}: {exc}"
            print_error(message, exc.hint)
            continue
        for target in result.outputs.values():
            claimed[target] = path
        if as_json:
            typer.echo(
                json.dumps(
                    {
                        "input": str(path),
                        "kind": result.kind,
                        "frames": result.frames,
                        "fps": result.fps,
                        "outputs": {k: str(v) for k, v in result.outputs.items()},
                    }
                )
            )
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


# ----------------------------------------------------------------------------------------------- data
@data_app.command("synth")
def data_synth(
    ctx: typer.Context,
    out: Path = typer.Option(..., "--output", "-o", help="Folder to create (HumanML3D layout + babel/ + index.csv)."),
    clips: int = typer.Option(4000, "--clips", min=1, help="Clips to synthesise (each also gets a mirrored copy)."),
    seed: int = typer.Option(0, "--seed", help="Random seed; the same seed gives the same corpus."),
    min_seconds: float = typer.Option(2.0, "--min-seconds", help="Shortest clip."),
    max_seconds: float = typer.Option(9.8, "--max-seconds", help="Longest clip."),
    workers: int = typer.Option(2, "--workers", min=1, help="Processes to use."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing non-empty folder."),
    as_json: bool = typer.Option(False, "--json", help="Print the statistics as one JSON object."),
) -> None:
    """Synthesise a dual-text motion corpus (high-level intents, low-level action labels) for offline training."""
    from .data.corpus import generate_corpus

    state = _state(ctx)
    stats = generate_corpus(
        out,
        clips=clips,
        seed=seed,
        min_seconds=min_seconds,
        max_seconds=max_seconds,
        workers=workers,
        overwrite=overwrite,
    )
    summary = {
        "output": str(out),
        "clips": stats.clips,
        "mirrored": stats.mirrored,
        "seconds": {"min": stats.seconds_min, "mean": round(stats.seconds_mean, 3), "max": stats.seconds_max},
        "foot_slide_cm": round(stats.foot_slide_cm, 3),
        "foot_skating_ratio": round(stats.foot_skating_ratio, 4),
        "actions": dict(stats.actions.most_common()),
        "intents": dict(stats.intents.most_common()),
        "elapsed_s": round(stats.elapsed, 1),
    }
    if as_json:
        typer.echo(json.dumps(summary))
        return
    typer.echo(str(out))
    if state.quiet:
        return
    typer.echo(
        f"{stats.clips} clips + {stats.mirrored} mirrored, {stats.seconds_min:.1f}-{stats.seconds_max:.1f} s "
        f"(mean {stats.seconds_mean:.1f} s), {stats.elapsed:.0f} s",
        err=True,
    )
    typer.echo(
        f"foot skating: {stats.foot_skating_ratio:.1%} of grounded foot frames slide > 2.5 cm "
        f"(mean slide {stats.foot_slide_cm:.2f} cm/frame)",
        err=True,
    )
    for label, count in stats.actions.most_common():
        typer.echo(f"  {count:6d}  {label}", err=True)


@data_app.command("prepare")
def data_prepare(
    ctx: typer.Context,
    humanml3d: Path = typer.Option(..., "--humanml3d", help="HumanML3D folder (new_joint_vecs/, texts/, splits)."),
    babel: Path = typer.Option(..., "--babel", help="Folder with BABEL's train/val/test(/extra_*) .json files."),
    index: Path | None = typer.Option(
        None, "--index", help="index.csv mapping clips to AMASS files [default: in DIR]."
    ),
    out: Path = typer.Option(..., "--output", "-o", help="Dataset JSONL to write."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output file."),
    as_json: bool = typer.Option(False, "--json", help="Print the statistics as one JSON object."),
) -> None:
    """Align BABEL labels to HumanML3D clips: one record per clip with high- and low-level texts."""
    from .data.prepare import prepare_dataset

    state = _state(ctx)
    stats = prepare_dataset(humanml3d, babel, out, index=index, overwrite=overwrite)
    summary = {
        "output": str(out),
        "records": stats.records,
        "splits": {
            split: {**dict(counts), "coverage": round(stats.coverage(split), 4)}
            for split, counts in stats.per_split.items()
        },
        "skipped": dict(stats.skipped),
    }
    if as_json:
        typer.echo(json.dumps(summary))
        return
    typer.echo(str(out))
    if state.quiet:
        return
    for split, counts in stats.per_split.items():
        total = sum(counts.values())
        typer.echo(
            f"{split:>5}: {total} records, low-level text from labels {stats.coverage(split):.1%} "
            f"(babel {counts['babel']}, synthetic {counts['synthetic']}, fallback {counts['fallback']})",
            err=True,
        )
    for reason, count in stats.skipped.items():
        typer.echo(f"skipped {count}: {reason}", err=True)


# ----------------------------------------------------------------------------------------------- shared helpers
def cache_dir() -> Path:
    """Embedding and response caches: ``$MOTIONGPT_HOME/cache`` or the platform's user cache folder."""
    home = os.environ.get("MOTIONGPT_HOME")
    if home:
        return Path(home) / "cache"
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("motiongpt"))


def resolve_device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise MotionGPTError("--device cuda was asked for, but PyTorch sees no CUDA device", hint="use --device cpu")
    return name


def show_progress(state: AppState) -> bool:
    return bool(state.settings["progress"]) and not state.quiet and sys.stderr.isatty()


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


def default_asset(name: str) -> Path | None:
    """A file of the embedded default model's folder (package data), or None when the package has none."""
    path = Path(__file__).resolve().parent / "assets" / "default" / name
    return path if path.exists() else None


def _index_path(index: Path | None) -> Path:
    if index is not None:
        return index
    path = default_asset("index.npz")
    if path is None:
        raise MotionGPTError("no retrieval index given and none is embedded", hint="pass --index INDEX")
    return path


# ----------------------------------------------------------------------------------------------- index
@index_app.command("build")
def index_build(
    ctx: typer.Context,
    data: Path = typer.Argument(..., help="Dataset JSONL from `motiongpt data prepare`.", dir_okay=False),
    out: Path = typer.Option(..., "--output", "-o", help="Index file to write (.npz)."),
    encoder: str = typer.Option("minilm", "--encoder", help="minilm | st:<name-or-path> | clip:<arch>/<pretrained>."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing index."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary."),
) -> None:
    """Embed the high-level text of every training (high, low) pair."""
    from .atomic import check_writable
    from .data.prepare import read_records
    from .text.encoders import load_encoder
    from .text.index import build_index
    from .training import records_fingerprint

    check_writable(out, overwrite=overwrite)
    records = read_records(data)
    enc = load_encoder(encoder, device=resolve_device(_state(ctx).settings["device"]), cache_dir=cache_dir())
    index = build_index(records, enc, fingerprint=records_fingerprint(records))
    index.save(out, overwrite=overwrite)
    if as_json:
        typer.echo(json.dumps({"index": str(out), "entries": len(index), "encoder": index.encoder, "dim": index.dim,
                               "fingerprint": index.fingerprint}))  # fmt: skip
        return
    typer.echo(str(out))
    if not _state(ctx).quiet:
        typer.echo(f"{len(index)} pairs, encoder {index.encoder} ({index.dim}-d)", err=True)


@index_app.command("query")
def index_query(
    ctx: typer.Context,
    text: str = typer.Argument(..., help="A high-level description."),
    index: Path | None = typer.Option(None, "--index", help="Index file [default: the embedded one]."),
    k: int = typer.Option(10, "-k", min=1, help="How many neighbours."),
    encoder: str | None = typer.Option(None, "--encoder", help="Encoder to embed the query [default: the index's]."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per neighbour."),
) -> None:
    """The training pairs whose high-level text is nearest to TEXT (cosine similarity)."""
    from .text.encoders import load_encoder
    from .text.index import load_index

    if not text.strip():
        raise MotionGPTError("empty text", hint="give a non-empty high-level description")
    idx = load_index(_index_path(index))
    if encoder is not None:
        idx.check_encoder(encoder)
    enc = load_encoder(idx.encoder, device=resolve_device(_state(ctx).settings["device"]), cache_dir=cache_dir())
    for rank, nb in enumerate(idx.search(enc.encode([text]), k)[0], 1):
        if as_json:
            typer.echo(json.dumps({"rank": rank, "similarity": round(nb.similarity, 4), "high": nb.high,
                                   "low": nb.low}))  # fmt: skip
        else:
            typer.echo(f"{nb.similarity:.3f}  {nb.high}  ->  {nb.low}")


# ----------------------------------------------------------------------------------------------- prompt
def make_prompter(state: AppState, *, index: Path | None, backend: str | None, k: int | None, model: str | None,
                  base_url: str | None, temperature: float | None, no_cache: bool, on_error: str | None = None):
    """A Prompter from flags > settings > environment (OPENAI_BASE_URL, OPENAI_API_KEY)."""  # fmt: skip
    from .text.encoders import load_encoder
    from .text.index import load_index
    from .text.prompting import LLMSettings, OpenAIChat, Prompter, ResponseCache

    st = state.settings
    idx = load_index(_index_path(index))
    enc = load_encoder(idx.encoder, device=resolve_device(st["device"]), cache_dir=cache_dir())
    url = base_url or st["prompt.base_url"] or os.environ.get("OPENAI_BASE_URL") or None
    chosen = backend or st["prompt.backend"]
    if chosen == "auto":
        chosen = "openai" if url else "retrieval"
    if chosen not in ("openai", "retrieval"):
        raise typer.BadParameter(f"unknown backend {chosen!r} (openai or retrieval)", param_hint="--backend")
    chat = None
    if chosen == "openai":
        # the environment's key goes to OpenAI itself, or to the URL the environment names; a key for any other
        # endpoint must be given as the prompt.api_key setting (MOTIONGPT_PROMPT_API_KEY), so it is never leaked
        key = st["prompt.api_key"] or None
        env_url = os.environ.get("OPENAI_BASE_URL")
        if key is None and (url is None or url == env_url):
            key = os.environ.get("OPENAI_API_KEY")
        if key is None and url is None:
            raise MotionGPTError("the openai backend needs an API key or a --base-url",
                                 hint="export OPENAI_API_KEY=..., or use --backend retrieval (offline)")  # fmt: skip
        chat = OpenAIChat(
            LLMSettings(model=model or st["prompt.model"], base_url=url, api_key=key,
                        temperature=st["prompt.temperature"] if temperature is None else temperature,
                        timeout=st["prompt.timeout"], retries=st["prompt.retries"]),
            ResponseCache(None if no_cache else cache_dir() / "llm"),
        )  # fmt: skip
    retrieval_t = st["prompt.retrieval_temperature"]
    if chosen == "retrieval" and temperature is not None:
        if temperature <= 0:
            raise typer.BadParameter("must be positive for the retrieval backend", param_hint="--temperature")
        retrieval_t = temperature
    return Prompter(
        idx, enc, backend=chosen, chat=chat, k=k or st["prompt.examples"], on_error=on_error or st["prompt.on_error"],
        retrieval_temperature=retrieval_t, warn=lambda message: typer.echo(f"Warning: {message}", err=True),
    )  # fmt: skip


@app.command("prompt")
def prompt_cmd(
    ctx: typer.Context,
    texts: list[str] = typer.Argument(None, help="High-level descriptions ('-' reads stdin, one per line)."),
    from_file: Path | None = typer.Option(None, "--from-file", "-f", help="Read texts from FILE ('-' = stdin)."),
    k: int | None = typer.Option(None, "-k", min=1, help="Training pairs retrieved as examples [default: 10]."),
    n: int = typer.Option(3, "-n", min=1, help="Low-level descriptions per text."),
    backend: str | None = typer.Option(None, "--backend", help="openai | retrieval [default: openai if a base URL "
                                       "is configured, else retrieval]."),  # fmt: skip
    model: str | None = typer.Option(None, "--model", help="Chat model (openai backend)."),
    base_url: str | None = typer.Option(None, "--base-url", help="OpenAI-compatible endpoint, e.g. "
                                        "http://127.0.0.1:8080/v1."),  # fmt: skip
    temperature: float | None = typer.Option(None, "--temperature", help="LLM temperature, or the retrieval "
                                             "softmax temperature."),  # fmt: skip
    seed: int | None = typer.Option(None, "--seed", help="Make the answers reproducible."),
    index: Path | None = typer.Option(None, "--index", help="Retrieval index [default: the embedded one]."),
    on_error: str | None = typer.Option(None, "--on-error", help="fallback | fail, when the LLM fails."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Always ask the LLM (skip the response cache)."),
    show_prompt: bool = typer.Option(False, "--show-prompt", help="Print each prompt to stderr."),
    as_json: bool = typer.Option(False, "--json", help="One JSON line per text: query, low texts, backend, examples."),
) -> None:
    """Low-level descriptions for high-level texts: KATE examples + an LLM, or retrieval sampling offline."""
    queries = read_texts(texts or [], from_file)
    if not queries:
        raise typer.BadParameter("give at least one text (arguments, --from-file FILE, or - for stdin)")
    if on_error is not None and on_error not in ("fallback", "fail"):
        raise typer.BadParameter("must be fallback or fail", param_hint="--on-error")
    prompter = make_prompter(_state(ctx), index=index, backend=backend, k=k, model=model, base_url=base_url,
                             temperature=temperature, no_cache=no_cache, on_error=on_error)  # fmt: skip
    for result in prompter.run(queries, n=n, seed=seed):
        if show_prompt and result.prompt:
            typer.echo(result.prompt, err=True)
        if as_json:
            typer.echo(json.dumps(result.to_json()))
        else:
            for low in result.lows:
                typer.echo(low)


# ----------------------------------------------------------------------------------------------- generate
def parse_generate_line(line: str, where: str):
    """``high``, ``high | low``, or a JSON object with ``high`` (and optional ``low``) -> TextInput."""
    from .generation import TextInput

    if line.lstrip().startswith("{"):
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise MotionGPTError(f"{where}: invalid JSON: {exc.msg}") from None
        if not isinstance(obj, dict) or not isinstance(obj.get("high"), str):
            raise MotionGPTError(f"{where}: a JSON line needs a string 'high' field")
        low = obj.get("low")
        if low is not None and not isinstance(low, str):
            raise MotionGPTError(f"{where}: 'low' must be a string")
        return TextInput(obj["high"], low)
    high, sep, low = line.partition("|")
    return TextInput(high.strip(), low.strip() if sep else None)


def load_default_or(model: Path | None, device: str):
    from .checkpoint import load_model

    if model is None:
        path = default_asset("config.json")
        if path is None:
            raise MotionGPTError("no --model given and this installation has no embedded default model",
                                 hint="train one with `motiongpt train` and pass --model RUN_DIR")  # fmt: skip
        model = path.parent
    return load_model(model, device=device)


@app.command("generate")
def generate_cmd(
    ctx: typer.Context,
    texts: list[str] = typer.Argument(None, help="High-level descriptions ('-' reads stdin: lines, 'high | low' or "
                                      "JSONL with high/low)."),  # fmt: skip
    low: str | None = typer.Option(None, "--low", help="Low-level text for every sample (else proposed per sample)."),
    no_low: bool = typer.Option(False, "--no-low", help="Condition on the high-level text only."),
    n: int = typer.Option(1, "-n", "--num-samples", help="Samples per text."),
    seconds: float | None = typer.Option(None, "--seconds", help="Length in seconds [default: 6]."),
    frames: int | None = typer.Option(None, "--frames", help="Length in frames at 20 fps."),
    steps: int = typer.Option(50, "--steps", help="Denoising steps."),
    sampler: str = typer.Option("ddim", "--sampler", help="ddim | ddpm."),
    eta: float = typer.Option(0.0, "--eta", help="DDIM noise (0 = deterministic, 1 = DDPM-like)."),
    guidance: float = typer.Option(2.5, "--guidance", help="Classifier-free guidance scale (1 = none)."),
    seed: int | None = typer.Option(None, "--seed", help="Same seed, same motions [default: random, recorded]."),
    model: Path | None = typer.Option(None, "--model", help="Model directory or training run [default: embedded]."),
    formats: str | None = typer.Option(None, "--format", help="Comma list of npz, bvh, gif, mp4 [default: npz,bvh]."),
    out: Path = typer.Option(Path("."), "--output", "-o", help="Output folder."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing files."),
    from_file: Path | None = typer.Option(None, "--from-file", "-f", help="Read texts from FILE ('-' = stdin)."),
    index: Path | None = typer.Option(None, "--index", help="Retrieval index for proposed low-level texts."),
    backend: str | None = typer.Option(None, "--backend", help="openai | retrieval, for proposed low-level texts."),
    base_url: str | None = typer.Option(None, "--base-url", help="OpenAI-compatible endpoint for --backend openai."),
    llm_model: str | None = typer.Option(None, "--llm-model", help="Chat model for --backend openai."),
    batch_size: int = typer.Option(16, "--batch-size", min=1, help="Samples per forward pass."),
    as_json: bool = typer.Option(False, "--json", help="One JSON manifest line per sample."),
) -> None:
    """Generate motions from text with the dual-conditioned diffusion model."""
    from .convert import validate_formats
    from .diffusion.sampler import SamplingOptions
    from .generation import GenerateOptions, TextInput, assign_outputs, clamp_frames, generate, plan_jobs
    from .text.encoders import load_encoder

    state = _state(ctx)
    warn = lambda message: typer.echo(f"Warning: {message}", err=True)  # noqa: E731
    if low is not None and no_low:
        raise typer.BadParameter("--low and --no-low exclude each other")
    if seconds is not None and frames is not None:
        raise typer.BadParameter("--seconds and --frames exclude each other")
    if n < 1:
        raise typer.BadParameter("must be at least 1", param_hint="-n")
    if sampler not in ("ddim", "ddpm"):
        raise typer.BadParameter("must be ddim or ddpm", param_hint="--sampler")
    if from_file is not None or texts == ["-"]:
        lines = read_texts(texts if texts == ["-"] else [], from_file)
        inputs = [parse_generate_line(line, f"line {i}") for i, line in enumerate(lines, 1)]
    else:
        inputs = [TextInput(t, None) for t in (texts or [])]
    if not inputs:
        raise typer.BadParameter("give at least one text (arguments, --from-file FILE, or - for stdin)")
    if low is not None:
        inputs = [TextInput(item.high, low) for item in inputs]
    fmts = validate_formats(formats.split(",") if formats else state.settings["export.formats"])
    sampling = SamplingOptions(steps=steps, sampler=sampler, guidance=guidance, eta=eta)
    device = resolve_device(state.settings["device"])
    loaded = load_default_or(model, device)
    length = round(seconds * 20) if seconds is not None else (frames if frames is not None else 120)
    length = clamp_frames(length, loaded.model.config.max_frames, warn)
    low_mode = "none" if no_low or loaded.model.config.conditioning == "high" else "given"
    if loaded.model.config.conditioning == "high" and (low is not None):
        warn("this model is conditioned on the high-level text only; --low is ignored")
    prompter = None
    if low_mode == "given" and any(item.low is None for item in inputs):
        idx = index or (loaded.path / "index.npz" if (loaded.path / "index.npz").is_file() else None)
        if idx is not None or default_asset("index.npz") is not None:
            prompter = make_prompter(state, index=idx, backend=backend, k=None, model=llm_model, base_url=base_url,
                                     temperature=None, no_cache=False)  # fmt: skip
    jobs, used_seed = plan_jobs(inputs, n, seed=seed, low_mode=low_mode, prompter=prompter)
    options = GenerateOptions(frames=length, sampling=sampling, formats=fmts, out_dir=out, overwrite=overwrite,
                              batch_size=batch_size)  # fmt: skip
    assign_outputs(jobs, options)
    text_cfg = loaded.text
    encoders = {"high": load_encoder(text_cfg.high_encoder, device="cpu", cache_dir=cache_dir())}
    if loaded.model.config.conditioning == "dual":
        encoders["low"] = load_encoder(text_cfg.low_encoder, device="cpu", cache_dir=cache_dir())

    def on_sample(job, record) -> None:
        if as_json:
            typer.echo(json.dumps({"high": job.high, "low": job.low, "low_source": job.low_source, "seed": job.seed,
                                   "frames": int(record.features.shape[0]), "model": record.model,
                                   "steps": sampling.steps, "sampler": sampling.sampler, "guidance": sampling.guidance,
                                   "outputs": {k: str(v) for k, v in job.outputs.items()}}))  # fmt: skip
        else:
            for path in job.outputs.values():
                typer.echo(str(path))

    if not state.quiet and not as_json:
        typer.echo(f"{len(jobs)} motion(s) of {length} frames, seed {used_seed}, {sampler} {steps} steps", err=True)
    generate(loaded, jobs, options, encoders, device=device, on_sample=on_sample)


# ----------------------------------------------------------------------------------------------- train
@app.command("train")
def train_cmd(
    ctx: typer.Context,
    data: Path = typer.Option(..., "--data", help="Dataset JSONL from `motiongpt data prepare`.", dir_okay=False),
    config: Path | None = typer.Option(
        None, "--config", "-c", help="Training TOML ([model], [text], [diffusion], [train], [loss]) [default: MDM]."
    ),
    out: Path = typer.Option(..., "--output", "-o", help="Run folder: model/ (the model directory) + metrics.jsonl."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in the output folder exactly."),
    steps: int | None = typer.Option(None, "--steps", help="Total steps (overrides the config; extends on resume)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON line per logged step and a summary."),
) -> None:
    """Train the dual-conditioned diffusion model (one process, or many with torchrun)."""
    from .data.prepare import load_dataset
    from .training import DistInfo, load_run_config, train

    state = _state(ctx)
    run = load_run_config(config)
    records, mean, std = load_dataset(data)
    dist = DistInfo(
        rank=int(os.environ.get("RANK", 0)),
        world_size=int(os.environ.get("WORLD_SIZE", 1)),
        local_rank=int(os.environ.get("LOCAL_RANK", 0)),
    )
    device = resolve_device(state.settings["device"])
    if dist.world_size > 1:
        import torch.distributed

        if device.startswith("cuda"):
            import torch

            device = f"cuda:{dist.local_rank}"
            torch.cuda.set_device(dist.local_rank)
        torch.distributed.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")
    progress = None
    task = None
    if show_progress(state) and dist.is_main and not as_json:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        progress = Progress(
            TextColumn("training"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
            TimeRemainingColumn(), transient=True,
        )  # fmt: skip
        progress.start()
        task = progress.add_task("train", total=run.train.steps if steps is None else steps, info="")

    def on_step(report) -> None:
        if as_json and dist.is_main:
            typer.echo(json.dumps({"step": report.step, "lr": report.lr, "steps_per_second": report.steps_per_second,
                                   **{f"loss_{k}": v for k, v in report.losses.items()}}))  # fmt: skip
        if progress is not None:
            info = f"loss {report.losses['total']:.4f}  {report.steps_per_second:.2f} steps/s"
            progress.update(task, completed=report.step, total=report.total_steps, info=info)

    try:
        result = train(
            run, records, mean, std, out, resume=resume, device=device, dist=dist, cache_dir=cache_dir(),
            on_step=on_step, steps=steps,
        )  # fmt: skip
    finally:
        if progress is not None:
            progress.stop()
        if dist.world_size > 1:
            import torch.distributed

            torch.distributed.destroy_process_group()
    if not dist.is_main:
        return
    summary = {"model": str(result.model_dir), "steps": result.steps, "final_loss": result.final_loss,
               "wall_seconds": round(result.wall_seconds, 1), "resumed_from": result.resumed_from}  # fmt: skip
    if as_json:
        typer.echo(json.dumps(summary))
    else:
        typer.echo(str(result.model_dir))
        if not state.quiet:
            typer.echo(
                f"{result.steps} steps (from {result.resumed_from}), final loss {result.final_loss:.4f}, "
                f"{result.wall_seconds:.0f} s",
                err=True,
            )


# ----------------------------------------------------------------------------------------------- evaluate
METRIC_LABELS = {"r_precision_top1": "R@1", "r_precision_top2": "R@2", "r_precision_top3": "R@3", "fid": "FID",
                 "mm_dist": "MM-Dist", "diversity": "Diversity", "multimodality": "MModality"}  # fmt: skip


@evaluate_app.callback()
def evaluate_cmd(
    ctx: typer.Context,
    model: Path | None = typer.Option(None, "--model", help="Model directory or training run [default: embedded]."),
    data: Path | None = typer.Option(None, "--data", help="Dataset JSONL from `motiongpt data prepare`.",
                                     dir_okay=False),  # fmt: skip
    evaluator: Path | None = typer.Option(None, "--evaluator", help="An evaluator made by train-evaluator, or the "
                                          "T2M evaluator (finest.tar or its folder) [default: the one shipped beside "
                                          "the embedded model]."),  # fmt: skip
    glove: Path | None = typer.Option(None, "--glove", help="GloVe folder (our_vab_*) for the T2M evaluator "
                                      "[default: found beside it]."),  # fmt: skip
    protocol: str = typer.Option("standard", "--protocol", help="standard (caption-length fix, whole split) or "
                                 "legacy (MDM's original computation)."),  # fmt: skip
    split: str = typer.Option("test", "--split", help="Dataset split to evaluate on."),
    replications: int = typer.Option(20, "--replications", "-r", help="Independent repetitions (95% CI)."),
    low_source: str = typer.Option("gt", "--low-source", help="gt | prompt | none: the low-level text used."),
    steps: int = typer.Option(50, "--steps", help="Denoising steps."),
    guidance: float = typer.Option(2.5, "--guidance", help="Classifier-free guidance scale."),
    limit: int | None = typer.Option(None, "--limit", help="Clips per replication [default: the whole split]."),
    mm_texts: int = typer.Option(0, "--mm-texts", help="Texts for MultiModality (0: skip; the field uses 100)."),
    mm_repeats: int = typer.Option(30, "--mm-repeats", help="Motions per MultiModality text."),
    seed: int = typer.Option(0, "--seed", help="Everything random derives from it."),
    index: Path | None = typer.Option(None, "--index", help="Retrieval index for --low-source prompt."),
    backend: str | None = typer.Option(None, "--backend", help="openai | retrieval, for --low-source prompt."),
    base_url: str | None = typer.Option(None, "--base-url", help="OpenAI-compatible endpoint for --backend openai."),
    llm_model: str | None = typer.Option(None, "--llm-model", help="Chat model for --backend openai."),
    real_only: bool = typer.Option(False, "--real-only", help="Only the real-motion row (no model)."),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the results as JSON to this file ('-': "
                                         "stdout)."),  # fmt: skip
    fail_if: list[str] = typer.Option([], "--fail-if", help='Exit 1 when a condition holds, e.g. "fid>0.5", "r1<0.3" '
                                      "(repeatable)."),  # fmt: skip
) -> None:
    """Evaluate a model: R-precision, FID, MM-Dist, Diversity (and MultiModality) against real motion."""
    if ctx.invoked_subcommand is not None:
        return
    from .atomic import atomic_write_text
    from .data.prepare import load_dataset
    from .evaluation.runner import PROTOCOLS, EvalOptions, evaluate, failed_gates, open_evaluator, parse_gate
    from .text.encoders import load_encoder

    state = _state(ctx)
    if data is None:
        raise typer.BadParameter("is required", param_hint="--data")
    if replications < 1:
        raise typer.BadParameter("must be at least 1", param_hint="--replications")
    if low_source not in ("gt", "prompt", "none"):
        raise typer.BadParameter("must be gt, prompt or none", param_hint="--low-source")
    if protocol not in PROTOCOLS:
        raise typer.BadParameter("must be standard or legacy", param_hint="--protocol")
    if limit is not None and limit < 32:
        raise typer.BadParameter("must be at least 32 (R-precision uses batches of 32)", param_hint="--limit")
    if mm_texts < 0 or mm_repeats < 10:
        raise typer.BadParameter("--mm-texts must be >= 0 and --mm-repeats >= 10")
    gates = [parse_gate(text) for text in fail_if]
    device = resolve_device(state.settings["device"])
    if evaluator is None:
        shipped = default_asset("evaluator/config.json")
        if shipped is None:
            raise MotionGPTError("no evaluator given and none is embedded", hint="pass --evaluator DIR")
        evaluator = shipped.parent
    ev = open_evaluator(evaluator, glove=glove, device=device, cache_dir=cache_dir())
    records, mean, std = load_dataset(data)
    loaded, encoders, prompter = None, None, None
    if not real_only:
        loaded = load_default_or(model, device)
        encoders = {"high": load_encoder(loaded.text.high_encoder, device="cpu", cache_dir=cache_dir())}
        if loaded.model.config.conditioning == "dual":
            encoders["low"] = load_encoder(loaded.text.low_encoder, device="cpu", cache_dir=cache_dir())
        if low_source == "prompt":
            prompter = make_prompter(state, index=index, backend=backend, k=None, model=llm_model,
                                     base_url=base_url, temperature=None, no_cache=False)  # fmt: skip
    options = EvalOptions(split=split, replications=replications, low_source=low_source, steps=steps,
                          guidance=guidance, limit=limit, mm_texts=mm_texts, mm_repeats=mm_repeats, seed=seed,
                          protocol=protocol)
    progress = None
    if show_progress(state):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        progress = Progress(TextColumn("evaluating"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                            transient=True)  # fmt: skip
        progress.start()
        task = progress.add_task("eval", total=None)
    try:
        result = evaluate(loaded, records, mean, std, ev, options, prompter=prompter, device=device,
                          encoders=encoders,
                          on_progress=(lambda d, t: progress.update(task, completed=d, total=t)) if progress else None)
    finally:
        if progress is not None:
            progress.stop()
    payload = result.to_json()
    payload["model"] = None if loaded is None else loaded.name
    payload["evaluator"] = ev.name
    if json_out is not None:
        text = json.dumps(payload, indent=1)
        if str(json_out) == "-":
            typer.echo(text)
        else:
            atomic_write_text(json_out, text + "\n")
    if str(json_out) != "-" and not state.quiet:
        _print_eval_table(result, payload)
    failures = failed_gates(result, gates)
    if failures:
        raise MotionGPTError("quality gate failed: " + "; ".join(failures))


def _print_eval_table(result, payload) -> None:
    from rich.console import Console
    from rich.table import Table

    metrics = [m for m in METRIC_LABELS if any(m in row for row in result.rows.values())]
    table = Table(title=f"{payload['model'] or 'real motion'} on {payload['split']} ({result.clips} clips x "
                        f"{payload['replications']} replications, low-level: {payload['low_source']}, "
                        f"evaluator {payload['evaluator']}, {payload['protocol']} protocol)")  # fmt: skip
    table.add_column("")
    for m in metrics:
        table.add_column(METRIC_LABELS[m], justify="right")
    for name, row in result.rows.items():
        table.add_row(name, *[f"{row[m][0]:.3f} ±{row[m][1]:.3f}" if m in row else "-" for m in metrics])
    Console(width=160).print(table)


@evaluate_app.command("train-evaluator")
def train_evaluator_cmd(
    ctx: typer.Context,
    data: Path = typer.Option(..., "--data", help="Dataset JSONL from `motiongpt data prepare`.", dir_okay=False),
    out: Path = typer.Option(..., "--output", "-o", help="Evaluator directory to write."),
    config: Path | None = typer.Option(None, "--config", "-c", help="TOML with an [evaluator] table (sizes, steps, "
                                       "lr, text_encoder, ...)."),  # fmt: skip
    steps: int | None = typer.Option(None, "--steps", help="Training steps (overrides the config)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing evaluator directory."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary."),
) -> None:
    """Train a contrastive evaluator (T2M motion encoder + a sentence-embedding text side) for any dataset."""
    from .data.prepare import load_dataset
    from .evaluation.learned import EvaluatorConfig, train_evaluator
    from .settings import tomllib

    state = _state(ctx)
    if out.exists() and not overwrite:
        raise MotionGPTError(f"{out} already exists", hint="pass --overwrite, or another -o folder")
    values: dict = {}
    if config is not None:
        try:
            values = tomllib.loads(config.read_text(encoding="utf-8")).get("evaluator", {})
        except FileNotFoundError:
            raise MotionGPTError(f"evaluator config not found: {config}") from None
        except tomllib.TOMLDecodeError as exc:
            raise MotionGPTError(f"{config}: invalid TOML: {exc}") from None
    if steps is not None:
        values["steps"] = steps
    cfg = EvaluatorConfig.from_dict(values)
    records, mean, std = load_dataset(data)
    device = resolve_device(state.settings["device"])
    last = {"t": 0.0}

    def on_step(step: int, loss: float) -> None:
        import time as _time

        if not state.quiet and (_time.monotonic() - last["t"] > 10 or step == cfg.steps):
            last["t"] = _time.monotonic()
            typer.echo(f"step {step}/{cfg.steps} loss {loss:.4f}", err=True)

    result = train_evaluator(records, mean, std, out, cfg, device=device, cache_dir=cache_dir(), on_step=on_step)
    summary = {"evaluator": str(result.path), "steps": result.steps, "final_loss": round(result.final_loss, 5),
               "seconds": round(result.seconds, 1), "validation": result.val}  # fmt: skip
    typer.echo(json.dumps(summary) if as_json else f"wrote {result.path}: val {result.val}")


def main() -> None:
    """Console-script entry point."""
    app()
