"""Procedural atomic actions on the 22-joint skeleton, for the synthetic corpus.

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


def _track(t: np.ndarray) -> Track:
    return Track.still(len(t))


def _sides(side: str) -> list[tuple[int, int, int, int, float]]:
    """(hip, knee, shoulder, elbow, abduction sign) for 'left', 'right' or 'both'."""
    left = (L_HIP, L_KNEE, L_SHOULDER, L_ELBOW, 1.0)
    right = (R_HIP, R_KNEE, R_SHOULDER, R_ELBOW, -1.0)
    return {"left": [left], "right": [right], "both": [left, right]}[side]


# ----------------------------------------------------------------------------------------------- locomotion
def gait(t: np.ndarray, p: dict, rng: np.random.Generator) -> Track:
    """Walk / jog / run / walk backwards: alternating legs; the planted foot drives the body."""
    tr = _track(t)
    a = tr.angles
    phase = 2 * np.pi * p["cadence"] * t
    direction = p.get("direction", 1.0)
    stride, knee, arm = p["stride"], p["knee"], p["arm"]
    for hip, knee_j, shoulder, elbow, shift in ((L_HIP, L_KNEE, L_SHOULDER, L_ELBOW, 0.0),
                                                (R_HIP, R_KNEE, R_SHOULDER, R_ELBOW, np.pi)):  # fmt: skip
        ph = phase + shift
        a[:, hip, 0] += -direction * stride * np.sin(ph)
        a[:, knee_j, 0] += 6.0 + knee * np.clip(np.cos(ph), 0, None) ** 2  # knee bends while the leg swings
        a[:, shoulder, 0] += direction * arm * np.sin(ph)  # arms swing opposite to the legs
        a[:, elbow, 0] += -p.get("elbow", 0.0)
    a[:, SPINE1, 0] += p.get("lean", 0.0)
    bend = p.get("crouch", 0.0)  # crouched walking: hips and knees bent throughout, feet kept flat
    if bend:
        for hip, knee_j, ankle in ((L_HIP, L_KNEE, L_ANKLE), (R_HIP, R_KNEE, R_ANKLE)):
            a[:, hip, 0] += -bend
            a[:, knee_j, 0] += 1.5 * bend
            a[:, ankle, 0] += -0.5 * bend
        a[:, NECK, 0] += -0.5 * p.get("lean", 0.0)  # head up, looking ahead
    a[:, PELVIS, 1] += 4.0 * np.sin(phase)  # pelvis rotation with the stride
    # a leg is planted while it sweeps backwards (relative to the direction of travel): cos(phase) < 0 for the left
    tr.stance = np.where(np.cos(phase) < 0, 0, 1)
    return tr


def _lift_foot(a: np.ndarray, leg: tuple[int, int], knee: np.ndarray) -> None:
    """Bend the knee by ``knee`` degrees, the hip by half as much and the ankle back by half as much: the foot rises
    level, straight up under the hip (thigh and shank are about as long), instead of swinging backwards (which made
    side steps drift forward) or skimming the floor toe first."""
    hip, knee_j = leg
    a[:, knee_j, 0] += knee
    a[:, hip, 0] += -0.5 * knee
    a[:, knee_j + 3, 0] += -0.5 * knee  # the ankle is three joints after its knee (4 -> 7, 5 -> 8)


def side_step(t: np.ndarray, p: dict, rng: np.random.Generator) -> Track:
    """Steps to one side: the leading leg opens while lifted, then the other closes."""
    tr = _track(t)
    a = tr.angles
    sign = 1.0 if p["side"] == "left" else -1.0
    phase = 2 * np.pi * p["cadence"] * t
    opening = 0.5 - 0.5 * np.cos(phase)
    lead, trail = (L_HIP, R_HIP) if sign > 0 else (R_HIP, L_HIP)
    lead_knee, trail_knee = (L_KNEE, R_KNEE) if sign > 0 else (R_KNEE, L_KNEE)
    a[:, lead, 2] += sign * 16.0 * opening
    a[:, trail, 2] += -sign * 4.0 * opening
    first_half = np.sin(phase) > 0
    _lift_foot(a, (lead, lead_knee), np.where(first_half, 60.0 * np.sin(phase) ** 2, 0.0))
    _lift_foot(a, (trail, trail_knee), np.where(~first_half, 60.0 * np.sin(phase) ** 2, 0.0))
    # the trail leg carries the body while the lead foot is in the air, then the lead foot takes over
    tr.stance = np.where(first_half, 1 if sign > 0 else 0, 0 if sign > 0 else 1)
    return tr


def turn(t: np.ndarray, p: dict, rng: np.random.Generator) -> Track:
    """Turn (or spin) on the spot with small alternating steps."""
    tr = _track(t)
    phase = 2 * np.pi * 1.6 * t
    _lift_foot(tr.angles, (L_HIP, L_KNEE), 55.0 * np.clip(np.sin(phase), 0, None) ** 2)
    _lift_foot(tr.angles, (R_HIP, R_KNEE), 55.0 * np.clip(-np.sin(phase), 0, None) ** 2)
    tr.stance = np.where(np.sin(phase) > 0, 1, 0)  # pivot on the foot that is down
    duration = t[-1] + 1 / 20 if len(t) else 1.0
    tr.yaw_rate[:] = p["degrees"] / duration * (0.5 - 0.5 * np.cos(2 * np.pi * t / duration)) * 2
    return tr


def _smooth(s: np.ndarray) -> np.ndarray:
    s = np.clip(s, 0, 1)
    return s * s * (3 - 2 * s)


def _step_forward(tr: Track, t: np.ndarray, start: float, swing: float, size: float, lead: str) -> None:
    """One step forward of ``size`` degrees of hip swing, then the other foot closes beside it.

    During the first ``swing`` seconds the lead leg swings forward (knee lifted) while the planted trail leg
    extends behind; the legs are symmetric when the lead foot lands, so both touch the floor. During the next
    ``swing`` seconds the lead leg is planted and straightens under the body while the trail leg swings up to it.
    The stance is given explicitly so the placement moves the body over the planted foot.
    """
    a = tr.angles
    s_a = np.clip((t - start) / swing, 0, 1)
    s_b = np.clip((t - start - swing) / swing, 0, 1)
    (lead_hip, lead_knee), (trail_hip, trail_knee) = ((L_HIP, L_KNEE), (R_HIP, R_KNEE))[:: 1 if lead == "left" else -1]
    split = size * (_smooth(s_a) - _smooth(s_b))
    a[:, lead_hip, 0] += -split
    a[:, trail_hip, 0] += split
    a[:, lead_hip + 6, 0] += split  # ankles (hip + 6) keep both feet flat, so both touch down together
    a[:, trail_hip + 6, 0] += -split
    lift = 1.6 * size + 30.0
    _lift_foot(a, (lead_hip, lead_knee), lift * np.sin(np.pi * s_a) ** 2)
    _lift_foot(a, (trail_hip, trail_knee), lift * np.sin(np.pi * s_b) ** 2)
    lead_i, trail_i = (0, 1) if lead == "left" else (1, 0)
    stance = np.full(len(t), -1)
    stance[(t >= start) & (t < start + swing)] = trail_i
    stance[(t >= start + swing) & (t < start + 2 * swing)] = lead_i
    tr.stance = stance


def dance_steps(t: np.ndarray, p: dict, rng: np.random.Generator) -> Track:
    """Side steps to the left and to the right in turn, on the beat, with the arms swinging across and a bounce."""
    tr = _track(t)
    a = tr.angles
    beat = p["cadence"]
    cycle = np.floor(beat * t)
    sign = np.where(np.mod(cycle, 2) == 0, 1.0, -1.0)  # + = step to the left
    phase = 2 * np.pi * beat * t
    opening = 0.5 - 0.5 * np.cos(phase)
    first_half = np.sin(phase) > 0
    lift = 60.0 * np.sin(phase) ** 2
    left_leads = sign > 0
    a[:, L_HIP, 2] += np.where(left_leads, 14.0, -4.0) * opening
    a[:, R_HIP, 2] += np.where(left_leads, 4.0, -14.0) * opening
    left_up = left_leads == first_half
    _lift_foot(a, (L_HIP, L_KNEE), np.where(left_up, lift, 0.0))
    _lift_foot(a, (R_HIP, R_KNEE), np.where(~left_up, lift, 0.0))
    tr.stance = np.where(left_up, 1, 0)
    env = envelope(t, t[-1] + 0.05, 0.3)
    swing = np.sin(np.pi * beat * t)  # one full swing across per two steps
    for _, _, shoulder, elbow, s in _sides("both"):
        a[:, shoulder, 0] += -45.0 * env
        a[:, shoulder, 2] += s * 20.0 * env
        a[:, shoulder, 1] += 30.0 * swing * env
        a[:, elbow, 0] += -75.0 * env
    a[:, SPINE2, 1] += 10.0 * swing * env
    a[:, SPINE1, 2] += -6.0 * sign * np.sin(phase / 2) ** 2 * env  # hips sway with the step
    return tr


# ----------------------------------------------------------------------------------------------- arms
def wave(t: np.ndarray, p: dict, rng: np.random.Generator) -> Track:
    tr = _track(t)
    env = envelope(t, t[-1] + 0.05, 0.4)
    for _, _, shoulder, elbow, sign in _sides(p["side"]):
        tr.angles[:, shoulder, 2] += sign * 150.0 * env  # arm up beside the head
        tr.angles[:, elbow, 2] += sign * (-20.0 + 28.0 * np.sin(2 * np.pi * p["speed"] * t)) * env  # the hand waves
        tr.angles[:, elbow, 0] += -10.0 * env
    return tr


def clap(t: np.ndarray, p: dict, rng: np.random.Generator) -> Track:
    tr = _track(t)
    env = envelope(t, t[-1] + 0.05)
    open_close = 0.5 + 0.5 * np.sin(2 * np.pi * p["speed"] * t)
    for _, _, shoulder, elbow, sign in _sides("both"):
        tr.angles[:, shoulder, 0] += -65.0 * env
        tr.angles[:, shoulder, 2] += sign * (-12.0 + 30.0 * open_close) * env
        tr.angles[:, elbow, 0] += -45.0 * env
    return tr


def raise_arms(t: np.ndarray, p: dict, rng: np.random.Generator) -> Track:
    tr = _track(t)
    env = envelope(t, t[-1] + 0.05, 0.5)
    for _, _, shoulder, _, sign in _sides(p["side"]):
        tr.angles[:, shoulder, 2] += sign * 165.0 * env
    return tr


def punch(t: np.ndarray, p: dict, rng: np.random.Generator) -> Track:
    tr = _track(t)
    env = envelope(t, t[-1] + 0.05, 0.3)
    jab = np.clip(np.sin(2 * np.pi * p["speed"] * t), 0, None) ** 2
    (_, _, shoulder, elbow, sign) = _sides(p["side"])[0]
    for _, _, sh, el, _ in _sides("both"):  # both fists up in a guard
        tr.angles[:, sh, 0] += -50.0 * env
        tr.angles[:, el, 0] += -100.0 * env
    tr.angles[:, shoulder, 0] += -35.0 * jab * env
    tr.angles[:, elbow, 0] += 95.0 * jab * env  # the arm straightens into the punch
    tr.angles[:, SPINE2, 1] += -sign * 15.0 * jab * env
    return tr


def throw(t: np.ndarray, p: dict, rng: np.random.Generator) -> Track:
    tr = _track(t)
    d = t[-1] + 0.05
    s = np.clip(t / d, 0, 1)
    (_, _, shoulder, elbow, sign) = _sides(p["side"])[0]
    wind = np.exp(-(((s - 0.35) / 0.15) ** 2))
    release = np.exp(-(((s - 0.62) / 0.08) ** 2))
    tr.angles[:, shoulder, 2] += sign * 100.0 * (wind + 0.6 * release)
    tr.angles[:, shoulder, 0] += 40.0 * wind - 120.0 * release
    tr.angles[:, elbow, 0] += -90.0 * wind - 10.0 * release
    tr.angles[:, SPINE2, 1] += sign * 25.0 * wind - sign * 25.0 * release
    tr.angles[:, SPINE1, 0] += 15.0 * release
    return tr


def hug(t: np.ndarray, p: dict, rng: np.random.Generator) -> Track:
    """A small step in, both arms around an imagined partner in front (wrists meet before the chest), a squeeze."""
    tr = _track(t)
    d = t[-1] + 0.05
    _step_forward(tr, t, 0.05, 0.35, 9.0, p.get("lead", "right"))
    env = envelope(t - 0.25, d - 0.25, 0.45) * (t > 0.25)
    squeeze = 1.0 + 0.08 * np.sin(2 * np.pi * t / max(d, 1.0)) ** 2
    for _, _, shoulder, elbow, sign in _sides("both"):
        tr.angles[:, shoulder, 2] += sign * 70.0 * env  # upper arms raised ...
        tr.angles[:, shoulder, 1] += -sign * 80.0 * env  # ... and swung forward, elbows wide
        tr.angles[:, elbow, 0] += -70.0 * env * squeeze  # forearms wrap round the partner's back
    tr.angles[:, SPINE1, 0] += 6.0 * env
    tr.angles[:, SPINE3, 1] += 4.0 * np.sin(2 * np.pi * 0.6 * t) * env  # a gentle rock
    return tr


def handshake(t: np.ndarray, p: dict, rng: np.random.Generator) -> Track:
    """Right hand forward at waist height, pumped up and down a few times."""
    tr = _track(t)
    env = envelope(t, t[-1] + 0.05, 0.45)
    pump = np.sin(2 * np.pi * p["speed"] * t) * envelope(t - 0.4, t[-1] - 0.75, 0.2) * (t > 0.4)
    tr.angles[:, R_SHOULDER, 0] += (-38.0 + 7.0 * pump) * env
    tr.angles[:, R_SHOULDER, 1] += 12.0 * env  # a little towards the middle
    tr.angles[:, R_ELBOW, 0] += (-48.0 + 9.0 * pump) * env  # forearm forward, the hand pumps
    tr.angles[:, SPINE1, 0] += 5.0 * env
    tr.angles[:, NECK, 0] += 6.0 * env
    return tr


def high_five(t: np.ndarray, p: dict, rng: np.random.Generator) -> Track:
    """Right hand raised up and forward, then pushed out to meet another hand."""
    tr = _track(t)
    d = t[-1] + 0.05
    env = envelope(t, d, 0.45)
    push = np.exp(-(((t / d - 0.55) / 0.1) ** 2))
    tr.angles[:, R_SHOULDER, 0] += (-125.0 - 5.0 * push) * env  # upper arm up in front, forearm up
    tr.angles[:, R_SHOULDER, 2] += -12.0 * env
    tr.angles[:, R_ELBOW, 0] += (-45.0 + 35.0 * push) * env  # the arm straightens forward into the slap
    tr.angles[:, SPINE1, 0] += 8.0 * push * env
    tr.angles[:, SPINE2, 1] += 10.0 * push * env
    return tr


def salute(t: np.ndarray, p: dict, rng: np.random.Generator) -> Track:
    """Right hand up to the brow, held, then down."""
    tr = _track(t)
    env = envelope(t, t[-1] + 0.05, 0.35)
    # upper arm raised out to the side and a little forward, forearm folded up so the wrist comes beside the brow
    # (solved on the rest skeleton: the wrist ends 16 cm to the right of the head joint, 10 cm in front)
    tr.angles[:, R_SHOULDER] += np.array([-30.0, 80.0, -120.0]) * env[:, None]
    tr.angles[:, R_ELBOW] += np.array([-90.0, -15.0, 0.0]) * env[:, None]
    return tr


def point(t: np.ndarray, p: dict, rng: np.random.Generator) -> Track:
    """Right arm extended straight forward at shoulder height."""
    tr = _track(t)
    env = envelope(t, t[-1] + 0.05, 0.4)
    tr.angles[:, R_SHOULDER, 0] += -88.0 * env
    tr.angles[:, R_SHOULDER, 1] += 6.0 * env
    tr.angles[:, R_ELBOW, 0] += 12.0 * env  # straight (the rest pose keeps it a little bent)
    tr.angles[:, NECK, 1] += -8.0 * env  # looks where it points
    return tr


def shrug(t: np.ndarray, p: dict, rng: np.random.Generator) -> Track:
    """Shoulders up, forearms out to the sides with the palms up, head tilted."""
    tr = _track(t)
    d = t[-1] + 0.05
    env = envelope(t, d, 0.35)
    lift = env * (0.85 + 0.15 * np.cos(2 * np.pi * t / max(d, 0.5)))
    tr.angles[:, L_COLLAR, 2] += 30.0 * lift
    tr.angles[:, R_COLLAR, 2] += -30.0 * lift
    for _, _, shoulder, elbow, sign in _sides("both"):
        tr.angles[:, shoulder, 2] += sign * 18.0 * env
        tr.angles[:, shoulder, 1] += sign * 45.0 * env  # upper arm turned so the forearm points outwards
        tr.angles[:, elbow, 0] += -80.0 * env
    tr.angles[:, NECK, 2] += 12.0 * env
    return tr


# ----------------------------------------------------------------------------------------------- torso
def bow(t: np.ndarray, p: dict, rng: np.random.Generator) -> Track:
    tr = _track(t)
    env = envelope(t, t[-1] + 0.05, 0.6)
    for j in (SPINE1, SPINE2, SPINE3):
        tr.angles[:, j, 0] += p["depth"] / 3 * env
    tr.angles[:, NECK, 0] += 10.0 * env
    for _, _, shoulder, _, _ in _sides("both"):
        tr.angles[:, shoulder, 0] += -0.9 * p["depth"] * env  # the arms keep hanging while the chest bends
    return tr


def lean_in(t: np.ndarray, p: dict, rng: np.random.Generator) -> Track:
    """Lean the torso and the head forward a little (as for a kiss on the cheek), hold, come back."""
    tr = _track(t)
    env = envelope(t, t[-1] + 0.05, 0.5)
    for j in (SPINE1, SPINE2, SPINE3):
        tr.angles[:, j, 0] += p["depth"] / 3 * env
    tr.angles[:, NECK, 0] += 14.0 * env
    tr.angles[:, NECK, 2] += 10.0 * env  # head tilted
    for _, _, shoulder, _, _ in _sides("both"):
        tr.angles[:, shoulder, 0] += -0.8 * p["depth"] * env
    return tr


def look_around(t: np.ndarray, p: dict, rng: np.random.Generator) -> Track:
    """Turn the head (and a little the chest) to the left, then to the right, and back."""
    tr = _track(t)
    d = t[-1] + 0.05
    env = envelope(t, d, 0.3)
    yaw = np.sin(2 * np.pi * t / d * p.get("sweeps", 1.0)) * env
    tr.angles[:, NECK, 1] += 60.0 * yaw
    tr.angles[:, SPINE3, 1] += 15.0 * yaw
    tr.angles[:, SPINE2, 1] += 8.0 * yaw
    return tr


def stumble(t: np.ndarray, p: dict, rng: np.random.Generator) -> Track:
    """A sudden lurch forward: the torso pitches, the arms fly out, a quick long step catches it, then recovery."""
    tr = _track(t)
    d = t[-1] + 0.05
    start, swing = 0.15, 0.28
    _step_forward(tr, t, start, swing, 24.0, p.get("lead", "right"))
    lurch = np.exp(-(((t - start - swing) / 0.25) ** 2))
    tr.angles[:, SPINE1, 0] += 22.0 * lurch
    tr.angles[:, SPINE2, 0] += 10.0 * lurch
    tr.angles[:, NECK, 0] += -12.0 * lurch  # the head stays up
    for _, _, shoulder, elbow, sign in _sides("both"):
        tr.angles[:, shoulder, 0] += -55.0 * lurch
        tr.angles[:, shoulder, 2] += sign * 35.0 * lurch
        tr.angles[:, elbow, 0] += -30.0 * lurch
    # a second, smaller balancing step
    second = _track(t)
    _step_forward(second, t, start + 2 * swing, 0.3, 8.0, "left" if p.get("lead", "right") == "right" else "right")
    tr.angles += second.angles - base_pose(len(t))
    tr.stance = np.where(second.stance >= 0, second.stance, tr.stance)
    del d
    return tr


def nod(t: np.ndarray, p: dict, rng: np.random.Generator) -> Track:
    tr = _track(t)
    env = envelope(t, t[-1] + 0.05, 0.3)
    tr.angles[:, NECK, 0] += 28.0 * np.clip(np.sin(2 * np.pi * p["speed"] * t), 0, None) * env
    return tr


def stretch(t: np.ndarray, p: dict, rng: np.random.Generator) -> Track:
    tr = _track(t)
    env = envelope(t, t[-1] + 0.05, 0.6)
    for _, _, shoulder, _elbow, sign in _sides("both"):
        tr.angles[:, shoulder, 2] += sign * 168.0 * env
    side_bend = np.sin(2 * np.pi * t / max(t[-1], 0.5))
    tr.angles[:, SPINE2, 2] += 18.0 * side_bend * env
    tr.angles[:, SPINE3, 2] += 10.0 * side_bend * env
    return tr


def pick_up(t: np.ndarray, p: dict, rng: np.random.Generator) -> Track:
    tr = _track(t)
    env = envelope(t, t[-1] + 0.05, 0.7)
    for j in (SPINE1, SPINE2, SPINE3):
        tr.angles[:, j, 0] += 26.0 * env
    for hip, knee, shoulder, _, _ in _sides("both"):
        tr.angles[:, hip, 0] += -60.0 * env
        tr.angles[:, knee, 0] += 90.0 * env
        tr.angles[:, shoulder, 0] += -(3 * 26.0 + 15.0) * env  # arms hang from the bent chest and reach down
    tr.angles[:, L_ANKLE, 0] += -22.0 * env
    tr.angles[:, R_ANKLE, 0] += -22.0 * env
    return tr


# ----------------------------------------------------------------------------------------------- legs
def squat(t: np.ndarray, p: dict, rng: np.random.Generator) -> Track:
    tr = _track(t)
    reps = p["reps"]
    depth = np.clip(np.sin(np.pi * reps * t / (t[-1] + 0.05)), 0, None) ** 1.5
    for hip, knee, shoulder, _, _ in _sides("both"):
        tr.angles[:, hip, 0] += -95.0 * depth
        tr.angles[:, knee, 0] += 115.0 * depth
        tr.angles[:, shoulder, 0] += -80.0 * depth  # arms forward for balance
    tr.angles[:, L_ANKLE, 0] += -25.0 * depth
    tr.angles[:, R_ANKLE, 0] += -25.0 * depth
    tr.angles[:, SPINE1, 0] += 20.0 * depth
    return tr


def crouch(t: np.ndarray, p: dict, rng: np.random.Generator) -> Track:
    """Go down into a deep knee bend, stay low a while (looking about a little), come back up."""
    tr = _track(t)
    d = t[-1] + 0.05
    low = envelope(t, d, 0.6)
    for hip, knee, shoulder, elbow, _ in _sides("both"):
        tr.angles[:, hip, 0] += -105.0 * low
        tr.angles[:, knee, 0] += 130.0 * low
        tr.angles[:, shoulder, 0] += -45.0 * low  # forearms over the knees
        tr.angles[:, elbow, 0] += -40.0 * low
    tr.angles[:, L_ANKLE, 0] += -30.0 * low
    tr.angles[:, R_ANKLE, 0] += -30.0 * low
    tr.angles[:, SPINE1, 0] += 28.0 * low
    tr.angles[:, NECK, 0] += -20.0 * low  # head up
    return tr


def _ballistic(t: np.ndarray, start: float, flight: float) -> tuple[np.ndarray, np.ndarray]:
    """Height (m) of a jump leaving at ``start`` and landing ``flight`` seconds later, and the airborne mask."""
    s = (t - start) / flight
    air = (s > 0) & (s < 1)
    height = np.where(air, 9.81 * flight**2 / 2 * s * (1 - s), 0.0)
    return height, air


def jump(t: np.ndarray, p: dict, rng: np.random.Generator) -> Track:
    """Jump in place or forward, hop on one leg, or jumping jacks: crouch, flight, landing, repeated."""
    tr = _track(t)
    reps, flight = p["reps"], p["flight"]
    period = (t[-1] + 0.05) / reps
    local = np.mod(t, period)
    crouch = np.exp(-(((local - 0.25 * period) / (0.12 * period)) ** 2)) + np.exp(
        -(((local - 0.92 * period) / (0.08 * period)) ** 2)
    )
    height, air = _ballistic(local, 0.4 * period, flight)
    legs = _sides(p.get("legs", "both"))
    for hip, knee, _, _, _ in legs:
        tr.angles[:, hip, 0] += -40.0 * crouch * p.get("crouch", 1.0)
        tr.angles[:, knee, 0] += 60.0 * crouch * p.get("crouch", 1.0)
    if p.get("legs") in ("left", "right"):  # hop: the free leg is held up behind
        free_hip, free_knee = (R_HIP, R_KNEE) if p["legs"] == "left" else (L_HIP, L_KNEE)
        tr.angles[:, free_hip, 0] += -25.0
        tr.angles[:, free_knee, 0] += 85.0
    if p.get("jacks"):
        spread = 0.5 - 0.5 * np.cos(2 * np.pi * t / period)
        for hip, _, shoulder, _, sign in _sides("both"):
            tr.angles[:, shoulder, 2] += sign * 150.0 * spread
            tr.angles[:, hip, 2] += sign * 14.0 * spread
    else:
        for _, _, shoulder, _, _ in _sides("both"):
            tr.angles[:, shoulder, 0] += 40.0 * crouch - 60.0 * (height > 0)
    tr.lift[:] = height
    tr.airborne[:] = air
    tr.air_velocity[:, 1] = p.get("forward", 0.0)
    return tr


def kick(t: np.ndarray, p: dict, rng: np.random.Generator) -> Track:
    tr = _track(t)
    d = t[-1] + 0.05
    s = np.clip(t / d, 0, 1)
    (hip, knee, _, _, _) = _sides(p["side"])[0]
    chamber = np.exp(-(((s - 0.35) / 0.12) ** 2))
    extend = np.exp(-(((s - 0.55) / 0.1) ** 2))
    tr.angles[:, hip, 0] += -50.0 * chamber - p["height"] * extend
    tr.angles[:, knee, 0] += 90.0 * chamber + 5.0 * extend
    tr.angles[:, SPINE1, 0] += -10.0 * extend  # lean back against the kick
    for _, _, shoulder, elbow, _ in _sides("both"):
        tr.angles[:, shoulder, 0] += -30.0 * (chamber + extend)
        tr.angles[:, elbow, 0] += -60.0 * (chamber + extend)
    return tr


def sit_stand(t: np.ndarray, p: dict, rng: np.random.Generator) -> Track:
    """Sit down cross-legged on the floor, stay a moment, stand up."""
    tr = _track(t)
    d = t[-1] + 0.05
    s = np.clip(t / d, 0, 1)
    down = np.clip((s - 0.05) / 0.3, 0, 1)
    up = np.clip((s - 0.65) / 0.3, 0, 1)
    level = down * down * (3 - 2 * down) - up * up * (3 - 2 * up)
    for hip, knee, shoulder, _, sign in _sides("both"):
        tr.angles[:, hip, 0] += -85.0 * level
        tr.angles[:, hip, 2] += sign * 40.0 * level
        tr.angles[:, hip, 1] += sign * 35.0 * level
        tr.angles[:, knee, 0] += 145.0 * level
        tr.angles[:, shoulder, 0] += -20.0 * level
    tr.angles[:, SPINE1, 0] += 15.0 * level
    return tr


def stand(t: np.ndarray, p: dict, rng: np.random.Generator) -> Track:
    return _track(t)


def _uniform(lo: float, hi: float) -> Callable[[dict, np.random.Generator], float]:
    return lambda p, rng: float(rng.uniform(lo, hi))


def _per_rep(seconds: float) -> Callable[[dict, np.random.Generator], float]:
    return lambda p, rng: seconds * p["reps"] * float(rng.uniform(0.9, 1.15))


ACTIONS: dict[str, ActionSpec] = {
    spec.label: spec
    for spec in [
        ActionSpec("walk", "locomotion", gait, _uniform(2.0, 3.5), dict(cadence=0.95, stride=24, knee=45, arm=18, elbow=10)),
        ActionSpec("jog", "locomotion", gait, _uniform(1.6, 2.8), dict(cadence=1.35, stride=30, knee=75, arm=28, elbow=70, lean=8)),
        ActionSpec("run", "locomotion", gait, _uniform(1.4, 2.4), dict(cadence=1.6, stride=38, knee=95, arm=38, elbow=85, lean=14)),
        ActionSpec("walk backwards", "locomotion", gait, _uniform(2.0, 3.2), dict(cadence=0.85, stride=18, knee=35, arm=12, direction=-1.0)),
        ActionSpec("step to the left", "locomotion", side_step, _uniform(1.6, 2.6), dict(side="left", cadence=0.9)),
        ActionSpec("step to the right", "locomotion", side_step, _uniform(1.6, 2.6), dict(side="right", cadence=0.9)),
        ActionSpec("turn left", "turn", turn, _uniform(1.2, 1.8), dict(degrees=90.0)),
        ActionSpec("turn right", "turn", turn, _uniform(1.2, 1.8), dict(degrees=-90.0)),
        ActionSpec("spin around", "turn", turn, _uniform(1.6, 2.4), dict(degrees=360.0)),
        ActionSpec("wave right hand", "gesture", wave, _uniform(1.8, 3.0), dict(side="right", speed=2.0)),
        ActionSpec("wave left hand", "gesture", wave, _uniform(1.8, 3.0), dict(side="left", speed=2.0)),
        ActionSpec("wave both hands", "gesture", wave, _uniform(1.8, 3.0), dict(side="both", speed=2.0)),
        ActionSpec("bow", "gesture", bow, _uniform(1.8, 2.6), dict(depth=70.0)),
        ActionSpec("nod", "gesture", nod, _uniform(1.2, 2.0), dict(speed=1.5)),
        ActionSpec("clap", "gesture", clap, _uniform(1.6, 2.6), dict(speed=2.2)),
        ActionSpec("raise both arms", "gesture", raise_arms, _uniform(1.8, 2.8), dict(side="both")),
        ActionSpec("squat", "exercise", squat, _per_rep(1.6), dict(reps=2)),
        ActionSpec("jump in place", "jump", jump, _per_rep(0.9), dict(reps=2, flight=0.32)),
        ActionSpec("jump forward", "jump", jump, _per_rep(1.0), dict(reps=1, flight=0.36, forward=1.6)),
        ActionSpec("hop on left leg", "jump", jump, _per_rep(0.7), dict(reps=3, flight=0.22, legs="left", crouch=0.6)),
        ActionSpec("hop on right leg", "jump", jump, _per_rep(0.7), dict(reps=3, flight=0.22, legs="right", crouch=0.6)),
        ActionSpec("jumping jacks", "exercise", jump, _per_rep(0.85), dict(reps=3, flight=0.2, jacks=True, crouch=0.4)),
        ActionSpec("kick with right leg", "fight", kick, _uniform(1.2, 1.7), dict(side="right", height=85.0)),
        ActionSpec("kick with left leg", "fight", kick, _uniform(1.2, 1.7), dict(side="left", height=85.0)),
        ActionSpec("punch with right hand", "fight", punch, _uniform(1.4, 2.2), dict(side="right", speed=1.5)),
        ActionSpec("punch with left hand", "fight", punch, _uniform(1.4, 2.2), dict(side="left", speed=1.5)),
        ActionSpec("stretch", "exercise", stretch, _uniform(2.5, 3.5), dict()),
        ActionSpec("pick something up", "object", pick_up, _uniform(2.2, 3.0), dict()),
        ActionSpec("throw with right hand", "object", throw, _uniform(1.4, 2.0), dict(side="right")),
        ActionSpec("sit down and stand up", "posture", sit_stand, _uniform(3.5, 4.8), dict()),
        ActionSpec("stand still", "posture", stand, _uniform(1.0, 2.0), dict()),
        ActionSpec("turn around", "turn", turn, _uniform(1.4, 2.0), dict(degrees=180.0)),
        ActionSpec("hug", "interaction", hug, _uniform(2.4, 3.4), dict()),
        ActionSpec("shake hands", "interaction", handshake, _uniform(2.0, 3.0), dict(speed=2.4)),
        ActionSpec("high five", "interaction", high_five, _uniform(1.3, 1.8), dict()),
        ActionSpec("lean forward", "interaction", lean_in, _uniform(1.8, 2.6), dict(depth=30.0)),
        ActionSpec("salute", "gesture", salute, _uniform(1.8, 2.6), dict()),
        ActionSpec("point forward", "gesture", point, _uniform(1.6, 2.4), dict()),
        ActionSpec("shrug", "gesture", shrug, _uniform(1.4, 2.0), dict()),
        ActionSpec("look around", "gesture", look_around, _uniform(2.2, 3.2), dict(sweeps=1.0)),
        ActionSpec("crouch", "posture", crouch, _uniform(2.4, 3.4), dict()),
        ActionSpec("dance", "dance", dance_steps, _per_rep(0.72), dict(reps=4, cadence=1.4)),
        ActionSpec("stumble", "locomotion", stumble, _uniform(1.6, 2.1), dict()),
        ActionSpec("walk crouched", "locomotion", gait, _uniform(2.4, 3.6), dict(cadence=0.8, stride=20, knee=40, arm=10, elbow=40, lean=25, crouch=40.0)),
    ]
}  # fmt: skip
