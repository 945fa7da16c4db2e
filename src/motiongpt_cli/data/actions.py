"""The registry of synthetic atomic actions: each BABEL-style label with its family, the function that makes its
track (:mod:`.locomotion`, :mod:`.gestures`, :mod:`.postures`), how long it lasts and its parameters.

The pose conventions are in :mod:`.pose`; :class:`Track` and :class:`ActionSpec` are re-exported from there.
"""

from __future__ import annotations

from .gestures import clap, handshake, high_five, hug, point, punch, raise_arms, salute, shrug, throw, wave
from .locomotion import dance_steps, gait, side_step, stumble, turn
from .pose import ActionSpec, Track, per_rep, uniform
from .postures import bow, crouch, jump, kick, lean_in, look_around, nod, pick_up, sit_stand, squat, stand, stretch

__all__ = ["ACTIONS", "ActionSpec", "Track"]

ACTIONS: dict[str, ActionSpec] = {
    spec.label: spec
    for spec in [
        ActionSpec("walk", "locomotion", gait, uniform(2.0, 3.5), dict(cadence=0.95, stride=24, knee=45, arm=18, elbow=10)),
        ActionSpec("jog", "locomotion", gait, uniform(1.6, 2.8), dict(cadence=1.35, stride=30, knee=75, arm=28, elbow=70, lean=8)),
        ActionSpec("run", "locomotion", gait, uniform(1.4, 2.4), dict(cadence=1.6, stride=38, knee=95, arm=38, elbow=85, lean=14)),
        ActionSpec("walk backwards", "locomotion", gait, uniform(2.0, 3.2), dict(cadence=0.85, stride=18, knee=35, arm=12, direction=-1.0)),
        ActionSpec("step to the left", "locomotion", side_step, uniform(1.6, 2.6), dict(side="left", cadence=0.9)),
        ActionSpec("step to the right", "locomotion", side_step, uniform(1.6, 2.6), dict(side="right", cadence=0.9)),
        ActionSpec("turn left", "turn", turn, uniform(1.2, 1.8), dict(degrees=90.0)),
        ActionSpec("turn right", "turn", turn, uniform(1.2, 1.8), dict(degrees=-90.0)),
        ActionSpec("spin around", "turn", turn, uniform(1.6, 2.4), dict(degrees=360.0)),
        ActionSpec("wave right hand", "gesture", wave, uniform(1.8, 3.0), dict(side="right", speed=2.0)),
        ActionSpec("wave left hand", "gesture", wave, uniform(1.8, 3.0), dict(side="left", speed=2.0)),
        ActionSpec("wave both hands", "gesture", wave, uniform(1.8, 3.0), dict(side="both", speed=2.0)),
        ActionSpec("bow", "gesture", bow, uniform(1.8, 2.6), dict(depth=70.0)),
        ActionSpec("nod", "gesture", nod, uniform(1.2, 2.0), dict(speed=1.5)),
        ActionSpec("clap", "gesture", clap, uniform(1.6, 2.6), dict(speed=2.2)),
        ActionSpec("raise both arms", "gesture", raise_arms, uniform(1.8, 2.8), dict(side="both")),
        ActionSpec("squat", "exercise", squat, per_rep(1.6), dict(reps=2)),
        ActionSpec("jump in place", "jump", jump, per_rep(0.9), dict(reps=2, flight=0.32)),
        ActionSpec("jump forward", "jump", jump, per_rep(1.0), dict(reps=1, flight=0.36, forward=1.6)),
        ActionSpec("hop on left leg", "jump", jump, per_rep(0.7), dict(reps=3, flight=0.22, legs="left", crouch=0.6)),
        ActionSpec("hop on right leg", "jump", jump, per_rep(0.7), dict(reps=3, flight=0.22, legs="right", crouch=0.6)),
        ActionSpec("jumping jacks", "exercise", jump, per_rep(0.85), dict(reps=3, flight=0.2, jacks=True, crouch=0.4)),
        ActionSpec("kick with right leg", "fight", kick, uniform(1.2, 1.7), dict(side="right", height=85.0)),
        ActionSpec("kick with left leg", "fight", kick, uniform(1.2, 1.7), dict(side="left", height=85.0)),
        ActionSpec("punch with right hand", "fight", punch, uniform(1.4, 2.2), dict(side="right", speed=1.5)),
        ActionSpec("punch with left hand", "fight", punch, uniform(1.4, 2.2), dict(side="left", speed=1.5)),
        ActionSpec("stretch", "exercise", stretch, uniform(2.5, 3.5), dict()),
        ActionSpec("pick something up", "object", pick_up, uniform(2.2, 3.0), dict()),
        ActionSpec("throw with right hand", "object", throw, uniform(1.4, 2.0), dict(side="right")),
        ActionSpec("sit down and stand up", "posture", sit_stand, uniform(3.5, 4.8), dict()),
        ActionSpec("stand still", "posture", stand, uniform(1.0, 2.0), dict()),
        ActionSpec("turn around", "turn", turn, uniform(1.4, 2.0), dict(degrees=180.0)),
        ActionSpec("hug", "interaction", hug, uniform(2.4, 3.4), dict()),
        ActionSpec("shake hands", "interaction", handshake, uniform(2.0, 3.0), dict(speed=2.4)),
        ActionSpec("high five", "interaction", high_five, uniform(1.3, 1.8), dict()),
        ActionSpec("lean forward", "interaction", lean_in, uniform(1.8, 2.6), dict(depth=30.0)),
        ActionSpec("salute", "gesture", salute, uniform(1.8, 2.6), dict()),
        ActionSpec("point forward", "gesture", point, uniform(1.6, 2.4), dict()),
        ActionSpec("shrug", "gesture", shrug, uniform(1.4, 2.0), dict()),
        ActionSpec("look around", "gesture", look_around, uniform(2.2, 3.2), dict(sweeps=1.0)),
        ActionSpec("crouch", "posture", crouch, uniform(2.4, 3.4), dict()),
        ActionSpec("dance", "dance", dance_steps, per_rep(0.72), dict(reps=4, cadence=1.4)),
        ActionSpec("stumble", "locomotion", stumble, uniform(1.6, 2.1), dict()),
        ActionSpec("walk crouched", "locomotion", gait, uniform(2.4, 3.6), dict(cadence=0.8, stride=20, knee=40, arm=10, elbow=40, lean=25, crouch=40.0)),
    ]
}  # fmt: skip
