"""The synthetic corpus: recognisable, physically plausible actions; paper-style texts; the HumanML3D layout."""

from __future__ import annotations

import json

import numpy as np
import pytest

from motiongpt_cli.data.actions import ACTIONS
from motiongpt_cli.data.babel import load_babel
from motiongpt_cli.data.corpus import _foot_skate, generate_corpus, tag_caption
from motiongpt_cli.data.humanml3d import read_captions, read_split
from motiongpt_cli.data.prepare import build_records
from motiongpt_cli.data.synthetic import INTENTS, PHRASES, chain_actions, place_in_world, pose_joints, synthesize_clip
from motiongpt_cli.errors import MotionGPTError
from motiongpt_cli.motion.skeleton import TARGET_BONE_LENGTHS, bone_lengths_of


def act(label: str, seed: int = 0) -> np.ndarray:
    track, _ = chain_actions([label], np.random.default_rng(seed))
    return place_in_world(pose_joints(track.angles), track)


def heading(joints: np.ndarray) -> np.ndarray:
    """Body-forward angle (degrees, counterclockwise seen from above) per frame from the hips."""
    across = joints[:, 1] - joints[:, 2]  # right -> left hip
    forward = np.cross([0.0, 1.0, 0.0], across)  # y x (left) = forward... sign fixed by the rest pose facing +Z
    forward = -forward if np.cross([0.0, 1.0, 0.0], [1.0, 0.0, 0.0])[2] < 0 else forward
    return np.rad2deg(np.unwrap(np.arctan2(forward[:, 0], forward[:, 2])))


def test_at_least_24_actions_in_the_library():
    assert len(ACTIONS) >= 24 and set(PHRASES) == set(ACTIONS)


def body_frame(joints: np.ndarray) -> np.ndarray:
    """Joints relative to the pelvis on the floor, turned so the body faces +Z (left +X) in every frame."""
    yaw = np.deg2rad(heading(joints))
    cos, sin = np.cos(yaw), np.sin(yaw)
    rel = joints - joints[:, :1] * np.array([1.0, 0.0, 1.0])
    x, z = rel[..., 0], rel[..., 2]
    return np.stack([cos[:, None] * x - sin[:, None] * z, rel[..., 1], sin[:, None] * x + cos[:, None] * z], axis=-1)


