"""Write the synthetic corpus in the HumanML3D layout, with BABEL-format labels and an index.csv.

Layout (``DIR``): ``new_joints/``, ``new_joint_vecs/``, ``texts/`` (``caption#word/POS ...#0.0#0.0``),
``train.txt``/``val.txt``/``test.txt`` (80/5/15 by clip, mirrors beside their originals), ``Mean.npy``/``Std.npy``
(over every clip, Std averaged within each feature group as HumanML3D does), ``index.csv`` and
``babel/{train,val,test}.json``. Each clip is cut from a synthetic source sequence ``SYN/seq_<id>``: about half of
them start after a lead-in of standing, so ``index.csv`` frame ranges and BABEL times (relative to the source)
exercise the same alignment as real data. The folder is built beside the target and renamed into place at the end.
"""

from __future__ import annotations

import json
import multiprocessing
import shutil
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import MotionGPTError
from ..motion.features import FEATURE_GROUPS, joints_to_features, mirror_joints
from ..motion.skeleton import FPS
from .actions import ACTIONS
from .babel import swap_left_right
from .synthetic import synthesize_clip

_POS = {
    "DET": {"a", "an", "the", "some"},
    "CCONJ": {"and", "or", "but"},
    "ADP": {"to", "with", "on", "in", "up", "down", "over", "around", "at", "from", "for", "after", "about", "of"},
    "PRON": {"someone", "somebody", "he", "she", "they", "it", "his", "her", "their", "themselves", "something"},
    "ADV": {"then", "again", "quickly", "slowly", "away", "outside", "very", "forward", "backwards", "ahead"},
    "NUM": {"one", "two", "three", "full"},
    "ADJ": {"short", "happy", "good", "few", "both", "other"},
}
_VIP = {
    "Loc_VIP": {"left", "right", "clockwise", "counterclockwise", "forward", "back", "backward", "up", "down"},
    "Body_VIP": {"arm", "arms", "hand", "hands", "foot", "feet", "leg", "legs", "head", "knee", "shoulder"},
    "Obj_VIP": {"ball", "floor", "chair"},
    "Act_VIP": {"walk", "run", "kick", "squat", "throw", "hop", "jump", "turn", "sit", "stand", "raise", "spin",
                "jog", "pick", "bend", "stretch", "lift", "lean"},
}  # fmt: skip
_VERB_SUFFIXES = ("es", "s")


def tag_caption(caption: str) -> str:
    """HumanML3D's token field: ``word/POS`` pairs (a small rule-based tagger; nouns and verbs lemmatised)."""
    tokens = []
    for raw in caption.lower().replace(",", " ").split():
        word = "".join(ch for ch in raw if ch.isalpha())
        if not word:
            continue
        pos = next((tag for tag, words in _POS.items() if word in words), None)
        if pos is None:
            lemma = word
            for suffix in _VERB_SUFFIXES:
                if word.endswith(suffix) and len(word) > 3 and word[: -len(suffix)] in _VIP["Act_VIP"] | _VERBS:
                    lemma = word[: -len(suffix)]
                    break
            pos = "VERB" if lemma in _VIP["Act_VIP"] | _VERBS else "NOUN"
            word = lemma
        tokens.append(f"{word}/{pos}")
    return " ".join(tokens)


_VERBS = {"wave", "bow", "nod", "clap", "punch", "greet", "say", "welcome", "exercise", "do", "warm", "celebrate",
          "cheer", "fight", "practice", "defend", "play", "leave", "go", "head", "take", "rest", "relax", "dance",
          "move", "lift", "get", "step", "leap", "pick", "bend", "throw", "stretch", "hug", "shake", "salute", "point",
          "shrug", "look", "crouch", "stumble", "lean", "trip", "search", "hunt", "try", "find", "sneak", "creep",
          "bid", "give", "show", "pay", "honour", "meet", "lose", "fall", "know", "wrap", "face", "catch",
          "raise"}  # fmt: skip


