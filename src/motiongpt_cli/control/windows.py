"""Overlapping windows over a long motion: their layout, their cross-fade weights, and sampling them jointly.

A motion of consecutive *spans* (timeline segments, or one span for an edit) is covered by windows no longer than
the model's maximum: a span that does not fit is cut into equal pieces. Each window reaches ``transition // 2``
frames into the span before it and ``transition - transition // 2`` into the one after, so neighbours overlap by
``transition`` frames centred on their seam. Across an overlap the weights are a linear cross-fade (they sum to 1
at every frame); elsewhere a window's weight is 1. With ``context`` frames a window also reaches that much further
into each neighbour with weight 0: it sees the neighbour's motion (its prediction for the overlap is made knowing
what comes before and after) without voting for it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from ..errors import InvalidValueError


def split_spans(lengths: Sequence[int], transition: int, max_frames: int, context: int = 0
                ) -> list[tuple[int, int, int]]:  # fmt: skip
    """``(start, end, span)`` pieces covering consecutive spans of ``lengths`` frames, each short enough that it
    plus its overlaps (at most ``transition`` frames) and its context (``2 * context``) fits ``max_frames``."""
    if transition < 0 or transition >= max_frames // 2:
        raise InvalidValueError(f"the transition must be between 0 and {max_frames // 2 - 1} frames, got {transition}")
    if context < 0 or transition + 2 * context >= max_frames // 2:
        raise InvalidValueError(f"the transition plus twice the context must be under {max_frames // 2} frames, got "
                                f"{transition} + 2 x {context}")  # fmt: skip
    core = max_frames - transition - 2 * context
    pieces, start = [], 0
    for span, length in enumerate(lengths):
        if length < 1:
            raise InvalidValueError(f"segment {span + 1} has no frames")
        count = math.ceil(length / core)
        bounds = np.linspace(start, start + length, count + 1).round().astype(int)
        pieces += [(int(a), int(b), span) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        start += length
    return pieces


def window_bounds(pieces: Sequence[tuple[int, int, int]], transition: int) -> list[tuple[int, int]]:
    """Each piece widened into its neighbours: ``transition // 2`` frames back, the rest forward."""
    back, forward = transition // 2, transition - transition // 2
    last = len(pieces) - 1
    return [(a - (back if i > 0 else 0), b + (forward if i < last else 0)) for i, (a, b, _) in enumerate(pieces)]


def crossfade_weights(bounds: Sequence[tuple[int, int]], transition: int) -> list[np.ndarray]:
    """Per window, ``(end - start,)`` float32 weights: a ramp over each overlap with a neighbour, 1 elsewhere.

    For neighbours ``k`` and ``k + 1`` overlapping on ``[s, s + transition)`` the ramps are
    ``(f - s + 0.5) / transition`` up and its complement down, so they sum to 1 on every frame of the overlap."""
    last = len(bounds) - 1
    weights = []
    for i, (a, b) in enumerate(bounds):
        f = np.arange(a, b, dtype=np.float64) + 0.5
        w = np.ones(b - a)
        if transition > 0 and i > 0:
            w = np.minimum(w, (f - a) / transition)
        if transition > 0 and i < last:
            w = np.minimum(w, (b - f) / transition)
        weights.append(w.astype(np.float32))
    return weights


def with_context(bounds: Sequence[tuple[int, int]], weights: Sequence[np.ndarray], context: int, total: int
                 ) -> tuple[list[tuple[int, int]], list[np.ndarray]]:  # fmt: skip
    """Each window widened by ``context`` frames on both sides (within ``[0, total)``), with weight 0 there."""
    out_bounds, out_weights = [], []
    for (a, b), w in zip(bounds, weights, strict=True):
        a2, b2 = max(a - context, 0), min(b + context, total)
        out_bounds.append((a2, b2))
        out_weights.append(np.concatenate([np.zeros(a - a2, np.float32), w, np.zeros(b2 - b, np.float32)]))
    return out_bounds, out_weights


def layout_windows(lengths: Sequence[int], transition: int, max_frames: int, context: int = 0):
    """The :class:`~motiongpt_cli.diffusion.sampler.Window` list for consecutive spans of ``lengths`` frames;
    each window's ``text`` is the index of its span; ``context``: frames seen beyond the blend (weight 0)."""
    from ..diffusion.sampler import Window

    pieces = split_spans(lengths, transition, max_frames, context)
    bounds = window_bounds(pieces, transition)
    weights = crossfade_weights(bounds, transition)
    if context:
        bounds, weights = with_context(bounds, weights, context, sum(lengths))
    return [Window(a, b, torch.from_numpy(w), span) for (a, b), w, (_, _, span) in zip(bounds, weights, pieces,
                                                                                        strict=True)]  # fmt: skip
