"""Does a model follow the low-level text? "greet a friend" + wave / bow / hug / handshake, measured on the joints.

    python benchmarks/bench_follow_texts.py                      # the embedded default model
    python benchmarks/bench_follow_texts.py --model runs/embedded --samples 32 --gif out/ --json out/follow.json

In the synthetic corpus "a person greets a friend" is paired with a right-hand wave, a bow, a hug and a handshake
(the four greetings of the paper's Figure 1, among others), so the high-level text alone is ambiguous and only the
low-level text can decide. The low-level texts are the corpus's own action labels (``data.actions.ACTIONS``):
"wave right hand", "bow", "hug", "shake hands". For each of them, and for the high-level text alone, the script
samples ``--samples`` motions (DDIM, guidance 2.5, 6 s) and runs four recognisability checks on each motion's
joints (22-joint HumanML3D skeleton, metres, Y up, 20 fps):

- wave: the right wrist rises above the head, and the head drops less than 15 cm below its first-frame height;
- bow: the head drops at least 15 cm below its first-frame height, with the right wrist staying below the head;
- hug: at some frame both wrists are at least 15 cm in front of the chest (spine3) along the body's facing, and
  no further apart than the shoulders are at that frame;
- handshake: for at least 10 consecutive frames (0.5 s) the right wrist is at waist height (0.10 m below to 0.28 m
  above the pelvis) and at least 0.25 m in front of the pelvis, while the left wrist hangs by the side (below the
  pelvis and less than 0.20 m in front of it).

"In front" is along the body's horizontal facing direction, computed per frame as HumanML3D does: perpendicular
to the summed across-hips and across-shoulders vectors, in the horizontal plane. The thresholds come from the
synthetic clips (``--references`` per action, rendered by ``data.synthetic`` exactly as the corpus renders them; no
files read): arms hanging at rest put the wrists 0.18 m below the pelvis and 0.07 m in front of the chest, 1.24
shoulder widths apart; the hug brings them 0.37 m in front of the chest, 0.19 shoulder widths apart; the handshake
pumps the right wrist between 0.18 m below and 0.24 m above the pelvis, 0.44 m in front of it; pointing forward
holds it at shoulder height, 0.32 m above the pelvis (just outside the handshake band); a bow drops the head by
0.25 to 0.35 m, a lean forward by 0.08 to 0.11 m. A table of the checks on those reference clips is printed first:
each of the four passes its own action's clips only. Other corpus actions do trip them (a clap passes the hug
check, "wave both hands" and "high five" the wave check, a squat, crouch or pick-up the bow check), which is fine
here, where only the four greetings are asked for.

A fifth column, ``bowed``, is a diagnostic beside the four checks: the bow check with the head's drop measured
from where an upright spine would hold it (the pelvis-to-head bone chain) rather than from the first frame, so it
also sees a motion that is bowed from its first frame on, and a squat (whose pelvis goes down too) does not pass.

Finally a distinctness figure: each motion is made root-relative (the pelvis's floor position subtracted in every
frame, heights kept, as HumanML3D's ``ric`` positions) and turned so that frame 0 faces +Z; the mean pairwise
distance between the four conditions' mean trajectories (mean per-joint distance over frames and joints) is
divided by the within-condition spread (the mean distance of a motion to its condition's mean), and the same per
pair (a pair's distance over the two conditions' mean spread). The mean ratio can stay high while two conditions
collapse into one motion, so the smallest pair ratio is reported too: well above 1 for every pair says the four
greetings give visibly different motions. With few samples the spread is underestimated (a motion is part of its
own mean), so small ``--samples`` flatter the ratios a little. Every condition uses the same seeds (the same
initial noise), which makes the conditions' motions more alike, not less. The reference clips (1.9 to 3.4 s, held
at their last frame) and the 6 s samples differ in length, so compare their ratios, not their metres.

Results go to stdout as Markdown tables; progress and written paths to stderr; ``--json OUT`` writes every figure.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from motiongpt_cli.motion.skeleton import FPS, JOINT_NAMES

# ----------------------------------------------------------------------------------------------- measures
# Pure numpy functions of one motion's joints ``(T, 22, 3)`` float, metres, Y up (HumanML3D's 22-joint skeleton).
PELVIS, L_HIP, R_HIP, CHEST = (JOINT_NAMES.index(n) for n in ("pelvis", "left_hip", "right_hip", "spine3"))
HEAD, L_SHOULDER, R_SHOULDER = (JOINT_NAMES.index(n) for n in ("head", "left_shoulder", "right_shoulder"))
L_WRIST, R_WRIST = JOINT_NAMES.index("left_wrist"), JOINT_NAMES.index("right_wrist")
CHECKS = ("wave", "bow", "hug", "handshake")

HEAD_DROP = 0.15  # m: wave below it, bow at or above it (bow clips drop 0.25-0.35 m; lean forward 0.08-0.11)
HUG_AHEAD = 0.15  # m in front of spine3 for both wrists (hanging arms: 0.07 m; hug clips: 0.37 m)
HANDSHAKE_BAND = (-0.10, 0.28)  # right wrist height minus pelvis height, m (handshake clips pump -0.18 .. +0.24;
#                                 hanging: -0.18 at rest, so the lower bound needs the forearm raised; a pointing
#                                 arm is at +0.32, above the band)
HANDSHAKE_AHEAD = 0.25  # m, right wrist in front of the pelvis (handshake clips: 0.44 m at the hold)
HANDSHAKE_FRAMES = FPS // 2  # 10 frames = 0.5 s held (handshake clips hold 34 to 53 frames)
LEFT_BY_SIDE = (0.0, 0.20)  # left wrist at most this high above the pelvis and this far in front of it, m
#                             (hanging: -0.16 m and 0.07 m; the hug raises it to +0.25 m and 0.39 m)


def facing(joints: np.ndarray) -> np.ndarray:
    """Unit horizontal body-forward direction per frame, ``(T, 22, 3)`` -> ``(T, 3)``.

    As HumanML3D's IK (with the hips in the right order): ``up x across``, across = (right hip - left hip) +
    (right shoulder - left shoulder); the rest pose (left at +X) faces +Z.
    """
    across = (joints[:, R_HIP] - joints[:, L_HIP]) + (joints[:, R_SHOULDER] - joints[:, L_SHOULDER])
    forward = np.cross(np.array([0.0, 1.0, 0.0]), across)
    forward[:, 1] = 0.0
    return forward / np.maximum(np.linalg.norm(forward, axis=-1, keepdims=True), 1e-9)


def ahead_of(joints: np.ndarray, joint: int, ref: int) -> np.ndarray:
    """How far ``joint`` is in front of ``ref`` along the body's facing, per frame: ``(T, 22, 3)`` -> ``(T,)`` m."""
    return np.einsum("ti,ti->t", joints[:, joint] - joints[:, ref], facing(joints))


