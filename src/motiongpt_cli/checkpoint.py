"""The model directory: ``config.json`` + ``model.safetensors`` + ``normalization.safetensors``. Nothing pickled.

``config.json`` (sorted keys): ``format_version``, ``class_name``, ``package_version``, ``denoiser`` (architecture),
``diffusion`` (schedule), ``text`` (encoder names and dimensions), ``data`` (dataset fingerprint), ``training``
(steps done, final loss). ``model.safetensors`` holds the EMA weights used for sampling; ``normalization.safetensors``
the dataset's ``mean``/``std`` (263,). A training run adds ``train_state.safetensors`` (raw weights, optimizer
moments) and ``train_state.json`` beside them, ignored when only sampling.

A directory is written complete under a temporary name and swapped in with renames, so a crash leaves either the
old or the new checkpoint, never a mix.
"""

from __future__ import annotations

import json
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from . import __version__
from .diffusion.denoiser import DenoiserConfig, MotionDenoiser
from .diffusion.schedule import NoiseSchedule
from .errors import MotionGPTError

FORMAT_VERSION = 1
CLASS_NAME = "MotionDenoiser"
CONFIG = "config.json"
WEIGHTS = "model.safetensors"
NORMALIZATION = "normalization.safetensors"


class ModelLoadError(MotionGPTError):
    """A model directory is missing, incomplete, from a newer format, or its weights do not match its config."""


@dataclass
class TextConfig:
    high_encoder: str = "minilm"
    high_dim: int = 384
    low_encoder: str | None = "minilm"
    low_dim: int = 384
    # files of the model directory holding an encoder's own weights (imported checkpoints): CLIP's text tower
    # (clip.safetensors), a sentence-transformers folder; None = the encoder's packaged or downloaded weights
    high_weights: str | None = None
    low_weights: str | None = None


@dataclass
class LoadedModel:
    model: MotionDenoiser
    schedule: NoiseSchedule
    text: TextConfig
    mean: np.ndarray
    std: np.ndarray
    path: Path
    config: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        if self.config.get("name"):
            return self.config["name"]
        return self.path.parent.name if self.path.name == "model" else self.path.name


def model_config(
    denoiser: DenoiserConfig, schedule: NoiseSchedule, text: TextConfig, *, data: dict | None = None, **extra
) -> dict:
    return {
        "format_version": FORMAT_VERSION,
        "class_name": CLASS_NAME,
        "package_version": __version__,
        "denoiser": denoiser.to_dict(),
        "diffusion": {
            "num_train_timesteps": schedule.num_train_timesteps,
            "beta_schedule": schedule.beta_schedule,
            "prediction_type": "sample",
        },
        "text": {
            "high_encoder": text.high_encoder,
            "high_dim": text.high_dim,
            "low_encoder": text.low_encoder,
            "low_dim": text.low_dim,
            **{k: v for k, v in (("high_weights", text.high_weights), ("low_weights", text.low_weights)) if v},
        },
        "data": data or {},
        **extra,
    }


