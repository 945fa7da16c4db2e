"""Text -> motion files (the core of ``motiongpt generate``).

Each requested sample is a :class:`Job` with its own texts and seed. Jobs are sampled in batches and each finished
sample is yielded at once, so a caller that writes it (atomically) loses nothing already finished to an
interruption. All output paths are checked before the first sample is drawn, so a refused overwrite costs nothing.
The Python API (:mod:`motiongpt_cli.api`) and ``motiongpt generate`` are built on these functions.

Seeds: ``seed`` (drawn at random when not given, and always recorded) and the job's (text, sample) position give each
sample its own ``torch.Generator``, so a sample does not depend on batch size or on the other samples.

Sampling defaults come from the model: an imported checkpoint records its original's behaviour in ``config.json``
(``original``: sampler, diffusion steps, guidance scale and passes, sampling length; see :mod:`.model_import`), our
own models record none and get ours. The sampling length is ``requested`` (the tensor has the requested number of
frames) or ``max`` (the model's maximum, 196 for HumanML3D models, cropped to the request afterwards: what MDM does
from June 2023 to February 2025 for models trained without a frame mask, MDM issue #104).
"""

from __future__ import annotations

import secrets
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from . import validation
from .atomic import check_writable
from .checkpoint import LoadedModel
from .diffusion.sampler import SamplingOptions, sample
from .errors import InvalidValueError, MotionGPTError, MotionGPTWarning
from .motion.features import features_to_joints
from .motion.io import MotionRecord, slugify
from .motion.outputs import suffix_of
from .motion.skeleton import FPS
from .paths import INDEX_FILE, embedded_asset, is_embedded
from .text.conditioning import concat_text

MIN_FRAMES = 40  # HumanML3D (and our datasets) drop clips shorter than 2 s
DEFAULT_FRAMES = 120  # 6 s
DEFAULT_STEPS = 50  # DDIM's default; a model with fewer diffusion steps runs all of them
# A model may record its own measured DDIM default in config.json {"sampling": {"steps": N}} (the embedded model:
# 10, from benchmarks/bench_steps.py; docs/generate.md). The curve did not carry over between checkpoints (an earlier
# snapshot lost FID at 10), so every other model keeps DEFAULT_STEPS.
DEFAULT_GUIDANCE = 2.5
SampleLength = Literal["requested", "max"]
SAMPLE_LENGTHS = ("requested", "max")


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
    frames: int | None = None  # this job's length when it has its own (predicted from its text)


def sample_seed(seed: int, text_index: int, sample_index: int) -> int:
    return int(np.random.SeedSequence([seed, text_index, sample_index]).generate_state(1)[0])


def clamp_frames(frames: int, max_frames: int) -> int:
    """A positive length outside the model's range is clamped into it, with a warning."""
    if frames < MIN_FRAMES or frames > max_frames:
        clamped = min(max(frames, MIN_FRAMES), max_frames)
        warnings.warn(f"{frames} frames is outside the model's range [{MIN_FRAMES}, {max_frames}]; using {clamped}",
                      MotionGPTWarning, stacklevel=3)  # fmt: skip
        return clamped
    return frames


def requested_frames(seconds: float | None, frames: int | None, default: int) -> int:
    """The length asked for: ``seconds`` or ``frames`` (not both, each checked), else ``default``."""
    if seconds is not None and frames is not None:
        raise InvalidValueError("give seconds or frames, not both")
    if seconds is not None:
        return round(validation.SECONDS.check("seconds", seconds) * FPS)
    if frames is not None:
        return int(validation.FRAMES.check("frames", frames))
    return default


def length_in_frames(seconds: float | None, frames: int | None, max_frames: int) -> int:
    """The motion length from ``seconds`` or ``frames`` (not both; default 6 s), clamped to the model's range."""
    return clamp_frames(max(requested_frames(seconds, frames, DEFAULT_FRAMES), 1), max_frames)


def resolve_index(model_dir: Path, index: Path | None) -> Path | None:
    """The retrieval index for proposed low-level texts: ``index`` when given, else the model directory's own,
    else the embedded one (with a warning naming it, unless the model is the embedded one), else None."""
    if index is not None:
        return Path(index)
    own = Path(model_dir) / INDEX_FILE
    if own.is_file():
        return own
    embedded = embedded_asset(INDEX_FILE)
    if embedded is not None and not is_embedded(model_dir):
        warnings.warn(f"the model {model_dir} has no retrieval index of its own; proposing low-level texts from the "
                      f"embedded one ({embedded}); pass --index to choose another", MotionGPTWarning,
                      stacklevel=2)  # fmt: skip
    return embedded


