"""`--format obj`: a folder of per-frame OBJ meshes of the user's SMPL, SMPL-H or SMPL-X model, equal to smplx's own
forward pass, written atomically, from export, generate and Motion.save; bad or missing model files are one error
line.

The models are synthetic, in the official layouts (see test_smpl.py): a 48-vertex SMPL, pickled with chumpy-like
objects and as .npz, and 128-vertex SMPL-H / SMPL-X .npz files for the fast tests; full-size ones (6890 vertices for
SMPL and SMPL-H, 10475 for SMPL-X) in the slow tests.
"""

from __future__ import annotations

import contextlib
import io
import json
import pickle

import numpy as np
import pytest
import scipy.sparse
from typer.testing import CliRunner

from motiongpt_cli.cli import app
from motiongpt_cli.errors import InvalidValueError, MotionFormatError, OutputExistsError
from motiongpt_cli.motion import mesh
from motiongpt_cli.motion.amass import SMPLOutputOptions, load_amass_npz
from motiongpt_cli.motion.body_model import load_smpl_model
from motiongpt_cli.motion.mesh import obj_frame_names, write_obj_frames
from motiongpt_cli.motion.outputs import format_from_suffix, suffix_of, write_outputs
from motiongpt_cli.motion.smpl import SMPLParams, fit_betas, joints_to_smpl, smpl_to_joints
from test_smpl import (
    REST_24,
    _chumpy_pickle,
    _random_body_clip,
    _synthetic_body,
    _synthetic_smpl,
    _tiny_body_file,
    _tiny_model,
    smplx_forward,
    smplx_reference,
)

smplx = pytest.importorskip("smplx")
torch = pytest.importorskip("torch")

runner = CliRunner()
FRAMES = 12


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict:
    """The 48-vertex model as smplx's own loader reads it (a plain pickle), as an official-style pickle with chumpy
    arrays, and as .npz."""
    root = tmp_path_factory.mktemp("tiny-models")
    data = _tiny_model(np.random.default_rng(3))
    (root / "plain.pkl").write_bytes(pickle.dumps(data, protocol=2))
    (root / "SMPL_NEUTRAL.pkl").write_bytes(_chumpy_pickle(data, ("v_template", "shapedirs", "posedirs", "weights")))
    np.savez(root / "tiny.npz", **{k: (v.toarray() if scipy.sparse.issparse(v) else v) for k, v in data.items()})
    return {"pkl": root / "SMPL_NEUTRAL.pkl", "npz": root / "tiny.npz", "plain": root / "plain.pkl", "data": data}


def _clip(rest: np.ndarray = REST_24[:22], frames: int = FRAMES, seed: int = 5) -> np.ndarray:
    """Joints ``(frames, 22, 3)`` of random poses of the ``rest`` skeleton, a metre or so off the origin."""
    rng = np.random.default_rng(seed)
    params = SMPLParams(
        global_orient=rng.normal(scale=0.8, size=(frames, 3)).astype(np.float32),
        body_pose=np.concatenate([rng.normal(scale=0.4, size=(frames, 21, 3)), np.zeros((frames, 2, 3))], axis=1),
        transl=rng.normal(size=(frames, 3)).astype(np.float32),
        rest_joints=rest,
    )
    return smpl_to_joints(params).astype(np.float32)


def _smplx_forward(model_path, params: SMPLParams, vertices: int):
    """smplx's own loader and forward pass: vertices ``(T, V, 3)`` and joints ``(T, 24, 3)``."""
    with contextlib.redirect_stdout(io.StringIO()):
        body = smplx.SMPL(model_path=str(model_path), vertex_ids=None if vertices > 6787 else
                          dict.fromkeys(smplx.vertex_ids.vertex_ids["smplh"], 0))  # fmt: skip
    as_tensor = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float32))  # noqa: E731
    with torch.no_grad():
        out = body(betas=as_tensor(params.betas)[None].expand(params.num_frames, -1),
                   global_orient=as_tensor(params.global_orient), body_pose=as_tensor(params.body_pose).flatten(1),
                   transl=as_tensor(params.transl))  # fmt: skip
    return out.vertices.numpy(), out.joints[:, :24].numpy()


