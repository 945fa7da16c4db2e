"""HumanML3D's 263-dim motion features <-> global joint positions.

Shapes and units: joints ``(T, 22, 3)`` float32, metres, Y up, 20 fps; features ``(T-1, 263)`` float32 from T
frames of joints (velocities need the next frame). Layout of one feature row (J = 22):

    [0]        root yaw velocity: asin(y of r_rot[t+1] ⊗ r_rot[t]⁻¹), i.e. HALF the yaw change, rad/frame
    [1:3]      root x/z velocity in the heading frame of frame t+1, m/frame
    [3]        root height
    [4:67]     joints 1..21 relative to the root in x/z, heading removed (RIC); y absolute
    [67:193]   joints 1..21 local rotations, continuous 6D (first two COLUMNS of R)
    [193:259]  joints 0..21 velocities, rotated by the heading of frame t
    [259:263]  foot contacts: left ankle, left foot, right ankle, right foot

The extraction reproduces the released data's quirks on purpose (parity with HumanML3D): the IK's across vector
uses (left - right hip) + (right - left shoulder) (the "hip-order bug"), the IK root of frame 0 is forced to the
identity, the forward direction is Gaussian-smoothed (sigma 20 frames), rotations are swing-only with every chain
starting from the root rotation, the 6D block is not heading-invariant, and the root yaw velocity flips sign on
the frame where the facing passes ±180° from frame 0's (``root_velocity="humanml3d"``, the default; pass
``root_velocity="continuous"`` to :func:`joints_to_features` for features without that flip).

The math is written once in torch (float64 inside the extraction); numpy arrays in give numpy arrays out.
:func:`features_to_joints` is differentiable for training losses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, TypeVar, get_args

import numpy as np
import torch

from ..errors import MotionFormatError
from . import rotations as rot
from .skeleton import (
    FEATURE_DIM,
    FOOT_CONTACT_THRESHOLD,
    FOOT_LEFT,
    FOOT_RIGHT,
    KINEMATIC_CHAINS,
    LEG_BONES,
    NUM_JOINTS,
    PARENTS,
    RAW_OFFSETS,
    TARGET_OFFSETS,
    mirror_permutation,
)

ROOT_YAW_VELOCITY = slice(0, 1)
ROOT_XZ_VELOCITY = slice(1, 3)
ROOT_HEIGHT = slice(3, 4)
RIC = slice(4, 67)
ROT6D = slice(67, 193)
LOCAL_VELOCITY = slice(193, 259)
FOOT_CONTACTS = slice(259, 263)
FEATURE_GROUPS = {
    "root_yaw_velocity": ROOT_YAW_VELOCITY,
    "root_xz_velocity": ROOT_XZ_VELOCITY,
    "root_height": ROOT_HEIGHT,
    "ric": RIC,
    "rot6d": ROT6D,
    "local_velocity": LOCAL_VELOCITY,
    "foot_contacts": FOOT_CONTACTS,
}
SMOOTH_SIGMA = 20  # frames, Gaussian smoothing of the IK forward direction

ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)
RootVelocity = Literal["humanml3d", "continuous"]  # how joints_to_features computes the root yaw velocity [0]
ROOT_VELOCITY_VARIANTS: tuple[str, ...] = get_args(RootVelocity)
_UP = (0.0, 1.0, 0.0)
_FORWARD = (0.0, 0.0, 1.0)


def _check_joints(joints: np.ndarray, *, min_frames: int = 2) -> np.ndarray:
    arr = np.asarray(joints)
    if arr.ndim == 2 and arr.shape[1] == NUM_JOINTS * 3:
        arr = arr.reshape(-1, NUM_JOINTS, 3)
    if arr.ndim != 3 or arr.shape[1:] != (NUM_JOINTS, 3):
        raise MotionFormatError(f"joints must have shape (frames, {NUM_JOINTS}, 3), got {arr.shape}")
    if arr.shape[0] < min_frames:
        raise MotionFormatError(f"joints need at least {min_frames} frames, got {arr.shape[0]}")
    if not np.all(np.isfinite(arr)):
        raise MotionFormatError("joints contain NaN or infinite values")
    return arr.astype(np.float64)


def _vec(values: tuple[float, float, float], like: torch.Tensor) -> torch.Tensor:
    return torch.tensor(values, dtype=like.dtype, device=like.device).expand(like.shape[:-1] + (3,))


# ----------------------------------------------------------------------------------------------- IK / FK
def _across_forward(joints: torch.Tensor, *, hip_order_bug: bool, normalize: bool = True) -> torch.Tensor:
    """Body forward direction per frame from hips and shoulders, ``(T, 3)``.

    ``up × unit(across)`` is only unit length when across is horizontal; the IK smooths it BEFORE normalising
    (verified: normalising first moves the released 012314 features by up to 0.06).
    """
    if hip_order_bug:  # HumanML3D's IK: (l_hip - r_hip) + (r_shoulder - l_shoulder)
        across = (joints[:, 1] - joints[:, 2]) + (joints[:, 17] - joints[:, 16])
    else:  # the correct order, used to face the clip +Z at frame 0
        across = (joints[:, 2] - joints[:, 1]) + (joints[:, 17] - joints[:, 16])
    across = across / across.norm(dim=-1, keepdim=True)
    forward = torch.cross(_vec(_UP, across), across, dim=-1)
    return forward / forward.norm(dim=-1, keepdim=True) if normalize else forward


def skeleton_inverse_kinematics(joints: np.ndarray, *, smooth_forward: bool = False) -> np.ndarray:
    """HumanML3D's swing-only IK: ``joints (T, 22, 3)`` -> local quaternions ``(T, 22, 4)`` (w, x, y, z).

    ``quats[:, 0]`` is the heading rotation taking the body's forward to +Z (identity at frame 0, as released);
    ``quats[:, b]`` turns the rest direction of bone (parent -> b) relative to the chain's accumulated rotation.
    """
    return _inverse_kinematics(torch.as_tensor(_check_joints(joints)), smooth_forward=smooth_forward).numpy()


def _inverse_kinematics(joints: torch.Tensor, *, smooth_forward: bool) -> torch.Tensor:
    frames = joints.shape[0]
    forward = _across_forward(joints, hip_order_bug=True, normalize=False)
    if smooth_forward:
        from scipy.ndimage import gaussian_filter1d  # only the extraction needs scipy (0.6 s to import)

        forward = torch.as_tensor(gaussian_filter1d(forward.numpy(), SMOOTH_SIGMA, axis=0, mode="nearest"))
    forward = forward / forward.norm(dim=-1, keepdim=True)
    root = rot.quat_between(forward, _vec(_FORWARD, forward))
    root[0] = torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=root.dtype)  # released data: frame 0 forced to identity
    quats = torch.zeros(frames, NUM_JOINTS, 4, dtype=joints.dtype)
    quats[..., 0] = 1.0
    quats[:, 0] = root
    raw = torch.as_tensor(RAW_OFFSETS, dtype=joints.dtype)
    for chain in KINEMATIC_CHAINS:
        accumulated = root  # every chain, the arms included, starts from the root rotation
        for parent, child in zip(chain[:-1], chain[1:], strict=True):
            direction = joints[:, child] - joints[:, parent]
            direction = direction / direction.norm(dim=-1, keepdim=True)
            swing = rot.quat_between(raw[child].expand(frames, 3), direction)
            local = rot.quat_mul(rot.quat_inverse(accumulated), swing)
            quats[:, child] = local
            accumulated = rot.quat_mul(accumulated, local)
    return quats


def skeleton_forward_kinematics(quats: ArrayT, root_positions: ArrayT, offsets: np.ndarray = TARGET_OFFSETS) -> ArrayT:
    """Inverse of the IK: local quaternions ``(..., 22, 4)`` + root ``(..., 3)`` -> joints ``(..., 22, 3)``."""
    is_numpy = isinstance(quats, np.ndarray)
    q = torch.as_tensor(quats)
    root = torch.as_tensor(root_positions, dtype=q.dtype)
    off = torch.as_tensor(offsets, dtype=q.dtype, device=q.device)
    positions: list[torch.Tensor | None] = [None] * NUM_JOINTS
    positions[0] = root
    for chain in KINEMATIC_CHAINS:
        accumulated = q[..., 0, :]
        for parent, child in zip(chain[:-1], chain[1:], strict=True):
            accumulated = rot.quat_mul(accumulated, q[..., child, :])
            positions[child] = positions[parent] + rot.quat_rotate(accumulated, off[child].expand(root.shape))
    out = torch.stack(positions, dim=-2)
    return out.numpy() if is_numpy else out


# ----------------------------------------------------------------------------------------------- extraction
def retarget_to_target_skeleton(joints: np.ndarray) -> np.ndarray:
    """Same bone directions, HumanML3D target bone lengths; the root path scaled by the leg-length ratio."""
    j = torch.as_tensor(_check_joints(joints))
    return _retarget(j).numpy()


def _retarget(joints: torch.Tensor) -> torch.Tensor:
    parents = [p if p >= 0 else 0 for p in PARENTS]
    lengths = (joints[0] - joints[0, parents]).norm(dim=-1).numpy()
    source_offsets = RAW_OFFSETS * lengths[:, None]

    def leg(offsets: np.ndarray) -> float:
        return float(np.abs(offsets[LEG_BONES[0]]).max() + np.abs(offsets[LEG_BONES[1]]).max())

    scale = leg(TARGET_OFFSETS) / leg(source_offsets)
    quats = _inverse_kinematics(joints, smooth_forward=False)
    return skeleton_forward_kinematics(quats, joints[:, 0] * scale)


def canonicalize(joints: np.ndarray) -> np.ndarray:
    """Floor at y = 0, frame-0 root at the XZ origin, frame 0 facing +Z (HumanML3D steps 2-4)."""
    return _canonicalize(torch.as_tensor(_check_joints(joints))).numpy()


def _canonicalize(joints: torch.Tensor) -> torch.Tensor:
    joints = joints.clone()
    joints[..., 1] -= joints[..., 1].min()
    origin = joints[0, 0].clone()
    origin[1] = 0.0
    joints = joints - origin
    forward = _across_forward(joints[:1], hip_order_bug=False)[0]
    q_init = rot.quat_between(forward, _vec(_FORWARD, forward))
    return rot.quat_rotate(q_init.expand(joints.shape[:-1] + (4,)), joints)


def foot_contacts(joints: np.ndarray) -> np.ndarray:
    """(T-1, 4) float32 contacts (L ankle, L foot, R ankle, R foot): squared displacement < 0.002 m² per frame."""
    return _foot_contacts(torch.as_tensor(_check_joints(joints))).float().numpy()


def _foot_contacts(joints: torch.Tensor) -> torch.Tensor:
    feet = list(FOOT_LEFT + FOOT_RIGHT)
    step = ((joints[1:, feet] - joints[:-1, feet]) ** 2).sum(-1)
    return (step < FOOT_CONTACT_THRESHOLD).to(joints.dtype)


def joints_to_features(joints: np.ndarray, *, root_velocity: RootVelocity = "humanml3d") -> np.ndarray:
    """The whole HumanML3D ``process_file``: global joints ``(T, 22, 3)`` -> features ``(T-1, 263)`` float32.

    ``root_velocity`` chooses how the root yaw velocity (column 0) is computed; every other column is the same:

    - ``"humanml3d"`` (default): exactly HumanML3D's ``arcsin`` of the y component of
      ``r_rot[t+1] ⊗ r_rot[t]⁻¹``. Each heading ``r_rot[t]`` is the shortest-arc quaternion from the smoothed
      forward direction to +Z, so ``w >= 0``: the headings live on one hemisphere. On the frame where the facing
      passes ±180° from frame 0's, two consecutive headings sit on opposite sides of that hemisphere's edge, the
      product has ``w < 0`` (the true per-frame turn's quaternion negated) and the stored value has the wrong
      sign; :func:`features_to_joints` then leaves the heading off by twice that frame's turn from there on. The
      released ``new_joint_vecs`` carry this artefact and their ``new_joints`` were recovered from it (so
      features recomputed from such a ``new_joints`` clip flip on another frame and cannot match the released
      ones). Use this variant for parity with HumanML3D data and with models trained on it.
    - ``"continuous"``: the product is taken on the same hemisphere (negated where ``w < 0``; ``q`` and ``-q`` are
      the same rotation) before the ``arcsin``, so the value is the true half yaw change on every frame and
      :func:`features_to_joints` gives back the motion after any amount of turning. It differs from
      ``"humanml3d"`` only on the flipped frames, where it has the opposite sign. Use it for motion of one's own
      (for example a synthetic corpus) that should not carry HumanML3D's artefact.
    """
    if root_velocity not in ROOT_VELOCITY_VARIANTS:
        raise ValueError(
            f"root_velocity must be one of {', '.join(map(repr, ROOT_VELOCITY_VARIANTS))}, got {root_velocity!r}"
        )
    positions = _canonicalize(_retarget(torch.as_tensor(_check_joints(joints))))
    frames = positions.shape[0]
    contacts = _foot_contacts(positions)
    quats = _inverse_kinematics(positions, smooth_forward=True)
    heading = quats[:, 0]
    # root velocity uses the LATER frame's heading; local joint velocities the EARLIER one (as released)
    root_linear = rot.quat_rotate(heading[1:], positions[1:, 0] - positions[:-1, 0])
    yaw_step = rot.quat_mul(heading[1:], rot.quat_inverse(heading[:-1]))
    if root_velocity == "continuous":  # same hemisphere as the previous heading: no sign flip past ±180°
        yaw_step = torch.where(yaw_step[:, :1] < 0, -yaw_step, yaw_step)
    yaw_velocity = torch.asin(yaw_step[:, 2:3].clamp(-1.0, 1.0))  # half-angle
    local = positions.clone()
    local[..., 0] -= positions[:, 0:1, 0]
    local[..., 2] -= positions[:, 0:1, 2]
    ric = rot.quat_rotate(heading[:, None].expand(local.shape[:-1] + (4,)), local)
    velocity = rot.quat_rotate(heading[:-1, None].expand(frames - 1, NUM_JOINTS, 4), positions[1:] - positions[:-1])
    cont6d = rot.quat_to_cont6d(quats)
    n = frames - 1
    features = torch.cat(
        [
            yaw_velocity,
            root_linear[:, [0, 2]],
            positions[:-1, 0, 1:2],
            ric[:-1, 1:].reshape(n, -1),
            cont6d[:-1, 1:].reshape(n, -1),
            velocity.reshape(n, -1),
            contacts,
        ],
        dim=-1,
    )
    return features.float().numpy()


# ----------------------------------------------------------------------------------------------- recovery
def _check_features(features: ArrayT) -> None:
    if features.shape[-1] != FEATURE_DIM or features.ndim < 2:
        raise MotionFormatError(f"features must have shape (..., frames, {FEATURE_DIM}), got {tuple(features.shape)}")


def recover_root_rotation_position(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Heading quaternions ``(..., T, 4)`` and root positions ``(..., T, 3)`` from features ``(..., T, 263)``."""
    yaw = features[..., 0]
    angle = torch.cumsum(yaw, dim=-1) - yaw  # exclusive cumulative sum: angle[0] = 0
    zero = torch.zeros_like(angle)
    heading = torch.stack([torch.cos(angle), zero, torch.sin(angle), zero], dim=-1)
    step = torch.stack([features[..., :-1, 1], zero[..., :-1], features[..., :-1, 2]], dim=-1)
    step = torch.cat([torch.zeros_like(step[..., :1, :]), step], dim=-2)
    step = rot.quat_rotate(rot.quat_inverse(heading), step)
    position = torch.cumsum(step, dim=-2)
    position = torch.stack([position[..., 0], features[..., 3], position[..., 2]], dim=-1)
    return heading, position


def features_to_joints(features: ArrayT) -> ArrayT:
    """HumanML3D's ``recover_from_ric``: features ``(..., T, 263)`` -> joints ``(..., T, 22, 3)``.

    numpy in -> numpy float32 out; a tensor in -> a tensor out (same dtype/device, differentiable).
    """
    _check_features(features)
    is_numpy = isinstance(features, np.ndarray)
    x = torch.as_tensor(features)
    heading, root = recover_root_rotation_position(x)
    ric = x[..., RIC].reshape(x.shape[:-1] + (NUM_JOINTS - 1, 3))
    ric = rot.quat_rotate(rot.quat_inverse(heading)[..., None, :].expand(ric.shape[:-1] + (4,)), ric)
    ric = ric + torch.stack([root[..., 0], torch.zeros_like(root[..., 0]), root[..., 2]], dim=-1)[..., None, :]
    joints = torch.cat([root[..., None, :], ric], dim=-2)
    return joints.numpy().astype(np.float32) if is_numpy else joints


def features_to_joints_from_rotations(features: ArrayT) -> ArrayT:
    """HumanML3D's ``recover_from_rot``: FK of the 6D block with the target offsets from the recovered root."""
    _check_features(features)
    is_numpy = isinstance(features, np.ndarray)
    x = torch.as_tensor(features)
    heading, root = recover_root_rotation_position(x)
    local = rot.cont6d_to_quat(x[..., ROT6D].reshape(x.shape[:-1] + (NUM_JOINTS - 1, 6)))
    quats = torch.cat([heading[..., None, :], local], dim=-2)
    joints = skeleton_forward_kinematics(quats, root)
    return joints.numpy().astype(np.float32) if is_numpy else joints


# ----------------------------------------------------------------------------------------------- helpers
def normalize(features: ArrayT, mean: ArrayT, std: ArrayT) -> ArrayT:
    return (features - mean) / std


def denormalize(features: ArrayT, mean: ArrayT, std: ArrayT) -> ArrayT:
    return features * std + mean


def load_mean_std(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """``Mean.npy`` and ``Std.npy`` (263,) float32 from a HumanML3D-layout folder."""
    out = []
    for name in ("Mean.npy", "Std.npy"):
        path = Path(folder) / name
        try:
            arr = np.load(path, allow_pickle=False)
        except FileNotFoundError:
            hint = "a HumanML3D-layout folder has Mean.npy and Std.npy"
            raise MotionFormatError(f"{path}: not found", hint=hint) from None
        except (OSError, ValueError) as exc:
            raise MotionFormatError(f"{path}: unreadable ({exc})") from None
        if arr.shape != (FEATURE_DIM,) or not np.all(np.isfinite(arr)):
            raise MotionFormatError(f"{path}: expected a finite ({FEATURE_DIM},) array, got shape {arr.shape}")
        out.append(arr.astype(np.float32))
    if np.any(out[1] <= 0):
        raise MotionFormatError(f"{Path(folder) / 'Std.npy'}: std must be positive")
    return out[0], out[1]


def mirror_joints(joints: np.ndarray) -> np.ndarray:
    """HumanML3D's mirroring: negate x and swap left/right joints. ``(..., 22, 3)`` -> same shape."""
    arr = np.asarray(joints)
    out = arr[..., mirror_permutation(), :].copy()
    out[..., 0] *= -1
    return out
