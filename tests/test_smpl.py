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
import types

import numpy as np
import pytest
import scipy.sparse

from motiongpt_cli.errors import InvalidValueError, MotionFormatError
from motiongpt_cli.motion import rotations as rot
from motiongpt_cli.motion.kinematics import tree_forward_kinematics
from motiongpt_cli.motion.smpl import (
    SMPL_NEUTRAL_REST_JOINTS,
    SMPL_PARENTS,
    continuous_axis_angle,
    fit_betas,
    joints_to_smpl,
    load_smpl_model,
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


def _synthetic_smpl(rng: np.random.Generator, vertices: int = 6890) -> dict:
    """An SMPL model dict in the official layout (v1.0 neutral .pkl after chumpy removal)."""
    joints = 24
    v_template = rng.normal(scale=0.3, size=(vertices, 3))
    v_template[:joints] = REST_24  # one-hot regressor: J_regressor @ v_template == REST_24
    regressor = np.zeros((joints, vertices))
    regressor[np.arange(joints), np.arange(joints)] = 1.0
    shapedirs = rng.normal(scale=1e-3, size=(vertices, 3, 10))
    for k, group in enumerate(BONE_GROUPS):
        for j in range(joints):
            q, d = j, np.zeros(3)
            while q > 0:  # a joint moves by the scaled bones of the group between it and the root
                d += (REST_24[q] - REST_24[SMPL_PARENTS[q]]) * (q in group)
                q = SMPL_PARENTS[q]
            shapedirs[j, :, k] = 0.1 * d + rng.normal(scale=1e-3, size=3)
    weights = rng.random((vertices, joints))
    weights /= weights.sum(1, keepdims=True)
    kintree = np.stack([np.array(SMPL_PARENTS), np.arange(joints)]).astype(np.int64)
    kintree[0, 0] = 4294967295  # the root's parent as the official files store it (uint32 -1)
    return {
        "v_template": v_template,
        "shapedirs": shapedirs,
        "posedirs": rng.normal(scale=1e-4, size=(vertices, 3, 207)),
        "J_regressor": scipy.sparse.csc_matrix(regressor),
        "weights": weights,
        "kintree_table": kintree,
        "f": rng.integers(0, vertices, size=(13776, 3)).astype(np.uint32),
        "J": REST_24.copy(),
        "bs_style": "lbs",
        "bs_type": "lrotmin",
    }


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


def test_loader_reads_chumpy_pickles_without_chumpy(tmp_path, monkeypatch):
    """The official files keep shapedirs as chumpy arrays; chumpy does not import on Python 3.11 / numpy 2."""
    chumpy, ch = types.ModuleType("chumpy"), types.ModuleType("chumpy.ch")

    class Ch:  # pickles as chumpy.ch.Ch with its value in the state's "x", like chumpy's own
        pass

    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
    ch.Ch, chumpy.ch = Ch, ch
    data = _tiny_model(np.random.default_rng(7))
    shapedirs = data["shapedirs"]
    value = Ch()
    value.__dict__.update({"x": shapedirs, "_dirty_vars": set()})
    data["shapedirs"] = value
    with monkeypatch.context() as m:
        m.setitem(sys.modules, "chumpy", chumpy)
        m.setitem(sys.modules, "chumpy.ch", ch)
        path = tmp_path / "basicModel_neutral_lbs_10_207_0_v1.0.0.pkl"
        path.write_bytes(pickle.dumps(data, protocol=2))
    model = load_smpl_model(path)
    assert np.array_equal(model.shapedirs, shapedirs)
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