def _read_obj(path) -> tuple[np.ndarray, np.ndarray]:
    """Vertices ``(V, 3)`` and 1-based faces ``(F, 3)`` of an OBJ file, every other line a comment."""
    rows = [line.split() for line in path.read_text().splitlines()]
    assert all(r[0] in ("v", "f") for r in rows if r[0] != "#") and all(len(r) == 4 for r in rows if r[0] != "#")
    vertices = np.array([r[1:] for r in rows if r[0] == "v"], dtype=np.float64)
    faces = np.array([r[1:] for r in rows if r[0] == "f"], dtype=np.int64)
    return vertices, faces


def _read_folder(folder) -> tuple[np.ndarray, np.ndarray]:
    """Every frame's vertices ``(T, V, 3)`` and the faces, checking that every frame has the same faces."""
    meshes = [_read_obj(path) for path in sorted(folder.iterdir())]
    assert all(np.array_equal(faces, meshes[0][1]) for _, faces in meshes)
    return np.stack([v for v, _ in meshes]), meshes[0][1]


# ----------------------------------------------------------------------------------------------- the meshes
@pytest.mark.parametrize("kind", ["pkl", "npz"])
def test_obj_frames_are_smplx_meshes(tiny, tmp_path, kind):
    joints = _clip()
    model = load_smpl_model(tiny[kind])
    folder = write_obj_frames(tmp_path / "clip_obj", joints, model)
    names = sorted(p.name for p in folder.iterdir())
    assert names == obj_frame_names(FRAMES) == [f"frame{i:03d}.obj" for i in range(FRAMES)]
    vertices, faces = _read_folder(folder)
    assert vertices.shape == (FRAMES, 48, 3) and faces.shape == (20, 3)
    assert faces.min() >= 1 and faces.max() <= 48 and np.array_equal(faces, tiny["data"]["f"] + 1)
    expected, smplx_joints = _smplx_forward(tiny["plain"], joints_to_smpl(joints, model=model), 48)
    assert np.abs(vertices - expected).max() < 1e-5  # 6 decimals: 5e-7 rounding on float32 vertices
    # the mesh stands where the joints are (smplx's transl is the solver's), in the same Y-up axes
    assert np.abs(smplx_joints[:, :22] - joints).max() < 1e-4


def test_fit_shape_poses_the_fitted_shape(tiny, tmp_path):
    model = load_smpl_model(tiny["npz"])
    shape = np.array([1.5, -1.0, 0.8, 0, 0, 0.5, 0, 0, 0, 0])
    joints = _clip(model.rest_joints(shape)[:22])
    write_obj_frames(tmp_path / "fit_obj", joints, model, fit_shape=True)
    params = joints_to_smpl(joints, model=model, fit_shape=True)
    assert np.allclose(params.betas, fit_betas(joints, model), atol=1e-6) and np.abs(params.betas).max() > 0.4
    expected, smplx_joints = _smplx_forward(tiny["plain"], params, 48)
    assert np.abs(_read_folder(tmp_path / "fit_obj")[0] - expected).max() < 1e-5
    assert np.abs(smplx_joints[:, :22] - joints).max() < 1e-3  # the fitted skeleton is the clip's


def test_frame_names_sort_in_frame_order():
    assert obj_frame_names(1) == ["frame000.obj"]
    long = obj_frame_names(1001)
    assert long[0] == "frame0000.obj" and long[-1] == "frame1000.obj" and sorted(long) == long


def test_one_file_per_frame_over_several_batches(tiny, tmp_path):
    joints = _clip(frames=150)  # more than one smplx batch of 64 frames
    write_obj_frames(tmp_path / "long_obj", joints, load_smpl_model(tiny["npz"]))
    vertices, _ = _read_folder(tmp_path / "long_obj")
    expected, _ = _smplx_forward(tiny["plain"], joints_to_smpl(joints, model=load_smpl_model(tiny["npz"])), 48)
    assert vertices.shape == (150, 48, 3) and np.abs(vertices - expected).max() < 1e-5


