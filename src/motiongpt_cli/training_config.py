"""The training run's configuration: a TOML file of ``[model]``, ``[text]``, ``[diffusion]``, ``[train]`` and
``[loss]`` tables (anything left out takes MDM's HumanML3D recipe), checked strictly: unknown tables or keys, wrong
types and out-of-range numbers (the bounds of :mod:`motiongpt_cli.validation`) are errors naming the key and file.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import lr_schedule, validation
from .checkpoint import TextConfig
from .diffusion.denoiser import DenoiserConfig
from .diffusion.losses import LossWeights
from .errors import MotionGPTError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@dataclass
class OptimConfig:
    """Optimisation; defaults follow MDM's HumanML3D recipe (AdamW, lr 1e-4, batch 64)."""

    steps: int = 600_000
    batch_size: int = 64
    lr: float = 1e-4
    weight_decay: float = 0.0
    warmup_steps: int = 1000
    decay_steps: int = 0  # the run's last decay_steps steps lower lr to lr_min along a half cosine (0: constant, MDM)
    lr_min: float = 0.0
    grad_clip: float = 1.0
    ema_decay: float = 0.9999
    seed: int = 0
    checkpoint_every: int = 5000
    log_every: int = 50
    amp: bool = True  # bfloat16 autocast on CUDA; ignored on CPU
    sample_every: int = 0  # write samples/step-XXXXXXX.gif from the EMA weights every N steps (0: never)


@dataclass
class DiffusionConfig:
    num_train_timesteps: int = 1000
    beta_schedule: str = "cosine"


@dataclass
class RunConfig:
    model: DenoiserConfig = field(default_factory=DenoiserConfig)
    text: TextConfig = field(default_factory=lambda: TextConfig("clip:ViT-B-32/openai", 512, "minilm", 384))
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    train: OptimConfig = field(default_factory=OptimConfig)
    loss: LossWeights = field(default_factory=LossWeights)

    def to_dict(self) -> dict:
        names = ("model", "text", "diffusion", "train", "loss")
        return {name: dataclasses.asdict(getattr(self, name)) for name in names}


_SECTIONS = {"model": DenoiserConfig, "text": TextConfig, "diffusion": DiffusionConfig, "train": OptimConfig,
             "loss": LossWeights}  # fmt: skip


def run_config_from_dict(data: dict, where: str = "config") -> RunConfig:
    """Build a RunConfig from nested tables; unknown tables or keys and wrong types are errors naming them."""
    base = RunConfig()
    parts: dict[str, Any] = {}
    for section, value in data.items():
        if section not in _SECTIONS:
            raise MotionGPTError(f"{where}: unknown table [{section}] (known: {', '.join(_SECTIONS)})")
        if not isinstance(value, dict):
            raise MotionGPTError(f"{where}: [{section}] must be a table")
    for section, cls in _SECTIONS.items():
        current = dataclasses.asdict(getattr(base, section))
        given = data.get(section, {})
        for key, value in given.items():
            if key not in current:
                raise MotionGPTError(
                    f"{where}: unknown key '{section}.{key}'", hint=f"known in [{section}]: {', '.join(current)}"
                )
            default = current[key]
            if default is not None and not isinstance(value, type(default)):
                if not (isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool)):
                    raise MotionGPTError(f"{where}: '{section}.{key}' must be {type(default).__name__}, got {value!r}")
                value = float(value)
            current[key] = value
        for key, value in current.items():
            bounds = _RUN_BOUNDS.get(f"{section}.{key}")
            problem = bounds.problem(value) if bounds is not None else None
            if problem:
                raise MotionGPTError(f"{where}: '{section}.{key}' {problem}")
        try:
            parts[section] = cls(**current)
        except MotionGPTError as exc:
            raise MotionGPTError(f"{where}: {exc}", hint=exc.hint) from None
    run = RunConfig(**parts)
    _validate(run, where)
    return run


# the numbers of a training TOML, with the same bounds and NaN/inf refusal as the command-line options
_RUN_BOUNDS: dict[str, validation.Bounds] = {
    "train.steps": validation.TRAIN_STEPS,
    "train.batch_size": validation.BATCH_SIZE,
    "train.lr": validation.Bounds(gt=0, le=10),
    "train.weight_decay": validation.Bounds(ge=0, le=10),
    "train.warmup_steps": validation.Bounds(integer=True, ge=0, le=100_000_000),
    "train.decay_steps": validation.Bounds(integer=True, ge=0, le=100_000_000),
    "train.lr_min": validation.Bounds(ge=0, le=10),
    "train.grad_clip": validation.Bounds(ge=0, le=1e6),
    "train.ema_decay": validation.Bounds(ge=0, lt=1),
    "train.seed": validation.SEED,
    "train.checkpoint_every": validation.Bounds(integer=True, ge=1, le=100_000_000),
    "train.log_every": validation.Bounds(integer=True, ge=1, le=100_000_000),
    "train.sample_every": validation.Bounds(integer=True, ge=0, le=100_000_000),
    "model.dropout": validation.Bounds(ge=0, lt=1),
    "model.cond_dropout": validation.Bounds(ge=0, lt=1),
    "diffusion.num_train_timesteps": validation.Bounds(integer=True, ge=2, le=100_000),
    "loss.pos": validation.Bounds(ge=0, le=1e6),
    "loss.vel": validation.Bounds(ge=0, le=1e6),
    "loss.foot": validation.Bounds(ge=0, le=1e6),
}


def _validate(run: RunConfig, where: str) -> None:
    lr_schedule.check(run.train, where)
    if run.model.conditioning == "dual" and not run.text.low_encoder:
        raise MotionGPTError(f"{where}: dual conditioning needs text.low_encoder")


def load_run_config(path: Path | None) -> RunConfig:
    if path is None:
        return run_config_from_dict({}, "defaults")
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise MotionGPTError(f"training config not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise MotionGPTError(f"{path}: invalid TOML: {exc}") from None
    return run_config_from_dict(data, str(path))