def write_model_dir(
    path: Path,
    config: dict,
    weights: dict[str, torch.Tensor],
    mean: np.ndarray,
    std: np.ndarray,
    extra_files: dict[str, bytes] | None = None,
) -> Path:
    """Write a complete model directory at ``path``, replacing an old one only once the new one is complete."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    old = path.with_name(f".{path.name}.old")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    (tmp / CONFIG).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    save_file({k: v.detach().contiguous().cpu() for k, v in weights.items()}, str(tmp / WEIGHTS))
    save_file(
        {"mean": torch.from_numpy(np.asarray(mean, np.float32)), "std": torch.from_numpy(np.asarray(std, np.float32))},
        str(tmp / NORMALIZATION),
    )
    for name, data in (extra_files or {}).items():
        (tmp / name).parent.mkdir(parents=True, exist_ok=True)  # "low_encoder/config.json" and the like
        (tmp / name).write_bytes(data)
    shutil.rmtree(old, ignore_errors=True)
    if path.exists():
        path.rename(old)
    tmp.rename(path)
    shutil.rmtree(old, ignore_errors=True)
    return path


def resolve_model_dir(path: Path) -> Path:
    """``path`` itself, or ``path/model`` (a training run directory), or a leftover ``.model.old`` after a crash."""
    path = Path(path)
    for candidate in (path, path / "model", path / ".model.old"):
        if (candidate / CONFIG).is_file():
            return candidate
    raise ModelLoadError(
        f"{path}: not a model directory (no {CONFIG})",
        hint="pass a directory written by `motiongpt train` (or its run directory), or omit --model for the default",
    )


def read_config(path: Path) -> dict:
    path = resolve_model_dir(path)
    try:
        config = json.loads((path / CONFIG).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"{path / CONFIG}: unreadable: {exc}") from None
    if not isinstance(config, dict) or config.get("class_name") != CLASS_NAME:
        raise ModelLoadError(f"{path / CONFIG}: not a motiongpt model config")
    version = config.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ModelLoadError(
            f"{path}: model format {version} is newer than this motiongpt understands ({FORMAT_VERSION})",
            hint="upgrade motiongpt-cli",
        )
    return config


def load_model(path: Path, *, device: str = "cpu") -> LoadedModel:
    """Load a model directory strictly: missing or unexpected tensors are an error naming them."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = resolve_model_dir(path)
    config = read_config(path)
    try:
        denoiser = DenoiserConfig.from_dict(config["denoiser"])
        schedule = NoiseSchedule(**{k: v for k, v in config["diffusion"].items() if k != "prediction_type"})
        text = TextConfig(**config["text"])
    except (KeyError, TypeError) as exc:
        raise ModelLoadError(f"{path / CONFIG}: incomplete or invalid config ({exc})") from None
    # the text encoders' dimensions must be what the denoiser's condition projections take
    if text.high_dim != denoiser.high_dim or (denoiser.conditioning == "dual" and text.low_dim != denoiser.low_dim):
        raise ModelLoadError(f"{path / CONFIG}: text encoder dims ({text.high_dim}, {text.low_dim}) do not match the "
                             f"denoiser's ({denoiser.high_dim}, {denoiser.low_dim})")  # fmt: skip
    if _newer(config.get("package_version", "0"), __version__):
        warnings.warn(
            f"model {path} was written by motiongpt {config['package_version']}, newer than {__version__}", stacklevel=2
        )
    model = MotionDenoiser(denoiser)
    try:
        state = load_file(str(path / WEIGHTS))
        norm = load_file(str(path / NORMALIZATION))
    except (OSError, SafetensorError) as exc:
        raise ModelLoadError(f"{path}: cannot read weights: {exc}") from None
    missing = sorted(set(model.state_dict()) - set(state))
    unexpected = sorted(set(state) - set(model.state_dict()))
    if missing or unexpected:
        raise ModelLoadError(
            f"{path / WEIGHTS} does not match its config: missing {missing[:5]}, unexpected {unexpected[:5]}"
        )
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelLoadError(f"{path / WEIGHTS}: {str(exc).splitlines()[0]}") from None
    model.to(device).eval()
    mean, std = norm["mean"].numpy(), norm["std"].numpy()
    if mean.shape != (denoiser.feature_dim,) or std.shape != (denoiser.feature_dim,):
        raise ModelLoadError(f"{path / NORMALIZATION}: mean/std must have shape ({denoiser.feature_dim},)")
    return LoadedModel(model, schedule, text, mean, std, path, config)


def _newer(a: str, b: str) -> bool:
    def key(v: str) -> tuple[int, ...]:
        parts = []
        for piece in v.split(".")[:3]:
            digits = "".join(ch for ch in piece if ch.isdigit())
            parts.append(int(digits) if digits else 0)
        return tuple(parts)

    return key(a) > key(b)
