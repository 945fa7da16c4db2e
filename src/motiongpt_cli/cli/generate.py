"""``motiongpt generate``: a thin wrapper over the Python API (:meth:`Pipeline.plan` + :meth:`Pipeline.run`)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from .. import validation
from ..errors import MotionGPTError
from .app import app, device_of, get_state, read_texts
from .types import FIT_SHAPE, SMPL_FPS, SMPL_LAYOUT, SMPL_MODEL, SMPL_UP, number, smpl_options


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
    seconds: float | None = typer.Option(None, "--seconds", parser=number(validation.SECONDS),
                                         help="Length in seconds [default: 6]."),  # fmt: skip
    frames: int | None = typer.Option(None, "--frames", parser=number(validation.FRAMES),
                                      help="Length in frames at 20 fps."),  # fmt: skip
    steps: int = typer.Option(50, "--steps", parser=number(validation.STEPS), help="Denoising steps."),
    sampler: str = typer.Option("ddim", "--sampler", help="ddim | ddpm."),
    eta: float = typer.Option(0.0, "--eta", parser=number(validation.ETA),
                              help="DDIM noise (0 = deterministic, 1 = DDPM-like)."),  # fmt: skip
    guidance: float = typer.Option(2.5, "--guidance", parser=number(validation.GUIDANCE),
                                   help="Classifier-free guidance scale (1 = none)."),  # fmt: skip
    seed: int | None = typer.Option(None, "--seed", parser=number(validation.SEED),
                                    help="Same seed, same motions [default: random, recorded]."),  # fmt: skip
    model: Path | None = typer.Option(None, "--model", help="Model directory or training run [default: embedded]."),
    formats: str | None = typer.Option(None, "--format", help="Comma list of npz, bvh, gif, mp4, smpl, glb, fbx "
                                       "[default: npz,bvh]."),  # fmt: skip
    out: Path = typer.Option(Path("."), "--output", "-o", help="Output folder."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing files."),
    from_file: Path | None = typer.Option(None, "--from-file", "-f", help="Read texts from FILE ('-' = stdin)."),
    index: Path | None = typer.Option(None, "--index", help="Retrieval index for proposed low-level texts "
                                      "[default: the model's own]."),  # fmt: skip
    backend: str | None = typer.Option(None, "--backend", help="openai | retrieval, for proposed low-level texts."),
    base_url: str | None = typer.Option(None, "--base-url", help="OpenAI-compatible endpoint for --backend openai."),
    llm_model: str | None = typer.Option(None, "--llm-model", help="Chat model for --backend openai."),
    batch_size: int = typer.Option(16, "--batch-size", parser=number(validation.BATCH_SIZE),
                                   help="Samples per forward pass."),  # fmt: skip
    as_json: bool = typer.Option(False, "--json", help="One JSON manifest line per sample."),
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
    if low is not None and no_low:
        raise typer.BadParameter("--low and --no-low exclude each other")
    if seconds is not None and frames is not None:
        raise typer.BadParameter("--seconds and --frames exclude each other")
    if sampler not in ("ddim", "ddpm"):
        raise typer.BadParameter("must be ddim or ddpm", param_hint="--sampler")
    if backend is not None and backend not in ("openai", "retrieval"):
        raise typer.BadParameter(f"unknown backend {backend!r} (openai or retrieval)", param_hint="--backend")
    if low is not None and not low.strip():
        raise typer.BadParameter("an empty low-level text (omit --low to have one proposed, or use --no-low)",
                                 param_hint="--low")  # fmt: skip
    if from_file is not None or texts == ["-"]:
        lines = read_texts(texts if texts == ["-"] else [], from_file)
        pairs = [parse_generate_line(line, f"line {i}") for i, line in enumerate(lines, 1)]
    else:
        pairs = [(t, None) for t in (texts or [])]
    if not pairs:
        raise typer.BadParameter("give at least one text (arguments, --from-file FILE, or - for stdin)")
    fmts = validate_formats(formats.split(",") if formats else state.settings["export.formats"])
    smpl = smpl_options(smpl_layout, up, smpl_fps, smpl_model, fit_shape)
    lows = False if no_low else ([low] * len(pairs) if low is not None else [lo for _, lo in pairs])
    prompt = PromptConfig.from_settings(state.settings, backend=backend, base_url=base_url, model=llm_model)
    pipe = Pipeline.from_pretrained(model, device=device_of(state), index=index, prompt=prompt, cache_dir=cache_dir())
    plan = pipe.plan([h for h, _ in pairs], lows, n=n, seconds=seconds, frames=frames, steps=steps, sampler=sampler,
                     guidance=guidance, eta=eta, seed=seed, batch_size=batch_size, out_dir=out, formats=fmts,
                     overwrite=overwrite, smpl=smpl)  # fmt: skip
    if not state.quiet and not as_json:
        typer.echo(f"{len(plan)} motion(s) of {plan.frames} frames, seed {plan.seed}, {sampler} {steps} steps",
                   err=True)  # fmt: skip
    for motion in pipe.run(plan):
        if as_json:
            typer.echo(json.dumps({"high": motion.text_high, "low": motion.text_low or None,
                                   "low_source": motion.low_source, "seed": motion.seed, "frames": motion.frames,
                                   "model": motion.model, "steps": steps, "sampler": sampler, "guidance": guidance,
                                   "outputs": {k: str(v) for k, v in motion.paths.items()}}))  # fmt: skip
        else:
            for path in motion.paths.values():
                typer.echo(str(path))