@dataclass
class CorpusStats:
    clips: int = 0
    mirrored: int = 0
    actions: Counter = field(default_factory=Counter)
    intents: Counter = field(default_factory=Counter)
    seconds_min: float = 0.0
    seconds_mean: float = 0.0
    seconds_max: float = 0.0
    foot_slide_cm: float = 0.0  # mean horizontal slide per frame of a foot within 5 cm of the floor
    foot_skating_ratio: float = 0.0  # share of those grounded frame pairs sliding more than 2.5 cm
    elapsed: float = 0.0


def _one_thread() -> None:
    """Worker start-up: one torch thread per process, so workers do not compete for the cores."""
    import torch

    torch.set_num_threads(1)


def _make_clip(args: tuple[int, int, float, float]) -> dict:
    seed, index, min_seconds, max_seconds = args
    clip = synthesize_clip(np.random.default_rng([seed, index]), min_seconds=min_seconds, max_seconds=max_seconds)
    rng = np.random.default_rng([seed, index, 1])
    lead_in = int(rng.integers(5, 40)) if rng.random() < 0.5 else 0
    joints = clip["joints"]
    mirrored = mirror_joints(joints).astype(np.float32)
    features = joints_to_features(joints, root_velocity="continuous")  # our own motion: no HumanML3D artefact
    mirrored_features = joints_to_features(mirrored, root_velocity="continuous")
    # the released new_joints are recovered from the features: one frame fewer than the source joints
    return {**clip, "lead_in": lead_in, "features": features, "mirrored_features": mirrored_features,
            "joints": joints[:-1], "mirrored": mirrored[:-1]}  # fmt: skip


def _foot_skate(joints: np.ndarray) -> tuple[float, int, int]:
    """Foot skating: over frame pairs where a foot joint (10, 11) is within 5 cm of the floor in both frames, the
    summed horizontal slide (m), the number of pairs sliding more than 2.5 cm, and the number of such pairs."""
    feet = joints[:, [10, 11]]
    low = (feet[1:, :, 1] < 0.05) & (feet[:-1, :, 1] < 0.05)
    slide = np.linalg.norm(np.diff(feet[..., [0, 2]], axis=0), axis=-1)
    return float(slide[low].sum()), int((slide[low] > 0.025).sum()), int(low.sum())


