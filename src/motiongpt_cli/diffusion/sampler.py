"""The sampling loop: batched reverse diffusion with classifier-free guidance.

Guidance (Ho & Salimans 2022, as MDM): ``x0 = x0_uncond + s (x0_cond - x0_uncond)``; ``s = 1`` is no guidance.
The conditional and unconditional passes run as one forward over a doubled batch (``guidance_passes="batched"``,
ours) or as two forwards (``"separate"``, as MDM's ``ClassifierFreeSampleModel``: same values up to float rounding,
since GEMM shapes change the summation order). The unconditional pass drops both texts; "high only" sampling of a
dual model drops the low-level text in the conditional pass too.

``noise`` replays a given noise sequence in MDM's ``p_sample_loop`` order: ``x_T`` first, then one tensor per step,
the last one included (MDM draws it at ``t = 0`` and multiplies it by 0; we never use it).

``sampler="lcm"`` runs a consistency-distilled model (:mod:`motiongpt_cli.distill`): its guidance is folded into
its weights, so each step is one conditional forward, wrapped in the consistency function's boundary scalings.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import torch

from .. import validation
from ..errors import InvalidValueError, MotionGPTError
from .denoiser import MotionDenoiser
from .precision import forward_context, model_for
from .schedule import Generators, NoiseSchedule, SamplerName, consistency_scalings, make_scheduler, randn


@dataclass
class SamplingOptions:
    steps: int = 50
    sampler: SamplerName = "ddim"
    guidance: float = 2.5
    eta: float = 0.0
    guidance_passes: Literal["batched", "separate"] = "batched"
    precision: Literal["fp32", "bf16", "int8"] = "fp32"  # resolved: see diffusion.precision

    def __post_init__(self) -> None:
        self.steps = int(validation.STEPS.check("steps", self.steps))
        self.guidance = validation.GUIDANCE.check("guidance", self.guidance)
        self.eta = validation.ETA.check("eta", self.eta)
        if self.sampler not in ("ddim", "ddpm", "lcm"):
            raise InvalidValueError(f"sampler must be ddim, ddpm or lcm, got {self.sampler!r}")
        if self.guidance_passes not in ("batched", "separate"):
            raise InvalidValueError(f"guidance_passes must be batched or separate, got {self.guidance_passes!r}")
        if self.precision not in ("fp32", "bf16", "int8"):
            raise InvalidValueError(f"precision must be fp32, bf16 or int8, got {self.precision!r}")


@dataclass
class Inpainting:
    """Known parts of the motion, imposed at every denoising step: ``values (B, T, F)`` normalised features and
    ``mask (B, T, F)`` bool, True where the value is known (any pattern: frames, feature columns, or both).

    The denoiser's ``x0`` prediction is replaced by ``values`` where ``mask`` holds before each scheduler step
    (MDM's editing). For DDPM the posterior ``q(x_{t-1} | x_t, x_0)`` of the known part is then exactly the
    noised known motion's; DDIM steps from the same ``x0``. Both schedulers' last step returns ``x0``, and the
    known values are written back after it, so the output keeps them exactly."""

    values: torch.Tensor
    mask: torch.Tensor

    def check(self, shape: tuple[int, ...]) -> None:
        if tuple(self.values.shape) != shape or tuple(self.mask.shape) != shape:
            raise MotionGPTError(f"inpainting values and mask must have shape {shape}, got "
                                 f"{tuple(self.values.shape)} and {tuple(self.mask.shape)}")  # fmt: skip

    def impose(self, x: torch.Tensor) -> torch.Tensor:
        return torch.where(self.mask.to(x.device), self.values.to(device=x.device, dtype=x.dtype), x)


def guided_x0(model: MotionDenoiser, x: torch.Tensor, t: int, high: torch.Tensor, low: torch.Tensor | None,
              mask: torch.Tensor, low_keep: torch.Tensor, options: SamplingOptions) -> torch.Tensor:  # fmt: skip
    """The guided ``x0`` prediction for ``x (B, T, F)`` at timestep ``t``: conditional and unconditional passes
    (both texts dropped) as one doubled batch or two forwards, per ``options.guidance_passes``; the forwards run in
    ``options.precision`` and the result is float32. With ``options.sampler == "lcm"`` (a consistency model) it
    is ``c_skip(t) x + c_out(t) F(x, t)`` from one conditional forward (guidance is in the weights)."""
    if options.sampler == "lcm":
        options = dataclasses.replace(options, guidance=1.0, sampler="ddim")
        c_skip, c_out = consistency_scalings(torch.tensor(float(t)))
        return float(c_skip) * x + float(c_out) * guided_x0(model, x, t, high, low, mask, low_keep, options)
    if options.precision != "fp32":
        model = model_for(model, options.precision)
        with forward_context(options.precision, x.device):
            return _guided_x0(model, x, t, high, low, mask, low_keep, options).float()
    return _guided_x0(model, x, t, high, low, mask, low_keep, options)


def _guided_x0(model, x, t, high, low, mask, low_keep, options: SamplingOptions) -> torch.Tensor:
    """Packed forwards: with masked padding, a padded frame never reaches a clip frame (its keys are masked), so only
    the clip frames go through the per-token layers; their outputs are the padded computation's up to float rounding,
    and the padded frames' (cut from every result) are the output bias."""
    B, device = x.shape[0], x.device
    ones = torch.ones(B, dtype=torch.bool, device=device)
    none = torch.zeros_like(ones)
    if options.guidance == 1.0:
        tt = torch.full((B,), t, device=device, dtype=torch.long)
        return model(x, tt, high, low, mask, ones, low_keep, pack=True)
    if options.guidance_passes == "separate":  # MDM's ClassifierFreeSampleModel: two forwards
        tt = torch.full((B,), t, device=device, dtype=torch.long)
        cond = model(x, tt, high, low, mask, ones, low_keep, pack=True)
        uncond = model(x, tt, high, low, mask, none, none, pack=True)
    else:  # [conditional; unconditional] in one batch
        tt = torch.full((2 * B,), t, device=device, dtype=torch.long)
        out = model(torch.cat([x, x]), tt, torch.cat([high, high]), None if low is None else torch.cat([low, low]),
                    torch.cat([mask, mask]), torch.cat([ones, none]), torch.cat([low_keep, none]),
                    pack=True)  # fmt: skip
        cond, uncond = out[:B], out[B:]
    return uncond + options.guidance * (cond - uncond)


def _low_inputs(model: MotionDenoiser, low: torch.Tensor | None, use_low: torch.Tensor | None, B: int,
                device) -> tuple[torch.Tensor | None, torch.Tensor]:  # fmt: skip
    """The low-level embeddings the denoiser takes (zeros for a dual model given none) and which rows use them."""
    keep = torch.ones(B, dtype=torch.bool, device=device) if use_low is None else use_low.to(device)
    if low is None:
        if model.config.uses_low:
            low = torch.zeros(B, model.config.low_dim, device=device)
        keep = torch.zeros(B, dtype=torch.bool, device=device)
    return low, keep


def _initial_noise(shape: tuple[int, ...], steps: int, generator: Generators, noise, device):
    if noise is not None:
        if len(noise) != 1 + steps or any(tuple(n.shape) != shape for n in noise):
            raise MotionGPTError(f"noise must be {1 + steps} tensors of shape {shape}")
        noise = [n.to(device=device, dtype=torch.float32) for n in noise]
        return noise[0], noise
    return randn(shape, generator, device=device), None


@torch.no_grad()
def sample(
    model: MotionDenoiser,
    schedule: NoiseSchedule,
    high: torch.Tensor,
    low: torch.Tensor | None,
    lengths: torch.Tensor,
    options: SamplingOptions,
    generator: Generators = None,
    *,
    use_low: torch.Tensor | None = None,
    on_step: Callable[[int, int], None] | None = None,
    noise: Sequence[torch.Tensor] | None = None,
    inpaint: Inpainting | None = None,
) -> torch.Tensor:
    """Normalised features ``(B, max(lengths), F)`` (frames past each length are padding).

    ``high (B, Dh)``, ``low (B, Dl)`` embeddings; ``use_low (B,)`` bool says which samples get their low-level text
    (default: all when ``low`` is given); ``generator``: one per sample for per-sample reproducibility;
    ``noise``: ``1 + steps`` tensors ``(B, max(lengths), F)`` used instead of drawing from ``generator``;
    ``inpaint``: known parts imposed at every step (editing).
    """
    B = high.shape[0]
    device = high.device
    frames = int(lengths.max())
    if frames > model.config.max_frames or int(lengths.min()) < 1:
        raise MotionGPTError(f"lengths must be in [1, {model.config.max_frames}], got {lengths.tolist()}")
    mask = torch.arange(frames, device=device)[None, :] < lengths.to(device)[:, None]
    scheduler = make_scheduler(options.sampler, schedule, eta=options.eta)
    timesteps = scheduler.set_timesteps(options.steps)
    low, low_keep = _low_inputs(model, low, use_low, B, device)
    shape = (B, frames, model.config.feature_dim)
    if inpaint is not None:
        inpaint.check(shape)
    x, noise = _initial_noise(shape, len(timesteps), generator, noise, device)
    was_training = model.training
    model.eval()
    try:
        for i, t in enumerate(timesteps):
            x0 = guided_x0(model, x, t, high, low, mask, low_keep, options)
            if inpaint is not None:
                x0 = inpaint.impose(x0)
            x = scheduler.step(x0, t, x, generator, noise=None if noise is None else noise[i + 1])
            x = x * mask[..., None]
            if on_step is not None:
                on_step(i + 1, len(timesteps))
    finally:
        model.train(was_training)
    return x if inpaint is None else inpaint.impose(x) * mask[..., None]


@dataclass
class Window:
    """One text over frames ``[start, end)`` of a longer motion; ``weight (end - start,)`` is its share of each
    frame's ``x0`` where windows overlap (positive; the weights of a frame need not sum to 1)."""

    start: int
    end: int
    weight: torch.Tensor
    text: int  # the row of the window's text in the high/low embeddings

    @property
    def frames(self) -> int:
        return self.end - self.start


@torch.no_grad()
def sample_windows(
    model: MotionDenoiser,
    schedule: NoiseSchedule,
    high: torch.Tensor,
    low: torch.Tensor | None,
    windows: Sequence[Window],
    frames: int,
    options: SamplingOptions,
    generator: Generators = None,
    *,
    samples: int = 1,
    use_low: torch.Tensor | None = None,
    inpaint: Inpainting | None = None,
    on_step: Callable[[int, int], None] | None = None,
    blend: str = "joint",
) -> torch.Tensor:
    """Normalised features ``(samples, frames, F)`` of one long motion made of overlapping windows, each following
    its own text. ``blend="joint"``: denoised jointly: at every step each window predicts ``x0`` for its frames,
    the predictions are blended frame by frame with the windows' weights (MultiDiffusion / DiffCollage-style joint
    denoising), and the scheduler steps the whole motion from the blended ``x0``. ``blend="final"``: each window is
    denoised on its own (its own noise, the same batched forwards) and the finished windows are blended with the
    same weights (a cross-fade of independent windows).

    ``high (samples * K, Dh)``, ``low (samples * K, Dl)`` and ``use_low (samples * K,)`` hold each sample's ``K``
    texts, sample-major: window ``w`` of sample ``s`` reads row ``s * K + w.text``. ``generator``: one per sample.
    Windows of equal length share one forward; no window is padded (models trained without a padding mask would
    attend to padding). Every frame must be covered by a window.
    """
    device = high.device
    K = high.shape[0] // samples
    if K * samples != high.shape[0] or any(not 0 <= w.text < K for w in windows):
        raise MotionGPTError(f"{high.shape[0]} text rows do not give each of {samples} samples the windows' texts")
    F = model.config.feature_dim
    coverage = torch.zeros(frames, dtype=torch.float64)
    for w in windows:
        if not 0 <= w.start < w.end <= frames or w.frames > model.config.max_frames or w.weight.shape != (w.frames,):
            raise MotionGPTError(f"window [{w.start}, {w.end}) does not fit a {frames}-frame motion and the model's "
                                 f"{model.config.max_frames}-frame maximum")  # fmt: skip
        coverage[w.start : w.end] += w.weight.double()
    if not bool((coverage > 0).all()):
        raise MotionGPTError("the windows leave frames uncovered")
    norm = coverage.to(device=device, dtype=torch.float32)[None, :, None]
    low, low_keep = _low_inputs(model, low, use_low, high.shape[0], device)
    groups: dict[int, list[Window]] = {}
    for w in windows:
        groups.setdefault(w.frames, []).append(w)
    scheduler = make_scheduler(options.sampler, schedule, eta=options.eta)
    timesteps = scheduler.set_timesteps(options.steps)
    shape = (samples, frames, F)
    if blend == "final":
        if inpaint is not None:
            raise MotionGPTError("inpainting needs jointly denoised windows (blend='joint')")
        return _sample_apart(model, scheduler, timesteps, high, low, low_keep, windows, groups, norm, shape, options,
                             generator, K, on_step)  # fmt: skip
    if blend != "joint":
        raise MotionGPTError(f"blend must be joint or final, got {blend!r}")
    if inpaint is not None:
        inpaint.check(shape)
    x = randn(shape, generator, device=device)
    was_training = model.training
    model.eval()
    try:
        for i, t in enumerate(timesteps):
            x0 = torch.zeros(shape, device=device)
            for group in groups.values():
                pred = _group_x0(model, [x[:, w.start : w.end] for w in group], group, t, high, low, low_keep,
                                 options, K)  # fmt: skip
                for k, w in enumerate(group):
                    x0[:, w.start : w.end] += pred[:, k] * w.weight.to(device)[None, :, None]
            x0 = x0 / norm
            if inpaint is not None:
                x0 = inpaint.impose(x0)
            x = scheduler.step(x0, t, x, generator)
            if on_step is not None:
                on_step(i + 1, len(timesteps))
    finally:
        model.train(was_training)
    return x if inpaint is None else inpaint.impose(x)


def _group_x0(model, parts: list[torch.Tensor], group: list[Window], t: int, high, low, low_keep,
              options: SamplingOptions, K: int) -> torch.Tensor:  # fmt: skip
    """The guided ``x0`` of a group of equal-length windows in one forward: ``parts`` are their ``(samples, length,
    F)`` inputs; the result is ``(samples, len(group), length, F)``."""
    samples, length, F = parts[0].shape
    device = parts[0].device
    rows = torch.tensor([s * K + w.text for s in range(samples) for w in group], device=device)
    xs = torch.stack(parts, dim=1).reshape(-1, length, F)
    mask = torch.ones(xs.shape[:2], dtype=torch.bool, device=device)
    pred = guided_x0(model, xs, t, high[rows], None if low is None else low[rows], mask, low_keep[rows], options)
    return pred.reshape(samples, len(group), length, F)


def _sample_apart(model, scheduler, timesteps, high, low, low_keep, windows, groups, norm, shape, options, generator,
                  K, on_step) -> torch.Tensor:  # fmt: skip
    """:func:`sample_windows` with ``blend="final"``: every window its own trajectory, blended once at the end."""
    samples, frames, F = shape
    device = high.device
    index = {id(w): i for i, w in enumerate(windows)}
    xs = [randn((samples, w.frames, F), generator, device=device) for w in windows]  # window order
    was_training = model.training
    model.eval()
    try:
        for i, t in enumerate(timesteps):
            x0s: list[torch.Tensor | None] = [None] * len(windows)
            for group in groups.values():
                pred = _group_x0(model, [xs[index[id(w)]] for w in group], group, t, high, low, low_keep, options, K)
                for k, w in enumerate(group):
                    x0s[index[id(w)]] = pred[:, k]
            xs = [scheduler.step(x0, t, x, generator) for x0, x in zip(x0s, xs, strict=True)]
            if on_step is not None:
                on_step(i + 1, len(timesteps))
    finally:
        model.train(was_training)
    out = torch.zeros(shape, device=device)
    for w, x in zip(windows, xs, strict=True):
        out[:, w.start : w.end] += x * w.weight.to(device)[None, :, None]
    return out / norm