# ----------------------------------------------------------------------------------------------- atomic folders
def test_failure_mid_way_leaves_nothing(tiny, tmp_path, monkeypatch):
    model = load_smpl_model(tiny["npz"])
    real, calls = mesh.obj_vertex_lines, []

    def interrupted(vertices):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt  # Ctrl-C after three frames
        return real(vertices)

    monkeypatch.setattr(mesh, "obj_vertex_lines", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_obj_frames(tmp_path / "out" / "clip_obj", _clip(), model)
    assert list((tmp_path / "out").iterdir()) == []  # no folder, no temporary sibling
    # with --overwrite, a failure keeps the old folder as it was
    old = tmp_path / "out" / "old_obj"
    old.mkdir()
    (old / "frame000.obj").write_text("old")
    calls.clear()
    with pytest.raises(KeyboardInterrupt):
        write_obj_frames(old, _clip(), model, overwrite=True)
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["old_obj"]
    assert [p.name for p in old.iterdir()] == ["frame000.obj"] and (old / "frame000.obj").read_text() == "old"


def test_existing_folder_kept_unless_overwrite(tiny, tmp_path):
    model = load_smpl_model(tiny["npz"])
    target = tmp_path / "clip_obj"
    target.mkdir()
    (target / "frame999.obj").write_text("keep me")
    with pytest.raises(OutputExistsError, match="already exists"):
        write_obj_frames(target, _clip(), model)
    assert [p.name for p in target.iterdir()] == ["frame999.obj"]
    write_obj_frames(target, _clip(), model, overwrite=True)
    assert sorted(p.name for p in target.iterdir()) == obj_frame_names(FRAMES)  # replaced, not merged
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip_obj"]  # the old folder is gone, not set aside


# ----------------------------------------------------------------------------------------------- commands and API
def test_export_writes_obj_and_fitted_betas(tiny, tmp_path):
    rest = load_smpl_model(tiny["pkl"]).rest_joints(np.array([1.0, 0, 0, 0, 0, 0, 0, 0, 0, 0]))[:22]
    np.save(tmp_path / "walk.npy", _clip(rest))
    r = runner.invoke(app, ["--no-config", "export", str(tmp_path / "walk.npy"), "--format", "obj,smpl",
                            "--smpl-model", str(tiny["pkl"]), "--fit-shape", "-o", str(tmp_path / "out"),
                            "--json"])  # fmt: skip
    assert r.exit_code == 0, r.output
    outputs = json.loads(r.stdout)["outputs"]
    assert outputs["obj"] == str(tmp_path / "out" / "walk_obj")
    assert len(list((tmp_path / "out" / "walk_obj").iterdir())) == FRAMES
    betas = load_amass_npz(outputs["smpl"])["betas"]
    assert betas.shape == (10,) and betas[0] == pytest.approx(1.0, abs=0.05)  # the fitted shape is stored


def test_export_obj_without_model_is_a_usage_error(tmp_path):
    np.save(tmp_path / "walk.npy", _clip())
    r = runner.invoke(app, ["--no-config", "export", str(tmp_path / "walk.npy"), "-f", "npz,obj",
                            "-o", str(tmp_path / "out")])  # fmt: skip
    assert r.exit_code == 2
    assert [line for line in r.stderr.splitlines() if line.startswith("Error:")] == [
        "Error: obj meshes need an SMPL model file (they are that model, posed)"
    ]
    assert "Hint: pass --smpl-model PATH" in r.stderr and "Traceback" not in r.output + r.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "problem", ["missing-keys", "not-a-pickle", "faces-out-of-range", "joint-counts-disagree", "hand-model"]
)
def test_bad_model_files_are_one_error_line_and_write_nothing(tiny, tmp_path, problem):
    data = tiny["data"]
    path = tmp_path / ("model.npz" if problem == "hand-model" else "model.pkl")
    if problem == "missing-keys":
        path.write_bytes(pickle.dumps({k: v for k, v in data.items() if k not in ("f", "weights")}, protocol=2))
    elif problem == "not-a-pickle":
        path.write_text("v 0 0 0\n")
    elif problem == "faces-out-of-range":
        path.write_bytes(pickle.dumps({**data, "f": data["f"] + 40}, protocol=2))
    elif problem == "joint-counts-disagree":  # an SMPL-H regressor (52 joints) in an SMPL body (24)
        path.write_bytes(pickle.dumps({**data, "J_regressor": np.eye(52, 48)}, protocol=2))
    else:  # 16 joints, as MANO's hand: neither SMPL's 24, SMPL-H's 52 nor SMPL-X's 55
        np.savez(path, **{**{k: v for k, v in data.items() if k != "J_regressor"}, "J_regressor": np.eye(16, 48)})
    np.save(tmp_path / "walk.npy", _clip())
    r = runner.invoke(app, ["--no-config", "export", str(tmp_path / "walk.npy"), "-f", "npz,obj",
                            "--smpl-model", str(path), "-o", str(tmp_path / "out")])  # fmt: skip
    assert r.exit_code == 1
    errors = [line for line in r.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and str(path) in errors[0] and "Traceback" not in r.stderr, r.stderr
    assert not (tmp_path / "out").exists()  # refused before the .npz is written
    with pytest.raises(MotionFormatError):
        write_outputs(None, {"obj": tmp_path / "api_obj"}, smpl=SMPLOutputOptions(model_path=path))


def test_generate_writes_obj_and_fails_before_sampling_without_model(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("MOTIONGPT_HOME", str(tmp_path / "home"))
    args = ["--no-config", "generate", "a person waves", "--low", "wave", "--format", "obj", "--steps", "2",
            "--frames", "40", "--seed", "0"]  # fmt: skip
    r = runner.invoke(app, [*args, "--smpl-model", str(tiny["npz"]), "-o", str(tmp_path / "gen")])
    assert r.exit_code == 0, r.output
    assert r.stdout.split() == [str(tmp_path / "gen" / "a-person-waves-00_obj")]
    assert len(list((tmp_path / "gen" / "a-person-waves-00_obj").iterdir())) == 40
    r = runner.invoke(app, [*args, "-o", str(tmp_path / "bad")])
    assert r.exit_code == 2 and "need an SMPL model file" in r.stderr and not (tmp_path / "bad").exists()


def test_motion_save_obj_folder(tiny, tmp_path):
    from motiongpt_cli.api import Motion

    assert suffix_of("obj") == "_obj" and format_from_suffix(tmp_path / "m_obj") == "obj"
    m = Motion(features=np.zeros((FRAMES, 263), np.float32), joints=_clip())
    path = m.save(tmp_path / "m_obj", smpl=SMPLOutputOptions(model_path=tiny["pkl"]))
    assert sorted(p.name for p in path.iterdir()) == obj_frame_names(FRAMES)
    with pytest.raises(InvalidValueError, match="SMPL model file"):
        m.save(tmp_path / "n_obj")
    assert not (tmp_path / "n_obj").exists()


# ----------------------------------------------------------------------------------------------- SMPL-H, SMPL-X
FAMILIES = ("smplh", "smplx")


@pytest.fixture(scope="module")
def bodies(tmp_path_factory) -> dict:
    """128-vertex SMPL-H (16 betas, as AMASS's) and SMPL-X (300 + 100 columns, as v1.1) .npz files."""
    root = tmp_path_factory.mktemp("body-models")
    return {family: _tiny_body_file(root / f"{family}.npz", family, seed=i) for i, family in enumerate(FAMILIES)}


def _check_body_meshes(folder, path, family, joints, model, frames, vertices):
    """The OBJ folder is smplx's own SMPL-H / SMPL-X mesh for the solved parameters (flat hands, neutral face), and
    smplx's body joints for them are the input joints."""
    meshes, faces = _read_folder(folder)
    assert meshes.shape == (frames, vertices, 3) and np.array_equal(faces, model.f + 1)
    name = {"smplh": "SMPL-H", "smplx": "SMPL-X"}[family]
    assert (folder / obj_frame_names(frames)[0]).read_text().startswith(f"# frame 0 of {frames}: {name} mesh")
    params = joints_to_smpl(joints, model=model)
    reference = smplx_reference(path, family, batch_size=frames)
    out = smplx_forward(reference, family, params.global_orient, params.body_pose, params.transl, params.betas)
    assert np.abs(meshes - out.vertices.numpy()).max() < 1e-5  # 6 decimals
    assert np.abs(out.joints[:, :22].double().numpy() - joints).max() < 1e-4  # measured 3e-7 m
    return params, meshes


@pytest.mark.parametrize("family", FAMILIES)
def test_obj_frames_of_smplh_and_smplx_models(bodies, tmp_path, family):
    """Random SMPL-H / SMPL-X body poses (fingers, jaw and eyes moving too), 70 frames (two smplx batches)."""
    model = load_smpl_model(bodies[family])
    joints = _random_body_clip(smplx_reference(bodies[family], family, batch_size=70), family, frames=70)
    folder = write_obj_frames(tmp_path / "clip_obj", joints, model)
    params, meshes = _check_body_meshes(folder, bodies[family], family, joints, model, 70, 128)
    # flat hands: smplx's default flat_hand_mean=False would add the file's (curled) mean hand pose to the zeros
    curled = smplx_reference(bodies[family], family, batch_size=70, flat_hand_mean=False)
    out = smplx_forward(curled, family, params.global_orient, params.body_pose, params.transl, params.betas)
    assert np.abs(meshes - out.vertices.numpy()).max() > 1e-3


def test_export_obj_and_smpl_with_an_smplx_model(bodies, tmp_path):
    model = load_smpl_model(bodies["smplx"])
    betas = np.array([1.0, -0.5, 0, 0, 0, 0, 0, 0, 0, 0])
    np.save(tmp_path / "walk.npy", _clip(model.rest_joints(betas)[:22]))
    r = runner.invoke(app, ["--no-config", "export", str(tmp_path / "walk.npy"), "--format", "obj,smpl",
                            "--smpl-model", str(bodies["smplx"]), "--fit-shape", "-o", str(tmp_path / "out"),
                            "--json"])  # fmt: skip
    assert r.exit_code == 0, r.output
    outputs = json.loads(r.stdout)["outputs"]
    meshes, _ = _read_folder(tmp_path / "out" / "walk_obj")
    assert meshes.shape == (FRAMES, 128, 3)
    arrays = load_amass_npz(outputs["smpl"])
    assert arrays["betas"][:2] == pytest.approx(betas[:2], abs=0.05)  # the fitted SMPL-X shape


# ----------------------------------------------------------------------------------------------- full size
@pytest.mark.slow
def test_full_size_model_meshes(tmp_path):
    data = _synthetic_smpl(np.random.default_rng(0))
    path = tmp_path / "SMPL_NEUTRAL.pkl"
    path.write_bytes(_chumpy_pickle(data, ("v_template", "shapedirs", "posedirs", "weights")))
    (tmp_path / "plain.pkl").write_bytes(pickle.dumps(data, protocol=2))
    joints = _clip(frames=8)
    model = load_smpl_model(path)
    write_obj_frames(tmp_path / "full_obj", joints, model)
    vertices, faces = _read_folder(tmp_path / "full_obj")
    assert vertices.shape == (8, 6890, 3) and faces.shape == (13776, 3)
    assert faces.min() >= 1 and faces.max() <= 6890
    expected, smplx_joints = _smplx_forward(tmp_path / "plain.pkl", joints_to_smpl(joints, model=model), 6890)
    assert np.abs(vertices - expected).max() < 1e-5
    assert np.abs(smplx_joints[:, :22] - joints).max() < 1e-4


@pytest.mark.slow
@pytest.mark.parametrize("family, vertices", [("smplh", 6890), ("smplx", 10475)])
def test_full_size_smplh_and_smplx_meshes(tmp_path, family, vertices):
    """Full-size SMPL-H and SMPL-X (float32 arrays, as the distributed .npz files): smplx's own landmark vertices,
    SMPL-X through its temporary file."""
    columns = {"smplh": {"shape_columns": 16}, "smplx": {"shape_columns": 300, "expression_columns": 100}}[family]
    data = _synthetic_body(np.random.default_rng(1), family, vertices, **columns)
    path = tmp_path / f"{family}_model.npz"
    np.savez(path, **{k: (v.astype(np.float32) if v.dtype.kind == "f" else v) for k, v in data.items()})
    model = load_smpl_model(path)
    joints = _random_body_clip(smplx_reference(path, family, batch_size=8), family, frames=8)
    folder = write_obj_frames(tmp_path / "full_obj", joints, model)
    _check_body_meshes(folder, path, family, joints, model, 8, vertices)
