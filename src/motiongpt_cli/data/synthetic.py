"""A procedural dual-text motion corpus in the HumanML3D layout (``motiongpt data synth``).

Each clip chains 1-4 atomic actions (:mod:`.actions`) with 0.4 s blends. Joint angles go through forward kinematics
on the HumanML3D rest skeleton; the body is then placed in the world: its height keeps the lowest foot on the floor
(plus a ballistic height in jumps), its heading integrates the actions' yaw rates, and while on the ground it moves
so that the planted foot (the lower one) does not slide. Texts follow the paper's structure: the low-level text is
the action labels in time order (BABEL style); the three high-level captions mix literal paraphrases with
intent-level captions ("someone greets a friend") that do not name the actions, and every intent has several
different realisations (greet: wave / bow / nod ...).
"""

from __future__ import annotations

import numpy as np

from ..motion import rotations as rot
from ..motion.kinematics import tree_forward_kinematics
from ..motion.skeleton import FPS, PARENTS, TARGET_OFFSETS
from .actions import ACTIONS, Track

BLEND_SECONDS = 0.4
FEET = ((7, 10), (8, 11))  # (ankle, foot) left, right

# intent -> realisations (each a list of action labels) and captions that never name the actions
INTENTS: dict[str, tuple[list[list[str]], list[str]]] = {
    "greet": (
        [["wave right hand"], ["wave left hand"], ["wave both hands"], ["bow"], ["nod"], ["nod", "wave right hand"],
         ["hug"], ["shake hands"], ["walk", "hug"], ["shake hands", "nod"], ["wave right hand", "hug"],
         ["lean forward", "hug"], ["bow", "shake hands"]],
        ["a person greets a friend", "someone says hello to somebody", "a person welcomes a guest",
         "a person meets a friend and says hi", "someone greets an old friend warmly"],
    ),
    "exercise": (
        [["squat"], ["jumping jacks"], ["stretch"], ["stretch", "squat"], ["jumping jacks", "squat"]],
        ["a person exercises", "someone does a workout", "a person warms up for training"],
    ),
    "celebrate": (
        [["jump in place"], ["raise both arms"], ["clap"], ["jump in place", "raise both arms"], ["spin around", "clap"],
         ["dance"], ["high five"], ["jump in place", "high five"], ["clap", "dance"], ["raise both arms", "dance"]],
        ["a person celebrates", "someone cheers after winning", "a person is very happy about good news"],
    ),
    "fight": (
        [["punch with right hand"], ["punch with left hand", "punch with right hand"], ["kick with right leg"],
         ["kick with left leg"], ["punch with right hand", "kick with left leg"]],
        ["a person fights an opponent", "someone practices martial arts", "a person defends themselves"],
    ),
    "play": (
        [["pick something up", "throw with right hand"], ["throw with right hand"], ["kick with right leg"]],
        ["a person plays with a ball", "someone plays a game outside", "a person plays catch"],
    ),
    "leave": (
        [["turn left", "walk"], ["turn right", "walk"], ["walk"], ["jog"], ["turn left", "jog"], ["turn around", "walk"]],
        ["a person leaves the room", "someone goes away", "a person heads off somewhere"],
    ),
    "rest": (
        [["sit down and stand up"], ["stand still"], ["stretch", "sit down and stand up"]],
        ["a person takes a short break", "someone rests for a moment", "a person relaxes"],
    ),
    "dance": (
        [["spin around"], ["step to the left", "step to the right"], ["clap", "spin around"],
         ["step to the right", "clap"], ["step to the left", "spin around"]],
        ["a person dances", "someone dances to music", "a person moves to the rhythm"],
    ),
    "say goodbye": (
        [["wave right hand"], ["hug"], ["salute"], ["hug", "wave right hand"], ["salute", "turn around", "walk"],
         ["wave both hands", "turn around"], ["shake hands", "turn around", "walk"], ["lean forward", "wave right hand"]],
        ["a person says goodbye", "someone bids farewell to a friend", "a person takes leave of somebody"],
    ),
    "look for something": (
        [["look around"], ["look around", "crouch"], ["crouch", "look around"], ["look around", "point forward"],
         ["walk", "look around"], ["crouch", "pick something up"], ["walk crouched", "look around"]],
        ["a person searches for something", "someone hunts for a lost item", "a person tries to find their keys"],
    ),
    "be confused": (
        [["shrug"], ["look around", "shrug"], ["shrug", "look around"], ["look around", "shrug", "look around"]],
        ["a person is confused", "someone does not know the answer", "a person is puzzled"],
    ),
    "show the way": (
        [["point forward", "walk"], ["point forward"], ["look around", "point forward"], ["turn left", "point forward"],
         ["point forward", "turn around", "walk"]],
        ["a person shows somebody the way", "someone gives directions", "a person shows where to go"],
    ),
    "trip": (
        [["walk", "stumble"], ["stumble"], ["jog", "stumble"], ["stumble", "walk"]],
        ["a person trips over something", "someone loses their balance", "a person nearly falls"],
    ),
    "honour": (
        [["salute"], ["bow"], ["salute", "bow"], ["stand still", "salute"]],
        ["a person pays respect", "someone honours a flag", "a person shows respect to an officer"],
    ),
}  # fmt: skip

