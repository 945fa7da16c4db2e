"""Plot a training run's convergence curve (``benchmarks/bench_training_curve.py``'s JSON lines) as a PNG.

    python scripts/plot_curve.py training/embedded-v2/curve.jsonl -o docs/img/embedded-v2-curve.png

Two panels against training steps: the validation loss, and the evaluator's FID on the validation split with its 95%
interval as a bar. Drawn with Pillow (a dependency already), so no plotting library is needed.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from PIL import Image, ImageDraw

W, H, PAD_L, PAD_R, PAD_T, PAD_B = 520, 300, 62, 16, 30, 42
INK, GRID, LINE, BAR = (30, 30, 30), (225, 225, 225), (31, 119, 180), (150, 190, 220)


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    span = hi - lo or 1.0
    raw = span / n
    step = min((m * 10**e for e in range(-4, 7) for m in (1, 2, 5) if m * 10**e >= raw), default=raw)
    start = -(-lo // step) * step
    return [start + i * step for i in range(n + 3) if lo - 1e-9 <= start + i * step <= hi + 1e-9]


def panel(points: list[tuple[float, float, float]], title: str, ylabel: str) -> Image.Image:
    """(step, value, half-interval) points -> a line plot with interval bars."""
    img = Image.new("RGB", (W, H), "white")
    d = ImageDraw.Draw(img)
    xs = [p[0] for p in points]
    hi_y = max(p[1] + p[2] for p in points)
    lo_y, hi_y = 0.0, hi_y * 1.05
    x0, x1 = min(xs) - 0.02 * max(xs), max(xs) * 1.02

    def to_px(x: float, y: float) -> tuple[float, float]:
        px = PAD_L + (x - x0) / (x1 - x0) * (W - PAD_L - PAD_R)
        py = H - PAD_B - (y - lo_y) / (hi_y - lo_y) * (H - PAD_T - PAD_B)
        return px, py

    for t in _ticks(lo_y, hi_y):
        _, py = to_px(x0, t)
        d.line([(PAD_L, py), (W - PAD_R, py)], fill=GRID)
        d.text((PAD_L - 6, py), f"{t:g}", fill=INK, anchor="rm")
    for t in _ticks(x0, x1):
        px, _ = to_px(t, lo_y)
        d.line([(px, PAD_T), (px, H - PAD_B)], fill=GRID)
        d.text((px, H - PAD_B + 6), f"{t:,.0f}", fill=INK, anchor="mt")
    d.rectangle([PAD_L, PAD_T, W - PAD_R, H - PAD_B], outline=INK)
    for x, y, half in points:
        if half > 0:
            (px, top), (_, bottom) = to_px(x, y + half), to_px(x, max(y - half, lo_y))
            d.line([(px, top), (px, bottom)], fill=BAR, width=3)
    d.line([to_px(x, y) for x, y, _ in points], fill=LINE, width=2)
    for x, y, _ in points:
        px, py = to_px(x, y)
        d.ellipse([px - 3, py - 3, px + 3, py + 3], fill=LINE)
    d.text((W / 2, 8), title, fill=INK, anchor="mt")
    d.text((W / 2, H - 14), "training steps", fill=INK, anchor="mm")
    d.text((6, PAD_T - 18), ylabel, fill=INK)
    return img


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("curve", type=Path, help="JSON lines with step, val_loss and fid [mean, half-interval]")
    ap.add_argument("-o", "--out", type=Path, required=True)
    ap.add_argument("--from-step", type=int, default=0, help="leave out earlier snapshots (to see the tail)")
    args = ap.parse_args()
    rows = sorted((json.loads(line) for line in args.curve.read_text().splitlines() if line.strip()),
                  key=lambda r: r["step"])  # fmt: skip
    rows = [r for r in rows if r["step"] >= args.from_step]
    if not rows:
        raise SystemExit(f"{args.curve}: no rows")
    loss = panel([(r["step"], r["val_loss"], 0.0) for r in rows], "validation loss", "loss")
    fid = panel([(r["step"], r["fid"][0], r["fid"][1]) for r in rows], "FID on the validation split (95% interval)",
                "FID")  # fmt: skip
    out = Image.new("RGB", (W * 2, H), "white")
    out.paste(loss, (0, 0))
    out.paste(fid, (W, 0))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    out.save(args.out, optimize=True)
    print(f"wrote {args.out} ({len(rows)} snapshots, steps {rows[0]['step']:,} to {rows[-1]['step']:,})")


if __name__ == "__main__":
    main()
