"""The sampling loop: batched reverse diffusion with classifier-free guidance.

Guidance (Ho & Salimans 2022, as MDM): ``x0 = x0_uncond + s (x0_cond - x0_uncond)``; ``s = 1`` is no guidance.
The conditional and unconditional passes run as one forward over a doubled batch (``guidance_passes="batched"``,
ours) or as two forwards (``"separate"``, as MDM's ``ClassifierFreeSampleModel``: same values up to float rounding,
since GEMM shapes change the summation order). The unconditional pass drops both texts; "high only" sampling of a
dual model drops the low-level text in the conditional pass too.

``noise`` replays a given noise sequence in MDM's ``p_sample_loop`` order: ``x_T`` first, then one tensor per step,
the last one included (MDM draws it at ``t = 0`` and multiplies it by 0; we never use it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import torch

from .. import validation
from ..errors import InvalidValueError, MotionGPTError
from .denoiser import MotionDenoiser
from .schedule import Generators, NoiseSchedule, SamplerName, make_scheduler, randn


@dataclass
class SamplingOptions:
    steps: int = 50
    sampler: SamplerName = "ddim"
    guidance: float = 2.5
    eta: float = 0.0
    guidance_passes: Literal["batched", "separate"] = "batched"

    def __post_init__(self) -> None:
        self.steps = int(validation.STEPS.check("steps", self.steps))
        self.guidance = validation.GUIDANCE.check("guidance", self.guidance)
        self.eta = validation.ETA.check("eta", self.eta)
        if self.sampler not in ("ddim", "ddpm"):
            raise InvalidValueError(f"sampler must be ddim or ddpm, got {self.sampler!r}")
        if self.guidance_passes not in ("batched", "separate"):
            raise InvalidValueError(f"guidance_passes must be batched or separate, got {self.guidance_passes!r}")


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
) -> torch.Tensor:
    """Normalised features ``(B, max(lengths), F)`` (frames past each length are padding).

    ``high (B, Dh)``, ``low (B, Dl)`` embeddings; ``use_low (B,)`` bool says which samples get their low-level text
    (default: all when ``low`` is given); ``generator``: one per sample for per-sample reproducibility;
    ``noise``: ``1 + steps`` tensors ``(B, max(lengths), F)`` used instead of drawing from ``generator``.
    """
    B = high.shape[0]
    device = high.device
    frames = int(lengths.max())
    if frames > model.config.max_frames or int(lengths.min()) < 1:
        raise MotionGPTError(f"lengths must be in [1, {model.config.max_frames}], got {lengths.tolist()}")
    mask = torch.arange(frames, device=device)[None, :] < lengths.to(device)[:, None]
    scheduler = make_scheduler(options.sampler, schedule, eta=options.eta)
    timesteps = scheduler.set_timesteps(options.steps)
    ones = torch.ones(B, dtype=torch.bool, device=device)
    low_keep = ones if use_low is None else use_low.to(device)
    if low is None:
        if model.config.uses_low:
            low = torch.zeros(B, model.config.low_dim, device=device)
        low_keep = torch.zeros_like(ones)
    guided = options.guidance != 1.0
    if guided:  # [conditional; unconditional] in one batch
        high2 = torch.cat([high, high])
        low2 = torch.cat([low, low]) if low is not None else None
        mask2 = torch.cat([mask, mask])
        high_keep2 = torch.cat([ones, torch.zeros_like(ones)])
        low_keep2 = torch.cat([low_keep, torch.zeros_like(ones)])
    shape = (B, frames, model.config.feature_dim)
    if noise is not None:
        if len(noise) != 1 + len(timesteps) or any(tuple(n.shape) != shape for n in noise):
            raise MotionGPTError(f"noise must be {1 + len(timesteps)} tensors of shape {shape}")
        noise = [n.to(device=device, dtype=torch.float32) for n in noise]
    x = noise[0] if noise is not None else randn(shape, generator, device=device)
    separate = options.guidance_passes == "separate"
    was_training = model.training
    model.eval()
    try:
        for i, t in enumerate(timesteps):
            if guided and separate:  # MDM's ClassifierFreeSampleModel: two forwards
                tt = torch.full((B,), t, device=device, dtype=torch.long)
                cond = model(x, tt, high, low, mask, ones, low_keep)
                uncond = model(x, tt, high, low, mask, torch.zeros_like(ones), torch.zeros_like(ones))
                x0 = uncond + options.guidance * (cond - uncond)
            elif guided:
                tt = torch.full((2 * B,), t, device=device, dtype=torch.long)
                out = model(torch.cat([x, x]), tt, high2, low2, mask2, high_keep2, low_keep2)
                cond, uncond = out[:B], out[B:]
                x0 = uncond + options.guidance * (cond - uncond)
            else:
                tt = torch.full((B,), t, device=device, dtype=torch.long)
                x0 = model(x, tt, high, low, mask, ones, low_keep)
            x = scheduler.step(x0, t, x, generator, noise=None if noise is None else noise[i + 1])
            x = x * mask[..., None]
            if on_step is not None:
                on_step(i + 1, len(timesteps))
    finally:
        model.train(was_training)
    return x