PHRASES: dict[str, list[str]] = {
    "walk": ["walks forward", "walks ahead", "takes a few steps forward"],
    "jog": ["jogs forward", "jogs ahead"],
    "run": ["runs forward", "runs ahead quickly"],
    "walk backwards": ["walks backwards", "steps backwards"],
    "step to the left": ["steps to the left", "side steps to the left"],
    "step to the right": ["steps to the right", "side steps to the right"],
    "turn left": ["turns left", "turns to the left"],
    "turn right": ["turns right", "turns to the right"],
    "spin around": ["spins around", "turns around in a full circle"],
    "wave right hand": ["waves with the right hand", "waves the right hand"],
    "wave left hand": ["waves with the left hand", "waves the left hand"],
    "wave both hands": ["waves with both hands", "waves both arms above the head"],
    "bow": ["bows", "bends forward in a bow"],
    "nod": ["nods", "nods the head"],
    "clap": ["claps", "claps the hands"],
    "raise both arms": ["raises both arms", "lifts both arms up"],
    "squat": ["squats", "does squats"],
    "jump in place": ["jumps in place", "jumps up and down"],
    "jump forward": ["jumps forward", "leaps forward"],
    "hop on left leg": ["hops on the left leg", "hops on the left foot"],
    "hop on right leg": ["hops on the right leg", "hops on the right foot"],
    "jumping jacks": ["does jumping jacks", "does star jumps"],
    "kick with right leg": ["kicks with the right leg", "kicks the right foot forward"],
    "kick with left leg": ["kicks with the left leg", "kicks the left foot forward"],
    "punch with right hand": ["punches with the right hand", "throws a right punch"],
    "punch with left hand": ["punches with the left hand", "throws a left punch"],
    "stretch": ["stretches", "stretches the arms over the head"],
    "pick something up": ["picks something up", "bends down and picks up an object"],
    "throw with right hand": ["throws with the right hand", "throws something with the right arm"],
    "sit down and stand up": ["sits down on the floor and stands up", "sits on the ground and gets up again"],
    "stand still": ["stands still", "stands in place"],
    "turn around": ["turns around", "turns to face the other way"],
    "hug": ["hugs someone", "gives somebody a hug", "wraps both arms around someone"],
    "shake hands": ["shakes hands", "shakes somebody's hand", "shakes hands with the right hand"],
    "high five": ["gives a high five", "high fives someone with the right hand"],
    "lean forward": ["leans forward", "leans in", "leans in for a kiss"],
    "salute": ["salutes", "salutes with the right hand", "raises the right hand to the forehead"],
    "point forward": ["points forward", "points ahead with the right arm", "points at something in front"],
    "shrug": ["shrugs", "shrugs the shoulders"],
    "look around": ["looks around", "looks to the left and to the right", "turns the head to look around"],
    "crouch": ["crouches down", "crouches low", "squats down and stays low"],
    "dance": ["dances", "does dance steps", "dances from side to side"],
    "stumble": ["stumbles", "stumbles forward", "trips and catches the balance"],
    "walk crouched": ["walks forward crouching", "sneaks forward bent low", "creeps forward in a crouch"],
}
SUBJECTS = ["a person", "someone", "a man", "a woman", "the person"]


