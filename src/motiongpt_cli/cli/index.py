"""``motiongpt index build`` and ``motiongpt index query``: the retrieval index of (high, low) training pairs."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from .. import validation
from ..errors import InvalidValueError
from .app import device_of, get_state
from .types import number

index_app = typer.Typer(help="The retrieval index of training (high, low) text pairs.", no_args_is_help=True)


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
    from ..atomic import check_writable
    from ..data.prepare import read_records
    from ..paths import cache_dir
    from ..text.encoders import load_encoder
    from ..text.index import build_index
    from ..training_data import records_fingerprint

    check_writable(out, overwrite=overwrite)
    records = read_records(data)
    enc = load_encoder(encoder, device=device_of(get_state(ctx)), cache_dir=cache_dir())
    index = build_index(records, enc, fingerprint=records_fingerprint(records))
    index.save(out, overwrite=overwrite)
    if as_json:
        typer.echo(json.dumps({"index": str(out), "entries": len(index), "encoder": index.encoder, "dim": index.dim,
                               "fingerprint": index.fingerprint}))  # fmt: skip
        return
    typer.echo(str(out))
    if not get_state(ctx).quiet:
        typer.echo(f"{len(index)} pairs, encoder {index.encoder} ({index.dim}-d)", err=True)


@index_app.command("query")
def index_query(
    ctx: typer.Context,
    text: str = typer.Argument(..., help="A high-level description."),
    index: Path | None = typer.Option(None, "--index", help="Index file [default: the embedded one]."),
    k: int = typer.Option(10, "-k", parser=number(validation.NEIGHBOURS), help="How many neighbours."),
    encoder: str | None = typer.Option(None, "--encoder", help="Encoder to embed the query [default: the index's]."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per neighbour."),
) -> None:
    """The training pairs whose high-level text is nearest to TEXT (cosine similarity)."""
    from ..paths import cache_dir, default_index_path
    from ..text.encoders import load_encoder
    from ..text.index import load_index

    if not text.strip():
        raise InvalidValueError("empty text", hint="give a non-empty high-level description")
    idx = load_index(index or default_index_path())
    if encoder is not None:
        idx.check_encoder(encoder)
    enc = load_encoder(idx.encoder, device=device_of(get_state(ctx)), cache_dir=cache_dir())
    for rank, nb in enumerate(idx.search(enc.encode([text]), k)[0], 1):
        if as_json:
            typer.echo(json.dumps({"rank": rank, "similarity": round(nb.similarity, 4), "high": nb.high,
                                   "low": nb.low}))  # fmt: skip
        else:
            typer.echo(f"{nb.similarity:.3f}  {nb.high}  ->  {nb.low}")
