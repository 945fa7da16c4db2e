"""Timelines and edits from a :class:`~motiongpt_cli.api.Pipeline`: plan (check everything, propose low-level texts,
decide seeds and output paths) before anything is sampled, then run (sample, write each motion atomically as soon
as it is done). :meth:`Pipeline.generate_timeline`, :meth:`Pipeline.edit` and the CLI are built on these.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import validation
from ..errors import InvalidValueError, MotionFormatError, MotionGPTError, MotionGPTWarning
from ..motion.skeleton import FPS
from .edit import EditSpec
from .timeline import Timeline


@dataclass
class Outputs:
    """Where a plan's motions go: one ``{format: path}`` per motion (empty without an output folder)."""

    paths: list[dict[str, Path]] = field(default_factory=list)
    overwrite: bool = False
    smpl: object | None = None  # motion.amass.SMPLOutputOptions


@dataclass
class TimelinePlan:
    timeline: Timeline
    lows: list[list[str | None]]  # per sample, per segment
    sources: list[str]  # per sample: where its low-level texts came from
    seeds: list[int]  # per sample
    seed: int
    sampling: object  # diffusion.sampler.SamplingOptions
    batch_size: int
    outputs: Outputs

    def __len__(self) -> int:
        return len(self.seeds)


@dataclass
class EditPlan:
    source: Path
    features: np.ndarray  # the input's (T, 263), de-normalised
    spec: EditSpec
    frames: int  # of the output
    high: str
    lows: list[str | None]  # per sample
    sources: list[str]
    seeds: list[int]
    seed: int
    sampling: object
    transition: int  # frames, between windows of an edit longer than the model's maximum
    outputs: Outputs

    def __len__(self) -> int:
        return len(self.seeds)


def check_outputs(formats: Sequence[str], smpl) -> tuple[str, ...]:
    """Normalise the formats and check their tools and options now (before any prompting or sampling)."""
    from ..motion.outputs import check_smpl_model, check_tools, validate_formats

    formats = validate_formats(list(formats) or ["npz", "bvh"])
    check_smpl_model(formats, smpl)
    check_tools(formats)
    if smpl is not None and "smpl" in formats:
        smpl.check_fps(FPS)
    return formats


def plan_outputs(stems: Sequence[str], out_dir: str | Path | None, formats: Sequence[str], *, overwrite: bool,
                 smpl) -> Outputs:  # fmt: skip
    from ..atomic import check_writable
    from ..motion.outputs import suffix_of

    if out_dir is None:
        return Outputs([{} for _ in stems], overwrite, smpl)
    formats = check_outputs(formats, smpl)
    paths = [{fmt: Path(out_dir) / f"{stem}{suffix_of(fmt)}" for fmt in formats} for stem in stems]
    for targets in paths:
        for path in targets.values():
            check_writable(path, overwrite=overwrite)
    return Outputs(paths, overwrite, smpl)


def _seeds(seed: int | None, n: int) -> tuple[int, list[int]]:
    import secrets

    from ..generation import sample_seed

    n = int(validation.SAMPLES.check("n", n))
    seed = secrets.randbelow(2**31) if seed is None else int(validation.SEED.check("seed", seed))
    return seed, [sample_seed(seed, 0, j) for j in range(n)]


def _low_mode(pipe, lows: Sequence[str | None], use_low: bool) -> bool:
    """Whether the model takes low-level texts at all (a high-only model ignores them, with a warning)."""
    if pipe.conditioning == "high":
        if use_low and any(lo is not None for lo in lows):
            warnings.warn("this model is conditioned on the high-level text only; the low-level text is ignored",
                          MotionGPTWarning, stacklevel=3)  # fmt: skip
        return False
    return use_low


def _proposals(pipe, highs: Sequence[str], n: int, seed: int) -> list[tuple[list[str], str]]:
    results = pipe.prompter.run(list(highs), n=n, seed=seed)
    return [(r.lows, r.backend) for r in results]


