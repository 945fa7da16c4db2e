"""Every output format in one place: a motion record to ``.npz`` / ``.bvh`` / ``.gif`` / ``.mp4`` / ``.smpl.npz`` /
``.glb`` / ``.fbx``, or a ``_obj`` folder of per-frame meshes.

``motiongpt generate``, ``motiongpt export``, the Python API's ``Motion.save`` and anything else that writes motion
files call :func:`write_outputs`; a new format is added here once. Each file (or folder) is written atomically.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import InvalidValueError, MotionFormatError

OUTPUT_FORMATS = ("npz", "bvh", "gif", "mp4", "smpl", "glb", "fbx", "obj")
# AMASS-style SMPL parameters, and MDM's folder of per-frame OBJ meshes; every other format is ".<format>"
SUFFIXES = {"smpl": ".smpl.npz", "obj": "_obj"}


def suffix_of(fmt: str) -> str:
    """The suffix a format's file (or folder) is written with (``smpl`` -> ``.smpl.npz``, ``obj`` -> ``_obj``)."""
    return SUFFIXES.get(fmt, f".{fmt}")


def validate_formats(formats: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Normalise and check a list of formats (``".BVH"`` -> ``"bvh"``, duplicates dropped, order kept)."""
    out: list[str] = []
    for fmt in formats:
        fmt = fmt.strip().lower().lstrip(".")
        if not fmt:
            continue
        if fmt not in OUTPUT_FORMATS:
            raise MotionFormatError(f"unknown format {fmt!r} (choose from {', '.join(OUTPUT_FORMATS)})")
        if fmt not in out:
            out.append(fmt)
    if not out:
        raise MotionFormatError("no output format given", hint="e.g. --format npz,bvh,gif")
    return tuple(out)


def format_from_suffix(path: Path) -> str:
    """The output format a file name asks for (``out/a.bvh`` -> ``bvh``, ``out/a.smpl.npz`` -> ``smpl``,
    ``out/a_obj`` -> ``obj``)."""
    name = Path(path).name.lower()
    for fmt, suffix in SUFFIXES.items():
        if name.endswith(suffix):
            return fmt
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in OUTPUT_FORMATS:
        raise MotionFormatError(f"{path}: cannot tell the format from the suffix (use one of "
                                f"{', '.join(suffix_of(f) for f in OUTPUT_FORMATS)})")  # fmt: skip
    return suffix


def check_smpl_model(formats, smpl) -> None:
    """Check the SMPL model file of the formats that use one, now, so a command fails before it samples or writes
    anything: ``obj`` needs one (:class:`~motiongpt_cli.errors.InvalidValueError`, a usage error, without it), and a
    file given for ``obj`` or ``smpl`` must load (:class:`~motiongpt_cli.errors.MotionFormatError`; the loader
    keeps it for the writers). ``smpl``: :class:`~motiongpt_cli.motion.amass.SMPLOutputOptions` or None."""
    model_path = getattr(smpl, "model_path", None)
    if "obj" in formats and model_path is None:
        raise InvalidValueError("obj meshes need an SMPL model file (they are that model, posed)",
                                hint="pass --smpl-model PATH (SMPL_NEUTRAL.pkl, or an .npz of its arrays)")  # fmt: skip
    if model_path is not None and ("obj" in formats or "smpl" in formats):
        from .body_model import load_smpl_model

        load_smpl_model(model_path)


def check_tools(formats) -> None:
    """Raise :class:`~motiongpt_cli.errors.ToolMissingError` now when a format needs a program that is missing
    (``fbx``: Blender; ``mp4``: ffmpeg), so a command fails before it samples or writes anything."""
    import shutil

    from ..errors import ToolMissingError

    if "fbx" in formats:
        from .fbx import find_blender

        find_blender()
    if "mp4" in formats and shutil.which("ffmpeg") is None:
        raise ToolMissingError("ffmpeg is needed for .mp4 previews",
                               hint="apt-get install ffmpeg (or brew install ffmpeg)")  # fmt: skip


def write_outputs(record, targets: dict[str, Path], *, title: str = "", overwrite: bool = False,
                  smpl=None) -> None:  # fmt: skip
    """Write one :class:`~motiongpt_cli.motion.io.MotionRecord` to every target (format -> path), atomically;
    ``smpl`` is the :class:`~motiongpt_cli.motion.amass.SMPLOutputOptions` of the ``smpl`` and ``obj`` formats.

    An FBX needs Blender, an OBJ a readable SMPL model file: without them the error comes before any file of the
    record is written."""
    from .amass import write_amass_npz
    from .body_model import load_smpl_model
    from .bvh import write_bvh
    from .fbx import write_fbx
    from .gltf import write_glb
    from .io import save_npz
    from .mesh import write_obj_frames
    from .render import write_gif, write_mp4

    check_smpl_model(targets, smpl)
    check_tools(targets)

    for fmt, target in targets.items():
        if fmt == "npz":
            save_npz(target, record, overwrite=overwrite)
        elif fmt == "bvh":
            write_bvh(target, record.joints, fps=record.fps, overwrite=overwrite)
        elif fmt == "gif":
            write_gif(target, record.joints, fps=record.fps, title=title, overwrite=overwrite)
        elif fmt == "mp4":
            write_mp4(target, record.joints, fps=record.fps, title=title, overwrite=overwrite)
        elif fmt == "smpl":
            write_amass_npz(target, record.joints, fps=record.fps, options=smpl, overwrite=overwrite)
        elif fmt == "glb":
            write_glb(target, record.joints, fps=record.fps, overwrite=overwrite)
        elif fmt == "fbx":
            write_fbx(target, record.joints, fps=record.fps, overwrite=overwrite)
        elif fmt == "obj":
            model = load_smpl_model(smpl.model_path)
            write_obj_frames(target, record.joints, model, fit_shape=smpl.fit_shape, overwrite=overwrite)
        else:
            raise MotionFormatError(f"unknown output format {fmt!r}")
