"""motiongpt: text-to-motion with dual high/low-level text conditioning.

The public API (imported lazily, so ``import motiongpt_cli`` stays light)::

    from motiongpt_cli import load_pipeline
    pipe = load_pipeline()
    motions = pipe.generate("greet a friend", low="wave", n=2, seed=0)
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("motiongpt-cli")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

_LAZY = {
    "load_pipeline": "api",
    "Pipeline": "api",
    "Motion": "api",
    "Plan": "api",
    "PromptConfig": "text.prompting",
    "MotionGPTError": "errors",
    "InvalidValueError": "errors",
    "MotionGPTWarning": "errors",
}

__all__ = ["InvalidValueError", "Motion", "MotionGPTError", "MotionGPTWarning", "Pipeline", "Plan", "PromptConfig",
           "__version__", "load_pipeline"]  # fmt: skip

if TYPE_CHECKING:  # pragma: no cover
    from .api import Motion, Pipeline, Plan, load_pipeline
    from .errors import InvalidValueError, MotionGPTError, MotionGPTWarning
    from .text.prompting import PromptConfig


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module = importlib.import_module(f".{_LAZY[name]}", __name__)
        return getattr(module, name)
    raise AttributeError(f"module 'motiongpt_cli' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