# ----------------------------------------------------------------------------------------------- timelines
def plan_timeline(pipe, timeline: Timeline, *, n: int = 1, use_low: bool = True, steps: int | None = None,
                  sampler: str = "auto", guidance: float | None = None, eta: float = 0.0, seed: int | None = None,
                  batch_size: int | str = "auto", out_dir: str | Path | None = None, formats: Sequence[str] = (),
                  overwrite: bool = False, smpl=None, precision: str = "auto") -> TimelinePlan:  # fmt: skip
    """Check the timeline, the numbers and the outputs, propose the segments' missing low-level texts (one per
    sample, as for single texts), and decide each sample's seed and files."""
    from ..generation import batch_and_sampling
    from ..motion.io import slugify

    timeline.lengths()
    samples = int(validation.SAMPLES.check("n", n))
    batch_size, sampling = batch_and_sampling(pipe.loaded, batch_size, samples, sampler=sampler, steps=steps,
                                              guidance=guidance, eta=eta, precision=precision,
                                              device=pipe.device)  # fmt: skip
    used_seed, seeds = _seeds(seed, n)
    given = [seg.low for seg in timeline.segments]
    stems = [f"{slugify(timeline.title)}-{j:02d}" for j in range(len(seeds))]
    outputs = plan_outputs(stems, out_dir, formats, overwrite=overwrite, smpl=smpl)
    if not _low_mode(pipe, given, use_low):
        return TimelinePlan(timeline, [[None] * len(given) for _ in seeds], ["none"] * len(seeds), seeds, used_seed,
                            sampling, batch_size, outputs)  # fmt: skip
    missing = [k for k, lo in enumerate(given) if lo is None]
    proposed = dict(zip(missing, _proposals(pipe, [timeline.segments[k].high for k in missing], len(seeds),
                                            used_seed), strict=True)) if missing else {}  # fmt: skip
    lows = [[lo.strip() if lo is not None else proposed[k][0][j] for k, lo in enumerate(given)]
            for j in range(len(seeds))]  # fmt: skip
    kinds = sorted({proposed[k][1] for k in missing} | ({"user"} if len(missing) < len(given) else set()))
    return TimelinePlan(timeline, lows, [", ".join(kinds)] * len(seeds), seeds, used_seed, sampling, batch_size,
                        outputs)  # fmt: skip


def run_timeline(pipe, plan: TimelinePlan) -> Iterator:
    """Sample the plan's timelines, ``batch_size`` samples per joint denoising; yield each
    :class:`~motiongpt_cli.api.Motion` (written to its files) as soon as its batch finishes."""
    from ..motion.io import Segment
    from .timeline import sample_timeline

    lengths = plan.timeline.lengths()
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    pipe.loaded.model.to(pipe.device)
    for start in range(0, len(plan.seeds), plan.batch_size):
        chunk = range(start, min(start + plan.batch_size, len(plan.seeds)))
        features = sample_timeline(pipe.loaded, plan.timeline, [plan.lows[j] for j in chunk], plan.sampling,
                                   pipe.encoders, [plan.seeds[j] for j in chunk], device=pipe.device)  # fmt: skip
        for j, feats in zip(chunk, features, strict=True):
            segments = [Segment(int(a), int(b), seg.high.strip(), low or "") for a, b, seg, low in
                        zip(bounds[:-1], bounds[1:], plan.timeline.segments, plan.lows[j], strict=True)]  # fmt: skip
            low_text = " -> ".join(low or "-" for low in plan.lows[j]) if any(plan.lows[j]) else ""
            yield _finish(pipe, feats, plan.outputs, j, text_high=plan.timeline.title, text_low=low_text,
                          seed=plan.seeds[j], sampling=plan.sampling, low_source=plan.sources[j],
                          segments=segments)  # fmt: skip


# ----------------------------------------------------------------------------------------------- edits
def load_edit_source(path: str | Path) -> tuple[np.ndarray, str]:
    """The features ``(T, 263)`` of a motion to edit (our ``.npz``, features ``.npy`` or joints ``.npy``; joints
    are converted to HumanML3D features) and the file's name for the outputs."""
    from ..convert import features_for_joints
    from ..motion.io import is_object_npy, load_motion_array, load_npz

    path = Path(path)
    if path.suffix.lower() == ".npz":
        record = load_npz(path)
        if int(record.fps) != FPS:
            raise MotionFormatError(f"{path}: is at {record.fps} fps; editing works on {FPS} fps motions",
                                    hint=f"resample it to {FPS} fps first")  # fmt: skip
        features = record.features
    elif path.suffix.lower() == ".npy":
        if is_object_npy(path):
            raise MotionFormatError(f"{path}: holds several motions (an MDM results.npy); edit takes one",
                                    hint="split it with `motiongpt export results.npy --format npz` first")  # fmt: skip
        kind, array = load_motion_array(path)
        features = array if kind == "features" else features_for_joints(array)
    else:
        raise MotionFormatError(f"{path}: edit reads .npz motions and .npy features or joints")
    return np.asarray(features, dtype=np.float32), path.name.split(".")[0]


