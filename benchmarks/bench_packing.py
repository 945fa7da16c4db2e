"""Packing, measured: seconds per training step and per sampling forward with the denoiser's per-token layers on
every (padded) token (``pack=False``) against on the clip frames only (``pack=True``, what training and sampling
run), with the packed attention either as one kernel on the padded layout (the GPU default) or clip by clip (the
CPU default), in one run on one machine.

    python benchmarks/bench_packing.py --data synth.jsonl [--config examples/train-embedded.toml] [--batches 6]
        [--runs 2] [--threads 1] [--json out]

Each batch draws ``batch_size`` clip lengths from the training split of ``--data`` (cut to the model's maximum),
as the training loop's random batches do, and is padded to its longest clip. One step is the forward, the
diffusion loss with the config's weights, the backward and an AdamW step, on random features and text
embeddings (the cost does not depend on their values). One sampling forward is the guided one: the batch twice
(conditional and unconditional) in eval mode, without gradients, as ``generate`` and ``evaluate`` run it. The three
settings are interleaved ``--runs`` times over the same batches; each figure is the median. The CPU's features and
float32 matmul rate are printed beside them.
"""

from __future__ import annotations

import argparse
import functools
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

    settings = {"padded": False, "packed, batched attention": False, "packed, per-clip attention": True}

    def use(setting: str) -> bool:  # the attention of the packed path, forced either way; whether to pack
        model._encode_packed = functools.partial(MotionDenoiser._encode_packed, model,
                                                 per_clip=setting.endswith("per-clip attention"))  # fmt: skip
        return setting != "padded"

    def seconds_per_step(setting: str) -> float:
        pack = use(setting)
        start = time.perf_counter()
        for x0, mask in batches:
            terms = diffusion_loss(model(x0, t, high, low, mask, pack=pack), x0, mask, mean, std, run.loss)
            optimizer.zero_grad(set_to_none=True)
            terms["total"].backward()
            optimizer.step()
        return (time.perf_counter() - start) / len(batches)

    @torch.no_grad()
    def seconds_per_forward(setting: str) -> float:
        pack = use(setting)
        model.eval()
        t2, keep = torch.cat([t, t]), torch.cat([torch.ones(B, dtype=torch.bool), torch.zeros(B, dtype=torch.bool)])
        start = time.perf_counter()
        for x0, mask in batches:
            model(torch.cat([x0, x0]), t2, torch.cat([high, high]), torch.cat([low, low]), torch.cat([mask, mask]),
                  keep, keep, pack=pack)  # fmt: skip
        model.train()
        return (time.perf_counter() - start) / len(batches)

    times: dict[tuple[str, str], list[float]] = {}
    for measure in (seconds_per_step, seconds_per_forward):
        for setting in settings:
            measure(setting)  # warm-up
        for _ in range(args.runs):
            for setting in settings:
                times.setdefault((measure.__name__, setting), []).append(measure(setting))
    config = args.config.resolve()
    config_name = str(config.relative_to(ROOT) if config.is_relative_to(ROOT) else config)
    result = {
        "cpu": cpu_summary(), "threads": args.threads, "matmul_gflops": round(matmul_gflops(), 1),
        "config": config_name, "batch_size": B, "valid_token_share": round(valid, 3),
    }  # fmt: skip
    print(f"{result['cpu']}, {args.threads} thread(s), float32 matmul {result['matmul_gflops']} GFLOP/s")
    print(f"batch {B}, {valid:.0%} of the padded frames are clip frames")
    for measure, label in (("seconds_per_step", "training step"),
                           ("seconds_per_forward", f"guided sampling forward (batch {2 * B})")):  # fmt: skip
        medians = {setting: statistics.median(times[measure, setting]) for setting in settings}
        result[measure] = {setting: round(sec, 3) for setting, sec in medians.items()}
        result[measure + "_speedup"] = {setting: round(medians["padded"] / sec, 2) for setting, sec in medians.items()}
        print(label + ": " + ", ".join(f"{setting} {sec:.3f} s ({medians['padded'] / sec:.2f}x)"
                                       for setting, sec in medians.items()))  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
