"""Parity of the HumanML3D feature pipeline with the released clip 012314, and its properties."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from motiongpt_cli.errors import MotionFormatError
from motiongpt_cli.motion import rotations as rot
from motiongpt_cli.motion.features import (
    FEATURE_GROUPS,
    FOOT_CONTACTS,
    ROT6D,
    canonicalize,
    denormalize,
    features_to_joints,
    features_to_joints_from_rotations,
    joints_to_features,
    load_mean_std,
    mirror_joints,
    normalize,
)
from motiongpt_cli.motion.skeleton import TARGET_BONE_LENGTHS, bone_lengths_of


def test_features_to_joints_matches_released_joints(sample_features, sample_joints):
    assert np.abs(features_to_joints(sample_features) - sample_joints).max() < 1e-5


def test_joints_to_features_matches_released_features(sample_features, sample_joints):
    ours = joints_to_features(sample_joints)
    assert ours.shape == (169, 263) and ours.dtype == np.float32
    err = np.abs(ours - sample_features[:169])
    # exact where the quirks are reproduced bit for bit
    assert np.array_equal(ours[:, FOOT_CONTACTS], sample_features[:169, FOOT_CONTACTS])
    assert err[:, FEATURE_GROUPS["root_height"]].max() < 2e-6
    # away from the end every group agrees to float32 noise: measured max 4.6e-4 (6D), 2.6e-4 (ric)
    assert err[:120].max() < 1e-3
    assert err[:100].max() < 1e-4
    # the last ~40 rows differ because the released features were made from 171 frames and new_joints holds
    # 170: the forward-direction smoothing (sigma 20 frames) sees other padding there. Measured maxima:
    # ric 6.8e-3, 6D 1.32e-2, local velocity 4.1e-4, root velocities 3.0e-4.
    assert err[:, FEATURE_GROUPS["ric"]].max() < 8e-3
    assert err[:, ROT6D].max() < 1.5e-2
    assert err[:, FEATURE_GROUPS["local_velocity"]].max() < 1e-3
    assert err[:, :3].max() < 5e-4


def test_hip_order_quirk_is_what_the_data_needs(sample_features, sample_joints, monkeypatch):
    """Control: the 'fixed' across vector breaks parity, so the test above would catch a silent fix."""
    import motiongpt_cli.motion.features as feats

    original = feats._across_forward
    monkeypatch.setattr(
        feats,
        "_across_forward",
        lambda j, hip_order_bug, normalize=True: original(j, hip_order_bug=False, normalize=normalize),
    )
    err = np.abs(joints_to_features(sample_joints) - sample_features[:169])
    assert err[:100, ROT6D].max() > 0.1


def test_6d_block_is_column_major(sample_features, sample_joints):
    """FK of the released 6D block reproduces the joints with HumanML3D's column layout, not with rows."""
    assert np.abs(features_to_joints_from_rotations(sample_features) - sample_joints).max() < 1e-4
    transposed = sample_features.copy()
    six = transposed[:, ROT6D].reshape(-1, 21, 6)
    mats = rot.numpy_call(rot.cont6d_to_matrix, six)
    rows = np.concatenate([mats[..., 0, :], mats[..., 1, :]], axis=-1)  # pytorch3d's row convention
    transposed[:, ROT6D] = rows.reshape(-1, 126)
    assert np.abs(features_to_joints_from_rotations(transposed) - sample_joints).max() > 0.05


def test_round_trip_on_canonical_joints(sample_features):
    joints = features_to_joints(sample_features)
    again = features_to_joints(joints_to_features(joints))
    # 169 frames come back; the smoothing edge effect stays below 2 cm at the end, ~0 elsewhere
    assert np.abs(again - joints[:169]).max() < 2e-2
    assert np.abs(again[:100] - joints[:100]).max() < 1e-4


@pytest.mark.parametrize("yaw_deg", [90.0, 180.0, -135.0])
def test_features_are_invariant_to_placement_except_6d(sample_joints, yaw_deg):
    angle = np.deg2rad(yaw_deg)
    c, s = np.cos(angle), np.sin(angle)
    rot_y = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    moved = sample_joints @ rot_y.T + np.array([3.0, 0.7, -2.0])
    a, b = joints_to_features(sample_joints), joints_to_features(moved)
    mask = np.ones(263, bool)
    mask[ROT6D] = False
    assert np.abs(a[:, mask] - b[:, mask]).max() < 1e-4