def local_rotations(angles_deg: np.ndarray) -> np.ndarray:
    """``(T, 22, 3)`` degrees ``[x, y, z]`` -> ``(T, 22, 3, 3)`` with ``R = Ry(y) @ Rx(x) @ Rz(z)``.

    Shoulder angles are meant in the chest's frame, not the collar's: the collar's own rotation (which swings the
    collar bone outwards) is undone, so "arm forward" is a rotation about the body's x axis whatever the collar does.
    """
    yxz = np.deg2rad(angles_deg[..., [1, 0, 2]])
    mats = rot.numpy_call(rot.euler_to_matrix, yxz, order="YXZ")
    for collar, shoulder in ((13, 16), (14, 17)):
        mats[:, shoulder] = np.swapaxes(mats[:, collar], -1, -2) @ mats[:, shoulder]
    return mats


def pose_joints(angles_deg: np.ndarray) -> np.ndarray:
    """Body-frame joints ``(T, 22, 3)``: pelvis at the origin, facing +Z."""
    frames = angles_deg.shape[0]
    translations = np.broadcast_to(TARGET_OFFSETS, (frames, 22, 3)).copy()
    translations[:, 0] = 0.0
    return tree_forward_kinematics(local_rotations(angles_deg), translations, PARENTS)[0]


def place_in_world(body: np.ndarray, track: Track) -> np.ndarray:
    """Ground, turn and move body-frame joints so the planted foot does not slide. ``(T, 22, 3)`` metres."""
    frames = body.shape[0]
    heading = np.deg2rad(np.cumsum(track.yaw_rate) / FPS)
    cos, sin = np.cos(heading), np.sin(heading)
    turn = np.zeros((frames, 3, 3))
    turn[:, 0, 0], turn[:, 0, 2], turn[:, 1, 1], turn[:, 2, 0], turn[:, 2, 2] = cos, sin, 1.0, -sin, cos
    turned = np.einsum("tab,tjb->tja", turn, body)
    height = -turned[..., 1].min(axis=1) + track.lift  # the lowest point touches the floor
    foot_height = np.stack([turned[:, list(f), 1].min(axis=1) for f in FEET], axis=1)
    foot_xz = np.stack([turned[:, list(f)][..., [0, 2]].mean(axis=1) for f in FEET], axis=1)  # (T, 2, 2)
    root = np.zeros((frames, 2))
    stance = int(np.argmin(foot_height[0]))
    for t in range(1, frames):
        if track.airborne[t]:
            v = track.air_velocity[t]
            root[t] = root[t - 1] + (np.array([cos[t] * v[0] + sin[t] * v[1], -sin[t] * v[0] + cos[t] * v[1]]) / FPS)
            continue
        if track.stance is not None and track.stance[t] >= 0:  # the action knows its gait phase
            stance = int(track.stance[t])
        else:
            lower = int(np.argmin(foot_height[t]))
            if lower != stance and foot_height[t, stance] - foot_height[t, lower] > 0.01:  # hysteresis: 1 cm
                stance = lower
        # keep the stance foot where it was in the previous frame
        root[t] = root[t - 1] + foot_xz[t - 1, stance] - foot_xz[t, stance]
    world = turned.copy()
    world[..., 0] += root[:, None, 0]
    world[..., 2] += root[:, None, 1]
    world[..., 1] += height[:, None]
    return world


def chain_actions(labels: list[str], rng: np.random.Generator) -> tuple[Track, list[tuple[str, int, int]]]:
    """One track for the labelled actions in order, blended, with per-clip variation; plus (label, start, end)."""
    tracks, segments, start = [], [], 0
    speed = float(rng.uniform(0.9, 1.1))
    amplitude = float(rng.uniform(0.85, 1.1))
    for label in labels:
        spec = ACTIONS[label]
        params = dict(spec.params)
        for key in ("stride", "knee", "arm", "depth", "height"):
            if key in params:
                params[key] *= amplitude
        for key in ("cadence", "speed"):
            if key in params:
                params[key] *= speed
        frames = max(int(round(spec.duration(params, rng) * FPS)), 8)
        t = np.arange(frames) / FPS
        track = spec.make(t, params, rng)
        tracks.append(track)
        segments.append((label, start, start + frames))
        start += frames
    total = start
    out = Track(
        angles=np.concatenate([tr.angles for tr in tracks]),
        yaw_rate=np.concatenate([tr.yaw_rate for tr in tracks]),
        lift=np.concatenate([tr.lift for tr in tracks]),
        airborne=np.concatenate([tr.airborne for tr in tracks]),
        air_velocity=np.concatenate([tr.air_velocity for tr in tracks]),
        stance=np.concatenate([tr.stance if tr.stance is not None else np.full(len(tr.lift), -1) for tr in tracks]),
    )
    blend = int(BLEND_SECONDS * FPS)
    for (_, seg_start, _), track in zip(segments[1:], tracks[1:], strict=True):
        previous = out.angles[seg_start - 1].copy()
        n = min(blend, len(track.angles))
        w = np.linspace(0, 1, n + 2)[1:-1]
        w = (w * w * (3 - 2 * w))[:, None, None]
        out.angles[seg_start : seg_start + n] = (1 - w) * previous + w * out.angles[seg_start : seg_start + n]
    # small per-clip idle sway of the torso and head
    t = np.arange(total) / FPS
    phase = rng.uniform(0, 2 * np.pi, 3)
    out.angles[:, 3, 2] += 2.0 * np.sin(2 * np.pi * 0.3 * t + phase[0])
    out.angles[:, 6, 0] += 1.5 * np.sin(2 * np.pi * 0.25 * t + phase[1])
    out.angles[:, 12, 1] += 4.0 * np.sin(2 * np.pi * 0.2 * t + phase[2])
    return out, segments