def wrist_above_head(joints: np.ndarray) -> float:
    """The right wrist's highest point above the head over the motion, metres (negative: always below)."""
    return float(np.max(joints[:, R_WRIST, 1] - joints[:, HEAD, 1]))


def head_drop(joints: np.ndarray) -> float:
    """How far the head goes below its first-frame height, metres (>= 0)."""
    return float(joints[0, HEAD, 1] - np.min(joints[:, HEAD, 1]))


def is_wave(joints: np.ndarray) -> bool:
    """The right wrist rises above the head, and the head drops less than ``HEAD_DROP``."""
    return wrist_above_head(joints) > 0 and head_drop(joints) < HEAD_DROP


def is_bow(joints: np.ndarray) -> bool:
    """The head drops at least ``HEAD_DROP`` below its first-frame height, the right wrist stays below the head."""
    return head_drop(joints) >= HEAD_DROP and wrist_above_head(joints) <= 0


SPINE_CHAIN = tuple(JOINT_NAMES.index(n) for n in ("pelvis", "spine1", "spine2", "spine3", "neck", "head"))


def head_below_upright(joints: np.ndarray) -> float:
    """How far the head comes below where an upright spine would hold it, metres: the pelvis-to-head bone-chain
    length (measured on the joints, frame 0) minus the smallest head-above-pelvis height over the motion.

    A diagnostic beside :func:`head_drop`: it also sees a motion that is already bowed at its first frame (standing
    clips: about 0.01 m, as the head bone points a little forward; bow clips 0.27 to 0.36 m; lean forward at most
    0.13 m).
    """
    chain = np.linalg.norm(np.diff(joints[0, list(SPINE_CHAIN)], axis=0), axis=-1).sum()
    return float(chain - np.min(joints[:, HEAD, 1] - joints[:, PELVIS, 1]))


