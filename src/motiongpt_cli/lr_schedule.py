"""The learning-rate schedule shared by training and distillation: a linear warm-up to ``train.lr``, then constant
(MDM's recipe); with ``train.decay_steps``, the run's last steps go down to ``train.lr_min`` along a half cosine.

The rate depends only on the step and these numbers, so a resumed run gets the rates the uninterrupted one would,
and :func:`same_before` tells whether a changed schedule (``--steps``, ``--decay-steps`` on resume) keeps the steps
already taken.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from .errors import MotionGPTError

if TYPE_CHECKING:
    from .training_config import OptimConfig


def lr_at(step: int, cfg: OptimConfig) -> float:
    """The learning rate of step ``step`` (0-based)."""
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    start = cfg.steps - cfg.decay_steps
    if cfg.decay_steps and step >= start:
        return cfg.lr_min + (cfg.lr - cfg.lr_min) * 0.5 * (1 + math.cos(math.pi * (step - start) / cfg.decay_steps))
    return cfg.lr


def check(cfg: OptimConfig, where: str = "config") -> None:
    """The schedule's numbers agree with each other: ``lr_min`` is at most ``lr`` and a decay fits in the run after
    the warm-up. A run without decay may be shorter than its warm-up (it stops while warming up)."""
    if cfg.lr_min > cfg.lr:
        raise MotionGPTError(f"{where}: 'train.lr_min' ({cfg.lr_min:g}) is above 'train.lr' ({cfg.lr:g})")
    if cfg.decay_steps and cfg.decay_steps > cfg.steps - cfg.warmup_steps:
        raise MotionGPTError(
            f"{where}: 'train.decay_steps' ({cfg.decay_steps}) does not fit in the {cfg.steps} steps after the "
            f"{cfg.warmup_steps} warm-up steps",
            hint="decay over fewer steps, or train for more",
        )


def same_before(step: int, old: OptimConfig, new: OptimConfig) -> bool:
    """Whether ``new`` gives every step before ``step`` the rate ``old`` gave it (a resume cannot change the steps
    already taken)."""

    def decay_start(cfg: OptimConfig) -> int:
        return cfg.steps - cfg.decay_steps if cfg.decay_steps else step

    if min(decay_start(old), decay_start(new)) >= step:
        return True  # neither decays before the checkpoint
    return (old.steps, old.decay_steps, old.lr_min) == (new.steps, new.decay_steps, new.lr_min)
