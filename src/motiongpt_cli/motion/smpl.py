"""SMPL pose parameters from 22 HumanML3D joints, analytically: no optimisation, and no model file unless asked.

Conventions (../shared/reference/smpl-output.md §2, §4, §5):

- Joints ``(frames, 22, 3)`` in HumanML3D order, which is SMPL's joints 0-21, metres. HumanML3D's frame has SMPL's
  own axes (Y up, +Z forward, +X the body's left), so joints go in as they are and an upright body facing +Z gets
  ``global_orient`` near zero.
- Axis-angle ``(..., 3)``: unit axis times angle in radians. ``body_pose[:, i]`` is SMPL joint ``i + 1`` relative
  to its parent; the hands (SMPL 22, 23) and the leaves (feet, head, wrists) are the identity: 22 joints say
  nothing about their own twist.
- ``transl`` is SMPL's: the posed pelvis is ``J0 + transl``, because SMPL's root rotates about the rest pelvis J0
  (so ``transl = pelvis - J0``, not the pelvis itself).
- Continuity over time: of the equivalent vectors ``(θ + 2πk)·axis`` the least-moving sequence is kept
  (:func:`continuous_axis_angle`), so facing backwards or turning round makes no 2π jumps; magnitudes may exceed
  π, which every Rodrigues-based reader (smplx included) accepts.

The default rest skeleton is SMPL's neutral body at betas 0 (:data:`SMPL_NEUTRAL_REST_JOINTS`). With a user's own
model (an :class:`~.body_model.SMPLModel` from :func:`~.body_model.load_smpl_model`: SMPL, SMPL-H or SMPL-X, whose
first 22 joints are all SMPL's body) the skeleton is that model's first 22 joints, and ``fit_shape`` fits its betas
to the clip's bone lengths. Reading model files is :mod:`.body_model`'s; the solver only asks a model for its rest
joints and their shape basis. The rest of a model (SMPL-H / SMPL-X fingers, SMPL-X jaw, eyes and expression) stays
at zero. On HumanML3D-proportioned joints the neutral skeleton reproduces positions to about 17 mm MPJPE, all of it
from bone lengths (HumanML3D's differ from SMPL's by -10% to +37%), none from the solver.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InvalidValueError, MotionFormatError
from . import rotations as rot
from .body_model import SMPLModel
from .ik import solve_world_rotations, world_to_local_rotations
from .kinematics import tree_forward_kinematics
from .skeleton import PARENTS

# Kabsch-solved joints: pelvis (hips, spine1) and spine3 (neck, collars)
_RIGID = {0: (1, 2, 3), 9: (12, 13, 14)}

# SMPL neutral rest joints 0-21 at betas 0, metres, SMPL axes: read from Murrol/StableMotion (MIT)
# smpl_neutral_nobetas_24J.npz; MoMask's template.bvh, MotionGPT's HybrIK port and PHC agree (reference doc §5).
SMPL_NEUTRAL_REST_JOINTS = np.array(
    [
        [-0.00179506, -0.22333343, 0.02821913],  # pelvis
        [0.06772467, -0.31473967, 0.02140379],  # left_hip
        [-0.06946554, -0.31385510, 0.02389930],  # right_hip
        [-0.00432793, -0.11437022, 0.00152281],  # spine1
        [0.10200122, -0.68993830, 0.01690799],  # left_knee
        [-0.10775559, -0.69642410, 0.01504928],  # right_knee
        [0.00115911, 0.02081021, 0.00261528],  # spine2
        [0.08840552, -1.08789870, -0.02678534],  # left_ankle
        [-0.09198183, -1.09483890, -0.02726252],  # right_ankle
        [0.00261611, 0.07373245, 0.02803985],  # spine3
        [0.11476366, -1.14368960, 0.09250306],  # left_foot
        [-0.11735357, -1.14298270, 0.09608543],  # right_foot
        [-0.00016229, 0.28760280, -0.01481718],  # neck
        [0.08146084, 0.19548175, -0.00604975],  # left_collar
        [-0.07914308, 0.19256528, -0.01057543],  # right_collar
        [0.00498956, 0.35257240, 0.03653179],  # head
        [0.17243777, 0.22595066, -0.01491791],  # left_shoulder
        [-0.17515546, 0.22511646, -0.01971850],  # right_shoulder
        [0.43205002, 0.21317856, -0.04237434],  # left_elbow
        [-0.42889744, 0.21178724, -0.04111948],  # right_elbow
        [0.68128365, 0.22216462, -0.04354525],  # left_wrist
        [-0.68419546, 0.21955952, -0.04667868],  # right_wrist
    ]
)
SMPL_NEUTRAL_REST_JOINTS.setflags(write=False)


@dataclass(frozen=True)
class SMPLParams:
    """SMPL parameters of a clip: ``global_orient (T, 3)``, ``body_pose (T, 23, 3)`` axis-angle and ``transl
    (T, 3)`` metres, float32; ``rest_joints (22, 3)`` float64, the rest skeleton they pose; ``betas (B,)``
    float32, or None when the skeleton was given as joints rather than as a point of a model's shape space."""

    global_orient: np.ndarray
    body_pose: np.ndarray
    transl: np.ndarray
    rest_joints: np.ndarray
    betas: np.ndarray | None = None

    @property
    def num_frames(self) -> int:
        return int(self.transl.shape[0])

    @property
    def poses(self) -> np.ndarray:
        """``(T, 72)``: global_orient then the 23 body joints, the SMPL ``pose`` layout."""
        return np.concatenate([self.global_orient, self.body_pose.reshape(self.num_frames, 69)], axis=1)


