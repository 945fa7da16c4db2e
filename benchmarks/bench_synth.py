"""Time `motiongpt data synth`: N clips with 1 worker (baseline) and 2 workers, in the same run.

python benchmarks/bench_synth.py --clips 400
time motiongpt data synth -o /tmp/syn4000 --clips 4000      # the issue's figure (target: under 2 minutes)
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from motiongpt_cli.data.corpus import generate_corpus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=400)
    args = parser.parse_args()
    timings = {}
    with tempfile.TemporaryDirectory() as tmp:
        for workers in (1, 2):
            out = Path(tmp) / f"w{workers}"
            start = time.perf_counter()
            stats = generate_corpus(out, clips=args.clips, seed=0, workers=workers)
            timings[workers] = time.perf_counter() - start
            shutil.rmtree(out)
            print(
                f"workers={workers}: {args.clips} clips (+{stats.mirrored} mirrored) in {timings[workers]:.1f} s, "
                f"{args.clips / timings[workers]:.1f} clips/s, skating ratio {stats.foot_skating_ratio:.3f}"
            )
    print(
        f"speed-up with 2 workers: {timings[1] / timings[2]:.2f}x; "
        f"4000 clips with 2 workers extrapolate to {timings[2] * 4000 / args.clips:.0f} s"
    )


if __name__ == "__main__":
    main()
