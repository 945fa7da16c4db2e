"""Start-up cost of ``motiongpt generate`` as whole processes (issue 17; goal: overhead <= 1.5x ``import torch``).

    python benchmarks/bench_startup.py               # 5 rounds, every command once per round
    python benchmarks/bench_startup.py --runs 9

Times, in one run and interleaved round by round (so a drift of the shared machine hits every command alike), the
wall time of these processes, and prints each median:

- ``python -c "import torch"``: the floor every generation pays;
- ``motiongpt --help``;
- ``motiongpt generate "a person waves" --low wave --steps 1 -n 1 -o TMP --overwrite`` with a warm embedding cache
  (both texts cached by an untimed first run: the model is never loaded);
- the same with a cold cache (``MOTIONGPT_HOME`` a new folder each run with no embeddings, only MiniLM's ONNX export:
  MiniLM loads through ONNX Runtime and encodes both texts);
- the same with a cold cache through sentence-transformers (what every cold run paid before the ONNX path; forced by
  making onnxruntime look absent);
- the first run ever (``MOTIONGPT_HOME`` new and empty: MiniLM is exported to ONNX, checked, then used), once per
  machine and weights;
- the same without ``--low`` over a format-2 index (the embedded one plus its low-level embeddings), the high-level
  text cached: the proposed low-level text comes with its embedding, so again no model loads.

"Sampling" is the first ``iter_samples`` call (1 DDIM step, classifier-free guidance, forward kinematics) in a fresh
process, the cost a generation cannot avoid; "steady" is the median of later calls in that process. The ratio
``(generate - sampling) / import torch`` is the issue's figure, printed from the medians and as the median of the
per-round ratios (a round's commands run back to back, so that one is the steadier on a noisy machine). Also
printed: the CPU model and SIMD features from /proc/cpuinfo and a float32 matmul GFLOP/s probe, so figures from two
machines can be put side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TEXT, LOW = "a person waves", "wave"
# the CLI in a process where onnxruntime looks absent, so MiniLM loads through sentence-transformers
WITHOUT_ONNX = ("import sys; import motiongpt_cli.text.minilm_onnx as m; m.onnx_runtime_installed = lambda: False; "
                "from motiongpt_cli.cli import main; sys.argv = ['motiongpt', *sys.argv[1:]]; main()")

SAMPLING_PROBE = """
import json, statistics, sys, time
from motiongpt_cli.api import load_pipeline
from motiongpt_cli.generation import iter_samples
pipe = load_pipeline(device="cpu", cache_dir=sys.argv[1])
plan = pipe.plan(sys.argv[2], sys.argv[3], n=1, steps=1, seed=0)
def once():
    start = time.perf_counter()
    list(iter_samples(pipe.loaded, plan.jobs, plan.frames, plan.sampling, pipe.encoders, device="cpu"))
    return time.perf_counter() - start
