"""The on-disk embedding cache: text encoders' float32 rows, stored exactly, keyed by encoder and text, and the
sha256 of weights files (:func:`.encoder_weights.file_sha256`), so a warm run neither runs nor loads a model."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import numpy as np


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
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, "
                    "sha256 TEXT)"
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

    def get_digest(self, path: str, size: int, mtime_ns: int) -> str | None:
        """The sha256 remembered for the file ``path`` when its size and mtime are still these (:func:`file_sha256`)."""
        conn = self._connect()
        if conn is None:
            return None
        try:
            row = conn.execute("SELECT sha256 FROM files WHERE path = ? AND size = ? AND mtime_ns = ?",
                               (path, size, mtime_ns)).fetchone()  # fmt: skip
        except sqlite3.Error:
            return None
        return row[0] if row else None

    def put_digest(self, path: str, size: int, mtime_ns: int, sha256: str) -> None:
        conn = self._connect()
        if conn is None:
            return
        try:
            with conn:
                conn.execute("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?)", (path, size, mtime_ns, sha256))
        except sqlite3.Error:
            pass
