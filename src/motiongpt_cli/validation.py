"""Numeric bounds for every number a user can give: command-line options, settings files and the Python API.

One table (the constants below) is the single source of truth. The CLI turns a :class:`Bounds` into a click
parameter type (so an error names the option), the settings loader checks TOML and environment values with it (the
error names the key and the file), and the library's option objects check their arguments with it (the error names
the argument). NaN and infinities are never valid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Real

from .errors import InvalidValueError


@dataclass(frozen=True)
class Bounds:
    """A finite number (an integer when ``integer``) within optional open (``gt``/``lt``) or closed bounds."""

    integer: bool = False
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None

    def problem(self, value: object) -> str | None:
        """Why ``value`` is not acceptable (one phrase), or None when it is."""
        if isinstance(value, bool) or not isinstance(value, Real):
            return f"must be {self.describe()}, got {value!r}"
        if self.integer and not (isinstance(value, int) or float(value).is_integer()):
            return f"must be {self.describe()}, got {value!r}"
        if not math.isfinite(float(value)):
            return f"must be {self.describe()}, got {value}"
        v = float(value)
        if (self.ge is not None and v < self.ge) or (self.gt is not None and v <= self.gt):
            return f"must be {self.describe()}, got {value}"
        if (self.le is not None and v > self.le) or (self.lt is not None and v >= self.lt):
            return f"must be {self.describe()}, got {value}"
        return None

    def check(self, name: str, value: object) -> int | float:
        """``value`` as int or float, or :class:`InvalidValueError` naming ``name``."""
        problem = self.problem(value)
        if problem:
            raise InvalidValueError(f"{name} {problem}")
        return int(value) if self.integer else float(value)  # type: ignore[arg-type]

    def describe(self) -> str:
        kind = "an integer" if self.integer else "a finite number"
        limits = self._limits()
        return kind + (" " + " and ".join(limits) if limits else "")

    def __str__(self) -> str:
        return ", ".join(self._limits()) or "any finite"

    def _limits(self) -> list[str]:
        pairs = ((">=", self.ge), (">", self.gt), ("<=", self.le), ("<", self.lt))
        return [f"{op} {_num(x)}" for op, x in pairs if x is not None]


def _num(x: float) -> str:
    if isinstance(x, int) or float(x).is_integer():
        return str(int(x))
    return f"{x:g}"


SEED_MAX = 2**63 - 1

# generation and sampling
SAMPLES = Bounds(integer=True, ge=1, le=10_000)  # -n per text
SECONDS = Bounds(gt=0, le=3600)  # positive lengths outside the model's range are clamped, with a warning
FRAMES = Bounds(integer=True, ge=1, le=72_000)
STEPS = Bounds(integer=True, ge=1, le=1000)  # at most the model's training timesteps (checked against the model)
GUIDANCE = Bounds(ge=0, le=100)
ETA = Bounds(ge=0, le=1)
SEED = Bounds(integer=True, ge=0, le=SEED_MAX)
BATCH_SIZE = Bounds(integer=True, ge=1, le=4096)
TRANSITION = Bounds(ge=0, le=4)  # seconds of overlap between timeline segments (and between windows of a long edit)
FPS = Bounds(integer=True, ge=1, le=1000)
# prompting and retrieval
NEIGHBOURS = Bounds(integer=True, ge=1, le=10_000)  # -k
LLM_TEMPERATURE = Bounds(ge=0, le=2)  # the OpenAI API's range
RETRIEVAL_TEMPERATURE = Bounds(gt=0, le=1000)
TIMEOUT = Bounds(gt=0, le=86_400)
RETRIES = Bounds(integer=True, ge=0, le=100)
# evaluation
REPLICATIONS = Bounds(integer=True, ge=1, le=1000)
EVAL_LIMIT = Bounds(integer=True, ge=32, le=10_000_000)  # R-precision uses batches of 32
MM_TEXTS = Bounds(integer=True, ge=0, le=100_000)
MM_REPEATS = Bounds(integer=True, ge=10, le=10_000)
# training
TRAIN_STEPS = Bounds(integer=True, ge=1, le=100_000_000)
DECAY_STEPS = Bounds(integer=True, ge=0, le=100_000_000)
# data
CLIPS = Bounds(integer=True, ge=1, le=10_000_000)
WORKERS = Bounds(integer=True, ge=1, le=1024)
CLIP_SECONDS = Bounds(gt=0, le=600)
