"""Speed of an imported MDM-size model: DDPM-1000 (the original's own sampler) vs DDIM-50/20/10, one 196-frame motion.

    python benchmarks/bench_imported.py                    # 3 rounds, DDPM-1000 timed over 250 steps and scaled
    python benchmarks/bench_imported.py --ddpm-timed 1000  # the whole DDPM-1000 motion timed
    python benchmarks/bench_imported.py --quick            # 1 round, DDPM timed over 100 steps

The model is MDM's HumanML3D architecture (width 512, 8 layers, 4 heads, feed-forward 1024, a 512-d CLIP condition,
1000 diffusion steps) with random weights, written as a checkpoint in MDM's own key layout (``seqTransEncoder.*``,
``embed_text``, both ``pe`` buffers) and ``args.json``, then brought in by ``motiongpt model import``, so what is
timed is what ``motiongpt generate --model DIR`` runs: the imported model's defaults (guidance 2.5 as two separate
forwards, as MDM's ``ClassifierFreeSampleModel``; 196 frames sampled: MDM's June 2023 to February 2025 regime), with a
fixed 512-d text feature in place of CLIP (its cost is per text, not per step). One sample per run (batch 1), the
way MDM's ``sample/generate.py`` is used for a prompt.

The four samplers run **interleaved step by step**: one thread per sampler, and a baton that lets one guided step
run at a time, in turn (DDPM, DDIM-50, DDIM-20, DDIM-10, DDPM, ...); a sampler's time is the sum of its own turns.
The DDIM samplers start a new motion whenever one finishes, for as long as the DDPM motion runs; a DDIM row is the
mean over its finished motions. On a shared machine (the one measured for docs/models.md: a 2-vCPU virtual machine
running other jobs, where one minute can be 10x slower than the next) a slow spell then costs every sampler alike,
and the ratios, measured in the same run, hold. The DDPM motion is timed over its first ``--ddpm-timed`` steps and
scaled to 1000 (``--ddpm-timed 1000`` runs it whole): every step of either sampler is the same two forwards plus a
few element-wise operations. Rounds repeat the whole run; the table shows the median round. The machine line (CPU
model, SIMD flags, fp32 matmul GFLOP/s, threads, load average) comes from ``bench_startup.py``'s probes.
"""


from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
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
ROWS = {"DDPM-1000": ("ddpm", 1000), "DDIM-50": ("ddim", 50), "DDIM-20": ("ddim", 20), "DDIM-10": ("ddim", 10)}
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


class Baton:
    """Lets one of ``n`` threads run at a time, in turn; a thread that has left is skipped."""

    def __init__(self, n: int) -> None:
        self.cond = threading.Condition()
        self.turn, self.alive = 0, [True] * n

    def wait(self, k: int) -> None:
        with self.cond:
            self.cond.wait_for(lambda: self.turn == k)

    def _next(self, k: int) -> None:
        n = len(self.alive)
        for j in range(1, n + 1):
            if self.alive[(k + j) % n]:
                self.turn = (k + j) % n
                break
        self.cond.notify_all()

    def pass_on(self, k: int) -> None:
        with self.cond:
            self._next(k)

    def leave(self, k: int) -> None:
        with self.cond:
            self.alive[k] = False
            self._next(k)


def interleaved(loaded, encoders: dict, ddpm_timed: int) -> dict[str, float]:
    """Seconds per 196-frame motion of each sampler (the imported model's defaults), their steps interleaved one by
    one: the DDPM motion over its first ``ddpm_timed`` steps, scaled to 1000; each DDIM row the mean of the
    motions it finished meanwhile."""
    baton, done = Baton(len(ROWS)), threading.Event()
    motions: dict[str, list[float]] = {name: [] for name in ROWS}
    errors: list[BaseException] = []
    jobs = [Job(0, 0, "a person walks", None, "none", 0, "")]

    def worker(k: int, name: str, sampler: str, steps: int) -> None:
        sampling = sampling_options(loaded, sampler=sampler, steps=steps)
        spent, start = 0.0, 0.0

        def on_step(i: int, n: int) -> None:
            nonlocal spent, start
            spent += time.perf_counter() - start
            if (sampler == "ddpm" and i >= ddpm_timed) or (sampler == "ddim" and done.is_set() and i < n):
                raise _Stop  # a DDIM motion unfinished when the DDPM one is done is not counted
            baton.pass_on(k)
            baton.wait(k)
            start = time.perf_counter()

        try:
            baton.wait(k)
            start = time.perf_counter()
            while True:  # the DDPM worker leaves through _Stop; a DDIM one when the DDPM motion is done
                spent = 0.0
                sample_batch(loaded, jobs, [FRAMES], sampling, encoders, on_step=on_step)
                spent += time.perf_counter() - start  # the de-normalisation after the last step
                motions[name].append(spent)
                start = time.perf_counter()
        except _Stop:
            if sampler == "ddpm":
                motions[name].append(spent * steps / ddpm_timed)
                done.set()
        except BaseException as exc:  # noqa: BLE001 - re-raised by the main thread
            errors.append(exc)
            done.set()
        finally:
            baton.leave(k)

    threads = [threading.Thread(target=worker, args=(k, name, *spec)) for k, (name, spec) in enumerate(ROWS.items())]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    short = [name for name, times in motions.items() if not times]
    if short:
        raise SystemExit(f"{', '.join(short)} finished no motion while DDPM ran: raise --ddpm-timed")
    return {name: statistics.mean(times) for name, times in motions.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--ddpm-timed", type=int, default=250, help="DDPM-1000 steps actually timed (scaled)")
    parser.add_argument("--quick", action="store_true", help="1 round, DDPM timed over 100 steps")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    rounds, ddpm_timed = (1, 100) if args.quick else (args.rounds, max(60, min(args.ddpm_timed, 1000)))
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
    interleaved(loaded, encoders, 60)  # warm-up
    runs = []
    for r in range(rounds):
        runs.append(interleaved(loaded, encoders, ddpm_timed))
        print(f"round {r + 1}/{rounds}: " + ", ".join(f"{n} {s:.2f} s" for n, s in runs[-1].items()), flush=True)
    note = f"; DDPM-1000 timed over its first {ddpm_timed} steps and scaled" if ddpm_timed < 1000 else ""
    print(f"\none {FRAMES}-frame motion, samplers interleaved step by step, median of {rounds} round(s){note}:")
    print("| sampler | s per motion | ms per step | DDPM-1000 / this (same run) |")
    print("|---|---|---|---|")
    out = []
    for name, (_, steps) in ROWS.items():
        sec = statistics.median(run[name] for run in runs)
        ratio = statistics.median(run["DDPM-1000"] / run[name] for run in runs)
        print(f"| {name} | {sec:.2f} | {1000 * sec / steps:.0f} | {ratio:.1f}x |")
        out.append({"sampler": name, "steps": steps, "seconds": round(sec, 3),
                    "ms_per_step": round(1000 * sec / steps, 1), "ddpm_ratio": round(ratio, 2),
                    "rounds": [round(run[name], 3) for run in runs]})  # fmt: skip
    per_step = statistics.median(run["DDPM-1000"] / 1000 for run in runs)
    load_end = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"(a DDPM step {1000 * per_step:.0f} ms = {2 * forward / per_step:.0f} GFLOP/s, "
          f"{2 * forward / per_step / gflops:.0%} of the matmul probe; load average at the end {load_end})")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, "frames": FRAMES, "ddpm_timed": ddpm_timed,
                                         "rows": out}, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
