"""Torch dataset over dual-text records (see :mod:`motiongpt_cli.data.prepare`) for training and evaluation.

Each item, as HumanML3D's loader does it: one of the record's captions drawn at random; the motion cropped to a
multiple of 4 frames (with probability 1/3 one unit shorter) at a random offset; z-normalised with the dataset's
Mean/Std; zero-padded to ``max_frames``; plus a validity mask, the length, and the low-level text.

Ground-truth low-level texts of the test split are never handed out unless asked for (``low_source="gt"``), so an
evaluation cannot condition on them by accident.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import MotionGPTError
from ..motion.skeleton import MAX_FRAMES

UNIT = 4  # HumanML3D crops to multiples of 4 frames (the evaluator's temporal downsampling)
LowSource = Literal["auto", "gt", "none"]


class GroundTruthLeakError(MotionGPTError):
    """Test-split ground-truth low-level texts were requested implicitly."""


class DualTextDataset(Dataset):
    """Records -> ``{"motion", "mask", "length", "high", "tokens", "low", "low_source", "id"}`` items.

    ``low_source``: ``"gt"`` gives each record's low-level text (the high caption for ``fallback`` records, as in
    the paper); ``"none"`` gives ``None`` (high-only conditioning); ``"auto"`` is ``"gt"`` for train/val and refuses
    the test split. Records shorter than ``min_frames`` or with unreadable, misshapen or non-finite motion are
    skipped and counted in ``self.skipped``.
    """

    def __init__(
        self,
        records: list[dict],
        mean: np.ndarray,
        std: np.ndarray,
        *,
        split: str | None = "train",
        low_source: LowSource = "auto",
        min_frames: int = 40,
        max_frames: int = MAX_FRAMES,
        seed: int = 0,
    ) -> None:
        if split is not None:
            records = [r for r in records if r["split"] == split]
        if low_source == "auto":
            if any(r["split"] == "test" for r in records):
                raise GroundTruthLeakError(
                    "test-split low-level texts are ground truth and are not used unless asked for",
                    hint="choose low_source='gt' (oracle) or 'none' explicitly",
                )
            low_source = "gt"
        if mean.shape != (263,) or std.shape != (263,):
            raise MotionGPTError(f"Mean/Std must have shape (263,), got {mean.shape} and {std.shape}")
        self.low_source = low_source
        self.mean = mean.astype(np.float32)
        self.std = std.astype(np.float32)
        self.max_frames = max_frames - max_frames % UNIT
        self.seed = seed
        self.epoch = 0
        self.skipped: Counter = Counter()
        self.records: list[dict] = []
        self._motions: list[np.ndarray] = []
        cache: dict[str, np.ndarray | None] = {}
        for rec in records:
            path = rec["motion"]
            if path not in cache:
                cache[path] = _load_features(Path(path))
            full = cache[path]
            if full is None:
                self.skipped["unreadable or invalid motion"] += 1
                continue
            segment = full[rec["start"] : rec["end"]]
            if len(segment) < min_frames:
                self.skipped["shorter than min_frames"] += 1
                continue
            if not rec["high"]:
                self.skipped["no caption"] += 1
                continue
            self.records.append(rec)
            self._motions.append(segment)

    def set_epoch(self, epoch: int) -> None:
        """Change the random crops and captions (deterministically) for a new epoch."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict:
        rec = self.records[index]
        rng = np.random.default_rng([self.seed, self.epoch, index])
        which = int(rng.integers(len(rec["high"])))
        high = rec["high"][which]
        tokens = rec.get("tokens")
        tokens = tokens[which].split() if tokens and which < len(tokens) and tokens[which] else None
        motion = self._motions[index]
        length = min(len(motion), self.max_frames)
        units = length // UNIT
        if units > 1 and rng.random() < 1 / 3:  # HumanML3D: P(one unit shorter) = 1/3
            units -= 1
        length = units * UNIT
        start = int(rng.integers(0, len(motion) - length + 1))
        crop = (motion[start : start + length] - self.mean) / self.std
        padded = np.zeros((self.max_frames, 263), dtype=np.float32)
        padded[:length] = crop
        mask = np.zeros(self.max_frames, dtype=bool)
        mask[:length] = True
        if self.low_source == "none":
            low = None
        else:
            low = rec["low"] or high  # fallback records: the caption is the low-level text (paper, sec. 4)
        return {
            "motion": torch.from_numpy(padded),
            "mask": torch.from_numpy(mask),
            "length": length,
            "high": high,
            "tokens": tokens,  # the caption's word/POS tokens, None when the dataset has none
            "low": low,
            "low_source": rec["low_source"],
            "id": rec["id"],
        }


def collate(items: list[dict]) -> dict:
    """Stack motions/masks/lengths; keep texts as lists (None = no low-level text)."""
    return {
        "motion": torch.stack([it["motion"] for it in items]),
        "mask": torch.stack([it["mask"] for it in items]),
        "length": torch.tensor([it["length"] for it in items], dtype=torch.long),
        "high": [it["high"] for it in items],
        "tokens": [it["tokens"] for it in items],
        "low": [it["low"] for it in items],
        "low_source": [it["low_source"] for it in items],
        "id": [it["id"] for it in items],
    }


def _load_features(path: Path) -> np.ndarray | None:
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        return None
    if arr.ndim != 2 or arr.shape[1] != 263 or not np.isfinite(arr).all():
        return None
    return arr.astype(np.float32)