def joints_to_smpl(
    joints: np.ndarray,
    rest_joints: np.ndarray | None = None,
    *,
    model: SMPLModel | None = None,
    fit_shape: bool = False,
) -> SMPLParams:
    """Solve SMPL parameters whose forward kinematics reproduce ``joints: (frames, 22, 3)`` (metres, Y up).

    The skeleton: ``rest_joints (22 or 24, 3)`` in SMPL axes, or a ``model``'s joints at betas 0, or (``fit_shape``,
    which needs ``model``) at the betas fitted to the clip's bone lengths by :func:`fit_betas`; by default
    :data:`SMPL_NEUTRAL_REST_JOINTS` with betas 0. Pelvis and spine3 by a Kabsch fit of their three children, the
    other bones by the minimal rotation from the rest bone to the target, each anchored where FK put its joint
    (:func:`.ik.solve_world_rotations`).
    """
    x = _check_joints(joints)
    if model is not None and rest_joints is not None:
        raise InvalidValueError("give rest_joints or model, not both")
    if fit_shape and model is None:
        raise InvalidValueError("fit_shape needs an SMPL model", hint="load one with load_smpl_model(path)")
    if model is not None:
        betas = fit_betas(x, model) if fit_shape else np.zeros(model.num_betas)
        rest = model.rest_joints(betas)[:22]
    elif rest_joints is None:
        betas, rest = np.zeros(10), np.array(SMPL_NEUTRAL_REST_JOINTS)
    else:
        betas, rest = None, _check_rest_joints(rest_joints)
    offsets = rest - rest[[max(p, 0) for p in PARENTS]]
    world = solve_world_rotations(x, offsets, PARENTS, _RIGID, anchor="fk")
    local = world_to_local_rotations(world, PARENTS)
    axis_angle = continuous_axis_angle(rot.numpy_call(rot.matrix_to_axis_angle, local))
    body_pose = np.zeros((x.shape[0], 23, 3), dtype=np.float32)
    body_pose[:, :21] = axis_angle[:, 1:]
    return SMPLParams(
        global_orient=axis_angle[:, 0].astype(np.float32),
        body_pose=body_pose,
        transl=(x[:, 0] - rest[0]).astype(np.float32),
        rest_joints=rest,
        betas=None if betas is None else betas.astype(np.float32),
    )


def smpl_to_joints(params: SMPLParams) -> np.ndarray:
    """SMPL forward kinematics of the 22 body joints ``(T, 22, 3)`` float64 on ``params.rest_joints`` (the
    joints smplx returns for these parameters, without building a mesh)."""
    rest = params.rest_joints
    local = rot.numpy_call(
        rot.axis_angle_to_matrix, np.concatenate([params.global_orient[:, None], params.body_pose[:, :21]], axis=1)
    )
    offsets = rest - rest[[max(p, 0) for p in PARENTS]]
    translations = np.broadcast_to(offsets, local.shape[:2] + (3,)).copy()
    translations[:, 0] = rest[0] + params.transl
    return tree_forward_kinematics(local, translations, PARENTS)[0]


def fit_betas(joints: np.ndarray, model: SMPLModel, *, iterations: int = 20) -> np.ndarray:
    """Betas ``(B,)`` float64 whose rest skeleton has the bone lengths of ``joints: (frames, 22, 3)`` (per-bone
    median over frames), in the least-squares sense.

    The rest joints are linear in betas, ``J(β) = J_regressor (v_template + shapedirs β)``, so each bone vector is
    ``b0 + Dβ`` and its length is fitted by Gauss-Newton: a linear least-squares step per iteration (converges in
    a few). Nothing bounds the betas: proportions far from SMPL's give betas far outside the usual ±3.
    """
    x = _check_joints(joints)
    bones = np.arange(1, 22)
    parents = np.array(PARENTS[1:])
    target = np.median(np.linalg.norm(x[:, bones] - x[:, parents], axis=-1), axis=0)
    rest, basis = model.joint_template, model.joint_shape_basis
    base = rest[bones] - rest[parents]  # (21, 3)
    directions = basis[bones] - basis[parents]  # (21, 3, B)
    betas = np.zeros(model.num_betas)
    for _ in range(iterations):
        bone = base + directions @ betas
        length = np.linalg.norm(bone, axis=-1)
        jacobian = np.einsum("bk,bkn->bn", bone / length[:, None], directions)  # d|b|/dβ
        step = np.linalg.lstsq(jacobian, target - length, rcond=None)[0]
        betas += step
        if np.linalg.norm(step) < 1e-9 * (1.0 + np.linalg.norm(betas)):
            break
    return betas