def peak(joints: np.ndarray) -> np.ndarray:
    """The middle frame of a held gesture (the envelopes peak there)."""
    return body_frame(joints)[len(joints) // 2]


@pytest.mark.parametrize("seed", [0, 1])
def test_hug_wraps_both_arms_in_front_of_the_chest(seed):
    j = act("hug", seed)
    p = peak(j)
    shoulder_width = np.linalg.norm(p[16] - p[17])
    for wrist in (20, 21):
        assert p[wrist, 2] - p[9, 2] > 0.2  # in front of the chest (spine3)
        assert abs(p[wrist, 1] - p[9, 1]) < 0.2  # at chest height
    assert np.linalg.norm(p[20] - p[21]) <= shoulder_width  # measured 0.13 m vs 0.53 m
    assert j[-1, 0, 2] - j[0, 0, 2] > 0.1  # a small step in


def test_handshake_pumps_the_right_hand_at_waist_height():
    j = body_frame(act("shake hands"))
    mid = j[len(j) // 4 : 3 * len(j) // 4]
    wrist = mid[:, 21]
    assert 0.85 < np.median(wrist[:, 1]) < 1.15  # waist height (standing pelvis 0.89 m)
    assert (wrist[:, 2] > 0.3).all()  # in front of the pelvis
    assert (mid[:, 20, 1] < 0.8).all()  # the left hand hangs
    heights = wrist[:, 1] - wrist[:, 1].mean()
    assert np.ptp(wrist[:, 1]) > 0.1 and len(np.flatnonzero(np.diff(np.sign(heights)))) >= 3  # up and down


def test_salute_brings_the_right_hand_to_the_brow():
    p = peak(act("salute"))
    assert np.linalg.norm(p[21] - p[15]) < 0.25  # measured 0.19 m
    assert p[21, 1] > p[17, 1] + 0.2 and p[21, 0] < p[15, 0]  # up at head height, on the right side


def test_point_extends_the_right_arm_forward_at_shoulder_height():
    p = peak(act("point forward"))
    assert p[21, 2] - p[17, 2] > 0.45  # measured 0.53 m in front of the shoulder
    assert abs(p[21, 1] - p[17, 1]) < 0.08
    assert p[20, 1] < p[0, 1]  # the left arm hangs


def test_high_five_raises_the_right_hand_up_and_forward():
    p = peak(act("high five"))
    assert p[21, 1] > p[15, 1] and p[21, 2] > 0.25
    assert p[20, 1] < p[0, 1]


def test_shrug_lifts_the_shoulders_and_turns_the_forearms_out():
    j = body_frame(act("shrug"))
    p = j[len(j) // 2]
    assert (p[[16, 17], 1] - j[0, [16, 17], 1] > 0.03).all()  # shoulders up (measured about 6 cm)
    assert p[20, 0] > p[18, 0] + 0.1 and p[21, 0] < p[19, 0] - 0.1  # forearms point outwards
    assert (p[[20, 21], 1] > p[[18, 19], 1] - 0.05).all()  # held up, not hanging


def test_look_around_turns_the_head_both_ways():
    j = body_frame(act("look around"))
    gaze = j[:, 15] - j[:, 12]  # neck -> head points up and forward; its yaw is where the face looks
    yaw = np.rad2deg(np.arctan2(gaze[:, 0], gaze[:, 2]))
    assert yaw.max() > 30 and yaw.min() < -30  # left (+) and right (-)
    assert abs(yaw[0]) < 15 and abs(yaw[-1]) < 15


def test_lean_forward_brings_the_head_forward_a_little():
    j = body_frame(act("lean forward"))
    p = j[len(j) // 2]
    assert 0.1 < p[15, 2] - j[0, 15, 2] < 0.4 and p[15, 1] > j[0, 15, 1] - 0.15  # not a bow


def test_crouch_stays_low():
    j = act("crouch")
    standing = act("stand still")[:, 0, 1].mean()
    middle = j[len(j) // 3 : 2 * len(j) // 3, 0, 1]
    assert middle.max() < 0.55 * standing  # measured 0.35 m against 0.89 m standing
    assert np.abs(j[-1, 0, [0, 2]] - j[0, 0, [0, 2]]).max() < 0.05  # on the spot


def test_turn_around_faces_the_other_way_on_the_spot():
    j = act("turn around")
    h = heading(j)
    assert abs((h[-1] - h[0]) - 180) < 12
    assert np.linalg.norm(j[-1, 0, [0, 2]] - j[0, 0, [0, 2]]) < 0.3


def test_stumble_lurches_forward_and_recovers():
    j = act("stumble")
    assert j[-1, 0, 2] - j[0, 0, 2] > 0.5  # a long catching step
    lean = j[:, 15, 2] - j[:, 0, 2]
    assert lean.max() > 0.15 and lean[-1] < 0.1  # the torso pitches forward, then comes back up


def test_dance_steps_both_ways_with_the_arms_up():
    j = act("dance")
    x = j[:, 0, 0] - j[0, 0, 0]
    assert x.max() > 0.15 and x.min() < x.max() - 0.15  # to the left and back to the right
    assert abs(j[-1, 0, 2] - j[0, 0, 2]) < 0.15  # no drift forwards
    assert (j[len(j) // 2, [20, 21], 1] > 1.0).all()


def test_walk_crouched_moves_forward_low():
    j = act("walk crouched")
    assert j[-1, 0, 2] - j[0, 0, 2] > 1.0 and j[:, 0, 1].max() < 0.82


@pytest.mark.parametrize("label", sorted(ACTIONS))
def test_every_action_is_physically_plausible(label):
    joints = act(label)
    assert np.abs(bone_lengths_of(joints)[:, 1:] - TARGET_BONE_LENGTHS[1:]).max() < 1e-5  # rigid bones
    assert joints[..., 1].min() > -0.01  # nothing below the floor
    assert np.all(np.isfinite(joints))
    # the body is the right way up: head above the pelvis
    assert (joints[:, 15, 1] > joints[:, 0, 1]).all()


def test_walk_moves_forward_at_walking_speed_with_alternating_feet():
    joints = act("walk")
    seconds = (len(joints) - 1) / 20
    displacement = joints[-1, 0] - joints[0, 0]
    assert 1.0 < displacement[2] / seconds < 1.8 and abs(displacement[0]) < 0.15  # m/s along +Z
    lower = np.argmin(joints[:, [10, 11], 1], axis=1)
    assert len(np.flatnonzero(np.diff(lower))) >= 2  # the planted foot changes sides
    run = act("run")
    assert (run[-1, 0, 2] - run[0, 0, 2]) / ((len(run) - 1) / 20) > 2.5  # measured 3.06 m/s (walk 1.17)


def test_walk_backwards_and_side_steps_go_the_right_way():
    assert act("walk backwards")[-1, 0, 2] < -0.5
    assert act("step to the left")[-1, 0, 0] > 0.15  # the body's left is +X
    assert act("step to the right")[-1, 0, 0] < -0.15


@pytest.mark.parametrize(("label", "degrees"), [("turn left", 90), ("turn right", -90), ("spin around", 360)])
def test_turns(label, degrees):
    h = heading(act(label))
    assert abs((h[-1] - h[0]) - degrees) < 12


def test_jumps_leave_the_floor():
    for label, clearance in (("jump in place", 0.08), ("jump forward", 0.08), ("jumping jacks", 0.03)):
        feet = act(label)[:, [7, 8, 10, 11], 1].min(axis=1)
        assert feet.max() > clearance, label  # both feet clear the floor
    forward = act("jump forward")
    assert forward[-1, 0, 2] - forward[0, 0, 2] > 0.3
    hop = act("hop on left leg")
    assert (hop[:, 11, 1] > 0.1).mean() > 0.8  # the right foot stays up while hopping on the left


def test_arm_actions_use_the_named_side():
    right = act("wave right hand")
    assert (right[:, 21, 1] > right[:, 15, 1]).any()  # right wrist above the head
    assert (right[:, 20, 1] < right[:, 0, 1]).all()  # left wrist stays low
    left = act("wave left hand")
    assert (left[:, 20, 1] > left[:, 15, 1]).any() and (left[:, 21, 1] < left[:, 0, 1]).all()
    punch = act("punch with right hand")
    reach = punch[:, 21, 2] - punch[:, 0, 2]
    assert reach.max() > 0.45 and (punch[:, 20, 2] - punch[:, 0, 2]).max() < reach.max() - 0.1


def test_postures_lower_the_body():
    stand = act("stand still")[:, 0, 1].mean()
    assert act("squat")[:, 0, 1].min() < stand - 0.3
    assert act("sit down and stand up")[:, 0, 1].min() < 0.4
    standing_head = act("stand still")[:, 15, 1].mean()
    for seed in range(4):  # the bow drops the head 27-34 cm (the trained model's bows were too shallow)
        assert act("bow", seed)[:, 15, 1].min() < standing_head - 0.15, seed
    assert act("bow")[:, 15, 1].min() < standing_head - 0.25
    pick = act("pick something up")
    assert pick[:, [20, 21], 1].min() < 0.5  # hands reach low (measured 0.45 m; standing they hang at 0.75 m)


# share of grounded foot frames sliding more than 2.5 cm, seed 0, and the measured figure
SKATING_BOUNDS = {
    "walk": 0.27,  # 24%
    "jog": 0.31,  # 28%
    "run": 0.21,  # 18%
    "wave right hand": 0.0,
    "squat": 0.0,
    "step to the left": 0.15,  # 12% (42% before the lifted foot was kept under the hip)
    "turn left": 0.12,  # 9% (46% before)
    "turn around": 0.2,  # 15%
    "dance": 0.1,  # 3%
    "hug": 0.1,  # 8%
    "walk crouched": 0.1,  # 0%
    "stumble": 0.25,  # 21%
}


def test_foot_skating_of_locomotion_is_bounded():
    """Share of grounded foot frames (a foot within 5 cm of the floor) sliding more than 2.5 cm: mostly the
    swinging foot skimming the floor (the real clip 012314 scores 10.5%); gestures and postures do not move the
    feet at all."""
    for label, bound in SKATING_BOUNDS.items():
        _, sliding, grounded = _foot_skate(act(label))
        assert sliding / grounded <= bound, label


def test_clip_texts_follow_the_paper():
    for seed in range(60):
        clip = synthesize_clip(seed)
        labels = [label for label, _, _ in clip["segments"]]
        starts = [start for _, start, _ in clip["segments"]]
        assert starts == sorted(starts) and clip["low"] == ", ".join(labels)
        assert all(a != b for a, b in zip(labels, labels[1:], strict=False)), labels  # BABEL merges repeats
        assert 1 <= len(labels) <= 4 and len(clip["high"]) == 3
        assert 40 <= len(clip["joints"]) <= 196
        if clip["intent"]:
            intent_captions = set(INTENTS[clip["intent"]][1])
            assert sum(c in intent_captions for c in clip["high"]) == 2
            # an intent caption names no action
            assert not any(label.split()[0] in c for c in clip["high"] if c in intent_captions for label in labels)


def test_each_intent_has_several_different_realisations():
    for intent, (realisations, _captions) in INTENTS.items():
        assert len({tuple(r) for r in realisations}) >= 3, intent
        assert all(label in ACTIONS for r in realisations for label in r)


def test_intents_combine_the_social_actions():
    def uses(intent: str) -> set[str]:
        return {label for r in INTENTS[intent][0] for label in r}

    assert {"wave right hand", "bow", "hug", "shake hands", "nod"} <= uses("greet")
    assert {"jump in place", "raise both arms", "clap", "dance", "high five"} <= uses("celebrate")
    assert {"wave right hand", "hug", "salute"} <= uses("say goodbye")
    assert {"look around", "crouch", "point forward"} <= uses("look for something")
    assert {"shrug", "look around"} <= uses("be confused")
    assert ["point forward", "walk"] in INTENTS["show the way"][0]
    assert "a person greets a friend" in INTENTS["greet"][1]
    used = {label for intent in INTENTS for label in uses(intent)}
    assert used >= set(ACTIONS) - {"run", "walk backwards", "jump forward", "hop on left leg", "hop on right leg"}


def test_tagger():
    assert tag_caption("A person waves with the left hand") == (
        "a/DET person/NOUN wave/VERB with/ADP the/DET left/NOUN hand/NOUN"
    )


def test_small_corpus_end_to_end(tmp_path):
    out = tmp_path / "syn"
    stats = generate_corpus(out, clips=12, seed=3, workers=1)
    assert stats.clips == 12 and 2.0 <= stats.seconds_min and stats.seconds_max <= 9.8
    ids = {split: read_split(out, split) for split in ("train", "val", "test")}
    all_ids = [i for v in ids.values() for i in v]
    assert len(all_ids) == len(set(all_ids)) == 24
    for split, members in ids.items():
        assert all(("M" + i in members) for i in members if not i.startswith("M")), split
    for clip in all_ids:
        feats = np.load(out / "new_joint_vecs" / f"{clip}.npy")
        joints = np.load(out / "new_joints" / f"{clip}.npy")
        assert feats.shape[1] == 263 and joints.shape == (len(feats), 22, 3)
        assert len(read_captions(out, clip)) == 3
    mean, std = np.load(out / "Mean.npy"), np.load(out / "Std.npy")
    assert mean.shape == std.shape == (263,) and np.ptp(std[4:67]) == 0 and np.ptp(std[67:193]) == 0
    # mirrors swap the texts and the body
    original, mirror = read_captions(out, "000000"), read_captions(out, "M000000")
    swapped = [c.text.replace("left", "@").replace("right", "left").replace("@", "right") for c in original]
    assert [c.text for c in mirror] == swapped
    j, m = np.load(out / "new_joints" / "000000.npy"), np.load(out / "new_joints" / "M000000.npy")
    assert np.allclose(m[:, 1, 0], -j[:, 2, 0], atol=1e-5)
    # BABEL labels, through the real-data alignment, give back each clip's low-level text
    assert load_babel(out / "babel") == load_babel(out)  # the corpus root works too (`--babel syn`)
    records, prep_stats = build_records(out, out)
    by_id = {r["id"]: r for r in records}
    index_rows = (out / "index.csv").read_text().splitlines()[1:]
    assert any(int(row.split(",")[1]) > 0 for row in index_rows)  # some clips start after a lead-in
    for i in range(12):
        clip = synthesize_clip(np.random.default_rng([3, i]))
        assert by_id[f"{i:06d}"]["low"] == clip["low"] and by_id[f"{i:06d}"]["low_source"] == "synthetic"
    assert all(prep_stats.coverage(s) == 1.0 for s in ("train", "val", "test"))
    babel = json.loads((out / "babel" / "train.json").read_text())
    entry = next(iter(babel.values()))
    assert {"babel_sid", "feat_p", "dur", "seq_ann", "frame_ann"} <= set(entry)
    assert {"raw_label", "proc_label", "seg_id", "act_cat", "start_t", "end_t"} <= set(entry["frame_ann"]["labels"][0])


def test_corpus_is_deterministic_and_refuses_non_empty_folders(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    generate_corpus(a, clips=3, seed=1, workers=1)
    generate_corpus(b, clips=3, seed=1, workers=1)
    generate_corpus(c, clips=3, seed=2, workers=1)
    for name in ("new_joint_vecs/000001.npy", "texts/000002.txt", "babel/train.json", "Std.npy"):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    assert (a / "new_joint_vecs/000000.npy").read_bytes() != (c / "new_joint_vecs/000000.npy").read_bytes()
    with pytest.raises(MotionGPTError, match="not empty"):
        generate_corpus(a, clips=3, seed=1, workers=1)
    with pytest.raises(MotionGPTError, match="at least 1"):
        generate_corpus(tmp_path / "d", clips=0)
    assert not (tmp_path / "d").exists()
