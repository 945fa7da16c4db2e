"""Motion files: our ``.npz`` output schema and HumanML3D-style ``.npy`` inputs. No pickles, ever.

``.npz`` schema (``FORMAT_VERSION`` 1), all loadable with ``numpy.load(path, allow_pickle=False)``:
``features`` (T, 263) float32, ``joints`` (T, 22, 3) float32 metres Y up, ``fps`` int, ``text_high`` / ``text_low``
str ("" when none), ``seed`` int (-1 when none), ``model`` str, ``guidance`` float (NaN when not applicable),
``steps`` int (-1 when none), ``format_version`` int. Strings are numpy unicode scalars, not object arrays.
Optional (timelines and edits; older readers ignore them): ``segment_start`` / ``segment_end`` (K,) int64 frames,
``segment_high`` / ``segment_low`` (K,) unicode arrays, one entry per timeline segment; ``edit`` str, what an edit
kept; ``sampler`` str (``ddim`` / ``ddpm``) and ``sample_length`` str (``requested``, or ``max``: sampled at the
model's maximum length and cropped), how a generated motion was sampled.
"""

from __future__ import annotations

import math
import pickle
import re
import unicodedata
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from ..errors import MotionFormatError
from .skeleton import FEATURE_DIM, NUM_JOINTS

FORMAT_VERSION = 1
_FIELDS = ("features", "joints", "fps", "text_high", "text_low", "seed", "model", "guidance", "steps", "format_version")
_STRINGS = ("edit", "sampler", "sample_length")  # optional scalar strings
_OPTIONAL = ("segment_start", "segment_end", "segment_high", "segment_low", *_STRINGS)


@dataclass(frozen=True)
class Segment:
    """One part of a timeline: frames ``[start, end)`` of the motion follow ``high`` (and ``low``, "" for none)."""

    start: int
    end: int
    high: str
    low: str = ""


@dataclass
class MotionRecord:
    """One motion with its provenance; ``features`` and ``joints`` have the same frame count T."""

    features: np.ndarray
    joints: np.ndarray
    fps: int = 20
    text_high: str = ""
    text_low: str = ""
    seed: int = -1
    model: str = ""
    guidance: float = math.nan
    steps: int = -1
    format_version: int = FORMAT_VERSION
    segments: list[Segment] = field(default_factory=list)  # a timeline's parts, in order
    edit: str = ""  # for an edit: what was kept from which input
    sampler: str = ""  # "ddim" | "ddpm" for a generated motion ("" when not sampled)
    sample_length: str = ""  # "requested" | "max" for a generated motion


def _validate(record: MotionRecord, where: str) -> None:
    f, j = np.asarray(record.features), np.asarray(record.joints)
    if f.ndim != 2 or f.shape[1] != FEATURE_DIM:
        raise MotionFormatError(f"{where}: 'features' must have shape (frames, {FEATURE_DIM}), got {f.shape}")
    if j.ndim != 3 or j.shape[1:] != (NUM_JOINTS, 3):
        raise MotionFormatError(f"{where}: 'joints' must have shape (frames, {NUM_JOINTS}, 3), got {j.shape}")
    if f.shape[0] != j.shape[0]:
        raise MotionFormatError(f"{where}: 'features' has {f.shape[0]} frames but 'joints' has {j.shape[0]}")
    if j.shape[0] < 1:
        raise MotionFormatError(f"{where}: the motion has no frames")
    for name, arr in (("features", f), ("joints", j)):
        if not np.all(np.isfinite(arr)):
            raise MotionFormatError(f"{where}: '{name}' contains NaN or infinite values")
    if int(record.fps) <= 0:
        raise MotionFormatError(f"{where}: 'fps' must be positive, got {record.fps}")
    for seg in record.segments:
        if not 0 <= seg.start < seg.end <= f.shape[0]:
            raise MotionFormatError(f"{where}: segment [{seg.start}, {seg.end}) is outside the {f.shape[0]} frames")