def plan_jobs(
    inputs: Sequence[TextInput],
    n: int,
    *,
    seed: int | None,
    low_mode: str,
    prompter=None,
    durations: bool = False,
    max_frames: int | None = None,
) -> tuple[list[Job], int]:
    """One job per (input, sample). ``low_mode``: ``given`` (use each input's low text, or prompt for inputs without
    one), ``none`` (high-level only). ``durations``: ask the prompter for each proposal's duration too; a job whose
    proposal has one gets ``frames`` from it (20 fps, clamped to ``[MIN_FRAMES, max_frames]`` as a requested
    length is), the others keep None. Returns the jobs and the seed used."""
    if durations and max_frames is None:
        raise MotionGPTError("durations need the model's max_frames")
    n = int(validation.SAMPLES.check("n", n))
    if seed is not None:
        seed = int(validation.SEED.check("seed", seed))
    if not inputs:
        raise MotionGPTError("no text to generate from")
    for item in inputs:
        if not item.high.strip():
            raise InvalidValueError("empty text", hint="give a non-empty high-level description")
        if item.low is not None and not item.low.strip():
            raise InvalidValueError("empty low-level text",
                                    hint="omit --low to have low-level texts proposed, or pass --no-low")  # fmt: skip
    if seed is None:
        seed = secrets.randbelow(2**31)
    lows: dict[int, tuple[list[str], str]] = {}
    proposed_seconds: dict[int, list[float | None]] = {}
    need_prompt = [i for i, item in enumerate(inputs) if item.low is None] if low_mode != "none" else []
    if need_prompt:
        if prompter is None:
            raise MotionGPTError("no low-level text given and no retrieval index to propose one",
                                 hint="pass --low TEXT, --no-low, or --index INDEX")  # fmt: skip
        extra = {"durations": True} if durations else {}  # prompters without durations keep working
        results = prompter.run([inputs[i].high for i in need_prompt], n=n, seed=seed, **extra)
        for i, result in zip(need_prompt, results, strict=True):
            lows[i] = (result.lows, result.backend)
            proposed_seconds[i] = list(result.seconds or [None] * n) if durations else [None] * n
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
            seconds = proposed_seconds.get(t, [None] * n)[j]
            if seconds is not None:  # the LLM's duration for this proposal
                jobs[-1].frames = length_in_frames(seconds, None, max_frames)
    return jobs, seed


def assign_outputs(jobs: list[Job], out_dir: Path, formats: Sequence[str], *, overwrite: bool = False) -> None:
    """Decide every output path and refuse existing ones (without ``overwrite``) before anything is sampled."""
    for job in jobs:
        job.outputs = {fmt: Path(out_dir) / f"{job.stem}{suffix_of(fmt)}" for fmt in formats}
        for path in job.outputs.values():
            check_writable(path, overwrite=overwrite)


def check_steps(loaded: LoadedModel, steps: int) -> None:
    if steps > loaded.schedule.num_train_timesteps:
        raise InvalidValueError(f"steps must be at most the model's {loaded.schedule.num_train_timesteps} training "
                                f"timesteps, got {steps}")  # fmt: skip


def recorded_sampling(loaded: LoadedModel) -> dict:
    """The original's sampling behaviour an imported model records (``config.json`` ``original``); ``{}`` for ours."""
    original = loaded.config.get("original") if isinstance(loaded.config, dict) else None
    return original if isinstance(original, dict) else {}


def measured_steps(loaded: LoadedModel) -> int | None:
    """The DDIM step count a model records as its measured default (``config.json`` ``sampling.steps``), or None."""
    recorded = loaded.config.get("sampling") if isinstance(loaded.config, dict) else None
    steps = recorded.get("steps") if isinstance(recorded, dict) else None
    if steps is None:
        return None
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise InvalidValueError(f"{loaded.name}: config.json sampling.steps must be a positive integer, got {steps!r}")
    return steps


def check_sample_length(value: str) -> SampleLength:
    if value not in SAMPLE_LENGTHS:
        raise InvalidValueError(f"sample_length must be requested or max, got {value!r}")
    return value  # type: ignore[return-value]


