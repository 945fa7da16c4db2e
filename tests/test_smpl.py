"""SMPL parameters from 22 joints: smplx (the reference consumer) reproduces the joints, rotations stay continuous
through turns and lying down, the real clip's error is pinned, and model files load without unpickling code.

The SMPL model is synthetic, written by the tests in the official layout (nothing licensed, nothing downloaded): its
rest joints are the SMPL neutral ones, so its joint kinematics at betas 0 are SMPL neutral's exactly.
"""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import sys
import tempfile
import types
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import scipy.sparse

from motiongpt_cli.errors import InvalidValueError, MotionFormatError
from motiongpt_cli.motion import rotations as rot
from motiongpt_cli.motion.body_model import SMPL_PARENTS, load_smpl_model
from motiongpt_cli.motion.kinematics import tree_forward_kinematics
from motiongpt_cli.motion.smpl import (
    SMPL_NEUTRAL_REST_JOINTS,
    continuous_axis_angle,
    fit_betas,
    joints_to_smpl,
    smpl_to_joints,
)

smplx = pytest.importorskip("smplx")
torch = pytest.importorskip("torch")

# SMPL joints 22/23 (hands): HybrIK's SMPL hand offsets from the wrists (MotionGPT hybrik_loc2rot.py); only the
# hand bones use them, and the solver leaves those at identity
HANDS = SMPL_NEUTRAL_REST_JOINTS[20:22] + np.array([[0.084, -0.0082, -0.0149], [-0.084, -0.0082, -0.0149]])
REST_24 = np.concatenate([SMPL_NEUTRAL_REST_JOINTS, HANDS])
# shape components of the synthetic model: each scales a group of bones by 10% per unit (like SMPL's
# proportion-changing components), plus noise; group 0 is every bone (height)
BONE_GROUPS = (
    range(1, 24), (4, 5), (7, 8), (10, 11), (3, 6, 9), (12, 15), (13, 14, 16, 17), (18, 19), (20, 21), (1, 2)
)  # fmt: skip
STRETCH = 3.4  # the most axis-angle stretches a rotation's step below |v| = 3π/2 (see the continuity test)
LEAVES = (10, 11, 15, 20, 21, 22, 23)  # SMPL joints whose rotation 22 joints cannot tell: identity


def _hand_parents(first: int) -> tuple[int, ...]:
    """Parents of 2 x 15 finger joints from joint ``first`` on: index, middle, pinky, ring, thumb (smplx's
    joint_names.py), three joints a finger, each finger from its wrist (SMPL joints 20, 21)."""
    return tuple(p for wrist, start in ((20, first), (21, first + 15)) for f in range(5)
                 for p in (wrist, start + 3 * f, start + 3 * f + 1))  # fmt: skip


FAMILY_PARENTS = {
    "smpl": SMPL_PARENTS,
    "smplh": SMPL_PARENTS[:22] + _hand_parents(22),
    "smplx": SMPL_PARENTS[:22] + (15, 15, 15) + _hand_parents(25),  # jaw, left eye, right eye from the head
}


def _family_rest(family: str) -> np.ndarray:
    """Rest joints of a family: SMPL neutral's body, fingers fanned out from the wrists, jaw and eyes at the head."""
    if family == "smpl":
        return REST_24
    body = SMPL_NEUTRAL_REST_JOINTS
    face = body[15] + np.array([[0.0, -0.06, 0.05], [0.03, 0.03, 0.08], [-0.03, 0.03, 0.08]])
    fingers = [
        body[20 + side] + np.array([(0.07 + 0.025 * k) * (1 - 2 * side), -0.01 - 0.005 * f, 0.03 - 0.015 * f])
        for side in (0, 1) for f in range(5) for k in range(3)
    ]  # fmt: skip
    return np.concatenate([body, face if family == "smplx" else np.zeros((0, 3)), np.array(fingers)])


