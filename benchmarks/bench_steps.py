"""Quality against sampling steps (issue 17 sec. 2): FID, R@3, MM-Dist and Diversity with 95% CIs of one model on a
synthetic test split for DDPM-1000, DDIM-100/50/25/10/5 and DDPM-50 (guidance 2.5, the same seeds for every row),
and, given a distilled student (``motiongpt train --distill``), its lcm-1/2/4 rows on the same texts and seeds.

    python benchmarks/bench_steps.py --data synth.jsonl [--model DIR --evaluator DIR] [--student DIR] \
        [--limit 128 --replications 3] [--precision fp32|bf16|int8] --out steps.jsonl

One JSON line per row, appended to ``--out``; rows already there are skipped, so a long run resumes. The summary
names the best row (lowest FID) and the fewest-step DDIM row whose FID lies within the best row's 95% interval
(the default step count follows it, docs/generate.md; also the fewest such row whose Diversity, and then also whose
R@3, stays within the best row's interval), and the fastest row within DDPM-1000's interval (the
setting ``bench_speedup.py`` times). Every row's seconds come from this run, with the machine's
CPU features and float32 matmul rate printed beside them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_startup import cpu_summary, matmul_gflops  # noqa: E402

TEACHER_ROWS = ("ddpm-1000", "ddim-100", "ddim-50", "ddim-25", "ddim-10", "ddim-5", "ddpm-50")
STUDENT_ROWS = ("lcm-1", "lcm-2", "lcm-4")


def parse_row(name: str) -> tuple[str, int]:
    sampler, steps = name.split("-")
    return sampler, int(steps)


def run_row(name: str, loaded, records, mean, std, evaluator, encoders, args) -> dict:
    from motiongpt_cli.evaluation.runner import EvalOptions, evaluate

    sampler, steps = parse_row(name)
    guidance = None if sampler == "lcm" else args.guidance
    options = EvalOptions(replications=args.replications, limit=args.limit, steps=steps, sampler=sampler,
                          guidance=guidance, seed=0, precision=args.precision, split=args.split)  # fmt: skip
    start = time.perf_counter()
    result = evaluate(loaded, records, mean, std, evaluator, options, encoders=encoders)
    seconds = time.perf_counter() - start
    gen = result.rows["generated"]
    row = {"row": name, "model": str(loaded.path), "sampler": sampler, "steps": steps,
           "precision": args.precision, "seconds": round(seconds, 1),
           "motions": args.limit * args.replications}  # fmt: skip
    for metric in ("fid", "r_precision_top3", "mm_dist", "diversity"):
        row[metric] = [round(gen[metric][0], 4), round(gen[metric][1], 4)]
    row["real"] = {m: round(result.rows["real"][m][0], 4) for m in ("fid", "r_precision_top3", "mm_dist")}
    return row


def fewest_ddim(rows: list[dict]) -> int | None:
    steps = sorted(r["steps"] for r in rows if r["sampler"] == "ddim")
    return steps[0] if steps else None


def summarise(rows: list[dict]) -> dict:
    """Of the teacher's rows: the best (lowest FID), those within its 95% interval, and the fewest-step DDIM row among
    them, also among those whose Diversity is not below the best row's interval (fewer steps blur: FID can stay while
    the motions grow alike), and among those whose R@3 is not below it either (nor may they follow the text less).
    Of a student's rows: those within the teacher's DDIM-50 interval (sec. 4). Of all rows: the fastest within
    DDPM-1000's interval (sec. 5). A row is within an interval when its FID is at most its top."""
    teacher = [r for r in rows if r["sampler"] != "lcm"]
    out: dict = {}
    if teacher:
        best = min(teacher, key=lambda r: r["fid"][0])
        within = [r for r in teacher if r["fid"][0] <= best["fid"][0] + best["fid"][1]]
        diverse = [r for r in within if r["diversity"][0] >= best["diversity"][0] - best["diversity"][1]]
        faithful = [r for r in diverse if r["r_precision_top3"][0] >= best["r_precision_top3"][0]
                    - best["r_precision_top3"][1]]  # fmt: skip
        out.update({"best": best["row"], "best_fid": best["fid"], "within_best_ci": [r["row"] for r in within]})
        out["fewest_ddim_steps_within"] = fewest_ddim(within)
        out["fewest_ddim_steps_within_keeping_diversity"] = fewest_ddim(diverse)
        out["fewest_ddim_steps_within_keeping_diversity_and_r3"] = fewest_ddim(faithful)
    ref50 = next((r for r in teacher if r["row"] == "ddim-50"), None)
    students = [r for r in rows if r["sampler"] == "lcm"]
    if ref50 is not None and students:
        out["lcm_within_ddim50_ci"] = [r["row"] for r in students if r["fid"][0] <= ref50["fid"][0] + ref50["fid"][1]]
    ref = next((r for r in rows if r["row"] == "ddpm-1000"), None)
    if ref is not None:
        close = [r for r in rows if r["fid"][0] <= ref["fid"][0] + ref["fid"][1]]
        out["within_ddpm1000_ci"] = [r["row"] for r in close]
        out["fastest_within_ddpm1000"] = min(close, key=lambda r: r["seconds"])["row"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, type=Path)
    ap.add_argument("--model", type=Path, help="the model (default: the embedded one)")
    ap.add_argument("--evaluator", type=Path, help="the evaluator (default: the embedded one)")
    ap.add_argument("--student", type=Path, help="a model distilled from --model (adds its lcm rows)")
    ap.add_argument("--rows", default=",".join(TEACHER_ROWS), help="teacher rows, e.g. ddim-50,ddpm-1000")
    ap.add_argument("--student-rows", default=",".join(STUDENT_ROWS))
    ap.add_argument("--limit", type=int, default=128)
    ap.add_argument("--replications", type=int, default=3)
    ap.add_argument("--guidance", type=float, default=2.5)
    ap.add_argument("--split", default="test")
    ap.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "int8"),
                    help="every row's arithmetic (one per run, so the rows compare steps alone)")  # fmt: skip
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()

    from motiongpt_cli.checkpoint import load_model
    from motiongpt_cli.data.prepare import load_dataset
    from motiongpt_cli.evaluation.learned import load_evaluator
    from motiongpt_cli.paths import default_evaluator_dir, default_model_dir
    from motiongpt_cli.text.encoders import load_encoder

    print(json.dumps({"cpu": cpu_summary(), "matmul_gflops": round(matmul_gflops(), 1)}), flush=True)
    records, mean, std = load_dataset(args.data)
    evaluator = load_evaluator(args.evaluator or default_evaluator_dir())
    done = {}
    if args.out.is_file():
        for line in args.out.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                done[(row["model"], row["row"], row.get("precision", "fp32"))] = row
    plan = [(args.model or default_model_dir(), name) for name in args.rows.split(",") if name]
    if args.student is not None:
        plan += [(args.student, name) for name in args.student_rows.split(",") if name]
    rows = []
    for model_dir, name in plan:
        loaded = load_model(model_dir)
        key = (str(loaded.path), name, args.precision)
        if key in done:
            rows.append(done[key])
            continue
        encoders = {"high": load_encoder(loaded.text.high_encoder)}
        if loaded.text.low_encoder:
            encoders["low"] = load_encoder(loaded.text.low_encoder)
        row = run_row(name, loaded, records, mean, std, evaluator, encoders, args)
        with open(args.out, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)
        rows.append(row)
    print(json.dumps({"summary": summarise(rows)}), flush=True)


if __name__ == "__main__":
    main()
