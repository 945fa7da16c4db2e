"""Locomotion actions: walking gaits, side steps, turns, dance steps and a stumble.

They lift and plant the feet and say which foot is planted (``Track.stance``); the synthesiser moves the body
over that foot, so none of them sets a velocity.
"""

from __future__ import annotations

import numpy as np

from .pose import (
    L_ANKLE,
    L_ELBOW,
    L_HIP,
    L_KNEE,
    L_SHOULDER,
    NECK,
    PELVIS,
    R_ANKLE,
    R_ELBOW,
    R_HIP,
    R_KNEE,
    R_SHOULDER,
    SPINE1,
    SPINE2,
    Track,
    base_pose,
    blank_track,
    envelope,
    sides,
)


def gait(t: np.ndarray, p: dict, rng: np.random.Generator) -> Track:
    """Walk / jog / run / walk backwards: alternating legs; the planted foot drives the body."""
    tr = blank_track(t)
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
    tr = blank_track(t)
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
    tr = blank_track(t)
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


def step_forward(tr: Track, t: np.ndarray, start: float, swing: float, size: float, lead: str) -> None:
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
    tr = blank_track(t)
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
    for _, _, shoulder, elbow, s in sides("both"):
        a[:, shoulder, 0] += -45.0 * env
        a[:, shoulder, 2] += s * 20.0 * env
        a[:, shoulder, 1] += 30.0 * swing * env
        a[:, elbow, 0] += -75.0 * env
    a[:, SPINE2, 1] += 10.0 * swing * env
    a[:, SPINE1, 2] += -6.0 * sign * np.sin(phase / 2) ** 2 * env  # hips sway with the step
    return tr


def stumble(t: np.ndarray, p: dict, rng: np.random.Generator) -> Track:
    """A sudden lurch forward: the torso pitches, the arms fly out, a quick long step catches it, then recovery."""
    tr = blank_track(t)
    d = t[-1] + 0.05
    start, swing = 0.15, 0.28
    step_forward(tr, t, start, swing, 24.0, p.get("lead", "right"))
    lurch = np.exp(-(((t - start - swing) / 0.25) ** 2))
    tr.angles[:, SPINE1, 0] += 22.0 * lurch
    tr.angles[:, SPINE2, 0] += 10.0 * lurch
    tr.angles[:, NECK, 0] += -12.0 * lurch  # the head stays up
    for _, _, shoulder, elbow, sign in sides("both"):
        tr.angles[:, shoulder, 0] += -55.0 * lurch
        tr.angles[:, shoulder, 2] += sign * 35.0 * lurch
        tr.angles[:, elbow, 0] += -30.0 * lurch
    # a second, smaller balancing step
    second = blank_track(t)
    step_forward(second, t, start + 2 * swing, 0.3, 8.0, "left" if p.get("lead", "right") == "right" else "right")
    tr.angles += second.angles - base_pose(len(t))
    tr.stance = np.where(second.stance >= 0, second.stance, tr.stance)
    del d
    return tr
