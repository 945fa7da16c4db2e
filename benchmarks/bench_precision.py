"""Sampling precision (issue 17 sec. 3): speed of fp32, bf16 and int8 at the embedded model's size and at MDM's, and
the embedded model's FID / R@3 / MM-Dist under each, on the synthetic test split with the same seeds.

    python benchmarks/bench_precision.py --data synth.jsonl [--limit 256 --replications 3 --steps 50] [--json out]

Speed: seconds per 196-frame motion, DDIM-50, batch 1, guidance 2.5 (one doubled forward per step), the median of
three interleaved runs per precision. MDM size is MDM's trans_enc (512 wide, 8 layers, 4 heads, ff 1024) with
random weights and the seed's dual conditioning. Every figure comes from one run, printed with the CPU's features
and its float32 matmul rate; ``auto`` in :mod:`motiongpt_cli.diffusion.precision` is set from these tables.
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

from motiongpt_cli.diffusion.denoiser import DenoiserConfig, MotionDenoiser  # noqa: E402
from motiongpt_cli.diffusion.precision import native_bf16_cpu, resolve_precision  # noqa: E402
from motiongpt_cli.diffusion.sampler import SamplingOptions, sample  # noqa: E402
from motiongpt_cli.diffusion.schedule import NoiseSchedule  # noqa: E402

PRECISIONS = ("fp32", "bf16", "int8")


def seconds_per_motion(model, schedule, precision: str, steps: int, frames: int = 196, batch: int = 1) -> float:
    high, low = torch.randn(batch, model.config.high_dim), torch.randn(batch, model.config.low_dim)
    options = SamplingOptions(steps=steps, precision=precision)
    start = time.perf_counter()
    sample(model, schedule, high, low, torch.tensor([frames] * batch), options,
           [torch.Generator().manual_seed(i) for i in range(batch)])  # fmt: skip
    return (time.perf_counter() - start) / batch


def batch_table(models: dict, steps: int = 10, batch: int = 16) -> list[dict]:
    """Seconds per motion at batch 1 and at ``batch`` (one run each, interleaved), per size and precision."""
    rows = []
    for name, (model, schedule) in models.items():
        for p in PRECISIONS:
            one = seconds_per_motion(model, schedule, p, steps)
            many = seconds_per_motion(model, schedule, p, steps, batch=batch)
            row = {"size": name, "precision": p, "steps": steps, "batch_1_s": round(one, 3),
                   f"batch_{batch}_s": round(many, 3), "batching_speedup": round(one / many, 2)}  # fmt: skip
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def speed_table(models: dict, steps: int) -> list[dict]:
    rows = []
    for name, (model, schedule) in models.items():
        for p in PRECISIONS:  # warm up (int8 quantises once, autocast builds its caches)
            seconds_per_motion(model, schedule, p, 2)
        runs = {p: [] for p in PRECISIONS}
        for _ in range(3):
            for p in PRECISIONS:
                runs[p].append(seconds_per_motion(model, schedule, p, steps))
        base = float(np.median(runs["fp32"]))
        for p in PRECISIONS:
            sec = float(np.median(runs[p]))
            row = {"size": name, "precision": p, "seconds": round(sec, 3), "speedup": round(base / sec, 2)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def quality_table(args) -> list[dict]:
    from motiongpt_cli.checkpoint import load_model
    from motiongpt_cli.data.prepare import load_dataset
    from motiongpt_cli.evaluation.learned import load_evaluator
    from motiongpt_cli.evaluation.runner import EvalOptions, evaluate
    from motiongpt_cli.paths import default_evaluator_dir, default_model_dir
    from motiongpt_cli.text.encoders import load_encoder

    loaded = load_model(args.model or default_model_dir())
    evaluator = load_evaluator(args.evaluator or default_evaluator_dir())
    records, mean, std = load_dataset(args.data)
    encoders = {"high": load_encoder(loaded.config["text"]["high_encoder"]),
                "low": load_encoder(loaded.config["text"]["low_encoder"])}  # fmt: skip
    rows = []
    for p in PRECISIONS:
        options = EvalOptions(replications=args.replications, limit=args.limit, steps=args.steps, seed=0, precision=p)
        start = time.perf_counter()
        result = evaluate(loaded, records, mean, std, evaluator, options, encoders=encoders)
        gen = result.rows["generated"]
        row = {"precision": p, "seconds": round(time.perf_counter() - start, 1)}
        for metric in ("fid", "r_precision_top3", "mm_dist", "diversity"):
            row[metric] = [round(gen[metric][0], 4), round(gen[metric][1], 4)]
        rows.append(row)
        print(json.dumps(row), flush=True)
    base = rows[0]
    for row in rows[1:]:
        row["fid_within_fp32_ci"] = bool(abs(row["fid"][0] - base["fid"][0]) <= base["fid"][1])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="a prepared dataset JSONL (synthetic corpus)")
    parser.add_argument("--model", type=Path)
    parser.add_argument("--evaluator", type=Path)
    parser.add_argument("--limit", type=int, default=256)
    parser.add_argument("--replications", type=int, default=3)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--skip-speed", action="store_true", help="only the quality table")
    parser.add_argument("--skip-quality", action="store_true", help="only the speed table")
    parser.add_argument("--batch", action="store_true", help="also batch 1 against batch 16 (DDIM-10)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    from motiongpt_cli.checkpoint import load_model
    from motiongpt_cli.paths import default_model_dir

    print(f"{cpu_summary()}; float32 matmul {matmul_gflops():.0f} GFLOP/s; torch {torch.get_num_threads()} threads; "
          f"native bf16: {native_bf16_cpu()}; auto -> {resolve_precision('auto')}")  # fmt: skip
    embedded = load_model(args.model or default_model_dir())
    torch.manual_seed(0)
    mdm = MotionDenoiser(DenoiserConfig(width=512, layers=8, heads=4, ff_size=1024, dropout=0.1, max_frames=196,
                                        conditioning="dual", high_dim=512, low_dim=384)).eval()  # fmt: skip
    models = {"embedded": (embedded.model.eval(), embedded.schedule), "mdm": (mdm, NoiseSchedule(1000))}
    results = {"machine": cpu_summary(), "matmul_gflops": round(matmul_gflops()), "steps": args.steps}
    if not args.skip_speed:
        results["speed"] = speed_table(models, args.steps)
    if args.batch:
        results["batch"] = batch_table(models)
    if not args.skip_quality:
        results["quality"] = quality_table(args)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
