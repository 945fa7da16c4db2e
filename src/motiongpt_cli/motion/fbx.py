"""FBX through Blender: our GLB (:mod:`.gltf`) imported headless and exported as FBX with armature and animation.

There is no open FBX writer to trust, so Blender (``blender`` on PATH; Debian's package, or the official build)
does it: ``blender -b --factory-startup`` runs ``blender_glb_to_fbx.py`` (shipped beside this module), which
imports the GLB into an empty scene at the motion's fps and exports armature + body mesh with one key per frame.
The FBX has Blender's default axes (Y up, -Z forward in the file's axis settings, which Unity, Unreal and Maya read)
and metres scaled the way Blender's exporter does (unit scale 1: one Blender metre per FBX metre).

No Blender -> :class:`~motiongpt_cli.errors.ToolMissingError`; Blender failing -> :class:`BlenderError` with the
tail of its output. Either way nothing is left at the target path.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from ..atomic import atomic_path, check_writable
from ..errors import MotionGPTError, ToolMissingError
from .gltf import write_glb

SCRIPT = Path(__file__).with_name("blender_glb_to_fbx.py")
TIMEOUT_SECONDS = 600.0


class BlenderError(MotionGPTError):
    """Blender is installed but failed (crashed, timed out, or wrote nothing)."""


def find_blender() -> str:
    """The ``blender`` executable on PATH, or :class:`ToolMissingError`."""
    blender = shutil.which("blender")
    if blender is None:
        raise ToolMissingError(
            "blender is needed for .fbx output and was not found on PATH",
            hint="apt-get install blender (or put Blender 3.x/4.x on PATH), or choose --format glb",
        )
    return blender


def _tail(stderr: str, stdout: str, lines: int = 3) -> str:
    """The last few lines Blender printed, on one line (its Python tracebacks go to stderr)."""
    kept = [line.strip() for line in (stderr if stderr.strip() else stdout).splitlines() if line.strip()]
    return " | ".join(kept[-lines:]) or "no output"


def write_fbx(path: str | Path, joints: np.ndarray, *, fps: float = 20.0, overwrite: bool = False) -> Path:
    """Write an FBX of HumanML3D-order joints ``(F, 22, 3)`` (metres, Y up) through Blender, atomically."""
    check_writable(path, overwrite=overwrite)  # before the (slow) Blender run
    blender = find_blender()
    with tempfile.TemporaryDirectory(prefix="motiongpt-fbx-") as scratch:
        glb = write_glb(Path(scratch) / "motion.glb", joints, fps=fps)
        with atomic_path(path, overwrite=overwrite) as tmp:
            tmp.unlink()  # Blender writes the file itself; its absence afterwards means it failed
            cmd = [blender, "-b", "--factory-startup", "--python-exit-code", "3", "--python", str(SCRIPT),
                   "--", str(glb), str(tmp), repr(float(fps)), str(Path(np.__file__).parents[1])]  # fmt: skip
            try:
                result = subprocess.run(cmd, capture_output=True, text=True, errors="replace",
                                        timeout=TIMEOUT_SECONDS)  # fmt: skip
            except subprocess.TimeoutExpired:
                raise BlenderError(f"blender did not finish writing {path} within {TIMEOUT_SECONDS:.0f} s") from None
            except OSError as exc:
                raise BlenderError(f"blender could not be started: {exc.strerror}") from None
            if result.returncode != 0 or not tmp.exists() or tmp.stat().st_size == 0:
                raise BlenderError(
                    f"blender failed to write {Path(path).name} (exit {result.returncode}): "
                    f"{_tail(result.stderr, result.stdout)}"
                )
    return Path(path)
