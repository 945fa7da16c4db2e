"""Upper-body gestures: waving, clapping, raising the arms, punching, throwing, and greetings with a partner
(hug, handshake, high five), salute, pointing, shrug."""

from __future__ import annotations

import numpy as np

from .locomotion import step_forward
from .pose import (
    L_COLLAR,
    NECK,
    R_COLLAR,
    R_ELBOW,
    R_SHOULDER,
    SPINE1,
    SPINE2,
    SPINE3,
    Track,
    blank_track,
    envelope,
    sides,
)


def wave(t: np.ndarray, p: dict, rng: np.random.Generator) -> Track:
    tr = blank_track(t)
    env = envelope(t, t[-1] + 0.05, 0.4)
    for _, _, shoulder, elbow, sign in sides(p["side"]):
        tr.angles[:, shoulder, 2] += sign * 150.0 * env  # arm up beside the head
        tr.angles[:, elbow, 2] += sign * (-20.0 + 28.0 * np.sin(2 * np.pi * p["speed"] * t)) * env  # the hand waves
        tr.angles[:, elbow, 0] += -10.0 * env
    return tr


def clap(t: np.ndarray, p: dict, rng: np.random.Generator) -> Track:
    tr = blank_track(t)
    env = envelope(t, t[-1] + 0.05)
    open_close = 0.5 + 0.5 * np.sin(2 * np.pi * p["speed"] * t)
    for _, _, shoulder, elbow, sign in sides("both"):
        tr.angles[:, shoulder, 0] += -65.0 * env
        tr.angles[:, shoulder, 2] += sign * (-12.0 + 30.0 * open_close) * env
        tr.angles[:, elbow, 0] += -45.0 * env
    return tr


def raise_arms(t: np.ndarray, p: dict, rng: np.random.Generator) -> Track:
    tr = blank_track(t)
    env = envelope(t, t[-1] + 0.05, 0.5)
    for _, _, shoulder, _, sign in sides(p["side"]):
        tr.angles[:, shoulder, 2] += sign * 165.0 * env
    return tr


def punch(t: np.ndarray, p: dict, rng: np.random.Generator) -> Track:
    tr = blank_track(t)
    env = envelope(t, t[-1] + 0.05, 0.3)
    jab = np.clip(np.sin(2 * np.pi * p["speed"] * t), 0, None) ** 2
    (_, _, shoulder, elbow, sign) = sides(p["side"])[0]
    for _, _, sh, el, _ in sides("both"):  # both fists up in a guard
        tr.angles[:, sh, 0] += -50.0 * env
        tr.angles[:, el, 0] += -100.0 * env
    tr.angles[:, shoulder, 0] += -35.0 * jab * env
    tr.angles[:, elbow, 0] += 95.0 * jab * env  # the arm straightens into the punch
    tr.angles[:, SPINE2, 1] += -sign * 15.0 * jab * env
    return tr


def throw(t: np.ndarray, p: dict, rng: np.random.Generator) -> Track:
    tr = blank_track(t)
    d = t[-1] + 0.05
    s = np.clip(t / d, 0, 1)
    (_, _, shoulder, elbow, sign) = sides(p["side"])[0]
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
    tr = blank_track(t)
    d = t[-1] + 0.05
    step_forward(tr, t, 0.05, 0.35, 9.0, p.get("lead", "right"))
    env = envelope(t - 0.25, d - 0.25, 0.45) * (t > 0.25)
    squeeze = 1.0 + 0.08 * np.sin(2 * np.pi * t / max(d, 1.0)) ** 2
    for _, _, shoulder, elbow, sign in sides("both"):
        tr.angles[:, shoulder, 2] += sign * 70.0 * env  # upper arms raised ...
        tr.angles[:, shoulder, 1] += -sign * 80.0 * env  # ... and swung forward, elbows wide
        tr.angles[:, elbow, 0] += -70.0 * env * squeeze  # forearms wrap round the partner's back
    tr.angles[:, SPINE1, 0] += 6.0 * env
    tr.angles[:, SPINE3, 1] += 4.0 * np.sin(2 * np.pi * 0.6 * t) * env  # a gentle rock
    return tr


def handshake(t: np.ndarray, p: dict, rng: np.random.Generator) -> Track:
    """Right hand forward at waist height, pumped up and down a few times."""
    tr = blank_track(t)
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
    tr = blank_track(t)
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
    tr = blank_track(t)
    env = envelope(t, t[-1] + 0.05, 0.35)
    # upper arm raised out to the side and a little forward, forearm folded up so the wrist comes beside the brow
    # (solved on the rest skeleton: the wrist ends 16 cm to the right of the head joint, 10 cm in front)
    tr.angles[:, R_SHOULDER] += np.array([-30.0, 80.0, -120.0]) * env[:, None]
    tr.angles[:, R_ELBOW] += np.array([-90.0, -15.0, 0.0]) * env[:, None]
    return tr


def point(t: np.ndarray, p: dict, rng: np.random.Generator) -> Track:
    """Right arm extended straight forward at shoulder height."""
    tr = blank_track(t)
    env = envelope(t, t[-1] + 0.05, 0.4)
    tr.angles[:, R_SHOULDER, 0] += -88.0 * env
    tr.angles[:, R_SHOULDER, 1] += 6.0 * env
    tr.angles[:, R_ELBOW, 0] += 12.0 * env  # straight (the rest pose keeps it a little bent)
    tr.angles[:, NECK, 1] += -8.0 * env  # looks where it points
    return tr


def shrug(t: np.ndarray, p: dict, rng: np.random.Generator) -> Track:
    """Shoulders up, forearms out to the sides with the palms up, head tilted."""
    tr = blank_track(t)
    d = t[-1] + 0.05
    env = envelope(t, d, 0.35)
    lift = env * (0.85 + 0.15 * np.cos(2 * np.pi * t / max(d, 0.5)))
    tr.angles[:, L_COLLAR, 2] += 30.0 * lift
    tr.angles[:, R_COLLAR, 2] += -30.0 * lift
    for _, _, shoulder, elbow, sign in sides("both"):
        tr.angles[:, shoulder, 2] += sign * 18.0 * env
        tr.angles[:, shoulder, 1] += sign * 45.0 * env  # upper arm turned so the forearm points outwards
        tr.angles[:, elbow, 0] += -80.0 * env
    tr.angles[:, NECK, 2] += 12.0 * env
    return tr