def continuous_axis_angle(axis_angle: np.ndarray, *, turns: int = 3) -> np.ndarray:
    """Axis-angle ``(T, ..., 3)`` made continuous over dim 0.

    Each frame's rotation has the equivalent vectors ``(θ + 2πk)·axis``; of these (``|k| <= turns``) the sequence
    with the least total movement ``Σ|v[t] - v[t-1]|`` is kept (dynamic programming over the candidates), frame 0
    starting within 1.5π (not a turn ahead). So a body facing backwards or turning about a steady axis (up to
    ``turns`` full turns) moves its vector smoothly instead of jumping 2π at 180°. The one jump it may keep is
    inherent to axis-angle: on the sphere |v| = 2π every axis is the identity, so a tilted body ending a full turn
    near its starting orientation is either continued there (its vector swinging round as the small tilt changes)
    or jumps back once, whichever moves less.
    """
    aa = np.array(axis_angle, dtype=np.float64)
    if aa.shape[0] < 2 or aa.size == 0:
        return aa
    flat = aa.reshape(aa.shape[0], -1, 3)  # a view: writing it writes aa
    # A series that never turns as far as π/2 is best left principal: any other candidate is 1.5π or more from
    # the origin, so every step to, from or between them is at least as long as the principal step.
    series = np.nonzero(np.linalg.norm(flat, axis=-1).max(axis=0) >= np.pi / 2)[0]
    if len(series):
        flat[:, series] = _least_movement(flat[:, series], turns)
    return aa


def _least_movement(principal: np.ndarray, turns: int) -> np.ndarray:
    """The dynamic programme of :func:`continuous_axis_angle` on principal vectors ``(T, N, 3)``."""
    frames, count = principal.shape[:2]
    angle = np.linalg.norm(principal, axis=-1)  # (T, N)
    axis = principal / np.maximum(angle, 1e-12)[..., None]
    # a rotation within 1e-5 rad of the identity takes a neighbour's axis (its own is rounding noise), which
    # moves it by at most 2e-5 rad in the 2πk candidates and not at all in the principal one
    defined = angle > 1e-5
    if not defined.all():
        order = np.arange(frames)[:, None]
        last = np.maximum.accumulate(np.where(defined, order, 0), axis=0)
        nxt = np.minimum.accumulate(np.where(defined, order, frames - 1)[::-1], axis=0)[::-1]
        source = np.where(defined[last, np.arange(count)], last, nxt)
        axis = np.take_along_axis(axis, source[..., None], axis=0)
    k = np.arange(-turns, turns + 1)
    signed = angle[..., None] + 2 * np.pi * k  # (T, N, K): candidate t, k is signed[t, :, k] * axis[t]
    # |a·n - b·m|² = a² + b² - 2ab (n·m): every step between candidates from one dot product per frame pair
    cos = (axis[1:] * axis[:-1]).sum(-1)[..., None, None]
    before, after = signed[:-1, :, :, None], signed[1:, :, None, :]
    steps = np.sqrt(np.maximum(before**2 + after**2 - 2 * before * after * cos, 0.0))  # (T-1, N, Kprev, K)
    tie_break = 1e-6 * np.abs(signed)  # equal movement: the shorter vector
    # frame 0 starts within 1.5π: its principal vector, or near 180° the opposite one, never a full turn
    cost = tie_break[0] + np.where(np.abs(signed[0]) < 1.5 * np.pi, 0.0, 1e9)
    back = np.zeros(signed.shape, dtype=np.int64)
    for t in range(1, frames):
        total = cost[:, :, None] + steps[t - 1]
        back[t] = total.argmin(axis=1)
        cost = np.take_along_axis(total, back[t][:, None], axis=1)[:, 0] + tie_break[t]
    choice = np.zeros((frames, count), dtype=np.int64)
    choice[-1] = cost.argmin(axis=1)
    for t in range(frames - 1, 0, -1):
        choice[t - 1] = back[t, np.arange(count), choice[t]]
    out = np.take_along_axis(signed, choice[..., None], axis=2) * axis
    return np.where((choice == turns)[..., None], principal, out)  # k = 0: the input itself, exactly


def _check_joints(joints: Any) -> np.ndarray:
    arr = np.asarray(joints, dtype=np.float64)
    if arr.ndim != 3 or arr.shape[1:] != (22, 3):
        raise MotionFormatError(f"joints must have shape (frames, 22, 3), got {arr.shape}")
    if arr.shape[0] < 1 or not np.all(np.isfinite(arr)):
        raise MotionFormatError("joints must be finite with at least one frame")
    return arr


def _check_rest_joints(rest_joints: Any) -> np.ndarray:
    arr = np.asarray(rest_joints, dtype=np.float64)
    if arr.shape not in ((22, 3), (24, 3)) or not np.all(np.isfinite(arr)):
        raise MotionFormatError(f"rest_joints must be finite with shape (22, 3) or (24, 3), got {arr.shape}")
    arr = arr[:22].copy()
    if np.linalg.norm(arr[1:] - arr[list(PARENTS[1:])], axis=-1).min() < 1e-6:
        raise MotionFormatError("rest_joints has a zero-length bone")
    return arr