def plan_edit(pipe, source: str | Path, text: str, low: str | None | bool = None, *, keep: str | None = None,
              prefix: str | None = None, suffix: str | None = None, body: str | None = None,
              seconds: float | None = None, frames: int | None = None, n: int = 1, steps: int | None = None,
              sampler: str = "auto", guidance: float | None = None, eta: float = 0.0, seed: int | None = None,
              transition: float = 0.5, out_dir: str | Path | None = None, formats: Sequence[str] = (),
              overwrite: bool = False, smpl=None, precision: str = "auto") -> EditPlan:  # fmt: skip
    """Check the edit (ranges, lengths, the input) and the outputs, propose low-level texts, decide seeds and files.
    ``low``: a string, None (proposed per sample) or False (high-level text only). Times are strings such as
    ``2s`` or ``40f``; ``keep`` a comma list of ranges (``0-2s,6-8s``)."""
    from ..generation import requested_frames, sampling_options
    from .edit import parse_ranges, parse_time

    if not isinstance(text, str) or not text.strip():
        raise InvalidValueError("empty text", hint="give the high-level text of the regenerated parts")
    if isinstance(low, str) and not low.strip():
        raise InvalidValueError("empty low-level text", hint="omit --low to have one proposed, or pass --no-low")
    spec = EditSpec(keep=parse_ranges(keep) if keep else [], prefix=parse_time(prefix, what="--prefix") if prefix
                    else 0, suffix=parse_time(suffix, what="--suffix") if suffix else 0, body=body)  # fmt: skip
    if body:
        from .edit import body_joints

        body_joints(body)  # names checked now
    features, stem = load_edit_source(source)
    out_frames = requested_frames(seconds, frames, len(features))  # default: the input's length
    spec.known_mask(len(features), out_frames)  # every range and length problem now
    transition_frames = round(validation.TRANSITION.check("transition", transition) * FPS)
    sampling = sampling_options(pipe.loaded, sampler=sampler, steps=steps, guidance=guidance, eta=eta,
                                precision=precision, device=pipe.device)  # fmt: skip
    used_seed, seeds = _seeds(seed, n)
    outputs = plan_outputs([f"{stem}-edit-{j:02d}" for j in range(len(seeds))], out_dir, formats,
                           overwrite=overwrite, smpl=smpl)  # fmt: skip
    if not _low_mode(pipe, [low if isinstance(low, str) else None], low is not False):
        lows, sources = [None] * len(seeds), ["none"] * len(seeds)
    elif isinstance(low, str):
        lows, sources = [low.strip()] * len(seeds), ["user"] * len(seeds)
    else:
        proposed, backend = _proposals(pipe, [text.strip()], len(seeds), used_seed)[0]
        lows, sources = list(proposed), [backend] * len(seeds)
    return EditPlan(Path(source), features, spec, out_frames, text.strip(), lows, sources, seeds, used_seed,
                    sampling, transition_frames, outputs)  # fmt: skip


def run_edit(pipe, plan: EditPlan) -> Iterator:
    """Sample the plan's edits (one joint denoising per sample); yield each motion as soon as it is done."""
    from ..generation import TextInput
    from .edit import sample_edit

    pipe.loaded.model.to(pipe.device)
    for j, seed in enumerate(plan.seeds):
        out, _ = sample_edit(pipe.loaded, plan.features, plan.spec, plan.frames, TextInput(plan.high, plan.lows[j]),
                             plan.sampling, pipe.encoders, [seed], transition=plan.transition,
                             device=pipe.device)  # fmt: skip
        yield _finish(pipe, out[0], plan.outputs, j, text_high=plan.high, text_low=plan.lows[j] or "", seed=seed,
                      sampling=plan.sampling, low_source=plan.sources[j],
                      edit=f"{plan.spec.describe()} of {plan.source.name}")  # fmt: skip


def _finish(pipe, features: np.ndarray, outputs: Outputs, j: int, *, sampling, **fields):
    """A sampled motion as a :class:`~motiongpt_cli.api.Motion`, written to its files."""
    from ..api import Motion
    from ..motion.features import features_to_joints
    from ..motion.outputs import write_outputs

    features = np.asarray(features, dtype=np.float32)
    joints = features_to_joints(features).astype(np.float32)
    if not np.all(np.isfinite(joints)):
        raise MotionGPTError(f"sampling produced non-finite values for {fields['text_high']!r}")
    low_source = fields.pop("low_source")
    motion = Motion(features=features, joints=joints, fps=FPS, model=pipe.name, guidance=sampling.guidance,
                    steps=sampling.steps, sampler=sampling.sampler, sample_length="requested",
                    low_source=low_source, paths=dict(outputs.paths[j]), **fields)  # fmt: skip
    if outputs.paths[j]:
        next(iter(outputs.paths[j].values())).parent.mkdir(parents=True, exist_ok=True)
        write_outputs(motion, outputs.paths[j], title=motion.title, overwrite=outputs.overwrite, smpl=outputs.smpl)
    return motion
