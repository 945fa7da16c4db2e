"""The figure that counts (issue 17 sec. 5): seconds per 196-frame motion for MDM's own way of sampling against our
fastest setting that keeps the embedded model's FID within the interval of its DDPM-1000 row
(``benchmarks/bench_steps.py``), both at MDM size, in one run on one machine.

    python benchmarks/bench_speedup.py --fast lcm-4 [--precision auto] [--student DIR] [--runs 3] [--json out]

MDM's work: DDPM-1000, batch 1, classifier-free guidance as two separate forwards per step (its
``ClassifierFreeSampleModel``), fp32; timed over its first ``--ddpm-timed`` steps and scaled to 1000 (every step is
the same forward). Ours: the ``--fast`` row (``lcm-K``: K conditional forwards; ``ddim-K``: K doubled forwards in
one batch) in ``--precision`` (resolved for this CPU and MDM's width, as ``generate`` would), batch 1. MDM size is
MDM's trans_enc (512 wide, 8 layers, 4 heads, ff 1024) with random weights and the seed's dual conditioning. Also
the embedded model's seconds per motion at the same setting (its distilled student for lcm rows, ``--student``).
Each figure is the median of ``--runs`` interleaved runs, printed with the CPU's features and float32 matmul rate.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from bench_startup import cpu_summary, matmul_gflops  # noqa: E402

from motiongpt_cli.diffusion.denoiser import DenoiserConfig, MotionDenoiser  # noqa: E402
from motiongpt_cli.diffusion.precision import resolve_precision  # noqa: E402
from motiongpt_cli.diffusion.sampler import SamplingOptions, sample  # noqa: E402
from motiongpt_cli.diffusion.schedule import NoiseSchedule  # noqa: E402

MDM = DenoiserConfig(width=512, layers=8, heads=4, ff_size=1024, dropout=0.1, high_dim=512, low_dim=384)
FRAMES = 196


class _Stop(Exception):
    pass


def seconds(model, schedule, options: SamplingOptions, *, timed_steps: int | None = None) -> float:
    """Seconds for one 196-frame motion; with ``timed_steps``, the first steps timed and scaled to all of them."""
    high, low = torch.randn(1, model.config.high_dim), torch.randn(1, model.config.low_dim)
    if timed_steps is None:
        start = time.perf_counter()
        sample(model, schedule, high, low, torch.tensor([FRAMES]), options, torch.Generator().manual_seed(0))
        return time.perf_counter() - start
    marks: list[float] = []

    def on_step(i: int, total: int) -> None:
        marks.append(time.perf_counter())
        if i >= timed_steps:
            raise _Stop

    start = time.perf_counter()
    try:
        sample(model, schedule, high, low, torch.tensor([FRAMES]), options, torch.Generator().manual_seed(0),
               on_step=on_step)  # fmt: skip
    except _Stop:
        pass
    per_step = (marks[-1] - start) / len(marks)
    return per_step * options.steps


def options_for(row: str, precision: str, width: int) -> SamplingOptions:
    sampler, steps = row.split("-")
    arithmetic = resolve_precision(precision, "cpu", width=width, batch=1)
    return SamplingOptions(steps=int(steps), sampler=sampler, guidance=1.0 if sampler == "lcm" else 2.5,
                           precision=arithmetic)  # type: ignore[arg-type]  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fast", required=True, help="our setting, e.g. lcm-4 or ddim-10 (from bench_steps.py)")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--student", type=Path, help="the embedded model's distilled student (for an lcm row)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--ddpm-timed", type=int, default=40)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    from motiongpt_cli.checkpoint import load_model
    from motiongpt_cli.paths import default_model_dir

    torch.manual_seed(0)
    mdm = MotionDenoiser(MDM).eval()
    schedule = NoiseSchedule(1000)
    sampler = args.fast.split("-")[0]
    if sampler == "lcm" and args.student is None:
        ap.error("an lcm row needs --student (the embedded model's distilled student)")
    embedded = load_model(args.student if sampler == "lcm" else default_model_dir())
    mdm_own = SamplingOptions(steps=1000, sampler="ddpm", guidance=2.5, guidance_passes="separate")
    ours_mdm = options_for(args.fast, args.precision, MDM.width)
    ours_embedded = options_for(args.fast, args.precision, embedded.model.config.width)
    info = {"cpu": cpu_summary(), "matmul_gflops": round(matmul_gflops(), 1), "threads": torch.get_num_threads(),
            "fast": args.fast, "precision_mdm_size": ours_mdm.precision,
            "precision_embedded": ours_embedded.precision}  # fmt: skip
    print(json.dumps(info), flush=True)
    seconds(mdm, schedule, ours_mdm)  # warm-up (and int8/bf16 model preparation)
    seconds(embedded.model, embedded.schedule, ours_embedded)
    runs: dict[str, list[float]] = {"mdm_own": [], "ours_mdm_size": [], "ours_embedded": []}
    for _ in range(args.runs):
        runs["mdm_own"].append(seconds(mdm, schedule, mdm_own, timed_steps=args.ddpm_timed))
        runs["ours_mdm_size"].append(seconds(mdm, schedule, ours_mdm))
        runs["ours_embedded"].append(seconds(embedded.model, embedded.schedule, ours_embedded))
        print(json.dumps({k: round(v[-1], 4) for k, v in runs.items()}), flush=True)
    med = {k: statistics.median(v) for k, v in runs.items()}
    result = {**info, **{f"{k}_s": round(v, 4) for k, v in med.items()},
              "speedup_at_mdm_size": round(med["mdm_own"] / med["ours_mdm_size"], 1),
              "embedded_s_per_motion": round(med["ours_embedded"], 4)}  # fmt: skip
    print(json.dumps(result), flush=True)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
