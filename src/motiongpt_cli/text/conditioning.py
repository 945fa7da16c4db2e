"""How a model's conditioning turns (high, low) texts into encoder inputs (the paper's Table 1 variants)."""

from __future__ import annotations

from typing import Literal

Conditioning = Literal["dual", "high", "concat"]


def concat_text(high: str, low: str) -> str:
    """The ``concat`` baseline's single text: ``"high. low"``."""
    return f"{high.rstrip('. ')}. {low}"
