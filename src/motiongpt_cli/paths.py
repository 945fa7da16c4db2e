"""Where things are: the embedded default model, its index and evaluator (package data), the cache folder, and
the compute device. The CLI, the Python API and the benchmarks resolve defaults here and nowhere else.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from .errors import MotionGPTError

EMBEDDED_DIR = Path(__file__).resolve().parent / "assets" / "default"
INDEX_FILE = "index.npz"  # a model directory's own retrieval index of its training (high, low) pairs


def embedded_asset(name: str) -> Path | None:
    """A file of the embedded default model's folder, or None when this installation has none."""
    path = EMBEDDED_DIR / name
    return path if path.exists() else None


STUDENT_DIR = "lcm"  # the embedded model's distilled few-step student (motiongpt train --distill), beside it
FEW_STEPS = 4  # --sampler auto with at most this many --steps picks the embedded student


def default_model_dir(sampler: str = "auto", steps: int | None = None) -> Path:
    """The embedded default model, or its distilled student (``assets/default/lcm``) for ``sampler="lcm"``, or for
    ``sampler="auto"`` with at most 4 ``steps``, when this installation ships one."""
    path = embedded_asset("config.json")
    if path is None:
        raise MotionGPTError("no model given and this installation has no embedded default model",
                             hint="train one with `motiongpt train` and pass --model RUN_DIR")  # fmt: skip
    student = embedded_asset(f"{STUDENT_DIR}/config.json")
    if student is not None and (sampler == "lcm" or (sampler == "auto" and steps is not None and steps <= FEW_STEPS)):
        return student.parent
    return path.parent


def is_embedded(model_dir: Path) -> bool:
    """Whether ``model_dir`` is the embedded model or its student (which share the embedded index)."""
    try:
        return Path(model_dir).resolve().is_relative_to(EMBEDDED_DIR)
    except OSError:
        return False


def default_index_path() -> Path:
    path = embedded_asset(INDEX_FILE)
    if path is None:
        raise MotionGPTError("no retrieval index given and none is embedded", hint="pass --index INDEX")
    return path


def default_evaluator_dir() -> Path:
    path = embedded_asset("evaluator/config.json")
    if path is None:
        raise MotionGPTError("no evaluator given and none is embedded", hint="pass --evaluator DIR")
    return path.parent


def cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """Embedding and response caches: ``$MOTIONGPT_HOME/cache``, else the platform's user cache folder."""
    env = os.environ if env is None else env
    home = env.get("MOTIONGPT_HOME")
    if home:
        return Path(home) / "cache"
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("motiongpt"))


def resolve_device(name: str) -> str:
    """``auto`` -> ``cuda`` when PyTorch sees a GPU, else ``cpu``; an explicit CUDA device must exist."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise MotionGPTError("--device cuda was asked for, but PyTorch sees no CUDA device", hint="use --device cpu")
    return name
