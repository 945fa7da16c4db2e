"""``motiongpt edit``: regenerate parts of a motion by inpainting (a thin wrapper over :meth:`Pipeline.plan_edit` and
:meth:`Pipeline.run_edit`)."""

from __future__ import annotations

from pathlib import Path

import typer

from .. import validation
from .app import app, device_of, emit_motion, get_state
from .types import (
    FIT_SHAPE,
    PRECISION,
    SMPL_FPS,
    SMPL_LAYOUT,
    SMPL_MODEL,
    SMPL_UP,
    check_generation_usage,
    number,
    smpl_options,
)


@app.command("edit")
def edit_cmd(
    ctx: typer.Context,
    source: Path = typer.Argument(..., help="The motion to edit: our .npz, a features (N, 263) or joints "
                                  "(N, 22, 3) .npy."),  # fmt: skip
    text: str = typer.Argument(..., help="High-level text of the regenerated parts."),
    keep: str | None = typer.Option(None, "--keep", help="Input ranges to keep, e.g. 0-2s,6-8s (or 0-40f): "
                                    "everything else is regenerated to join them (in-betweening)."),  # fmt: skip
    prefix: str | None = typer.Option(None, "--prefix", help="Keep the input's first part (e.g. 2s) at the start "
                                      "and generate the rest: continue forward."),  # fmt: skip
    suffix: str | None = typer.Option(None, "--suffix", help="Keep the input's last part at the end and generate "
                                      "what leads to it: continue backward."),  # fmt: skip
    body: str | None = typer.Option(None, "--body", help="Regenerate only these joints: upper | lower | a comma "
                                    "list of joint names or indices (keeps the rest of every frame)."),  # fmt: skip
    low: str | None = typer.Option(None, "--low", help="Low-level text [default: proposed per sample]."),
    no_low: bool = typer.Option(False, "--no-low", help="Condition on the high-level text only."),
    n: int = typer.Option(1, "-n", "--num-samples", parser=number(validation.SAMPLES), help="Edits to sample."),
    seconds: float | None = typer.Option(None, "--seconds", parser=number(validation.SECONDS),
                                         help="Output length [default: the input's]."),  # fmt: skip
    frames: int | None = typer.Option(None, "--frames", parser=number(validation.FRAMES),
                                      help="Output length in frames at 20 fps."),  # fmt: skip
    transition: float = typer.Option(0.5, "--transition", parser=number(validation.TRANSITION),
                                     help="Seconds of overlap between windows of an output longer than the "
                                     "model's maximum."),  # fmt: skip
    steps: int | None = typer.Option(None, "--steps", parser=number(validation.STEPS),
                                     help="Denoising steps [default: as generate]."),  # fmt: skip
    sampler: str = typer.Option("auto", "--sampler", help="auto | ddim | ddpm | lcm (auto: lcm for a distilled "
                                "model, else ddim)."),
    eta: float = typer.Option(0.0, "--eta", parser=number(validation.ETA), help="DDIM noise."),
    guidance: float | None = typer.Option(None, "--guidance", parser=number(validation.GUIDANCE),
                                          help="Classifier-free guidance scale [default: the model's, 2.5]."),
    seed: int | None = typer.Option(None, "--seed", parser=number(validation.SEED),
                                    help="Same seed, same edit [default: random, recorded]."),  # fmt: skip
    precision: str = PRECISION,
    model: Path | None = typer.Option(None, "--model", help="Model directory or training run [default: embedded]."),
    formats: str | None = typer.Option(None, "--format", help="Comma list of output formats, as generate "
                                       "[default: npz,bvh]."),  # fmt: skip
    out: Path = typer.Option(Path("."), "--output", "-o", help="Output folder."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing files."),
    index: Path | None = typer.Option(None, "--index", help="Retrieval index for proposed low-level texts."),
    as_json: bool = typer.Option(False, "--json", help="One JSON manifest line per edit."),
    smpl_layout: str = SMPL_LAYOUT,
    up: str = SMPL_UP,
    smpl_fps: int | None = SMPL_FPS,
    smpl_model: Path | None = SMPL_MODEL,
    fit_shape: bool = FIT_SHAPE,
) -> None:
    """Edit a motion by inpainting: in-betweening (--keep), continuation (--prefix/--suffix), body parts (--body).

    The kept features stay exactly the input's; the rest is regenerated at every denoising step to join them.
    """
    from ..api import Pipeline
    from ..motion.outputs import validate_formats
    from ..paths import cache_dir
    from ..text.prompting import PromptConfig

    state = get_state(ctx)
    check_generation_usage(low, no_low, seconds, frames, sampler)
    fmts = validate_formats(formats.split(",") if formats else state.settings["export.formats"])
    smpl = smpl_options(smpl_layout, up, smpl_fps, smpl_model, fit_shape)
    prompt = PromptConfig.from_settings(state.settings)
    pipe = Pipeline.from_pretrained(model, device=device_of(state), index=index, prompt=prompt, cache_dir=cache_dir(),
                                    sampler=sampler, steps=steps)  # fmt: skip
    plan = pipe.plan_edit(source, text, False if no_low else low, keep=keep, prefix=prefix, suffix=suffix, body=body,
                          seconds=seconds, frames=frames, n=n, steps=steps, sampler=sampler, guidance=guidance,
                          eta=eta, seed=seed, transition=transition, out_dir=out, formats=fmts, overwrite=overwrite,
                          smpl=smpl, precision=precision)  # fmt: skip
    if not state.quiet and not as_json:
        typer.echo(f"{len(plan)} edit(s) of {plan.source.name}: {plan.spec.describe()}; {plan.frames} frames, seed "
                   f"{plan.seed}, {plan.sampling.sampler} {plan.sampling.steps} steps", err=True)  # fmt: skip
    for motion in pipe.run_edit(plan):
        emit_motion(motion, plan.sampling, as_json=as_json, edit=motion.edit)
