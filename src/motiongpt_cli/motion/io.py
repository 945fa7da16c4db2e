"""Motion files: our ``.npz`` output schema and HumanML3D-style ``.npy`` inputs. No pickles, ever.

``.npz`` schema (``FORMAT_VERSION`` 1), all loadable with ``numpy.load(path, allow_pickle=False)``:
``features`` (T, 263) float32, ``joints`` (T, 22, 3) float32 metres Y up, ``fps`` int, ``text_high`` / ``text_low``
str ("" when none), ``seed`` int (-1 when none), ``model`` str, ``guidance`` float (NaN when not applicable),
``steps`` int (-1 when none), ``format_version`` int. Strings are numpy unicode scalars, not object arrays.
"""

from __future__ import annotations

import math
import re
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from ..errors import MotionFormatError
from .skeleton import FEATURE_DIM, NUM_JOINTS

FORMAT_VERSION = 1
_FIELDS = ("features", "joints", "fps", "text_high", "text_low", "seed", "model", "guidance", "steps", "format_version")


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
    )
    for name in ("features", "joints"):
        arr = getattr(record, name)
        if arr.dtype.kind != "f":
            raise MotionFormatError(f"{where}: '{name}' must be a float array, got {arr.dtype}")
        setattr(record, name, arr.astype(np.float32))
    _validate(record, where)
    return record


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
