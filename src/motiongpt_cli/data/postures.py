"""Whole-body and posture actions: bending the torso and the head, stretching, picking up, squats, crouching,
jumps (the only actions that leave the ground), kicks, sitting down and standing still."""

from __future__ import annotations

import numpy as np

from .pose import (
    L_ANKLE,
    L_HIP,
    L_KNEE,
    NECK,
    R_ANKLE,
    R_HIP,
    R_KNEE,
    SPINE1,
    SPINE2,
    SPINE3,
    Track,
    blank_track,
    envelope,
    sides,
)


def bow(t: np.ndarray, p: dict, rng: np.random.Generator) -> Track:
    tr = blank_track(t)
    env = envelope(t, t[-1] + 0.05, 0.6)
    for j in (SPINE1, SPINE2, SPINE3):
        tr.angles[:, j, 0] += p["depth"] / 3 * env
    tr.angles[:, NECK, 0] += 10.0 * env
    for _, _, shoulder, _, _ in sides("both"):
        tr.angles[:, shoulder, 0] += -0.9 * p["depth"] * env  # the arms keep hanging while the chest bends
    return tr


def lean_in(t: np.ndarray, p: dict, rng: np.random.Generator) -> Track:
    """Lean the torso and the head forward a little (as for a kiss on the cheek), hold, come back."""
    tr = blank_track(t)
    env = envelope(t, t[-1] + 0.05, 0.5)
    for j in (SPINE1, SPINE2, SPINE3):
        tr.angles[:, j, 0] += p["depth"] / 3 * env
    tr.angles[:, NECK, 0] += 14.0 * env
    tr.angles[:, NECK, 2] += 10.0 * env  # head tilted
    for _, _, shoulder, _, _ in sides("both"):
        tr.angles[:, shoulder, 0] += -0.8 * p["depth"] * env
    return tr


def look_around(t: np.ndarray, p: dict, rng: np.random.Generator) -> Track:
    """Turn the head (and a little the chest) to the left, then to the right, and back."""
    tr = blank_track(t)
    d = t[-1] + 0.05
    env = envelope(t, d, 0.3)
    yaw = np.sin(2 * np.pi * t / d * p.get("sweeps", 1.0)) * env
    tr.angles[:, NECK, 1] += 60.0 * yaw
    tr.angles[:, SPINE3, 1] += 15.0 * yaw
    tr.angles[:, SPINE2, 1] += 8.0 * yaw
    return tr


def nod(t: np.ndarray, p: dict, rng: np.random.Generator) -> Track:
    tr = blank_track(t)
    env = envelope(t, t[-1] + 0.05, 0.3)
    tr.angles[:, NECK, 0] += 28.0 * np.clip(np.sin(2 * np.pi * p["speed"] * t), 0, None) * env
    return tr


def stretch(t: np.ndarray, p: dict, rng: np.random.Generator) -> Track:
    tr = blank_track(t)
    env = envelope(t, t[-1] + 0.05, 0.6)
    for _, _, shoulder, _elbow, sign in sides("both"):
        tr.angles[:, shoulder, 2] += sign * 168.0 * env
    side_bend = np.sin(2 * np.pi * t / max(t[-1], 0.5))
    tr.angles[:, SPINE2, 2] += 18.0 * side_bend * env
    tr.angles[:, SPINE3, 2] += 10.0 * side_bend * env
    return tr


def pick_up(t: np.ndarray, p: dict, rng: np.random.Generator) -> Track:
    tr = blank_track(t)
    env = envelope(t, t[-1] + 0.05, 0.7)
    for j in (SPINE1, SPINE2, SPINE3):
        tr.angles[:, j, 0] += 26.0 * env
    for hip, knee, shoulder, _, _ in sides("both"):
        tr.angles[:, hip, 0] += -60.0 * env
        tr.angles[:, knee, 0] += 90.0 * env
        tr.angles[:, shoulder, 0] += -(3 * 26.0 + 15.0) * env  # arms hang from the bent chest and reach down
    tr.angles[:, L_ANKLE, 0] += -22.0 * env
    tr.angles[:, R_ANKLE, 0] += -22.0 * env
    return tr


