"""Noise schedule and the two reverse-process schedulers (DDPM ancestral, DDIM), apart from the network.

Notation (Ho et al. 2020; Song et al. 2021): ``alpha_bar_t`` is the cumulative product of ``1 - beta``;
``q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I)``. The denoiser predicts ``x_0``
(``prediction_type="sample"``, as MDM). Tables are float64, computed once. Timesteps are 0-based:
``t = 0`` is the least noisy step, ``T - 1`` the noisiest.

A third, ``lcm``, samples a consistency-distilled model (:mod:`motiongpt_cli.distill`) in a few steps.

All schedulers share one interface: ``set_timesteps(n)`` picks ``n`` evenly spaced steps out of ``T`` (respacing,
so DDPM also runs with fewer steps), and ``step(x0_pred, t, x_t, generator)`` returns the sample at the next,
less noisy step. Nothing about motion, joints or losses lives here.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import torch

from ..errors import MotionGPTError

BetaSchedule = Literal["cosine", "linear"]
SamplerName = Literal["ddim", "ddpm", "lcm"]
Generators = torch.Generator | list[torch.Generator] | None


def cosine_beta_schedule(num_steps: int, s: float = 0.008, max_beta: float = 0.999) -> np.ndarray:
    """Nichol & Dhariwal (2021), eq. 17: ``alpha_bar(t) = cos^2(((t/T + s) / (1 + s)) * pi/2)``, betas clipped."""

    def alpha_bar(u: float) -> float:
        return math.cos((u + s) / (1 + s) * math.pi / 2) ** 2

    betas = [min(1 - alpha_bar((i + 1) / num_steps) / alpha_bar(i / num_steps), max_beta) for i in range(num_steps)]
    return np.array(betas, dtype=np.float64)


def linear_beta_schedule(num_steps: int) -> np.ndarray:
    """Ho et al. (2020), scaled to ``num_steps`` as in improved DDPM."""
    scale = 1000 / num_steps
    return np.linspace(scale * 1e-4, scale * 0.02, num_steps, dtype=np.float64)


class NoiseSchedule:
    """``betas``/``alphas_cumprod`` (float64) for ``num_train_timesteps`` steps; ``add_noise`` for training."""

    def __init__(self, num_train_timesteps: int = 1000, beta_schedule: BetaSchedule = "cosine") -> None:
        if num_train_timesteps < 2:
            raise MotionGPTError(f"num_train_timesteps must be at least 2, got {num_train_timesteps}")
        if beta_schedule == "cosine":
            betas = cosine_beta_schedule(num_train_timesteps)
        elif beta_schedule == "linear":
            betas = linear_beta_schedule(num_train_timesteps)
        else:
            raise MotionGPTError(f"unknown beta_schedule {beta_schedule!r} (cosine or linear)")
        self.num_train_timesteps = num_train_timesteps
        self.beta_schedule = beta_schedule
        self.betas = betas
        self.alphas_cumprod = np.cumprod(1.0 - betas)

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """``x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps`` with ``t`` of shape ``(B,)``."""
        abar = torch.as_tensor(self.alphas_cumprod, device=x0.device)[t].to(x0.dtype)
        shape = (-1,) + (1,) * (x0.dim() - 1)
        return abar.sqrt().view(shape) * x0 + (1 - abar).sqrt().view(shape) * noise

    def alpha_bar(self, t: int) -> float:
        """``alpha_bar_t``; ``t = -1`` means before any noise (1.0)."""
        return 1.0 if t < 0 else float(self.alphas_cumprod[t])


def randn(shape: tuple[int, ...], generator: Generators, *, device=None, dtype=torch.float32) -> torch.Tensor:
    """Standard normal noise; with a list of generators, row ``i`` of the batch comes from ``generator[i]``.

    Noise is drawn on the CPU and moved, so a seed gives the same motion on every device.
    """
    if isinstance(generator, list):
        if len(generator) != shape[0]:
            raise MotionGPTError(f"{len(generator)} generators for a batch of {shape[0]}")
        rows = [torch.randn(shape[1:], generator=g, dtype=dtype) for g in generator]
        return torch.stack(rows).to(device)
    return torch.randn(shape, generator=generator, dtype=dtype).to(device)


class _Scheduler:
    def __init__(self, schedule: NoiseSchedule) -> None:
        self.schedule = schedule
        self.timesteps: list[int] = []
        self._prev: dict[int, int] = {}

    def set_timesteps(self, num_inference_steps: int) -> list[int]:
        """``num_inference_steps`` evenly spaced timesteps, noisiest first, always ending at ``t = 0``."""
        T = self.schedule.num_train_timesteps
        if not 1 <= num_inference_steps <= T:
            raise MotionGPTError(f"steps must be between 1 and {T}, got {num_inference_steps}")
        # "trailing" spacing: the first step is T - 1 (pure noise), the last is 0
        steps = np.round(np.linspace(T - 1, 0, num_inference_steps)).astype(int).tolist()
        if num_inference_steps == 1:
            steps = [T - 1]
        self.timesteps = steps
        self._prev = {t: (steps[i + 1] if i + 1 < len(steps) else -1) for i, t in enumerate(steps)}
        return steps

    def previous_timestep(self, t: int) -> int:
        if t not in self._prev:
            raise MotionGPTError(f"timestep {t} is not in this scheduler's timesteps; call set_timesteps first")
        return self._prev[t]

    def step(self, x0_pred: torch.Tensor, t: int, x_t: torch.Tensor, generator: Generators = None, *,
             noise: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
        """The sample at the next, less noisy step; ``noise`` (shape of ``x_t``) replaces the draw from
        ``generator`` (to replay another implementation's noise sequence)."""
        raise NotImplementedError  # pragma: no cover


class DDPMScheduler(_Scheduler):
    """Ancestral sampling from the posterior ``q(x_{t'} | x_t, x_0)`` (Ho et al. 2020, eq. 6-7), with respacing.

    For a respaced pair ``t' < t``: ``beta = 1 - alpha_bar_t / alpha_bar_t'``; mean =
    ``sqrt(alpha_bar_t') beta / (1 - alpha_bar_t) x_0 + sqrt(1 - beta) (1 - alpha_bar_t') / (1 - alpha_bar_t) x_t``;
    variance = ``beta (1 - alpha_bar_t') / (1 - alpha_bar_t)`` (the "fixed small" choice of MDM).
    """

    def step(self, x0_pred: torch.Tensor, t: int, x_t: torch.Tensor, generator: Generators = None, *,
             noise: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
        prev = self.previous_timestep(t)
        abar_t, abar_prev = self.schedule.alpha_bar(t), self.schedule.alpha_bar(prev)
        beta = 1 - abar_t / abar_prev
        coef_x0 = math.sqrt(abar_prev) * beta / (1 - abar_t)  # eq. 7, first term
        coef_xt = math.sqrt(1 - beta) * (1 - abar_prev) / (1 - abar_t)  # eq. 7, second term
        mean = coef_x0 * x0_pred + coef_xt * x_t
        if prev < 0:  # the last step returns the mean (no noise at t = 0)
            return mean
        variance = beta * (1 - abar_prev) / (1 - abar_t)
        if noise is None:
            noise = randn(tuple(x_t.shape), generator, device=x_t.device, dtype=x_t.dtype)
        return mean + math.sqrt(variance) * noise


class DDIMScheduler(_Scheduler):
    """Song et al. (2021), eq. 12: ``x_t' = sqrt(alpha_bar_t') x_0 + sqrt(1 - alpha_bar_t' - sigma^2) eps + sigma z``.

    ``eps = (x_t - sqrt(alpha_bar_t) x_0) / sqrt(1 - alpha_bar_t)`` (the noise implied by the x0 prediction) and
    ``sigma = eta sqrt((1 - alpha_bar_t') / (1 - alpha_bar_t)) sqrt(1 - alpha_bar_t / alpha_bar_t')`` (eq. 16):
    ``eta = 0`` is deterministic, ``eta = 1`` equals the DDPM posterior.
    """

    def __init__(self, schedule: NoiseSchedule, eta: float = 0.0) -> None:
        super().__init__(schedule)
        if eta < 0:
            raise MotionGPTError(f"eta must be >= 0, got {eta}")
        self.eta = eta

    def step(self, x0_pred: torch.Tensor, t: int, x_t: torch.Tensor, generator: Generators = None, *,
             noise: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
        prev = self.previous_timestep(t)
        abar_t, abar_prev = self.schedule.alpha_bar(t), self.schedule.alpha_bar(prev)
        eps = (x_t - math.sqrt(abar_t) * x0_pred) / math.sqrt(1 - abar_t)
        sigma = self.eta * math.sqrt((1 - abar_prev) / (1 - abar_t)) * math.sqrt(1 - abar_t / abar_prev)
        out = math.sqrt(abar_prev) * x0_pred + math.sqrt(max(1 - abar_prev - sigma**2, 0.0)) * eps
        if sigma > 0 and prev >= 0:
            if noise is None:
                noise = randn(tuple(x_t.shape), generator, device=x_t.device, dtype=x_t.dtype)
            out = out + sigma * noise
        return out


CONSISTENCY_GRID = 50  # a consistency model is trained and sampled on the timesteps of DDIM-50
SIGMA_DATA = 0.5  # the boundary condition's data scale (Song et al. 2023, app. C; LCM's value)
TIMESTEP_SCALING = 10.0  # LCM's: the boundary term is negligible from the grid's second timestep on


def consistency_grid(num_train_timesteps: int, points: int = CONSISTENCY_GRID) -> list[int]:
    """The timesteps a consistency model is distilled on, noisiest first, ending at 0: DDIM-``points``'s."""
    points = min(points, num_train_timesteps)
    return np.round(np.linspace(num_train_timesteps - 1, 0, points)).astype(int).tolist()


def consistency_scalings(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(c_skip, c_out)`` of the consistency function ``f(x, t) = c_skip(t) x + c_out(t) F(x, t)`` (Song et al.
    2023, eq. 7, with LCM's timestep scaling): ``c_skip(0) = 1`` and ``c_out(0) = 0``, so ``f(x, 0) = x``."""
    scaled = t.double() * TIMESTEP_SCALING
    c_skip = SIGMA_DATA**2 / (scaled**2 + SIGMA_DATA**2)
    c_out = scaled / (scaled**2 + SIGMA_DATA**2).sqrt()
    return c_skip.float(), c_out.float()


class LCMScheduler(_Scheduler):
    """Multistep consistency sampling (Song et al. 2023, alg. 1; LCM): at each timestep the model's output is the
    clean motion; it is noised afresh to the next timestep, and the last step returns it. Timesteps are taken from
    the distillation grid (:func:`consistency_grid`), evenly spaced over it, never ``t = 0`` (where ``f`` is the
    identity)."""

    def set_timesteps(self, num_inference_steps: int) -> list[int]:
        grid = consistency_grid(self.schedule.num_train_timesteps)
        if not 1 <= num_inference_steps < len(grid):
            raise MotionGPTError(f"lcm takes 1 to {len(grid) - 1} steps, got {num_inference_steps}")
        picks = np.round(np.linspace(0, len(grid) - 1, num_inference_steps + 1)[:-1]).astype(int)
        steps = [grid[i] for i in picks]
        self.timesteps = steps
        self._prev = {t: (steps[i + 1] if i + 1 < len(steps) else -1) for i, t in enumerate(steps)}
        return steps

    def step(self, x0_pred: torch.Tensor, t: int, x_t: torch.Tensor, generator: Generators = None, *,
             noise: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
        prev = self.previous_timestep(t)
        if prev < 0:
            return x0_pred
        if noise is None:
            noise = randn(tuple(x_t.shape), generator, device=x_t.device, dtype=x_t.dtype)
        abar = self.schedule.alpha_bar(prev)
        return math.sqrt(abar) * x0_pred + math.sqrt(1 - abar) * noise


def make_scheduler(name: SamplerName, schedule: NoiseSchedule, *, eta: float = 0.0) -> _Scheduler:
    if name == "lcm":
        return LCMScheduler(schedule)
    if name == "ddpm":
        return DDPMScheduler(schedule)
    if name == "ddim":
        return DDIMScheduler(schedule, eta=eta)
    raise MotionGPTError(f"unknown sampler {name!r} (ddim, ddpm or lcm)")