def _synthetic_body(rng: np.random.Generator, family: str = "smpl", vertices: int = 6890, *,
                    shape_columns: int | None = None, expression_columns: int = 0) -> dict:  # fmt: skip
    """A body model dict in the official layout of ``family``: SMPL's v1.0 neutral .pkl after chumpy removal,
    AMASS's / MANO's SMPL-H (52 joints, posedirs 51 x 9, hand PCA), SMPLX_NEUTRAL.npz (55 joints, posedirs 54 x 9,
    ``shape_columns`` shape then ``expression_columns`` expression columns in shapedirs, face landmarks).

    The rest joints are :func:`_family_rest`'s, the first vertices with a one-hot regressor, so the body joints at
    betas 0 are SMPL neutral's exactly; the first 10 shape components scale bone groups (:data:`BONE_GROUPS`),
    further ones are noise."""
    parents = FAMILY_PARENTS[family]
    rest = _family_rest(family)
    joints = len(parents)
    shape_columns = shape_columns or 10
    v_template = rng.normal(scale=0.3, size=(vertices, 3))
    v_template[:joints] = rest  # one-hot regressor: J_regressor @ v_template == rest
    regressor = np.zeros((joints, vertices))
    regressor[np.arange(joints), np.arange(joints)] = 1.0
    shapedirs = rng.normal(scale=1e-3, size=(vertices, 3, shape_columns + expression_columns))
    for k, group in enumerate(BONE_GROUPS[:shape_columns]):
        group = range(1, joints) if k == 0 else group  # height: every bone, fingers and face included
        for j in range(joints):
            q, d = j, np.zeros(3)
            while q > 0:  # a joint moves by the scaled bones of the group between it and the root
                d += (rest[q] - rest[parents[q]]) * (q in group)
                q = parents[q]
            shapedirs[j, :, k] = 0.1 * d + rng.normal(scale=1e-3, size=3)
    weights = rng.random((vertices, joints))
    weights /= weights.sum(1, keepdims=True)
    kintree = np.stack([np.array(parents), np.arange(joints)]).astype(np.int64)
    kintree[0, 0] = 4294967295  # the root's parent as the official files store it (uint32 -1)
    # SMPL's (and SMPL-H's) 13776 triangles, SMPL-X's 20908; twice the vertices for the small ones
    faces = 13776 if family == "smpl" or vertices == 6890 else 20908 if vertices == 10475 else 2 * vertices
    data = {
        "v_template": v_template,
        "shapedirs": shapedirs,
        "posedirs": rng.normal(scale=1e-4, size=(vertices, 3, 9 * (joints - 1))),
        "J_regressor": scipy.sparse.csc_matrix(regressor) if family == "smpl" else regressor,
        "weights": weights,
        "kintree_table": kintree,
        "f": rng.integers(0, vertices, size=(faces, 3)).astype(np.uint32),
    }
    if family == "smpl":
        return data | {"J": REST_24.copy(), "bs_style": "lbs", "bs_type": "lrotmin"}
    for side in "lr":  # hand PCA: an orthonormal basis and a curled mean pose (what flat_hand_mean=False adds)
        data[f"hands_components{side}"] = np.linalg.qr(rng.normal(size=(45, 45)))[0]
        data[f"hands_mean{side}"] = rng.normal(scale=0.3, size=45)
    if family == "smplx":
        data["lmk_faces_idx"] = rng.integers(0, faces, size=51).astype(np.int64)
        bary = rng.random((51, 3))
        data["lmk_bary_coords"] = bary / bary.sum(1, keepdims=True)
        # real SMPLX_NEUTRAL.npz files also carry pickled dicts, which the loader must never unpickle
        data["joint2num"] = np.array({"pelvis": 0}, dtype=object)
    return data


def _synthetic_smpl(rng: np.random.Generator, vertices: int = 6890) -> dict:
    """An SMPL model dict in the official layout (v1.0 neutral .pkl after chumpy removal)."""
    return _synthetic_body(rng, "smpl", vertices)


def _tiny_body_file(path, family: str, seed: int = 0, **kwargs):
    """A small SMPL-H / SMPL-X model (128 vertices, more than the 55 joints) written as ``.npz``, as distributed:
    SMPL-X in v1.1's 300 + 100 columns unless ``kwargs`` say otherwise, SMPL-H with AMASS's 16 betas."""
    if family == "smplx":
        kwargs = {"shape_columns": 300, "expression_columns": 100} | kwargs
    elif family == "smplh":
        kwargs = {"shape_columns": 16} | kwargs
    np.savez(path, **_synthetic_body(np.random.default_rng(seed), family, kwargs.pop("vertices", 128), **kwargs))
    return path


def smplx_reference(path, family: str, batch_size: int = 1, **kwargs):
    """smplx's own loader on a model file, with flat hands without PCA (hand poses are 45 axis-angle values, zeros
    flat), and with the landmark-vertex joints read off vertex 0 when the mesh is smaller than the real one."""
    cls = {"smpl": smplx.SMPL, "smplh": smplx.SMPLH, "smplx": smplx.SMPLX}[family]
    options = {} if family == "smpl" else {"ext": "npz", "use_pca": False, "flat_hand_mean": True}
    with contextlib.redirect_stdout(io.StringIO()):
        body = cls(model_path=str(path), batch_size=batch_size, **(options | kwargs))
    if body.v_template.shape[0] < (10475 if family == "smplx" else 6890):
        body.vertex_joint_selector.extra_joints_idxs.zero_()
    return body


