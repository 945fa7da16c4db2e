"""The retrieval index of paper sec. 3.3: embeddings of the training set's high-level texts with their low-level
partners, for KATE example selection and the offline ``retrieval`` prompting backend.

File format (``.npz``, ``allow_pickle=False``): ``embeddings`` (N, dim) float16, L2-normalised; ``high`` and ``low``
(N,) unicode arrays; ``meta``, a JSON string with ``format_version``, ``encoder``, ``dim``, ``normalized``, ``count``
and ``fingerprint`` (the dataset's). One entry per unique (high-level caption, low-level text) pair of the train split.

Format 2 adds ``low_texts`` (M,) unicode, the unique low-level texts in first-seen order, and ``low_embeddings``
(M, dim) float32, their embeddings by the index's encoder, so a proposed low-level text needs no encoding (the
generation's low-level encoder is handed them when it is the same encoder: :meth:`RetrievalIndex.seed_encoder`).
float32, not float16, because float16 rows moved the default model's 50-step samples by 1.7e-3 in feature units.
Format 1 files (without them) still load.

Optional in either format: ``seconds`` (N,) float32, each pair's clip duration in seconds (``(end - start) / 20``
frames at 20 fps; the median over the clips of a pair seen more than once), shown to an LLM as examples of a
motion's duration (:mod:`.prompting`). Added without a format bump: it is an extra array that a reader which does
not know it ignores, and files without it (older ones, the embedded model's shipped index) load with
``seconds=None``.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from ..errors import MotionGPTError
from ..motion.skeleton import FPS

INDEX_FORMAT_VERSION = 2  # 2: low_texts + low_embeddings


class RetrievalIndexError(MotionGPTError):
    """An index file is missing, malformed, or was built with another encoder."""


@dataclass
class Neighbour:
    high: str
    low: str
    similarity: float
    row: int
    seconds: float | None = None  # the pair's clip duration, when the index records durations


@dataclass
class RetrievalIndex:
    embeddings: np.ndarray  # (N, dim) float32, rows L2-normalised
    high: list[str]
    low: list[str]
    encoder: str
    fingerprint: str = ""
    low_texts: list[str] | None = None  # (M,) unique low-level texts (format 2)
    low_embeddings: np.ndarray | None = None  # (M, dim) float32, low_texts embedded by ``encoder`` (format 2)
    seconds: np.ndarray | None = None  # (N,) float32, each pair's clip duration in seconds (optional)

    @property
    def dim(self) -> int:
        return int(self.embeddings.shape[1])

    def __len__(self) -> int:
        return len(self.high)

    def check_encoder(self, encoder_name: str) -> None:
        if encoder_name != self.encoder:
            raise RetrievalIndexError(
                f"this index was built with encoder {self.encoder!r}, not {encoder_name!r}",
                hint=f"query it with --encoder {self.encoder}, or rebuild it with `motiongpt index build --encoder`",
            )

    def seed_encoder(self, encoder) -> bool:
        """Hand the stored low-level embeddings to ``encoder`` (a :class:`~motiongpt_cli.text.encoders.TextEncoder`)
        when it is the index's own encoder by name, so texts proposed from the index need no model; returns whether
        it did (False for another encoder or a format-1 index)."""
        if self.low_embeddings is None or self.low_texts is None or encoder.name != self.encoder:
            return False
        encoder.remember(dict(zip(self.low_texts, self.low_embeddings, strict=True)))
        return True

    def search(self, query: np.ndarray, k: int) -> list[list[Neighbour]]:
        """Top-``k`` rows by cosine similarity for each query row ``(Q, dim)`` (or ``(dim,)``), best first."""
        q = np.atleast_2d(np.asarray(query, dtype=np.float32))
        if q.shape[1] != self.dim:
            raise RetrievalIndexError(f"query embeddings have dimension {q.shape[1]}, the index {self.dim}")
        if k < 1:
            raise RetrievalIndexError(f"k must be at least 1, got {k}")
        k = min(k, len(self))
        sims = q @ self.embeddings.T  # (Q, N): cosine, rows are unit vectors
        if k < len(self):
            top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        else:
            top = np.tile(np.arange(len(self)), (len(q), 1))
        out = []
        for qi in range(len(q)):
            rows = top[qi][np.argsort(-sims[qi, top[qi]], kind="stable")]
            out.append([Neighbour(self.high[r], self.low[r], float(sims[qi, r]), int(r),
                                  None if self.seconds is None else float(self.seconds[r])) for r in rows])  # fmt: skip
        return out

    def to_bytes(self) -> bytes:
        """The index file's bytes (``.npz``: float16 unit embeddings, the texts, the low-level texts' float32
        embeddings when known, the pairs' durations when known, and a JSON ``meta``); format 1 when there are no
        low-level embeddings."""
        has_low = self.low_embeddings is not None and self.low_texts is not None
        meta = {
            "format_version": INDEX_FORMAT_VERSION if has_low else 1,
            "encoder": self.encoder,
            "dim": self.dim,
            "normalized": True,
            "count": len(self),
            "fingerprint": self.fingerprint,
        }
        arrays = {
            "embeddings": self.embeddings.astype(np.float16),
            "high": np.array(self.high, dtype=str),
            "low": np.array(self.low, dtype=str),
            "meta": np.array(json.dumps(meta, sort_keys=True)),
        }
        if has_low:
            arrays["low_texts"] = np.array(self.low_texts, dtype=str)
            arrays["low_embeddings"] = np.asarray(self.low_embeddings, dtype=np.float32)
        if self.seconds is not None:
            arrays["seconds"] = np.asarray(self.seconds, dtype=np.float32)
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        return buffer.getvalue()

    def save(self, path: Path, *, overwrite: bool = False) -> Path:
        with atomic_path(path, overwrite=overwrite) as tmp:
            Path(tmp).write_bytes(self.to_bytes())
        return Path(path)


def load_index(path: Path) -> RetrievalIndex:
    path = Path(path)
    if not path.is_file():
        hint = "build one with `motiongpt index build DATASET -o INDEX`"
        raise RetrievalIndexError(f"{path}: index not found", hint=hint)
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            embeddings = data["embeddings"].astype(np.float32)
            high = data["high"].tolist()
            low = data["low"].tolist()
            low_texts = data["low_texts"].tolist() if "low_texts" in data.files else None
            low_embeddings = data["low_embeddings"].astype(np.float32) if "low_embeddings" in data.files else None
            seconds = data["seconds"].astype(np.float32) if "seconds" in data.files else None
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, json.JSONDecodeError) as exc:
        raise RetrievalIndexError(f"{path}: not a motiongpt retrieval index ({type(exc).__name__})") from None
    version = meta.get("format_version")
    if not isinstance(version, int) or version > INDEX_FORMAT_VERSION:
        raise RetrievalIndexError(f"{path}: index format {version} is newer than this motiongpt", hint="upgrade")
    n = len(high)
    if embeddings.ndim != 2 or embeddings.shape != (n, meta.get("dim")) or len(low) != n or n == 0:
        raise RetrievalIndexError(f"{path}: inconsistent index (embeddings {embeddings.shape}, {n} texts)")
    if (low_texts is None) != (low_embeddings is None) or (
        low_embeddings is not None and low_embeddings.shape != (len(low_texts), embeddings.shape[1])
    ):
        raise RetrievalIndexError(f"{path}: inconsistent index (low-level embeddings do not match their texts)")
    if seconds is not None and (seconds.shape != (n,) or not np.all(np.isfinite(seconds)) or np.any(seconds <= 0)):
        raise RetrievalIndexError(f"{path}: inconsistent index (durations {seconds.shape} for {n} texts, or not "
                                  f"positive)")  # fmt: skip
    return RetrievalIndex(embeddings, high, low, meta["encoder"], meta.get("fingerprint", ""), low_texts,
                          low_embeddings, seconds)  # fmt: skip


def _pair_frames(records: list[dict], split: str) -> dict[tuple[str, str], list[int | None]]:
    """Each unique (high-level caption, low-level text) pair of a split, in a stable (first-seen) order, with the
    frame count of every clip it comes from (None for a record without ``start``/``end``); fallback lows = caption."""
    seen: dict[tuple[str, str], list[int | None]] = {}
    for rec in records:
        if rec["split"] != split:
            continue
        start, end = rec.get("start"), rec.get("end")
        frames = int(end) - int(start) if start is not None and end is not None else None
        for caption in rec["high"]:
            caption = caption.strip()
            if caption:
                seen.setdefault((caption, (rec["low"] or caption).strip()), []).append(frames)
    return seen


def training_pairs(records: list[dict], split: str = "train") -> list[tuple[str, str]]:
    """Unique (high-level caption, low-level text) pairs of a split, in a stable order; fallback lows = caption."""
    return list(_pair_frames(records, split))


def pair_seconds(frames: list[list[int | None]]) -> np.ndarray | None:
    """``(N,)`` float32 durations in seconds at 20 fps, the median over each pair's clips; None when a clip's
    length is unknown or not positive (then the index records no durations at all)."""
    if any(f is None or f <= 0 for clips in frames for f in clips):
        return None
    return np.array([np.median(clips) / FPS for clips in frames], dtype=np.float32)


def build_index(records: list[dict], encoder, *, fingerprint: str = "", split: str = "train") -> RetrievalIndex:
    """Embed every unique training pair's high-level text, and every unique low-level text, with ``encoder`` (a
    :class:`TextEncoder`); record each pair's clip duration (:func:`pair_seconds`)."""
    clips = _pair_frames(records, split)
    pairs = list(clips)
    if not pairs:
        raise RetrievalIndexError(f"the dataset has no {split}-split pairs to index")
    embeddings = encoder.encode([h for h, _ in pairs])
    low_texts = list(dict.fromkeys(lo for _, lo in pairs))
    return RetrievalIndex(embeddings, [h for h, _ in pairs], [lo for _, lo in pairs], encoder.name, fingerprint,
                          low_texts, encoder.encode(low_texts), pair_seconds(list(clips.values())))  # fmt: skip
