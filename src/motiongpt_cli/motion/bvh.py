"""BVH motion files: a reader for any standard BVH and a writer for 22-joint HumanML3D joint positions.

Reader conventions: a joint's local rotation is the product of its rotation channels in the order listed
(``Zrotation Yrotation Xrotation`` -> ``R = Rz @ Ry @ Rx``), angles in degrees; a joint with position channels uses
them as its local translation instead of its OFFSET (for the root these are world positions). World positions:
``p[j] = p[parent] + G[parent] @ t[j]`` and ``G[j] = G[parent] @ L[j]``.

Writer: 22 joints named as in SMPL-based tools (Hips ... RightHand) in depth-first order, metres, an arms-down
rest (HumanML3D's own "I-pose": collars out along ±X, arms, legs and spine vertical, feet forward), offsets from the
motion's own median bone lengths, root ``Xposition Yposition Zposition Zrotation Yrotation Xrotation`` and
``Zrotation Yrotation Xrotation`` elsewhere, ``Frame Time`` = 1/fps. Rotations are solved so that the file's FK
reproduces the input joints:

- Hips and Spine2 have three children whose relative layout is rigid in SMPL-derived data; their rotation is the
  best-fit (Kabsch) rotation from the rest layout (averaged over the clip) to each frame's layout.
- Every other joint has one child; its world rotation is the minimal rotation taking the parent-carried rest
  direction of its bone to the bone's direction in the frame. Twist is inherited from the parent, so it is
  continuous over time and the same whichever way the body faces (unlike per-frame IK started from the identity).
- End joints (toes, head, hands) carry no information about their own rotation and keep their parent's.

This is :func:`.ik.solve_world_rotations` (shared with the SMPL writer) with ``anchor="target"``: the offsets
have the clip's own bone lengths, so each bone keeps exactly the data's direction.

Euler channels are made continuous over time (the nearer of the two equivalent ZYX triples each frame). The
arms-down rest keeps common poses away from ZYX gimbal lock (a T-pose rest puts a 90° elbow bend exactly on it).
The root's heading is a rotation about Y, the middle axis, so when the body turns through ±90° the root's Z and X
channels swing together while the rotation itself stays smooth: inherent to ZYX channels.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..atomic import atomic_write_text
from ..errors import MotionFormatError
from . import rotations as rot
from .ik import solve_world_rotations, unit_vectors, world_to_local_rotations
from .kinematics import tree_forward_kinematics

BVH_NAMES = (
    "Hips", "LeftUpLeg", "LeftLeg", "LeftFoot", "LeftToe", "RightUpLeg", "RightLeg", "RightFoot", "RightToe",
    "Spine", "Spine1", "Spine2", "Neck", "Head", "LeftShoulder", "LeftArm", "LeftForeArm", "LeftHand",
    "RightShoulder", "RightArm", "RightForeArm", "RightHand",
)  # fmt: skip
BVH_PARENTS = (-1, 0, 1, 2, 3, 0, 5, 6, 7, 0, 9, 10, 11, 12, 11, 14, 15, 16, 11, 18, 19, 20)
# BVH joint i is HumanML3D joint BVH_TO_HUMANML3D[i]
BVH_TO_HUMANML3D = np.array([0, 1, 4, 7, 10, 2, 5, 8, 11, 3, 6, 9, 12, 15, 13, 16, 18, 20, 14, 17, 19, 21])
# T-pose rest directions of single-child bones (parent -> joint), in BVH order; None = from the clip (rigid sets)
_REST_DIRECTIONS = {
    2: (0, -1, 0), 3: (0, -1, 0), 4: (0, 0, 1), 6: (0, -1, 0), 7: (0, -1, 0), 8: (0, 0, 1),
    10: (0, 1, 0), 11: (0, 1, 0), 13: (0, 1, 0),
    15: (1, 0, 0), 16: (0, -1, 0), 17: (0, -1, 0), 19: (-1, 0, 0), 20: (0, -1, 0), 21: (0, -1, 0),
}  # fmt: skip
_END_SITES = {
    4: (0.0, 0.0, 0.05),
    8: (0.0, 0.0, 0.05),
    13: (0.0, 0.1, 0.0),
    17: (0.08, 0.0, 0.0),
    21: (-0.08, 0.0, 0.0),
}
# (joint, left child, right child, up child) for the two joints with three children, BVH indices
_RIGID_SETS = ((0, 1, 5, 9), (11, 14, 18, 12))
_AXES = {"X": 0, "Y": 1, "Z": 2}


@dataclass
class BVHMotion:
    """A parsed or generated BVH.

    ``offsets`` (J, 3); ``channels[j]`` like ``["Xposition", ..., "Zrotation", ...]``; ``values`` (F, C) raw channel
    values in file order; ``rotations`` (F, J, 3, 3) local rotation matrices; ``translations`` (F, J, 3) local
    translations (the offset, or the position channels where present); ``end_sites`` joint -> End Site offset.
    """

    names: list[str]
    parents: list[int]
    offsets: np.ndarray
    channels: list[list[str]]
    frame_time: float
    values: np.ndarray
    rotations: np.ndarray
    translations: np.ndarray
    end_sites: dict[int, np.ndarray] = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        return int(self.values.shape[0])

    def world_positions(self) -> np.ndarray:
        """Forward kinematics: world joint positions ``(F, J, 3)``."""
        return tree_forward_kinematics(self.rotations, self.translations, self.parents)[0]


# ----------------------------------------------------------------------------------------------- reading
def read_bvh(path: str | Path) -> BVHMotion:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise MotionFormatError(f"{path}: unreadable ({exc.strerror})") from None
    return parse_bvh(text, where=str(path))


def parse_bvh(text: str, *, where: str = "<bvh>") -> BVHMotion:
    """Parse BVH text; malformed input raises MotionFormatError with the line number."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    names: list[str] = []
    parents: list[int] = []
    offsets: list[list[float]] = []
    channels: list[list[str]] = []
    end_sites: dict[int, np.ndarray] = {}
    stack: list[int] = []  # joint indices; -2 marks an End Site block
    pending: int | None = None  # joint (or -2) whose '{' is expected next
    n = 0

    def fail(message: str) -> MotionFormatError:
        return MotionFormatError(f"{where}:{n}: {message}")

    i = 0
    while i < len(lines) and not lines[i].strip():
        i += 1
    if i == len(lines) or lines[i].strip().upper() != "HIERARCHY":
        n = i + 1
        raise fail("expected HIERARCHY")
    i += 1
    while i < len(lines):
        n = i + 1
        tokens = lines[i].split()
        i += 1
        if not tokens:
            continue
        key = tokens[0].upper()
        if key in ("ROOT", "JOINT"):
            if (key == "ROOT") != (not stack) or len(tokens) < 2:
                raise fail(f"unexpected {tokens[0]}")
            names.append(" ".join(tokens[1:]))
            parents.append(stack[-1] if stack else -1)
            offsets.append([0.0, 0.0, 0.0])
            channels.append([])
            pending = len(names) - 1
        elif key == "END":
            if not stack:
                raise fail("End Site outside a joint")
            pending = -2
            end_sites[stack[-1]] = np.zeros(3)
        elif key == "{":
            if pending is None:
                raise fail("unexpected '{'")
            stack.append(pending if pending != -2 else -2 - len(stack))
            pending = None
        elif key == "}":
            if not stack:
                raise fail("unbalanced '}'")
            stack.pop()
            if not stack:
                break
        elif key == "OFFSET":
            try:
                values = [float(v) for v in tokens[1:4]]
            except ValueError:
                raise fail("OFFSET needs three numbers") from None
            if len(values) != 3 or not stack:
                raise fail("OFFSET needs three numbers inside a joint")
            if stack[-1] <= -2:
                end_sites[_enclosing_joint(stack)] = np.array(values)
            else:
                offsets[stack[-1]] = values
        elif key == "CHANNELS":
            if not stack or stack[-1] <= -2:
                raise fail("CHANNELS outside a joint")
            try:
                count = int(tokens[1])
            except (IndexError, ValueError):
                raise fail("CHANNELS needs a count") from None
            names_ = tokens[2:]
            valid = {f"{a}{kind}" for a in "XYZ" for kind in ("position", "rotation")}
            if len(names_) != count or any(c not in valid for c in names_):
                raise fail(f"bad channel list {' '.join(names_)}")
            channels[stack[-1]] = names_
        else:
            raise fail(f"unexpected {tokens[0]!r} in HIERARCHY")
    if stack or not names:
        raise fail("unterminated or empty HIERARCHY")
    while i < len(lines) and not lines[i].strip():
        i += 1
    n = i + 1
    if i >= len(lines) or lines[i].strip().upper() != "MOTION":
        raise fail("expected MOTION")
    i += 1
    header = {}
    for label in ("frames", "frame time"):
        while i < len(lines) and not lines[i].strip():
            i += 1
        n = i + 1
        match = re.match(rf"\s*{label}\s*:\s*(\S+)", lines[i] if i < len(lines) else "", re.I)
        if not match:
            raise fail(f"expected '{label.title()}:'")
        header[label] = match.group(1)
        i += 1
    try:
        frames, frame_time = int(header["frames"]), float(header["frame time"])
    except ValueError:
        raise fail("bad Frames / Frame Time value") from None
    count = sum(len(c) for c in channels)
    rows = []
    for j in range(i, len(lines)):
        if lines[j].strip():
            n = j + 1
            try:
                row = [float(v) for v in lines[j].split()]
            except ValueError:
                raise fail("non-numeric motion data") from None
            if len(row) != count:
                raise fail(f"expected {count} channel values, got {len(row)}")
            rows.append(row)
    if len(rows) < frames:
        raise MotionFormatError(f"{where}: header says {frames} frames, file has {len(rows)}")
    values = np.array(rows[:frames], dtype=np.float64).reshape(frames, count)
    offsets_arr = np.array(offsets, dtype=np.float64)
    rotations, translations = _channels_to_transforms(values, channels, offsets_arr)
    return BVHMotion(names, parents, offsets_arr, channels, frame_time, values, rotations, translations, end_sites)


