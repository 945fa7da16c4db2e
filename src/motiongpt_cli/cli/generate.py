"""``motiongpt generate``: a thin wrapper over the Python API (:meth:`Pipeline.plan` + :meth:`Pipeline.run`)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from .. import validation
from ..errors import MotionGPTError
from .app import app, device_of, emit_motion, get_state, read_texts
from .types import (
    FIT_SHAPE,
    PRECISION,
    SMPL_FPS,
    SMPL_LAYOUT,
    SMPL_MODEL,
    SMPL_UP,
    batch_or_auto,
    check_generation_usage,
    number,
    smpl_options,
)


def parse_generate_line(line: str, where: str) -> tuple[str, str | None]:
    """``high``, ``high | low``, or a JSON object with ``high`` (and optional ``low``) -> (high, low)."""
    if line.lstrip().startswith("{"):
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise MotionGPTError(f"{where}: invalid JSON: {exc.msg}") from None
        if not isinstance(obj, dict) or not isinstance(obj.get("high"), str):
            raise MotionGPTError(f"{where}: a JSON line needs a string 'high' field")
        low = obj.get("low")
        if low is not None and not isinstance(low, str):
            raise MotionGPTError(f"{where}: 'low' must be a string")
        return obj["high"], low
    high, sep, low = line.partition("|")
    return high.strip(), (low.strip() if sep else None)


@app.command("generate")
def generate_cmd(
    ctx: typer.Context,
    texts: list[str] = typer.Argument(None, help="High-level descriptions ('-' reads stdin: lines, 'high | low' or "
                                      "JSONL with high/low)."),  # fmt: skip
    low: str | None = typer.Option(None, "--low", help="Low-level text for every sample (else proposed per sample)."),
    no_low: bool = typer.Option(False, "--no-low", help="Condition on the high-level text only."),
    n: int = typer.Option(1, "-n", "--num-samples", parser=number(validation.SAMPLES), help="Samples per text."),
    seconds: str | None = typer.Option(None, "--seconds", help="Length in seconds; with --timeline one per text "
                                       "(3,2,2) or one for all [default: predicted from the text, else 6]."),
    frames: int | None = typer.Option(None, "--frames", parser=number(validation.FRAMES),
                                      help="Length in frames at 20 fps."),  # fmt: skip
    steps: int | None = typer.Option(None, "--steps", parser=number(validation.STEPS),
                                     help="Denoising steps [default: 50, or the model's measured default "
                                     "(config.json sampling.steps); a distilled model's own; ddpm on an "
                                     "imported model: all of its diffusion steps, the original's loop]."),  # fmt: skip
    sampler: str = typer.Option("auto", "--sampler", help="auto | ddim | ddpm | lcm (auto: lcm for a distilled "
                                "model, else ddim)."),
    eta: float = typer.Option(0.0, "--eta", parser=number(validation.ETA),
                              help="DDIM noise (0 = deterministic, 1 = DDPM-like)."),  # fmt: skip
    guidance: float | None = typer.Option(None, "--guidance", parser=number(validation.GUIDANCE),
                                          help="Classifier-free guidance scale (1 = none) [default: the model's, "
                                          "2.5]."),  # fmt: skip
    sample_length: str | None = typer.Option(None, "--sample-length", help="requested | max: sample the requested "
                                             "length, or the model's maximum (196 frames) and crop [default: the "
                                             "model's; max for imported MDM models trained without a frame "
                                             "mask]."),  # fmt: skip
    precision: str = PRECISION,
    seed: int | None = typer.Option(None, "--seed", parser=number(validation.SEED),
                                    help="Same seed, same motions [default: random, recorded]."),  # fmt: skip
    model: Path | None = typer.Option(None, "--model", help="Model directory or training run [default: embedded]."),
    formats: str | None = typer.Option(None, "--format", help="Comma list of npz, bvh, gif, mp4, smpl, glb, fbx, obj "
                                       "(obj needs --smpl-model) [default: npz,bvh]."),  # fmt: skip
    out: Path = typer.Option(Path("."), "--output", "-o", help="Output folder."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing files."),
    from_file: Path | None = typer.Option(None, "--from-file", "-f", help="Read texts from FILE ('-' = stdin)."),
    index: Path | None = typer.Option(None, "--index", help="Retrieval index for proposed low-level texts "
                                      "[default: the model's own]."),  # fmt: skip
    backend: str | None = typer.Option(None, "--backend", help="openai | retrieval, for proposed low-level texts."),
    base_url: str | None = typer.Option(None, "--base-url", help="OpenAI-compatible endpoint for --backend openai."),
    llm_model: str | None = typer.Option(None, "--llm-model", help="Chat model for --backend openai."),
    batch_size: str = typer.Option("auto", "--batch-size", parser=batch_or_auto,
                                   help="Samples per forward pass, or auto (1 in fp32 on a CPU, else up to "
                                   "16)."),  # fmt: skip
    as_json: bool = typer.Option(False, "--json", help="One JSON manifest line per sample."),
    timeline: bool = typer.Option(False, "--timeline", help="One motion of the texts in order, each for its "
                                  "--seconds, with smooth transitions (any total length)."),  # fmt: skip
    timeline_file: Path | None = typer.Option(None, "--timeline-file", help="A timeline file (JSONL or TOML "
                                              "[[segment]] with high, low, seconds); implies --timeline.",
                                              dir_okay=False),  # fmt: skip
    transition: float | None = typer.Option(None, "--transition", parser=number(validation.TRANSITION),
                                            help="Timeline: seconds of overlap between segments [default: 1.0, "
                                            "or the file's]."),  # fmt: skip
    blend: str | None = typer.Option(None, "--blend", help="Timeline: crossfade (segments denoised apart, then "
                                     "cross-faded) or joint (denoised together) [default: crossfade, or the "
                                     "file's]."),  # fmt: skip
    smpl_layout: str = SMPL_LAYOUT,
    up: str = SMPL_UP,
    smpl_fps: int | None = SMPL_FPS,
    smpl_model: Path | None = SMPL_MODEL,
    fit_shape: bool = FIT_SHAPE,
) -> None:
    """Generate motions from text with the dual-conditioned diffusion model."""
    from ..api import Pipeline
    from ..motion.outputs import validate_formats
    from ..paths import cache_dir
    from ..text.prompting import PromptConfig

    state = get_state(ctx)
    check_generation_usage(low, no_low, seconds, frames, sampler)
    if sample_length is not None and sample_length not in ("requested", "max"):
        raise typer.BadParameter(f"must be requested or max, got {sample_length!r}", param_hint="--sample-length")
    if backend is not None and backend not in ("openai", "retrieval"):
        raise typer.BadParameter(f"unknown backend {backend!r} (openai or retrieval)", param_hint="--backend")
    if low is not None and not low.strip():
        raise typer.BadParameter("an empty low-level text (omit --low to have one proposed, or use --no-low)",
                                 param_hint="--low")  # fmt: skip
    timeline = timeline or timeline_file is not None
    if transition is not None and not timeline:
        raise typer.BadParameter("--transition applies to --timeline", param_hint="--transition")
    if blend is not None and not timeline:
        raise typer.BadParameter("--blend applies to --timeline", param_hint="--blend")
    if blend is not None and blend not in ("crossfade", "joint"):
        raise typer.BadParameter(f"must be crossfade or joint, got {blend!r}", param_hint="--blend")
    durations = parse_seconds(seconds, allow_list=timeline)
    if timeline_file is not None and (texts or from_file is not None):
        raise typer.BadParameter("give the timeline as a file or as texts, not both", param_hint="--timeline-file")
    if timeline_file is not None and (low is not None or durations or frames is not None):
        raise typer.BadParameter("the timeline file sets each segment's low-level text and seconds",
                                 param_hint="--timeline-file")  # fmt: skip
    if timeline and frames is not None:
        raise typer.BadParameter("a timeline's lengths are --seconds (one per text)", param_hint="--frames")
    pairs = [] if timeline_file is not None else _input_pairs(texts, from_file)
    fmts = validate_formats(formats.split(",") if formats else state.settings["export.formats"])
    smpl = smpl_options(smpl_layout, up, smpl_fps, smpl_model, fit_shape)
    lows = False if no_low else ([low] * len(pairs) if low is not None else [lo for _, lo in pairs])
    prompt = PromptConfig.from_settings(state.settings, backend=backend, base_url=base_url, model=llm_model)
    pipe = Pipeline.from_pretrained(model, device=device_of(state), index=index, prompt=prompt, cache_dir=cache_dir(),
                                    sampler=sampler, steps=steps)  # fmt: skip
    options = dict(n=n, steps=steps, sampler=sampler, guidance=guidance, eta=eta, seed=seed, batch_size=batch_size,
                   out_dir=out, formats=fmts, overwrite=overwrite, smpl=smpl, precision=precision)  # fmt: skip
    if timeline:
        _timeline(state, pipe, timeline_file, pairs, lows, durations, transition, blend, options,
                  as_json=as_json)  # fmt: skip
        return
    plan = pipe.plan([h for h, _ in pairs], lows, seconds=durations[0] if durations else None, frames=frames,
                     sample_length=sample_length, **options)  # fmt: skip
    sampling = plan.sampling
    if not state.quiet and not as_json:
        cropped = f" (sampled at {pipe.max_frames}, cropped)" if plan.sample_length == "max" else ""
        lengths = sorted({job.frames or plan.frames for job in plan.jobs})
        size = f"{lengths[0]}" if len(lengths) == 1 else f"{lengths[0]}-{lengths[-1]}"
        typer.echo(f"{len(plan)} motion(s) of {size} frames{cropped}, seed {plan.seed}, {sampling.sampler} "
                   f"{sampling.steps} steps, guidance {sampling.guidance:g}, {sampling.precision}",
                   err=True)  # fmt: skip
    for motion in pipe.run(plan):
        emit_motion(motion, sampling, as_json=as_json, sample_length=plan.sample_length)


def parse_seconds(value: str | None, *, allow_list: bool) -> list[float]:
    """``--seconds``: one number, or with ``--timeline`` a comma list (``3,2,2``)."""
    if value is None:
        return []
    parts = [part.strip() for part in str(value).split(",")]
    if len(parts) > 1 and not allow_list:
        raise typer.BadParameter("one length (a list of lengths is for --timeline)", param_hint="'--seconds'")
    parse = number(validation.SECONDS)
    try:
        return [float(parse(part)) for part in parts]
    except typer.BadParameter as exc:
        raise typer.BadParameter(str(exc), param_hint="'--seconds'") from None


def _input_pairs(texts: list[str] | None, from_file: Path | None) -> list[tuple[str, str | None]]:
    if from_file is not None or texts == ["-"]:
        lines = read_texts(texts if texts == ["-"] else [], from_file)
        pairs = [parse_generate_line(line, f"line {i}") for i, line in enumerate(lines, 1)]
    else:
        pairs = [(t, None) for t in (texts or [])]
    if not pairs:
        raise typer.BadParameter("give at least one text (arguments, --from-file FILE, or - for stdin)")
    return pairs


def _timeline(state, pipe, timeline_file, pairs, lows, durations, transition, blend, options, *,
              as_json: bool) -> None:  # fmt: skip
    """``generate --timeline``: the texts (or the file's segments) as one motion per sample."""
    from ..control.timeline import DEFAULT_TRANSITION, timeline_from_texts
    from ..motion.skeleton import FPS

    if timeline_file is not None:
        source = timeline_file
    else:
        highs = [h for h, _ in pairs]
        if not durations:  # the length of each segment from its text, else 6 s
            predicted = pipe.predict_frames(highs)
            durations = [f / FPS for f in predicted] if predicted is not None else [6.0]
        seg_lows = [None] * len(highs) if lows is False else lows
        source = timeline_from_texts(highs, durations, seg_lows,
                                     transition=DEFAULT_TRANSITION if transition is None else transition)  # fmt: skip
    plan = pipe.plan_timeline(source, transition=transition, blend=blend, low=lows is not False, **options)
    sampling = plan.sampling
    if not state.quiet and not as_json:
        lengths = plan.timeline.lengths()
        typer.echo(f"{len(plan)} timeline(s) of {len(lengths)} segments, {sum(lengths)} frames "
                   f"({sum(lengths) / FPS:g} s), seed {plan.seed}, {sampling.sampler} {sampling.steps} steps, "
                   f"guidance {sampling.guidance:g}", err=True)  # fmt: skip
    for motion in pipe.run_timeline(plan):
        segments = [{"start": s.start, "end": s.end, "high": s.high, "low": s.low or None} for s in motion.segments]
        emit_motion(motion, sampling, as_json=as_json, segments=segments)
