"""Headless stick-figure previews (pillow only): ``.gif``, and ``.mp4`` through ffmpeg.

Joints are ``(T, 22, 3)`` metres, Y up. The camera is orthographic, fixed for the whole clip, looking at the
body's front-left from slightly above (frame 0 faces +Z, the body's left is +X, so the figure's left side appears
on the viewer's right). The framing is computed once from every frame, so the whole motion stays in view. Bones are
coloured by side (left blue, right red, spine and head dark grey); a floor grid (y = 0), the root's path so far and
a caption are drawn.
"""

from __future__ import annotations

import shutil
import subprocess
import textwrap
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..atomic import atomic_path
from ..errors import MotionFormatError, ToolMissingError
from .skeleton import KINEMATIC_CHAINS

_LEFT, _RIGHT, _CENTRE = (40, 110, 220), (220, 60, 50), (60, 60, 60)
_CHAIN_COLOURS = (_RIGHT, _LEFT, _CENTRE, _RIGHT, _LEFT)  # order of KINEMATIC_CHAINS
_CAPTION_HEIGHT = 44


def _camera(azimuth_deg: float = 30.0, elevation_deg: float = 20.0) -> tuple[np.ndarray, np.ndarray]:
    """Screen right and up unit vectors of an orthographic camera at the given azimuth/elevation."""
    az, el = np.deg2rad(azimuth_deg), np.deg2rad(elevation_deg)
    towards_camera = np.array([np.sin(az) * np.cos(el), np.sin(el), np.cos(az) * np.cos(el)])
    forward = -towards_camera
    right = np.cross(forward, [0.0, 1.0, 0.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    return right, up


def _check(joints: np.ndarray) -> np.ndarray:
    arr = np.asarray(joints, dtype=np.float64)
    if arr.ndim != 3 or arr.shape[1:] != (22, 3) or arr.shape[0] < 1:
        raise MotionFormatError(f"joints must have shape (frames, 22, 3), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise MotionFormatError("joints contain NaN or infinite values")
    return arr


def _floor_grid(joints: np.ndarray, spacing: float = 0.5) -> list[tuple[np.ndarray, np.ndarray]]:
    lo = np.floor((joints[..., [0, 2]].reshape(-1, 2).min(0) - 0.25) / spacing) * spacing
    hi = np.ceil((joints[..., [0, 2]].reshape(-1, 2).max(0) + 0.25) / spacing) * spacing
    lines = []
    for x in np.arange(lo[0], hi[0] + 1e-9, spacing):
        lines.append((np.array([x, 0.0, lo[1]]), np.array([x, 0.0, hi[1]])))
    for z in np.arange(lo[1], hi[1] + 1e-9, spacing):
        lines.append((np.array([lo[0], 0.0, z]), np.array([hi[0], 0.0, z])))
    return lines


def project(joints: np.ndarray, size: tuple[int, int] = (480, 480), margin: int = 16) -> tuple[np.ndarray, object]:
    """Pixel coordinates ``(..., 2)`` of points under the clip's fixed camera; returns (pixels, projector)."""
    right, up = _camera()
    arr = _check(joints)
    grid = _floor_grid(arr)
    points = np.concatenate([arr.reshape(-1, 3), np.array([p for line in grid for p in line])])
    screen = np.stack([points @ right, points @ up], axis=-1)
    lo, hi = screen.min(0), screen.max(0)
    width, height = size[0] - 2 * margin, size[1] - 2 * margin - _CAPTION_HEIGHT
    scale = min(width / max(hi[0] - lo[0], 1e-6), height / max(hi[1] - lo[1], 1e-6))
    centre = (lo + hi) / 2

    def to_pixels(p: np.ndarray) -> np.ndarray:
        s = np.stack([p @ right, p @ up], axis=-1)
        x = size[0] / 2 + (s[..., 0] - centre[0]) * scale
        y = _CAPTION_HEIGHT + margin + height / 2 - (s[..., 1] - centre[1]) * scale
        return np.stack([x, y], axis=-1)

    return to_pixels(arr), (to_pixels, grid)


def render_frames(joints: np.ndarray, *, title: str = "", size: tuple[int, int] = (480, 480)) -> list[Image.Image]:
    """One RGB image per frame of ``joints (T, 22, 3)``."""
    pixels, (to_pixels, grid) = project(joints, size)
    arr = _check(joints)
    root_path = to_pixels(arr[:, 0] * np.array([1.0, 0.0, 1.0]))
    font = ImageFont.load_default()
    background = Image.new("RGB", size, (250, 250, 247))
    draw = ImageDraw.Draw(background)
    for a, b in grid:
        pa, pb = to_pixels(a), to_pixels(b)
        draw.line([tuple(pa), tuple(pb)], fill=(210, 210, 205), width=1)
    caption = textwrap.wrap(title, width=max(20, size[0] // 7))[:2]
    for n, line in enumerate(caption):
        draw.text((10, 8 + 16 * n), line, fill=(20, 20, 20), font=font)
    images = []
    for t in range(arr.shape[0]):
        img = background.copy()
        draw = ImageDraw.Draw(img)
        if t > 0:
            draw.line([tuple(p) for p in root_path[: t + 1]], fill=(150, 150, 150), width=2)
        for chain, colour in zip(KINEMATIC_CHAINS, _CHAIN_COLOURS, strict=True):
            draw.line([tuple(pixels[t, j]) for j in chain], fill=colour, width=4, joint="curve")
        head = pixels[t, 15]
        draw.ellipse([head[0] - 7, head[1] - 7, head[0] + 7, head[1] + 7], outline=_CENTRE, width=3)
        images.append(img)
    return images


def write_gif(
    path: str | Path,
    joints: np.ndarray,
    *,
    fps: float = 20,
    title: str = "",
    overwrite: bool = False,
    size: tuple[int, int] = (480, 480),
) -> Path:
    """Animated GIF, one frame per motion frame, looping, ``1000 / fps`` ms per frame; written atomically."""
    frames = [
        im.convert("P", palette=Image.Palette.ADAPTIVE, colors=32)
        for im in render_frames(joints, title=title, size=size)
    ]
    with atomic_path(path, overwrite=overwrite) as tmp:
        frames[0].save(
            tmp,
            format="GIF",
            save_all=True,
            append_images=frames[1:],
            duration=round(1000 / fps),
            loop=0,
            optimize=False,
            disposal=1,
        )
    return Path(path)


def write_mp4(
    path: str | Path,
    joints: np.ndarray,
    *,
    fps: float = 20,
    title: str = "",
    overwrite: bool = False,
    size: tuple[int, int] = (480, 480),
) -> Path:
    """H.264 MP4 through ``ffmpeg`` (yuv420p), written atomically; ToolMissingError without ffmpeg."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise ToolMissingError(
            "ffmpeg is needed for .mp4 previews", hint="apt-get install ffmpeg (or brew install ffmpeg)"
        )
    size = (size[0] - size[0] % 2, size[1] - size[1] % 2)
    frames = render_frames(joints, title=title, size=size)
    raw = b"".join(im.tobytes() for im in frames)
    with atomic_path(path, overwrite=overwrite) as tmp:
        cmd = [
            ffmpeg,
            "-y",
            "-loglevel",
            "error",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-s",
            f"{size[0]}x{size[1]}",
            "-r",
            str(fps),
            "-i",
            "-",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            "-movflags",
            "+faststart",
            str(tmp),
        ]
        result = subprocess.run(cmd, input=raw, capture_output=True)
        if result.returncode != 0:
            last = (result.stderr.decode(errors="replace").strip().splitlines() or ["unknown error"])[-1]
            raise ToolMissingError(f"ffmpeg failed: {last}")
    return Path(path)