def describe(labels: list[str], rng: np.random.Generator, intent: str | None) -> list[str]:
    """Three high-level captions: intent-level ones (if any) plus literal paraphrases."""
    subject = SUBJECTS[int(rng.integers(len(SUBJECTS)))]

    def literal() -> str:
        phrases = [PHRASES[label][int(rng.integers(len(PHRASES[label])))] for label in labels]
        if len(phrases) == 1:
            return f"{subject} {phrases[0]}"
        joiner = " and then " if rng.random() < 0.5 else ", then "
        return f"{subject} " + ", ".join(phrases[:-1]) + joiner + phrases[-1]

    if intent is None:
        captions = {literal() for _ in range(12)}
        out = sorted(captions)[:3]
        while len(out) < 3:
            out.append(out[-1])
        return out
    pool = list(INTENTS[intent][1])
    rng.shuffle(pool)
    return [pool[0], pool[1], literal()]


def plan_clip(rng: np.random.Generator, min_seconds: float, max_seconds: float) -> tuple[list[str], str | None]:
    """Pick the action labels of a clip (1-4 actions) and its intent (None for a literal clip)."""
    labels: list[str]
    intent: str | None = None
    if rng.random() < 0.6:
        intent = sorted(INTENTS)[int(rng.integers(len(INTENTS)))]
        options = INTENTS[intent][0]
        labels = list(options[int(rng.integers(len(options)))])
        if intent != "leave" and len(labels) < 3 and rng.random() < 0.35:  # e.g. walk up to someone, then greet
            approach = ["walk", "turn left", "turn right", "jog"][int(rng.integers(4))]
            if approach != labels[0]:  # BABEL merges repeats in a row, so "walk, walk" would not survive prepare
                labels.insert(0, approach)
    else:
        names = sorted(ACTIONS)
        labels = []
        for _ in range(int(rng.integers(1, 5))):
            choices = [name for name in names if not labels or name != labels[-1]]
            labels.append(choices[int(rng.integers(len(choices)))])
    return labels, intent


def synthesize_clip(seed: int | np.random.Generator, *, min_seconds: float = 2.0, max_seconds: float = 9.8) -> dict:
    """One clip: ``joints (T, 22, 3)``, ``segments`` [(label, start, end) frames], ``low``, ``high`` (3), ``intent``."""
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    for _ in range(20):
        labels, intent = plan_clip(rng, min_seconds, max_seconds)
        track, segments = chain_actions(labels, rng)
        frames = len(track.angles)
        if frames < min_seconds * FPS and len(labels) < 4 and labels[-1] != "stand still":  # too short: close it
            labels.append("stand still")
            track, segments = chain_actions(labels, rng)
            frames = len(track.angles)
        if min_seconds * FPS <= frames <= max_seconds * FPS:
            break
    else:  # pragma: no cover - the durations make this practically unreachable
        raise RuntimeError("could not plan a clip within the length bounds")
    joints = place_in_world(pose_joints(track.angles), track).astype(np.float32)
    return {
        "joints": joints,
        "segments": segments,
        "low": ", ".join(label for label, _, _ in segments),
        "high": describe([label for label, _, _ in segments], rng, intent),
        "intent": intent,
    }
