"""Training data for the loops of :mod:`.training` and :mod:`.distill`: which clips make each step's batch, their text
embeddings, and what the records add to every checkpoint (the dataset's fingerprint, the retrieval index, the length
predictor).

Determinism: the global batch at a step is a function of ``(seed, step)`` alone, a stream of seeded per-epoch
permutations whose epoch also seeds each clip's crop and caption, never of state carried across steps, so a resumed run
draws the batches the uninterrupted one would. With DDP, every rank draws the same global batch and loads its own
slice of the picks.

Frozen text encoders run once per unique text before the first step; the loop only indexes embedding tables.
"""

from __future__ import annotations

import functools
import json
import warnings
from pathlib import Path

import numpy as np
import torch

from .errors import MotionGPTError, MotionGPTWarning
from .paths import INDEX_FILE
from .text.conditioning import concat_text
from .training_config import RunConfig


def records_fingerprint(records: list[dict]) -> str:
    """sha256 over each record's id, split, texts and frame range (not file paths): the dataset's identity."""
    import hashlib

    h = hashlib.sha256()
    for r in sorted(records, key=lambda r: r["id"]):
        h.update(json.dumps([r["id"], r["split"], r["high"], r["low"], r["start"], r["end"]]).encode())
    return h.hexdigest()[:16]


class TextTables:
    """Embedding tables for every unique text of the training set, computed once with the frozen encoders."""

    def __init__(self, run: RunConfig, dataset, *, device: str, cache_dir: Path | None) -> None:
        from .text.encoders import load_encoder

        cond = run.model.conditioning
        highs: set[str] = set()
        lows: set[str] = set()
        for rec in dataset.records:
            low = rec["low"] or None
            for h in rec["high"]:
                highs.add(concat_text(h, low or h) if cond == "concat" else h)
            lows.add(low or "")
        lows.update(h for rec in dataset.records if not rec["low"] for h in rec["high"])  # fallback: low = caption
        self.high_index = {t: i for i, t in enumerate(sorted(highs))}
        high_encoder = load_encoder(run.text.high_encoder, device=device, cache_dir=cache_dir)
        if high_encoder.dim != run.model.high_dim:
            raise MotionGPTError(
                f"encoder {run.text.high_encoder} gives {high_encoder.dim}-d embeddings but model.high_dim is "
                f"{run.model.high_dim}"
            )
        self.high = torch.from_numpy(high_encoder.encode(list(self.high_index)))
        self.low_index: dict[str, int] = {}
        self.low: torch.Tensor | None = None
        if cond == "dual":
            lows.discard("")
            self.low_index = {t: i for i, t in enumerate(sorted(lows))}
            low_encoder = load_encoder(run.text.low_encoder, device=device, cache_dir=cache_dir)
            if low_encoder.dim != run.model.low_dim:
                raise MotionGPTError(
                    f"encoder {run.text.low_encoder} gives {low_encoder.dim}-d embeddings but model.low_dim is "
                    f"{run.model.low_dim}"
                )
            self.low = torch.from_numpy(low_encoder.encode(list(self.low_index)))
        self.conditioning = cond

    def lookup(self, highs: list[str], lows: list[str | None]) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.conditioning == "concat":
            keys = [concat_text(h, lo or h) for h, lo in zip(highs, lows, strict=True)]
            return self.high[[self.high_index[k] for k in keys]], None
        high = self.high[[self.high_index[h] for h in highs]]
        if self.low is None:
            return high, None
        return high, self.low[[self.low_index[lo or h] for h, lo in zip(highs, lows, strict=True)]]


def model_index(run: RunConfig, records: list[dict], *, cache_dir: Path | None):
    """The retrieval index of the run's training (high, low) pairs, written into every checkpoint, so the model
    proposes low-level texts from its own data. Embedded with the low-level encoder (a sentence encoder: KATE's
    similarity) when the model has one, else the high-level encoder."""
    from .text.encoders import load_encoder
    from .text.index import build_index

    name = run.text.low_encoder if run.model.conditioning == "dual" and run.text.low_encoder else run.text.high_encoder
    encoder = load_encoder(name, device="cpu", cache_dir=cache_dir)
    return build_index(records, encoder, fingerprint=records_fingerprint(records))


def model_assets(run: RunConfig, records: list[dict], *, cache_dir: Path | None) -> tuple[dict[str, bytes], dict]:
    """What every checkpoint carries besides the weights, made once per run: ``(files, config entries)`` with the
    retrieval index of the training pairs and the length predictor (fitted on the high-level encoder; skipped,
    with a warning, when the dataset has no validation clips to choose its ridge strength on)."""
    from .generation import MIN_FRAMES
    from .length import CONFIG_KEY, LENGTH_FILE, fit_length_predictor, predictor_files
    from .text.encoders import load_encoder

    files = {INDEX_FILE: model_index(run, records, cache_dir=cache_dir).to_bytes()}
    if not any(r["split"] == "val" for r in records):
        warnings.warn("the dataset has no val split: the model gets no length predictor (generate keeps a 6 s "
                      "default)", MotionGPTWarning, stacklevel=2)  # fmt: skip
        return files, {}
    encoder = load_encoder(run.text.high_encoder, device="cpu", cache_dir=cache_dir)
    predictor = fit_length_predictor(encoder, records, min_frames=MIN_FRAMES, max_frames=run.model.max_frames)
    files[LENGTH_FILE], entry = predictor_files(predictor)
    return files, {CONFIG_KEY: entry}


def step_seed(seed: int, step: int) -> int:
    return int(np.random.SeedSequence([seed, step]).generate_state(1)[0])


def global_batch(n_items: int, batch: int, step: int, seed: int) -> list[tuple[int, int]]:
    """(epoch, index) of the global batch at ``step``: a stream of seeded per-epoch permutations."""
    out = []
    for j in range(batch):
        epoch, offset = divmod(step * batch + j, n_items)
        out.append((epoch, int(_epoch_permutation(n_items, seed, epoch)[offset])))
    return out


@functools.lru_cache(maxsize=4)
def _epoch_permutation(n_items: int, seed: int, epoch: int) -> np.ndarray:
    """One epoch's order, computed once (a batch spans at most two epochs, so a small cache suffices)."""
    return np.random.default_rng([seed, epoch]).permutation(n_items)


def load_batch(dataset, tables: TextTables, picks: list[tuple[int, int]], device: str):
    """``(x0, mask, high, low)`` of the ``(epoch, index)`` picks, cropped to the longest clip (padding is masked
    anyway and attention is quadratic in length), with their text embeddings, on ``device``."""
    items = []
    for epoch, index in picks:
        dataset.set_epoch(epoch)
        items.append(dataset[index])
    x0 = torch.stack([it["motion"] for it in items]).to(device)
    mask = torch.stack([it["mask"] for it in items]).to(device)
    frames = int(mask.sum(1).max())
    high, low = tables.lookup([it["high"] for it in items], [it["low"] for it in items])
    return x0[:, :frames], mask[:, :frames], high.to(device), None if low is None else low.to(device)