def test_retargeting_gives_target_bone_lengths(sample_joints):
    scaled = sample_joints * 1.3  # a taller person
    joints = features_to_joints(joints_to_features(scaled))
    lengths = bone_lengths_of(joints)
    assert np.abs(lengths[:, 1:] - TARGET_BONE_LENGTHS[1:]).max() < 1e-4


def test_canonical_pose_faces_forward_on_the_floor(sample_joints):
    angle = np.deg2rad(70)
    rot_y = np.array([[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]])
    canon = canonicalize(sample_joints @ rot_y.T + 1.0)
    assert canon[..., 1].min() == pytest.approx(0.0, abs=1e-9)
    assert np.abs(canon[0, 0, [0, 2]]).max() < 1e-9
    across = (canon[0, 2] - canon[0, 1]) + (canon[0, 17] - canon[0, 16])
    forward = np.cross([0, 1, 0], across)
    assert forward[2] / np.linalg.norm(forward) > 0.999


def test_torch_path_is_differentiable_and_batched(sample_features):
    x = torch.tensor(np.stack([sample_features[:20], sample_features[20:40]]), dtype=torch.float64)
    x.requires_grad_(True)
    out = features_to_joints(x)
    assert out.shape == (2, 20, 22, 3) and out.dtype == torch.float64
    assert np.abs(out.detach().numpy()[1] - features_to_joints(sample_features[20:40])).max() < 1e-5
    small = torch.tensor(sample_features[:4], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda f: features_to_joints(f), (small,), eps=1e-6, atol=1e-5)


def test_bad_inputs_raise():
    with pytest.raises(MotionFormatError, match="shape"):
        joints_to_features(np.zeros((10, 21, 3)))
    with pytest.raises(MotionFormatError, match="at least 2 frames"):
        joints_to_features(np.zeros((1, 22, 3)))
    bad = np.random.default_rng(0).normal(size=(5, 22, 3))
    bad[2, 3, 1] = np.nan
    with pytest.raises(MotionFormatError, match="NaN"):
        joints_to_features(bad)
    with pytest.raises(MotionFormatError, match="263"):
        features_to_joints(np.zeros((5, 262)))


def test_mirroring(sample_joints):
    assert np.array_equal(mirror_joints(mirror_joints(sample_joints)), sample_joints)
    a = joints_to_features(sample_joints)
    b = joints_to_features(mirror_joints(sample_joints))
    # contacts (L ankle, L foot, R ankle, R foot) swap sides; a few frames near the 0.002 m² threshold may flip
    # because retargeting rescales by the RIGHT leg, which is now the former left one (0.3% longer)
    swapped = np.concatenate([b[:, 261:263], b[:, 259:261]], axis=1)
    assert (a[:, 259:263] == swapped).mean() > 0.97
    # root height agrees within that rescale (measured ratio 0.993-0.9995); the yaw is not simply negated because
    # the IK's hip-order quirk is not mirror-symmetric
    assert np.abs(a[:, 3] / b[:, 3] - 1).max() < 0.01


def test_normalisation_helpers(humanml3d_dir, sample_features, tmp_path):
    mean, std = load_mean_std(humanml3d_dir)
    assert mean.shape == std.shape == (263,)
    assert np.allclose(denormalize(normalize(sample_features, mean, std), mean, std), sample_features, atol=1e-5)
    # HumanML3D's Std is constant within each group (group-averaged)
    assert np.ptp(std[4:67]) < 1e-6 and std[259] == pytest.approx(0.35593265, rel=1e-5)
    with pytest.raises(MotionFormatError, match="not found"):
        load_mean_std(tmp_path)


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=12, deadline=None)
@given(
    yaw=st.floats(-180, 180),
    shift=st.tuples(st.floats(-5, 5), st.floats(-1, 1), st.floats(-5, 5)),
    scale=st.floats(0.7, 1.4),
    start=st.integers(0, 60),
)
def test_property_joints_features_joints(sample_joints, yaw, shift, scale, start):
    """Any placement and size of a real clip: features -> joints gives the canonical HumanML3D motion."""
    clip = sample_joints[start : start + 60].astype(np.float64)
    a = np.deg2rad(yaw)
    rot_y = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    moved = (clip * scale) @ rot_y.T + np.array(shift)
    recovered = features_to_joints(joints_to_features(moved))
    reference = features_to_joints(joints_to_features(clip))
    assert recovered.shape == (59, 22, 3)
    assert np.abs(recovered - reference).max() < 1e-4
    assert np.abs(bone_lengths_of(recovered)[:, 1:] - TARGET_BONE_LENGTHS[1:]).max() < 1e-4
    assert recovered[..., 1].min() > -1e-4  # on the floor