def save_npz(path: str | Path, record: MotionRecord, *, overwrite: bool = False) -> Path:
    """Validate and write ``record`` atomically (the name gets ``.npz`` if it lacks it)."""
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    _validate(record, str(path))
    arrays = {
        "features": np.asarray(record.features, dtype=np.float32),
        "joints": np.asarray(record.joints, dtype=np.float32),
        "fps": np.int64(record.fps),
        "text_high": np.str_(record.text_high),
        "text_low": np.str_(record.text_low),
        "seed": np.int64(record.seed),
        "model": np.str_(record.model),
        "guidance": np.float64(record.guidance),
        "steps": np.int64(record.steps),
        "format_version": np.int64(FORMAT_VERSION),
    }
    if record.segments:
        arrays |= {
            "segment_start": np.array([s.start for s in record.segments], dtype=np.int64),
            "segment_end": np.array([s.end for s in record.segments], dtype=np.int64),
            "segment_high": np.array([s.high for s in record.segments], dtype=np.str_),
            "segment_low": np.array([s.low for s in record.segments], dtype=np.str_),
        }
    for name in _STRINGS:
        if getattr(record, name):
            arrays[name] = np.str_(getattr(record, name))
    with atomic_path(path, overwrite=overwrite) as tmp:
        with open(tmp, "wb") as fh:  # a file object: numpy would append .npz to a name
            np.savez(fh, **arrays)
    return path