def is_bowed(joints: np.ndarray) -> bool:
    """Diagnostic: :func:`is_bow` with the drop measured from upright (:func:`head_below_upright`) instead of from
    the first frame."""
    return head_below_upright(joints) >= HEAD_DROP and wrist_above_head(joints) <= 0


def hug_frames(joints: np.ndarray) -> np.ndarray:
    """Frames where both wrists are ``HUG_AHEAD`` in front of the chest and at most a shoulder width apart: ``(T,)``
    bool."""
    in_front = (ahead_of(joints, L_WRIST, CHEST) >= HUG_AHEAD) & (ahead_of(joints, R_WRIST, CHEST) >= HUG_AHEAD)
    gap = np.linalg.norm(joints[:, L_WRIST] - joints[:, R_WRIST], axis=-1)
    shoulders = np.linalg.norm(joints[:, L_SHOULDER] - joints[:, R_SHOULDER], axis=-1)
    return in_front & (gap <= shoulders)


def is_hug(joints: np.ndarray) -> bool:
    """Both wrists in front of the chest and together (:func:`hug_frames`) at some frame."""
    return bool(hug_frames(joints).any())


def handshake_frames(joints: np.ndarray) -> np.ndarray:
    """Frames with the right wrist at waist height and reaching forward, the left wrist by the side: ``(T,)`` bool."""
    right_height = joints[:, R_WRIST, 1] - joints[:, PELVIS, 1]
    left_height = joints[:, L_WRIST, 1] - joints[:, PELVIS, 1]
    right = (right_height >= HANDSHAKE_BAND[0]) & (right_height <= HANDSHAKE_BAND[1])
    right &= ahead_of(joints, R_WRIST, PELVIS) >= HANDSHAKE_AHEAD
    left = (left_height <= LEFT_BY_SIDE[0]) & (ahead_of(joints, L_WRIST, PELVIS) <= LEFT_BY_SIDE[1])
    return right & left


def longest_run(mask: np.ndarray) -> int:
    """Length of the longest run of consecutive True values in a ``(T,)`` bool array."""
    padded = np.concatenate([[0], np.asarray(mask, dtype=np.int8), [0]])
    edges = np.flatnonzero(np.diff(padded))
    return int((edges[1::2] - edges[::2]).max()) if len(edges) else 0


def handshake_hold(joints: np.ndarray) -> int:
    """The longest stretch of :func:`handshake_frames`, in frames."""
    return longest_run(handshake_frames(joints))


def is_handshake(joints: np.ndarray) -> bool:
    """The handshake pose (:func:`handshake_frames`) held for at least ``HANDSHAKE_FRAMES`` frames."""
    return handshake_hold(joints) >= HANDSHAKE_FRAMES


def measure(joints: np.ndarray) -> dict:
    """All four checks on ``(T, 22, 3)`` joints, with the figures behind them (metres, frames)."""
    return {
        "wrist_above_head": wrist_above_head(joints),
        "head_drop": head_drop(joints),
        "head_below_upright": head_below_upright(joints),
        "hug_frames": int(hug_frames(joints).sum()),
        "handshake_hold": handshake_hold(joints),
        "checks": {
            "wave": is_wave(joints),
            "bow": is_bow(joints),
            "hug": is_hug(joints),
            "handshake": is_handshake(joints),
        },
        "bowed": is_bowed(joints),
    }


def root_relative(joints: np.ndarray) -> np.ndarray:
    """``(T, 22, 3)`` joints with the pelvis's floor position subtracted per frame (heights kept, as HumanML3D's
    ``ric``), turned about Y so that frame 0 faces +Z."""
    out = np.asarray(joints, dtype=np.float64).copy()
    out[..., [0, 2]] -= out[:, :1, [0, 2]]
    f = facing(out[:1])[0]
    angle = np.arctan2(f[0], f[2])  # the yaw taking +Z to the facing; undo it
    cos, sin = np.cos(angle), np.sin(angle)
    x, z = out[..., 0].copy(), out[..., 2].copy()
    out[..., 0], out[..., 2] = cos * x - sin * z, sin * x + cos * z
    return out


