"""`--format smpl`: AMASS-style SMPL .npz in three layouts, Z or Y up, resampled; read back by our loader and by
smplx (the consumer) on synthetic SMPL, SMPL-H and SMPL-X models in the official layouts; the layout follows the
model file unless asked."""

from __future__ import annotations

import contextlib
import io
import json
import pickle

import numpy as np
import pytest
import smplx
import torch
from typer.testing import CliRunner

from motiongpt_cli.cli import app
from motiongpt_cli.errors import InvalidValueError
from motiongpt_cli.motion.amass import (
    Y_UP_TO_Z_UP,
    SMPLOutputOptions,
    joints_to_amass,
    load_amass_npz,
    write_amass_npz,
)
from test_smpl import _random_body_clip, _smplx_joints, _synthetic_smpl, _tiny_body_file, smplx_forward, smplx_reference

runner = CliRunner()


@pytest.fixture(scope="module")
def body(tmp_path_factory):
    path = tmp_path_factory.mktemp("amass-models") / "smpl" / "SMPL_NEUTRAL.pkl"
    path.parent.mkdir()
    with open(path, "wb") as fh:
        pickle.dump(_synthetic_smpl(np.random.default_rng(0)), fh, protocol=2)
    with contextlib.redirect_stdout(io.StringIO()):
        return smplx.create(str(path.parent.parent), model_type="smpl", gender="neutral", ext="pkl"), path


@pytest.fixture(scope="module")
def clip(body):
    """60 frames of SMPL FK of a smooth random motion (turning, moving): the joints our solver inverts exactly."""
    model, _ = body
    rng = np.random.default_rng(3)
    t = np.linspace(0, 1, 60)[:, None]
    orient = np.concatenate([0.2 * np.sin(4 * t), 3.0 * t, 0.1 * np.cos(3 * t)], axis=1)  # ~170 degrees of turn
    pose = rng.normal(scale=0.25, size=(1, 23, 3)) * np.sin(2 * np.pi * t)[:, :, None]
    pose[:, 21:] = 0  # hands: 22 joints cannot tell them
    transl = np.concatenate([0.5 * t, 0.02 * np.sin(6 * t), 0.8 * t], axis=1)
    return _smplx_joints(model, orient, pose, transl)[:, :22].astype(np.float32)


def _fk_from_file(model, arrays) -> np.ndarray:
    poses, trans = arrays["poses"], arrays["trans"]
    if poses.shape[1] == 72:
        body_pose = poses[:, 3:72]
    else:  # smplh / smplx: 21 body joints, SMPL's two hand joints identity
        body_pose = np.concatenate([poses[:, 3:66], np.zeros((len(poses), 6))], axis=1)
    return _smplx_joints(model, poses[:, :3], body_pose, trans)[:, :22]


@pytest.mark.parametrize("layout", ["smpl", "smplh", "smplx"])
def test_layouts_read_back_by_smplx(body, clip, tmp_path, layout):
    model, _ = body
    path = write_amass_npz(tmp_path / "clip.smpl.npz", clip, fps=20, options=SMPLOutputOptions(layout=layout, up="y"))
    arrays = load_amass_npz(path)
    width = {"smpl": 72, "smplh": 156, "smplx": 165}[layout]
    assert arrays["poses"].shape == (60, width) and arrays["poses"].dtype == np.float32
    assert arrays["trans"].shape == (60, 3) and arrays["betas"].shape == (10,)
    assert str(arrays["gender"]) == "neutral" and str(arrays["surface_model_type"]) == layout
    assert float(arrays["mocap_framerate"]) == float(arrays["mocap_frame_rate"]) == 20.0
    assert ("dmpls" in arrays) == (layout == "smplh") and ("pose_body" in arrays) == (layout == "smplx")
    if layout == "smplx":
        np.testing.assert_array_equal(arrays["pose_body"], arrays["poses"][:, 3:66])
        np.testing.assert_array_equal(arrays["root_orient"], arrays["poses"][:, :3])
        assert not arrays["pose_hand"].any() and not arrays["pose_jaw"].any() and not arrays["pose_eye"].any()
    np.testing.assert_allclose(_fk_from_file(model, arrays), clip, atol=1e-4)


def test_z_up_turns_the_body_about_its_pelvis(body, clip, tmp_path):
    model, _ = body
    z = joints_to_amass(clip, 20, SMPLOutputOptions(layout="smpl", up="z"))
    joints_z = _fk_from_file(model, z)
    np.testing.assert_allclose(joints_z, clip @ Y_UP_TO_Z_UP.T, atol=1e-4)  # the same motion, Z up
    assert (joints_z[:, 15, 2] - joints_z[:, 10, 2]).min() > 0.8  # the head is above the feet along +Z


def test_resampling_to_60_fps(body, clip):
    model, _ = body
    base = joints_to_amass(clip, 20, SMPLOutputOptions(layout="smpl", up="y"))
    up = joints_to_amass(clip, 20, SMPLOutputOptions(layout="smpl", up="y", target_fps=60))
    assert up["poses"].shape == (3 * 59 + 1, 72) and float(up["mocap_frame_rate"]) == 60.0
    joints_up = _fk_from_file(model, up)
    np.testing.assert_allclose(joints_up[::3], _fk_from_file(model, base), atol=1e-4)  # the source frames kept
    mid = joints_up[1::3][:10]
    assert np.abs(mid - (2 * joints_up[0:30:3][:10] + joints_up[3:33:3][:10]) / 3).max() < 0.02  # in between
    with pytest.raises(InvalidValueError, match="below the motion's 20 fps"):
        joints_to_amass(clip, 20, SMPLOutputOptions(target_fps=10))


