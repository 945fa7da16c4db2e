"""Reading a HumanML3D-layout folder: split files, ``texts/*.txt`` captions and ``index.csv``.

Layout (the real dataset and ``motiongpt data synth`` output alike)::

    DIR/new_joint_vecs/<id>.npy   (N, 263) float32 features
    DIR/new_joints/<id>.npy       (N, 22, 3) float32 joints
    DIR/texts/<id>.txt            caption#word/POS tokens#start#end, one line per caption
    DIR/{train,val,test}.txt      one id per line
    DIR/index.csv                 source_path,start_frame,end_frame,new_name (20 fps frames, after trims)

Caption times are seconds within the clip; ``0.0#0.0`` (or NaN) means the whole clip.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

from ..errors import MotionFormatError

SPLITS = ("train", "val", "test")

# Leading frames (at 20 fps) that HumanML3D drops from these AMASS sub-datasets before slicing start:end.
DATASET_TRIM_FRAMES = {
    "Eyes_Japan_Dataset": 60,
    "MPI_HDM05": 60,
    "TotalCapture": 20,
    "MPI_Limits": 20,
    "Transitions_mocap": 10,
}

# Clips whose released features contain NaN (KIT/9/RightTurn10); both sit in test.txt.
KNOWN_NAN_CLIPS = frozenset({"007975", "M007975"})


@dataclass(frozen=True)
class Caption:
    text: str
    tokens: str
    start: float  # seconds; 0 with end 0 means the whole clip
    end: float

    @property
    def whole_clip(self) -> bool:
        return self.start == 0.0 and self.end == 0.0


@dataclass(frozen=True)
class IndexRow:
    source_path: str  # e.g. ./pose_data/KIT/3/kick_high_left02_poses.npy
    start_frame: int
    end_frame: int  # -1 means "to the end" (HumanAct12)
    clip_id: str  # new_name without .npy


def read_split(root: Path, split: str) -> list[str]:
    path = root / f"{split}.txt"
    if not path.is_file():
        raise MotionFormatError(f"{path}: split file not found", hint=f"a HumanML3D folder has {', '.join(SPLITS)}.txt")
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def parse_caption_line(line: str, *, where: str) -> Caption:
    """One ``texts/<id>.txt`` line: ``caption#tokens#start#end``."""
    parts = line.rstrip("\n").split("#")
    if len(parts) < 4:
        raise MotionFormatError(f"{where}: expected 'caption#tokens#start#end', got {line.strip()[:80]!r}")
    # a caption itself never holds '#', but be lenient: the last three fields are fixed
    text, tokens, start_s, end_s = "#".join(parts[:-3]), parts[-3], parts[-2], parts[-1]
    try:
        start = float(start_s or 0.0)
        end = float(end_s or 0.0)
    except ValueError:
        raise MotionFormatError(f"{where}: start/end must be numbers, got {start_s!r}/{end_s!r}") from None
    start = 0.0 if math.isnan(start) else start  # HumanML3D treats NaN times as 0
    end = 0.0 if math.isnan(end) else end
    return Caption(text=text.strip(), tokens=tokens.strip(), start=start, end=end)


def read_captions(root: Path, clip_id: str) -> list[Caption]:
    path = root / "texts" / f"{clip_id}.txt"
    if not path.is_file():
        return []
    captions = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            captions.append(parse_caption_line(line, where=f"{path}:{n}"))
    return [c for c in captions if c.text]


def read_index(path: Path) -> dict[str, IndexRow]:
    """``index.csv`` keyed by clip id (without ``.npy``); mirrored ``M`` ids share their original's row."""
    if not path.is_file():
        raise MotionFormatError(f"{path}: index.csv not found", hint="pass --index PATH (HumanML3D ships index.csv)")
    rows: dict[str, IndexRow] = {}
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        expected = ["source_path", "start_frame", "end_frame", "new_name"]
        if header is None or [h.strip() for h in header] != expected:
            raise MotionFormatError(f"{path}: expected header {','.join(expected)}, got {header}")
        for n, row in enumerate(reader, 2):
            if not row:
                continue
            if len(row) != 4:
                raise MotionFormatError(f"{path}:{n}: expected 4 columns, got {len(row)}")
            try:
                start, end = int(row[1]), int(row[2])
            except ValueError:
                raise MotionFormatError(f"{path}:{n}: start/end frames must be integers") from None
            clip_id = Path(row[3].strip()).stem
            rows[clip_id] = IndexRow(row[0].strip(), start, end, clip_id)
    return rows


def amass_key(path: str, *, babel: bool = False) -> tuple[str, str] | None:
    """(dataset, rest) identifying an AMASS sequence, comparable between HumanML3D and BABEL paths.

    HumanML3D: ``./pose_data/KIT/3/kick_high_left02_poses.npy`` -> ("kit", "3/kick_high_left02_poses").
    BABEL ``feat_p``: ``KIT/KIT/3/kick_high_left02_poses.npz`` (archive folder, then the AMASS dataset folder).
    Dataset names compare case- and punctuation-insensitively (``MPI_HDM05`` = ``MPIHDM05``).
    """
    parts = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]
    if not babel and parts and parts[0] == "pose_data":
        parts = parts[1:]
    if babel and len(parts) >= 3:
        parts = parts[1:]  # drop the archive folder; the next one is the dataset folder
    if len(parts) < 2:
        return None
    dataset = "".join(ch for ch in parts[0].lower() if ch.isalnum())
    rest = "/".join(parts[1:])
    for ext in (".npy", ".npz"):
        if rest.endswith(ext):
            rest = rest[: -len(ext)]
    return dataset, rest


def source_dataset(source_path: str) -> str:
    parts = [p for p in source_path.replace("\\", "/").split("/") if p not in ("", ".")]
    if parts and parts[0] == "pose_data":
        parts = parts[1:]
    return parts[0] if parts else ""
