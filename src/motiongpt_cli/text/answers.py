"""Parsing an LLM's answer (see :mod:`.prompting`): the action list, and the duration the duration prompt asks for.

:func:`sanitize_answer` turns an answer into one comma-separated, lower-case action list, or raises
:class:`GarbageAnswerError`. :func:`parse_answer` also reads a duration: a ``seconds: X`` line, else a trailing
number with a unit (``wave, bow (4 s)``). A duration that is missing, not a plain number, not finite or outside
[:data:`MIN_ANSWER_SECONDS`, :data:`MAX_ANSWER_SECONDS`] is rejected (None), not clamped: a value that far off
(0.1 s, 300 s) says the model misread the question (frames, minutes), so it is no evidence of the length, and the
caller falls back to its length predictor. Values inside that range but outside a model's own range are the caller's
to clamp.
"""

from __future__ import annotations

import re

import numpy as np

from ..errors import PromptError

MIN_ANSWER_SECONDS = 0.5  # an answered duration outside [0.5, 30] s is rejected (None), see the module docstring
MAX_ANSWER_SECONDS = 30.0
MAX_ACTIONS = 12
MAX_ACTION_WORDS = 8


class GarbageAnswerError(PromptError):
    """The LLM answered something that is not an action list."""


_NUMBERING = re.compile(r"^\s*(?:[-*\u2022]|\(?\d+[.):]|step\s*\d+[.):]?)\s*", re.IGNORECASE)
_LABEL = re.compile(
    r"^\s*(?:motion(?: sequences?)?|sequences?|actions?|low[- ]level(?: text)?|answer|output)\s*:\s*", re.IGNORECASE
)
_QUOTES = "\"'`\u201c\u201d\u2018\u2019"
_ACTION_OK = re.compile(r"^[a-z][a-z0-9' /-]*$")
_SCENE = re.compile(r"^\s*(scene|high[- ]level)\s*:", re.IGNORECASE)
_SECONDS_LINE = re.compile(r"^\s*(?:seconds|duration|length)\s*[:=]\s*(?P<value>.*)$", re.IGNORECASE)
_NUMBER = r"(?P<number>(?<![\w.])(?:\d+(?:\.\d*)?|\.\d+))"
_UNIT = r"(?:s|secs?|seconds?)\b"
_APPROX = r"(?:(?:about|around|approx\.?|approximately|for|~)\s*)?"
_SECONDS_VALUE = re.compile(rf"^\s*{_APPROX}{_NUMBER}\s*(?:{_UNIT})?\s*\.?\s*$", re.IGNORECASE)
_TRAILING_SECONDS = re.compile(rf"[\s,;:(\[-]*{_APPROX}{_NUMBER}\s*{_UNIT}\s*[)\]]?\s*[.!]?\s*$", re.IGNORECASE)


def sanitize_answer(answer: str) -> str:
    """One comma-separated, lower-case action list from an LLM answer; raises GarbageAnswerError if there is none.

    Removes code fences, quotes, labels (``motion:``), numbering and bullets; joins list lines; stops where the model
    starts a new example (``scene:``); drops empty and over-long actions; keeps at most ``MAX_ACTIONS``.
    """
    text = (answer or "").replace("```", "\n").strip()
    lines = []
    for line in text.splitlines():
        if _SCENE.match(line):
            if lines:
                break
            continue
        if _SECONDS_LINE.match(line.strip().strip(_QUOTES)):  # the duration prompt's line: parse_answer reads it
            continue
        line = _LABEL.sub("", line.strip().strip(_QUOTES)).strip().strip(_QUOTES).strip()
        if line:
            lines.append(line)
    if not lines:
        raise GarbageAnswerError("the LLM answered nothing usable")
    # a numbered/bulleted list is one action per line; otherwise the first line is the answer
    if len(lines) > 1 and all(_NUMBERING.match(line) for line in lines):
        pieces = [_NUMBERING.sub("", line) for line in lines]
    else:
        pieces = [lines[0]]
    actions: list[str] = []
    for piece in pieces:
        for action in re.split(r"[,;]|\b(?:and\s+)?then\b", piece):
            action = _NUMBERING.sub("", action)
            action = action.strip().strip(_QUOTES).strip().rstrip(".!").strip().lower()
            action = re.sub(r"\s+", " ", action)
            if action.startswith("and "):
                action = action[4:]
            if not action or len(action.split()) > MAX_ACTION_WORDS or not _ACTION_OK.match(action):
                continue
            actions.append(action)
    if not actions:
        raise GarbageAnswerError(f"the LLM answer is not an action list: {text[:80]!r}")
    return ", ".join(actions[:MAX_ACTIONS])


def answer_seconds(value: str) -> float | None:
    """A duration in seconds from ``value`` (``3.5``, ``3.5 s``, ``about 4 seconds``), or None when it is not one
    plain number, not finite or outside [MIN_ANSWER_SECONDS, MAX_ANSWER_SECONDS] (rejected, not clamped)."""
    match = _SECONDS_VALUE.match(value.strip().strip(_QUOTES))
    if match is None:
        return None
    seconds = float(match["number"])
    if not np.isfinite(seconds) or not MIN_ANSWER_SECONDS <= seconds <= MAX_ANSWER_SECONDS:
        return None
    return seconds


def parse_answer(answer: str) -> tuple[str, float | None]:
    """``(action list, seconds or None)`` from an answer to the duration prompt; raises GarbageAnswerError when
    there is no action list (a missing or unusable duration is just None).

    The duration is the first ``seconds: X`` line (also ``duration:``/``length:``) before the model starts a new
    example (``scene:``), else the first trailing number with a unit on an answer line (``wave, bow (4 s)``,
    ``jump, 2 seconds``), which is removed from the actions; :func:`answer_seconds` checks it."""
    lines = (answer or "").replace("```", "\n").splitlines()
    line_value: str | None = None
    trailing: float | None = None
    kept: list[str] = []
    started = False
    for line in lines:
        if _SCENE.match(line):
            if started:
                break
            continue
        label = _SECONDS_LINE.match(line.strip().strip(_QUOTES))
        if label:
            if line_value is None:
                line_value = label["value"]
            continue
        match = _TRAILING_SECONDS.search(line)
        if match:
            if trailing is None:
                trailing = answer_seconds(match["number"])
            line = line[: match.start()]
        started = started or bool(line.strip())
        kept.append(line)
    actions = sanitize_answer("\n".join(kept))
    return actions, answer_seconds(line_value) if line_value is not None else trailing
