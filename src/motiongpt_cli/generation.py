"""Text -> motion files (the core of ``motiongpt generate``).

Each requested sample is a :class:`Job` with its own texts and seed. Jobs are sampled in batches; every finished
sample is written at once, each file atomically, so an interruption loses nothing already finished. All output
paths are checked before the first sample is drawn, so a refused overwrite costs nothing.

Seeds: ``seed`` (drawn at random when not given, and always recorded) and the job's (text, sample) position give each
sample its own ``torch.Generator``, so a sample does not depend on batch size or on the other samples.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .atomic import check_writable
from .checkpoint import LoadedModel
from .convert import write_outputs
from .diffusion.sampler import SamplingOptions, sample
from .errors import MotionGPTError
from .motion.features import features_to_joints
from .motion.io import MotionRecord, slugify
from .motion.skeleton import FPS
from .training import concat_text

MIN_FRAMES = 40  # HumanML3D (and our datasets) drop clips shorter than 2 s


@dataclass
class TextInput:
    high: str
    low: str | None = None  # a user-given low-level text for every sample of this input


@dataclass
class Job:
    text_index: int
    sample_index: int
    high: str
    low: str | None  # None: high-level only
    low_source: str  # "user", "none", or the prompt backend ("retrieval", "openai", "retrieval (fallback)")
    seed: int
    stem: str
    outputs: dict[str, Path] = field(default_factory=dict)


@dataclass
class GenerateOptions:
    frames: int = 120
    sampling: SamplingOptions = field(default_factory=SamplingOptions)
    formats: tuple[str, ...] = ("npz", "bvh")
    out_dir: Path = Path(".")
    overwrite: bool = False
    batch_size: int = 16


def sample_seed(seed: int, text_index: int, sample_index: int) -> int:
    return int(np.random.SeedSequence([seed, text_index, sample_index]).generate_state(1)[0])


def clamp_frames(frames: int, max_frames: int, warn: Callable[[str], None]) -> int:
    if frames < MIN_FRAMES or frames > max_frames:
        clamped = min(max(frames, MIN_FRAMES), max_frames)
        warn(f"{frames} frames is outside the model's range [{MIN_FRAMES}, {max_frames}]; using {clamped}")
        return clamped
    return frames


def plan_jobs(
    inputs: Sequence[TextInput],
    n: int,
    *,
    seed: int | None,
    low_mode: str,
    prompter=None,
) -> tuple[list[Job], int]:
    """One job per (input, sample). ``low_mode``: ``given`` (use each input's low text, or prompt for inputs without
    one), ``none`` (high-level only). Returns the jobs and the seed used."""
    if n < 1:
        raise MotionGPTError(f"-n must be at least 1, got {n}")
    if not inputs:
        raise MotionGPTError("no text to generate from")
    for item in inputs:
        if not item.high.strip():
            raise MotionGPTError("empty text", hint="give a non-empty high-level description")
        if item.low is not None and not item.low.strip():
            raise MotionGPTError("empty --low text", hint="omit --low to have low-level texts proposed, or --no-low")
    if seed is None:
        seed = secrets.randbelow(2**31)
    lows: dict[int, tuple[list[str], str]] = {}
    need_prompt = [i for i, item in enumerate(inputs) if item.low is None] if low_mode != "none" else []
    if need_prompt:
        if prompter is None:
            raise MotionGPTError("no low-level text given and no retrieval index to propose one",
                                 hint="pass --low TEXT, --no-low, or --index INDEX")  # fmt: skip
        results = prompter.run([inputs[i].high for i in need_prompt], n=n, seed=seed)
        for i, result in zip(need_prompt, results, strict=True):
            lows[i] = (result.lows, result.backend)
    jobs = []
    stems: set[str] = set()
    for t, item in enumerate(inputs):
        base = slugify(item.high)
        if base in stems:
            base = f"{base}-{t + 1}"
        stems.add(base)
        for j in range(n):
            if low_mode == "none":
                low, source = None, "none"
            elif item.low is not None:
                low, source = item.low.strip(), "user"
            else:
                low, source = lows[t][0][j], lows[t][1]
            jobs.append(Job(t, j, item.high.strip(), low, source, sample_seed(seed, t, j), f"{base}-{j:02d}"))
    return jobs, seed


def assign_outputs(jobs: list[Job], options: GenerateOptions) -> None:
    """Decide every output path and refuse existing ones (without --overwrite) before anything is sampled."""
    for job in jobs:
        job.outputs = {fmt: options.out_dir / f"{job.stem}.{fmt}" for fmt in options.formats}
        for path in job.outputs.values():
            check_writable(path, overwrite=options.overwrite)


def condition_embeddings(loaded: LoadedModel, jobs: Sequence[Job], encoders: dict[str, object]):
    """``(high (B, Dh), low (B, Dl) | None, use_low (B,))`` for the jobs, per the model's conditioning."""
    cond = loaded.model.config.conditioning
    high_enc = encoders["high"]
    if cond == "concat":
        texts = [concat_text(j.high, j.low) if j.low else j.high for j in jobs]
        return torch.from_numpy(high_enc.encode(texts)), None, None
    high = torch.from_numpy(high_enc.encode([j.high for j in jobs]))
    if cond == "high":
        return high, None, None
    use_low = torch.tensor([j.low is not None for j in jobs])
    low = torch.from_numpy(encoders["low"].encode([j.low or "" for j in jobs]))
    return high, low, use_low