first = once()
print(json.dumps({"first": first, "steady": statistics.median(once() for _ in range(5))}))
"""


def cpu_summary() -> str:
    """``model; N logical CPUs; features`` from /proc/cpuinfo (the SIMD flags that matter for float32 matmuls)."""
    model, flags = "unknown CPU", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(value.split())
    except OSError:
        pass
    wanted = ["sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
              "avx512_bf16", "amx_tile", "amx_bf16"]  # fmt: skip
    return f"{model}; {os.cpu_count()} logical CPUs; {' '.join(f for f in wanted if f in flags) or 'no SIMD flags'}"


def matmul_gflops(n: int = 1024, reps: int = 10) -> float:
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(times) / 1e9


def timed(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    out = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - start
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stderr[-2000:]}")
    return seconds


def format2_index(path: Path, cache: Path) -> Path:
    """The embedded index with its low-level texts' embeddings added (what ``motiongpt index build`` now writes)."""
    from motiongpt_cli.paths import default_index_path
    from motiongpt_cli.text.encoders import load_encoder
    from motiongpt_cli.text.index import load_index

    index = load_index(default_index_path())
    index.low_texts = list(dict.fromkeys(index.low))
    index.low_embeddings = load_encoder(index.encoder, cache_dir=cache).encode(index.low_texts)
    return index.save(path, overwrite=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="rounds (every command once per round)")
    args = parser.parse_args()
    motiongpt = shutil.which("motiongpt") or sys.exit("the motiongpt command is not installed")
    print(f"CPU: {cpu_summary()}")
    print(f"float32 matmul 1024^3: {matmul_gflops():.1f} GFLOP/s (torch, {__import__('torch').get_num_threads()} "
          f"threads)")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        base = {k: v for k, v in os.environ.items() if not k.startswith("MOTIONGPT_")}
        warm_env = {**base, "MOTIONGPT_HOME": str(tmp / "warm-home")}
        generate = [motiongpt, "--no-config", "generate", TEXT, "--steps", "1", "-n", "1", "-o", str(tmp / "out"),
                    "--overwrite", "--seed", "0"]  # fmt: skip
        index = format2_index(tmp / "index-v2.npz", tmp / "warm-home" / "cache")
        timed([*generate, "--low", LOW], warm_env)  # fills the warm cache with both texts
        onnx = tmp / "warm-home" / "cache" / "onnx"

        def cold_home() -> dict[str, str]:
            home = Path(tempfile.mkdtemp(dir=tmp))
            (home / "cache").mkdir()
            (home / "cache" / "onnx").symlink_to(onnx)
            return {**base, "MOTIONGPT_HOME": str(home)}

        commands = {
            "import torch": ([sys.executable, "-c", "import torch"], lambda: base),
            "motiongpt --help": ([motiongpt, "--help"], lambda: base),
            "generate, warm cache": ([*generate, "--low", LOW], lambda: warm_env),
            "generate, cold cache": ([*generate, "--low", LOW], cold_home),
            "generate, cold cache, sentence-transformers": ([sys.executable, "-c", WITHOUT_ONNX, *generate[1:],
                                                             "--low", LOW], cold_home),
            "generate, first run ever (ONNX export)": ([*generate, "--low", LOW],
                                                       lambda: {**base, "MOTIONGPT_HOME": tempfile.mkdtemp(dir=tmp)}),
            "generate, proposed low (format-2 index), warm": ([*generate, "--index", str(index)], lambda: warm_env),
        }  # fmt: skip
        times: dict[str, list[float]] = {name: [] for name in commands}
        sampling: list[dict] = []
        probe = [sys.executable, "-c", SAMPLING_PROBE, str(tmp / "warm-home" / "cache"), TEXT, LOW]
        for _ in range(args.runs):
            for name, (cmd, env) in commands.items():
                times[name].append(timed(cmd, env()))
            sampling.append(json.loads(subprocess.run(probe, env=warm_env, capture_output=True, text=True,
                                                      check=True).stdout.splitlines()[-1]))  # fmt: skip
    median = {name: statistics.median(values) for name, values in times.items()}
    first = statistics.median(s["first"] for s in sampling)
    steady = statistics.median(s["steady"] for s in sampling)
    width = max(map(len, median))
    print(f"\nwhole processes, median of {args.runs} (min-max):")
    for name, value in median.items():
        print(f"  {name:<{width}}  {value:6.2f} s  ({min(times[name]):.2f}-{max(times[name]):.2f})")
    print(f"  {'sampling, first call in a process':<{width}}  {first:6.2f} s")
    print(f"  {'sampling, steady':<{width}}  {steady:6.2f} s")
    print("\n(generate - sampling) / import torch: of the medians; [median, min-max of the per-round ratios]")
    torch_s = median["import torch"]
    for name in [n for n in commands if n.startswith("generate")]:
        rounds = [(t - s["first"]) / t0 for t, s, t0 in zip(times[name], sampling, times["import torch"], strict=True)]
        print(f"  {name:<{width}}  {(median[name] - first) / torch_s:5.2f}  [{statistics.median(rounds):.2f}, "
              f"{min(rounds):.2f}-{max(rounds):.2f}]")  # fmt: skip


if __name__ == "__main__":
    main()
