"""Speed of an imported MDM-size model: DDPM-1000 (the original's own sampler) vs DDIM-50/20/10, one 196-frame motion.

    python benchmarks/bench_imported.py                    # 5 paired rounds, DDPM chunks of 25 steps, scaled
    python benchmarks/bench_imported.py --ddpm-timed 1000  # every DDPM step timed (4 full DDPM-1000 runs a round)
    python benchmarks/bench_imported.py --quick            # 1 round, DDPM chunks of 10 steps

The model is MDM's HumanML3D architecture (width 512, 8 layers, 4 heads, feed-forward 1024, a 512-d CLIP condition,
1000 diffusion steps) with random weights, written as a checkpoint in MDM's own key layout (``seqTransEncoder.*``,
``embed_text``, both ``pe`` buffers) and ``args.json``, then brought in by ``motiongpt model import``, so what is
timed is what ``motiongpt generate --model DIR`` runs: the imported model's defaults (guidance 2.5 as two separate
forwards, as MDM's ``ClassifierFreeSampleModel``; 196 frames sampled: MDM's June 2023 to February 2025 regime), with a
fixed 512-d text feature in place of CLIP (its cost is per text, not per step). One sample per run (batch 1), the
way MDM's ``sample/generate.py`` is used for a prompt.

Samplers run interleaved, paired: each round is DDPM, DDIM-50, DDPM, DDIM-20, DDPM, DDIM-10, DDPM, and each DDIM
run's ratio is taken against the mean of the two DDPM chunks timed just before and after it, so a drift of a shared
machine's load hits both sides of a ratio alike. Rows are medians over rounds, ratios medians over runs. A DDPM chunk
is its first ``--ddpm-timed`` steps, scaled to 1000, as in ``bench_sampling.py``: every step of either sampler is the
same two forwards plus a few element-wise operations (``--ddpm-timed 1000`` times every step). Both wall time and
this process's CPU time are reported: on a shared machine the wall time also counts waiting for a core, the CPU
time only the work (with two threads it is up to twice the wall time; a virtual machine's host contention still
shows in both). The machine line (CPU model, SIMD flags, fp32 matmul GFLOP/s, threads, load average) comes
from ``bench_startup.py``'s probes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_startup import cpu_summary, matmul_gflops  # noqa: E402

from motiongpt_cli.checkpoint import load_model  # noqa: E402
from motiongpt_cli.diffusion.denoiser import DenoiserConfig, MotionDenoiser  # noqa: E402
from motiongpt_cli.generation import Job, sample_batch, sampling_options  # noqa: E402
from motiongpt_cli.model_import import ImportOptions, import_checkpoint  # noqa: E402
from motiongpt_cli.text.encoders import TextEncoder  # noqa: E402

FRAMES = 196
# our names -> MDM's (model_import._RENAMES, the other way round)
TO_MDM = {"input_proj.": "input_process.poseEmbedding.", "time_mlp.0.": "embed_timestep.time_embed.0.",
          "time_mlp.2.": "embed_timestep.time_embed.2.", "high_proj.": "embed_text.",
          "output_proj.": "output_process.poseFinal.", "encoder.": "seqTransEncoder."}  # fmt: skip


def mdm_checkpoint(folder: Path, steps: int) -> Path:
    """A random MDM-size ``humanml_trans_enc_512``-like checkpoint (MDM's key layout) with its ``args.json``."""
    config = DenoiserConfig(width=512, layers=8, heads=4, ff_size=1024, conditioning="high", high_dim=512,
                            null_condition="zero_embedding", mask_padding=False, sinusoid="mdm")  # fmt: skip
    torch.manual_seed(0)
    state = {}
    for key, value in MotionDenoiser(config).state_dict().items():
        prefix = next(p for p in TO_MDM if key.startswith(p))
        state[TO_MDM[prefix] + key[len(prefix) :]] = value
    pe = torch.zeros(5000, 1, 512)
    state["sequence_pos_encoder.pe"] = state["embed_timestep.sequence_pos_encoder.pe"] = pe
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(state, folder / "model000200000.pt")
    args = {"arch": "trans_enc", "dataset": "humanml", "latent_dim": 512, "layers": 8, "cond_mask_prob": 0.1,
            "noise_schedule": "cosine", "diffusion_steps": steps, "sigma_small": True, "mask_frames": False,
            "text_encoder_type": "clip"}  # fmt: skip
    (folder / "args.json").write_text(json.dumps(args, indent=4, sort_keys=True))
    return folder / "model000200000.pt"


class FixedText(TextEncoder):
    """A fixed random 512-d feature for every text (CLIP runs once per text, not per step)."""

    def encode(self, texts):
        return np.random.default_rng(0).standard_normal((len(texts), 512)).astype(np.float32)


class _Stop(Exception):
    pass


def seconds_per_motion(loaded, sampler: str, steps: int, timed: int, encoders: dict) -> tuple[float, float]:
    """(wall, CPU) seconds of one 196-frame motion with the imported model's defaults; ``timed < steps`` stops
    after that many steps and scales (every step costs the same two forwards). CPU time is this process's, all
    threads: on a shared machine it counts the work done, not the time spent waiting for a core."""
    sampling = sampling_options(loaded, sampler=sampler, steps=steps)
    jobs = [Job(0, 0, "a person walks", None, "none", 0, "")]

    def on_step(i: int, n: int) -> None:
        if i >= timed:
            raise _Stop

    start, cpu = time.perf_counter(), time.process_time()
    try:
        sample_batch(loaded, jobs, [FRAMES], sampling, encoders, on_step=on_step if timed < steps else None)
    except _Stop:
        pass
    scale = steps / min(timed, steps)
    return (time.perf_counter() - start) * scale, (time.process_time() - cpu) * scale


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--ddpm-timed", type=int, default=25, help="steps timed per DDPM-1000 chunk (scaled)")
    parser.add_argument("--quick", action="store_true", help="1 round, DDPM chunks of 10 steps")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    rounds, ddpm_timed = (1, min(args.ddpm_timed, 10)) if args.quick else (args.rounds, min(args.ddpm_timed, 1000))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        rng = np.random.default_rng(0)
        np.save(tmp / "Mean.npy", rng.standard_normal(263).astype(np.float32) * 0.1)
        np.save(tmp / "Std.npy", (0.5 + rng.random(263)).astype(np.float32))
        result = import_checkpoint(mdm_checkpoint(tmp / "humanml_trans_enc_512", 1000), tmp / "model",
                                   ImportOptions(kind="mdm", humanml3d=tmp))  # fmt: skip
        loaded = load_model(result.path)
    loaded.model.eval()
    encoders = {"high": FixedText(result.high_encoder, 512)}
    ddpm = sampling_options(loaded, sampler="ddpm")
    assert (ddpm.steps, ddpm.guidance, ddpm.guidance_passes) == (1000, 2.5, "separate"), ddpm
    gflops = matmul_gflops()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    machine = (f"{cpu_summary()}; fp32 matmul 1024^3 {gflops:.0f} GFLOP/s; torch {torch.__version__}, "
               f"{torch.get_num_threads()} threads; load average {load}")  # fmt: skip
    print(f"machine: {machine}")
    forward = loaded.model.flops_per_forward(1, FRAMES) / 1e9
    print(f"model: MDM-size (width 512, 8 layers, 4 heads, ff 1024, CLIP 512), imported; {FRAMES} frames, guidance "
          f"2.5 in two forwards per step ({2 * forward:.2f} GFLOP per step)")  # fmt: skip
    ddims = {"DDIM-50": 50, "DDIM-20": 20, "DDIM-10": 10}
    ddpm: list[tuple[float, float]] = []  # (wall, CPU) of each DDPM chunk, scaled to 1000 steps
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in ddims}
    ratios: dict[str, list[tuple[float, float]]] = {name: [] for name in ddims}
    seconds_per_motion(loaded, "ddim", 10, 10, encoders)  # warm-up
    for r in range(rounds):
        # D I50 D I20 D I10 D: each DDIM run between two DDPM chunks, its ratio against their mean
        before = seconds_per_motion(loaded, "ddpm", 1000, ddpm_timed, encoders)
        ddpm.append(before)
        for name, steps in ddims.items():
            run = seconds_per_motion(loaded, "ddim", steps, steps, encoders)
            after = seconds_per_motion(loaded, "ddpm", 1000, ddpm_timed, encoders)
            ddpm.append(after)
            runs[name].append(run)
            ratios[name].append(tuple((b + a) / 2 / x for b, a, x in zip(before, after, run, strict=True)))
            before = after
        print(f"round {r + 1}/{rounds}: DDPM-1000 " + ", ".join(f"{w:.0f}" for w, _ in ddpm[-4:]) + " s; "
              + ", ".join(f"{n} {runs[n][-1][0]:.2f} s" for n in ddims), flush=True)  # fmt: skip
    note = f"; DDPM-1000 timed over {ddpm_timed} steps per chunk and scaled" if ddpm_timed < 1000 else ""
    print(f"\none {FRAMES}-frame motion, median of {rounds} round(s){note}; a ratio is the median over runs of the "
          "DDIM run against the mean of the DDPM chunks timed just before and after it")  # fmt: skip
    print("| sampler | steps | wall s per motion | DDPM-1000 / this, wall | CPU s per motion | DDPM-1000 / this, CPU |")
    print("|---|---|---|---|---|---|")
    med = [statistics.median(x[i] for x in ddpm) for i in (0, 1)]
    print(f"| DDPM-1000 | 1000 | {med[0]:.1f} | 1x | {med[1]:.1f} | 1x |")
    out = [{"sampler": "DDPM-1000", "steps": 1000, "wall_seconds": round(med[0], 2), "cpu_seconds": round(med[1], 2),
            "chunks": [[round(w, 2), round(c, 2)] for w, c in ddpm]}]  # fmt: skip
    for name, steps in ddims.items():
        m = [statistics.median(x[i] for x in runs[name]) for i in (0, 1)]
        q = [statistics.median(x[i] for x in ratios[name]) for i in (0, 1)]
        print(f"| {name} | {steps} | {m[0]:.2f} | {q[0]:.1f}x | {m[1]:.2f} | {q[1]:.1f}x |")
        out.append({"sampler": name, "steps": steps, "wall_seconds": round(m[0], 3), "cpu_seconds": round(m[1], 3),
                    "ddpm_ratio_wall": round(q[0], 2), "ddpm_ratio_cpu": round(q[1], 2),
                    "runs": [[round(w, 3), round(c, 3)] for w, c in runs[name]]})  # fmt: skip
    per_step = statistics.median([w / 1000 for w, _ in ddpm] + [w / n for name, n in ddims.items()
                                                                for w, _ in runs[name]])  # fmt: skip
    load_end = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"(median wall time per step {1000 * per_step:.0f} ms = {2 * forward / per_step:.0f} GFLOP/s, "
          f"{2 * forward / per_step / gflops:.0%} of the matmul probe; load average at the end {load_end})")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, "frames": FRAMES, "ddpm_timed": ddpm_timed,
                                         "rows": out}, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
