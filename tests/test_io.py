"""The .npz schema and .npy input loading: round trips, validation, atomic writes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from motiongpt_cli.errors import MotionFormatError, OutputExistsError
from motiongpt_cli.motion import io as mio
from motiongpt_cli.motion.io import MotionRecord, load_motion_array, load_npz, save_npz, slugify


def _record(frames: int = 12) -> MotionRecord:
    rng = np.random.default_rng(0)
    return MotionRecord(
        features=rng.normal(size=(frames, 263)).astype(np.float32),
        joints=rng.normal(size=(frames, 22, 3)).astype(np.float32),
        fps=20,
        text_high="greet a friend",
        text_low="wave right hand",
        seed=7,
        model="default",
        guidance=2.5,
        steps=50,
    )


def test_round_trip_without_pickle(tmp_path):
    rec = _record()
    path = save_npz(tmp_path / "m.npz", rec)
    with np.load(path, allow_pickle=False) as data:
        assert sorted(data.files) == sorted(mio._FIELDS)
        assert data["text_high"].dtype.kind == "U"
    back = load_npz(path)
    for name in ("features", "joints"):
        assert np.array_equal(getattr(back, name), getattr(rec, name))
    assert (back.text_high, back.text_low, back.seed, back.model, back.guidance, back.steps, back.fps) == (
        "greet a friend",
        "wave right hand",
        7,
        "default",
        2.5,
        50,
        20,
    )
    assert back.format_version == mio.FORMAT_VERSION
    assert (back.sampler, back.sample_length, back.edit) == ("", "", "")  # optional fields absent: not written


def test_sampling_fields_round_trip(tmp_path):
    rec = _record()
    rec.sampler, rec.sample_length = "ddpm", "max"
    path = save_npz(tmp_path / "m.npz", rec)
    with np.load(path, allow_pickle=False) as data:
        assert str(data["sampler"]) == "ddpm" and str(data["sample_length"]) == "max"
    back = load_npz(path)
    assert (back.sampler, back.sample_length) == ("ddpm", "max")


def test_nan_guidance_and_suffix(tmp_path):
    rec = _record()
    rec.guidance = math.nan
    path = save_npz(tmp_path / "noext", rec)
    assert path.name == "noext.npz" and math.isnan(load_npz(path).guidance)


def test_overwrite_refused_and_atomic(tmp_path, monkeypatch):
    path = save_npz(tmp_path / "m.npz", _record())
    before = path.read_bytes()
    with pytest.raises(OutputExistsError):
        save_npz(path, _record(5))

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(RuntimeError):
        save_npz(path, _record(5), overwrite=True)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]  # no temporary file left behind


def _write_raw(path, **arrays):
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)
    return path


def _fields(**changes):
    rec = _record()
    base = {
        "features": rec.features,
        "joints": rec.joints,
        "fps": np.int64(20),
        "text_high": np.str_("a"),
        "text_low": np.str_(""),
        "seed": np.int64(-1),
        "model": np.str_("m"),
        "guidance": np.float64(1.0),
        "steps": np.int64(-1),
        "format_version": np.int64(1),
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"joints": None}, r"missing field\(s\) joints"),
        ({"features": np.zeros((12, 262), np.float32)}, "'features' must have shape"),
        ({"joints": np.zeros((11, 22, 3), np.float32)}, "'features' has 12 frames but 'joints' has 11"),
        ({"joints": np.full((12, 22, 3), np.nan, np.float32)}, "'joints' contains NaN"),
        ({"format_version": np.int64(99)}, "newer than this motiongpt reads"),
        ({"fps": np.int64(0)}, "'fps' must be positive"),
        ({"seed": np.str_("x")}, "'seed' must be an integer"),
        ({"text_high": np.array(["a", "b"])}, "'text_high' must be a scalar"),
        ({"model": np.array({"a": 1}, dtype=object)}, "pickled"),
    ],
)
def test_validation_errors_name_the_field(tmp_path, changes, message):
    path = _write_raw(tmp_path / "bad.npz", **_fields(**changes))
    with pytest.raises(MotionFormatError, match=message) as err:
        load_npz(path)
    assert str(path) in str(err.value)


def test_truncated_and_missing_files(tmp_path):
    path = save_npz(tmp_path / "m.npz", _record())
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(MotionFormatError, match="not a readable .npz"):
        load_npz(path)
    with pytest.raises(MotionFormatError, match="file not found"):
        load_npz(tmp_path / "nope.npz")


def test_load_motion_array_classifies_real_files(sample_features, humanml3d_dir):
    kind, arr = load_motion_array(humanml3d_dir / "new_joint_vecs" / "012314.npy")
    assert kind == "features" and arr.shape == (170, 263) and arr.dtype == np.float32
    kind, arr = load_motion_array(humanml3d_dir / "new_joints" / "012314.npy")
    assert kind == "joints" and arr.shape == (170, 22, 3)


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.zeros((10, 7)), "neither features"),
        (np.zeros((1, 263)), "at least 2 frames"),
        (np.array([[np.inf] * 66] * 3), "NaN or infinite"),
        (np.array([{"a": 1}], dtype=object), "not a plain numeric"),
    ],
)
def test_load_motion_array_rejects(tmp_path, array, message):
    path = tmp_path / "x.npy"
    np.save(path, array, allow_pickle=True)
    with pytest.raises(MotionFormatError, match=message):
        load_motion_array(path)


def test_flattened_joints_are_accepted(tmp_path):
    np.save(tmp_path / "flat.npy", np.zeros((4, 66), np.float32))
    kind, arr = load_motion_array(tmp_path / "flat.npy")
    assert kind == "joints" and arr.shape == (4, 22, 3)


@pytest.mark.parametrize(
    ("text", "slug"),
    [
        ("Greet a friend!", "greet-a-friend"),
        ("  Café — déjà vu  ", "cafe-deja-vu"),
        ("???", "motion"),
        ("a " * 40, "a-a-a-a-a-a-a-a-a-a-a-a-a-a-a-a-a-a-a-a-a-a-a-a"),
    ],
)
def test_slugify(text, slug):
    assert slugify(text) == slug and len(slugify(text)) <= 48


def test_outputs_get_the_usual_file_mode(tmp_path):
    """Atomic writes go through mkstemp (mode 0600); the finished file gets 0666 minus the umask, as open() would."""
    import os

    from motiongpt_cli.atomic import _umask, atomic_write_text

    path = atomic_write_text(tmp_path / "a.txt", "x")
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~_umask()
    reference = tmp_path / "b.txt"
    reference.write_text("x")
    assert os.stat(path).st_mode & 0o777 == os.stat(reference).st_mode & 0o777