def trajectory_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean per-joint Euclidean distance between two ``(T, 22, 3)`` trajectories over frames and joints, metres."""
    return float(np.linalg.norm(a - b, axis=-1).mean())


def distinctness(groups: Sequence[np.ndarray]) -> dict:
    """Between- vs within-condition spread of ``groups``: one ``(N_i, T, 22, 3)`` array per condition (``N_i >= 1``,
    one ``T``), each motion already :func:`root_relative`.

    Returns the pairwise distances between the conditions' mean trajectories (``between``, a matrix), their mean
    over pairs (``between_mean``), each condition's spread (the mean distance of its motions to its mean,
    ``within``), the mean spread (``within_mean``), ``ratio = between_mean / within_mean``, and per pair
    ``pair_ratio[i][j] = between[i][j] / mean(within[i], within[j])`` with its smallest value ``min_pair_ratio``
    (the mean ratio can be high while two conditions give the same motion; the smallest pair ratio cannot).
    """
    means = [np.mean(g, axis=0) for g in groups]
    k = len(groups)
    between = np.zeros((k, k))
    for i in range(k):
        for j in range(i + 1, k):
            between[i, j] = between[j, i] = trajectory_distance(means[i], means[j])
    within = [float(np.mean([trajectory_distance(m, mean) for m in g])) for g, mean in zip(groups, means, strict=True)]
    between_mean = float(between[np.triu_indices(k, 1)].mean())
    within_mean = float(np.mean(within))
    spread = (np.array(within)[:, None] + np.array(within)[None, :]) / 2
    pair_ratio = np.divide(between, spread, out=np.full((k, k), np.inf), where=spread > 0)
    np.fill_diagonal(pair_ratio, 0.0)
    min_pair_ratio = float(pair_ratio[np.triu_indices(k, 1)].min())
    return {"between": between.tolist(), "between_mean": between_mean, "within": within, "within_mean": within_mean,
            "ratio": between_mean / within_mean if within_mean > 0 else float("inf"),
            "pair_ratio": pair_ratio.tolist(), "min_pair_ratio": min_pair_ratio}  # fmt: skip


def pass_shares(results: Sequence[dict]) -> dict[str, float]:
    """Share of :func:`measure` results passing each check, and the diagnostic ``bowed``."""
    shares = {c: float(np.mean([r["checks"][c] for r in results])) if results else 0.0 for c in CHECKS}
    shares["bowed"] = float(np.mean([r["bowed"] for r in results])) if results else 0.0
    return shares


# ----------------------------------------------------------------------------------------------- the benchmark
HIGH = "a person greets a friend"
GREETINGS = ("wave right hand", "bow", "hug", "shake hands")  # the corpus's labels (data.actions.ACTIONS)
CONDITIONS: list[tuple[str, str | None]] = [(low, low) for low in GREETINGS] + [("(high only)", None)]
FRAMES = 6 * FPS
GUIDANCE = 2.5


def reference_clips(label: str, count: int, seed: int) -> list[np.ndarray]:
    """``count`` synthetic clips of the single action ``label``, world joints ``(T_i, 22, 3)``, as the corpus
    renders them (per-clip speed, amplitude and idle sway drawn from ``seed * 1000 + i``)."""
    from motiongpt_cli.data.synthetic import chain_actions, place_in_world, pose_joints

    clips = []
    for i in range(count):
        track, _ = chain_actions([label], np.random.default_rng(seed * 1000 + i))
        clips.append(place_in_world(pose_joints(track.angles), track))
    return clips


def pad_to_longest(clips: Sequence[np.ndarray]) -> np.ndarray:
    """Stack ``(T_i, 22, 3)`` clips into ``(N, max T_i, 22, 3)``, holding each clip's last frame."""
    frames = max(len(c) for c in clips)
    return np.stack([np.concatenate([c, np.repeat(c[-1:], frames - len(c), axis=0)]) for c in clips])