def squat(t: np.ndarray, p: dict, rng: np.random.Generator) -> Track:
    tr = blank_track(t)
    reps = p["reps"]
    depth = np.clip(np.sin(np.pi * reps * t / (t[-1] + 0.05)), 0, None) ** 1.5
    for hip, knee, shoulder, _, _ in sides("both"):
        tr.angles[:, hip, 0] += -95.0 * depth
        tr.angles[:, knee, 0] += 115.0 * depth
        tr.angles[:, shoulder, 0] += -80.0 * depth  # arms forward for balance
    tr.angles[:, L_ANKLE, 0] += -25.0 * depth
    tr.angles[:, R_ANKLE, 0] += -25.0 * depth
    tr.angles[:, SPINE1, 0] += 20.0 * depth
    return tr


def crouch(t: np.ndarray, p: dict, rng: np.random.Generator) -> Track:
    """Go down into a deep knee bend, stay low a while (looking about a little), come back up."""
    tr = blank_track(t)
    d = t[-1] + 0.05
    low = envelope(t, d, 0.6)
    for hip, knee, shoulder, elbow, _ in sides("both"):
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
    tr = blank_track(t)
    reps, flight = p["reps"], p["flight"]
    period = (t[-1] + 0.05) / reps
    local = np.mod(t, period)
    crouch = np.exp(-(((local - 0.25 * period) / (0.12 * period)) ** 2)) + np.exp(
        -(((local - 0.92 * period) / (0.08 * period)) ** 2)
    )
    height, air = _ballistic(local, 0.4 * period, flight)
    legs = sides(p.get("legs", "both"))
    for hip, knee, _, _, _ in legs:
        tr.angles[:, hip, 0] += -40.0 * crouch * p.get("crouch", 1.0)
        tr.angles[:, knee, 0] += 60.0 * crouch * p.get("crouch", 1.0)
    if p.get("legs") in ("left", "right"):  # hop: the free leg is held up behind
        free_hip, free_knee = (R_HIP, R_KNEE) if p["legs"] == "left" else (L_HIP, L_KNEE)
        tr.angles[:, free_hip, 0] += -25.0
        tr.angles[:, free_knee, 0] += 85.0
    if p.get("jacks"):
        spread = 0.5 - 0.5 * np.cos(2 * np.pi * t / period)
        for hip, _, shoulder, _, sign in sides("both"):
            tr.angles[:, shoulder, 2] += sign * 150.0 * spread
            tr.angles[:, hip, 2] += sign * 14.0 * spread
    else:
        for _, _, shoulder, _, _ in sides("both"):
            tr.angles[:, shoulder, 0] += 40.0 * crouch - 60.0 * (height > 0)
    tr.lift[:] = height
    tr.airborne[:] = air
    tr.air_velocity[:, 1] = p.get("forward", 0.0)
    return tr


def kick(t: np.ndarray, p: dict, rng: np.random.Generator) -> Track:
    tr = blank_track(t)
    d = t[-1] + 0.05
    s = np.clip(t / d, 0, 1)
    (hip, knee, _, _, _) = sides(p["side"])[0]
    chamber = np.exp(-(((s - 0.35) / 0.12) ** 2))
    extend = np.exp(-(((s - 0.55) / 0.1) ** 2))
    tr.angles[:, hip, 0] += -50.0 * chamber - p["height"] * extend
    tr.angles[:, knee, 0] += 90.0 * chamber + 5.0 * extend
    tr.angles[:, SPINE1, 0] += -10.0 * extend  # lean back against the kick
    for _, _, shoulder, elbow, _ in sides("both"):
        tr.angles[:, shoulder, 0] += -30.0 * (chamber + extend)
        tr.angles[:, elbow, 0] += -60.0 * (chamber + extend)
    return tr


def sit_stand(t: np.ndarray, p: dict, rng: np.random.Generator) -> Track:
    """Sit down cross-legged on the floor, stay a moment, stand up."""
    tr = blank_track(t)
    d = t[-1] + 0.05
    s = np.clip(t / d, 0, 1)
    down = np.clip((s - 0.05) / 0.3, 0, 1)
    up = np.clip((s - 0.65) / 0.3, 0, 1)
    level = down * down * (3 - 2 * down) - up * up * (3 - 2 * up)
    for hip, knee, shoulder, _, sign in sides("both"):
        tr.angles[:, hip, 0] += -85.0 * level
        tr.angles[:, hip, 2] += sign * 40.0 * level
        tr.angles[:, hip, 1] += sign * 35.0 * level
        tr.angles[:, knee, 0] += 145.0 * level
        tr.angles[:, shoulder, 0] += -20.0 * level
    tr.angles[:, SPINE1, 0] += 15.0 * level
    return tr


def stand(t: np.ndarray, p: dict, rng: np.random.Generator) -> Track:
    return blank_track(t)
