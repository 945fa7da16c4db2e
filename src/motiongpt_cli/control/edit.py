"""Editing by inpainting: regenerate the parts of a motion that are not kept, so they join the kept ones.

What is kept is a boolean mask over the output's ``(frames, 263)`` features:

* ``keep`` ranges (in-betweening), ``prefix`` (the input's first frames open the output: continue forward) and
  ``suffix`` (the input's last frames close it: continue backward) keep whole frames;
* ``body`` regenerates only some joints' features on every frame and keeps the rest (MDM's upper-body editing).
  A joint's features are its root-relative position, its 6D rotation and its velocity; the root's 4 features go
  with the pelvis and each foot-contact flag with its ankle or foot. ``upper`` regenerates the joints above the
  pelvis and legs; ``lower`` the pelvis (the root), the legs and the contacts.

With both, the kept frames are kept whole and the other frames keep the joints that are not regenerated.

Kept values are imposed at every denoising step (:class:`~motiongpt_cli.diffusion.sampler.Inpainting`) and written
back exactly after de-normalisation, so the output's kept features equal the input's bit for bit. Features are
local to each frame, so a kept part after a regenerated one keeps its shape but is placed where the new motion
leads it (its global position and heading follow the new trajectory).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import InvalidValueError
from ..motion.features import (
    FOOT_CONTACTS,
    LOCAL_VELOCITY,
    RIC,
    ROOT_HEIGHT,
    ROOT_XZ_VELOCITY,
    ROOT_YAW_VELOCITY,
    ROT6D,
)
from ..motion.skeleton import FEATURE_DIM, FOOT_LEFT, FOOT_RIGHT, FPS, JOINT_NAMES, NUM_JOINTS
from .windows import layout_windows

# MDM's lower body (its humanml_utils): pelvis, hips, knees, ankles, feet
LOWER_BODY = ("pelvis", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
              "left_foot", "right_foot")  # fmt: skip
UPPER_BODY = tuple(name for name in JOINT_NAMES if name not in LOWER_BODY)
_CONTACT_JOINTS = (FOOT_LEFT[0], FOOT_LEFT[1], FOOT_RIGHT[0], FOOT_RIGHT[1])  # the order of the 4 contact flags
_TIME = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(s|f)?\s*$")


def parse_time(text: str, *, what: str = "time") -> int:
    """A time as frames: ``2s`` / ``2`` / ``1.5s`` are seconds, ``40f`` frames."""
    match = _TIME.match(str(text))
    if not match:
        raise InvalidValueError(f"{what} {text!r} is not a time", hint="seconds like 2s or 1.5, frames like 40f")
    value, unit = float(match.group(1)), match.group(2) or "s"
    if unit == "f":
        if not value.is_integer():
            raise InvalidValueError(f"{what} {text!r}: frames must be whole")
        return int(value)
    return round(value * FPS)


def parse_ranges(text: str) -> list[tuple[int, int]]:
    """``"0-2s,6-8s"`` -> ``[(0, 40), (120, 160)]`` frames, sorted; empty, reversed or overlapping ranges refused."""
    ranges = []
    for part in str(text).split(","):
        if part.count("-") != 1:
            raise InvalidValueError(f"keep range {part.strip()!r} is not START-END", hint="e.g. --keep 0-2s,6-8s")
        a, b = part.split("-")
        unit = re.search(r"[sf]\s*$", b)  # "0-2s": the unit of the end applies to the start
        if unit and not re.search(r"[sf]\s*$", a):
            a = a + unit.group(0).strip()
        start, end = parse_time(a, what="keep range start"), parse_time(b, what="keep range end")
        if end <= start:
            raise InvalidValueError(f"keep range {part.strip()!r} is empty or reversed")
        ranges.append((start, end))
    ranges.sort()
    for (a0, b0), (a1, b1) in zip(ranges, ranges[1:], strict=False):
        if a1 < b0:
            raise InvalidValueError(f"keep ranges overlap: frames [{a0}, {b0}) and [{a1}, {b1})")
    return ranges


def body_joints(body: str) -> list[int]:
    """The joints ``body`` names: ``upper``, ``lower``, or a comma list of joint names or indices (0-21)."""
    spec = str(body).strip().lower()
    if spec in ("upper", "lower"):
        names = UPPER_BODY if spec == "upper" else LOWER_BODY
        return [JOINT_NAMES.index(name) for name in names]
    joints = []
    for item in spec.split(","):
        item = item.strip()
        if item.isdigit() and int(item) < NUM_JOINTS:
            joints.append(int(item))
        elif item in JOINT_NAMES:
            joints.append(JOINT_NAMES.index(item))
        else:
            names = ", ".join(JOINT_NAMES)
            raise InvalidValueError(f"unknown joint {item!r} in --body",
                                    hint=f"upper, lower, or joint names or indices 0-21: {names}")  # fmt: skip
    return sorted(set(joints))


def joint_features(joints: Sequence[int]) -> np.ndarray:
    """``(263,)`` bool: the feature columns that belong to ``joints``."""
    mask = np.zeros(FEATURE_DIM, dtype=bool)
    for j in joints:
        if j == 0:
            for part in (ROOT_YAW_VELOCITY, ROOT_XZ_VELOCITY, ROOT_HEIGHT):
                mask[part] = True
        else:
            mask[RIC.start + 3 * (j - 1) : RIC.start + 3 * j] = True
            mask[ROT6D.start + 6 * (j - 1) : ROT6D.start + 6 * j] = True
        mask[LOCAL_VELOCITY.start + 3 * j : LOCAL_VELOCITY.start + 3 * (j + 1)] = True
        for k, contact_joint in enumerate(_CONTACT_JOINTS):
            if contact_joint == j:
                mask[FOOT_CONTACTS.start + k] = True
    return mask


@dataclass
class EditSpec:
    """What an edit keeps: frame ranges of the input, a prefix or suffix (frames), and which joints to regenerate."""

    keep: list[tuple[int, int]] = field(default_factory=list)
    prefix: int = 0
    suffix: int = 0
    body: str | None = None

    def describe(self) -> str:
        parts = [f"keep frames {a}-{b}" for a, b in self.keep]
        if self.prefix:
            parts.append(f"prefix {self.prefix} frames")
        if self.suffix:
            parts.append(f"suffix {self.suffix} frames")
        if self.body:
            parts.append(f"regenerate {self.body}")
        return "; ".join(parts)

    def known_mask(self, input_frames: int, output_frames: int) -> tuple[np.ndarray, np.ndarray]:
        """``(known (output_frames, 263) bool, source (output_frames,) int)``: where the output keeps the input's
        features, and which input frame each output frame takes them from (-1: none)."""
        if not (self.keep or self.prefix or self.suffix or self.body):
            raise InvalidValueError("nothing to edit", hint="give --keep, --prefix, --suffix or --body")
        if (self.prefix or self.suffix) and (self.keep or self.body):
            raise InvalidValueError("--prefix/--suffix cannot be combined with --keep or --body")
        if self.body and output_frames != input_frames:
            raise InvalidValueError("a --body edit keeps the input's length", hint="leave out --seconds/--frames")
        for name, value in (("prefix", self.prefix), ("suffix", self.suffix)):
            if value > input_frames:
                raise InvalidValueError(f"--{name} is {value} frames but the input has only {input_frames}")
        if self.prefix + self.suffix >= output_frames and not self.body:
            raise InvalidValueError(f"--prefix and --suffix keep all {output_frames} output frames",
                                    hint="make the output longer with --seconds or keep less")  # fmt: skip
        source = np.full(output_frames, -1)
        whole = np.zeros(output_frames, dtype=bool)
        if self.prefix or self.suffix:  # the input's first / last frames open / close the output
            source[: self.prefix] = np.arange(self.prefix)
            if self.suffix:
                source[output_frames - self.suffix :] = np.arange(input_frames - self.suffix, input_frames)
            whole = source >= 0
        else:  # in place: output frame i is input frame i
            shared = min(input_frames, output_frames)
            source[:shared] = np.arange(shared)
            for a, b in self.keep:
                if b > shared:
                    raise InvalidValueError(f"keep range frames [{a}, {b}) is outside the input's {shared} frames")
                whole[a:b] = True
        known = np.repeat(whole[:, None], FEATURE_DIM, axis=1)
        if self.body:
            known |= (source >= 0)[:, None] & ~joint_features(body_joints(self.body))[None, :]
        if known.all():
            raise InvalidValueError("the edit keeps everything: nothing to generate")
        return known, source


def sample_edit(loaded, features: np.ndarray, spec: EditSpec, output_frames: int, text, sampling, encoders: dict,
                seeds: Sequence[int], *, transition: int = 10, device: str = "cpu",
                on_step=None) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """``(features (samples, output_frames, 263), known (output_frames, 263))`` de-normalised: the kept features are
    the input's exactly. ``text`` is a :class:`~motiongpt_cli.generation.TextInput` (high and low); any length works
    (windows of the model's maximum, overlapping by ``transition`` frames, all following ``text``)."""
    from ..diffusion.sampler import Inpainting, sample_windows
    from ..generation import condition_embeddings

    features = np.asarray(features, dtype=np.float32)
    known, source = spec.known_mask(features.shape[0], output_frames)
    placed = np.zeros((output_frames, FEATURE_DIM), dtype=np.float32)
    placed[source >= 0] = features[source[source >= 0]]
    normalised = (placed - loaded.mean) / loaded.std
    samples = len(seeds)
    inpaint = Inpainting(torch.from_numpy(np.repeat(normalised[None], samples, axis=0)).float().to(device),
                         torch.from_numpy(np.repeat(known[None], samples, axis=0)).to(device))  # fmt: skip
    windows = layout_windows([output_frames], transition, loaded.model.config.max_frames)
    high, low, use_low = condition_embeddings(loaded, [text] * samples, encoders)
    generators = [torch.Generator().manual_seed(int(seed)) for seed in seeds]
    x = sample_windows(loaded.model, loaded.schedule, high.to(device), None if low is None else low.to(device),
                       windows, output_frames, sampling, generators, samples=samples, use_low=use_low,
                       inpaint=inpaint, on_step=on_step)  # fmt: skip
    out = x.float().cpu().numpy() * loaded.std + loaded.mean
    out = np.where(known[None], placed[None], out).astype(np.float32)  # exactly the input's, not (x - m) / s * s + m
    return out, known
