"""Sampling and training speed on this machine: seconds per 196-frame motion, forward GFLOP/s, training steps/s.

    python benchmarks/bench_sampling.py                          # MDM-size (random weights) and the embedded model
    python benchmarks/bench_sampling.py --model runs/embedded    # time a trained model directory instead
    python benchmarks/bench_sampling.py --quick                  # fewer repetitions (a smoke run)

Everything is measured in one run, so ratios hold on a noisy machine: a plain fp32 matmul (2048^3) gives the peak
the denoiser forward is compared with. Sampling uses classifier-free guidance (2.5: the conditional and
unconditional passes in one batched forward). DDPM-1000 is timed over its first ``--ddpm-timed`` steps and scaled to
1000 (every step costs one identical forward); DDIM rows run every step. Training steps use full 196-frame
batches, the worst case (real batches are cropped to their longest clip).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from motiongpt_cli.checkpoint import load_model
from motiongpt_cli.diffusion.denoiser import DenoiserConfig, MotionDenoiser
from motiongpt_cli.diffusion.losses import diffusion_loss
from motiongpt_cli.diffusion.sampler import SamplingOptions, sample
from motiongpt_cli.diffusion.schedule import NoiseSchedule

MDM = DenoiserConfig(width=512, layers=8, heads=4, ff_size=1024, dropout=0.1, high_dim=512, low_dim=384)
EMBEDDED = DenoiserConfig(width=256, layers=4, heads=4, ff_size=512, dropout=0.0, high_dim=384, low_dim=384)


class _Stop(Exception):
    pass


def _best(fn, reps: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def matmul_peak(reps: int) -> float:
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    return 2 * 2048**3 / _best(lambda: a @ b, reps) / 1e9


def forward_gflops(model: MotionDenoiser, batch: int, frames: int, reps: int) -> float:
    c = model.config
    x, t = torch.randn(batch, frames, c.feature_dim), torch.randint(0, 1000, (batch,))
    high, low = torch.randn(batch, c.high_dim), torch.randn(batch, c.low_dim)
    mask = torch.ones(batch, frames, dtype=torch.bool)
    model.eval()
    with torch.no_grad():
        seconds = _best(lambda: model(x, t, high, low if c.uses_low else None, mask), reps)
    return model.flops_per_forward(batch, frames) / seconds / 1e9


def seconds_per_motion(model, schedule, sampler: str, steps: int, batch: int, frames: int, timed: int) -> float:
    c = model.config
    g = torch.Generator().manual_seed(0)
    high, low = torch.randn(batch, c.high_dim, generator=g), torch.randn(batch, c.low_dim, generator=g)
    lengths = torch.full((batch,), frames)
    opts = SamplingOptions(steps=steps, sampler=sampler, guidance=2.5)
    timed = min(timed, steps)

    def on_step(i, n):
        if i >= timed:
            raise _Stop

    start = time.perf_counter()
    try:
        sample(model, schedule, high, low if c.uses_low else None, lengths, opts, g, on_step=on_step)
    except _Stop:
        pass
    return (time.perf_counter() - start) * steps / timed / batch


def train_steps_per_second(config: DenoiserConfig, batch: int, frames: int, steps: int) -> float:
    torch.manual_seed(0)
    model = MotionDenoiser(config).train()
    schedule = NoiseSchedule(1000)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    mean, std = torch.zeros(263), torch.ones(263)
    x0 = torch.randn(batch, frames, 263) * 0.1
    mask = torch.ones(batch, frames, dtype=torch.bool)
    high, low = torch.randn(batch, config.high_dim), torch.randn(batch, config.low_dim)

    def step():
        t = torch.randint(0, 1000, (batch,))
        x_t = schedule.add_noise(x0, torch.randn_like(x0), t)
        out = model(x_t, t, high, low if config.uses_low else None, mask)
        loss = diffusion_loss(out, x0, mask, mean, std)["total"]
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="a trained model directory for the embedded row")
    parser.add_argument("--frames", type=int, default=196)
    parser.add_argument("--ddpm-timed", type=int, default=100, help="DDPM-1000 steps actually timed")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    reps = 2 if args.quick else 5
    torch.manual_seed(0)
    models = {"mdm-size (random)": (MotionDenoiser(MDM).eval(), NoiseSchedule(1000))}
    if args.model:
        loaded = load_model(args.model)
        models["embedded"] = (loaded.model.eval(), loaded.schedule)
    else:
        models["embedded-size (random)"] = (MotionDenoiser(EMBEDDED).eval(), NoiseSchedule(1000))
    results: dict = {"threads": torch.get_num_threads(), "torch": torch.__version__, "frames": args.frames}
    peak = matmul_peak(reps * 2)
    results["matmul_fp32_gflops"] = round(peak, 1)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; fp32 matmul 2048^3: {peak:.0f} GFLOP/s")
    rows = []
    for name, (model, schedule) in models.items():
        for batch in (1, 16):
            gf = forward_gflops(model, 2 * batch, args.frames, reps)  # the guided batch
            print(f"{name}: forward, batch {2 * batch} (guided {batch}): {gf:.0f} GFLOP/s = {gf / peak:.0%} of peak")
            rows.append({"model": name, "what": f"forward batch {2 * batch}", "gflops": round(gf, 1),
                         "of_peak": round(gf / peak, 3)})  # fmt: skip
        for sampler, steps in (("ddpm", 1000), ("ddim", 50), ("ddim", 20), ("ddim", 10)):
            for batch in (1, 16):
                timed = args.ddpm_timed if sampler == "ddpm" else steps
                if args.quick:
                    timed = min(timed, 10)
                s = seconds_per_motion(model, schedule, sampler, steps, batch, args.frames, timed)
                note = f" (timed {timed} of {steps} steps)" if timed < steps else ""
                print(f"{name}: {sampler.upper()}-{steps}, batch {batch}, guidance 2.5: {s:.2f} s per motion{note}")
                rows.append({"model": name, "what": f"{sampler}-{steps}", "batch": batch, "seconds_per_motion":
                             round(s, 3), "timed_steps": timed})  # fmt: skip
    for name, cfg, batch in (("mdm-size", MDM, 64), ("embedded-size", EMBEDDED, 32)):
        sps = train_steps_per_second(cfg, batch, args.frames, 2 if args.quick else 5)
        print(f"{name}: training, batch {batch} x {args.frames} frames: {sps:.2f} steps/s")
        rows.append({"model": name, "what": f"train batch {batch}", "steps_per_second": round(sps, 3)})
    results["rows"] = rows
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
