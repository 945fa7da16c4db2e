"""Timelines (issue 15): seam smoothness, per-segment R-precision and cost against length, for the default method
(each window denoised alone, then cross-faded: blend "crossfade"), joint-window denoising (blend "joint"),
generating each segment from the end of the previous one by inpainting, and the plain concatenation of
independently generated segments (a hard cut, no transition).

    python benchmarks/bench_timeline.py --data synth.jsonl                 # the embedded model and evaluator
    python benchmarks/bench_timeline.py --data synth.jsonl --timelines 32 --steps 50 --json out.json

- Seams: the peak joint speed (any joint, m/s) within +-0.5 s of each seam, against the 99th percentile of joint
  speed inside the real clips of the dataset (its test split). A seam "passes" when its peak is at most that. The
  same window peak at random frames of real clips, and of the model's single-text motions (no seam), says how often
  motion without any seam passes.
- Per-segment R@3: timelines of three test captions (3 s each, each with its own low-level text); each segment's
  frames are cut out and ranked by the synthetic evaluator against its caption in batches of 32, next to the same
  captions generated alone at the same length.
- Cost: 10, 30 and 60 s timelines of 5 s segments against the sum of the same segments generated one by one.
Every figure comes from one run, printed with the CPU and its float32 matmul rate.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from bench_startup import cpu_summary, matmul_gflops  # noqa: E402

from motiongpt_cli.api import load_pipeline  # noqa: E402
from motiongpt_cli.control.timeline import DEFAULT_TRANSITION, sample_timeline, timeline_from_texts  # noqa: E402
from motiongpt_cli.diffusion.sampler import SamplingOptions, sample  # noqa: E402
from motiongpt_cli.evaluation.metrics import r_precision  # noqa: E402
from motiongpt_cli.generation import TextInput, condition_embeddings  # noqa: E402
from motiongpt_cli.motion.features import features_to_joints  # noqa: E402
from motiongpt_cli.motion.skeleton import FPS  # noqa: E402

SEGMENT_SECONDS = 3.0
SEAM_RADIUS = round(0.5 * FPS)


def joint_speed(joints: np.ndarray) -> np.ndarray:
    """(T-1,) the fastest joint's speed per frame, m/s."""
    return np.linalg.norm(np.diff(joints, axis=0), axis=-1).max(axis=1) * FPS


def inpainting_chain(pipe, timeline, lows, sampling, seed: int, context: int) -> np.ndarray:
    """Segment by segment: each one generated with the previous result's last ``context`` frames imposed as its
    first frames at every step (inpainting), then appended after them."""
    from motiongpt_cli.diffusion.sampler import Inpainting

    parts: list[np.ndarray] = []  # normalised features
    for k, (seg, length) in enumerate(zip(timeline.segments, timeline.lengths(), strict=True)):
        high, low, use_low = condition_embeddings(pipe.loaded, [TextInput(seg.high, lows[k])], pipe.encoders)
        known = min(context, sum(len(p) for p in parts)) if k else 0
        frames = known + length
        inpaint = None
        if known:
            prev = np.concatenate(parts)[-known:]
            values = torch.zeros(1, frames, 263)
            values[0, :known] = torch.from_numpy(prev)
            mask = torch.zeros(1, frames, 263, dtype=torch.bool)
            mask[0, :known] = True
            inpaint = Inpainting(values, mask)
        x = sample(pipe.loaded.model, pipe.loaded.schedule, high, low, torch.tensor([frames]), sampling,
                   [torch.Generator().manual_seed(seed * 1000 + k)], use_low=use_low, inpaint=inpaint)  # fmt: skip
        parts.append(x[0, known:].numpy())
    return (np.concatenate(parts) * pipe.loaded.std + pipe.loaded.mean).astype(np.float32)


def single(pipe, text: TextInput, frames: int, sampling, seed: int) -> np.ndarray:
    high, low, use_low = condition_embeddings(pipe.loaded, [text], pipe.encoders)
    x = sample(pipe.loaded.model, pipe.loaded.schedule, high, low, torch.tensor([frames]), sampling,
               [torch.Generator().manual_seed(seed)], use_low=use_low)  # fmt: skip
    return (x[0].numpy() * pipe.loaded.std + pipe.loaded.mean).astype(np.float32)


