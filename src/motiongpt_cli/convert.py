"""Convert motion files between formats: HumanML3D features ``.npy``, joints ``.npy`` and our ``.npz`` in;
``.npz``, ``.bvh``, ``.gif`` and ``.mp4`` out (the core of ``motiongpt export``).

Each input is converted independently; a bad input raises a :class:`~motiongpt_cli.errors.MotionGPTError` for that
file only. Every output is written atomically, and all outputs of an input are checked for existence before the
first is written, so a refused overwrite leaves nothing half-done.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .atomic import check_writable
from .errors import MotionFormatError
from .motion.io import MotionRecord
from .motion.outputs import check_smpl_model, suffix_of, validate_formats, write_outputs

__all__ = ["ExportOptions", "ExportResult", "export_motion", "plan_exports", "validate_formats"]


@dataclass(frozen=True)
class ExportOptions:
    """How to export: formats (subset of npz/bvh/gif/mp4), output folder, frame rate (None = the input's or 20)."""

    formats: tuple[str, ...]
    out_dir: Path
    fps: int | None = None
    overwrite: bool = False
    normalized: bool = False
    mean_path: Path | None = None
    std_path: Path | None = None
    smpl: object | None = None  # motion.amass.SMPLOutputOptions for the smpl and obj formats (None: its defaults)

    def __post_init__(self) -> None:
        check_smpl_model(self.formats, self.smpl)  # obj without a model: refused before any input is read


@dataclass
class LoadedMotion:
    """A motion read from any supported input. ``features`` is None for joints inputs until needed."""

    source: Path
    kind: str  # "features", "joints" or "npz"
    joints: np.ndarray  # (T, 22, 3) float32
    features: np.ndarray | None  # (T, 263) float32
    record: MotionRecord | None = None  # the whole record (texts, seed, model, fps ...) when the input was a .npz
    stem: str = ""  # output file name without suffix: the input's, or text-sample-rep for MDM's results.npy


@dataclass
class ExportResult:
    source: Path
    kind: str
    frames: int
    fps: int
    outputs: dict[str, Path] = field(default_factory=dict)


def load_normalization(mean_path: Path | None, std_path: Path | None) -> tuple[np.ndarray, np.ndarray]:
    """Read Mean/Std ``.npy`` files of shape (263,) for de-normalising features."""
    if mean_path is None or std_path is None:
        raise MotionFormatError("--normalized needs both --mean and --std", hint="HumanML3D ships Mean.npy and Std.npy")
    arrays = []
    for name, path in (("mean", mean_path), ("std", std_path)):
        try:
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise MotionFormatError(f"{path}: cannot read {name}: {exc}") from None
        if arr.shape != (263,) or not np.all(np.isfinite(arr)):
            raise MotionFormatError(f"{path}: {name} must be a finite (263,) array, got shape {arr.shape}")
        arrays.append(arr.astype(np.float32))
    if np.any(arrays[1] <= 0):
        raise MotionFormatError(f"{std_path}: std must be positive")
    return arrays[0], arrays[1]


def _file_stem(path: Path) -> str:
    return path.name[: -len(path.suffix)] if path.suffix else path.name


def load_motions(path: Path, options: ExportOptions) -> list[LoadedMotion]:
    """Read one input file: one motion, or every sample of an MDM ``results.npy`` (``text-sNN-rNN`` names)."""
    from .motion.features import features_to_joints
    from .motion.io import is_object_npy, load_mdm_results, load_motion_array, load_npz

    stem = _file_stem(path)
    if path.suffix.lower() == ".npz":
        rec = load_npz(path)
        return [LoadedMotion(source=path, kind="npz", joints=rec.joints, features=rec.features, record=rec, stem=stem)]
    if is_object_npy(path):
        if options.normalized:
            raise MotionFormatError(f"{path}: --normalized applies to 263-dim features, not to MDM results")
        results = load_mdm_results(path)
        motions = []
        for i, text in enumerate(results.text):
            record = MotionRecord(features=None, joints=results.joints(i), text_high=text, model="export:mdm-results")
            motions.append(LoadedMotion(source=path, kind="mdm-results", joints=record.joints, features=None,
                                        record=record, stem=results.stem(i)))  # fmt: skip
        return motions
    kind, array = load_motion_array(path)
    if kind == "features":
        features = array
        if options.normalized:
            mean, std = load_normalization(options.mean_path, options.std_path)
            features = features * std + mean
        joints = features_to_joints(features).astype(np.float32)
        if not np.all(np.isfinite(joints)):
            raise MotionFormatError(f"{path}: features give non-finite joints")
        return [LoadedMotion(source=path, kind=kind, joints=joints, features=features.astype(np.float32), stem=stem)]
    if options.normalized:
        raise MotionFormatError(f"{path}: --normalized applies to 263-dim features, but this file holds joints")
    return [LoadedMotion(source=path, kind=kind, joints=array.astype(np.float32), features=None, stem=stem)]


def features_for_joints(joints: np.ndarray) -> np.ndarray:
    """HumanML3D features with one row per frame of ``joints`` (T, 22, 3) -> (T, 263).

    HumanML3D's extraction yields T-1 rows (velocities need a next frame), so one frame is extrapolated at
    constant velocity first. The features describe the canonical motion (retargeted to the HumanML3D skeleton,
    on the floor, starting at the origin facing +Z), as any HumanML3D feature file does.
    """
    from .motion.features import joints_to_features

    extra = joints[-1:] + (joints[-1:] - joints[-2:-1])
    return joints_to_features(np.concatenate([joints, extra], axis=0)).astype(np.float32)


def output_paths(stem: str, options: ExportOptions) -> dict[str, Path]:
    return {fmt: options.out_dir / f"{stem}{suffix_of(fmt)}" for fmt in options.formats}


def export_motion(path: Path, options: ExportOptions) -> list[ExportResult]:
    """Convert one input (one motion, or every sample of a ``results.npy``) into every requested format; all of
    its outputs are checked for existence before the first is written. Returns what was written."""
    motions = load_motions(path, options)
    for motion in motions:
        for target in output_paths(motion.stem, options).values():
            check_writable(target, overwrite=options.overwrite)
    results = []
    if options.smpl is not None and "smpl" in options.formats:
        for motion in motions:  # refused before any file of this input is written
            options.smpl.check_fps(options.fps or (motion.record.fps if motion.kind == "npz" else 20))
    for motion in motions:
        targets = output_paths(motion.stem, options)
        rec = motion.record
        fps = options.fps or (rec.fps if rec is not None and motion.kind == "npz" else None) or 20
        title = (rec.text_high + (f" | {rec.text_low}" if rec.text_low else "")) if rec else ""
        title = title or path.name
        features = motion.features
        if features is None and "npz" in targets:  # joints inputs: features only when an .npz is asked for
            features = features_for_joints(motion.joints)
        if rec is not None:
            record = dataclasses.replace(rec, fps=fps, features=features)
        else:
            record = MotionRecord(features=features, joints=motion.joints, fps=fps, model=f"export:{motion.kind}")
        write_outputs(record, targets, title=title, overwrite=options.overwrite, smpl=options.smpl)
        results.append(ExportResult(source=path, kind=motion.kind, frames=int(motion.joints.shape[0]), fps=fps,
                                    outputs=dict(targets)))  # fmt: skip
    return results


def _planned_stems(path: Path) -> list[str]:
    from .motion.io import is_object_npy, load_mdm_results

    if is_object_npy(path):
        try:
            results = load_mdm_results(path)
        except MotionFormatError:
            return [_file_stem(path)]  # the export itself reports the problem
        return [results.stem(i) for i in range(len(results.text))]
    return [_file_stem(path)]


def plan_exports(paths: list[Path], options: ExportOptions) -> list[tuple[Path, str | None]]:
    """Each input with the reason it cannot be exported (None when it can): two inputs whose outputs would be the
    same file (``a/x.npy`` and ``b/x.npy`` into one folder) are refused for the second one, before anything runs."""
    claimed: dict[Path, Path] = {}
    plan: list[tuple[Path, str | None]] = []
    for path in paths:
        targets = [t for stem in _planned_stems(path) for t in output_paths(stem, options).values()]
        clash = next((t for t in targets if t in claimed), None)
        if clash is not None:
            plan.append((path, f"output {clash} would also be written for {claimed[clash]}"))
            continue
        claimed.update(dict.fromkeys(targets, path))
        plan.append((path, None))
    return plan