def load_npz(path: str | Path) -> MotionRecord:
    """Read and validate an ``.npz`` motion; every problem is a MotionFormatError naming the file and field."""
    path = Path(path)
    where = str(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [name for name in _FIELDS if name not in data.files]
            if missing:
                raise MotionFormatError(f"{where}: missing field(s) {', '.join(missing)}")
            values = {name: data[name] for name in _FIELDS}
            extra = {name: data[name] for name in _OPTIONAL if name in data.files}
    except MotionFormatError:
        raise
    except FileNotFoundError:
        raise MotionFormatError(f"{where}: file not found") from None
    except ValueError as exc:  # object arrays need pickle
        raise MotionFormatError(f"{where}: holds pickled objects, which are not read ({exc})") from None
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise MotionFormatError(f"{where}: not a readable .npz file ({exc})") from None
    version = _scalar(values["format_version"], int, "format_version", where)
    if version > FORMAT_VERSION:
        raise MotionFormatError(
            f"{where}: format_version {version} is newer than this motiongpt reads ({FORMAT_VERSION})",
            hint="upgrade motiongpt-cli",
        )
    record = MotionRecord(
        features=np.asarray(values["features"]),
        joints=np.asarray(values["joints"]),
        fps=_scalar(values["fps"], int, "fps", where),
        text_high=_scalar(values["text_high"], str, "text_high", where),
        text_low=_scalar(values["text_low"], str, "text_low", where),
        seed=_scalar(values["seed"], int, "seed", where),
        model=_scalar(values["model"], str, "model", where),
        guidance=_scalar(values["guidance"], float, "guidance", where),
        steps=_scalar(values["steps"], int, "steps", where),
        format_version=version,
        segments=_segments(extra, where),
        **{name: _scalar(extra[name], str, name, where) for name in _STRINGS if name in extra},
    )
    for name in ("features", "joints"):
        arr = getattr(record, name)
        if arr.dtype.kind != "f":
            raise MotionFormatError(f"{where}: '{name}' must be a float array, got {arr.dtype}")
        setattr(record, name, arr.astype(np.float32))
    _validate(record, where)
    return record


def _segments(extra: dict[str, np.ndarray], where: str) -> list[Segment]:
    names = ("segment_start", "segment_end", "segment_high", "segment_low")
    present = [name for name in names if name in extra]
    if not present:
        return []
    if len(present) != len(names):
        raise MotionFormatError(f"{where}: has {', '.join(present)} but not all of {', '.join(names)}")
    start, end, high, low = (extra[name] for name in names)
    if start.ndim != 1 or not start.shape == end.shape == high.shape == low.shape:
        raise MotionFormatError(f"{where}: the segment fields must be 1-D arrays of one length")
    if start.dtype.kind not in "iu" or end.dtype.kind not in "iu" or high.dtype.kind != "U" or low.dtype.kind != "U":
        raise MotionFormatError(f"{where}: segment_start/end must be integers and segment_high/low strings")
    return [Segment(int(a), int(b), str(h), str(lo)) for a, b, h, lo in zip(start, end, high, low, strict=True)]


def _scalar(value: np.ndarray, kind: type, name: str, where: str):
    if value.shape != ():
        raise MotionFormatError(f"{where}: '{name}' must be a scalar, got shape {value.shape}")
    item = value.item()
    if kind is str:
        if not isinstance(item, str):
            raise MotionFormatError(f"{where}: '{name}' must be a string")
        return item
    if kind is int:
        if isinstance(item, bool) or not isinstance(item, int):
            raise MotionFormatError(f"{where}: '{name}' must be an integer")
        return int(item)
    if not isinstance(item, (int, float)):
        raise MotionFormatError(f"{where}: '{name}' must be a number")
    return float(item)


def load_motion_array(path: str | Path) -> tuple[str, np.ndarray]:
    """Classify and read a ``.npy`` motion: ``("features", (N, 263))`` or ``("joints", (N, 22, 3))`` float32.

    Flattened joints ``(N, 66)`` are accepted. Other shapes, pickles, NaN/inf and fewer than 2 frames are refused.
    """
    path = Path(path)
    where = str(path)
    try:
        arr = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise MotionFormatError(f"{where}: file not found") from None
    except IsADirectoryError:
        raise MotionFormatError(f"{where}: is a folder, not a .npy file") from None
    except ValueError as exc:
        raise MotionFormatError(f"{where}: not a plain numeric .npy file ({exc})") from None
    except (OSError, EOFError) as exc:
        raise MotionFormatError(f"{where}: unreadable ({exc})") from None
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "fiu":
        raise MotionFormatError(f"{where}: expected a numeric array")
    if arr.ndim == 2 and arr.shape[1] == FEATURE_DIM:
        kind = "features"
    elif arr.ndim == 3 and arr.shape[1:] == (NUM_JOINTS, 3):
        kind = "joints"
    elif arr.ndim == 2 and arr.shape[1] == NUM_JOINTS * 3:
        kind, arr = "joints", arr.reshape(-1, NUM_JOINTS, 3)
    else:
        raise MotionFormatError(
            f"{where}: shape {arr.shape} is neither features (N, 263) nor joints (N, 22, 3) / (N, 66)"
        )
    if arr.shape[0] < 2:
        raise MotionFormatError(f"{where}: needs at least 2 frames, has {arr.shape[0]}")
    if not np.all(np.isfinite(arr)):
        raise MotionFormatError(f"{where}: contains NaN or infinite values")
    return kind, arr.astype(np.float32)


def slugify(text: str, max_len: int = 48) -> str:
    """A file-name-safe slug: lowercase ASCII words joined by hyphens; never empty ("motion")."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    if len(slug) > max_len:
        slug = slug[:max_len].rsplit("-", 1)[0] if "-" in slug[:max_len] else slug[:max_len]
    return slug or "motion"


# ----------------------------------------------------------------------------------------------- MDM results.npy
# What an object-array .npy written by np.save(dict) may reference: numpy's array reconstruction, nothing else.
_NUMPY_GLOBALS = {
    (module, name)
    for module in ("numpy.core.multiarray", "numpy._core.multiarray")
    for name in ("_reconstruct", "scalar")
} | {("numpy", "ndarray"), ("numpy", "dtype")}


class _ArraysOnlyUnpickler(pickle.Unpickler):
    """Builds numpy arrays and plain containers only; any other class or function in the file is refused."""

    def find_class(self, module: str, name: str):
        if (module, name) in _NUMPY_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


@dataclass
class MDMResults:
    """MDM's (and the seed's) ``results.npy``: ``motion (N, 22, 3, T)`` joints in metres, ``text``, ``lengths``,
    ``num_samples``, ``num_repetitions``; entry ``i = rep * num_samples + sample``."""

    motion: np.ndarray
    text: list[str]
    lengths: np.ndarray
    num_samples: int
    num_repetitions: int

    def joints(self, i: int) -> np.ndarray:
        """Sample ``i`` as ``(lengths[i], 22, 3)`` float32."""
        return np.ascontiguousarray(self.motion[i, :, :, : int(self.lengths[i])].transpose(2, 0, 1), np.float32)

    def sample_and_rep(self, i: int) -> tuple[int, int]:
        return i % self.num_samples, i // self.num_samples

    def stem(self, i: int) -> str:
        """Sample ``i``'s file name: its text, sample and repetition (``a-person-walks-s00-r01``)."""
        sample, rep = self.sample_and_rep(i)
        return f"{slugify(self.text[i])}-s{sample:02d}-r{rep:02d}"