def window_peaks(joints: np.ndarray, rng: np.random.Generator, count: int = 4) -> np.ndarray:
    """The peak joint speed within +-0.5 s of ``count`` random frames (away from the clip's ends)."""
    speed = joint_speed(joints)
    if len(speed) <= 2 * SEAM_RADIUS:
        return np.zeros(0)
    centres = rng.integers(SEAM_RADIUS, len(speed) - SEAM_RADIUS, size=count)
    return np.array([speed[c - SEAM_RADIUS : c + SEAM_RADIUS].max() for c in centres])


def seam_peaks(features: np.ndarray, lengths: list[int]) -> tuple[list[float], list[float]]:
    """Per seam: the peak joint speed within +-0.5 s, and the peak joint acceleration there divided by the 99th
    percentile of joint acceleration of the same motion away from every seam (a jerk at a seam shows as > 1)."""
    joints = features_to_joints(features)
    speed = joint_speed(joints)
    accel = np.linalg.norm(np.diff(joints, 2, axis=0), axis=-1).max(axis=1) * FPS * FPS
    seams = np.cumsum(lengths)[:-1]
    near = np.zeros(len(accel), dtype=bool)
    for s in seams:
        near[max(s - SEAM_RADIUS, 0) : s + SEAM_RADIUS] = True
    inside = np.percentile(accel[~near], 99)
    peaks = [float(speed[max(s - SEAM_RADIUS, 0) : s + SEAM_RADIUS].max()) for s in seams]
    jerks = [float(accel[max(s - SEAM_RADIUS, 0) : s + SEAM_RADIUS].max() / inside) for s in seams]
    return peaks, jerks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="a prepared dataset JSONL (synthetic corpus)")
    parser.add_argument("--model", type=Path)
    parser.add_argument("--evaluator", type=Path)
    parser.add_argument("--timelines", type=int, default=32, help="three-segment timelines (a multiple of 32 / 3)")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--transition", type=float, default=DEFAULT_TRANSITION)
    parser.add_argument("--guidance", type=float, default=2.5)
    parser.add_argument("--context", type=float, default=0.0, help="seconds each window sees beyond its blend")
    parser.add_argument("--no-cost", action="store_true", help="skip the cost-vs-length timing")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    from motiongpt_cli.data.prepare import load_dataset
    from motiongpt_cli.evaluation.learned import load_evaluator
    from motiongpt_cli.paths import default_evaluator_dir

    print(f"{cpu_summary()}; float32 matmul {matmul_gflops():.0f} GFLOP/s; torch {torch.get_num_threads()} threads")
    pipe = load_pipeline(args.model, device="cpu")
    evaluator = load_evaluator(args.evaluator or default_evaluator_dir())
    records, _, _ = load_dataset(args.data)
    test = [r for r in records if r["split"] == "test"]
    rng = np.random.default_rng(args.seed)
    real_speed = np.concatenate([joint_speed(features_to_joints(np.load(r["motion"])[r["start"] : r["end"]]))
                                 for r in test[:300]])  # fmt: skip
    p99 = float(np.percentile(real_speed, 99))
    # the same +-0.5 s window peak, at random frames of real clips: how often real motion itself stays within p99
    real_windows = [window_peaks(features_to_joints(np.load(r["motion"])[r["start"] : r["end"]]), rng)
                    for r in test[:300]]  # fmt: skip
    real_within = float(np.mean(np.concatenate(real_windows) <= p99))
    sampling = SamplingOptions(steps=args.steps, guidance=args.guidance)
    frames = round(SEGMENT_SECONDS * FPS)
    results = {"machine": cpu_summary(), "steps": args.steps, "guidance": args.guidance,
               "transition": args.transition, "real_p99_speed": p99}  # fmt: skip
    results["real_windows_within_p99"] = round(real_within, 3)
    print(f"real motion: joint speed 99th percentile {p99:.2f} m/s ({len(test[:300])} test clips); "
          f"{real_within:.1%} of its +-0.5 s windows peak within it")  # fmt: skip

    picks = rng.choice(len(test), size=(args.timelines, 3), replace=True)
    names = ("cross-fade (default)", "joint windows", "inpainting chain", "hard cut")
    methods = {name: [] for name in names}
    jerks = {name: [] for name in methods}
    seg_feats = {name: [] for name in methods} | {"alone": []}
    captions = []
    for i, row in enumerate(picks):
        texts = [TextInput(str(rng.choice(test[j]["high"])), test[j]["low"]) for j in row]
        timeline = timeline_from_texts([t.high for t in texts], [SEGMENT_SECONDS], [t.low for t in texts],
                                       transition=args.transition)  # fmt: skip
        lengths = timeline.lengths()
        seed, tl_lows = args.seed * 7919 + i, [[t.low for t in texts]]
        context = round(args.context * FPS)
        made = {}
        for name, blend in (("cross-fade (default)", "crossfade"), ("joint windows", "joint")):
            timeline.blend = blend
            made[name] = sample_timeline(pipe.loaded, timeline, tl_lows, sampling, pipe.encoders, [seed],
                                         context=context)[0]  # fmt: skip
        made["inpainting chain"] = inpainting_chain(pipe, timeline, tl_lows[0], sampling, seed,
                                                    timeline.transition_frames)  # fmt: skip
        cut = timeline_from_texts([t.high for t in texts], [SEGMENT_SECONDS], [t.low for t in texts], transition=0)
        made["hard cut"] = sample_timeline(pipe.loaded, cut, tl_lows, sampling, pipe.encoders, [seed])[0]
        for name, feats in made.items():
            peaks, seam_jerks = seam_peaks(feats, lengths)
            methods[name] += peaks
            jerks[name] += seam_jerks
            seg_feats[name] += [feats[k * frames : (k + 1) * frames] for k in range(3)]
        seed = args.seed * 7919 + i * 3
        seg_feats["alone"] += [single(pipe, t, frames, sampling, seed + k) for k, t in enumerate(texts)]
        captions += [t.high for t in texts]
    text_emb = evaluator.encode_text(captions)
    rows = []
    for name in (*names, "alone"):
        motion_emb = evaluator.encode_motion(seg_feats[name])
        r3 = float(r_precision(text_emb, motion_emb)[2]) if len(captions) >= 32 else float("nan")
        peaks = np.array(methods.get(name, []))
        row = {"method": name, "segment_r3": round(r3, 3)}
        if name == "alone":  # the model's own motion, no seam: how often its +-0.5 s windows stay within p99
            own = np.concatenate([window_peaks(features_to_joints(f), rng) for f in seg_feats[name]])
            row |= {"window_peak_median": round(float(np.median(own)), 2),
                    "windows_within_p99": round(float(np.mean(own <= p99)), 3)}  # fmt: skip
        if peaks.size:
            row |= {"seam_peak_median": round(float(np.median(peaks)), 2), "seam_peak_p90": round(float(
                np.percentile(peaks, 90)), 2), "seams_within_p99": round(float(np.mean(peaks <= p99)), 3),
                "seam_accel_ratio_median": round(float(np.median(jerks[name])), 2)}  # fmt: skip
        rows.append(row)
        print(json.dumps(row))
    results["quality"] = rows
    results["context"] = args.context
    if args.no_cost:
        if args.json:
            args.json.write_text(json.dumps(results, indent=2) + "\n")
        return

    cost = []
    single(pipe, TextInput("a person walks forward", "walk"), 5 * FPS, sampling, 0)  # warm up
    for total_seconds in (10, 30, 60):
        count = total_seconds // 5
        timeline = timeline_from_texts(["a person walks forward"] * count, [5.0], ["walk"] * count,
                                       transition=args.transition)  # fmt: skip
        joint_runs, alone_runs = [], []
        for _ in range(3):  # interleaved, the median of three: other load on the machine hits both alike
            start = time.perf_counter()
            sample_timeline(pipe.loaded, timeline, [["walk"] * count], sampling, pipe.encoders, [args.seed])
            joint_runs.append(time.perf_counter() - start)
            start = time.perf_counter()
            for k in range(count):
                single(pipe, TextInput("a person walks forward", "walk"), 5 * FPS, sampling, k)
            alone_runs.append(time.perf_counter() - start)
        joint_s, alone_s = float(np.median(joint_runs)), float(np.median(alone_runs))
        row = {"seconds": total_seconds, "timeline_s": round(joint_s, 2), "segments_alone_s": round(alone_s, 2),
               "ratio": round(joint_s / alone_s, 3), "s_per_second": round(joint_s / total_seconds, 3)}  # fmt: skip
        cost.append(row)
        print(json.dumps(row))
    results["cost"] = cost
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