def sample_batch(loaded: LoadedModel, jobs: Sequence[Job], lengths: Sequence[int], sampling, encoders: dict,
                 *, device: str = "cpu", on_step: Callable[[int, int], None] | None = None) -> np.ndarray:  # fmt: skip
    """De-normalised features ``(B, T, 263)`` of one batch: job ``i`` seeded with its own generator (so a seed
    gives the same motion whatever the batch) and valid for its first ``lengths[i]`` frames."""
    high, low, use_low = condition_embeddings(loaded, jobs, encoders)
    generators = [torch.Generator().manual_seed(j.seed) for j in jobs]
    x = sample(
        loaded.model, loaded.schedule, high.to(device), None if low is None else low.to(device),
        torch.as_tensor(list(lengths), dtype=torch.long), sampling, generators, use_low=use_low, on_step=on_step,
    )  # fmt: skip
    return x.float().cpu().numpy() * loaded.std + loaded.mean


def generate(
    loaded: LoadedModel,
    jobs: list[Job],
    options: GenerateOptions,
    encoders: dict[str, object],
    *,
    device: str = "cpu",
    on_sample: Callable[[Job, MotionRecord], None] | None = None,
    on_step: Callable[[int, int], None] | None = None,
) -> None:
    """Sample every job in batches and write its files as soon as its batch finishes."""
    frames = options.frames
    loaded.model.to(device)
    options.out_dir.mkdir(parents=True, exist_ok=True)
    for start in range(0, len(jobs), options.batch_size):
        batch = jobs[start : start + options.batch_size]
        features = sample_batch(loaded, batch, [frames] * len(batch), options.sampling, encoders, device=device,
                                on_step=on_step)[:, :frames]  # fmt: skip
        for job, feats in zip(batch, features, strict=True):
            feats = feats.astype(np.float32)
            joints = features_to_joints(feats).astype(np.float32)
            if not np.all(np.isfinite(joints)):
                raise MotionGPTError(f"sampling produced non-finite values for {job.high!r}")
            record = MotionRecord(
                features=feats, joints=joints, fps=FPS, text_high=job.high, text_low=job.low or "", seed=job.seed,
                model=loaded.name, guidance=options.sampling.guidance, steps=options.sampling.steps,
            )  # fmt: skip
            title = job.high + (f" | {job.low}" if job.low else "")
            write_outputs(record, job.outputs, title=title, overwrite=options.overwrite)
            if on_sample is not None:
                on_sample(job, record)
