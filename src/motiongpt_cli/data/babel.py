"""BABEL action labels aligned to HumanML3D clips: the paper's low-level texts.

BABEL (``train.json``, ``val.json``, ``test.json``, ``extra_train.json``, ``extra_val.json``) maps a sequence id to
``{"babel_sid", "feat_p", "dur", "seq_ann", "frame_ann"}``. ``frame_ann`` (may be null) holds ``labels`` with
``raw_label``, ``proc_label``, ``act_cat``, ``start_t`` and ``end_t`` in seconds of the AMASS sequence;
``seq_ann`` holds whole-sequence labels without times.

A HumanML3D clip covers frames ``[start, end)`` of its source at 20 fps, counted after the per-dataset trim of
leading frames. Its low-level text is the BABEL frame labels overlapping that time range, sorted by start time,
joined with ", "; a sequence with only ``seq_ann`` contributes those labels. Mirrored ``M`` clips swap left and right.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import MotionFormatError
from ..motion.skeleton import FPS
from .humanml3d import DATASET_TRIM_FRAMES, IndexRow, amass_key, source_dataset

BABEL_FILES = ("train.json", "val.json", "test.json", "extra_train.json", "extra_val.json")
HUMANML3D_FPS = float(FPS)

_SWAPS = {
    "left": "right",
    "right": "left",
    "clockwise": "counterclockwise",
    "counterclockwise": "clockwise",
    "anticlockwise": "clockwise",
    "counter-clockwise": "clockwise",
    "anti-clockwise": "clockwise",
}
_SWAP_RE = re.compile(r"\b(" + "|".join(sorted(map(re.escape, _SWAPS), key=len, reverse=True)) + r")\b", re.I)


def swap_left_right(text: str) -> str:
    """Mirror a description: left <-> right, clockwise <-> counterclockwise (case kept for the first letter)."""

    def repl(match: re.Match[str]) -> str:
        word = match.group(0)
        out = _SWAPS[word.lower()]
        return out.capitalize() if word[0].isupper() else out

    return _SWAP_RE.sub(repl, text)


@dataclass(frozen=True)
class Segment:
    label: str
    start: float  # seconds in the source sequence
    end: float


@dataclass(frozen=True)
class BabelSequence:
    sid: str
    feat_p: str
    duration: float
    segments: tuple[Segment, ...]  # frame labels (timed)
    sequence_labels: tuple[str, ...]  # seq_ann labels (untimed)


def _label_text(label: dict, where: str) -> str:
    text = label.get("proc_label") or label.get("raw_label") or ""
    if not isinstance(text, str):
        raise MotionFormatError(f"{where}: label text must be a string")
    return " ".join(text.strip().split())


def parse_babel(data: object, *, where: str) -> dict[tuple[str, str], BabelSequence]:
    """BABEL JSON content -> sequences keyed by :func:`amass_key`."""
    if not isinstance(data, dict):
        raise MotionFormatError(f"{where}: expected a JSON object keyed by BABEL sequence id")
    out: dict[tuple[str, str], BabelSequence] = {}
    for sid, entry in data.items():
        here = f"{where} [{sid}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("feat_p"), str):
            raise MotionFormatError(f"{here}: each sequence needs a 'feat_p' path")
        key = amass_key(entry["feat_p"], babel=True)
        if key is None:
            raise MotionFormatError(f"{here}: cannot interpret feat_p {entry['feat_p']!r}")
        segments: list[Segment] = []
        frame_ann = entry.get("frame_ann") or {}
        for label in frame_ann.get("labels") or []:
            try:
                start, end = float(label["start_t"]), float(label["end_t"])
            except (KeyError, TypeError, ValueError):
                raise MotionFormatError(f"{here}: frame label without numeric start_t/end_t") from None
            text = _label_text(label, here)
            if text:
                segments.append(Segment(text, start, end))
        seq_labels = [_label_text(lb, here) for lb in ((entry.get("seq_ann") or {}).get("labels") or [])]
        try:
            duration = float(entry.get("dur") or 0.0)
        except (TypeError, ValueError):
            raise MotionFormatError(f"{here}: 'dur' must be a number") from None
        out[key] = BabelSequence(
            sid=str(sid),
            feat_p=entry["feat_p"],
            duration=duration,
            segments=tuple(sorted(segments, key=lambda s: (s.start, s.end))),
            sequence_labels=tuple(t for t in seq_labels if t),
        )
    return out


def load_babel(folder: Path) -> dict[tuple[str, str], BabelSequence]:
    """Read every BABEL split file present in ``folder``."""
    if not folder.is_dir():
        raise MotionFormatError(f"{folder}: BABEL folder not found")
    files = [folder / name for name in BABEL_FILES if (folder / name).is_file()]
    if not files and (folder / "babel").is_dir():  # a corpus root, as `motiongpt data synth` writes it
        files = [folder / "babel" / name for name in BABEL_FILES if (folder / "babel" / name).is_file()]
    if not files:
        raise MotionFormatError(f"{folder}: no BABEL files found", hint=f"expected one of {', '.join(BABEL_FILES)}")
    sequences: dict[tuple[str, str], BabelSequence] = {}
    for path in files:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise MotionFormatError(f"{path}: invalid JSON: {exc}") from None
        sequences.update(parse_babel(data, where=str(path)))
    return sequences


def clip_time_range(row: IndexRow, frames: int, *, fps: float = HUMANML3D_FPS) -> tuple[float, float]:
    """Seconds of the source sequence covered by a clip: ``(trim + start) / fps`` to ``(trim + end) / fps``.

    ``frames`` (the clip's own length) is used when the index says ``end = -1`` (to the end of the file).
    """
    trim = DATASET_TRIM_FRAMES.get(source_dataset(row.source_path), 0)
    end = row.end_frame if row.end_frame >= 0 else row.start_frame + frames
    return (trim + row.start_frame) / fps, (trim + end) / fps


def labels_in_range(sequence: BabelSequence, start: float, end: float) -> list[str]:
    """Frame labels overlapping ``[start, end)`` by more than 1 ms, sorted by start time, repeats of the same
    label in a row merged; the sequence labels when the sequence has no frame labels."""
    if not sequence.segments:
        return list(dict.fromkeys(sequence.sequence_labels))
    labels: list[str] = []
    for seg in sequence.segments:  # already sorted by start time
        if min(seg.end, end) - max(seg.start, start) > 1e-3 and (not labels or labels[-1] != seg.label):
            labels.append(seg.label)
    return labels