def resolve_sample_length(loaded: LoadedModel, value: str | None = None) -> SampleLength:
    """``value``, else the model's recorded default (imported MDM models without a frame mask: ``max``), else
    ``requested`` (our own models, the seed, mask-trained MDM models)."""
    if value is not None:
        return check_sample_length(value)
    return check_sample_length(recorded_sampling(loaded).get("sample_length", "requested"))


def sampled_frames(loaded: LoadedModel, frames: int, sample_length: str) -> int:
    """The length of the sampled tensor for a request of ``frames``: itself, or the model's maximum."""
    return loaded.model.config.max_frames if check_sample_length(sample_length) == "max" else frames


def sampling_options(loaded: LoadedModel, *, sampler: str = "auto", steps: int | None = None,
                     guidance: float | None = None, eta: float = 0.0, precision: str = "fp32",
                     device: str = "cpu", batch: int = 1) -> SamplingOptions:  # fmt: skip
    """:class:`SamplingOptions` with the model's defaults for what is not given.

    ``steps``: for DDPM on a model whose original sampled with DDPM (every imported checkpoint), all of its
    diffusion steps, so ``--sampler ddpm`` is the original's ancestral loop; for DDIM the model's measured default
    (:func:`measured_steps`), else 50; at most the model's diffusion steps.
    ``guidance``: the model's recorded scale (2.5; 1 for a model trained without condition
    dropout), else 2.5. Guidance passes: an imported model's are two separate forwards, as its original's.
    ``precision``: ``auto``, ``fp32``, ``bf16`` or ``int8``, resolved for ``device`` and ``batch`` motions per
    forward (:func:`~motiongpt_cli.diffusion.precision.resolve_precision`)."""
    from .diffusion.precision import resolve_precision

    original = recorded_sampling(loaded)
    sampler = resolve_sampler(loaded, sampler)
    if sampler == "lcm":
        folded = float(loaded.config["consistency"].get("guidance", DEFAULT_GUIDANCE))
        if guidance is not None and abs(guidance - folded) > 1e-9:
            raise InvalidValueError(f"this distilled model has guidance {folded:g} built in; it cannot sample with "
                                    f"{guidance:g} (omit --guidance, or sample its teacher)")  # fmt: skip
        guidance = folded
        if steps is None:
            steps = int(loaded.config["consistency"].get("steps", 4))
    if steps is None:
        if sampler == "ddpm" and original.get("sampler") == "ddpm":
            steps = int(original.get("diffusion_steps", loaded.schedule.num_train_timesteps))
        else:
            recorded = measured_steps(loaded) if sampler == "ddim" else None
            steps = min(recorded or DEFAULT_STEPS, loaded.schedule.num_train_timesteps)
    if guidance is None:
        guidance = float(original.get("guidance", DEFAULT_GUIDANCE))
    arithmetic = resolve_precision(precision, device, width=loaded.model.config.width, batch=batch)
    options = SamplingOptions(steps=steps, sampler=sampler, guidance=guidance, eta=eta,  # type: ignore[arg-type]
                              guidance_passes=original.get("guidance_passes", "batched"),
                              precision=arithmetic)  # type: ignore[arg-type]  # fmt: skip
    check_steps(loaded, options.steps)
    return options


SAMPLERS = ("auto", "ddim", "ddpm", "lcm")


def resolve_sampler(loaded: LoadedModel, sampler: str) -> str:
    """``auto``: ``lcm`` for a distilled (consistency) model, else ``ddim``. A distilled model samples only with
    ``lcm``, and ``lcm`` needs one."""
    if sampler not in SAMPLERS:
        raise InvalidValueError(f"sampler must be one of {', '.join(SAMPLERS)}, got {sampler!r}")
    distilled = isinstance(loaded.config, dict) and isinstance(loaded.config.get("consistency"), dict)
    if sampler == "auto":
        return "lcm" if distilled else "ddim"
    if distilled and sampler != "lcm":
        raise InvalidValueError(f"{loaded.name} is a distilled (consistency) model: it samples with lcm, not "
                                f"{sampler} (omit --sampler)")  # fmt: skip
    if sampler == "lcm" and not distilled:
        raise InvalidValueError(f"sampler lcm needs a distilled model (`motiongpt train --distill`); {loaded.name} "
                                "is not one")  # fmt: skip
    return sampler