def test_user_model_and_fitted_shape(body, clip):
    _, path = body
    fitted = joints_to_amass(clip, 20, SMPLOutputOptions(up="y", model_path=path, fit_shape=True))
    assert np.abs(fitted["betas"]).max() < 0.05  # the clip was made at betas 0 of this model
    with pytest.raises(InvalidValueError, match="needs an SMPL model file"):
        SMPLOutputOptions(fit_shape=True)


def test_cli_generate_and_export_write_smpl(sample_joints, tmp_path, monkeypatch):
    monkeypatch.setenv("MOTIONGPT_HOME", str(tmp_path / "home"))
    np.save(tmp_path / "clip.npy", sample_joints)
    r = runner.invoke(app, ["--no-config", "export", str(tmp_path / "clip.npy"), "-f", "smpl,bvh", "-o",
                            str(tmp_path / "out"), "--smpl-layout", "smplx", "--smpl-fps", "30", "--json"])  # fmt: skip
    assert r.exit_code == 0, r.output
    outputs = json.loads(r.stdout)["outputs"]
    assert outputs["smpl"].endswith("clip.smpl.npz")
    arrays = load_amass_npz(outputs["smpl"])
    assert arrays["poses"].shape == (169 * 3 // 2 + 1, 165) and float(arrays["mocap_framerate"]) == 30.0
    # a rate below the motion's: refused before anything of that input is written
    r = runner.invoke(app, ["--no-config", "export", str(tmp_path / "clip.npy"), "-f", "bvh,smpl", "-o",
                            str(tmp_path / "low"), "--smpl-fps", "10"])  # fmt: skip
    assert r.exit_code == 1 and "below the motion's 20 fps" in r.stderr
    assert not (tmp_path / "low").exists() or not any((tmp_path / "low").iterdir())
    r = runner.invoke(app, ["--no-config", "generate", "a person waves", "--low", "wave", "--format", "smpl",
                            "--steps", "2", "--frames", "40", "--seed", "0", "-o", str(tmp_path / "gen")])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert load_amass_npz(tmp_path / "gen" / "a-person-waves-00.smpl.npz")["poses"].shape == (40, 156)
    r = runner.invoke(app, ["--no-config", "generate", "a person waves", "--low", "wave", "--format", "smpl",
                            "--fit-shape", "-o", str(tmp_path / "bad")])  # fmt: skip
    assert r.exit_code == 2 and "needs an SMPL model file" in r.stderr and not (tmp_path / "bad").exists()


def test_motion_save_smpl(tmp_path, sample_joints):
    from motiongpt_cli.api import Motion
    from motiongpt_cli.convert import features_for_joints

    m = Motion(features=features_for_joints(sample_joints), joints=sample_joints)
    path = m.save(tmp_path / "m.smpl.npz", smpl=SMPLOutputOptions(layout="smpl"))
    assert load_amass_npz(path)["poses"].shape == (170, 72)
    assert torch.is_tensor(torch.as_tensor(load_amass_npz(path)["trans"]))


@pytest.mark.parametrize("family, width", [("smplh", 156), ("smplx", 165)])
def test_model_family_sets_the_default_layout(body, tmp_path, family, width):
    """An SMPL-H model gives AMASS's 156 + dmpls, an SMPL-X model 165, unless a layout is asked; smplx's own SMPLH /
    SMPLX, fed the file's poses as they are, reproduces the motion (Z up, about the model's own pelvis)."""
    path = _tiny_body_file(tmp_path / f"{family}.npz", family)
    reference = smplx_reference(path, family, batch_size=40)
    clip = _random_body_clip(reference, family, frames=40).astype(np.float32)
    arrays = joints_to_amass(clip, 20, SMPLOutputOptions(model_path=path))
    poses = arrays["poses"]
    assert poses.shape == (40, width) and str(arrays["surface_model_type"]) == family
    assert ("dmpls" in arrays) == (family == "smplh") and ("pose_jaw" in arrays) == (family == "smplx")
    face = poses[:, 66:75] if family == "smplx" else None  # jaw, left eye, right eye
    out = smplx_forward(reference, family, poses[:, :3], poses[:, 3:66], arrays["trans"], arrays["betas"],
                        hands=poses[:, width - 90 :], face=face)  # fmt: skip
    np.testing.assert_allclose(out.joints[:, :22].numpy(), clip @ Y_UP_TO_Z_UP.T, atol=1e-4)
    assert joints_to_amass(clip, 20, SMPLOutputOptions(layout="smpl", model_path=path))["poses"].shape == (40, 72)
    # an SMPL model, or none, keeps AMASS's SMPL-H layout
    _, smpl_path = body
    assert joints_to_amass(clip, 20, SMPLOutputOptions(model_path=smpl_path))["poses"].shape == (40, 156)
    assert SMPLOutputOptions().layout_for(None) == "smplh"