def sample_condition(loaded, encoders: tuple, low: str | None, n: int, steps: int, seed: int) -> np.ndarray:
    """``n`` motions for ``HIGH`` + ``low`` (``None``: high-level text only): joints ``(n, FRAMES, 22, 3)``."""
    import torch

    from motiongpt_cli.diffusion.sampler import sample
    from motiongpt_cli.distill import is_consistency_model
    from motiongpt_cli.generation import sampling_options
    from motiongpt_cli.motion.features import denormalize, features_to_joints

    high_enc, low_enc = encoders
    high = torch.from_numpy(high_enc.encode([HIGH] * n))
    low_emb = torch.from_numpy(low_enc.encode([low or ""] * n))
    use_low = torch.full((n,), low is not None)
    gens = [torch.Generator().manual_seed(seed * 1000 + i) for i in range(n)]
    options = sampling_options(loaded, steps=steps, guidance=None if is_consistency_model(loaded) else GUIDANCE)
    x = sample(loaded.model, loaded.schedule, high, low_emb, torch.full((n,), FRAMES), options, gens,
               use_low=use_low)  # fmt: skip
    return features_to_joints(denormalize(x.numpy(), loaded.mean, loaded.std))


def share_table(title: str, rows: Sequence[tuple[str, int, dict[str, float]]]) -> str:
    """Markdown table: rows = requested text, columns = checks, cells = share passing."""
    cols = [*CHECKS, "bowed"]
    lines = [f"{title}", "", "| " + " | ".join(["requested", "n", *cols]) + " |", "|---" * (2 + len(cols)) + "|"]
    for name, n, shares in rows:
        lines.append(f"| {name} | {n} | " + " | ".join(f"{shares[c]:.0%}" for c in cols) + " |")
    lines.append("\n(bowed: a diagnostic, not one of the four checks: the bow check with the head's drop measured "
                 "from an upright spine instead of from the first frame)")  # fmt: skip
    return "\n".join(lines)


