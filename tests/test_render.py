"""Stick-figure previews: GIF frames/timing, framing, determinism, captions; MP4 through ffmpeg."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from motiongpt_cli.errors import MotionFormatError, OutputExistsError, ToolMissingError
from motiongpt_cli.motion import render
from motiongpt_cli.motion.render import project, render_frames, write_gif, write_mp4


def test_gif_frames_size_and_timing(tmp_path, sample_joints):
    path = write_gif(tmp_path / "m.gif", sample_joints[:40], fps=20, title="a person serves")
    with Image.open(path) as im:
        assert im.size == (480, 480) and im.n_frames == 40
        assert im.info["duration"] == 50 and im.info.get("loop") == 0
        im.seek(0)
        first = np.array(im.convert("RGB"))
        im.seek(39)
        last = np.array(im.convert("RGB"))
    assert (first != first[0, 0]).any()  # not blank
    assert (first != last).any()  # the figure moves
    with pytest.raises(OutputExistsError):
        write_gif(path, sample_joints[:5])


@pytest.mark.parametrize("shift", [(0.0, 0.0, 0.0), (40.0, 0.0, -25.0)])
def test_whole_motion_stays_in_view(sample_joints, shift):
    pixels, _ = project(sample_joints + np.array(shift))
    assert pixels[..., 0].min() >= 16 and pixels[..., 0].max() <= 480 - 16
    assert pixels[..., 1].min() >= 16 + 44 and pixels[..., 1].max() <= 480 - 16  # below the caption band
    # and the figure is not tiny: it spans a good part of the image
    assert np.ptp(pixels[..., 0]) > 200


def test_left_side_appears_on_the_viewers_right(sample_joints):
    """Viewed from the front, the body's left (+X) is on the viewer's right."""
    pixels, _ = project(sample_joints)
    assert pixels[0, 16, 0] > pixels[0, 17, 0]  # left shoulder right of the right shoulder
    assert pixels[0, 15, 1] < pixels[0, 10, 1]  # head above the feet


def test_deterministic_and_caption_drawn(sample_joints):
    a = render_frames(sample_joints[:3], title="greet a friend")
    b = render_frames(sample_joints[:3], title="greet a friend")
    c = render_frames(sample_joints[:3], title="")
    assert all(x.tobytes() == y.tobytes() for x, y in zip(a, b, strict=True))
    band_a, band_c = np.array(a[0])[:40], np.array(c[0])[:40]
    assert (band_a != band_c).any() and (np.array(a[0])[60:] == np.array(c[0])[60:]).all()


def test_bad_joints():
    with pytest.raises(MotionFormatError):
        render_frames(np.zeros((3, 21, 3)))
    bad = np.zeros((3, 22, 3))
    bad[1, 1, 1] = np.inf
    with pytest.raises(MotionFormatError):
        render_frames(bad)


def test_mp4_without_ffmpeg(tmp_path, sample_joints, monkeypatch):
    monkeypatch.setattr(render.shutil, "which", lambda name: None)
    with pytest.raises(ToolMissingError, match="ffmpeg"):
        write_mp4(tmp_path / "m.mp4", sample_joints[:5])
    assert not list(tmp_path.iterdir())


@pytest.mark.ffmpeg
@pytest.mark.skipif(shutil.which("ffprobe") is None, reason="ffmpeg/ffprobe not installed (apt-get install ffmpeg)")
def test_mp4_frames_and_size(tmp_path, sample_joints):
    path = write_mp4(tmp_path / "m.mp4", sample_joints[:30], fps=20, size=(321, 240))
    probe = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=nb_read_frames,width,height,codec_name,pix_fmt",
            "-of",
            "json",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    stream = json.loads(probe.stdout)["streams"][0]
    assert (stream["width"], stream["height"]) == (320, 240)  # even dimensions for yuv420p
    assert int(stream["nb_read_frames"]) == 30 and stream["codec_name"] == "h264" and stream["pix_fmt"] == "yuv420p"
