"""Time `joints_to_smpl` on a 196-frame clip (HumanML3D's longest): median of several runs (goal: <= 50 ms).

python benchmarks/bench_smpl.py                         # the real clip 012314, extended to 196 frames
python benchmarks/bench_smpl.py --runs 50 --model ~/body_models/smpl/SMPL_NEUTRAL.pkl   # also time fit_shape
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from motiongpt_cli.motion.body_model import load_smpl_model
from motiongpt_cli.motion.smpl import joints_to_smpl, smpl_to_joints

REFERENCE_DATA = Path(__file__).resolve().parents[2] / "shared" / "reference-data"
CLIP = REFERENCE_DATA / "humanml3d" / "new_joints" / "012314.npy"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def clip_196() -> np.ndarray:
    """012314 (170 frames) played on into its own reverse: 196 continuous frames."""
    joints = np.load(CLIP)
    return np.concatenate([joints, joints[::-1][1:]])[:196]


def timing(fn, runs: int) -> str:
    """Wall-clock median and minimum, and the median CPU time of this process (which a busy machine inflates
    less), in ms."""
    fn()  # warm-up: first torch calls, imports
    wall, cpu = [], []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
    median, cpu_median = statistics.median(wall), statistics.median(cpu)
    return f"median {median:.1f} ms, min {min(wall):.1f} ms, CPU median {cpu_median:.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--model", type=Path, help="an SMPL model file: also time fit_shape=True")
    args = parser.parse_args()
    joints = clip_196()
    model = load_smpl_model(args.model) if args.model else None
    print(f"CPU: {cpu_model()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; {len(joints)} frames")
    params = joints_to_smpl(joints)
    mpjpe = np.linalg.norm(smpl_to_joints(params) - joints, axis=-1).mean() * 1000
    print(f"MPJPE on SMPL neutral: {mpjpe:.1f} mm")
    for threads in dict.fromkeys((torch.get_num_threads(), 1)):  # torch's default, then one thread
        torch.set_num_threads(threads)
        print(f"{threads} torch thread(s), {args.runs} runs")
        print(f"  joints_to_smpl: {timing(lambda: joints_to_smpl(joints), args.runs)}")
        if model is not None:
            fit = timing(lambda: joints_to_smpl(joints, model=model, fit_shape=True), args.runs)
            print(f"  with fit_shape: {fit}")


if __name__ == "__main__":
    main()