AUTO_BATCH = 16  # the largest batch `--batch-size auto` uses


def batch_and_sampling(loaded: LoadedModel, batch_size: int | str, samples: int, *, precision: str = "fp32",
                       device: str = "cpu", **sampling_kw) -> tuple[int, SamplingOptions]:  # fmt: skip
    """The batch size and :class:`SamplingOptions` for ``samples`` motions (``sampling_kw`` as
    :func:`sampling_options`). ``batch_size="auto"`` follows ``benchmarks/bench_precision.py``: on a CPU in fp32 one
    motion per forward (batching gained nothing there, 1.01x and 0.96x, and lost on an AVX2 machine), otherwise
    (bf16, int8, a GPU) up to 16 (bf16 gained 2.8x and 1.5x, int8 1.4x and 1.3x); an ``auto`` precision is
    resolved for that batch of up to 16."""
    if batch_size == "auto":
        candidate = max(1, min(AUTO_BATCH, samples))
        sampling = sampling_options(loaded, precision=precision, device=device, batch=candidate, **sampling_kw)
        on_cpu = torch.device(device).type == "cpu"
        return (1 if on_cpu and sampling.precision == "fp32" else candidate), sampling
    if isinstance(batch_size, str):
        raise InvalidValueError(f"batch_size must be a number or 'auto', got {batch_size!r}")
    batch = int(validation.BATCH_SIZE.check("batch_size", batch_size))
    return batch, sampling_options(loaded, precision=precision, device=device, batch=max(1, min(batch, samples)),
                                   **sampling_kw)  # fmt: skip


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
    check_steps(loaded, sampling.steps)
    high, low, use_low = condition_embeddings(loaded, jobs, encoders)
    generators = [torch.Generator().manual_seed(j.seed) for j in jobs]
    x = sample(
        loaded.model, loaded.schedule, high.to(device), None if low is None else low.to(device),
        torch.as_tensor(list(lengths), dtype=torch.long), sampling, generators, use_low=use_low, on_step=on_step,
    )  # fmt: skip
    return x.float().cpu().numpy() * loaded.std + loaded.mean


def _batches_of_equal_length(jobs: Sequence[Job], frames: int, batch_size: int) -> Iterator[list[Job]]:
    """Consecutive jobs of one length, at most ``batch_size`` at a time (a text's samples can differ in length:
    the LLM may give each its own duration)."""
    batch: list[Job] = []
    for job in jobs:
        if batch and (len(batch) == batch_size or (job.frames or frames) != (batch[0].frames or frames)):
            yield batch
            batch = []
        batch.append(job)
    if batch:
        yield batch


def iter_samples(
    loaded: LoadedModel,
    jobs: Sequence[Job],
    frames: int,
    sampling: SamplingOptions,
    encoders: dict[str, object],
    *,
    batch_size: int = 16,
    device: str = "cpu",
    on_step: Callable[[int, int], None] | None = None,
    sample_length: str = "requested",
) -> Iterator[tuple[Job, MotionRecord]]:
    """Sample the jobs in batches of ``batch_size``; yield each (job, record) as soon as its batch finishes.
    A job's length is its own ``frames`` (predicted from its text) or ``frames``; ``sample_length="max"`` samples the
    model's maximum length and keeps the first frames."""
    batch_size = int(validation.BATCH_SIZE.check("batch_size", batch_size))
    loaded.model.to(device)
    for batch in _batches_of_equal_length(jobs, frames, batch_size):
        wanted = batch[0].frames or frames
        length = sampled_frames(loaded, wanted, sample_length)
        features = sample_batch(loaded, batch, [length] * len(batch), sampling, encoders, device=device,
                                on_step=on_step)[:, :wanted]  # fmt: skip
        for job, feats in zip(batch, features, strict=True):
            feats = feats.astype(np.float32)
            joints = features_to_joints(feats).astype(np.float32)
            if not np.all(np.isfinite(joints)):
                raise MotionGPTError(f"sampling produced non-finite values for {job.high!r}")
            yield job, MotionRecord(
                features=feats, joints=joints, fps=FPS, text_high=job.high, text_low=job.low or "", seed=job.seed,
                model=loaded.name, guidance=sampling.guidance, steps=sampling.steps, sampler=sampling.sampler,
                sample_length=check_sample_length(sample_length),
            )  # fmt: skip