def _enclosing_joint(stack: list[int]) -> int:
    return next(j for j in reversed(stack) if j >= 0)


def _channels_to_transforms(
    values: np.ndarray, channels: list[list[str]], offsets: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    frames = values.shape[0]
    joints = len(channels)
    rotations = np.tile(np.eye(3), (frames, joints, 1, 1))
    translations = np.tile(offsets, (frames, 1, 1))
    col = 0
    for j, chans in enumerate(channels):
        rot_axes = "".join(c[0] for c in chans if c.endswith("rotation"))
        rot_cols = [col + k for k, c in enumerate(chans) if c.endswith("rotation")]
        pos_cols = {c[0]: col + k for k, c in enumerate(chans) if c.endswith("position")}
        if rot_axes:
            mats = np.tile(np.eye(3), (frames, 1, 1))
            for axis, c in zip(rot_axes, rot_cols, strict=True):
                mats = mats @ _axis_rotation(axis, np.deg2rad(values[:, c]))
            rotations[:, j] = mats
        if pos_cols:
            for axis, c in pos_cols.items():
                translations[:, j, _AXES[axis]] = values[:, c]
        col += len(chans)
    return rotations, translations


def _axis_rotation(axis: str, angle: np.ndarray) -> np.ndarray:
    """Rotations ``(F, 3, 3)`` about one axis: the proper-Euler order axis-other-axis with the other angles 0."""
    angles = np.zeros(angle.shape + (3,))
    angles[..., 0] = angle
    other = "Y" if axis != "Y" else "X"
    return rot.numpy_call(rot.euler_to_matrix, angles, order=axis + other + axis)


# ----------------------------------------------------------------------------------------------- writing
def _continuous_euler(euler: np.ndarray) -> np.ndarray:
    """Make Tait-Bryan angles ``(F, J, 3)`` continuous over frames.

    Each rotation has two triples, (a, b, c) and (a + π, π - b, c + π), each up to multiples of 2π; per frame the
    one nearest the previous frame's is kept, so a channel never jumps when the middle angle passes ±90°.
    """
    out = euler.copy()
    two_pi = 2 * np.pi
    for t in range(1, euler.shape[0]):
        prev = out[t - 1]
        first = euler[t]
        second = np.stack([first[..., 0] + np.pi, np.pi - first[..., 1], first[..., 2] + np.pi], axis=-1)
        candidates = [c + two_pi * np.round((prev - c) / two_pi) for c in (first, second)]
        nearer = np.abs(candidates[0] - prev).sum(-1) <= np.abs(candidates[1] - prev).sum(-1)
        out[t] = np.where(nearer[..., None], candidates[0], candidates[1])
    return out


def joints_to_bvh(joints: np.ndarray, fps: float = 20.0) -> BVHMotion:
    """Solve a 22-joint BVH for HumanML3D-order joints ``(F, 22, 3)`` (metres, Y up)."""
    arr = np.asarray(joints, dtype=np.float64)
    if arr.ndim != 3 or arr.shape[1:] != (22, 3):
        raise MotionFormatError(f"joints must have shape (frames, 22, 3), got {arr.shape}")
    if not np.all(np.isfinite(arr)) or arr.shape[0] < 1:
        raise MotionFormatError("joints must be finite with at least one frame")
    p = arr[:, BVH_TO_HUMANML3D]
    frames = p.shape[0]
    bone = p - p[:, [max(q, 0) for q in BVH_PARENTS]]
    lengths = np.median(np.linalg.norm(bone, axis=-1), axis=0)
    offsets = np.zeros((22, 3))
    for joint, left, right, up in _RIGID_SETS:
        x = unit_vectors(p[:, left] - p[:, right])
        y = unit_vectors(p[:, up] - p[:, joint] - ((p[:, up] - p[:, joint]) * x).sum(-1, keepdims=True) * x)
        frame = np.stack([x, y, np.cross(x, y)], axis=-1)  # columns: left, up, forward
        children = [left, right, up]
        local = np.einsum("fji,fnj->fni", frame, bone[:, children])
        offsets[children] = local.mean(axis=0)
    for j, direction in _REST_DIRECTIONS.items():
        offsets[j] = np.array(direction, dtype=float) * lengths[j]
    # the clip's own bone lengths: anchoring at the target joints keeps each bone's direction exactly the data's
    rigid = {s[0]: s[1:] for s in _RIGID_SETS}
    world = solve_world_rotations(p, offsets, BVH_PARENTS, rigid, anchor="target")
    local = world_to_local_rotations(world, BVH_PARENTS)
    euler = _continuous_euler(rot.numpy_call(rot.matrix_to_euler, local, order="ZYX"))
    channels = [["Xposition", "Yposition", "Zposition", "Zrotation", "Yrotation", "Xrotation"]] + [
        ["Zrotation", "Yrotation", "Xrotation"] for _ in range(21)
    ]
    values = np.concatenate([p[:, 0], np.rad2deg(euler).reshape(frames, -1)], axis=1)
    rotations, translations = _channels_to_transforms(values, channels, offsets)
    end_sites = {j: np.array(v) for j, v in _END_SITES.items()}
    return BVHMotion(
        list(BVH_NAMES), list(BVH_PARENTS), offsets, channels, 1.0 / fps, values, rotations, translations, end_sites
    )


def bvh_to_text(motion: BVHMotion) -> str:
    out = ["HIERARCHY"]
    children = {j: [c for c, q in enumerate(motion.parents) if q == j] for j in range(len(motion.names))}

    def emit(j: int, depth: int) -> None:
        pad = "  " * depth
        out.append(f"{pad}{'ROOT' if motion.parents[j] < 0 else 'JOINT'} {motion.names[j]}")
        out.append(f"{pad}{{")
        out.append(f"{pad}  OFFSET " + " ".join(f"{v:.6f}" for v in motion.offsets[j]))
        out.append(f"{pad}  CHANNELS {len(motion.channels[j])} " + " ".join(motion.channels[j]))
        for c in children[j]:
            emit(c, depth + 1)
        if j in motion.end_sites:
            out.append(f"{pad}  End Site")
            out.append(f"{pad}  {{")
            out.append(f"{pad}    OFFSET " + " ".join(f"{v:.6f}" for v in motion.end_sites[j]))
            out.append(f"{pad}  }}")
        out.append(f"{pad}}}")

    emit(motion.parents.index(-1), 0)
    out += ["MOTION", f"Frames: {motion.num_frames}", f"Frame Time: {motion.frame_time:.7f}"]
    out += [" ".join(f"{v:.6f}" for v in row) for row in motion.values]
    return "\n".join(out) + "\n"


def write_bvh(path: str | Path, joints: np.ndarray, *, fps: float = 20.0, overwrite: bool = False) -> Path:
    """Solve and write a BVH for HumanML3D-order joints ``(F, 22, 3)``, atomically."""
    return atomic_write_text(path, bvh_to_text(joints_to_bvh(joints, fps)), overwrite=overwrite)
