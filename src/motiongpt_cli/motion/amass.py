"""AMASS-style SMPL ``.npz`` files (``--format smpl``): the parameters of :func:`~.smpl.joints_to_smpl` in the
layouts that AMASS readers expect.

Layouts (``poses`` per frame, axis-angle):

- ``smpl``: 72 = root 3 + 23 body joints (the last two are SMPL's hands, identity);
- ``smplh``: 156 = root 3 + 21 body joints + 2 x 15 hand joints (identity), plus ``dmpls (N, 8)`` zeros — AMASS's own
  release layout, which bmlSUP and aitviewer read;
- ``smplx``: 165 = root 3 + 21 body + jaw 3 + eyes 6 + hands 90 (identity), plus the split fields ``root_orient``,
  ``pose_body``, ``pose_hand``, ``pose_jaw``, ``pose_eye`` that the SMPL-X Blender add-on reads.

By default the layout follows the model file: ``smplx`` for an SMPL-X model, else ``smplh``.

Every file also has ``trans (N, 3)``, ``betas`` 1-D, ``gender`` and ``surface_model_type`` (numpy strings), and both
``mocap_framerate`` and ``mocap_frame_rate``. Nothing is pickled: ``numpy.load(path, allow_pickle=False)`` reads it.

Axes: AMASS is Z up, so by default the root is turned by ``M`` (x -> -x, y -> z, z -> y):
``global_orient' = M R0`` and ``transl' = M (J0 + transl) - J0``, because SMPL rotates about the pelvis rest joint
``J0``, not the origin (``M transl`` alone would put the body ~0.36 m off). ``up="y"`` keeps HumanML3D's axes.
The SMPL-X Blender add-on refuses files below its 30 fps target, so ``target_fps`` resamples: slerp for rotations,
linear for translation.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from ..atomic import atomic_path
from ..errors import InvalidValueError, MotionFormatError

Layout = Literal["smpl", "smplh", "smplx"]
Up = Literal["z", "y"]
LAYOUTS: tuple[str, ...] = ("smpl", "smplh", "smplx")
POSE_WIDTH = {"smpl": 72, "smplh": 156, "smplx": 165}
Y_UP_TO_Z_UP = np.array([[-1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])


@dataclass(frozen=True)
class SMPLOutputOptions:
    """How ``--format smpl`` writes: pose layout, up axis, an optional output frame rate, and an optional SMPL,
    SMPL-H or SMPL-X model file (its rest joints, and with ``fit_shape`` betas fitted to the clip's bone lengths).

    ``layout=None`` (the default) is the model file's own family when it is SMPL-H (``smplh``) or SMPL-X
    (``smplx``), so the file plays back on that model; ``smplh`` (AMASS's) for an SMPL model or none."""

    layout: Layout | None = None
    up: Up = "z"
    target_fps: int | None = None
    model_path: Path | None = None
    fit_shape: bool = False
    gender: str = "neutral"

    def __post_init__(self) -> None:
        if self.layout is not None and self.layout not in LAYOUTS:
            raise InvalidValueError(f"smpl layout must be one of {', '.join(LAYOUTS)}, got {self.layout!r}")
        if self.up not in ("z", "y"):
            raise InvalidValueError(f"up axis must be z or y, got {self.up!r}")
        if self.fit_shape and self.model_path is None:
            raise InvalidValueError("fitting the shape needs an SMPL model file", hint="pass --smpl-model PATH")

    def layout_for(self, family: str | None) -> Layout:
        """The layout written for a model of ``family`` (``"smpl"``, ``"smplh"``, ``"smplx"``, or None: no model)."""
        if self.layout is not None:
            return self.layout
        return "smplx" if family == "smplx" else "smplh"

    def check_fps(self, fps: float) -> None:
        """Refuse, before anything is written, a target frame rate below the motion's (resampling only goes up)."""
        if self.target_fps is not None and self.target_fps < fps:
            raise InvalidValueError(f"the SMPL frame rate {self.target_fps} is below the motion's {fps:g} fps",
                                    hint="resampling only goes up (30 or 60 for the SMPL-X Blender add-on)")


def _rotations():
    from . import rotations as rot

    return rot


def _aa_to_quat(aa: np.ndarray) -> np.ndarray:
    rot = _rotations()
    return rot.numpy_call(rot.axis_angle_to_quat, aa)


def _quat_to_aa(q: np.ndarray) -> np.ndarray:
    rot = _rotations()
    return rot.numpy_call(rot.quat_to_axis_angle, q)


def resample(params, fps: float, target_fps: float):
    """``params`` (:class:`~.smpl.SMPLParams`) at ``target_fps``: quaternion slerp per joint, linear translation."""
    import dataclasses

    from .smpl import continuous_axis_angle

    SMPLOutputOptions(target_fps=int(target_fps)).check_fps(fps)
    n = params.num_frames
    if target_fps == fps or n < 2:
        return params
    t_new = np.arange(int(np.floor((n - 1) * target_fps / fps + 1e-9)) + 1) * fps / target_fps
    i0 = np.minimum(np.floor(t_new).astype(int), n - 2)
    w = t_new - i0  # (T',) weight of the later frame
    rots = np.concatenate([params.global_orient[:, None], params.body_pose], axis=1).astype(np.float64)  # (T, 24, 3)
    q = _aa_to_quat(rots)
    q0, q1 = q[i0], q[i0 + 1]
    q1 = np.where(np.sum(q0 * q1, axis=-1, keepdims=True) < 0, -q1, q1)  # the short way round
    theta = np.arccos(np.clip(np.sum(q0 * q1, axis=-1, keepdims=True), -1.0, 1.0))  # (T', 24, 1)
    sin = np.sin(theta)
    wq = np.broadcast_to(w[:, None, None], theta.shape)
    near = sin < 1e-8  # (almost) the same rotation: linear weights
    safe = np.where(near, 1.0, sin)
    qi = (np.where(near, 1 - wq, np.sin((1 - wq) * theta) / safe) * q0
          + np.where(near, wq, np.sin(wq * theta) / safe) * q1)  # fmt: skip
    qi /= np.linalg.norm(qi, axis=-1, keepdims=True)
    aa = continuous_axis_angle(_quat_to_aa(qi).astype(np.float32))
    transl = params.transl[i0] * (1 - w[:, None]) + params.transl[i0 + 1] * w[:, None]
    return dataclasses.replace(params, global_orient=aa[:, 0].astype(np.float32),
                               body_pose=aa[:, 1:].astype(np.float32), transl=transl.astype(np.float32))  # fmt: skip


def to_z_up(params):
    """The same motion in AMASS's Z-up axes (the root turned by ``M``, the translation about ``J0``)."""
    import dataclasses

    from .smpl import continuous_axis_angle

    rot = _rotations()
    r0 = rot.numpy_call(rot.axis_angle_to_matrix, params.global_orient)
    turned = rot.numpy_call(rot.matrix_to_axis_angle, Y_UP_TO_Z_UP @ r0)
    j0 = params.rest_joints[0]
    transl = (params.transl + j0) @ Y_UP_TO_Z_UP.T - j0
    return dataclasses.replace(params, global_orient=continuous_axis_angle(turned.astype(np.float32)),
                               transl=transl.astype(np.float32))  # fmt: skip


def amass_arrays(params, fps: float, options: SMPLOutputOptions, family: str | None = None) -> dict[str, np.ndarray]:
    """The ``.npz`` fields of ``params`` in ``options.layout_for(family)`` (``params`` already in the output axes and
    rate; ``family``: the model's, or None)."""
    layout = options.layout_for(family)
    n = params.num_frames
    root = params.global_orient.astype(np.float32)
    body21 = params.body_pose[:, :21].reshape(n, 63).astype(np.float32)
    hands = np.zeros((n, 90), np.float32)
    if layout == "smpl":
        poses = np.concatenate([root, params.body_pose.reshape(n, 69)], axis=1)
    elif layout == "smplh":
        poses = np.concatenate([root, body21, hands], axis=1)
    else:
        poses = np.concatenate([root, body21, np.zeros((n, 9), np.float32), hands], axis=1)
    betas = params.betas if params.betas is not None else np.zeros(10, np.float32)
    out = {
        "poses": poses.astype(np.float32),
        "trans": params.transl.astype(np.float32),
        "betas": np.asarray(betas, np.float32).reshape(-1),
        "gender": np.str_(options.gender),
        "mocap_framerate": np.float64(fps),
        "mocap_frame_rate": np.float64(fps),
        "surface_model_type": np.str_(layout),
    }
    if layout == "smplh":
        out["dmpls"] = np.zeros((n, 8), np.float32)
    if layout == "smplx":
        out.update(root_orient=root, pose_body=body21, pose_hand=hands, pose_jaw=np.zeros((n, 3), np.float32),
                   pose_eye=np.zeros((n, 6), np.float32))  # fmt: skip
    return out


def joints_to_amass(joints: np.ndarray, fps: float, options: SMPLOutputOptions | None = None) -> dict[str, np.ndarray]:
    """Joints ``(T, 22, 3)`` (metres, Y up) -> the fields of an AMASS-style ``.npz``."""
    from .body_model import load_smpl_model
    from .smpl import joints_to_smpl

    options = options or SMPLOutputOptions()
    model = load_smpl_model(options.model_path) if options.model_path is not None else None
    params = joints_to_smpl(joints, model=model, fit_shape=options.fit_shape)
    if options.target_fps is not None:
        params = resample(params, fps, options.target_fps)
        fps = options.target_fps
    if options.up == "z":
        params = to_z_up(params)
    return amass_arrays(params, fps, options, None if model is None else model.family)


def write_amass_npz(path: str | Path, joints: np.ndarray, *, fps: float, options: SMPLOutputOptions | None = None,
                    overwrite: bool = False) -> Path:  # fmt: skip
    """Write an AMASS-style SMPL ``.npz`` atomically."""
    arrays = joints_to_amass(joints, fps, options)
    with atomic_path(path, overwrite=overwrite) as tmp:
        with open(tmp, "wb") as fh:  # a file object: numpy would append .npz to a name
            np.savez(fh, **arrays)
    return Path(path)


def load_amass_npz(path: str | Path) -> dict[str, np.ndarray]:
    """Read an AMASS-style ``.npz`` (ours or AMASS's own) without pickles; checks the fields every reader needs."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError) as exc:
        raise MotionFormatError(f"{path}: not a plain AMASS .npz ({exc})") from None
    missing = [k for k in ("poses", "trans") if k not in arrays]
    if missing:
        raise MotionFormatError(f"{path}: missing field(s) {', '.join(missing)}")
    poses, trans = arrays["poses"], arrays["trans"]
    if poses.ndim != 2 or poses.shape[1] not in POSE_WIDTH.values() or trans.shape != (poses.shape[0], 3):
        raise MotionFormatError(f"{path}: poses {poses.shape} / trans {trans.shape} are not an AMASS layout")
    return arrays