def motion_table(rows: Sequence[tuple[str, int, dict]]) -> str:
    """Markdown table of every motion's checks and figures."""
    head = ["requested", "seed", *CHECKS, "bowed", "wrist above head (m)", "head drop (m)", "head below upright (m)",
            "hug frames", "handshake hold"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for name, seed, r in rows:
        marks = [("yes" if r["checks"][c] else "-") for c in CHECKS] + ["yes" if r["bowed"] else "-"]
        lines.append(f"| {name} | {seed} | " + " | ".join(marks) + f" | {r['wrist_above_head']:+.2f} | "
                     f"{r['head_drop']:.2f} | {r['head_below_upright']:.2f} | {r['hug_frames']} | "
                     f"{r['handshake_hold']} |")  # fmt: skip
    return "\n".join(lines)


def distinctness_text(title: str, names: Sequence[str], d: dict) -> str:
    lines = [f"{title}: between {d['between_mean']:.3f} m / within {d['within_mean']:.3f} m = ratio "
             f"{d['ratio']:.2f}; smallest pair ratio {d['min_pair_ratio']:.2f}", "",
             "| | " + " | ".join(names) + " |", "|---" * (1 + len(names)) + "|"]  # fmt: skip
    for name, row, ratios, spread in zip(names, d["between"], d["pair_ratio"], d["within"], strict=True):
        cells = [f"{v:.3f} m ({r:.1f}x)" if a != name else f"({spread:.3f} m)"
                 for a, v, r in zip(names, row, ratios, strict=True)]  # fmt: skip
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("\n(off-diagonal: distance between the condition means and, in brackets, that distance over the two "
                 "conditions' mean spread; diagonal: the within-condition spread)")  # fmt: skip
    return "\n".join(lines)


def finite_or_none(value):
    """``value`` with every non-finite float (an infinite ratio when a spread is 0) made None, for strict JSON."""
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite_or_none(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def thresholds() -> dict:
    return {"head_drop": HEAD_DROP, "hug_ahead": HUG_AHEAD, "handshake_band": list(HANDSHAKE_BAND),
            "handshake_ahead": HANDSHAKE_AHEAD, "handshake_frames": HANDSHAKE_FRAMES,
            "left_by_side": list(LEFT_BY_SIDE)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="a model directory (default: the embedded default model)")
    parser.add_argument("--samples", type=int, default=16, help="motions per condition")
    parser.add_argument("--steps", type=int, default=50, help="DDIM steps (lcm steps for a distilled model)")
    parser.add_argument("--seed", type=int, default=0, help="sample i uses seed * 1000 + i (references too)")
    parser.add_argument("--references", type=int, default=20, help="synthetic reference clips per action")
    parser.add_argument("--gif", type=Path, help="write the first sample of each condition as a GIF here")
    parser.add_argument("--json", type=Path, help="write all the figures to this JSON file")
    args = parser.parse_args()
    if args.samples < 1 or args.references < 1:
        parser.error("--samples and --references must be at least 1")
    report: dict = {"high": HIGH, "seed": args.seed, "thresholds": thresholds()}

    # reference: the corpus's own clips of each action
    ref_groups, ref_rows, ref_json = [], [], []
    for label in GREETINGS:
        clips = reference_clips(label, args.references, args.seed)
        results = [measure(c) for c in clips]
        ref_rows.append((label, len(clips), pass_shares(results)))
        ref_json.append({"action": label, "frames": [len(c) for c in clips], "pass_share": ref_rows[-1][2],
                         "clips": results})  # fmt: skip
        ref_groups.append(pad_to_longest([root_relative(c) for c in clips]))
    frames = max(g.shape[1] for g in ref_groups)  # one length for all: hold the last frame
    ref_groups = [np.concatenate([g, np.repeat(g[:, -1:], frames - g.shape[1], axis=1)], axis=1) for g in ref_groups]
    ref_dist = distinctness(ref_groups)
    report["reference"] = {"clips_per_action": args.references, "actions": ref_json, "distinctness": ref_dist}
    print(share_table(f"synthetic reference clips ({args.references} per action, seeds {args.seed * 1000}+i): "
                      "share passing each check", ref_rows))  # fmt: skip
    print()
    print(distinctness_text("reference distinctness", GREETINGS, ref_dist))
    print(flush=True)

    # the model
    import torch

    from motiongpt_cli.checkpoint import load_model
    from motiongpt_cli.paths import default_model_dir
    from motiongpt_cli.text.encoders import load_encoder

    torch.set_num_threads(1)
    path = args.model or default_model_dir()
    loaded = load_model(path)
    high_enc = load_encoder(loaded.text.high_encoder)
    low_enc = load_encoder(loaded.text.low_encoder) if loaded.text.low_encoder else high_enc
    n = args.samples
    from motiongpt_cli.distill import is_consistency_model

    sampler = "lcm" if is_consistency_model(loaded) else "ddim"
    print(f"model {path}: {n} samples per condition, {sampler}-{args.steps}, guidance {GUIDANCE}, {FRAMES} frames, "
          f"high-level text {HIGH!r}\n")  # fmt: skip
    report["model"] = {"path": str(path), "samples": n, "steps": args.steps, "sampler": sampler, "guidance": GUIDANCE,
                       "frames": FRAMES, "conditions": []}  # fmt: skip
    groups, rows, motion_rows = [], [], []
    for label, low in CONDITIONS:
        print(f"sampling {label!r} ...", file=sys.stderr, flush=True)
        joints = sample_condition(loaded, (high_enc, low_enc), low, n, args.steps, args.seed)
        results = [measure(j) for j in joints]
        rows.append((label, n, pass_shares(results)))
        motion_rows += [(label, args.seed * 1000 + i, r) for i, r in enumerate(results)]
        report["model"]["conditions"].append({"label": label, "low": low, "pass_share": rows[-1][2],
                                              "seeds": [args.seed * 1000 + i for i in range(n)],
                                              "motions": results})  # fmt: skip
        if low is not None:
            groups.append(np.stack([root_relative(j) for j in joints]))
        if args.gif:
            from motiongpt_cli.motion.render import write_gif

            args.gif.mkdir(parents=True, exist_ok=True)
            out = args.gif / f"greet-{label.strip('()').replace(' ', '-')}.gif"
            write_gif(out, joints[0], title=f"{HIGH} | {low or '-'}", overwrite=True)
            print(f"wrote {out}", file=sys.stderr)
    print(motion_table(motion_rows))
    print()
    print(share_table("model: share of motions passing each check (rows: requested low-level text)", rows))
    print()
    model_dist = distinctness(groups)
    report["model"]["distinctness"] = model_dist
    print(distinctness_text("model distinctness (the four low-level texts)", GREETINGS, model_dist))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(finite_or_none(report), indent=2, sort_keys=True, allow_nan=False) + "\n")
        print(f"wrote {args.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