def smplx_forward(body, family: str, global_orient, body_pose, transl, betas=None, hands=None, face=None):
    """smplx's forward pass for ``frames`` poses: ``body_pose (T, 21 or 23, 3)`` (SMPL's last two, its hands, only
    for SMPL), optional ``hands (T, 90)`` and SMPL-X ``face (T, 9)`` (jaw, eyes), else zeros. Returns the output."""
    frames = len(global_orient)
    as_tensor = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float32))  # noqa: E731
    body_joints = 23 if family == "smpl" else 21
    betas = np.zeros((frames, body.num_betas)) if betas is None else np.tile(betas, (frames, 1))
    inputs = {
        "global_orient": as_tensor(global_orient),
        "body_pose": as_tensor(np.asarray(body_pose).reshape(frames, -1, 3)[:, :body_joints]).reshape(frames, -1),
        "transl": as_tensor(transl),
        "betas": as_tensor(betas),
    }
    if family != "smpl":
        hands = np.zeros((frames, 90)) if hands is None else hands
        inputs |= {"left_hand_pose": as_tensor(hands[:, :45]), "right_hand_pose": as_tensor(hands[:, 45:])}
    if family == "smplx":
        face = np.zeros((frames, 9)) if face is None else face
        inputs |= {"jaw_pose": as_tensor(face[:, :3]), "leye_pose": as_tensor(face[:, 3:6]),
                   "reye_pose": as_tensor(face[:, 6:]),
                   "expression": torch.zeros(frames, body.num_expression_coeffs)}  # fmt: skip
    with torch.no_grad():
        return body(**inputs)


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("body_models") / "smpl" / "SMPL_NEUTRAL.pkl"
    path.parent.mkdir()
    with open(path, "wb") as fh:
        pickle.dump(_synthetic_smpl(np.random.default_rng(0)), fh, protocol=2)
    return path


@pytest.fixture(scope="module")
def reference(model_path):
    """smplx's own loader on the file (as MDM loads SMPL_NEUTRAL.pkl)."""
    with contextlib.redirect_stdout(io.StringIO()):
        return smplx.create(str(model_path.parent.parent), model_type="smpl", gender="neutral", ext="pkl")


def _smplx_joints(body, global_orient, body_pose, transl, betas=None) -> np.ndarray:
    """SMPL forward kinematics by smplx: joints (T, 24, 3)."""
    frames = len(global_orient)
    betas = np.zeros((frames, 10)) if betas is None else np.tile(betas, (frames, 1))
    as_tensor = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float32))  # noqa: E731
    with torch.no_grad():
        out = body(
            global_orient=as_tensor(global_orient),
            body_pose=as_tensor(body_pose).reshape(frames, 69),
            transl=as_tensor(transl),
            betas=as_tensor(betas),
        )
    return out.joints[:, :24].double().numpy()


def _params_joints(body, params) -> np.ndarray:
    return _smplx_joints(body, params.global_orient, params.body_pose, params.transl, params.betas)[:, :22]


def _rotation(axis, degrees) -> np.ndarray:
    angle = np.deg2rad(np.asarray(degrees, dtype=np.float64))[..., None]
    return rot.numpy_call(rot.axis_angle_to_matrix, angle * np.asarray(axis, dtype=np.float64))


