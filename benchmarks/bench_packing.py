"""Packing, measured: seconds per training step and per sampling forward with the denoiser's per-token layers on
every (padded) token (``pack=False``) against on the clip frames only (``pack=True``, what training and sampling
run), in one run on one machine.

    python benchmarks/bench_packing.py --data synth.jsonl [--config examples/train-embedded.toml] [--batches 6]
        [--runs 2] [--threads 1] [--json out]

Each batch draws ``batch_size`` clip lengths from the training split of ``--data`` (cut to the model's maximum),
as the training loop's random batches do, and is padded to its longest clip. One step is the forward, the
diffusion loss with the config's weights, the backward and an AdamW step, on random features and text
embeddings (the cost does not depend on their values). One sampling forward is the guided one: the batch twice
(conditional and unconditional) in eval mode, without gradients, as ``generate`` and ``evaluate`` run it. The two
settings are interleaved ``--runs`` times over the same batches; each figure is the median. The CPU's features and
float32 matmul rate are printed beside them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from bench_startup import cpu_summary, matmul_gflops  # noqa: E402

from motiongpt_cli.diffusion.denoiser import MotionDenoiser  # noqa: E402
from motiongpt_cli.diffusion.losses import diffusion_loss  # noqa: E402
from motiongpt_cli.training_config import load_run_config  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def train_lengths(data: Path) -> np.ndarray:
    lengths = [r["end"] - r["start"] for r in map(json.loads, data.read_text().splitlines()) if r["split"] == "train"]
    if not lengths:
        sys.exit(f"{data} has no training clips")
    return np.asarray(lengths)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="prepared JSONL (its training clips' lengths)")
    parser.add_argument("--config", type=Path, default=ROOT / "examples" / "train-embedded.toml")
    parser.add_argument("--batches", type=int, default=6)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    run = load_run_config(args.config)
    lengths = np.minimum(train_lengths(args.data), run.model.max_frames)
    rng = np.random.default_rng(args.seed)
    B, F = run.train.batch_size, run.model.feature_dim
    batches = []
    for _ in range(args.batches):
        lens = torch.from_numpy(lengths[rng.integers(0, len(lengths), B)])
        frames = int(lens.max())
        batches.append((torch.randn(B, frames, F), torch.arange(frames)[None] < lens[:, None]))
    valid = sum(int(m.sum()) for _, m in batches) / sum(m.numel() for _, m in batches)

    torch.manual_seed(args.seed)
    model = MotionDenoiser(run.model).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=run.train.lr)
    t = torch.randint(0, 1000, (B,))
    high, low = torch.randn(B, run.model.high_dim), torch.randn(B, run.model.low_dim)
    mean, std = torch.zeros(F), torch.ones(F)

    def seconds_per_step(pack: bool) -> float:
        start = time.perf_counter()
        for x0, mask in batches:
            terms = diffusion_loss(model(x0, t, high, low, mask, pack=pack), x0, mask, mean, std, run.loss)
            optimizer.zero_grad(set_to_none=True)
            terms["total"].backward()
            optimizer.step()
        return (time.perf_counter() - start) / len(batches)

    @torch.no_grad()
    def seconds_per_forward(pack: bool) -> float:
        model.eval()
        t2, keep = torch.cat([t, t]), torch.cat([torch.ones(B, dtype=torch.bool), torch.zeros(B, dtype=torch.bool)])
        start = time.perf_counter()
        for x0, mask in batches:
            model(torch.cat([x0, x0]), t2, torch.cat([high, high]), torch.cat([low, low]), torch.cat([mask, mask]),
                  keep, keep, pack=pack)  # fmt: skip
        model.train()
        return (time.perf_counter() - start) / len(batches)

    times: dict[tuple[str, bool], list[float]] = {}
    for measure in (seconds_per_step, seconds_per_forward):
        measure(False), measure(True)  # warm-up
        for _ in range(args.runs):
            for pack in (False, True):
                times.setdefault((measure.__name__, pack), []).append(measure(pack))
    padded, packed = (statistics.median(times["seconds_per_step", p]) for p in (False, True))
    padded_fwd, packed_fwd = (statistics.median(times["seconds_per_forward", p]) for p in (False, True))
    config = args.config.resolve()
    config_name = str(config.relative_to(ROOT) if config.is_relative_to(ROOT) else config)
    result = {
        "cpu": cpu_summary(), "threads": args.threads, "matmul_gflops": round(matmul_gflops(), 1),
        "config": config_name, "batch_size": B, "valid_token_share": round(valid, 3),
        "padded_s_per_step": round(padded, 3), "packed_s_per_step": round(packed, 3),
        "speedup": round(padded / packed, 2), "padded_s_per_sampling_forward": round(padded_fwd, 3),
        "packed_s_per_sampling_forward": round(packed_fwd, 3), "sampling_speedup": round(padded_fwd / packed_fwd, 2),
    }  # fmt: skip
    print(f"{result['cpu']}, {args.threads} thread(s), float32 matmul {result['matmul_gflops']} GFLOP/s")
    print(f"batch {B}, {valid:.0%} of the padded frames are clip frames")
    print(f"training step: padded {padded:.3f} s, packed {packed:.3f} s: {padded / packed:.2f}x")
    print(f"guided sampling forward (batch {2 * B}): padded {padded_fwd:.3f} s, packed {packed_fwd:.3f} s: "
          f"{padded_fwd / packed_fwd:.2f}x")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
