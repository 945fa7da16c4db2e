"""The pose framework of the synthetic actions: joint indices, :class:`Track`, the rest pose and helpers.

A pose is a set of local joint angles ``(T, 22, 3)`` in degrees ``[x, y, z]``, turned into rotations as
``R = Ry(y) @ Rx(x) @ Rz(z)`` relative to the parent, on HumanML3D's rest skeleton (arms and legs hanging, +Z
forward, left +X, Y up). A joint's rotation turns the bones below it. With that rest pose:

- hip or shoulder flexion (limb forward) is a NEGATIVE x angle; knee flexion a POSITIVE x; elbow flexion negative x;
- abduction (limb out to the side) is +z for the left side and -z for the right;
- bending the spine or the neck forward is a positive x; turning the body left is a positive y (counterclockwise
  seen from above).

An action maps times ``t`` (seconds from its start) to a :class:`Track`: angles, a yaw rate, and for jumps a
height above the ground and a velocity while airborne. Walking and stepping are not given a velocity: the
synthesiser moves the body so that the planted foot stays put, so locomotion follows from the legs without sliding.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

# joint indices (HumanML3D order)
PELVIS, L_HIP, R_HIP, SPINE1, L_KNEE, R_KNEE, SPINE2, L_ANKLE, R_ANKLE, SPINE3 = range(10)
L_FOOT, R_FOOT, NECK, L_COLLAR, R_COLLAR, HEAD, L_SHOULDER, R_SHOULDER, L_ELBOW, R_ELBOW = range(10, 20)
L_WRIST, R_WRIST = 20, 21


@dataclass
class Track:
    """What an action does over ``T`` frames."""

    angles: np.ndarray  # (T, 22, 3) degrees, x/y/z
    yaw_rate: np.ndarray  # (T,) degrees per second, + = turn left
    lift: np.ndarray  # (T,) metres above the grounded height (jumps)
    airborne: np.ndarray  # (T,) bool
    air_velocity: np.ndarray  # (T, 2) body-frame (x = left, z = forward) m/s while airborne
    stance: np.ndarray | None = None  # (T,) planted foot, 0 left / 1 right, -1 = the lower one (default)

    @classmethod
    def still(cls, frames: int) -> Track:
        return cls(
            angles=base_pose(frames),
            yaw_rate=np.zeros(frames),
            lift=np.zeros(frames),
            airborne=np.zeros(frames, bool),
            air_velocity=np.zeros((frames, 2)),
        )


def base_pose(frames: int) -> np.ndarray:
    """A relaxed standing pose: shoulders out from the collars, arms hanging, head up, feet flat."""
    a = np.zeros((frames, 22, 3))
    a[:, L_COLLAR, 2], a[:, R_COLLAR, 2] = 95.0, -95.0  # collar -> shoulder bone points outwards
    a[:, L_SHOULDER, 2], a[:, R_SHOULDER, 2] = 7.0, -7.0  # arms hang slightly out (chest frame, see synthetic)
    a[:, L_ELBOW, 0] = a[:, R_ELBOW, 0] = -12.0
    a[:, NECK, 0] = -62.0  # neck -> head bone points up and forward
    a[:, L_ANKLE, 0] = a[:, R_ANKLE, 0] = 28.0  # ankle -> foot points forward and down
    return a


def envelope(t: np.ndarray, duration: float, ramp: float = 0.35) -> np.ndarray:
    """0 -> 1 -> 0 with smooth ramps of ``ramp`` seconds at both ends."""
    up = np.clip(t / ramp, 0, 1)
    down = np.clip((duration - t) / ramp, 0, 1)
    s = np.minimum(up, down)
    return s * s * (3 - 2 * s)


@dataclass
class ActionSpec:
    label: str  # BABEL-style label
    family: str
    make: Callable[[np.ndarray, dict, np.random.Generator], Track]
    duration: Callable[[dict, np.random.Generator], float]
    params: dict = field(default_factory=dict)


def blank_track(t: np.ndarray) -> Track:
    return Track.still(len(t))


def sides(side: str) -> list[tuple[int, int, int, int, float]]:
    """(hip, knee, shoulder, elbow, abduction sign) for 'left', 'right' or 'both'."""
    left = (L_HIP, L_KNEE, L_SHOULDER, L_ELBOW, 1.0)
    right = (R_HIP, R_KNEE, R_SHOULDER, R_ELBOW, -1.0)
    return {"left": [left], "right": [right], "both": [left, right]}[side]


def uniform(lo: float, hi: float) -> Callable[[dict, np.random.Generator], float]:
    return lambda p, rng: float(rng.uniform(lo, hi))


def per_rep(seconds: float) -> Callable[[dict, np.random.Generator], float]:
    return lambda p, rng: seconds * p["reps"] * float(rng.uniform(0.9, 1.15))
