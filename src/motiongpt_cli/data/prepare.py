"""Build the dual-text dataset (``motiongpt data prepare``): one JSONL record per HumanML3D clip or caption segment.

Record fields::

    id          clip id, or "<clip>@<start>-<end>" for a caption that covers a segment (frames)
    clip        HumanML3D clip id (M prefix = mirrored)
    split       train | val | test
    high        the high-level captions of this record (one is drawn per training item)
    tokens      the captions' ``word/POS`` token strings from ``texts/*.txt``, parallel to ``high`` ("" when a
                line has none); the standard T2M evaluator's text encoder reads these
    low         the low-level text; "" when low_source is "fallback"
    low_source  babel | synthetic | fallback
    motion      path of the feature file, relative to the JSONL file's folder
    start, end  frame range within the feature file; length = end - start
    babel_sid   the BABEL sequence matched, or null

"fallback" means no BABEL label overlaps the clip; as in the paper, the record's high-level caption then serves as
its low-level text (the dataset substitutes it per item; no placeholder string is ever stored or encoded).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from ..errors import MotionFormatError
from ..motion.skeleton import FPS
from .babel import BabelSequence, clip_time_range, labels_in_range, load_babel, swap_left_right
from .humanml3d import KNOWN_NAN_CLIPS, SPLITS, IndexRow, amass_key, read_captions, read_index, read_split

SYNTHETIC_DATASET = "syn"  # amass_key dataset name of `motiongpt data synth` sources


@dataclass
class PrepareStats:
    records: int = 0
    per_split: dict[str, Counter] = field(default_factory=dict)
    skipped: Counter = field(default_factory=Counter)

    def coverage(self, split: str) -> float:
        """Share of the split's records whose low-level text comes from labels (BABEL or synthetic)."""
        counts = self.per_split.get(split, Counter())
        total = sum(counts.values())
        return (counts["babel"] + counts["synthetic"]) / total if total else 0.0


def _low_text(
    row: IndexRow | None,
    sequences: dict[tuple[str, str], BabelSequence],
    *,
    clip_frames: int,
    start: int,
    end: int,
    mirrored: bool,
) -> tuple[str, str, str | None]:
    """(low text, source, babel sid) for frames [start, end) of a clip."""
    if row is None:
        return "", "fallback", None
    key = amass_key(row.source_path)
    sequence = sequences.get(key) if key else None
    if sequence is None:
        return "", "fallback", None
    clip_start, _ = clip_time_range(row, clip_frames)
    labels = labels_in_range(sequence, clip_start + start / FPS, clip_start + end / FPS)
    if not labels:
        return "", "fallback", sequence.sid
    text = ", ".join(labels)
    if mirrored:
        text = swap_left_right(text)
    return text, ("synthetic" if key[0] == SYNTHETIC_DATASET else "babel"), sequence.sid


def _check_motion(path: Path) -> int | None:
    """Frame count of a valid (N, 263) finite feature file, else None."""
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        return None
    if arr.ndim != 2 or arr.shape[1] != 263 or arr.shape[0] < 2 or not np.isfinite(arr).all():
        return None
    return int(arr.shape[0])


def build_records(
    humanml3d: Path, babel: Path, *, index: Path | None = None, relative_to: Path | None = None
) -> tuple[list[dict], PrepareStats]:
    """Align every clip of the three splits; returns the records and statistics."""
    if not humanml3d.is_dir():
        raise MotionFormatError(f"{humanml3d}: HumanML3D folder not found")
    for sub in ("new_joint_vecs", "texts"):
        if not (humanml3d / sub).is_dir():
            raise MotionFormatError(f"{humanml3d}: missing {sub}/", hint="expected the HumanML3D layout")
    rows = read_index(index or humanml3d / "index.csv")
    sequences = load_babel(babel)
    base = relative_to or humanml3d
    stats = PrepareStats()
    records: list[dict] = []
    for split in SPLITS:
        counts = stats.per_split.setdefault(split, Counter())
        for clip in read_split(humanml3d, split):
            if clip in KNOWN_NAN_CLIPS:
                stats.skipped["known NaN clip"] += 1
                continue
            motion = humanml3d / "new_joint_vecs" / f"{clip}.npy"
            frames = _check_motion(motion) if motion.is_file() else None
            if frames is None:
                stats.skipped["missing or invalid motion" if motion.is_file() else "missing motion"] += 1
                continue
            captions = read_captions(humanml3d, clip)
            if not captions:
                stats.skipped["no captions"] += 1
                continue
            mirrored = clip.startswith("M")
            row = rows.get(clip[1:] if mirrored else clip)
            groups: dict[tuple[int, int], list[tuple[str, str]]] = {}
            for cap in captions:
                if cap.whole_clip:
                    span = (0, frames)
                else:
                    span = (int(cap.start * FPS), min(int(cap.end * FPS), frames))
                    if span[1] - span[0] < 2:
                        stats.skipped["empty caption segment"] += 1
                        continue
                groups.setdefault(span, []).append((cap.text, cap.tokens))
            for (start, end), captions_here in groups.items():
                low, source, sid = _low_text(
                    row, sequences, clip_frames=frames, start=start, end=end, mirrored=mirrored
                )
                records.append(
                    {
                        "id": clip if (start, end) == (0, frames) else f"{clip}@{start}-{end}",
                        "clip": clip,
                        "split": split,
                        "high": [text for text, _ in captions_here],
                        "tokens": [tokens for _, tokens in captions_here],
                        "low": low,
                        "low_source": source,
                        "motion": os.path.relpath(motion, base),
                        "start": start,
                        "end": end,
                        "babel_sid": sid,
                    }
                )
                counts[source] += 1
    stats.records = len(records)
    return records, stats


def prepare_dataset(
    humanml3d: Path, babel: Path, out: Path, *, index: Path | None = None, overwrite: bool = False
) -> PrepareStats:
    """Write the dual-text JSONL atomically (a crash never leaves a partial file that looks complete)."""
    records, stats = build_records(humanml3d, babel, index=index, relative_to=out.resolve().parent)
    with atomic_path(out, overwrite=overwrite) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            for record in records:
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    return stats


def read_records(path: Path) -> list[dict]:
    """Read a dataset JSONL; ``motion`` paths become absolute. Malformed lines -> MotionFormatError with line."""
    if not path.is_file():
        raise MotionFormatError(f"{path}: dataset file not found", hint="make one with `motiongpt data prepare`")
    required = {"id", "split", "high", "low", "low_source", "motion", "start", "end"}
    records = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise MotionFormatError(f"{path}:{n}: invalid JSON: {exc.msg}") from None
        missing = required - set(rec) if isinstance(rec, dict) else required
        if missing:
            raise MotionFormatError(f"{path}:{n}: record lacks {', '.join(sorted(missing))}")
        rec["motion"] = str((path.parent / rec["motion"]).resolve())
        records.append(rec)
    return records


def dataset_normalization(records: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """The ``Mean.npy``/``Std.npy`` of the HumanML3D-layout folder the records' motions live in."""
    from ..motion.features import load_mean_std

    if not records:
        raise MotionFormatError("the dataset has no records")
    roots = {Path(r["motion"]).parent.parent for r in records}
    if len(roots) != 1:
        raise MotionFormatError(f"the dataset's motions come from {len(roots)} folders; expected one")
    return load_mean_std(roots.pop())


def load_dataset(path: Path) -> tuple[list[dict], np.ndarray, np.ndarray]:
    """Records (absolute motion paths) and the normalisation statistics of a dataset JSONL."""
    records = read_records(Path(path))
    mean, std = dataset_normalization(records)
    return records, mean, std
