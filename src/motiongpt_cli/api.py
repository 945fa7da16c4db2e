"""The Python API: load a model once, generate motions, propose low-level texts.

```python
from motiongpt_cli import load_pipeline

pipe = load_pipeline()                                  # the embedded default model, on the CPU
motions = pipe.generate("greet a friend", low="wave", n=2, seconds=4, steps=20, seed=0)
motions[0].joints                                       # (frames, 22, 3) float32, metres, Y up
motions[0].save("out/greet.bvh")                        # the format from the suffix: .npz .bvh .gif .mp4
pipe.propose_low("greet a friend", n=3)                 # low-level texts from the model's own index
```

``motiongpt generate`` is a thin wrapper over :meth:`Pipeline.plan` and :meth:`Pipeline.run`. Errors are the
library's typed errors (:class:`~motiongpt_cli.errors.MotionGPTError` and its subclasses; out-of-range numbers are
:class:`~motiongpt_cli.errors.InvalidValueError`); warnings are :class:`~motiongpt_cli.errors.MotionGPTWarning`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .errors import InvalidValueError
from .motion.io import MotionRecord

Low = str | Sequence[str | None] | None | bool  # see Pipeline.plan


@dataclass
class Motion(MotionRecord):
    """A generated motion: :class:`~motiongpt_cli.motion.io.MotionRecord` (``features (frames, 263)``, ``joints
    (frames, 22, 3)`` metres Y up, ``fps``, ``text_high``, ``text_low``, ``seed``, ``model``, ``guidance``,
    ``steps``) plus where its low-level text came from and the files written for it."""

    low_source: str = ""  # "user", "none", or the prompt backend ("retrieval", "openai", "retrieval (fallback)")
    paths: dict[str, Path] = field(default_factory=dict)

    @property
    def frames(self) -> int:
        return int(self.joints.shape[0])

    @property
    def seconds(self) -> float:
        return self.frames / self.fps

    @property
    def title(self) -> str:
        return self.text_high + (f" | {self.text_low}" if self.text_low else "")

    def save(self, path: str | Path, *, overwrite: bool = False, smpl=None) -> Path:
        """Write the motion to ``path`` (atomically); the format comes from the suffix (``.npz``, ``.bvh``, ``.gif``,
        ``.mp4``, ``.smpl.npz``, ``.glb``, ``.fbx``, or ``_obj`` for a folder of per-frame meshes). ``smpl``:
        :class:`~motiongpt_cli.motion.amass.SMPLOutputOptions` (layout, up axis, frame rate, SMPL model file) for
        ``.smpl.npz``; its ``model_path`` (and ``fit_shape``) for ``_obj``."""
        from .motion.outputs import format_from_suffix, write_outputs

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_outputs(self, {format_from_suffix(path): path}, title=self.title, overwrite=overwrite, smpl=smpl)
        return path


@dataclass
class Plan:
    """What :meth:`Pipeline.run` will do: the jobs (texts, seeds, output paths), the seed, length and sampling
    (``frames`` is the motions' length; ``sample_length`` whether the sampled tensor has that length or the
    model's maximum)."""

    jobs: list
    seed: int
    frames: int
    sampling: object  # diffusion.sampler.SamplingOptions
    batch_size: int
    overwrite: bool = False
    smpl: object | None = None  # motion.amass.SMPLOutputOptions for the smpl format
    sample_length: str = "requested"  # or "max": sample the model's maximum length, keep the first `frames`

    def __len__(self) -> int:
        return len(self.jobs)


class Pipeline:
    """A loaded model with its text encoders and (lazily) the prompt machinery of its retrieval index."""

    def __init__(self, loaded, *, device: str, index: Path | None = None, prompt=None,
                 cache_dir: Path | None = None, env: Mapping[str, str] | None = None) -> None:  # fmt: skip
        from .text.prompting import PromptConfig

        self.loaded = loaded
        self.device = device
        self.cache_dir = cache_dir
        self.env = dict(os.environ if env is None else env)
        self.prompt_config = prompt or PromptConfig()
        self._index = index
        self._encoders: dict | None = None
        self._prompter = None
        self._length: list | None = None  # [LengthPredictor | None], loaded on first use

    @classmethod
    def from_pretrained(cls, model: str | Path | None = None, *, device: str = "auto", index: str | Path | None = None,
                        prompt=None, cache_dir: str | Path | None = None, env: Mapping[str, str] | None = None,
                        sampler: str = "auto", steps: int | None = None) -> Pipeline:  # fmt: skip
        """Load a model directory (or a training run folder); None is the embedded default model, or its distilled
        few-step student when one is shipped and ``sampler="lcm"``, or ``sampler="auto"`` with ``steps <= 4``.

        ``index``: the retrieval index for proposed low-level texts [default: the model's own, else the embedded
        one with a warning]; ``prompt``: a :class:`~motiongpt_cli.text.prompting.PromptConfig` (backend, LLM, ...);
        ``cache_dir``: embedding and LLM-answer caches [default: ``$MOTIONGPT_HOME/cache`` or the user cache]."""
        from .checkpoint import load_model
        from .paths import cache_dir as default_cache_dir
        from .paths import default_model_dir, resolve_device

        resolved = resolve_device(device)
        loaded = load_model(Path(model) if model is not None else default_model_dir(sampler, steps), device=resolved)
        cache = Path(cache_dir) if cache_dir is not None else default_cache_dir(env)
        return cls(loaded, device=resolved, index=None if index is None else Path(index), prompt=prompt,
                   cache_dir=cache, env=env)  # fmt: skip

    # ------------------------------------------------------------------------------------------- properties
    @property
    def name(self) -> str:
        return self.loaded.name

    @property
    def conditioning(self) -> str:
        return self.loaded.model.config.conditioning

    @property
    def max_frames(self) -> int:
        return self.loaded.model.config.max_frames

    @property
    def length_predictor(self):
        """The model's :class:`~motiongpt_cli.length.LengthPredictor`, or None when it has none."""
        if self._length is None:
            from .length import load_length_predictor

            self._length = [load_length_predictor(self.loaded.path, self.loaded.config)]
        return self._length[0]

    def predict_frames(self, texts: str | Sequence[str], *, warn: bool = True) -> list[int] | None:
        """Each text's length in frames from the model's length predictor (its median, clamped to the model's
        range), or None, with a warning unless ``warn`` is False, when the model has none (lengths then default to
        6 s)."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        predictor = self.length_predictor
        if predictor is None or predictor.encoder != self.loaded.text.high_encoder:
            if warn:
                self._warn_no_length_predictor(stacklevel=4)
            return None
        frames = predictor.frames(self.encoders["high"].encode([t.strip() for t in texts]))
        return [min(int(f), self.max_frames) for f in frames]

    def _warn_no_length_predictor(self, stacklevel: int) -> None:
        import warnings

        from .errors import MotionGPTWarning

        predictor = self.length_predictor
        reason = "no length predictor" if predictor is None else f"a length predictor for {predictor.encoder}"
        warnings.warn(f"this model has {reason}; motions are 6 s long unless you give --seconds or --frames "
                      f"(`motiongpt model fit-length` adds one)", MotionGPTWarning, stacklevel=stacklevel)  # fmt: skip

    @property
    def encoders(self) -> dict:
        if self._encoders is None:
            from .text.encoders import load_encoder

            text = self.loaded.text
            # an imported model's CLIP weights are a file of its directory (text.high_weights)
            self._encoders = {"high": load_encoder(text.high_encoder, device="cpu", cache_dir=self.cache_dir,
                                                   model_dir=self.loaded.path, weights=text.high_weights)}  # fmt: skip
            if self.conditioning == "dual":  # an imported seed's own MiniLM is a folder of it (text.low_weights)
                self._encoders["low"] = load_encoder(text.low_encoder, device="cpu", cache_dir=self.cache_dir,
                                                     model_dir=self.loaded.path, weights=text.low_weights)  # fmt: skip
        return self._encoders

    @property
    def prompter(self):
        """The :class:`~motiongpt_cli.text.prompting.Prompter` over the model's index (built on first use)."""
        if self._prompter is None:
            from .errors import MotionGPTError
            from .generation import resolve_index
            from .text.prompting import make_prompter

            path = resolve_index(self.loaded.path, self._index)
            if path is None:
                raise MotionGPTError("no low-level text given and no retrieval index to propose one",
                                     hint="pass --low TEXT, --no-low, or --index INDEX")  # fmt: skip
            self._prompter = make_prompter(path, self.prompt_config, env=self.env, cache_dir=self.cache_dir)
            if "low" in self.encoders:  # proposed low-level texts then need no encoding (same encoder name only)
                self._prompter.index.seed_encoder(self.encoders["low"])
        return self._prompter

    # ------------------------------------------------------------------------------------------- prompting
    def propose_low(self, text: str | Sequence[str], n: int = 3, *, seed: int | None = None):
        """``n`` proposed low-level texts for ``text`` (a list of lists for a list of texts)."""
        from . import validation

        n = int(validation.SAMPLES.check("n", n))
        if seed is not None:
            seed = int(validation.SEED.check("seed", seed))
        texts = [text] if isinstance(text, str) else list(text)
        results = self.prompter.run(texts, n=n, seed=seed)
        lows = [r.lows for r in results]
        return lows[0] if isinstance(text, str) else lows

    # ------------------------------------------------------------------------------------------- generation
    def plan(self, texts: str | Sequence[str], low: Low = None, *, n: int = 1, seconds: float | None = None,
             frames: int | None = None, steps: int | None = None, sampler: str = "auto",
             guidance: float | None = None, eta: float = 0.0, seed: int | None = None,
             batch_size: int | str = "auto", out_dir: str | Path | None = None, formats: Sequence[str] = (),
             overwrite: bool = False, smpl=None, sample_length: str | None = None,
             precision: str = "auto") -> Plan:  # fmt: skip
        """Check every argument, propose the missing low-level texts and decide seeds (and output paths when
        ``out_dir`` is given, refusing existing files unless ``overwrite``) before anything is sampled.

        ``texts``: one high-level text or a list. ``low``: a string (every sample of every text), a list (one per
        text; an entry None is proposed), None (proposed per sample), or False (the high-level text only).
        Defaults from the model (:func:`~motiongpt_cli.generation.sampling_options`): ``steps`` 50, or with
        ``sampler="ddpm"`` on an imported model all of its diffusion steps (the original's loop); ``guidance`` the
        model's (2.5); ``sample_length`` (``requested`` or ``max``) the model's recorded one, ``requested`` for
        our own models; ``precision`` ``auto`` (bf16 on CPUs with AMX for MDM-size models or batches of 16, else fp32:
        see :mod:`~motiongpt_cli.diffusion.precision`), ``fp32``, ``bf16`` or ``int8``; ``batch_size`` a number or
        ``auto`` (one motion per forward in fp32 on a CPU, else up to 16:
        :func:`~motiongpt_cli.generation.batch_and_sampling`)."""
        from . import validation
        from .generation import (
            TextInput,
            assign_outputs,
            batch_and_sampling,
            length_in_frames,
            plan_jobs,
            resolve_sample_length,
        )

        highs = [texts] if isinstance(texts, str) else list(texts)
        if not highs:
            raise InvalidValueError("no text to generate from")
        if any(not isinstance(h, str) for h in highs):
            raise InvalidValueError("texts must be strings")
        if low is True:
            raise InvalidValueError("low must be a string, a list, None or False")
        if low is False:
            lows: list[str | None] = [None] * len(highs)
        elif low is None or isinstance(low, str):
            lows = [low] * len(highs)
        else:
            lows = list(low)
            if len(lows) != len(highs):
                raise InvalidValueError(f"low has {len(lows)} entries for {len(highs)} texts")
        inputs = [TextInput(h, lo) for h, lo in zip(highs, lows, strict=True)]
        samples = int(validation.SAMPLES.check("n", n)) * len(highs)  # at most this many motions per forward
        batch_size, sampling = batch_and_sampling(self.loaded, batch_size, samples, sampler=sampler, steps=steps,
                                                  guidance=guidance, eta=eta, precision=precision,
                                                  device=self.device)  # fmt: skip
        sample_length = resolve_sample_length(self.loaded, sample_length)
        # the length from the text when the model can tell (and neither seconds nor frames is given)
        predicted = self.predict_frames(highs, warn=False) if seconds is None and frames is None else None
        length = length_in_frames(seconds, frames, self.max_frames) if predicted is None else predicted[0]
        low_mode = "none" if low is False else "given"
        if self.conditioning == "high":
            if any(lo is not None for lo in lows):
                import warnings

                from .errors import MotionGPTWarning

                warnings.warn("this model is conditioned on the high-level text only; the low-level text is ignored",
                              MotionGPTWarning, stacklevel=2)  # fmt: skip
            low_mode = "none"
        n = int(validation.SAMPLES.check("n", n))  # every number is checked before the prompter (an LLM) runs
        if seed is not None:
            seed = int(validation.SEED.check("seed", seed))
        if out_dir is not None:  # the formats' tools and options, before the prompter (an LLM) or the sampler runs
            from .motion.outputs import check_smpl_model, check_tools, validate_formats
            from .motion.skeleton import FPS

            formats = validate_formats(list(formats) or ["npz", "bvh"])
            check_smpl_model(formats, smpl)  # an SMPL model file for obj
            check_tools(formats)  # Blender for fbx, ffmpeg for mp4
            if smpl is not None and "smpl" in formats:
                smpl.check_fps(FPS)
        need_prompt = low_mode == "given" and any(lo is None for lo in lows)
        # an LLM proposing the low-level texts also gives each one's duration, when the length is the text's to say
        durations = seconds is None and frames is None and need_prompt and self.prompter.backend == "openai"
        jobs, used_seed = plan_jobs(inputs, n, seed=seed, low_mode=low_mode,
                                    prompter=self.prompter if need_prompt else None, durations=durations,
                                    max_frames=self.max_frames)  # fmt: skip
        for job in jobs if predicted is not None else []:
            if job.frames is None:  # no duration from the LLM: the length predictor's
                job.frames = predicted[job.text_index]
        # no usable predictor: warn only when some motion has no LLM duration and gets 6 s
        if predicted is None and seconds is None and frames is None and any(job.frames is None for job in jobs):
            self._warn_no_length_predictor(stacklevel=3)
        if out_dir is not None:
            assign_outputs(jobs, Path(out_dir), formats, overwrite=overwrite)
        return Plan(jobs, used_seed, length, sampling, batch_size, overwrite, smpl, sample_length)

    def run(self, plan: Plan) -> Iterator[Motion]:
        """Sample a plan batch by batch; each motion is yielded (and written to its output paths, if the plan has
        any) as soon as its batch finishes."""
        from .generation import iter_samples
        from .motion.outputs import write_outputs

        first = next((job for job in plan.jobs if job.outputs), None)
        if first is not None:
            next(iter(first.outputs.values())).parent.mkdir(parents=True, exist_ok=True)
        for job, record in iter_samples(self.loaded, plan.jobs, plan.frames, plan.sampling, self.encoders,
                                        batch_size=plan.batch_size, device=self.device,
                                        sample_length=plan.sample_length):  # fmt: skip
            motion = Motion(**vars(record), low_source=job.low_source, paths=dict(job.outputs))
            if job.outputs:
                write_outputs(motion, job.outputs, title=motion.title, overwrite=plan.overwrite, smpl=plan.smpl)
            yield motion

    def generate(self, texts: str | Sequence[str], low: Low = None, *, n: int = 1, seconds: float | None = None,
                 frames: int | None = None, steps: int | None = None, sampler: str = "auto",
                 guidance: float | None = None, eta: float = 0.0, seed: int | None = None,
                 batch_size: int | str = "auto", sample_length: str | None = None,
                 precision: str = "auto") -> list[Motion]:  # fmt: skip
        """``n`` motions per text, in order (text 0's samples first). See :meth:`plan` for ``low`` and the
        defaults of ``steps``, ``guidance``, ``sample_length`` and ``precision``."""
        plan = self.plan(texts, low, n=n, seconds=seconds, frames=frames, steps=steps, sampler=sampler,
                         guidance=guidance, eta=eta, seed=seed, batch_size=batch_size,
                         sample_length=sample_length, precision=precision)  # fmt: skip
        return list(self.run(plan))

    # ------------------------------------------------------------------------------------------- control
    def plan_timeline(self, segments, *, n: int = 1, transition: float | None = None, blend: str | None = None,
                      low: bool = True, **kwargs):  # fmt: skip
        """Check a timeline and propose its missing low-level texts before anything is sampled.

        ``segments``: a :class:`~motiongpt_cli.control.timeline.Timeline`, a timeline file (JSONL or TOML), or a
        list of ``(high, seconds)`` / ``(high, seconds, low)`` tuples or dicts with those keys; ``transition``:
        seconds of overlap between segments [default: 1.0, or the file's]; ``blend``: ``crossfade`` (windows
        denoised apart, then cross-faded; the default) or ``joint`` (denoised together); ``low=False``: high-level
        texts only.
        Other keywords as :meth:`plan` (``steps``, ``sampler``, ``guidance``, ``eta``, ``seed``, ``batch_size``,
        ``out_dir``, ``formats``, ``overwrite``, ``smpl``)."""
        from .control.run import plan_timeline

        return plan_timeline(self, _timeline(segments, transition, blend), n=n, use_low=low, **kwargs)

    def run_timeline(self, plan) -> Iterator[Motion]:
        from .control.run import run_timeline

        yield from run_timeline(self, plan)

    def generate_timeline(self, segments, *, n: int = 1, transition: float | None = None, blend: str | None = None,
                          low: bool = True, **kwargs) -> list[Motion]:  # fmt: skip
        """One motion per sample whose consecutive segments follow their own texts, with smooth transitions, any
        total length. Each motion's ``segments`` holds every segment's frames and texts. See :meth:`plan_timeline`.

        ```python
        pipe.generate_timeline([("walk forward", 3), ("sit down", 2, "sit"), ("wave", 2)], steps=20, seed=0)
        ```"""
        return list(self.run_timeline(self.plan_timeline(segments, n=n, transition=transition, blend=blend, low=low,
                                                         **kwargs)))  # fmt: skip

    def plan_edit(self, source: str | Path, text: str, low: str | None | bool = None, **kwargs):
        """Check an edit before anything is sampled: see :meth:`edit`."""
        from .control.run import plan_edit

        return plan_edit(self, source, text, low, **kwargs)

    def run_edit(self, plan) -> Iterator[Motion]:
        from .control.run import run_edit

        yield from run_edit(self, plan)

    def edit(self, source: str | Path, text: str, low: str | None | bool = None, **kwargs) -> list[Motion]:
        """Regenerate the parts of a motion file (our ``.npz``, features or joints ``.npy``) that are not kept, so
        they join the kept ones; the kept features are the input's exactly.

        ``keep="0-2s,6-8s"`` (in-betweening), ``prefix="2s"`` / ``suffix="2s"`` (the input's first / last frames
        open / close an output of ``seconds`` or ``frames``, default the input's length: continuation),
        ``body="upper"|"lower"|"left_wrist,right_wrist"`` (regenerate only those joints). Other keywords: ``n``,
        ``steps``, ``sampler``, ``guidance``, ``eta``, ``seed``, ``transition``, ``out_dir``, ``formats``,
        ``overwrite``, ``smpl``.

        ```python
        pipe.edit("out/walk.npz", "a person waves", low="wave right hand", body="upper", steps=20, seed=0)
        ```"""
        return list(self.run_edit(self.plan_edit(source, text, low, **kwargs)))


def _timeline(segments, transition: float | None, blend: str | None = None):
    """A :class:`~motiongpt_cli.control.timeline.Timeline` from what :meth:`Pipeline.plan_timeline` accepts."""
    from .control.timeline import DEFAULT_BLEND, DEFAULT_TRANSITION, Timeline, TimelineSegment, load_timeline

    if isinstance(segments, Timeline):
        return Timeline(segments.segments, segments.transition if transition is None else transition,
                        blend or segments.blend)  # fmt: skip
    if isinstance(segments, (str, Path)):
        return load_timeline(segments, transition=transition, blend=blend)
    parts = []
    for i, item in enumerate(segments, 1):
        if isinstance(item, TimelineSegment):
            parts.append(item)
        elif isinstance(item, Mapping):
            unknown = sorted(set(item) - {"high", "low", "seconds"})
            if unknown or "high" not in item or "seconds" not in item:
                raise InvalidValueError(f"timeline segment {i} needs 'high' and 'seconds' (and optionally 'low')")
            parts.append(TimelineSegment(item["high"], item["seconds"], item.get("low")))
        elif isinstance(item, (tuple, list)) and len(item) in (2, 3):
            parts.append(TimelineSegment(item[0], item[1], item[2] if len(item) == 3 else None))
        else:
            raise InvalidValueError(f"timeline segment {i} must be (high, seconds), (high, seconds, low) or a dict")
    return Timeline(parts, DEFAULT_TRANSITION if transition is None else transition, blend or DEFAULT_BLEND)


def load_pipeline(model: str | Path | None = None, **kwargs) -> Pipeline:
    """:meth:`Pipeline.from_pretrained`: ``load_pipeline()`` is the embedded default model;
    ``load_pipeline("runs/my-model", device="cuda")`` a model of your own."""
    return Pipeline.from_pretrained(model, **kwargs)