def _geodesic(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angle (rad) of the rotation between matrices a and b."""
    cos = (np.trace(np.swapaxes(a, -1, -2) @ b, axis1=-2, axis2=-1) - 1) / 2
    return np.arccos(np.clip(cos, -1.0, 1.0))


def _mpjpe(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b, axis=-1).mean())


# ----------------------------------------------------------------------------------------------- (a) round trip
def test_random_poses_round_trip_through_smplx(reference, model_path):
    rng = np.random.default_rng(1)
    frames = 64
    global_orient = rng.normal(scale=1.5, size=(frames, 3))  # any facing, lying, upside down
    body_pose = rng.normal(scale=0.5, size=(frames, 69))
    transl = rng.normal(size=(frames, 3))
    joints = _smplx_joints(reference, global_orient, body_pose, transl)[:, :22]
    params = joints_to_smpl(joints)
    err = np.abs(_params_joints(reference, params) - joints).max()
    assert err < 1e-4  # measured 3.6e-7 m (float32 FK); a transl of the pelvis itself would be off by |J0| = 0.22 m
    # the numpy FK agrees with smplx's
    assert np.abs(smpl_to_joints(params) - joints).max() < 1e-5
    # leaves and hands are the identity, exactly as documented
    assert np.abs(params.body_pose[:, [j - 1 for j in LEAVES]]).max() < 1e-6
    # the user's own model file gives the same skeleton and the same answer at betas 0
    model = load_smpl_model(model_path)
    assert np.allclose(model.rest_joints(), REST_24, atol=1e-12)
    from_model = joints_to_smpl(joints, model=model)
    assert np.allclose(from_model.body_pose, params.body_pose, atol=1e-6)
    assert np.allclose(from_model.transl, params.transl, atol=1e-6)


def test_any_rest_skeleton_round_trips():
    """A different rest skeleton (a smaller, wider body) given as joints: its own FK is reproduced."""
    rest = SMPL_NEUTRAL_REST_JOINTS * np.array([1.2, 0.9, 1.0])
    rng = np.random.default_rng(2)
    local = rot.numpy_call(rot.axis_angle_to_matrix, rng.normal(scale=0.6, size=(16, 22, 3)))
    offsets = rest - rest[[max(p, 0) for p in SMPL_PARENTS[:22]]]
    translations = np.broadcast_to(offsets, (16, 22, 3)).copy()
    translations[:, 0] = rng.normal(size=(16, 3))
    joints = tree_forward_kinematics(local, translations, SMPL_PARENTS[:22])[0]
    params = joints_to_smpl(joints, rest_joints=rest)
    assert params.betas is None and np.allclose(params.rest_joints, rest)
    assert np.abs(smpl_to_joints(params) - joints).max() < 1e-5


def test_fit_shape_recovers_known_betas(reference, model_path):
    rng = np.random.default_rng(3)
    betas = rng.normal(size=10)
    frames = 32
    joints = _smplx_joints(
        reference,
        rng.normal(scale=1.0, size=(frames, 3)),
        rng.normal(scale=0.4, size=(frames, 69)),
        rng.normal(size=(frames, 3)),
        betas,
    )[:, :22]
    model = load_smpl_model(model_path)
    params = joints_to_smpl(joints, model=model, fit_shape=True)
    assert np.abs(params.betas - betas).max() < 1e-3  # measured 2e-5
    assert np.abs(_params_joints(reference, params) - joints).max() < 1e-4


# ----------------------------------------------------------------------------------------------- (b) continuity
def _moving_clip(reference, motion: np.ndarray, seed: int = 4):
    """SMPL FK of a gently changing pose whose root is carried by ``motion (T, 3, 3)`` (starting at identity)."""
    rng = np.random.default_rng(seed)
    frames = len(motion)
    phase = np.sin(2 * np.pi * np.arange(frames) / 50)[:, None]
    body_pose = rng.normal(scale=0.3, size=(1, 69)) + 0.2 * phase * rng.normal(size=(1, 69))
    global_orient = rot.numpy_call(rot.matrix_to_axis_angle, motion)
    transl = np.stack([np.linspace(0, 2, frames), np.zeros(frames), np.linspace(0, -1, frames)], axis=-1)
    joints = _smplx_joints(reference, global_orient, body_pose, transl)[:, :22]
    still = _smplx_joints(reference, np.zeros_like(global_orient), body_pose, transl)[:, :22]
    return joints, still


MOTIONS = {
    # 2.5 turns on the spot, 6°/frame: exactly 360° at frame 60 and 720° at frame 120
    "spin": lambda: _rotation([0, 1, 0], 6.0 * np.arange(151)),
    # a cartwheel: onto the side (90°), upside down (180°), twice round
    "roll": lambda: _rotation([0, 0, 1], 5.0 * np.arange(145)),
    # lying on the back, spinning round twice
    "lying_spin": lambda: _rotation([0, 1, 0], 6.0 * np.arange(121)) @ _rotation([1, 0, 0], -90.0),
    # backflips
    "tumble": lambda: _rotation([1, 0, 0], -5.0 * np.arange(145)),
}


@pytest.mark.parametrize("name", sorted(MOTIONS))
def test_turns_and_rolls_stay_continuous(reference, name):
    motion = MOTIONS[name]()
    joints, still = _moving_clip(reference, motion)
    params = joints_to_smpl(joints)
    assert np.abs(_params_joints(reference, params) - joints).max() < 1e-4  # measured < 1e-6 m
    # the body's local rotations do not depend on where it faces or how it lies
    assert np.abs(params.body_pose - joints_to_smpl(still).body_pose).max() < 1e-4
    # the root's axis-angle moves with the root (6° = 0.105 rad a frame): no 2π jumps, not at 180° (facing
    # backwards) nor after a full turn. About a fixed axis it moves exactly as much; lying_spin's axis wanders,
    # and a vector of length |v| stretches a turn across its axis by (|v|/2)/sin(|v|/2): 3.33x at 3π/2
    own_step = _geodesic(motion[1:], motion[:-1])
    vector_step = np.linalg.norm(np.diff(params.global_orient, axis=0), axis=-1)
    assert np.all(vector_step <= STRETCH * own_step + 1e-4)  # measured 1.00x (fixed axis), 3.33x (lying_spin)
    if name != "lying_spin":
        assert np.all(vector_step <= own_step + 1e-4)
    assert rot.numpy_call(rot.axis_angle_to_matrix, params.global_orient) == pytest.approx(motion, abs=1e-5)
    # which is what the test is for: the principal (|v| <= π) axis-angle of the same rotations jumps by ~2π
    principal = rot.numpy_call(rot.matrix_to_axis_angle, motion)
    assert np.linalg.norm(np.diff(principal, axis=0), axis=-1).max() > 6.0
    body_step = np.linalg.norm(np.diff(params.body_pose, axis=0), axis=-1)
    assert body_step.max() < 0.2  # the pose itself changes by at most ~0.05 rad a frame
    if name == "spin":  # 900° about +Y, continued past two full turns
        assert params.global_orient[-1] == pytest.approx([0.0, np.deg2rad(900.0), 0.0], abs=1e-4)


@pytest.mark.parametrize(
    "axis, degrees", [([0, 1, 0], 180.0), ([0, 1, 0], -170.0), ([0, 0, 1], 90.0), ([1, 0, 0], 180.0)]
)
def test_real_clip_facing_backwards_lying_or_upside_down(sample_joints, axis, degrees):
    """HumanML3D 012314 turned to face backwards (its heading then swings about ±180°), on its side, upside down."""
    base = joints_to_smpl(sample_joints)
    turned_joints = sample_joints @ _rotation(axis, degrees).T
    turned = joints_to_smpl(turned_joints)
    assert np.abs(turned.body_pose - base.body_pose).max() < 1e-5
    assert _mpjpe(smpl_to_joints(turned), turned_joints) == pytest.approx(_mpjpe(smpl_to_joints(base), sample_joints))
    root = rot.numpy_call(rot.axis_angle_to_matrix, turned.global_orient)
    own_step = _geodesic(root[1:], root[:-1])
    vector_step = np.linalg.norm(np.diff(turned.global_orient, axis=0), axis=-1)
    assert np.all(vector_step <= STRETCH * own_step + 1e-4)  # measured at most 1.84x; the principal branch jumps 2π


def test_real_clip_spinning_jumps_once_a_turn_at_most(sample_joints):
    """A real body is never exactly upright: after each full turn its root is back near the identity but tilted,
    where axis-angle has no continuous choice (all of |v| = 2π is the identity); one clean jump a turn is left."""
    frames = len(sample_joints)
    spin = _rotation([0, 1, 0], np.linspace(0.0, 720.0, frames))
    spun_joints = np.einsum("tab,tjb->tja", spin, sample_joints)
    spun = joints_to_smpl(spun_joints)
    assert np.abs(spun.body_pose - joints_to_smpl(sample_joints).body_pose).max() < 1e-5
    root = rot.numpy_call(rot.axis_angle_to_matrix, spun.global_orient)
    own_step = _geodesic(root[1:], root[:-1])
    vector_step = np.linalg.norm(np.diff(spun.global_orient, axis=0), axis=-1)
    jumps = vector_step > STRETCH * own_step + 1e-4
    assert jumps.sum() <= 2  # measured 2 (so does the principal branch, which also jumps whenever it faces back)
    assert np.all(np.abs(vector_step[jumps] - 2 * np.pi) < 0.5)  # a jump swaps equivalent vectors, nothing else


def test_continuous_axis_angle_unit():
    # a steady turn through 540°, given as principal vectors, becomes one straight line
    angles = np.deg2rad(np.arange(0, 541, 10.0))
    principal = rot.numpy_call(rot.matrix_to_axis_angle, _rotation([0, 0, 1], np.rad2deg(angles)))
    out = continuous_axis_angle(principal[:, None])[:, 0]
    assert out == pytest.approx(np.stack([0 * angles, 0 * angles, angles], axis=-1), abs=1e-6)
    # same rotations always; small rotations are left alone; one frame passes through
    rng = np.random.default_rng(5)
    small = rng.normal(scale=0.3, size=(20, 4, 3))
    assert np.array_equal(continuous_axis_angle(small), small)
    assert np.array_equal(continuous_axis_angle(small[:1]), small[:1])


# ----------------------------------------------------------------------------------------------- (c) real clip
def test_real_clip_error_and_fitted_shape(reference, model_path, sample_joints):
    params = joints_to_smpl(sample_joints)
    mpjpe = _mpjpe(_params_joints(reference, params), sample_joints)
    # measured 17.27 mm (max 49 mm): HumanML3D's bone lengths are 0.90-1.37x SMPL neutral's, the solver adds none
    assert mpjpe == pytest.approx(0.01727, abs=0.002)
    model = load_smpl_model(model_path)
    fitted = joints_to_smpl(sample_joints, model=model, fit_shape=True)
    fitted_mpjpe = _mpjpe(_params_joints(reference, fitted), sample_joints)
    assert fitted_mpjpe < 0.6 * mpjpe  # measured 7.4 mm on the synthetic model's proportion components
    assert np.allclose(fitted.betas, fit_betas(sample_joints, model), atol=1e-6)


# ----------------------------------------------------------------------------------------------- (d) API
def test_shapes_dtypes_and_errors(sample_joints):
    params = joints_to_smpl(sample_joints[:7])
    assert params.global_orient.shape == (7, 3) and params.global_orient.dtype == np.float32
    assert params.body_pose.shape == (7, 23, 3) and params.body_pose.dtype == np.float32
    assert params.transl.shape == (7, 3) and params.transl.dtype == np.float32
    assert params.betas.shape == (10,) and not params.betas.any()
    assert params.poses.shape == (7, 72) and params.num_frames == 7
    assert np.allclose(params.transl, sample_joints[:7, 0] - SMPL_NEUTRAL_REST_JOINTS[0], atol=1e-6)
    assert joints_to_smpl(sample_joints[:1]).body_pose.shape == (1, 23, 3)
    bad_nan = sample_joints[:4].copy()
    bad_nan[2, 5, 1] = np.nan
    for bad in (sample_joints[:, :21], sample_joints[0], sample_joints[:0], bad_nan, np.zeros((3, 24, 3))):
        with pytest.raises(MotionFormatError):
            joints_to_smpl(bad)
    with pytest.raises(MotionFormatError):
        joints_to_smpl(sample_joints, rest_joints=np.zeros((21, 3)))
    with pytest.raises(MotionFormatError, match="zero-length"):
        joints_to_smpl(sample_joints, rest_joints=np.zeros((22, 3)))
    with pytest.raises(InvalidValueError, match="model"):
        joints_to_smpl(sample_joints, fit_shape=True)


# ----------------------------------------------------------------------------------------------- model files
def test_loader_matches_smplx_and_builds_it(reference, model_path):
    model = load_smpl_model(model_path)
    assert np.allclose(model.v_template, reference.v_template.numpy(), atol=1e-6)
    assert np.allclose(model.J_regressor, reference.J_regressor.numpy())
    assert np.allclose(model.shapedirs, reference.shapedirs.numpy(), atol=1e-7)
    rng = np.random.default_rng(6)
    args = (rng.normal(size=(4, 3)), rng.normal(scale=0.5, size=(4, 69)), rng.normal(size=(4, 3)), rng.normal(size=10))
    ours = _smplx_joints(model.to_smplx(), *args)
    assert np.abs(ours - _smplx_joints(reference, *args)).max() < 1e-5


def _tiny_model(rng) -> dict:
    return _synthetic_smpl(rng, vertices=48) | {"f": rng.integers(0, 48, size=(20, 3)).astype(np.uint32)}


def _chumpy_pickle(data: dict, keys: tuple[str, ...] = ("shapedirs",)) -> bytes:
    """``data`` pickled as the official files are, its ``keys`` as chumpy arrays: ``chumpy.ch.Ch`` objects with the
    value in the state's ``x``, like chumpy's own (a stand-in chumpy module is importable only while pickling)."""
    chumpy, ch = types.ModuleType("chumpy"), types.ModuleType("chumpy.ch")

    class Ch:
        pass

    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
    ch.Ch, chumpy.ch = Ch, ch
    wrapped = dict(data)
    for key in keys:
        wrapped[key] = Ch()
        wrapped[key].__dict__.update({"x": data[key], "_dirty_vars": set()})
    with mock.patch.dict(sys.modules, {"chumpy": chumpy, "chumpy.ch": ch}):
        return pickle.dumps(wrapped, protocol=2)


def test_loader_reads_chumpy_pickles_without_chumpy(tmp_path):
    """The official files keep shapedirs as chumpy arrays; chumpy does not import on Python 3.11 / numpy 2."""
    data = _tiny_model(np.random.default_rng(7))
    path = tmp_path / "basicModel_neutral_lbs_10_207_0_v1.0.0.pkl"
    path.write_bytes(_chumpy_pickle(data))
    model = load_smpl_model(path)
    assert np.array_equal(model.shapedirs, data["shapedirs"])
    assert np.allclose(model.rest_joints(), REST_24)


def test_loader_reads_npz_and_refuses_code(tmp_path):
    data = _tiny_model(np.random.default_rng(8))
    arrays = {k: (v.toarray() if scipy.sparse.issparse(v) else v) for k, v in data.items()}
    np.savez(tmp_path / "smpl.npz", **arrays)
    assert np.allclose(load_smpl_model(tmp_path / "smpl.npz").rest_joints(), REST_24)
    assert load_smpl_model(tmp_path / "smpl.npz", num_betas=4).num_betas == 4

    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    (tmp_path / "evil.pkl").write_bytes(pickle.dumps({**data, "v_template": Exploit()}, protocol=2))
    with pytest.raises(MotionFormatError, match="not a readable SMPL model"):
        load_smpl_model(tmp_path / "evil.pkl")
    assert not marker.exists()
    np.savez(tmp_path / "objects.npz", **{**arrays, "f": np.array([{"a": 1}], dtype=object)})
    with pytest.raises(MotionFormatError):
        load_smpl_model(tmp_path / "objects.npz")


def test_loader_rejects_other_files(tmp_path):
    data = _tiny_model(np.random.default_rng(9))
    cases = {
        "missing.pkl": {k: v for k, v in data.items() if k != "J_regressor"},
        "tree.pkl": {**data, "kintree_table": np.stack([np.r_[-1, np.zeros(23)], np.arange(24)]).astype(np.int64)},
        "shape.pkl": {**data, "weights": data["weights"][:, :22]},
        "faces.pkl": {**data, "f": data["f"] + 48},  # vertex indices past the mesh
        "list.pkl": [1, 2, 3],
    }
    for name, content in cases.items():
        (tmp_path / name).write_bytes(pickle.dumps(content, protocol=2))
        with pytest.raises(MotionFormatError):
            load_smpl_model(tmp_path / name)
    (tmp_path / "text.pkl").write_text("not a pickle")
    for name in ("text.pkl", "absent.pkl"):
        with pytest.raises(MotionFormatError):
            load_smpl_model(tmp_path / name)


# ----------------------------------------------------------------------------------------------- SMPL-H, SMPL-X
BODY_FAMILIES = ("smplh", "smplx")


@pytest.fixture(scope="module")
def body_files(tmp_path_factory) -> dict:
    """Small SMPL-H (AMASS's 16 betas) and SMPL-X (v1.1: 300 shape + 100 expression columns) .npz files."""
    root = tmp_path_factory.mktemp("body-models")
    return {
        family: _tiny_body_file(root / f"{family}_model.npz", family, seed=i) for i, family in enumerate(BODY_FAMILIES)
    }


def _random_body_clip(body, family, frames=32, seed=10, betas=None):
    """Joints ``(frames, 22, 3)`` of random poses by smplx: any facing, bent limbs, moving fingers (and jaw, eyes),
    which 22 body joints do not see."""
    rng = np.random.default_rng(seed)
    orient, pose = rng.normal(scale=1.5, size=(frames, 3)), rng.normal(scale=0.5, size=(frames, 21, 3))
    hands, face = rng.normal(scale=0.4, size=(frames, 90)), rng.normal(scale=0.2, size=(frames, 9))
    out = smplx_forward(body, family, orient, pose, rng.normal(size=(frames, 3)), betas, hands=hands, face=face)
    return out.joints[:, :22].double().numpy()


@pytest.mark.parametrize("family", BODY_FAMILIES)
def test_body_models_round_trip_through_smplx(body_files, family):
    """Random SMPL-H / SMPL-X body poses by smplx, solved on the model's skeleton and posed again by smplx (hands,
    jaw and eyes at zero): the 22 body joints come back."""
    model = load_smpl_model(body_files[family])
    assert model.family == family and model.num_joints == {"smplh": 52, "smplx": 55}[family]
    assert np.allclose(model.rest_joints(), _family_rest(family), atol=1e-12)
    reference = smplx_reference(body_files[family], family, batch_size=32)
    joints = _random_body_clip(reference, family)
    params = joints_to_smpl(joints, model=model)
    assert np.allclose(params.rest_joints, SMPL_NEUTRAL_REST_JOINTS, atol=1e-12) and not params.body_pose[:, 21:].any()
    again = smplx_forward(reference, family, params.global_orient, params.body_pose, params.transl, params.betas)
    assert np.abs(again.joints[:, :22].double().numpy() - joints).max() < 1e-4  # measured 3e-7 m (float32 FK)
    assert np.abs(smpl_to_joints(params) - joints).max() < 1e-5


@pytest.mark.parametrize("family", BODY_FAMILIES)
def test_body_models_fit_shape(body_files, family):
    """fit_betas on SMPL-H / SMPL-X: the 22 body joints' rest positions are linear in the shape columns alone."""
    reference = smplx_reference(body_files[family], family, batch_size=32)
    betas = np.random.default_rng(11).normal(size=10)
    joints = _random_body_clip(reference, family, betas=betas)
    model = load_smpl_model(body_files[family])
    params = joints_to_smpl(joints, model=model, fit_shape=True)
    assert np.abs(params.betas - betas).max() < 1e-3  # measured 2e-6
    again = smplx_forward(reference, family, params.global_orient, params.body_pose, params.transl, params.betas)
    assert np.abs(again.joints[:, :22].double().numpy() - joints).max() < 1e-4


@pytest.mark.parametrize("family", BODY_FAMILIES)
def test_body_models_build_smplx_classes(body_files, family):
    """to_smplx builds smplx's SMPLH / SMPLX (SMPL-X through a temporary file, then gone), equal to smplx's own
    loader: arrays, expression directions, and the forward pass with hands, jaw, eyes and betas all set."""
    path = body_files[family]
    model = load_smpl_model(path)
    before = set(Path(tempfile.gettempdir()).glob("motiongpt-smplx-*"))
    body = model.to_smplx(batch_size=4)
    assert set(Path(tempfile.gettempdir()).glob("motiongpt-smplx-*")) == before
    reference = smplx_reference(path, family, batch_size=4)
    assert type(body) is type(reference) is {"smplh": smplx.SMPLH, "smplx": smplx.SMPLX}[family]
    assert not body.use_pca and body.flat_hand_mean and body.num_betas == reference.num_betas == 10
    for name in ("v_template", "shapedirs", "posedirs", "J_regressor", "lbs_weights", "parents", "pose_mean"):
        assert torch.equal(getattr(body, name), getattr(reference, name)), name
    if family == "smplx":  # the 10 expression components smplx keeps by default (v1.1: columns 300-309)
        assert torch.equal(body.expr_dirs, reference.expr_dirs)
        assert np.allclose(model.extras["expr_dirs"], np.load(path)["shapedirs"][:, :, 300:310])
    rng = np.random.default_rng(12)
    args = (
        rng.normal(size=(4, 3)),
        rng.normal(scale=0.5, size=(4, 21, 3)),
        rng.normal(size=(4, 3)),
        rng.normal(size=10),
    )
    extra = {"hands": rng.normal(scale=0.4, size=(4, 90)), "face": rng.normal(scale=0.2, size=(4, 9))}
    ours, theirs = smplx_forward(body, family, *args, **extra), smplx_forward(reference, family, *args, **extra)
    assert torch.allclose(ours.vertices, theirs.vertices, atol=1e-6)


@pytest.mark.parametrize("family", BODY_FAMILIES)
def test_body_models_keep_more_betas(body_files, family):
    """More than 10 betas: up to the file's shape columns (SMPL-H's 16, SMPL-X's 300, not its expression columns),
    and smplx keeps them all (it would keep 10 of a file with fewer than 300 columns)."""
    path = body_files[family]
    columns = {"smplh": 16, "smplx": 300}[family]
    assert load_smpl_model(path, num_betas=1000).num_betas == columns
    model = load_smpl_model(path, num_betas=16)
    betas = np.random.default_rng(13).normal(size=16)
    body = model.to_smplx()
    assert body.num_betas == 16
    rest = smplx_forward(body, family, np.zeros((1, 3)), np.zeros((1, 21, 3)), np.zeros((1, 3)), betas)
    assert np.abs(rest.joints[0, : model.num_joints].double().numpy() - model.rest_joints(betas)).max() < 1e-5
    with pytest.raises(InvalidValueError, match="num_betas"):
        load_smpl_model(path, num_betas=0)


def test_smplx_v1_0_layout_and_files_without_optional_arrays(tmp_path):
    """SMPL-X v1.0 (10 shape + 10 expression columns) splits as smplx splits it; an SMPL-H or SMPL-X file without
    hand PCA or landmarks (smplx needs them, the mesh does not) gets identity components, zero means, none."""
    path = _tiny_body_file(tmp_path / "SMPLX_NEUTRAL.npz", "smplx", shape_columns=10, expression_columns=10)
    model = load_smpl_model(path, num_betas=300)
    assert model.num_betas == 10 and np.allclose(model.extras["expr_dirs"], np.load(path)["shapedirs"][:, :, 10:])
    reference = smplx_reference(path, "smplx")
    assert torch.equal(model.to_smplx().expr_dirs, reference.expr_dirs)
    for family in BODY_FAMILIES:
        data = _synthetic_body(np.random.default_rng(14), family, 128)
        bare = {k: v for k, v in data.items() if not k.startswith(("hands_", "lmk_"))}
        np.savez(tmp_path / f"{family}_bare.npz", **bare)
        model = load_smpl_model(tmp_path / f"{family}_bare.npz")
        body = model.to_smplx()
        assert torch.equal(body.left_hand_mean, torch.zeros(45)) and not body.use_pca
        joints = smplx_forward(body, family, np.zeros((2, 3)), np.zeros((2, 21, 3)), np.zeros((2, 3))).joints
        assert np.abs(joints[:, :22].numpy() - SMPL_NEUTRAL_REST_JOINTS).max() < 1e-6


def test_smplh_pickle_with_chumpy_arrays(tmp_path):
    """MANO's SMPL+H .pkl files keep chumpy arrays and a sparse regressor, like SMPL's: read the same way; the family
    comes from the joint count, not the name or the suffix."""
    data = _synthetic_body(np.random.default_rng(17), "smplh", 128)
    data["J_regressor"] = scipy.sparse.csc_matrix(data["J_regressor"])
    path = tmp_path / "SMPLH_female.pkl"
    path.write_bytes(_chumpy_pickle(data, ("v_template", "shapedirs", "posedirs", "weights")))
    model = load_smpl_model(path)
    assert model.family == "smplh" and np.allclose(model.rest_joints(), _family_rest("smplh"))
    assert np.array_equal(model.extras["hands_meanl"], data["hands_meanl"])


def test_body_model_files_refused_with_the_problem(tmp_path):
    """Not a body model we can pose: one MotionFormatError naming the file and what is wrong."""
    smplh = _synthetic_body(np.random.default_rng(15), "smplh", 128)
    smplx_data = _synthetic_body(np.random.default_rng(16), "smplx", 128, shape_columns=300, expression_columns=100)
    mano = {k: v[:16] if k == "J_regressor" else v for k, v in smplh.items()}  # a 16-joint hand
    bad_tree = smplh["kintree_table"].copy()
    bad_tree[0, 12] = 6  # neck on spine2: not SMPL's body
    loop = smplh["kintree_table"].copy()
    loop[0, 30] = 40  # a finger hanging off a later joint
    cases = {
        "missing.npz": (
            {k: v for k, v in smplh.items() if k not in ("weights", "posedirs")},
            "missing posedirs, weights",
        ),
        "mano.npz": (mano, r"J_regressor has shape \(16, 128\), not the joints of SMPL \(24\), SMPL-H \(52\)"),
        "mixed.npz": ({**smplh, "kintree_table": smplx_data["kintree_table"]}, r"kintree_table has shape \(2, 55\)"),
        "posedirs.npz": (
            {**smplh, "posedirs": smplh["posedirs"][:, :, :207]},
            r"expected an SMPL-H model's \(128, 3, 459\)",
        ),
        "tree.npz": ({**smplh, "kintree_table": bad_tree}, "not SMPL-H's"),
        "loop.npz": ({**smplh, "kintree_table": loop}, "not SMPL-H's"),
        "hands.npz": ({**smplh, "hands_meanl": np.zeros(6)}, "hands_meanl has shape"),
        "landmarks.npz": ({**smplx_data, "lmk_faces_idx": smplx_data["lmk_faces_idx"] + 10**6}, "lmk_faces_idx"),
        "objects.npz": ({**smplx_data, "weights": np.array([{"a": 1}], dtype=object)}, "not a readable SMPL model"),
    }
    for name, (content, problem) in cases.items():
        np.savez(tmp_path / name, **content)
        with pytest.raises(MotionFormatError, match=problem) as caught:
            load_smpl_model(tmp_path / name)
        assert str(caught.value).startswith(f"{tmp_path / name}: ") and "\n" not in str(caught.value), name