def is_object_npy(path: str | Path) -> bool:
    """Whether a ``.npy`` file holds a pickled object array (as ``np.save(dict)`` writes), from its header only."""
    try:
        with open(path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            _, _, dtype = read(fh)
    except (OSError, ValueError):
        return False
    return bool(dtype.hasobject)


def load_mdm_results(path: str | Path) -> MDMResults:
    """Read ``results.npy`` through a restricted unpickler (numpy arrays and plain containers only)."""
    path = Path(path)
    where = str(path)
    try:
        with open(path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = read(fh)
            if shape != () or not dtype.hasobject:
                raise MotionFormatError(f"{where}: not an MDM results.npy (a pickled dict)")
            value = _ArraysOnlyUnpickler(fh).load()
    except MotionFormatError:
        raise
    except FileNotFoundError:
        raise MotionFormatError(f"{where}: file not found") from None
    except (pickle.UnpicklingError, ValueError, EOFError, TypeError, AttributeError, OSError) as exc:
        raise MotionFormatError(f"{where}: not a plain-data results.npy ({exc})") from None
    data = value.item() if isinstance(value, np.ndarray) and value.shape == () else value
    if not isinstance(data, dict) or not {"motion", "text", "lengths"} <= set(data):
        raise MotionFormatError(f"{where}: an MDM results.npy needs 'motion', 'text' and 'lengths'")
    motion = np.asarray(data["motion"])
    if motion.ndim != 4 or motion.shape[1:3] != (NUM_JOINTS, 3) or motion.dtype.kind != "f":
        raise MotionFormatError(f"{where}: 'motion' must be float (N, {NUM_JOINTS}, 3, T), got {motion.shape}")
    n = motion.shape[0]
    text = [str(t) for t in data["text"]] if isinstance(data["text"], (list, tuple, np.ndarray)) else []
    lengths = np.asarray(data["lengths"]).reshape(-1)
    if len(text) != n or lengths.shape != (n,) or lengths.dtype.kind not in "iu":
        raise MotionFormatError(f"{where}: {n} motions but {len(text)} texts and {lengths.shape} lengths")
    if np.any(lengths < 2) or np.any(lengths > motion.shape[3]):
        raise MotionFormatError(f"{where}: lengths must be in [2, {motion.shape[3]}]")
    num_samples = int(data.get("num_samples", n))
    num_reps = int(data.get("num_repetitions", 1))
    if num_samples < 1 or num_samples * num_reps != n:
        raise MotionFormatError(f"{where}: num_samples {num_samples} x num_repetitions {num_reps} != {n} motions")
    if not np.all(np.isfinite(motion)):
        raise MotionFormatError(f"{where}: 'motion' contains NaN or infinite values")
    return MDMResults(motion.astype(np.float32), text, lengths.astype(np.int64), num_samples, num_reps)
