"""The 22-joint HumanML3D skeleton (the SMPL body subset) as data.

Conventions pinned here and used by every motion module:

- Joint positions are ``(..., frames, 22, 3)`` float32 in metres, **Y up**, the body facing **+Z** at frame 0,
  the body's left side at **+X**.
- Frame rate is 20 fps.
- ``RAW_OFFSETS`` are the unit rest directions of ``t2m_raw_offsets`` (an "I-pose": arms hang down from the
  collars, legs point down, feet and head point forward). ``TARGET_BONE_LENGTHS`` are the bone lengths of the
  HumanML3D target skeleton (sample ``000021`` frame 0); every released ``new_joints`` file has exactly these.
"""

from __future__ import annotations

import numpy as np

FPS = 20  # HumanML3D's frame rate
FEATURE_DIM = 263  # HumanML3D's feature vector: 4 root + 63 positions + 126 rotations + 66 velocities + 4 contacts
MAX_FRAMES = 196  # HumanML3D's longest clip (9.8 s): the evaluator's padding and MDM's max_frames

JOINT_NAMES: tuple[str, ...] = (
    "pelvis",
    "left_hip",
    "right_hip",
    "spine1",
    "left_knee",
    "right_knee",
    "spine2",
    "left_ankle",
    "right_ankle",
    "spine3",
    "left_foot",
    "right_foot",
    "neck",
    "left_collar",
    "right_collar",
    "head",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
)
NUM_JOINTS = len(JOINT_NAMES)

# t2m_kinematic_chain: right leg, left leg, spine+head, right arm, left arm.
KINEMATIC_CHAINS: tuple[tuple[int, ...], ...] = (
    (0, 2, 5, 8, 11),
    (0, 1, 4, 7, 10),
    (0, 3, 6, 9, 12, 15),
    (9, 14, 17, 19, 21),
    (9, 13, 16, 18, 20),
)

PARENTS: tuple[int, ...] = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19)

RAW_OFFSETS = np.array(
    [
        [0, 0, 0],
        [1, 0, 0],
        [-1, 0, 0],
        [0, 1, 0],
        [0, -1, 0],
        [0, -1, 0],
        [0, 1, 0],
        [0, -1, 0],
        [0, -1, 0],
        [0, 1, 0],
        [0, 0, 1],
        [0, 0, 1],
        [0, 1, 0],
        [1, 0, 0],
        [-1, 0, 0],
        [0, 0, 1],
        [0, -1, 0],
        [0, -1, 0],
        [0, -1, 0],
        [0, -1, 0],
        [0, -1, 0],
        [0, -1, 0],
    ],
    dtype=np.float64,
)

# Bone length parent->joint of the HumanML3D target skeleton (index 0 unused).
TARGET_BONE_LENGTHS = np.array(
    [
        0.0,
        0.103074,
        0.109883,
        0.131568,
        0.393623,
        0.390188,
        0.143190,
        0.432433,
        0.425643,
        0.057365,
        0.143382,
        0.149419,
        0.219360,
        0.137487,
        0.143383,
        0.103039,
        0.131614,
        0.122984,
        0.256840,
        0.263092,
        0.266012,
        0.269876,
    ],
    dtype=np.float64,
)
TARGET_OFFSETS = RAW_OFFSETS * TARGET_BONE_LENGTHS[:, None]

# Processing constants of HumanML3D's motion_representation notebook.
FOOT_LEFT = (7, 10)  # left ankle, left foot
FOOT_RIGHT = (8, 11)  # right ankle, right foot
LEG_BONES = (5, 8)  # right knee and right ankle: the bones whose lengths define "leg length"
FOOT_CONTACT_THRESHOLD = 0.002  # squared displacement per frame, m^2
LEFT_JOINTS = (1, 4, 7, 10, 13, 16, 18, 20)
RIGHT_JOINTS = (2, 5, 8, 11, 14, 17, 19, 21)


def mirror_permutation() -> np.ndarray:
    """Index map that swaps left and right joints (used with x negated to mirror a motion)."""
    perm = np.arange(NUM_JOINTS)
    for left, right in zip(LEFT_JOINTS, RIGHT_JOINTS, strict=True):
        perm[left], perm[right] = right, left
    return perm


def bone_lengths_of(joints: np.ndarray, parents: tuple[int, ...] = PARENTS) -> np.ndarray:
    """Per-frame bone lengths of ``joints: (..., J, 3)`` -> ``(..., J)`` (0 for the root)."""
    joints = np.asarray(joints)
    par = np.array([p if p >= 0 else 0 for p in parents])
    return np.linalg.norm(joints - joints[..., par, :], axis=-1)
