"""Validation loss and evaluator FID of a training run's snapshots, against steps (the embedded model's
convergence curve, docs/train.md).

    python benchmarks/bench_training_curve.py --data synth.jsonl --snapshots runs/snapshots --evaluator EV_DIR \
        --out runs/curve.jsonl [--limit 64 --replications 3 --steps 20]

Each snapshot is a model directory (config.json + model.safetensors + normalization.safetensors) named
``step-N``. The validation loss is the training loss (x0 MSE + the geometric terms, paper eq. 2-6) on fixed batches
of the validation split with fixed timesteps, noise and crops (the same for every snapshot); FID, R@3 and MM-Dist
come from ``motiongpt evaluate`` on the validation split with ground-truth low-level texts. One JSON line per
snapshot, appended; snapshots already in ``--out`` are skipped, so the script resumes.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from motiongpt_cli.checkpoint import load_model
from motiongpt_cli.data.dataset import DualTextDataset
from motiongpt_cli.data.prepare import load_dataset
from motiongpt_cli.diffusion.losses import LossWeights, diffusion_loss
from motiongpt_cli.evaluation.runner import EvalOptions, evaluate, open_evaluator
from motiongpt_cli.paths import cache_dir
from motiongpt_cli.text.encoders import load_encoder


@torch.no_grad()
def validation_loss(loaded, dataset: DualTextDataset, encoders: dict, *, batches: int, batch_size: int,
                    seed: int = 0) -> dict[str, float]:  # fmt: skip
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(dataset), generator=g)[: batches * batch_size].tolist()
    mean = torch.from_numpy(loaded.mean)
    std = torch.from_numpy(loaded.std)
    totals: dict[str, float] = {}
    model = loaded.model.eval()
    for b in range(batches):
        items = [dataset[i] for i in order[b * batch_size : (b + 1) * batch_size]]
        if not items:
            break
        x0 = torch.stack([it["motion"] for it in items])
        mask = torch.stack([it["mask"] for it in items])
        frames = int(mask.sum(1).max())
        x0, mask = x0[:, :frames], mask[:, :frames]
        t = torch.randint(0, loaded.schedule.num_train_timesteps, (len(items),), generator=g)
        x_t = loaded.schedule.add_noise(x0, torch.randn(x0.shape, generator=g), t)
        high = torch.from_numpy(encoders["high"].encode([it["high"] for it in items]))
        low = torch.from_numpy(encoders["low"].encode([it["low"] for it in items])) if "low" in encoders else None
        terms = diffusion_loss(model(x_t, t, high, low, mask), x0, mask, mean, std, LossWeights())
        for k, v in terms.items():
            totals[k] = totals.get(k, 0.0) + float(v) / batches
    return totals


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--snapshots", type=Path, required=True, help="folder of step-N model directories")
    ap.add_argument("--evaluator", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--limit", type=int, default=64)
    ap.add_argument("--replications", type=int, default=3)
    ap.add_argument("--steps", type=int, default=20, help="DDIM steps for the FID samples")
    ap.add_argument("--loss-batches", type=int, default=8)
    args = ap.parse_args()

    records, mean, std = load_dataset(args.data)
    done = set()
    if args.out.is_file():
        done = {json.loads(line)["step"] for line in args.out.read_text().splitlines() if line.strip()}
    evaluator = open_evaluator(args.evaluator, glove=None, device="cpu", cache_dir=cache_dir())
    snapshots = sorted(args.snapshots.glob("step-*"), key=lambda p: int(p.name.split("-")[1]))
    for snap in snapshots:
        step = int(snap.name.split("-")[1])
        if step in done:
            continue
        t0 = time.perf_counter()
        loaded = load_model(snap)
        text = loaded.text
        encoders = {"high": load_encoder(text.high_encoder, cache_dir=cache_dir())}
        if loaded.model.config.conditioning == "dual":
            encoders["low"] = load_encoder(text.low_encoder, cache_dir=cache_dir())
        dataset = DualTextDataset(records, mean, std, split="val", low_source="gt",
                                  max_frames=loaded.model.config.max_frames, seed=0)  # fmt: skip
        losses = validation_loss(loaded, dataset, encoders, batches=args.loss_batches, batch_size=32)
        options = EvalOptions(split="val", replications=args.replications, steps=args.steps, limit=args.limit, seed=0)
        result = evaluate(loaded, records, mean, std, evaluator, options, encoders=encoders)
        row = {"step": step, "val_loss": round(losses["total"], 5), "val_loss_rec": round(losses["rec"], 5),
               **{f"{m}": [round(v[0], 4), round(v[1], 4)] for m, v in result.rows["generated"].items()
                  if m in ("fid", "r_precision_top3", "mm_dist")},
               "seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip
        with open(args.out, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