def generate_corpus(
    out_dir: Path,
    *,
    clips: int = 4000,
    seed: int = 0,
    min_seconds: float = 2.0,
    max_seconds: float = 9.8,
    workers: int | None = 2,
    overwrite: bool = False,
) -> CorpusStats:
    """Synthesise ``clips`` clips (plus their mirrors) into ``out_dir``; deterministic for a seed."""
    if clips < 1:
        raise MotionGPTError(f"--clips must be at least 1, got {clips}")
    if not 2 / FPS <= min_seconds <= max_seconds:
        raise MotionGPTError(f"need 0.1 <= min-seconds <= max-seconds, got {min_seconds} and {max_seconds}")
    if max_seconds < 2.0:
        raise MotionGPTError("max-seconds must be at least 2.0 (the shortest actions last about that long)")
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise MotionGPTError(f"{out_dir} exists and is not empty", hint="choose a new folder or pass --overwrite")
    start = time.perf_counter()
    tmp = out_dir.with_name(f".{out_dir.name}.tmp-synth")
    shutil.rmtree(tmp, ignore_errors=True)
    for sub in ("new_joints", "new_joint_vecs", "texts", "babel"):
        (tmp / sub).mkdir(parents=True)
    jobs = [(seed, i, min_seconds, max_seconds) for i in range(clips)]
    if workers and workers > 1 and clips > 8:
        # spawn, not fork: a forked child of a process that has already run torch can deadlock in its thread pool
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_one_thread) as pool:
            results = list(pool.map(_make_clip, jobs, chunksize=16))
    else:
        results = [_make_clip(job) for job in jobs]
    order = np.random.default_rng([seed, 7]).permutation(clips)
    n_test, n_val = round(0.15 * clips), round(0.05 * clips)
    split_of = {}
    for rank, index in enumerate(order):
        split_of[int(index)] = "test" if rank < n_test else "val" if rank < n_test + n_val else "train"
    stats = CorpusStats(clips=clips, mirrored=clips)
    splits: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    babel: dict[str, dict] = {"train": {}, "val": {}, "test": {}}
    index_rows = ["source_path,start_frame,end_frame,new_name"]
    all_features, lengths, skate = [], [], [0.0, 0, 0]
    for i, res in enumerate(results):
        clip_id = f"{i:06d}"
        for cid, joints, feats, mirror in (
            (clip_id, res["joints"], res["features"], False),
            (f"M{clip_id}", res["mirrored"], res["mirrored_features"], True),
        ):
            np.save(tmp / "new_joints" / f"{cid}.npy", joints)
            np.save(tmp / "new_joint_vecs" / f"{cid}.npy", feats)
            captions = [swap_left_right(c) for c in res["high"]] if mirror else res["high"]
            lines = [f"{c}#{tag_caption(c)}#0.0#0.0" for c in captions]
            (tmp / "texts" / f"{cid}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
            splits[split_of[i]].append(cid)
            all_features.append(feats)
            total, fast, count = _foot_skate(joints)
            skate = [skate[0] + total, skate[1] + fast, skate[2] + count]
        frames = len(res["features"]) + 1  # the source motion had one frame more than the features
        lengths.append(frames / FPS)
        lead = res["lead_in"]
        source = f"./pose_data/SYN/seq_{clip_id}_poses.npy"
        index_rows.append(f"{source},{lead},{lead + frames},{clip_id}.npy")
        labels = []
        if lead:
            labels.append(_babel_label("stand still", 0, lead, clip_id, 0))
        for k, (label, s, e) in enumerate(res["segments"]):
            labels.append(_babel_label(label, lead + s, lead + e, clip_id, k + 1))
            stats.actions[label] += 1
        stats.intents[res["intent"] or "(literal)"] += 1
        babel[split_of[i]][str(i)] = {
            "babel_sid": i,
            "url": "",
            "feat_p": f"SYN/SYN/seq_{clip_id}_poses.npz",
            "dur": round((lead + frames) / FPS, 4),
            "seq_ann": {"babel_lid": f"seq-{clip_id}", "anntr_id": "synthetic", "mul_act": len(labels) > 1,
                        "labels": [{k: v for k, v in lb.items() if k not in ("start_t", "end_t")} for lb in labels]},
            "frame_ann": {"babel_lid": f"frame-{clip_id}", "anntr_id": "synthetic", "mul_act": len(labels) > 1,
                          "labels": labels},
        }  # fmt: skip
    for split, ids in splits.items():
        (tmp / f"{split}.txt").write_text("\n".join(ids) + "\n")
        (tmp / "babel" / f"{split}.json").write_text(json.dumps(babel[split]))
    (tmp / "index.csv").write_text("\n".join(index_rows) + "\n")
    stacked = np.concatenate(all_features)
    mean = stacked.mean(axis=0)
    std = stacked.std(axis=0)
    for group in FEATURE_GROUPS.values():  # HumanML3D: one std per feature group
        std[group] = std[group].mean()
    std = np.where(std > 1e-8, std, 1.0)
    np.save(tmp / "Mean.npy", mean.astype(np.float32))
    np.save(tmp / "Std.npy", std.astype(np.float32))
    if out_dir.exists():
        shutil.rmtree(out_dir)
    tmp.rename(out_dir)
    stats.seconds_min, stats.seconds_mean, stats.seconds_max = min(lengths), float(np.mean(lengths)), max(lengths)
    stats.foot_slide_cm = 100 * skate[0] / max(skate[2], 1)
    stats.foot_skating_ratio = skate[1] / max(skate[2], 1)
    stats.elapsed = time.perf_counter() - start
    return stats


def _babel_label(label: str, start: int, end: int, clip_id: str, k: int) -> dict:
    return {
        "raw_label": label,
        "proc_label": label,
        "seg_id": f"{clip_id}-{k}",
        "act_cat": [ACTIONS[label].family if label in ACTIONS else "posture"],
        "start_t": round(start / FPS, 4),
        "end_t": round(end / FPS, 4),
    }
